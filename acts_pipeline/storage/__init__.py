"""MongoDB storage, in the shape of Dagster's own database I/O managers (`DbIOManager`):

- `collections`: every collection's name, unique key and indexes, in one place;
- `client`: `MongoStore`, the client that knows MongoDB (indexes, bulk upserts, cell reads);
- `handlers`: type handlers, chosen by the exact declared type, between values and documents;
- `durable`: the write that survives outages (a local spool, retries, replay);
- `boundary_books`: the stream recorder's books at each close, one document per connection and
  close, read back per symbol;
- `io_manager`: the `MongoResource` and the thin `MongoIOManager` that maps assets and their
  partitions to cells of a collection.

The per-cell materialization and failure events of range runs live apart, in
`acts_pipeline.storage.cell_events`. The public names are importable from here; each is loaded with its
own module on first use, so reading `collections` (the command line) does not load Dagster.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "MongoStore": "client", "StorageError": "client", "WriteResult": "client", "FEW_SYMBOLS": "client",
    "CELL_COLLECTIONS": "collections", "CELL_KEY": "collections", "KLINES_1M": "collections",
    "MINUTE_INDEX": "collections", "ORDER_BOOK_FEATURES": "collections",
    "ORDER_BOOK_SNAPSHOTS": "collections", "SYMBOL_REGISTRY": "collections",
    "DurableWriter": "durable", "Spool": "durable", "SpooledBatch": "durable", "WriteGaveUp": "durable",
    "flush_spool": "durable",
    "DataFrameHandler": "handlers", "SnapshotHandler": "handlers", "handler_for": "handlers",
    "COLLECTION_METADATA_KEY": "io_manager", "FAILED_CELLS_METADATA_KEY": "io_manager",
    "MongoIOManager": "io_manager", "MongoResource": "io_manager",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


if TYPE_CHECKING:
    from acts_pipeline.storage.client import FEW_SYMBOLS, MongoStore, StorageError, WriteResult
    from acts_pipeline.storage.collections import (
        CELL_COLLECTIONS,
        CELL_KEY,
        KLINES_1M,
        MINUTE_INDEX,
        ORDER_BOOK_FEATURES,
        ORDER_BOOK_SNAPSHOTS,
        SYMBOL_REGISTRY,
    )
    from acts_pipeline.storage.durable import DurableWriter, Spool, SpooledBatch, WriteGaveUp, flush_spool
    from acts_pipeline.storage.handlers import DataFrameHandler, SnapshotHandler, handler_for
    from acts_pipeline.storage.io_manager import (
        COLLECTION_METADATA_KEY,
        FAILED_CELLS_METADATA_KEY,
        MongoIOManager,
        MongoResource,
    )
