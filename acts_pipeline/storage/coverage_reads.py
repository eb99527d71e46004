"""Which minutes of a day a cell collection holds, per symbol and hour, in one aggregation.

A day at 500 symbols is 720,000 documents per collection; reading them (`MongoStore.stored_minutes`)
moves every one to the client. The server groups them instead, by symbol and hour, into the
minutes' bit mask (`core.coverage` reads it): 12,000 small rows come back. The minute index serves
the `$match`. The mask is summed in two halves of 30 bits (minutes 0-29 and 30-59), so every sum
stays exact in a 32-bit integer whatever numeric type the server picks; a minute is counted once,
since every cell collection is unique by (symbol, minute).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from acts_pipeline.storage.client import MongoStore, _reported

HALF = 30


def _minutes_mask(low: bool) -> dict:
    minute = "$m" if low else {"$subtract": ["$m", HALF]}
    return {"$sum": {"$cond": [{"$lt" if low else "$gte": ["$m", HALF]}, {"$pow": [2, minute]}, 0]}}


def hourly_masks(store: MongoStore, name: str, start: datetime, end: datetime,
                 symbols: Sequence[str] | None = None) -> dict[str, dict[int, int]]:
    """Per symbol (all, or those of `symbols`), per UTC hour of the day (0..23), the minutes of
    `[start, end)` stored in `name` as a mask (bit m = minute m of the hour). `[start, end)` is one
    UTC day (or part of one): hours of different days would fold onto each other."""
    match: dict = {"minute": {"$gte": start, "$lt": end}}
    if symbols is not None:
        match["symbol"] = {"$in": list(symbols)}
    pipeline = [
        {"$match": match},
        {"$project": {"_id": 0, "symbol": 1, "h": {"$hour": "$minute"}, "m": {"$minute": "$minute"}}},
        {"$group": {"_id": {"s": "$symbol", "h": "$h"}, "lo": _minutes_mask(True), "hi": _minutes_mask(False)}},
    ]
    masks: dict[str, dict[int, int]] = {}
    with _reported(f"reading {name}"):
        for row in store.collection(name).aggregate(pipeline):
            mask = int(row["lo"]) | (int(row["hi"]) << HALF)
            masks.setdefault(row["_id"]["s"], {})[int(row["_id"]["h"])] = mask
    return masks
