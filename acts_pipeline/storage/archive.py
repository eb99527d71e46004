"""The research archive: every closed UTC day of snapshots, features and klines as Parquet files.

Layout (hive-style: a `date=` folder per UTC day, one file per collection and day), under a root
that is a local folder or any fsspec URL (`s3://bucket/prefix`, `memory://acts`)::

    <root>/order_book_snapshots/date=2026-11-30/part-0.parquet
    <root>/order_book_features/date=2026-11-30/part-0.parquet
    <root>/klines_1m/date=2026-11-30/part-0.parquet
    <root>/_manifests/date=2026-11-30.json

- One row per (symbol, minute) document of the collection whose `minute` falls in the day; the
  columns are the document's fields (no `_id`; no `date` column: readers take it from the folder
  name). Rows are sorted by `symbol`, then `minute`; a snapshot row group holds one symbol, a
  features or klines row group 8,192 rows (about 6 symbols a day), so a filter on `symbol` reads
  only that symbol's row groups.
- Times (`minute`, `captured_at`, `requested_at`, `event_time`) are `timestamp[ms, UTC]`, the
  precision MongoDB stores; a value that could not be computed is null, as in MongoDB.
- Snapshots keep their levels as four list columns of doubles, best level first, index i of a
  side's two lists being one level: `bid_prices`, `bid_qtys`, `ask_prices`, `ask_qtys` (MongoDB
  holds `bids`/`asks` as `[price, qty]` pairs). Flat lists read as a numpy array per cell in
  pandas, `List(Float64)` in polars and `DOUBLE[]` in DuckDB (`bid_prices[1]` is the best bid),
  and compress better than pairs (prices beside prices).
- Compression zstd. Files whose name starts with `.` or `_` are not data: pyarrow, pandas,
  polars and DuckDB skip them when they read `<root>/<collection>` (or glob `*/*.parquet`).
- `_manifests/date=<day>.json` holds, per collection, what was written and verified: its path
  (relative to the root), rows, bytes, the sha256 of the file's bytes, its symbols. It is written
  only after every file of the run verified; MongoDB's retention trusts nothing else
  (`delete_archived_day`).

Writing is atomic (a `.`-named temporary file, moved over the final name once complete) and
idempotent: archiving a day again replaces its file with what MongoDB holds then, never
duplicating a row. Rows the archive holds and MongoDB no longer does (retention deleted them)
are kept: a day whose documents are gone from MongoDB keeps its file as it is, and a day MongoDB
holds in part (a backfill after retention) is written as MongoDB's rows plus the archived rows it
lacks (appended as row groups of their own, sorted within each).

No Dagster here: `orchestration/archive_assets.py` runs this every day and `acts_pipeline.read`
reads it back.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import uuid
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from acts_pipeline.storage.bson_levels import find_decoded
from acts_pipeline.storage.client import MongoStore, StorageError, _reported
from acts_pipeline.storage.collections import KLINES_1M, ORDER_BOOK_FEATURES, ORDER_BOOK_SNAPSHOTS

#: The collections archived, in the order a day is written.
ARCHIVED_COLLECTIONS = (ORDER_BOOK_SNAPSHOTS, ORDER_BOOK_FEATURES, KLINES_1M)
FILE_NAME = "part-0.parquet"
MANIFESTS = "_manifests"
#: Bumped if the layout above ever changes; written into every manifest.
LAYOUT_VERSION = 1
COMPRESSION = "zstd"
TIMESTAMP = pa.timestamp("ms", tz="UTC")
TIME_FIELDS = ("minute", "captured_at", "requested_at", "event_time")
LEVEL_COLUMNS = ("bid_prices", "bid_qtys", "ask_prices", "ask_qtys")
SNAPSHOT_SCHEMA = pa.schema([
    ("symbol", pa.string()),
    ("minute", TIMESTAMP),
    ("captured_at", TIMESTAMP),
    ("requested_at", TIMESTAMP),
    ("last_update_id", pa.int64()),
    ("depth_limit", pa.int64()),
    ("source", pa.string()),
    ("event_time", TIMESTAMP),
    *((name, pa.list_(pa.float64())) for name in LEVEL_COLUMNS),
])
#: Features and klines (small documents) are gathered for the whole day and written in row groups
#: of this many rows (about 6 symbols' days: a read of one symbol decodes little else); snapshots
#: are streamed, one row group per symbol.
ROW_GROUP_ROWS = 8 * 1024
HASH_CHUNK = 8 << 20


class ArchiveError(RuntimeError):
    """An archive file could not be written or does not verify; the message names the file."""


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """The day's first minute and the next day's, UTC."""
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return start, start + timedelta(days=1)


def as_day(day: date | str) -> date:
    """A `date` (a datetime's UTC date, or an ISO `2026-11-30`)."""
    if isinstance(day, datetime):
        return day.astimezone(UTC).date() if day.tzinfo else day.date()
    if isinstance(day, date):
        return day
    return date.fromisoformat(str(day))


# --- Documents -> Arrow (pure) -------------------------------------------------------------------


def _times(values: Sequence[Any]) -> pa.Array:
    return pa.array(values, type=TIMESTAMP)


def _pairs(side: Any) -> np.ndarray:
    """A side as a `(levels, 2)` float64 array: from the driver's lists of pairs or `bson_levels`'
    array (taken as is); an absent side has no level."""
    if side is None:
        return np.empty((0, 2), dtype=np.float64)
    return np.asarray(side, dtype=np.float64).reshape(-1, 2)


def _level_lists(documents: Sequence[Mapping[str, Any]], side: str) -> tuple[pa.Array, pa.Array]:
    """A side's `[price, qty]` pairs as two list arrays (prices, quantities), one list per document."""
    arrays = [_pairs(d.get(side)) for d in documents]
    offsets = np.zeros(len(arrays) + 1, dtype=np.int32)
    np.cumsum([len(a) for a in arrays], out=offsets[1:])
    flat = np.concatenate(arrays) if arrays else np.empty((0, 2))
    offsets_array = pa.array(offsets)
    return (pa.ListArray.from_arrays(offsets_array, pa.array(np.ascontiguousarray(flat[:, 0]))),
            pa.ListArray.from_arrays(offsets_array, pa.array(np.ascontiguousarray(flat[:, 1]))))


def snapshot_table(documents: Sequence[Mapping[str, Any]]) -> pa.Table:
    """`order_book_snapshots` documents as a table of `SNAPSHOT_SCHEMA` (levels as four lists).
    Snapshots stored before the recorder existed have no `source`: REST books."""
    bid_prices, bid_qtys = _level_lists(documents, "bids")
    ask_prices, ask_qtys = _level_lists(documents, "asks")
    columns = {
        "symbol": pa.array([d["symbol"] for d in documents], type=pa.string()),
        **{name: _times([d.get(name) for d in documents]) for name in ("minute", "captured_at", "requested_at")},
        "last_update_id": pa.array([d.get("last_update_id") for d in documents], type=pa.int64()),
        "depth_limit": pa.array([d.get("depth_limit") for d in documents], type=pa.int64()),
        "source": pa.array([d.get("source", "rest") for d in documents], type=pa.string()),
        "event_time": _times([d.get("event_time") for d in documents]),
        "bid_prices": bid_prices, "bid_qtys": bid_qtys, "ask_prices": ask_prices, "ask_qtys": ask_qtys,
    }
    return pa.Table.from_pydict(columns, schema=SNAPSHOT_SCHEMA)


def documents_table(documents: Sequence[Mapping[str, Any]]) -> pa.Table:
    """Flat documents (features, klines) as a table: one column per field seen in any document
    (in the order first seen, `symbol` and `minute` first), types inferred from the values, times
    as `timestamp[ms, UTC]`, a field only ever null as doubles."""
    names: dict[str, None] = {"symbol": None, "minute": None}
    for document in documents:
        names.update(dict.fromkeys(k for k in document if k != "_id"))
    columns = {}
    for name in names:
        values = [d.get(name) for d in documents]
        if name in TIME_FIELDS or any(isinstance(v, datetime) for v in values):
            array = _times(values)
        else:
            try:
                array = pa.array(values)
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                raise ArchiveError(f"field {name!r} mixes types that one Parquet column cannot hold") from None
            if pa.types.is_null(array.type):
                array = array.cast(pa.float64())
        columns[name] = array
    return pa.table(columns)


def level_pairs(prices: Any, quantities: Any) -> np.ndarray:
    """One side of an archived snapshot as the (k, 2) array of [price, qty] rows MongoDB holds."""
    if prices is None:
        return np.empty((0, 2), dtype=np.float64)
    return np.column_stack([np.asarray(prices, dtype=np.float64), np.asarray(quantities, dtype=np.float64)])


# --- Manifests ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ArchivedFile:
    """One collection's file of one day, as written and verified."""

    collection: str
    day: str
    #: Relative to the archive root (`order_book_snapshots/date=2026-11-30/part-0.parquet`); None
    #: when the day had no document of the collection (no file is written).
    path: str | None
    rows: int
    bytes: int
    sha256: str | None
    symbols: tuple[str, ...] = ()
    #: "written": from MongoDB (plus `carried_rows` the archive held and MongoDB no longer did);
    #: "kept": MongoDB held none of the day, the existing file stays as it is; "empty": no rows.
    status: str = "written"
    carried_rows: int = 0
    #: The day's count of writes in MongoDB (`storage.written_days`) read before the file's
    #: documents were: while it is still the current count, the file is all of MongoDB's day.
    #: None in manifests written before the count existed.
    mongo_version: int | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ArchivedFile:
        return cls(**{**data, "symbols": tuple(data.get("symbols", ()))})


@dataclass(frozen=True)
class DayManifest:
    day: str
    files: dict[str, ArchivedFile] = field(default_factory=dict)
    archived_at: str | None = None
    layout_version: int = LAYOUT_VERSION

    def to_json(self) -> str:
        return json.dumps({"day": self.day, "layout_version": self.layout_version, "archived_at": self.archived_at,
                           "files": {name: asdict(f) for name, f in self.files.items()}}, indent=1)

    @classmethod
    def from_json(cls, text: str) -> DayManifest:
        data = json.loads(text)
        return cls(day=data["day"], archived_at=data.get("archived_at"),
                   layout_version=data.get("layout_version", LAYOUT_VERSION),
                   files={name: ArchivedFile.from_dict(f) for name, f in data.get("files", {}).items()})


class _HashingWriter:
    """A write-only file that hashes every byte it passes on: the checksum of what was written,
    compared afterwards with a hash of what the storage gives back."""

    def __init__(self, raw: Any):
        self.raw, self.sha256, self.size, self.closed = raw, hashlib.sha256(), 0, False

    def write(self, data: bytes) -> int:
        view = memoryview(data)
        self.sha256.update(view)
        self.size += view.nbytes
        self.raw.write(view)
        return view.nbytes

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        self.raw.flush()

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readable(self) -> bool:
        return False

    def close(self) -> None:
        self.closed = True


Keys = set[tuple[str, int]]


def _keys_of(table: pa.Table) -> Keys:
    """(symbol, minute in ms since the epoch) of every row."""
    minutes = table.column("minute").cast(pa.int64()).to_pylist()
    return set(zip(table.column("symbol").to_pylist(), minutes, strict=True))


def _key_strings(table: pa.Table) -> pa.Array:
    return pc.binary_join_element_wise(table.column("symbol"), pc.cast(table.column("minute").cast(pa.int64()),
                                                                        pa.string()), "|")


#: Queries of `_prefetched` the server has in hand at once: while it answers one, the next is
#: queued, so it never waits for this process to decode a reply and ask again.
PREFETCH = 2


def _prefetched(source: Any, window: Mapping[str, Any], symbols: Sequence[str],
                what: str) -> Iterator[list[dict[str, Any]]]:
    """Each symbol's documents of `window`, by minute, in the order of `symbols`; the next
    symbols' are read from MongoDB while the caller converts and writes the current one's (the
    server's time and ours overlap)."""
    def fetch(symbol: str) -> list[dict[str, Any]]:
        with _reported(f"reading {what} ({symbol})"):
            # Raw BSON, the book sides decoded as numpy arrays by `bson_levels`: the driver's lists
            # of pairs (600 Python objects a side) were most of this process's CPU. No sort at the
            # server (it would sort what its index already orders): sorted here.
            documents = list(find_decoded(source, {"symbol": symbol, **window}, batch_size=5000))
            documents.sort(key=lambda d: d["minute"])
            return documents

    if not symbols:
        return
    with ThreadPoolExecutor(max_workers=PREFETCH, thread_name_prefix="archive-read") as pool:
        pending = deque(pool.submit(fetch, symbol) for symbol in symbols[:PREFETCH])
        for symbol in symbols[PREFETCH:]:
            documents = pending.popleft().result()
            pending.append(pool.submit(fetch, symbol))
            yield documents
        while pending:
            yield pending.popleft().result()


def symbols_to_ask(store: MongoStore, collection: str, window: Mapping[str, Any]) -> list[str]:
    """Every symbol that may have a document of `collection` in `window` (a superset, sorted),
    without the embedded server decoding the documents of the registered symbols.

    `distinct("symbol", window)` is exact, but the embedded server decodes every document it
    matches to answer it (and any query by index decodes every document the index selects, a
    `limit` notwithstanding): a quarter of its CPU in archiving a day of snapshots, 0.35 ms a
    snapshot, about 4 minutes a day at 500 symbols. So: the registry's symbols (it holds every
    symbol a run ever stored and never forgets one), and any other symbol with a document in the
    window, found by asking for the ranges of symbols *between* registered ones through the
    (symbol, minute) index. Those ranges hold no index entry while every writer registers its
    symbols, and the server then decodes nothing; a symbol written some other way is still found.
    The caller reads each symbol's window, and a symbol with none there simply yields nothing."""
    source = store.collection(collection)
    registered = sorted(store.tracked_since())
    others: set[str] = set()
    bounds: list[str | None] = [None, *registered, None]
    with _reported(f"reading the symbols of {collection}"):
        for low, high in zip(bounds[:-1], bounds[1:], strict=True):
            between = {"$gt": low} if low is not None else {"$gte": ""}  # symbols are strings
            if high is not None:
                between["$lt"] = high
            # `symbol` first: the server looks the first clause up in an index, and matches the rest.
            others.update(d["symbol"] for d in source.find({"symbol": between, **window}, {"symbol": True}))
    return sorted(others.union(registered))


# --- The archive ----------------------------------------------------------------------------------


class Archive:
    """The archive under `root`: a local folder or an fsspec URL (`s3://...`, `memory://...`)."""

    def __init__(self, root: str, *, filesystem: fsspec.AbstractFileSystem | None = None):
        self.root = str(root).rstrip("/")
        if filesystem is None:
            filesystem, path = fsspec.core.url_to_fs(self.root)
        else:
            path = self.root
        self.fs: fsspec.AbstractFileSystem = filesystem
        self.path = path.rstrip("/")

    def __repr__(self) -> str:
        return f"Archive({self.root!r})"

    # paths
    @staticmethod
    def relative_path(collection: str, day: date) -> str:
        return f"{collection}/date={day.isoformat()}/{FILE_NAME}"

    def full_path(self, relative: str) -> str:
        """The filesystem's path of `relative` (what `self.fs` takes)."""
        return f"{self.path}/{relative}"

    def url(self, relative: str) -> str:
        """`relative` as a URL or local path a person can paste into pandas, polars or DuckDB."""
        return f"{self.root}/{relative}"

    def _manifest_path(self, day: date) -> str:
        return f"{self.path}/{MANIFESTS}/date={day.isoformat()}.json"

    def collection_url(self, collection: str) -> str:
        return f"{self.root}/{collection}"

    # manifests
    def manifest(self, day: date | str) -> DayManifest | None:
        path = self._manifest_path(as_day(day))
        if not self.fs.exists(path):
            return None
        with self.fs.open(path, "rb") as f:
            return DayManifest.from_json(f.read().decode())

    def entry(self, day: date | str, collection: str) -> ArchivedFile | None:
        """`collection`'s entry in the day's manifest; None if the day or the collection was not archived."""
        manifest = self.manifest(day)
        return manifest.files.get(collection) if manifest else None

    def manifest_days(self) -> list[date]:
        """Every day with a manifest, oldest first."""
        folder = f"{self.path}/{MANIFESTS}"
        if not self.fs.exists(folder):
            return []
        days = []
        for path in self.fs.ls(folder, detail=False):
            name = path.rstrip("/").rsplit("/", 1)[-1]
            if name.startswith("date=") and name.endswith(".json"):
                days.append(date.fromisoformat(name[len("date="):-len(".json")]))
        return sorted(days)

    def _write_atomically(self, final: str, data: bytes) -> None:
        tmp = self._temporary_beside(final)
        self.fs.makedirs(final.rsplit("/", 1)[0], exist_ok=True)
        with self.fs.open(tmp, "wb") as f:
            f.write(data)
        self.fs.mv(tmp, final)

    @staticmethod
    def _temporary_beside(final: str) -> str:
        folder, name = final.rsplit("/", 1)
        return f"{folder}/.{name}.{uuid.uuid4().hex}.tmp"

    def _record(self, day: date, files: Iterable[ArchivedFile]) -> DayManifest:
        previous = self.manifest(day)
        merged = dict(previous.files) if previous else {}
        merged.update({f.collection: f for f in files})
        manifest = DayManifest(day=day.isoformat(), files=merged, archived_at=datetime.now(UTC).isoformat())
        self._write_atomically(self._manifest_path(day), manifest.to_json().encode())
        return manifest

    # verification
    def sha256(self, relative: str) -> str:
        digest = hashlib.sha256()
        with self.fs.open(self.full_path(relative), "rb") as f:
            while chunk := f.read(HASH_CHUNK):
                digest.update(chunk)
        return digest.hexdigest()

    def verify(self, entry: ArchivedFile) -> list[str]:
        """What is wrong with `entry`'s file now (missing, size, checksum, rows); empty if it verifies."""
        if entry.path is None:
            return [] if entry.rows == 0 else [f"{entry.collection} {entry.day}: the manifest names no file"]
        where = self.url(entry.path)
        path = self.full_path(entry.path)
        if not self.fs.exists(path):
            return [f"{where} is missing"]
        problems = []
        size = self.fs.size(path)
        if size != entry.bytes:
            problems.append(f"{where} holds {size} bytes, the manifest {entry.bytes}")
        digest = self.sha256(entry.path)
        if digest != entry.sha256:
            problems.append(f"{where}: sha256 {digest[:12]}... differs from the manifest's {str(entry.sha256)[:12]}...")
        try:
            with self.fs.open(path, "rb") as f:
                rows = pq.ParquetFile(f).metadata.num_rows
        except Exception as exc:  # noqa: BLE001 - any reader failure means the file is unusable
            problems.append(f"{where} is not a readable Parquet file ({type(exc).__name__}: {exc})")
        else:
            if rows != entry.rows:
                problems.append(f"{where} holds {rows} rows, the manifest {entry.rows}")
        return problems

    def keys(self, relative: str) -> Keys:
        with self.fs.open(self.full_path(relative), "rb") as f:
            return _keys_of(pq.read_table(f, columns=["symbol", "minute"]))

    # writing
    def archive_day(self, store: MongoStore, day: date | str,
                    collections: Sequence[str] = ARCHIVED_COLLECTIONS) -> DayManifest:
        """Writes and verifies `day`'s file of each collection, then records them in the day's
        manifest; `ArchiveError` (and no manifest change) if any file fails to verify."""
        day = as_day(day)
        files = [self.write_collection_day(store, name, day) for name in collections]
        return self._record(day, files)

    def write_collection_day(self, store: MongoStore, collection: str, day: date | str) -> ArchivedFile:
        """Writes `collection`'s documents of `day` (plus archived rows MongoDB no longer holds)
        to its file, atomically, and verifies it; not yet recorded in the manifest."""
        day = as_day(day)
        start, end = day_bounds(day)
        relative = self.relative_path(collection, day)
        final = self.full_path(relative)
        source = store.collection(collection)
        window = {"minute": {"$gte": start, "$lt": end}}
        is_snapshots = collection == ORDER_BOOK_SNAPSHOTS
        # Read before the documents: a write landing meanwhile moves the count past it.
        version = store.written_versions(collection, [day])[day]
        gathered: list[pa.Table] = []
        snapshots: Iterator[list[dict[str, Any]]] = iter(())
        if is_snapshots:  # large documents: read and written symbol by symbol (one row group each)
            asked = symbols_to_ask(store, collection, window)
            snapshots = (d for d in _prefetched(source, window, asked, f"{collection} of {day}") if d)
            first = next(snapshots, None)
            if first is not None:
                snapshots = itertools.chain([first], snapshots)
            any_rows = first is not None
        else:  # small documents: the whole day in one read, sorted here
            with _reported(f"reading {collection} of {day}"):
                # No projection (the embedded server deep-copies what it projects): `_id` dropped here.
                documents = list(source.find(window).batch_size(10_000))
                for document in documents:
                    del document["_id"]
            if documents:
                gathered.append(documents_table(documents).sort_by([("symbol", "ascending"), ("minute", "ascending")]))
            del documents
            any_rows = bool(gathered)
        existing = self.fs.exists(final)
        if not any_rows:
            if existing:  # MongoDB no longer holds the day (retention): the archive is its only copy
                return self._describe(collection, day, relative, status="kept", mongo_version=version)
            return ArchivedFile(collection, day.isoformat(), None, 0, 0, None, status="empty", mongo_version=version)

        self.fs.makedirs(final.rsplit("/", 1)[0], exist_ok=True)
        tmp = self._temporary_beside(final)
        keys: Keys = _keys_of(gathered[0]) if gathered else set()
        symbols = sorted(set(gathered[0].column("symbol").to_pylist())) if gathered else []
        try:
            with self.fs.open(tmp, "wb") as raw:
                sink = _HashingWriter(raw)
                writer = pq.ParquetWriter(sink, SNAPSHOT_SCHEMA, compression=COMPRESSION) if is_snapshots else None
                for documents in snapshots:
                    symbols.append(documents[0]["symbol"])
                    table = snapshot_table(documents)
                    del documents
                    keys |= _keys_of(table)
                    writer.write_table(table)
                carried = self._carried_rows(final, keys) if existing else []
                carried_rows = sum(t.num_rows for t in carried)
                if writer is not None:
                    for table in carried:
                        writer.write_table(table.cast(SNAPSHOT_SCHEMA))
                    writer.close()
                else:
                    table = pa.concat_tables([*gathered, *carried], promote_options="permissive")
                    if carried:
                        table = table.sort_by([("symbol", "ascending"), ("minute", "ascending")])
                    pq.write_table(table, sink, compression=COMPRESSION, row_group_size=ROW_GROUP_ROWS)
                    del table, gathered
                raw.flush()
            written_sha, written_bytes = sink.sha256.hexdigest(), sink.size
            self.fs.mv(tmp, final)
        except BaseException:
            if self.fs.exists(tmp):
                self.fs.rm(tmp)
            raise
        entry = ArchivedFile(collection, day.isoformat(), relative, len(keys) + carried_rows, written_bytes, written_sha,
                             symbols=tuple(symbols), carried_rows=carried_rows, mongo_version=version)
        self._check_written(entry, keys)
        return entry

    def _carried_rows(self, final: str, keys: Keys) -> list[pa.Table]:
        """The rows of the existing file whose key MongoDB no longer holds, one table per row group."""
        wanted = pa.array(sorted(f"{s}|{m}" for s, m in keys), type=pa.string())
        carried = []
        with self.fs.open(final, "rb") as f:
            reader = pq.ParquetFile(f)
            for index in range(reader.num_row_groups):
                group = reader.read_row_group(index)
                keep = pc.invert(pc.is_in(_key_strings(group), value_set=wanted))
                group = group.filter(keep)
                if group.num_rows:
                    carried.append(group)
        return carried

    def _describe(self, collection: str, day: date, relative: str, *, status: str,
                  mongo_version: int | None) -> ArchivedFile:
        """An entry for the file already at `relative`, verified against its previous manifest
        entry when there is one."""
        entry = self.entry(day, collection)
        if entry is not None and entry.path == relative:
            problems = self.verify(entry)
            if problems:
                raise ArchiveError("; ".join(problems))
            return ArchivedFile(**{**asdict(entry), "symbols": entry.symbols, "status": status,
                                   "mongo_version": mongo_version})
        path = self.full_path(relative)
        with self.fs.open(path, "rb") as f:
            table = pq.read_table(f, columns=["symbol"])
        return ArchivedFile(collection, day.isoformat(), relative, table.num_rows, self.fs.size(path),
                            self.sha256(relative), symbols=tuple(sorted(set(table.column("symbol").to_pylist()))),
                            status=status, mongo_version=mongo_version)

    def current_files(self, store: MongoStore, collection: str, days: Iterable[date]) -> dict[date, ArchivedFile]:
        """The entries of those of `days` whose archived file of `collection` is all MongoDB holds
        of the day: the count of writes (`storage.written_days`) has not moved since the archive
        read the day. A reader needs nothing from MongoDB there."""
        entries = {}
        for day in days:
            entry = self.entry(day, collection)
            if entry is not None and entry.mongo_version is not None:
                entries[day] = entry
        if not entries:
            return {}
        current = store.written_versions(collection, entries)
        return {day: entry for day, entry in entries.items() if current[day] == entry.mongo_version}

    def current_days(self, store: MongoStore, collection: str, days: Iterable[date]) -> set[date]:
        """The days of `current_files`."""
        return set(self.current_files(store, collection, days))

    def _check_written(self, entry: ArchivedFile, mongo_keys: Keys) -> None:
        """Reads the moved file back: its bytes hash to what was written, its row count and its
        (symbol, minute) keys are MongoDB's (plus the carried rows)."""
        problems = self.verify(entry)
        if not problems:
            file_keys = self.keys(entry.path)
            if len(file_keys) != entry.rows:
                problems.append(f"{self.url(entry.path)} holds duplicate (symbol, minute) keys")
            missing = len(mongo_keys - file_keys)
            if missing:
                problems.append(f"{self.url(entry.path)} lacks {missing} of the {len(mongo_keys)} documents "
                                "MongoDB held")
        if problems:
            raise ArchiveError("the archive file did not verify: " + "; ".join(problems))


# --- Retention: MongoDB forgets only what the archive verifiably holds ----------------------------


@dataclass(frozen=True)
class DayRetention:
    """What retention did to one collection's day in MongoDB: `deleted` documents, or kept them
    (`kept` of them) for `reason`."""

    collection: str
    day: str
    deleted: int = 0
    kept: int = 0
    reason: str = ""


def mongo_keys(store: MongoStore, collection: str, day: date) -> Keys:
    start, end = day_bounds(day)
    with _reported(f"reading the keys of {collection} on {day}"):
        cursor = store.collection(collection).find({"minute": {"$gte": start, "$lt": end}},
                                                   {"_id": False, "symbol": True, "minute": True})
        return {(d["symbol"], _epoch_ms(d["minute"])) for d in cursor}


def _epoch_ms(moment: datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def delete_archived_day(store: MongoStore, archive: Archive, collection: str, day: date | str) -> DayRetention:
    """Deletes `collection`'s documents of `day` from MongoDB only if the day's archive file is in
    the manifest, still verifies (size, sha256, rows) and holds every document MongoDB has for the
    day; otherwise deletes nothing and says why.

    "Holds every document" is the count of writes (`storage.written_days`) unchanged since the
    archive read the day: then no document of the day was written, replaced or deleted by the
    product since, and the day is deleted without reading its keys (which cost the embedded server
    a decode of every document of the day, 1 ms and more a snapshot). The count is read again after
    the deletion: a write that raced it moved the count, and the outcome says so. Manifests from
    before the count are judged by MongoDB's keys against the file's."""
    day = as_day(day)
    start, end = day_bounds(day)
    read_keys: list[Keys] = []

    def keys() -> Keys:
        if not read_keys:
            read_keys.append(mongo_keys(store, collection, day))
        return read_keys[0]

    def kept(reason: str) -> DayRetention:
        held = len(keys())
        return DayRetention(collection, day.isoformat(), kept=held, reason=reason if held else "nothing in MongoDB")

    def delete(reason: str) -> DayRetention:
        with _reported(f"deleting {collection} of {day}"):
            deleted = store.collection(collection).delete_many({"minute": {"$gte": start, "$lt": end}}).deleted_count
        store.forget_seen(collection, start, end)
        return DayRetention(collection, day.isoformat(), deleted=deleted, reason=reason if deleted else "nothing in MongoDB")

    entry = archive.entry(day, collection)
    if entry is None:
        return kept("not archived")
    if entry.path is None:
        return kept("archived while MongoDB held none of the day: archive the day again")
    problems = archive.verify(entry)
    if problems:
        return kept("the archive does not verify: " + "; ".join(problems))
    if entry.mongo_version is not None:
        version = store.written_versions(collection, [day])[day]
        if version != entry.mongo_version:
            return kept(f"MongoDB's documents of the day were written after it was archived (count of writes "
                        f"{version}, archived at {entry.mongo_version}: a backfill, a late fill): archive the day again")
        outcome = delete("archived and verified")
        after = store.written_versions(collection, [day])[day]
        if after != version:
            raise ArchiveError(
                f"{collection} {day}: a write of the day landed while retention deleted it (count of writes {version} "
                f"before, {after} after): documents it wrote may be in neither MongoDB nor the archive; re-run the "
                "backfill that wrote them")
        return outcome
    # Manifests from before the count of writes: the keys are the only evidence.
    missing = len(keys() - archive.keys(entry.path))
    if missing:
        return kept(f"{missing} documents in MongoDB are not in the archive (written after it): archive the day again")
    return delete("archived and verified")


def retention_cutoff(today: date, keep_days: int) -> date:
    """The first day kept: days before it may go, once archived. `keep_days` whole closed days
    are kept before `today` (the day in progress is always kept)."""
    return today - timedelta(days=keep_days)


def apply_retention(store: MongoStore, archive: Archive, collection: str, keep_days: int | None,
                    today: date) -> list[DayRetention]:
    """Every day of `collection` in MongoDB before the cutoff, deleted where verified (oldest
    first); `keep_days` None keeps everything."""
    if keep_days is None:
        return []
    cutoff = retention_cutoff(today, keep_days)
    with _reported(f"reading the oldest minute of {collection}"):
        oldest = store.collection(collection).find_one({}, {"_id": False, "minute": True}, sort=[("minute", 1)])
    if oldest is None:
        return []
    first = as_day(oldest["minute"] if oldest["minute"].tzinfo else oldest["minute"].replace(tzinfo=UTC))
    outcomes = []
    day = first
    while day < cutoff:
        outcome = delete_archived_day(store, archive, collection, day)
        if outcome.deleted or outcome.kept:
            outcomes.append(outcome)
        day += timedelta(days=1)
    return outcomes


__all__ = [
    "ARCHIVED_COLLECTIONS", "Archive", "ArchiveError", "ArchivedFile", "DayManifest", "DayRetention",
    "SNAPSHOT_SCHEMA", "StorageError", "apply_retention", "day_bounds", "delete_archived_day", "documents_table",
    "level_pairs", "retention_cutoff", "snapshot_table",
]
