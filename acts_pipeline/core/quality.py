"""Data checks and coverage accounting on stored documents: pure functions, no Dagster, no MongoDB.

Each check returns the problems it found as sentences that name the symbol and the minute, so a
failing check in the UI (or a line of `acts-pipeline coverage`) says exactly which cell is wrong.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from acts_pipeline.core.features import BAND_BPS, DEPTH_LEVELS
from acts_pipeline.core.cells import format_minute, minute_close

MINUTE = timedelta(minutes=1)


def _cell(document: Mapping[str, Any]) -> str:
    return f"{document['symbol']} at {format_minute(document['minute'])}"


def snapshot_problems(document: Mapping[str, Any], tolerance: timedelta) -> list[str]:
    """What is wrong with one stored `order_book_snapshots` document (nothing, usually)."""
    problems = []
    bids, asks = document.get("bids") or [], document.get("asks") or []
    if not bids or not asks:
        problems.append(f"{_cell(document)}: empty {'bids' if not bids else 'asks'}")
    if bids and asks and bids[0][0] >= asks[0][0]:
        problems.append(f"{_cell(document)}: crossed book, best bid {bids[0][0]} >= best ask {asks[0][0]}")
    if any(later[0] >= earlier[0] for earlier, later in zip(bids, bids[1:])):
        problems.append(f"{_cell(document)}: bid prices not strictly falling")
    if any(later[0] <= earlier[0] for earlier, later in zip(asks, asks[1:])):
        problems.append(f"{_cell(document)}: ask prices not strictly rising")
    close = minute_close(document["minute"])
    captured = document.get("captured_at")
    if captured is None or captured < close:
        problems.append(f"{_cell(document)}: captured_at {captured} is not after the minute's close")
    elif captured - close > tolerance:
        problems.append(f"{_cell(document)}: captured {(captured - close).total_seconds():.1f} s after the close, "
                        f"past the {tolerance.total_seconds():g} s tolerance")
    return problems


def _ratio_fields() -> list[str]:
    return [f"bias_{k}" for k in DEPTH_LEVELS] + [f"depth_bias_{x}bps" for x in BAND_BPS]


def feature_problems(document: Mapping[str, Any]) -> list[str]:
    """What is wrong with one stored `order_book_features` document."""
    problems = []
    for field in _ratio_fields():
        value = document.get(field)
        if value is not None and not (isinstance(value, float | int) and -1.0 <= value <= 1.0):
            problems.append(f"{_cell(document)}: {field} = {value} is outside [-1, 1]")
    for field, value in document.items():
        if isinstance(value, float) and not math.isfinite(value):
            problems.append(f"{_cell(document)}: {field} is {value}; not computable must be stored as null")
    spread = document.get("spread")
    if spread is not None and spread <= 0 and document.get("crossed") is False:
        problems.append(f"{_cell(document)}: spread {spread} <= 0 on a book not flagged crossed")
    return problems


@dataclass(frozen=True)
class SymbolCoverage:
    """How many closed minutes of a window one symbol should have, and which it lacks.
    `tracked_since` is the minute it is counted from (see `coverage`)."""

    symbol: str
    tracked_since: datetime
    expected: int
    stored: int
    missing_minutes: tuple[datetime, ...]

    @property
    def missing(self) -> int:
        return len(self.missing_minutes)


def counted_from(tracked_since: Mapping[str, datetime],
                 stored_minutes: Mapping[str, Collection[datetime]]) -> dict[str, datetime]:
    """Per symbol, the first minute one collection should hold: the earlier of the minute a run
    first collected the symbol (`tracked_since`) and its first minute in `stored_minutes` (that
    collection's, over the window read). A backfill from before the symbol was collected (klines,
    features) is then counted, so its gaps show and its completeness is confirmed; a symbol that
    was only backfilled counts from its first stored minute."""
    firsts = {symbol: min(minutes) for symbol, minutes in stored_minutes.items() if minutes}
    return {symbol: min(m for m in (tracked_since.get(symbol), firsts.get(symbol)) if m is not None)
            for symbol in tracked_since.keys() | firsts.keys()}


def coverage(expected_from: Mapping[str, datetime], stored_minutes: Mapping[str, Iterable[datetime]],
             window_start: datetime, window_end: datetime) -> list[SymbolCoverage]:
    """Coverage of the minutes `[window_start, window_end)` for each symbol of `expected_from`,
    counting it only from its minute there: the minute a run first collected it (`tracked_since`:
    the completeness check, the klines catch-up), `counted_from` (`acts-pipeline coverage`), or
    the window's start (an explicit range, in which every minute is expected)."""
    rows = []
    for symbol, since in sorted(expected_from.items()):
        start = max(since, window_start)
        expected = []
        minute = start
        while minute < window_end:
            expected.append(minute)
            minute += MINUTE
        have = set(stored_minutes.get(symbol, ()))
        missing = tuple(m for m in expected if m not in have)
        rows.append(SymbolCoverage(symbol, since, len(expected), len(expected) - len(missing), missing))
    return rows


def minute_spans(minutes: Iterable[datetime]) -> str:
    """`10:03-10:05, 10:09` for a sorted set of minutes: how gaps read best."""
    spans: list[list[datetime]] = []
    for minute in sorted(minutes):
        if spans and minute - spans[-1][1] == MINUTE:
            spans[-1][1] = minute
        else:
            spans.append([minute, minute])
    return ", ".join(format_minute(a) if a == b else f"{format_minute(a)}..{b:%H:%M}" for a, b in spans)
