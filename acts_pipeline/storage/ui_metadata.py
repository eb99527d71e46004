"""What the Dagster UI shows of the data itself: pure functions of stored documents.

Every stored (minute, symbol) cell gets a few numbers on its materialization, the ones a trader
reads at a glance, and Dagster plots numeric metadata over time on the asset's page. A minute
run also shows the whole minute as one table. The choice is kept small on purpose: every cell is
an event in the Dagster instance (500 symbols make 1,500 a minute), so each number costs event
log bytes; `benchmarks/cell_metadata.py` measures what this adds against the write counts the
cells used to carry.

Values that could not be computed (`null` in MongoDB) are left out, not shown as 0.
"""

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from dagster import MetadataValue, TableColumn, TableRecord, TableSchema

from acts_pipeline.storage.collections import KLINES_1M, ORDER_BOOK_FEATURES, ORDER_BOOK_SNAPSHOTS
from acts_pipeline.storage.handlers import as_utc

#: The features shown per cell: top of book, the spread, the bias near and deeper in the book,
#: and the quoted notional within 10 and 50 bps of the mid on each side.
FEATURE_FIELDS = ("mid_price", "spread_bps", "weighted_mid", "bias_1", "bias_5", "bias_20",
                  "depth_bias_10bps", "bid_notional_10bps", "ask_notional_10bps",
                  "bid_notional_50bps", "ask_notional_50bps")
KLINE_FIELDS = ("open", "high", "low", "close", "volume", "trades")
#: Columns of the minute's table, one row per symbol.
TABLE_FIELDS = ("best_bid", "best_ask", "spread_bps", "bias_5", "depth_bias_10bps",
                "bid_notional_10bps", "ask_notional_10bps")


def _rounded(value: Any) -> float | int | None:
    """Six significant digits are plenty to read, and keep each event small."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    value = float(value)
    if not math.isfinite(value):  # pandas hands a missing feature over as NaN
        return None
    return float(f"{value:.6g}")


def _fields(document: Mapping[str, Any], fields: Sequence[str]) -> dict[str, float | int]:
    values = {field: _rounded(document.get(field)) for field in fields}
    return {field: value for field, value in values.items() if value is not None}


def snapshot_metadata(document: Mapping[str, Any]) -> dict[str, float | int]:
    """Top of book, its mid and spread, the level counts, and how long after the minute's close
    the book was received."""
    bids, asks = document.get("bids") or [], document.get("asks") or []
    metadata: dict[str, float | int] = {}
    if bids:
        metadata["best_bid"] = _rounded(bids[0][0])
    if asks:
        metadata["best_ask"] = _rounded(asks[0][0])
    if bids and asks:
        mid = (bids[0][0] + asks[0][0]) / 2
        metadata["mid_price"] = _rounded(mid)
        metadata["spread_bps"] = _rounded(1e4 * (asks[0][0] - bids[0][0]) / mid)
    metadata["bid_levels"], metadata["ask_levels"] = len(bids), len(asks)
    if document.get("captured_at") is not None:
        lateness = as_utc(document["captured_at"]) - as_utc(document["minute"])
        metadata["seconds_after_close"] = round(lateness.total_seconds() - 60, 3)
    return metadata


def cell_metadata(collection: str, document: Mapping[str, Any]) -> dict[str, float | int]:
    """The numbers shown on one stored cell of `collection`."""
    if collection == ORDER_BOOK_SNAPSHOTS:
        return snapshot_metadata(document)
    if collection == ORDER_BOOK_FEATURES:
        return _fields(document, FEATURE_FIELDS)
    if collection == KLINES_1M:
        return _fields(document, KLINE_FIELDS)
    return {}


TABLE_SCHEMA = TableSchema(columns=[TableColumn("symbol", "string"),
                                    *(TableColumn(field, "float") for field in TABLE_FIELDS)])


def minute_table(minute: datetime, features: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The minute at a glance: one row per symbol's features (best bid and ask, spread, bias,
    notional within 10 bps), as observation metadata."""
    # Every row has every column (Dagster's table requires it); not computable is empty.
    records = [TableRecord({"symbol": f["symbol"], **{field: _rounded(f.get(field)) for field in TABLE_FIELDS}})
               for f in sorted(features, key=lambda f: f["symbol"])]
    return {"minute": minute.strftime("%Y-%m-%d %H:%M UTC"), "symbols": len(records),
            "market": MetadataValue.table(records, schema=TABLE_SCHEMA)}
