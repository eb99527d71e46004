"""Reading ACTS data in Python: snapshots, features and klines as pandas DataFrames.

    from acts_pipeline import read

    frame = read.features("BTCUSDT", "2026-11-01", "2026-12-01")
    books = read.snapshots(["BTCUSDT", "ETHUSDT"], "2026-11-30T12:00Z", "2026-11-30T13:00Z")
    books.loc[0, "bids"]          # (levels, 2) float64 array of [price, qty], best bid first

Each function returns one row per (symbol, minute) with `minute` in `[start, end)`, sorted by
symbol then minute, whether the minute is still in MongoDB or only in the daily Parquet archive
(`acts_pipeline.storage.archive`): a range across the two gives one frame without duplicates
(where both hold a minute, MongoDB's document wins: it is the newer). A day whose archived file
MongoDB has not written since it was archived (`storage.written_days`) is read from the archive
alone. The columns are the documents' fields (README, "Where the data lands"); times are
`datetime64[ms, UTC]`; snapshots carry `bids` and `asks` as (levels, 2) arrays, as MongoDB
holds them.

`start` and `end` are timezone-aware datetimes (or pandas Timestamps), ISO strings with an offset
(`2026-11-30T12:00Z`), or whole UTC days (`datetime.date`, `"2026-11-30"`: midnight UTC). A naive
datetime, an unparsable string, or a start after the end is refused; so is a symbol that is
neither in the symbol registry nor in any archived day. Both raise `ReadRequestError` (a
`ValueError`) naming the problem.

The connection comes from the arguments or, when they are not given, from the environment:
`ACTS_MONGO_URI` and `ACTS_MONGO_DB` (MongoDB; without a URI only the archive is read) and
`ACTS_ARCHIVE_DIR` (the archive root, any fsspec URL).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from acts_pipeline import settings
from acts_pipeline.core.errors import ReadRequestError
from acts_pipeline.storage.archive import Archive, day_bounds, level_pairs
from acts_pipeline.storage.client import MongoStore
from acts_pipeline.storage.collections import KLINES_1M, ORDER_BOOK_FEATURES, ORDER_BOOK_SNAPSHOTS, SYMBOL_REGISTRY

Moment = datetime | date | str | pd.Timestamp
_SYMBOL_RE = re.compile(r"^[A-Z0-9]{2,20}$")
TIME_COLUMNS = ("minute", "captured_at", "requested_at", "event_time")
TIME_DTYPE = "datetime64[ms, UTC]"
READ_THREADS = 4


def snapshots(symbols: str | Iterable[str], start: Moment, end: Moment, **connection: Any) -> pd.DataFrame:
    """Order-book snapshots: `symbol`, `minute`, `captured_at`, `requested_at`, `last_update_id`,
    `depth_limit`, `source`, `event_time` (stream books), and `bids`/`asks` as (levels, 2) float64
    arrays of [price, qty], best level first. `connection`: `mongo_uri`, `database`, `archive_dir`."""
    return _read(ORDER_BOOK_SNAPSHOTS, symbols, start, end, **connection)


def features(symbols: str | Iterable[str], start: Moment, end: Moment, **connection: Any) -> pd.DataFrame:
    """Order-book features (mid price, spread, biases, notional bands...): one row per cell."""
    return _read(ORDER_BOOK_FEATURES, symbols, start, end, **connection)


def klines(symbols: str | Iterable[str], start: Moment, end: Moment, **connection: Any) -> pd.DataFrame:
    """1-minute klines (open, high, low, close, volumes, trades), keyed by the candle's open."""
    return _read(KLINES_1M, symbols, start, end, **connection)


# --- arguments ------------------------------------------------------------------------------------


