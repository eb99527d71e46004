"""The daily coverage computation (`core.coverage`): per-hour masks of stored minutes x the minute
each symbol was first collected -> minutes expected, stored, and the missing ranges."""

import base64
from datetime import UTC, datetime, timedelta

import pytest

from acts_pipeline.core.coverage import (
    FULL_HOUR,
    coverage_heatmap_svg,
    day_coverage,
    first_stored_minute,
    format_ranges,
    svg_markdown,
)

DAY = datetime(2026, 11, 30, tzinfo=UTC)
M = timedelta(minutes=1)


def masks_of(minutes):
    """Per-hour masks of minute offsets from DAY."""
    masks = {}
    for m in minutes:
        masks[m // 60] = masks.get(m // 60, 0) | (1 << (m % 60))
    return masks


def at(minute_of_day):
    return DAY + minute_of_day * M


def test_a_complete_day_has_no_gaps():
    cov = day_coverage("klines_1m", DAY, {"BTCUSDT": {h: FULL_HOUR for h in range(24)}},
                       {"BTCUSDT": DAY - timedelta(days=3)})
    (row,) = cov.symbols
    assert (row.expected, row.stored, row.missing, row.missing_ranges) == (1440, 1440, 0, ())
    assert cov.completeness_pct == 100.0 and cov.with_gaps == []
    assert row.hourly_expected == (60,) * 24


def test_a_fully_missing_day_is_one_range_of_every_minute():
    cov = day_coverage("order_book_snapshots", DAY, {}, {"ETHUSDT": DAY - timedelta(days=1)})
    (row,) = cov.symbols
    assert (row.expected, row.stored, row.missing) == (1440, 0, 1440)
    assert row.missing_ranges == ((at(0), at(1439)),)
    assert cov.completeness_pct == 0.0
    assert [r.symbol for r in cov.with_gaps] == ["ETHUSDT"]


def test_a_symbol_added_mid_day_is_expected_from_its_first_collected_minute():
    added = 10 * 60 + 30  # 10:30
    stored = [m for m in range(added, 1440) if m not in (added + 5, 13 * 60, 13 * 60 + 1)]
    cov = day_coverage("order_book_features", DAY, {"SOLUSDT": masks_of(stored)}, {"SOLUSDT": at(added)})
    (row,) = cov.symbols
    assert row.counted_from == at(added)
    assert row.expected == 1440 - added and row.missing == 3
    assert row.missing_ranges == ((at(added + 5), at(added + 5)), (at(13 * 60), at(13 * 60 + 1)))
    assert row.hourly_expected[:10] == (0,) * 10 and row.hourly_expected[10] == 30
    assert row.hour_completeness(9) is None
    assert row.hour_completeness(13) == pytest.approx(58 / 60)


def test_a_symbol_not_tracked_yet_is_not_a_gap():
    cov = day_coverage("klines_1m", DAY, {}, {"NEWUSDT": DAY + timedelta(days=2), "OLDUSDT": DAY}, ["NEWUSDT", "OLDUSDT"])
    assert [r.symbol for r in cov.symbols] == ["OLDUSDT"]


def test_a_backfill_before_the_symbol_was_tracked_is_counted_from_its_first_stored_minute():
    # klines backfilled from 06:00 on a day before the symbol was first collected
    cov = day_coverage("klines_1m", DAY, {"ADAUSDT": masks_of(m for m in range(360, 1440) if m != 700)},
                       {"ADAUSDT": DAY + timedelta(days=5)})
    (row,) = cov.symbols
    assert (row.counted_from, row.expected, row.missing) == (at(360), 1080, 1)
    assert row.missing_ranges == ((at(700), at(700)),)


def test_only_the_chosen_symbols_are_counted():
    cov = day_coverage("klines_1m", DAY, {"GONEUSDT": {0: FULL_HOUR}, "BTCUSDT": {0: FULL_HOUR}},
                       {"BTCUSDT": DAY, "GONEUSDT": DAY}, symbols=["BTCUSDT"])
    assert [r.symbol for r in cov.symbols] == ["BTCUSDT"]


def test_ranges_cross_hours_and_end_at_the_day_end():
    stored = [m for m in range(1440) if not (50 <= m < 130) and m < 1430]
    cov = day_coverage("klines_1m", DAY, {"X": masks_of(stored)}, {"X": DAY})
    assert cov.symbols[0].missing_ranges == ((at(50), at(129)), (at(1430), at(1439)))
    assert format_ranges(cov.symbols[0].missing_ranges) == "00:50-02:09, 23:50-23:59"


def test_missing_counts_agree_with_the_cli_coverage_on_random_days():
    """The same day counted by `quality.coverage` (minute by minute, as `acts-pipeline coverage`)."""
    import random

    from acts_pipeline.core.quality import coverage

    rng = random.Random(7)
    for _ in range(20):
        since = at(rng.randrange(0, 1440))
        stored = [m for m in range(1440) if at(m) >= since and rng.random() > 0.02]
        cov = day_coverage("k", DAY, {"X": masks_of(stored)}, {"X": since})
        (reference,) = coverage({"X": since}, {"X": [at(m) for m in stored]}, DAY, DAY + timedelta(days=1))
        row = cov.symbols[0]
        assert (row.expected, row.stored) == (reference.expected, reference.stored)
        assert [m for a, b in row.missing_ranges for m in range(int((a - DAY) / M), int((b - DAY) / M) + 1)] == \
            [int((m - DAY) / M) for m in reference.missing_minutes]


def test_first_stored_minute():
    assert first_stored_minute(DAY, {3: 0, 5: 1 << 7, 4: 0}) == at(5 * 60 + 7)
    assert first_stored_minute(DAY, {}) is None


def test_format_ranges_lists_the_first_few_and_counts_the_rest():
    ranges = [(at(m), at(m)) for m in (1, 3, 5, 7)]
    assert format_ranges(ranges, 2) == "00:01, 00:03 (+2 more)"


def test_the_heatmap_draws_the_symbols_with_gaps_and_a_row_of_all_symbols():
    full = {h: FULL_HOUR for h in range(24)}
    tracked = {"A": DAY, "B": DAY, "C": DAY}
    snapshots = day_coverage("snapshots", DAY, {"A": full, "B": {**full, 5: 0}, "C": full}, tracked)
    klines = day_coverage("klines", DAY, {"A": full, "B": full, "C": {**full, 7: FULL_HOUR >> 1}}, tracked)
    svg = coverage_heatmap_svg([snapshots, klines])
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert ">all symbols<" in svg and ">B<" in svg and ">C<" in svg and ">A<" not in svg
    assert "#d9463b" in svg  # B's hour 5: nothing stored
    assert "2 symbol(s) with gaps" in svg
    markdown = svg_markdown(svg, "heatmap")
    assert markdown.startswith("![heatmap](data:image/svg+xml;base64,")
    assert base64.b64decode(markdown.split(",", 1)[1][:-1]).decode() == svg
    assert "no gaps" in coverage_heatmap_svg([day_coverage("k", DAY, {"A": full}, {"A": DAY})])
