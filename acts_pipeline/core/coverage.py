"""How complete one collection was over one UTC day, per symbol and hour: pure, no Dagster, no MongoDB.

The input is what one aggregation returns (`storage.coverage_reads.hourly_masks`): per symbol and
hour of the day, a 60-bit mask of the minutes stored (bit m = minute m of the hour). From it and
the minute each symbol was first collected (`MongoStore.tracked_since`), `day_coverage` says per
symbol how many minutes were expected, how many are stored, which ranges are missing, and how
complete each hour was; `coverage_heatmap_svg` draws the hours of the symbols with gaps.

A symbol is expected from the earlier of the minute a run first collected it and its first minute
stored that day in the collection (`quality.counted_from`, as `acts-pipeline coverage` counts): a
symbol not tracked yet is not a gap, and a backfill from before it was tracked (klines) is counted,
so its gaps show and its completeness is confirmed.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from html import escape

from acts_pipeline.core.quality import counted_from

MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
HOURS = 24
#: Every minute of an hour stored.
FULL_HOUR = (1 << 60) - 1


@dataclass(frozen=True)
class SymbolDay:
    """One symbol's day in one collection: minutes expected and stored, per hour and in all, and
    the missing minutes as inclusive `(first, last)` ranges in time order."""

    symbol: str
    counted_from: datetime
    hourly_expected: tuple[int, ...]
    hourly_stored: tuple[int, ...]
    missing_ranges: tuple[tuple[datetime, datetime], ...]

    @property
    def expected(self) -> int:
        return sum(self.hourly_expected)

    @property
    def stored(self) -> int:
        return sum(self.hourly_stored)

    @property
    def missing(self) -> int:
        return self.expected - self.stored

    @property
    def completeness(self) -> float:
        """Stored over expected, 1.0 when nothing is expected."""
        return self.stored / self.expected if self.expected else 1.0

    def hour_completeness(self, hour: int) -> float | None:
        """Stored over expected in `hour` (0..23); None when the hour expects nothing."""
        expected = self.hourly_expected[hour]
        return self.hourly_stored[hour] / expected if expected else None


@dataclass(frozen=True)
class CollectionDay:
    """One collection over one UTC day: a row per symbol expected that day (symbol order)."""

    collection: str
    day: datetime
    symbols: tuple[SymbolDay, ...]

    @property
    def expected(self) -> int:
        return sum(s.expected for s in self.symbols)

    @property
    def stored(self) -> int:
        return sum(s.stored for s in self.symbols)

    @property
    def missing(self) -> int:
        return self.expected - self.stored

    @property
    def completeness_pct(self) -> float:
        """Stored over expected minutes in percent, 100.0 when nothing is expected."""
        return 100.0 * self.stored / self.expected if self.expected else 100.0

    @property
    def with_gaps(self) -> list[SymbolDay]:
        """The symbols missing minutes, most missing first."""
        return sorted((s for s in self.symbols if s.missing), key=lambda s: (-s.missing, s.symbol))


def first_stored_minute(day: datetime, masks: Mapping[int, int]) -> datetime | None:
    """The first minute set in per-hour masks of `day`, None when none is."""
    for hour in sorted(h for h, mask in masks.items() if mask):
        mask = masks[hour]
        return day + hour * HOUR + ((mask & -mask).bit_length() - 1) * MINUTE
    return None


def _hour_mask(start: datetime, end: datetime, hour_start: datetime) -> int:
    """The minutes of the hour starting at `hour_start` inside `[start, end)`, as a mask."""
    first = max(0, int((start - hour_start) / MINUTE))
    last = min(60, int((end - hour_start) / MINUTE))
    if last <= first:
        return 0
    return ((1 << last) - 1) & ~((1 << first) - 1)


def day_coverage(collection: str, day: datetime, masks: Mapping[str, Mapping[int, int]],
                 tracked_since: Mapping[str, datetime], symbols: Iterable[str] | None = None) -> CollectionDay:
    """Coverage of `collection` over the UTC day starting at `day`.

    `masks`: per symbol, per hour (0..23), the minutes stored (bit m = minute m). `tracked_since`:
    per symbol, the first minute a run collected it. `symbols`: the symbols to account for (the
    registered ones); by default every symbol of `tracked_since` or `masks`. A symbol is expected
    from `counted_from` (see the module) to the day's end; one with nothing expected (not tracked
    yet, nothing stored) has no row."""
    end = day + DAY
    wanted = sorted(set(symbols) if symbols is not None else set(tracked_since) | set(masks))
    firsts = {s: [m] for s in wanted if (m := first_stored_minute(day, masks.get(s, {}))) is not None}
    since = counted_from({s: t for s, t in tracked_since.items() if s in set(wanted)}, firsts)
    rows = []
    for symbol in wanted:
        if symbol not in since or since[symbol] >= end:
            continue
        start = max(since[symbol], day)
        symbol_masks = masks.get(symbol, {})
        expected, stored, ranges = [], [], []
        open_from: datetime | None = None  # the first minute of the missing range in progress
        for hour in range(HOURS):
            hour_start = day + hour * HOUR
            want = _hour_mask(start, end, hour_start)
            have = symbol_masks.get(hour, 0) & want
            expected.append(want.bit_count())
            stored.append(have.bit_count())
            lacking = want & ~have
            if lacking == 0 and open_from is None:
                continue
            if lacking == want and want == FULL_HOUR:  # a whole hour missing: no minute walk
                open_from = open_from or hour_start
                continue
            for minute in range(60):
                bit = 1 << minute
                if lacking & bit:
                    open_from = open_from or hour_start + minute * MINUTE
                elif open_from is not None and want & bit:
                    ranges.append((open_from, hour_start + (minute - 1) * MINUTE))
                    open_from = None
        if open_from is not None:
            ranges.append((open_from, end - MINUTE))
        rows.append(SymbolDay(symbol, start, tuple(expected), tuple(stored), tuple(ranges)))
    return CollectionDay(collection, day, tuple(rows))


def format_ranges(ranges: Sequence[tuple[datetime, datetime]], limit: int = 3) -> str:
    """`00:00-09:59, 13:05, 13:07-13:08` (times of the day, UTC), the first `limit` ranges and
    how many more."""
    text = ", ".join(f"{a:%H:%M}" if a == b else f"{a:%H:%M}-{b:%H:%M}" for a, b in ranges[:limit])
    if len(ranges) > limit:
        text += f" (+{len(ranges) - limit} more)"
    return text


# ------------------------------------------------------------------------------------------------
# the picture


#: Completeness of an hour -> fill colour, from missing (red) to complete (green).
_SCALE = ((1.0, "#2e9e5b"), (0.99, "#9bd08f"), (0.9, "#f2d15c"), (0.5, "#f29b4b"), (0.0, "#d9463b"))
_NOTHING_EXPECTED = "#e6e6e6"


def hour_colour(completeness: float | None) -> str:
    if completeness is None:
        return _NOTHING_EXPECTED
    for floor, colour in _SCALE:
        if completeness >= floor:
            return colour
    return _SCALE[-1][1]


def coverage_heatmap_svg(days: Sequence[CollectionDay], max_symbols: int = 40) -> str:
    """A symbol x hour heatmap of `days` (one collection each, the same day), side by side: one
    row per symbol with a gap in any collection (most missing first, at most `max_symbols`), and a
    first row "all symbols" (every symbol's minutes of the hour together). Green is complete, red
    missing, grey nothing expected (not tracked yet). An SVG document."""
    missing_by_symbol: dict[str, int] = {}
    for day in days:
        for row in day.symbols:
            if row.missing:
                missing_by_symbol[row.symbol] = missing_by_symbol.get(row.symbol, 0) + row.missing
    shown = sorted(missing_by_symbol, key=lambda s: (-missing_by_symbol[s], s))[:max_symbols]
    hidden = len(missing_by_symbol) - len(shown)
    panels = []
    for day in days:
        by_symbol = {r.symbol: r for r in day.symbols}
        all_expected = [sum(r.hourly_expected[h] for r in day.symbols) for h in range(HOURS)]
        all_stored = [sum(r.hourly_stored[h] for r in day.symbols) for h in range(HOURS)]
        lines = [[all_stored[h] / all_expected[h] if all_expected[h] else None for h in range(HOURS)]]
        for symbol in shown:
            row = by_symbol.get(symbol)
            lines.append([row.hour_completeness(h) if row else None for h in range(HOURS)])
        panels.append((f"{day.collection} {day.completeness_pct:.2f}%", lines))
    note = (f"{len(missing_by_symbol)} symbol(s) with gaps" + (f", the {len(shown)} missing most shown" if hidden else "")
            if missing_by_symbol else "no gaps: every tracked symbol complete")
    return _hour_grid_svg(panels, ["all symbols", *shown], note)


def symbol_month_heatmap_svg(symbol: str, days: Sequence[Sequence[CollectionDay]]) -> str:
    """One symbol's month as a day x hour heatmap, one panel per collection: `days` holds, for
    each day of the month in order, that day's `CollectionDay`s (the same collections each day).
    A first row is the whole month per hour. Colours as in `coverage_heatmap_svg`."""
    if not days:
        return _hour_grid_svg([], [], f"{symbol}: no closed day")
    panels = []
    missing = 0
    for c, first in enumerate(days[0]):
        rows = [next((r for r in day[c].symbols if r.symbol == symbol), None) for day in days]
        expected = [sum(r.hourly_expected[h] for r in rows if r) for h in range(HOURS)]
        stored = [sum(r.hourly_stored[h] for r in rows if r) for h in range(HOURS)]
        total_expected, total_stored = sum(expected), sum(stored)
        missing += total_expected - total_stored
        pct = 100.0 * total_stored / total_expected if total_expected else 100.0
        lines = [[stored[h] / expected[h] if expected[h] else None for h in range(HOURS)]]
        lines += [[r.hour_completeness(h) if r else None for h in range(HOURS)] for r in rows]
        panels.append((f"{first.collection} {pct:.2f}%", lines))
    labels = [f"{symbol} month", *(f"{day[0].day:%a %d}" for day in days)]
    note = f"{symbol}: {missing} minute(s) missing" if missing else f"{symbol}: no gaps"
    return _hour_grid_svg(panels, labels, note)


def _hour_grid_svg(panels: Sequence[tuple[str, Sequence[Sequence[float | None]]]], labels: Sequence[str],
                   note: str) -> str:
    """Panels side by side of rows x 24 hours, each cell coloured by its completeness (None: grey),
    the rows labelled on the left, the first label bold, and a note with the legend below."""
    cell_w, cell_h, label_w, gap_w, top = 13, 15, 104, 18, 38
    rows = len(labels)
    panel_w = HOURS * cell_w
    width = label_w + max(1, len(panels)) * (panel_w + gap_w)
    height = top + rows * cell_h + 34
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'font-family="DejaVu Sans, Arial, sans-serif" font-size="11">',
             f'<rect width="{width}" height="{height}" fill="#ffffff"/>']
    for i, (title, lines) in enumerate(panels):
        x0 = label_w + i * (panel_w + gap_w)
        parts.append(f'<text x="{x0}" y="14" font-weight="bold">{escape(title)}</text>')
        for hour in range(0, HOURS, 6):
            parts.append(f'<text x="{x0 + hour * cell_w}" y="{top - 4}" fill="#555">{hour:02d}h</text>')
        for r, values in enumerate(lines):
            y = top + r * cell_h
            h = 0
            while h < HOURS:  # one rectangle per run of equal colour: small documents
                colour = hour_colour(values[h])
                run = 1
                while h + run < HOURS and hour_colour(values[h + run]) == colour:
                    run += 1
                parts.append(f'<rect x="{x0 + h * cell_w}" y="{y}" width="{run * cell_w - 1}" '
                             f'height="{cell_h - 1}" fill="{colour}"/>')
                h += run
    for r, label in enumerate(labels):
        weight = ' font-weight="bold"' if r == 0 else ""
        parts.append(f'<text x="2" y="{top + r * cell_h + cell_h - 3}"{weight}>{escape(label)}</text>')
    y = top + rows * cell_h + 16
    parts.append(f'<text x="2" y="{y}" fill="#333">{escape(note)}; hours UTC; '
                 'green complete, yellow &lt;99%, orange &lt;90%, red &lt;50%, grey not tracked</text>')
    parts.append("</svg>")
    return "".join(parts)


def svg_markdown(svg: str, alt: str) -> str:
    """Markdown showing `svg` as an image (a `data:` URI, which the Dagster UI's markdown renders)."""
    return f"![{alt}](data:image/svg+xml;base64,{base64.b64encode(svg.encode()).decode()})"
