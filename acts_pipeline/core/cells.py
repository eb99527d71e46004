"""Cells: the unit of data in every collection, one (minute, symbol) pair.

A minute is named by the start of its window `[minute, minute + 60 s)`, UTC, and written
`2026-11-26-13:54`. A cell's key is `2026-11-26-13:54|BTCUSDT`: the partition key Dagster gives
the (minute, symbol) partition (it orders the dimensions by name: `minute`, then `symbol`), so
the key is also what Dagster's events and records take.
"""

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

MINUTE_FORMAT = "%Y-%m-%d-%H:%M"


def format_minute(minute: datetime) -> str:
    return minute.astimezone(UTC).strftime(MINUTE_FORMAT)


def parse_minute(key: str) -> datetime:
    return datetime.strptime(key, MINUTE_FORMAT).replace(tzinfo=UTC)


def floor_minute(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(second=0, microsecond=0)


def minute_close(minute: datetime) -> datetime:
    return minute + timedelta(minutes=1)


class Cell(NamedTuple):
    """One (minute, symbol) cell; `minute` is the window start, timezone-aware UTC."""

    minute: datetime
    symbol: str

    @property
    def partition_key(self) -> str:
        """The cell's `minute|symbol` partition key."""
        return str(self)

    def __str__(self) -> str:
        return f"{format_minute(self.minute)}|{self.symbol}"


def cell_of(partition_key: str) -> Cell:
    """The cell of a `minute|symbol` partition key (Dagster's `MultiPartitionKey` is that string)."""
    minute, sep, symbol = str(partition_key).partition("|")
    if not sep or not symbol:
        raise ValueError(f"not a minute|symbol partition key: {partition_key!r}")
    return Cell(parse_minute(minute), symbol)


def cells_of(partition_keys: Iterable[str]) -> list[Cell]:
    """Cells of many keys, sorted by minute then symbol (Dagster hands them over unordered)."""
    return sorted({cell_of(key) for key in partition_keys})
