"""What the recorder stores: a boundary book as a `boundary_books` document.

A document is one (symbol, minute) cell, `minute` being the minute that closed at `close`, so it
lines up with the snapshot cell it feeds. Levels are stored as bytes (`storage.handlers.levels_to_binary`):
a close's books are written for every symbol at once, right after it. A book is stored only when the recorder can vouch for
it (in sync, every event with `E` at or before the close applied and none after, levels inside
the range its snapshot made complete); otherwise the document says why there is none, so a gap
is explained, never filled.

    {"symbol": "BTCUSDT", "minute": 12:03, "close": 12:04, "source": "stream", "in_sync": true,
     "reason": null, "complete": true, "depth_limit": 100, "last_update_id": 52811370139,
     "event_time": 12:03:59.941, "bids": <binary>, "asks": <binary>,
     "decided_at": 12:04:00.012, "revised": false, "connection": "ws-1"}
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from acts_pipeline.core.boundary import BoundaryRecord
from acts_pipeline.core.parsing import ms_to_datetime
from acts_pipeline.storage.handlers import levels_to_binary

MINUTE = timedelta(minutes=1)


def boundary_document(record: BoundaryRecord, *, depth: int, connection: str) -> dict[str, Any]:
    """The stored form of `record` (see the module docstring)."""
    close = ms_to_datetime(record.close_ms)
    view = record.view if record.in_sync else None
    document: dict[str, Any] = {
        "symbol": record.symbol,
        "minute": close - MINUTE,
        "close": close,
        "source": "stream",
        "in_sync": view is not None,
        "reason": record.reason,
        "decided_at": ms_to_datetime(record.decided_at_ms),
        "revised": record.revises,
        "connection": connection,
        "depth_limit": depth,
    }
    if view is not None:
        document.update(
            complete=view.complete,
            last_update_id=view.last_update_id,
            event_time=ms_to_datetime(view.event_time_ms),
            bids=levels_to_binary(view.bids),
            asks=levels_to_binary(view.asks),
        )
    return document

