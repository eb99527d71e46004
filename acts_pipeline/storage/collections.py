"""Every MongoDB collection ACTS writes, named once: its unique key and its indexes.

The names are the public contract of the data (README, "Where the data lands"); code refers to
them only through the constants here. No pymongo import: the command line reads the names
without loading the driver (`1` is `pymongo.ASCENDING`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

ASCENDING = 1

ORDER_BOOK_SNAPSHOTS = "order_book_snapshots"
ORDER_BOOK_FEATURES = "order_book_features"
KLINES_1M = "klines_1m"
#: symbol -> `tracked_since`, the first minute a run stored snapshots for it: the minute each
#: symbol's coverage is counted from.
SYMBOL_REGISTRY = "symbol_registry"
#: The stream recorder's book of each symbol at each minute close (`minute` is the minute that
#: closed), kept `ACTS_RECORDER_RETENTION_DAYS`: what `order_book_snapshot` reads in the stream design.
#: One document holds the books one connection's decision produced for one close (the layout:
#: `acts_pipeline.storage.boundary_books`).
BOUNDARY_BOOKS = "boundary_books"
#: One document per recorder (its `name`): its health, rewritten every few seconds.
RECORDER_STATUS = "recorder_status"
#: What the completeness check has seen stored: per cell collection and minute, the symbols whose
#: documents it read there (`acts_pipeline.storage.seen_cells`). Bookkeeping, not data: the last
#: hour or so, keyed by `_id` "<collection>|<minute>".
CELLS_SEEN = "cells_seen"
#: Per cell collection and UTC day, how many writes MongoDB took there
#: (`acts_pipeline.storage.written_days`): an archived day whose count has not moved since it was
#: archived is read from the archive alone. Keyed by `_id` "<collection>|<day>".
WRITTEN_DAYS = "written_days"

#: The collections of (minute, symbol) cells, one per asset, in the order coverage lists them.
CELL_COLLECTIONS = (ORDER_BOOK_SNAPSHOTS, ORDER_BOOK_FEATURES, KLINES_1M)
#: The collection whose stored batches start a symbol's coverage (`SYMBOL_REGISTRY`).
TRACKING_COLLECTION = ORDER_BOOK_SNAPSHOTS

Index = tuple[tuple[str, int], ...]

#: Writing a cell again replaces it: every cell collection is unique by (symbol, minute).
CELL_KEY: Index = (("symbol", ASCENDING), ("minute", ASCENDING))
#: Cell collections are also indexed by `minute` alone: a minute (or a range of minutes) for all
#: symbols is what the minute run reads back and what the checks count.
MINUTE_INDEX: Index = (("minute", ASCENDING),)


#: The key of a collection whose documents carry their own `_id` (MongoDB's index, nothing to create).
ID_KEY: Index = (("_id", ASCENDING),)


@dataclass(frozen=True)
class CollectionSpec:
    """What MongoDB must hold for a collection before it is written: the unique key (the key
    every upsert replaces by) and further indexes by name."""

    unique_key: Index
    indexes: dict[str, Index] = field(default_factory=dict)

    @property
    def unique_index_name(self) -> str | None:
        """The name of the unique index to create; None when the key is `_id` (always there)."""
        if self.unique_key == ID_KEY:
            return None
        return "_".join(name for name, _ in self.unique_key) + "_unique"


CELLS = CollectionSpec(unique_key=CELL_KEY, indexes={"minute": MINUTE_INDEX})
#: `boundary_books`: one document per connection and close, keyed by the `_id` the recorder gives
#: it (so a replayed batch replaces itself), read by minute. One index, not two, on a collection
#: written with every symbol's book within a fraction of a second after each close: on the
#: embedded server each secondary index costs about as much as the document itself.
BOUNDARY_BATCHES = CollectionSpec(unique_key=ID_KEY, indexes={"minute": MINUTE_INDEX})
_SPECS = {
    ORDER_BOOK_SNAPSHOTS: CELLS,
    ORDER_BOOK_FEATURES: CELLS,
    KLINES_1M: CELLS,
    SYMBOL_REGISTRY: CollectionSpec(unique_key=(("symbol", ASCENDING),)),
    BOUNDARY_BOOKS: BOUNDARY_BATCHES,
    RECORDER_STATUS: CollectionSpec(unique_key=(("name", ASCENDING),)),
    CELLS_SEEN: CollectionSpec(unique_key=ID_KEY),
    WRITTEN_DAYS: CollectionSpec(unique_key=ID_KEY),
}


def spec_of(name: str) -> CollectionSpec:
    """The spec of `name`; any other collection an asset names is a collection of cells."""
    return _SPECS.get(name, CELLS)


#: The recorder's name in `RECORDER_STATUS`: its status document's key, read by the snapshot asset.
RECORDER_NAME = "recorder"
def boundary_book_usable(document: Mapping[str, Any] | None) -> bool:
    """Whether a boundary book (one symbol at one close, as `storage.boundary_books` reads it) carries a book the recorder vouches for: in sync at
    the close, and every level inside the range its snapshot made complete. Otherwise its
    `reason` says why there is no book."""
    return bool(document and document.get("in_sync") and document.get("complete") and "bids" in document)