def parse_moment(value: Moment, name: str) -> datetime:
    """`value` as an aware UTC datetime; `ReadRequestError` naming `name` if it is not one."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            try:
                return parse_moment(date.fromisoformat(text), name)
            except ValueError:
                raise ReadRequestError(f"{name} {value!r} is not a date") from None
        try:
            value = pd.Timestamp(text)
        except (ValueError, TypeError):
            raise ReadRequestError(f"{name} {value!r} is not a time: give an ISO time with its offset, "
                                   "e.g. 2026-11-30T12:00Z, or a UTC day, 2026-11-30") from None
    if isinstance(value, pd.Timestamp):
        if value is pd.NaT:
            raise ReadRequestError(f"{name} is NaT, not a time")
        value = value.to_pydatetime()
    if not isinstance(value, datetime):
        raise ReadRequestError(f"{name} must be a datetime, a date or an ISO string, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ReadRequestError(f"{name} {value.isoformat()} has no timezone: ACTS times are UTC, "
                               "give e.g. datetime(..., tzinfo=UTC) or '...Z'")
    return value.astimezone(UTC)


def parse_symbols(symbols: str | Iterable[str]) -> list[str]:
    if isinstance(symbols, str):
        symbols = [symbols]
    try:
        names = list(dict.fromkeys(str(s).strip().upper() for s in symbols))
    except TypeError:
        raise ReadRequestError(f"symbols must be a symbol or a list of symbols, got {symbols!r}") from None
    if not names:
        raise ReadRequestError("no symbols given")
    bad = [s for s in names if not _SYMBOL_RE.match(s)]
    if bad:
        raise ReadRequestError(f"malformed symbols: {', '.join(map(repr, bad))}")
    return names


def _sources(mongo_uri: str | None, database: str | None, archive_dir: str | None,
             environ: Mapping[str, str] | None) -> tuple[MongoStore | None, Archive]:
    env = os.environ if environ is None else environ
    uri = mongo_uri if mongo_uri is not None else env.get("ACTS_MONGO_URI", "").strip()
    store = None
    if uri:
        name = settings.parse_mongo_db(database if database is not None else env.get("ACTS_MONGO_DB"))
        store = MongoStore.connect(settings.parse_mongo_uri(uri), name)
    root = settings.parse_archive_dir(archive_dir) if archive_dir is not None else settings.archive_dir(env)
    return store, Archive(root)


def _check_known(symbols: list[str], store: MongoStore | None, archive: Archive) -> None:
    unknown = set(symbols)
    if store is not None:
        with_registry = store.database[SYMBOL_REGISTRY].find({"symbol": {"$in": sorted(unknown)}}, {"symbol": True})
        unknown -= {d["symbol"] for d in with_registry}
    if unknown:
        for day in archive.manifest_days():
            manifest = archive.manifest(day)
            for entry in manifest.files.values() if manifest else ():
                unknown -= set(entry.symbols)
            if not unknown:
                break
    if unknown:
        where = "the symbol registry" if store is not None else "MongoDB (not given: set ACTS_MONGO_URI)"
        raise ReadRequestError(f"unknown symbols {', '.join(sorted(unknown))}: not in {where} "
                               f"and never archived under {archive.root}")


# --- reading ---------------------------------------------------------------------------------------


def _read(collection: str, symbols: str | Iterable[str], start: Moment, end: Moment, *,
          mongo_uri: str | None = None, database: str | None = None, archive_dir: str | None = None,
          environ: Mapping[str, str] | None = None) -> pd.DataFrame:
    names = parse_symbols(symbols)
    start_at, end_at = parse_moment(start, "start"), parse_moment(end, "end")
    if start_at > end_at:
        raise ReadRequestError(f"start {start_at.isoformat()} is after end {end_at.isoformat()}")
    store, archive = _sources(mongo_uri, database, archive_dir, environ)
    _check_known(names, store, archive)
    frames = [_from_archive(archive, collection, names, start_at, end_at)]
    if store is not None:
        # Days whose archived file is all MongoDB holds of them are not read from MongoDB again.
        current = archive.current_days(store, collection, _days(start_at, end_at))
        for first, stop in _spans_without(current, start_at, end_at):
            frames.append(_from_mongo(store, collection, names, first, stop))
    frames = [f for f in frames if len(f)]
    if not frames:
        return _empty(collection)
    frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    frame = frame.drop_duplicates(subset=["symbol", "minute"], keep="last")
    return frame.sort_values(["symbol", "minute"], kind="stable").reset_index(drop=True)


def _days(start: datetime, end: datetime) -> list[date]:
    if start >= end:
        return []
    day, last = start.date(), (end - timedelta(milliseconds=1)).date()
    days = []
    while day <= last:
        days.append(day)
        day += timedelta(days=1)
    return days


def _spans_without(days: set[date], start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """`[start, end)` less the whole UTC `days`, as contiguous spans, oldest first."""
    spans: list[tuple[datetime, datetime]] = []
    begin = start
    for day in sorted(days):
        day_start, day_end = day_bounds(day)
        if day_start > begin:
            spans.append((begin, min(day_start, end)))
        begin = max(begin, day_end)
    if begin < end:
        spans.append((begin, end))
    return [(a, b) for a, b in spans if a < b]


def _from_archive(archive: Archive, collection: str, symbols: list[str], start: datetime,
                  end: datetime) -> pd.DataFrame:
    def day_rows(day: date) -> pa.Table | None:
        path = archive.full_path(archive.relative_path(collection, day))
        if not archive.fs.exists(path):
            return None
        filters = [("symbol", "in", symbols)]
        day_start, day_end = day_bounds(day)
        if start > day_start:
            filters.append(("minute", ">=", pd.Timestamp(start)))
        if end < day_end:
            filters.append(("minute", "<", pd.Timestamp(end)))
        with archive.fs.open(path, "rb") as f:
            return pq.read_table(f, filters=filters)

    # Days are read in parallel: pyarrow decodes without the GIL, an object store answers slowly.
    with ThreadPoolExecutor(max_workers=READ_THREADS) as pool:
        tables = [t for t in pool.map(day_rows, _days(start, end)) if t is not None]
    if not tables:
        return pd.DataFrame()
    table = pa.concat_tables(tables, promote_options="permissive")
    frame = table.to_pandas()
    if collection == ORDER_BOOK_SNAPSHOTS:
        frame["bids"] = [level_pairs(p, q) for p, q in zip(frame.pop("bid_prices"), frame.pop("bid_qtys"), strict=True)]
        frame["asks"] = [level_pairs(p, q) for p, q in zip(frame.pop("ask_prices"), frame.pop("ask_qtys"), strict=True)]
    return _normalized(frame)


def _from_mongo(store: MongoStore, collection: str, symbols: list[str], start: datetime,
                end: datetime) -> pd.DataFrame:
    query = {"symbol": {"$in": symbols}, "minute": {"$gte": start, "$lt": end}}
    documents = list(store.database[collection].find(query))  # no projection: see storage/archive.py
    for d in documents:
        d.pop("_id", None)
    if not documents:
        return pd.DataFrame()
    if collection == ORDER_BOOK_SNAPSHOTS:
        for d in documents:
            d["bids"] = np.asarray(d.get("bids") or (), dtype=np.float64).reshape(-1, 2)
            d["asks"] = np.asarray(d.get("asks") or (), dtype=np.float64).reshape(-1, 2)
            d.setdefault("source", "rest")
    frame = pd.DataFrame(documents)
    return _normalized(frame)


def _normalized(frame: pd.DataFrame) -> pd.DataFrame:
    for column in TIME_COLUMNS:
        if column in frame.columns:
            frame[column] = pd.to_datetime(frame[column], utc=True).astype(TIME_DTYPE)
    return frame


def _empty(collection: str) -> pd.DataFrame:
    columns = ["symbol", "minute"]
    if collection == ORDER_BOOK_SNAPSHOTS:
        columns += ["captured_at", "requested_at", "last_update_id", "depth_limit", "source", "event_time",
                    "bids", "asks"]
    frame = pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    return _normalized(frame)


__all__ = ["ReadRequestError", "features", "klines", "parse_moment", "parse_symbols", "snapshots"]
