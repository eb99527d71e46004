"""The research archive against the real embedded database server: a day archived is exactly the
day's documents (read back as they are by pandas, polars and DuckDB), archived again it is
replaced, never duplicated; retention deletes from MongoDB only the days whose files verify and
that MongoDB has not written since (a replaced document included), and never a day whose archive
was left partial; the rows retention deleted survive a later archive of
the same day."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta

import duckdb
import numpy as np
import pandas as pd
import polars as pl
import pyarrow.parquet as pq
import pytest

from acts_pipeline.storage import MongoStore
from acts_pipeline.storage.archive import (
    Archive,
    ArchivedFile,
    ArchiveError,
    DayManifest,
    apply_retention,
    delete_archived_day,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

DAY = date(2026, 11, 20)
MIDNIGHT = datetime(2026, 11, 20, tzinfo=UTC)
SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
SNAPSHOTS, FEATURES, KLINES = "order_book_snapshots", "order_book_features", "klines_1m"


def book(symbol: str, minute: datetime, shift: float = 0.0) -> dict:
    i = SYMBOLS.index(symbol) if symbol in SYMBOLS else 9
    levels = 3 + i
    return {"symbol": symbol, "minute": minute, "captured_at": minute + timedelta(seconds=60.2),
            "requested_at": minute + timedelta(seconds=60.1), "last_update_id": 1000 + minute.minute,
            "depth_limit": 100, "bids": [[100.0 + i + shift - k, 1.0 + k] for k in range(levels)],
            "asks": [[101.0 + i + shift + k, 2.0 + k] for k in range(levels)], "source": "stream",
            "event_time": minute + timedelta(seconds=59.9)}


def minutes_of(day: date, count: int = 30) -> list[datetime]:
    """`count` minutes spread over the day, its first and last included."""
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return [start + timedelta(minutes=m) for m in np.linspace(0, 1439, count).astype(int).tolist()]


def seed_day(store: MongoStore, day: date, symbols=SYMBOLS, shift: float = 0.0) -> int:
    minutes = minutes_of(day)
    snapshots = [book(s, m, shift) for s in symbols for m in minutes]
    store.upsert(SNAPSHOTS, snapshots)
    store.upsert(FEATURES, [{"symbol": d["symbol"], "minute": d["minute"], "captured_at": d["captured_at"],
                             "mid_price": (d["bids"][0][0] + d["asks"][0][0]) / 2, "bias_5": None,
                             "bid_levels": len(d["bids"]), "crossed": False} for d in snapshots])
    store.upsert(KLINES, [{"symbol": d["symbol"], "minute": d["minute"], "open": 1.0, "high": 2.0, "low": 0.5,
                           "close": 1.5, "volume": 10.0, "quote_volume": 15.0, "trades": 7,
                           "taker_buy_base_volume": 4.0, "taker_buy_quote_volume": 6.0} for d in snapshots])
    store.record_tracked(symbols, minutes[0])
    return len(snapshots)


@pytest.fixture
def store(mongo_uri, mongo_db_name):
    return MongoStore.connect(mongo_uri, mongo_db_name)


@pytest.fixture
def archive(tmp_path):
    return Archive(str(tmp_path / "archive"))


def count(store: MongoStore, name: str, day: date) -> int:
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return store.collection(name).count_documents({"minute": {"$gte": start, "$lt": start + timedelta(days=1)}})


def test_a_day_is_archived_exactly_and_reads_as_it_is_in_pandas_polars_and_duckdb(store, archive):
    rows = seed_day(store, DAY)
    seed_day(store, DAY - timedelta(days=1))  # the neighbours stay out of the day's file
    seed_day(store, DAY + timedelta(days=1))
    manifest = archive.archive_day(store, DAY)
    for name in (SNAPSHOTS, FEATURES, KLINES):
        entry = manifest.files[name]
        assert (entry.rows, entry.status, entry.symbols) == (rows, "written", tuple(SYMBOLS))
        assert entry.path == f"{name}/date=2026-11-20/part-0.parquet"
        assert archive.verify(entry) == []
    assert archive.manifest(DAY) == manifest

    root = archive.root
    frame = pd.read_parquet(f"{root}/{SNAPSHOTS}")  # the collection folder, hive-style
    assert len(frame) == rows and set(frame["date"].astype(str)) == {"2026-11-20"}
    first = frame.iloc[0]
    assert (first["symbol"], first["minute"]) == ("BTCUSDT", pd.Timestamp(MIDNIGHT))
    stored = book("BTCUSDT", MIDNIGHT)
    assert np.array_equal(np.column_stack([first["bid_prices"], first["bid_qtys"]]), np.array(stored["bids"]))
    assert list(frame["symbol"]) == sorted(frame["symbol"])  # sorted by symbol, then minute

    polars_frame = pl.scan_parquet(f"{root}/{FEATURES}/**/*.parquet", hive_partitioning=True).collect()
    assert polars_frame.height == rows and polars_frame.schema["minute"] == pl.Datetime("ms", "UTC")
    assert polars_frame["bias_5"].null_count() == rows

    best = duckdb.sql(f"SELECT symbol, min(bid_prices[1]) AS best_bid, count(*) AS n, min(date) AS day "
                      f"FROM read_parquet('{root}/{SNAPSHOTS}/*/*.parquet', hive_partitioning = true) "
                      "GROUP BY symbol ORDER BY symbol").fetchall()
    assert [(s, b, n, str(d)) for s, b, n, d in best] == [
        ("BTCUSDT", 100.0, 30, "2026-11-20"), ("ETHUSDT", 101.0, 30, "2026-11-20"), ("SOLUSDT", 102.0, 30, "2026-11-20")]
    klines = duckdb.sql(f"SELECT sum(trades) FROM read_parquet('{root}/{KLINES}/*/*.parquet')").fetchall()[0][0]
    assert klines == 7 * rows


def test_archiving_a_day_again_replaces_its_files_never_duplicating(store, archive):
    rows = seed_day(store, DAY)
    first = archive.archive_day(store, DAY)
    again = archive.archive_day(store, DAY)
    assert again.files[SNAPSHOTS].sha256 == first.files[SNAPSHOTS].sha256  # same documents, same bytes
    seed_day(store, DAY, shift=5.0)  # the day's books replaced (a backfill) ...
    store.upsert(SNAPSHOTS, [book("ADAUSDT", MIDNIGHT + timedelta(hours=3))])  # ... and one more symbol
    replaced = archive.archive_day(store, DAY, collections=[SNAPSHOTS])
    assert replaced.files[SNAPSHOTS].rows == rows + 1
    frame = pd.read_parquet(archive.url(replaced.files[SNAPSHOTS].path))
    assert len(frame) == rows + 1 and not frame.duplicated(["symbol", "minute"]).any()
    assert frame.loc[frame["symbol"] == "BTCUSDT", "bid_prices"].iloc[0][0] == 105.0
    assert replaced.files[FEATURES] == first.files[FEATURES]  # the other collections' entries are kept
    leftovers = [p for p in archive.fs.find(archive.path) if p.rsplit("/", 1)[-1].startswith(".")]
    assert leftovers == []


def test_symbols_the_registry_does_not_know_and_books_of_any_shape_are_archived(store, archive):
    """The archive asks the registry's symbols one by one and the ranges between them through the
    index: symbols written without registering (before the first, between two, after the last) are
    found too. Levels come as raw BSON decoded to arrays; a book whose levels are not pairs of
    doubles (integers, an empty side) is decoded by the driver instead, and archived the same."""
    rows = seed_day(store, DAY)  # BTCUSDT, ETHUSDT, SOLUSDT registered
    strangers = ["AAAUSDT", "DOGEUSDT", "ZZZUSDT"]
    at = MIDNIGHT + timedelta(hours=2)
    odd = {**book("DOGEUSDT", at), "bids": [[100, 2], [99, 3]], "asks": []}
    store.upsert(SNAPSHOTS, [book("AAAUSDT", at), odd, book("ZZZUSDT", at)])
    assert not set(strangers) & set(store.tracked_since())
    entry = archive.archive_day(store, DAY, collections=[SNAPSHOTS]).files[SNAPSHOTS]
    assert entry.rows == rows + 3 and entry.symbols == tuple(sorted([*SYMBOLS, *strangers]))
    frame = pd.read_parquet(archive.url(entry.path)).set_index(["symbol", "minute"])
    doge = frame.loc[("DOGEUSDT", pd.Timestamp(at))]
    assert list(doge["bid_prices"]) == [100.0, 99.0] and list(doge["bid_qtys"]) == [2.0, 3.0]
    assert len(doge["ask_prices"]) == 0
    zzz = frame.loc[("ZZZUSDT", pd.Timestamp(at))]
    assert np.array_equal(np.column_stack([zzz["ask_prices"], zzz["ask_qtys"]]), np.array(book("ZZZUSDT", at)["asks"]))


def test_retention_deletes_only_days_whose_archive_verifies(store, archive):
    days = [DAY - timedelta(days=n) for n in range(6, 0, -1)]  # 11-14 .. 11-19
    for day in days:
        seed_day(store, day)
    archived, unarchived, written_after, rewritten, truncated, recent = days
    for day in (archived, written_after, rewritten, truncated, recent):
        archive.archive_day(store, day, collections=[SNAPSHOTS])
    store.upsert(SNAPSHOTS, [book("ADAUSDT", datetime(2026, 11, 16, 5, tzinfo=UTC))])  # a new cell after its archive
    first = minutes_of(rewritten)[0]
    store.upsert(SNAPSHOTS, [book("BTCUSDT", first, shift=7.0)])  # an archived cell replaced after the archive
    path = archive.full_path(archive.manifest(truncated).files[SNAPSHOTS].path)
    with archive.fs.open(path, "rb") as f:
        data = f.read()
    with archive.fs.open(path, "wb") as f:
        f.write(data[:-100])

    outcomes = apply_retention(store, archive, SNAPSHOTS, keep_days=2, today=DAY + timedelta(days=1))  # keep 11-19, 11-20
    by_day = {o.day: o for o in outcomes}
    assert set(by_day) == {"2026-11-14", "2026-11-15", "2026-11-16", "2026-11-17", "2026-11-18"}
    assert by_day["2026-11-14"].deleted == 90 and by_day["2026-11-14"].reason == "archived and verified"
    assert by_day["2026-11-15"].reason == "not archived"
    assert "written after it was archived" in by_day["2026-11-16"].reason and by_day["2026-11-16"].kept == 91
    # The replaced book has a key the archive holds: only the count of writes tells it changed.
    assert "written after it was archived" in by_day["2026-11-17"].reason and by_day["2026-11-17"].kept == 90
    assert "does not verify" in by_day["2026-11-18"].reason
    assert [count(store, SNAPSHOTS, d) for d in days] == [0, 90, 91, 90, 90, 90]
    assert count(store, FEATURES, archived) == 90  # other collections untouched
    assert apply_retention(store, archive, FEATURES, keep_days=None, today=DAY) == []  # forever

    # Archived again, the rewritten day holds the new book, and retention deletes it.
    archive.archive_day(store, rewritten, collections=[SNAPSHOTS])
    [outcome] = [o for o in apply_retention(store, archive, SNAPSHOTS, keep_days=2, today=DAY + timedelta(days=1))
                 if o.day == "2026-11-17"]
    assert outcome.deleted == 90
    table = pq.read_table(archive.url(archive.relative_path(SNAPSHOTS, rewritten)),
                          filters=[("symbol", "==", "BTCUSDT"), ("minute", "==", pd.Timestamp(first))])
    assert table.column("bid_prices").to_pylist()[0][0] == 107.0


def test_a_manifest_from_before_the_count_of_writes_is_judged_by_its_keys(store, archive):
    """Manifests written before `mongo_version` existed (None) keep the former rule: deleted when
    the file holds every key MongoDB has."""
    day = DAY - timedelta(days=3)
    seed_day(store, day)
    manifest = archive.archive_day(store, day, collections=[SNAPSHOTS])
    entry = manifest.files[SNAPSHOTS]
    legacy = DayManifest(day=manifest.day, archived_at=manifest.archived_at,
                         files={SNAPSHOTS: ArchivedFile(**{**asdict(entry), "mongo_version": None})})
    archive._write_atomically(archive._manifest_path(day), legacy.to_json().encode())
    assert archive.current_days(store, SNAPSHOTS, [day]) == set()  # never trusted to stand for MongoDB
    assert delete_archived_day(store, archive, SNAPSHOTS, day).deleted == 90


def test_a_partial_archive_never_leads_to_deletion(store, archive, monkeypatch):
    seed_day(store, DAY)

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(type(archive.fs), "mv", crash)
    with pytest.raises(OSError, match="disk full"):
        archive.archive_day(store, DAY)
    monkeypatch.undo()
    assert archive.manifest(DAY) is None
    assert [p for p in archive.fs.find(archive.path) if p.endswith(".tmp")] == []
    assert delete_archived_day(store, archive, SNAPSHOTS, DAY).reason == "not archived"

    # a file written but failing its read-back: the run fails, the manifest is not written
    monkeypatch.setattr(Archive, "sha256", lambda self, relative: "0" * 64)
    with pytest.raises(ArchiveError, match="did not verify"):
        archive.archive_day(store, DAY)
    monkeypatch.undo()
    assert archive.manifest(DAY) is None
    assert count(store, SNAPSHOTS, DAY) == 90


def test_rows_retention_deleted_survive_a_later_archive_of_the_day(store, archive):
    rows = seed_day(store, DAY)
    archive.archive_day(store, DAY)
    assert delete_archived_day(store, archive, KLINES, DAY).deleted == rows
    kept = archive.archive_day(store, DAY, collections=[KLINES]).files[KLINES]
    assert (kept.status, kept.rows) == ("kept", rows)  # MongoDB holds none of it: the file stays
    # a backfill stores one symbol's klines again, changed: the day is MongoDB's rows + the archived rest
    store.upsert(KLINES, [{"symbol": "ETHUSDT", "minute": m, "open": 9.0, "trades": 1} for m in minutes_of(DAY)])
    merged = archive.archive_day(store, DAY, collections=[KLINES]).files[KLINES]
    assert (merged.status, merged.rows, merged.carried_rows) == ("written", rows, rows - 30)
    frame = pd.read_parquet(archive.url(merged.path))
    assert len(frame) == rows and not frame.duplicated(["symbol", "minute"]).any()
    assert set(frame.loc[frame["symbol"] == "ETHUSDT", "open"]) == {9.0}
    assert set(frame.loc[frame["symbol"] != "ETHUSDT", "open"]) == {1.0}
    assert list(frame["symbol"]) == sorted(frame["symbol"])


def test_the_documented_examples_run(store, mongo_uri, mongo_db_name, tmp_path, monkeypatch, capsys):
    """docs/archive.md: every Python block runs as written, from a project folder whose archive
    holds 2026-11-30, with the connection in the environment."""
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "archive.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) == 4
    day = date(2026, 11, 30)
    seed_day(store, day, symbols=["BTCUSDT", "ETHUSDT"])
    noon = datetime(2026, 11, 30, 12, tzinfo=UTC)
    store.upsert(SNAPSHOTS, [book(s, noon + timedelta(minutes=m)) for s in ("BTCUSDT", "ETHUSDT") for m in range(60)])
    store.upsert(FEATURES, [{"symbol": "BTCUSDT", "minute": noon, "mid_price": 100.5, "spread_bps": 99.5}])
    monkeypatch.chdir(tmp_path)
    Archive(".acts/archive").archive_day(store, day)
    monkeypatch.setenv("ACTS_MONGO_URI", mongo_uri)
    monkeypatch.setenv("ACTS_MONGO_DB", mongo_db_name)
    monkeypatch.delenv("ACTS_ARCHIVE_DIR", raising=False)  # the default: .acts/archive here
    for block in blocks:
        exec(compile(block, "docs/archive.md", "exec"), {})
    printed = capsys.readouterr().out
    assert "BTCUSDT" in printed and "best_bid" in printed and "mean_spread" in printed


def test_a_day_not_written_since_its_archive_is_deleted_without_reading_its_keys(store, archive, monkeypatch):
    rows = seed_day(store, DAY)
    archive.archive_day(store, DAY, collections=[SNAPSHOTS])
    import acts_pipeline.storage.archive as archive_module

    def no_keys(*args):
        raise AssertionError("the day's keys were read")

    monkeypatch.setattr(archive_module, "mongo_keys", no_keys)
    outcome = delete_archived_day(store, archive, SNAPSHOTS, DAY)
    assert (outcome.deleted, outcome.kept, outcome.reason) == (rows, 0, "archived and verified")
    assert count(store, SNAPSHOTS, DAY) == 0


def test_a_write_racing_the_deletion_fails_retention_loudly(store, archive, monkeypatch):
    seed_day(store, DAY)
    archive.archive_day(store, DAY, collections=[SNAPSHOTS])
    forget = MongoStore.forget_seen

    def write_meanwhile(self, name, start, end):  # a backfill's write lands while the day is deleted
        monkeypatch.setattr(MongoStore, "forget_seen", forget)
        self.upsert(SNAPSHOTS, [book("ADAUSDT", MIDNIGHT + timedelta(hours=5))])
        return forget(self, name, start, end)

    monkeypatch.setattr(MongoStore, "forget_seen", write_meanwhile)
    with pytest.raises(ArchiveError, match="a write of the day landed while retention deleted it"):
        delete_archived_day(store, archive, SNAPSHOTS, DAY)
