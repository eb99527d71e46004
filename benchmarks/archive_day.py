"""One day of snapshots, features and klines archived to Parquet: bytes per day against MongoDB's,
and the seconds to write the archive (each collection, the server's CPU and ours) and to read it
back.

Seeds the real embedded server (SecantusDB, its own process, a fresh storage folder) with
synthetic snapshots of one UTC day, `--symbols` x `--minutes` (default 500 x 60), `--levels` per side
(default 100) on a tick grid around a random walk, quantities log-normal rounded to a lot (so
neither MongoDB nor zstd sees repeated books), and the same minutes' features (the columns of
`core.features`) and klines, then archives the day with `Archive.archive_day`, one collection
after the other, into a temporary folder and reads the snapshots back with pandas (the whole
file) and `acts_pipeline.read.snapshots` (one symbol). Printed:

- MongoDB's own figures for the collection (`collStats`: `size`, the BSON bytes of the documents,
  and `storageSize`; `totalIndexSize`) and the growth of the server's storage folder on disk;
- the Parquet file's bytes (zstd) and the ratio;
- seconds to seed (not part of the archive), to archive each collection (read from MongoDB,
  convert, write, verify), with the embedded server's CPU (its process, from `/proc`) and this
  process's meanwhile, and the three together (what `daily_archive` does); to read the whole
  day back into pandas, and one symbol's day through `read`;
- `read.features` of one symbol over `--read-days` (30) archived days of all symbols' features
  (synthetic, written straight to Parquet as the archive lays them out, then archived again with
  the symbol's documents in MongoDB), from the archive alone, with MongoDB holding the same days
  too and the archive current (read from the archive alone), and with MongoDB's days written
  since their archive (both read);
- each figure that grows with the minutes scaled to a whole day (x 1440 / `--minutes`).

Why 60 minutes and not 1440 by default: the embedded server serves a snapshot document (200
levels as BSON arrays) in about 1 ms of its CPU and takes about as long to insert one, so a whole
day (720,000 documents) would take over half an hour of machine time to seed and as long again to
archive; both grow linearly with the minutes (one query per symbol, one row group per symbol, the
same documents per minute), which `--minutes 1440` confirms at that cost.

    .venv/bin/python benchmarks/archive_day.py [--symbols 500 --minutes 1440 --levels 100]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
if str(PROJECT) not in sys.path:
    sys.path.insert(0, str(PROJECT))

from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from _platform import process_cpu_seconds as cpu_seconds  # noqa: E402

from acts_pipeline import read  # noqa: E402
from acts_pipeline.platform.processes import mongo_uri_of, start_embedded_mongo  # noqa: E402
from acts_pipeline.core.features import FEATURE_COLUMNS  # noqa: E402
from acts_pipeline.storage.archive import (  # noqa: E402
    ARCHIVED_COLLECTIONS,
    COMPRESSION,
    ROW_GROUP_ROWS,
    TIMESTAMP,
    Archive,
    delete_archived_day,
    mongo_keys,
)
from acts_pipeline.storage.client import MongoStore  # noqa: E402
from acts_pipeline.storage.collections import KLINES_1M, ORDER_BOOK_FEATURES, ORDER_BOOK_SNAPSHOTS  # noqa: E402

DAY = date(2026, 11, 30)


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def seed(store: MongoStore, symbols: list[str], minutes: int, levels: int, rng: np.random.Generator) -> float:
    """Inserts the day minute by minute (every symbol's book of a minute in one insert_many)."""
    start = datetime(DAY.year, DAY.month, DAY.day, tzinfo=UTC)
    collection = store.collection(ORDER_BOOK_SNAPSHOTS)
    n = len(symbols)
    tick = 10.0 ** -rng.integers(1, 5, n)
    mid = np.round(rng.uniform(1, 1000, n) / tick) * tick
    steps = np.arange(1, levels + 1)
    began = time.perf_counter()
    for m in range(minutes):
        mid = np.maximum(tick * 10, mid + np.round(rng.normal(0, 3, n)) * tick)
        bid_prices = mid[:, None] - tick[:, None] * (steps[None, :] + rng.integers(0, 2, (n, levels)).cumsum(1))
        ask_prices = mid[:, None] + tick[:, None] * (steps[None, :] + rng.integers(0, 2, (n, levels)).cumsum(1))
        bid_qtys = np.round(rng.lognormal(0, 1.5, (n, levels)), 3) + 0.001
        ask_qtys = np.round(rng.lognormal(0, 1.5, (n, levels)), 3) + 0.001
        minute = start + timedelta(minutes=m)
        close = minute + timedelta(minutes=1, milliseconds=150)
        documents = [{
            "symbol": symbols[i], "minute": minute, "captured_at": close, "requested_at": close,
            "last_update_id": int(1e9) + m * 1000 + i, "depth_limit": levels,
            "bids": np.column_stack([bid_prices[i], bid_qtys[i]]).tolist(),
            "asks": np.column_stack([ask_prices[i], ask_qtys[i]]).tolist(),
            "source": "stream", "event_time": close - timedelta(milliseconds=120),
        } for i in range(n)]
        collection.insert_many(documents, ordered=False)
    return time.perf_counter() - began


def seed_small(store: MongoStore, symbols: list[str], minutes: int, rng: np.random.Generator) -> float:
    """The same minutes' features (the columns of `core.features`, synthetic values) and klines,
    inserted minute by minute; seconds taken."""
    start = datetime(DAY.year, DAY.month, DAY.day, tzinfo=UTC)
    began = time.perf_counter()
    for m in range(minutes):
        minute = start + timedelta(minutes=m)
        captured = minute + timedelta(minutes=1, milliseconds=150)
        values = np.round(rng.lognormal(3, 1, (len(symbols), len(FEATURE_COLUMNS))), 6)
        features = []
        for i, symbol in enumerate(symbols):
            document: dict[str, Any] = {"symbol": symbol, "minute": minute, "captured_at": captured}
            for j, name in enumerate(FEATURE_COLUMNS):
                document[name] = (100 if name in ("bid_levels", "ask_levels") else False if name == "crossed"
                                  else float(values[i, j]))
            features.append(document)
        store.collection(ORDER_BOOK_FEATURES).insert_many(features, ordered=False)
        prices = np.round(rng.lognormal(3, 1, (len(symbols), 4)), 4)
        store.collection(KLINES_1M).insert_many([{
            "symbol": symbol, "minute": minute, "open": float(prices[i, 0]), "high": float(prices[i].max()),
            "low": float(prices[i].min()), "close": float(prices[i, 3]), "volume": float(prices[i, 1] * 10),
            "quote_volume": float(prices[i, 1] * prices[i, 2] * 10), "trades": int(prices[i, 2] * 3),
            "taker_buy_base_volume": float(prices[i, 1] * 4), "taker_buy_quote_volume": float(prices[i, 1] * 40),
            "captured_at": captured} for i, symbol in enumerate(symbols)], ordered=False)
    return time.perf_counter() - began


def features_day(symbols: list[str], day: date, rng: np.random.Generator) -> pa.Table:
    """A day of synthetic features of every symbol, as the archive lays them out (sorted by symbol,
    then minute; the columns of `core.features`)."""
    n, per = len(symbols), 1440
    start = np.datetime64(datetime(day.year, day.month, day.day), "ms")
    minute = np.tile(start + np.arange(per).astype("timedelta64[m]"), n)
    columns: dict[str, Any] = {
        "symbol": pa.array(np.repeat(symbols, per)),
        "minute": pa.array(minute, type=TIMESTAMP),
        "captured_at": pa.array(minute + np.timedelta64(60_150, "ms"), type=TIMESTAMP),
    }
    for name in FEATURE_COLUMNS:
        if name in ("bid_levels", "ask_levels"):
            columns[name] = pa.array(np.full(n * per, 100, dtype=np.int64))
        elif name == "crossed":
            columns[name] = pa.array(np.zeros(n * per, dtype=bool))
        else:
            columns[name] = pa.array(np.round(rng.lognormal(3, 1, n * per), 6))
    return pa.table(columns)


def read_features_month(store: MongoStore, uri: str, root: Path, symbols: list[str], days: int,
                        rng: np.random.Generator) -> dict[str, float]:
    """`read.features` of one symbol over `days` archived days, three ways, each frame checked
    equal to the first: from the archive alone (MongoDB no longer holds the days); with MongoDB
    holding the same days too (features are kept forever by default) and the archive current,
    which the reader trusts (`storage.written_days`); and with MongoDB's days written after
    their archive (one document per day, through the product), so both sources are read and
    MongoDB's documents win. The symbol's documents go into MongoDB through `MongoStore` and each
    day is archived by `Archive.archive_day` (MongoDB's rows plus the other symbols' rows the
    file already held), as the platform would."""
    archive = Archive(str(root))
    first = DAY - timedelta(days=days - 1)
    day_list = [first + timedelta(days=k) for k in range(days)]
    for day in day_list:
        relative = archive.relative_path(ORDER_BOOK_FEATURES, day)
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(features_day(symbols, day, rng), root / relative, compression=COMPRESSION,
                       row_group_size=ROW_GROUP_ROWS)
    symbol = symbols[len(symbols) // 4]
    start = datetime(first.year, first.month, first.day, tzinfo=UTC)
    end = start + timedelta(days=days)
    timings = {}

    def timed(name: str) -> pd.DataFrame:
        began = time.perf_counter()
        frame = read.features(symbol, start, end, mongo_uri=uri, database="bench", archive_dir=str(root))
        timings[name] = time.perf_counter() - began
        assert len(frame) == days * 1440
        return frame

    alone = timed("archive")
    documents = alone.assign(minute=alone["minute"].dt.to_pydatetime()).to_dict("records")
    documents = [{k: (v.to_pydatetime() if isinstance(v, pd.Timestamp) else v) for k, v in d.items()}
                 for d in documents]
    for batch in range(0, len(documents), 5000):
        store.insert_or_replace(ORDER_BOOK_FEATURES, documents[batch:batch + 5000])
    began = time.perf_counter()
    for day in day_list:
        archive.archive_day(store, day, collections=[ORDER_BOOK_FEATURES])
    timings["archive_days"] = time.perf_counter() - began
    pd.testing.assert_frame_equal(timed("current"), alone)
    for day in day_list:  # written after the archive, the same values: the reader must read MongoDB
        first_of_day = [d for d in documents if d["minute"].date() == day][:1]
        store.upsert(ORDER_BOOK_FEATURES, first_of_day)
    pd.testing.assert_frame_equal(timed("both"), alone)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--minutes", type=int, default=60)
    parser.add_argument("--levels", type=int, default=100)
    parser.add_argument("--read-days", type=int, default=30,
                        help="days of archived features (all symbols) to read one symbol from; 0: skip")
    args = parser.parse_args()
    symbols = [f"S{i:03d}USDT" for i in range(args.symbols)]
    rng = np.random.default_rng(12)
    with tempfile.TemporaryDirectory(prefix="acts-archive-bench-") as tmp:
        data = Path(tmp) / "mongo"
        server = start_embedded_mongo(data, log_path=Path(tmp) / "secantusd.log")
        try:
            uri = mongo_uri_of(server)
            store = MongoStore.connect(uri, "bench", timeout_ms=60_000)
            store.record_tracked(symbols, datetime(DAY.year, DAY.month, DAY.day, tzinfo=UTC))
            empty_bytes = folder_bytes(data)
            seed_s = seed(store, symbols, args.minutes, args.levels, rng)
            stats = store.database.command("collStats", ORDER_BOOK_SNAPSHOTS)
            disk_bytes = folder_bytes(data) - empty_bytes

            small_seed_s = seed_small(store, symbols, args.minutes, rng)
            archive = Archive(str(Path(tmp) / "archive"))
            archived: dict[str, tuple[float, float, float]] = {}  # collection -> wall, server CPU, own CPU
            for name in ARCHIVED_COLLECTIONS:
                server0, client0 = cpu_seconds(server.process.pid), time.process_time()
                began = time.perf_counter()
                manifest = archive.archive_day(store, DAY, collections=[name])
                archived[name] = (time.perf_counter() - began, cpu_seconds(server.process.pid) - server0,
                                  time.process_time() - client0)
                assert manifest.files[name].rows == args.symbols * args.minutes
            entry = manifest.files[ORDER_BOOK_SNAPSHOTS]

            began = time.perf_counter()
            frame = pd.read_parquet(archive.url(entry.path))
            read_all_s = time.perf_counter() - began
            assert len(frame) == entry.rows == args.symbols * args.minutes
            del frame
            # read.snapshots of one symbol's day: all of it comes from the archive once MongoDB
            # no longer holds it, so delete the day from MongoDB first (what retention does).
            # Retention of the day (what `mongo_retention` does once the day is past
            # ACTS_SNAPSHOT_RETENTION_DAYS): before the count of writes was trusted it read the day's keys first.
            server0, began = cpu_seconds(server.process.pid), time.perf_counter()
            assert len(mongo_keys(store, ORDER_BOOK_SNAPSHOTS, DAY)) == entry.rows
            keys_s, keys_server = time.perf_counter() - began, cpu_seconds(server.process.pid) - server0
            server0, began = cpu_seconds(server.process.pid), time.perf_counter()
            assert delete_archived_day(store, archive, ORDER_BOOK_SNAPSHOTS, DAY).deleted == entry.rows
            delete_s, delete_server = time.perf_counter() - began, cpu_seconds(server.process.pid) - server0
            for name in (ORDER_BOOK_FEATURES, KLINES_1M):  # the month below starts from an empty MongoDB
                store.collection(name).delete_many({})
            start = datetime(DAY.year, DAY.month, DAY.day, tzinfo=UTC)
            began = time.perf_counter()
            one = read.snapshots(symbols[7], start, start + timedelta(days=1), mongo_uri=uri, database="bench",
                                 archive_dir=archive.root)
            read_one_s = time.perf_counter() - began
            assert len(one) == args.minutes and one["bids"].iloc[0].shape == (args.levels, 2)
            month = read_features_month(store, uri, Path(tmp) / "features_archive", symbols, args.read_days,
                                        rng) if args.read_days else None
        finally:
            server.stop()

    mb = 1e6
    day = 1440 / args.minutes
    print(f"one day of order_book_snapshots: {args.symbols} symbols x {args.minutes} minutes x "
          f"{args.levels} levels per side = {entry.rows:,} documents")
    print(f"| figure | measured ({args.minutes} minutes) | a whole day (x {day:g}) |\n|---|---|---|")

    def row(name: str, value: float, unit: str, digits: int = 0) -> None:
        print(f"| {name} | {value:,.{digits}f} {unit} | {value * day:,.{digits}f} {unit} |")

    row("MongoDB collStats size (BSON of the documents)", stats.get("size", 0) / mb, "MB")
    row("MongoDB collStats storageSize", stats.get("storageSize", 0) / mb, "MB")
    row("MongoDB collStats totalIndexSize", stats.get("totalIndexSize", 0) / mb, "MB", 1)
    row("embedded server's storage folder growth", disk_bytes / mb, "MB")
    row("Parquet zstd file", entry.bytes / mb, "MB", 1)
    print(f"| BSON size / Parquet size | {stats.get('size', 0) / max(entry.bytes, 1):.1f} x | |")
    row("seconds to seed MongoDB (not the archive)", seed_s, "s")
    row(f"seconds to seed {ORDER_BOOK_FEATURES} and {KLINES_1M} (not the archive)", small_seed_s, "s")
    for name, (wall, server_cpu, own_cpu) in archived.items():
        row(f"seconds to archive {name} (read MongoDB, write, verify)", wall, "s", 1)
        row("  the server's CPU meanwhile (its process)", server_cpu, "s", 1)
        row("  the archive's own CPU (this process: decode, convert, compress, verify)", own_cpu, "s", 1)
    total = sum(wall for wall, _, _ in archived.values())
    row("seconds to archive the day, all three collections (`daily_archive`)", total, "s", 1)
    row("seconds of retention deleting the day's snapshots (verify, delete)", delete_s, "s", 1)
    row("  the server's CPU meanwhile", delete_server, "s", 1)
    row("seconds to read the day's keys (retention did, before the count of writes was trusted)", keys_s, "s", 1)
    row("  the server's CPU meanwhile", keys_server, "s", 1)
    row("seconds to read the day back (pandas.read_parquet)", read_all_s, "s", 1)
    print(f"| seconds of read.snapshots, one symbol's {args.minutes} minutes from the archive | {read_one_s:.2f} s | |")
    if month:
        print(f"\nread.features of one symbol over {args.read_days} archived days ({args.symbols} symbols a day "
              f"in each file):\n| source | seconds |\n|---|---|")
        print(f"| the archive alone (MongoDB no longer holds the days) | {month['archive']:.2f} s |")
        print(f"| MongoDB holds the days too (kept forever, the default), archive current: read from it alone "
              f"| {month['current']:.2f} s |")
        print(f"| MongoDB holds the days too and wrote each after its archive: both read, MongoDB wins "
              f"| {month['both']:.2f} s |")
        print(f"| ratio, written since / current | {month['both'] / month['current']:.1f} x |")
        print(f"(archiving the {args.read_days} days with MongoDB's symbol: {month['archive_days']:.1f} s, not a read)")


if __name__ == "__main__":
    main()
