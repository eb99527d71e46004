"""The minute x symbol partitions, and the helpers that turn partition keys into cells.

A *cell* is one (minute, symbol) pair: the unit of data in every collection. Partition keys read
`2026-11-26-13:54|BTCUSDT` (Dagster orders dimensions by name: `minute`, then `symbol`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from dagster import (
    DynamicPartitionsDefinition,
    MultiPartitionKey,
    MultiPartitionsDefinition,
    TimeWindowPartitionsDefinition,
)

from acts_pipeline import settings

MINUTE_FORMAT = "%Y-%m-%d-%H:%M"
SYMBOLS_PARTITIONS_NAME = "symbols"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


def format_minute(minute: datetime) -> str:
    return minute.astimezone(UTC).strftime(MINUTE_FORMAT)


def window_start(now: datetime, hours: int) -> datetime:
    """The first minute of the rolling partition window: the start of `now`'s hour (UTC), less
    `hours` hours."""
    return now.astimezone(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=hours)


#: The minute partitions are a rolling window: from `ACTS_PARTITION_WINDOW_HOURS` (default 6)
#: whole hours before the hour the code location loaded, to the minute in progress. Dagster's
#: partition views (partitions tab, launch and backfill dialogs, the asset page's live data)
#: cost time in proportion to the minute x symbol cells in the window, and a fixed start makes
#: every page slower each day (benchmarks/ui_pages.py). Older data stays in MongoDB, readable as
#: ever; the retention job deletes runs (and their events) older than the window, and the code
#: location is reloaded every hour (`acts-pipeline dev` does it; `acts-pipeline reload-code`),
#: which moves the start.
PARTITION_WINDOW_HOURS = settings.partition_window_hours()
PARTITIONS_START = format_minute(window_start(datetime.now(UTC), PARTITION_WINDOW_HOURS))

minute_partitions = TimeWindowPartitionsDefinition(
    cron_schedule="* * * * *",
    start=PARTITIONS_START,
    fmt=MINUTE_FORMAT,
    timezone="UTC",
    # The minute in progress is a valid key, so its run can be requested before it closes and
    # the UI and `dagster asset materialize` accept it.
    end_offset=1,
)
symbol_partitions = DynamicPartitionsDefinition(name=SYMBOLS_PARTITIONS_NAME)
minute_symbol_partitions = MultiPartitionsDefinition({"minute": minute_partitions, "symbol": symbol_partitions})


class Cell(NamedTuple):
    """One (minute, symbol) partition; `minute` is the window start, timezone-aware UTC."""

    minute: datetime
    symbol: str

    @property
    def partition_key(self) -> MultiPartitionKey:
        return MultiPartitionKey({"minute": format_minute(self.minute), "symbol": self.symbol})

    def __str__(self) -> str:
        return f"{format_minute(self.minute)}|{self.symbol}"


def minute_partitions_start() -> datetime:
    return parse_minute(PARTITIONS_START)


def parse_minute(key: str) -> datetime:
    return datetime.strptime(key, MINUTE_FORMAT).replace(tzinfo=UTC)


def floor_minute(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(second=0, microsecond=0)


def minute_close(minute: datetime) -> datetime:
    return minute + timedelta(minutes=1)


def cell_of(partition_key: str | MultiPartitionKey) -> Cell:
    """The cell of a `minute|symbol` partition key (a `MultiPartitionKey` or its string)."""
    if isinstance(partition_key, MultiPartitionKey):
        dims = partition_key.keys_by_dimension
        return Cell(parse_minute(dims["minute"]), dims["symbol"])
    minute, sep, symbol = str(partition_key).partition("|")
    if not sep or not symbol:
        raise ValueError(f"not a minute|symbol partition key: {partition_key!r}")
    return Cell(parse_minute(minute), symbol)


def cells_of(partition_keys: Iterable[str | MultiPartitionKey]) -> list[Cell]:
    """Cells of many keys, sorted by minute then symbol (Dagster hands them over unordered)."""
    return sorted({cell_of(key) for key in partition_keys})


def minute_range_tags(minute: datetime, symbols: list[str], last_minute: datetime | None = None) -> dict[str, str]:
    """Run tags that make one run cover `minute` (to `last_minute`, if given) for every symbol.

    `symbols` must be in registration order: Dagster resolves the range over the dynamic
    dimension in that order, so first-registered to last-registered covers them all.
    """
    last = last_minute or minute
    return {RANGE_START_TAG: f"{format_minute(minute)}|{symbols[0]}",
            RANGE_END_TAG: f"{format_minute(last)}|{symbols[-1]}"}
