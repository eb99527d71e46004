"""`core.alert_problems`: which observations are problems worth a person, under which key, and
what the message says."""

from datetime import UTC, datetime, timedelta

import pytest

from acts_pipeline.core.alert_problems import (
    NEVER_REPORTED_HOLD,
    OUT_OF_SYNC_HOLD,
    UNREADABLE_HOLD,
    CheckOutcome,
    FailedRun,
    check_problem,
    gap_problem,
    recorder_problems,
    runs_problem,
    unreadable,
)
from acts_pipeline.core.quality import coverage

M = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def minutes(*offsets):
    return {M + timedelta(minutes=k) for k in offsets}


def test_a_failed_minute_run_names_its_minute_and_its_error():
    run = FailedRun("1a2b3c4d-5e6f", "CaptureTooLateError: minute 2026-12-01-12:00 closed 30.0 s ago\n  at ...",
                    minute="2026-12-01-12:00")
    problem = runs_problem("minute_sensor", [run], run)
    assert problem.key == "run:minute_sensor" and problem.title == "minute runs are failing"
    assert problem.detail == ("run 1a2b3c4d (minute 2026-12-01-12:00) failed: CaptureTooLateError: minute "
                              "2026-12-01-12:00 closed 30.0 s ago")
    assert problem.hold == timedelta(0) and problem.remind


def test_a_failure_dagster_will_retry_is_no_problem_until_the_retries_are_spent():
    retried = FailedRun("1a2b3c4d-5e6f", "DagsterPostgresException: connection refused", minute="2026-12-01-12:00",
                        will_retry=True)
    assert runs_problem("minute_sensor", [retried], retried) is None
    last = FailedRun("9f8e7d6c-5b4a", "DagsterPostgresException: connection refused", minute="2026-12-01-12:00")
    problem = runs_problem("minute_sensor", [retried, last], last)
    assert problem.detail.startswith("run 9f8e7d6c (minute 2026-12-01-12:00) failed") and "2 runs" not in problem.detail


def test_runs_of_a_schedule_count_their_failures_and_a_succeeding_origin_is_no_problem():
    failed = [FailedRun("aaaaaaaa-1", "boom"), FailedRun("bbbbbbbb-2", "MongoDB unreachable")]
    problem = runs_problem("daily_archive_schedule", failed, None)
    assert problem.title == "runs of daily_archive_schedule are failing"
    assert problem.detail == ("run bbbbbbbb failed: MongoDB unreachable 2 runs of daily_archive_schedule failed "
                              "since the last look.")
    # a failure since the last look is said even if a later run already succeeded
    assert runs_problem("minute_sensor", failed[:1], None) is not None
    assert runs_problem("minute_sensor", [], None) is None
    assert runs_problem("minute_sensor", [], FailedRun("cccccccc", "")).detail == "run cccccccc failed"


@pytest.mark.parametrize(("check", "severity", "alerted"), [
    ("snapshot_books_are_valid", "ERROR", True),
    ("features_are_in_range", "ERROR", True),
    ("symbols_are_listed", "ERROR", True),
    ("symbols_are_listed", "WARN", False),          # a symbol not trading, kept: its gaps are alerted
    ("day_is_complete", "WARN", True),              # a closed day missed minutes
    ("snapshots_are_complete", "WARN", False),      # the gap scan says it, sooner, with its end
    ("stream_recorder_is_healthy", "ERROR", False),  # the recorder's status, read every tick
    ("stream_recorder_is_healthy", "WARN", False),
])
def test_which_failed_checks_are_alerted(check, severity, alerted):
    outcome = CheckOutcome("order_book_snapshot", check, passed=False, severity=severity, description="3 problems")
    assert (check_problem(outcome) is not None) is alerted
    assert check_problem(CheckOutcome("order_book_snapshot", check, passed=True, severity=severity)) is None


def test_a_failed_check_says_what_failed_where():
    problem = check_problem(CheckOutcome("order_book_snapshot", "snapshot_books_are_valid", False, "ERROR",
                                         "1 problems in 3 books: NKNUSDT 2026-12-01-12:00: no bids\nmore"))
    assert problem.key == "check:order_book_snapshot/snapshot_books_are_valid"
    assert problem.title == "check snapshot_books_are_valid on order_book_snapshot failed"
    assert problem.detail == "1 problems in 3 books: NKNUSDT 2026-12-01-12:00: no bids" and problem.remind
    day = check_problem(CheckOutcome("daily_coverage", "day_is_complete", False, "WARN",
                                     "gaps: snapshots 1 symbols, 3 minutes", partition="2026-11-30"))
    assert day.title == "check day_is_complete on daily_coverage failed (warning)"
    assert day.detail == "gaps: snapshots 1 symbols, 3 minutes [2026-11-30]" and not day.remind


