"""Data checks and coverage on documents: each problem names the symbol and the minute."""

from datetime import UTC, datetime, timedelta

from acts_pipeline.core.quality import counted_from, coverage, feature_problems, minute_spans, snapshot_problems

M = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
CLOSE = M + timedelta(minutes=1)
TOLERANCE = timedelta(seconds=10)


def snapshot(**changes):
    doc = {"symbol": "BTCUSDT", "minute": M, "captured_at": CLOSE + timedelta(milliseconds=12),
           "bids": [[100.0, 1.0], [99.0, 2.0]], "asks": [[101.0, 1.0], [102.0, 3.0]]}
    return {**doc, **changes}


def test_a_sound_snapshot_has_no_problem():
    assert snapshot_problems(snapshot(), TOLERANCE) == []


def test_each_snapshot_problem_names_the_cell():
    cases = {
        "empty bids": snapshot(bids=[]),
        "crossed book": snapshot(asks=[[99.5, 1.0], [102.0, 1.0]]),
        "bid prices not strictly falling": snapshot(bids=[[100.0, 1.0], [100.0, 2.0]]),
        "ask prices not strictly rising": snapshot(asks=[[101.0, 1.0], [100.5, 1.0]]),
        "not after the minute's close": snapshot(captured_at=CLOSE - timedelta(seconds=1)),
        "past the 10 s tolerance": snapshot(captured_at=CLOSE + timedelta(seconds=11)),
    }
    for expected, doc in cases.items():
        problems = snapshot_problems(doc, TOLERANCE)
        assert any(expected in p and "BTCUSDT at 2026-11-26-10:00" in p for p in problems), (expected, problems)


def test_feature_problems():
    good = {"symbol": "ETHUSDT", "minute": M, "bias_5": -1.0, "depth_bias_10bps": None, "spread": 0.5, "crossed": False}
    assert feature_problems(good) == []
    assert "bias_5 = 1.5 is outside [-1, 1]" in feature_problems({**good, "bias_5": 1.5})[0]
    assert "stored as null" in feature_problems({**good, "mid_price": float("nan")})[0]
    assert "not flagged crossed" in feature_problems({**good, "spread": -0.1})[0]


def test_coverage_counts_a_symbol_from_when_it_was_first_collected():
    minutes = [M + timedelta(minutes=i) for i in range(10)]
    tracked = {"BTCUSDT": M, "NEWUSDT": M + timedelta(minutes=7)}
    stored = {"BTCUSDT": set(minutes) - {minutes[3], minutes[4], minutes[8]}, "NEWUSDT": {minutes[7], minutes[9]}}
    rows = {r.symbol: r for r in coverage(tracked, stored, M, M + timedelta(minutes=10))}
    assert (rows["BTCUSDT"].expected, rows["BTCUSDT"].stored, rows["BTCUSDT"].missing) == (10, 7, 3)
    assert minute_spans(rows["BTCUSDT"].missing_minutes) == "2026-11-26-10:03..10:04, 2026-11-26-10:08"
    assert (rows["NEWUSDT"].expected, rows["NEWUSDT"].missing_minutes) == (3, (minutes[8],))


def minutes_from(first: int, last: int) -> set[datetime]:
    """M + first .. M + last minutes, both included."""
    return {M + timedelta(minutes=i) for i in range(first, last + 1)}


def test_a_backfill_before_the_first_collected_minute_is_counted_and_confirmed():
    # klines of 10:00..10:29 backfilled; the minute runs collected the symbol from 10:30 on
    tracked = {"BTCUSDT": M + timedelta(minutes=30)}
    stored = {"BTCUSDT": minutes_from(0, 39)}
    expected_from = counted_from(tracked, stored)
    assert expected_from == {"BTCUSDT": M}
    [row] = coverage(expected_from, stored, M - timedelta(minutes=20), M + timedelta(minutes=40))
    assert (row.expected, row.stored, row.missing) == (40, 40, 0)


def test_a_gap_in_a_backfill_is_missing_and_a_symbol_only_backfilled_counts_from_its_data():
    tracked = {"BTCUSDT": M + timedelta(minutes=30)}
    stored = {"BTCUSDT": minutes_from(0, 39) - minutes_from(5, 6),
              "SOLUSDT": minutes_from(10, 19) - {M + timedelta(minutes=12)}}
    expected_from = counted_from(tracked, stored)
    assert expected_from == {"BTCUSDT": M, "SOLUSDT": M + timedelta(minutes=10)}
    rows = {r.symbol: r for r in coverage(expected_from, stored, M, M + timedelta(minutes=40))}
    assert minute_spans(rows["BTCUSDT"].missing_minutes) == "2026-11-26-10:05..10:06"
    assert rows["SOLUSDT"].expected == 30
    assert minute_spans(rows["SOLUSDT"].missing_minutes) == "2026-11-26-10:12, 2026-11-26-10:20..10:39"


def test_a_symbol_counts_from_when_it_was_tracked_when_nothing_older_is_stored():
    tracked = {"BTCUSDT": M + timedelta(minutes=3), "ETHUSDT": M + timedelta(minutes=3)}
    stored = {"BTCUSDT": minutes_from(5, 9), "ETHUSDT": set()}
    assert counted_from(tracked, stored) == tracked
    rows = {r.symbol: r for r in coverage(counted_from(tracked, stored), stored, M, M + timedelta(minutes=10))}
    assert minute_spans(rows["BTCUSDT"].missing_minutes) == "2026-11-26-10:03..10:04"
    assert rows["ETHUSDT"].missing == 7


def test_every_minute_of_the_window_is_expected_when_each_symbol_counts_from_its_start():
    stored = {"BTCUSDT": minutes_from(30, 59)}
    rows = {r.symbol: r for r in coverage({"BTCUSDT": M, "ETHUSDT": M}, stored, M, M + timedelta(minutes=60))}
    assert (rows["BTCUSDT"].expected, rows["BTCUSDT"].stored) == (60, 30)
    assert minute_spans(rows["BTCUSDT"].missing_minutes) == "2026-11-26-10:00..10:29"
    assert (rows["ETHUSDT"].expected, rows["ETHUSDT"].stored) == (60, 0)