def test_a_gap_names_each_symbol_and_minutes_and_collections_missing_the_same_cells_together():
    tracked = {"BTCUSDT": M, "NKNUSDT": M, "ETHUSDT": M + timedelta(minutes=2)}  # ETHUSDT tracked later
    snapshots = {"BTCUSDT": minutes(0, 1, 2), "NKNUSDT": minutes(0), "ETHUSDT": minutes(2)}
    features = {"BTCUSDT": minutes(0, 1, 2), "NKNUSDT": minutes(0), "ETHUSDT": minutes(2)}
    end = M + timedelta(minutes=3)
    problem = gap_problem({"order_book_snapshots": coverage(tracked, snapshots, M, end),
                           "order_book_features": coverage(tracked, features, M, end)})
    assert problem.key == "gap:live" and problem.title == "missing cells in the live minutes"
    assert problem.detail == ("4 cells of 1 symbol missing. order_book_snapshots, order_book_features: "
                              "NKNUSDT at 2026-12-01-12:01..12:02 (`acts-pipeline coverage --minutes 60` lists the gaps)")
    features["BTCUSDT"] = minutes(0, 2)  # features of a stored book missing: said apart
    problem = gap_problem({"order_book_snapshots": coverage(tracked, snapshots, M, end),
                           "order_book_features": coverage(tracked, features, M, end)})
    assert problem.detail.splitlines() == [
        "5 cells of 2 symbols missing. order_book_snapshots: NKNUSDT at 2026-12-01-12:01..12:02",
        "order_book_features: BTCUSDT at 2026-12-01-12:01; NKNUSDT at 2026-12-01-12:01..12:02 "
        "(`acts-pipeline coverage --minutes 60` lists the gaps)"]
    complete = {s: minutes(0, 1, 2) for s in tracked}
    assert gap_problem({"order_book_snapshots": coverage(tracked, complete, M, end)}) is None


def test_a_gap_of_many_symbols_names_five():
    tracked = {f"S{i:02d}USDT": M for i in range(8)}
    problem = gap_problem({"order_book_snapshots": coverage(tracked, {}, M, M + timedelta(minutes=1))})
    assert problem.detail.startswith("8 cells of 8 symbols missing. order_book_snapshots: S00USDT at 2026-12-01-12:00; ")
    assert "S04USDT at 2026-12-01-12:00; and 3 more symbols" in problem.detail


def test_a_recorder_that_is_down_is_said_at_once_one_that_never_reported_after_a_minute():
    problems, unknown = recorder_problems("silent for 42 s", False, {}, ["BTCUSDT"])
    assert [(p.key, p.title, p.hold) for p in problems] == [("recorder:down", "the stream recorder is down", timedelta(0))]
    assert problems[0].detail.startswith("it is silent for 42 s: every book comes over REST")
    assert unknown == {"recorder:out_of_sync"}  # while it is down, its books' sync is unknown
    problems, _ = recorder_problems("not reporting", True, {}, ["BTCUSDT"])
    assert problems[0].hold == NEVER_REPORTED_HOLD


def test_symbols_out_of_sync_or_not_recorded_are_named_after_the_hold():
    status = {"BTCUSDT": {"in_sync": True, "reason": None}, "NKNUSDT": {"in_sync": False, "reason": "a gap: resyncing"},
              "REMOVED": {"in_sync": False, "reason": "refused"}}
    problems, unknown = recorder_problems(None, False, status, ["BTCUSDT", "NKNUSDT", "ADAUSDT"])
    assert unknown == set()
    assert [(p.key, p.hold) for p in problems] == [("recorder:out_of_sync", OUT_OF_SYNC_HOLD)]
    assert problems[0].detail == ("2 of 3 symbols without a book it vouches for (their books come over REST): "
                                  "NKNUSDT: a gap: resyncing; ADAUSDT: not recorded yet")
    assert recorder_problems(None, False, {"BTCUSDT": {"in_sync": True}}, ["BTCUSDT"]) == ([], set())


def test_a_source_the_sensor_cannot_read_is_a_problem_after_a_minute():
    problem = unreadable("mongodb", "MongoDB", "reading symbol_registry: connection refused\ntraceback")
    assert (problem.key, problem.title, problem.detail, problem.hold) == (
        "sensor:mongodb", "the alert sensor cannot read MongoDB", "reading symbol_registry: connection refused",
        UNREADABLE_HOLD)
