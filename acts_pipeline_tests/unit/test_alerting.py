"""`core.alerting`: one PROBLEM per ongoing problem, reminders at most every `reminder_every`, one
RESOLVED at its end; holds, unknown sources, the outbox of a webhook that is down, the cursor."""

from datetime import UTC, datetime, timedelta

import pytest

from acts_pipeline.core.alerting import (
    MAX_OUTBOX,
    AlertState,
    Kind,
    Policy,
    Problem,
    duration,
    evaluate,
)

T0 = datetime(2026, 12, 1, 12, 0, 30, tzinfo=UTC)
POLICY = Policy(reminder_every=timedelta(minutes=30), deployment="ACTS TEST")
GAP = Problem("gap:live", "missing cells in the live minutes", "NKNUSDT at 2026-12-01-12:00")
RUNS = Problem("run:minute_sensor", "minute runs are failing", "run 1a2b3c4d failed: closed 30.0 s ago")


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def run(ticks, policy=POLICY, state=None):
    """`ticks`: (seconds after T0, problems, unknown); the state after each and every message."""
    state = state or AlertState()
    messages = []
    for seconds, problems, *unknown in ticks:
        before = len(state.outbox)
        state = evaluate(state, problems, at(seconds), policy, unknown[0] if unknown else ())
        messages += state.outbox[before:]
        state = state.delivered(len(state.outbox))
    return state, messages


def test_a_problem_is_said_once_then_reminded_then_resolved():
    ticks = [(s, [GAP]) for s in range(0, 3700, 30)] + [(3700, [])]
    state, messages = run(ticks)
    assert [(m.kind, m.at) for m in messages] == [
        (Kind.PROBLEM, at(0)), (Kind.REMINDER, at(1800)), (Kind.REMINDER, at(3600)), (Kind.RESOLVED, at(3700))]
    assert messages[0].text == "[ACTS TEST] PROBLEM: missing cells in the live minutes\nNKNUSDT at 2026-12-01-12:00"
    assert messages[1].text.startswith("[ACTS TEST] STILL A PROBLEM since 2026-12-01 12:00 UTC (30 min): missing cells")
    assert messages[3].text == ("[ACTS TEST] RESOLVED after 61 min (since 2026-12-01 12:00 UTC): missing cells in the "
                                "live minutes\nlast seen: NKNUSDT at 2026-12-01-12:00")
    assert state.ongoing == {} and state.outbox == ()
    assert messages[0].payload() == {"text": messages[0].text}


def test_two_problems_are_followed_apart_and_a_changed_detail_is_no_new_alert():
    newer = Problem(GAP.key, GAP.title, "ETHUSDT at 2026-12-01-12:01")
    _, messages = run([(0, [GAP]), (30, [GAP, RUNS]), (60, [newer, RUNS]), (90, [RUNS]), (120, [])])
    assert [(m.kind, m.key) for m in messages] == [
        (Kind.PROBLEM, "gap:live"), (Kind.PROBLEM, "run:minute_sensor"), (Kind.RESOLVED, "gap:live"),
        (Kind.RESOLVED, "run:minute_sensor")]
    assert messages[2].text.endswith("\nfirst seen: NKNUSDT at 2026-12-01-12:00\nlast seen: ETHUSDT at 2026-12-01-12:01")


def test_a_held_problem_is_said_only_once_seen_for_its_hold_and_a_flap_is_silent():
    held = Problem("recorder:out_of_sync", "the stream recorder cannot vouch for some books", "NKNUSDT: resyncing",
                   hold=timedelta(seconds=60))
    _, messages = run([(0, [held]), (30, [held]), (45, [])])  # gone within its hold: nothing at all
    assert messages == []
    _, messages = run([(0, [held]), (30, [held]), (60, [held]), (90, [held]), (95, [])])
    assert [(m.kind, m.at) for m in messages] == [(Kind.PROBLEM, at(60)), (Kind.RESOLVED, at(95))]
    assert messages[0].text.startswith("[ACTS TEST] PROBLEM: the stream recorder cannot vouch for some books (for 60 s)")
    assert messages[1].text.startswith("[ACTS TEST] RESOLVED after 95 s")


def test_what_cannot_be_known_this_tick_is_kept_as_it_is():
    _, messages = run([(0, [GAP, RUNS]), (30, [], {"gap", "run:minute_sensor"}), (2000, [], {"gap", "run"}),
                       (2030, [GAP, RUNS])])
    # no resolution while unknown, and no reminder for a problem not seen (30 min passed at 2000 s)
    assert [(m.kind, m.at) for m in messages] == [(Kind.PROBLEM, at(0)), (Kind.PROBLEM, at(0)),
                                                  (Kind.REMINDER, at(2030)), (Kind.REMINDER, at(2030))]
    _, messages = run([(0, [GAP]), (30, [], {"run"})])  # another source unknown: the gap is over
    assert [m.kind for m in messages] == [Kind.PROBLEM, Kind.RESOLVED]


def test_a_period_problem_is_never_reminded():
    day = Problem("check:daily_coverage/day_is_complete", "check day_is_complete on daily_coverage failed (warning)",
                  "gaps: snapshots 1 symbols, 3 minutes [2026-11-30]", remind=False)
    _, messages = run([(s, [day]) for s in range(0, 24 * 3600, 600)])
    assert [m.kind for m in messages] == [Kind.PROBLEM]


def test_messages_wait_in_the_outbox_while_the_webhook_is_down():
    state = evaluate(AlertState(), [GAP], at(0), POLICY)
    state = evaluate(state.delivered(0), [GAP, RUNS], at(30), POLICY)
    assert [m.key for m in state.pending()] == ["gap:live", "run:minute_sensor"]
    state = state.delivered(1)  # the webhook took one
    state = evaluate(state, [RUNS], at(60), POLICY)
    assert [(m.kind, m.key) for m in state.pending()] == [(Kind.PROBLEM, "run:minute_sensor"), (Kind.RESOLVED, "gap:live")]
    with pytest.raises(ValueError, match="3 messages delivered of an outbox of 2"):
        state.delivered(3)


def test_a_waiting_reminder_is_replaced_by_a_newer_one_and_dropped_on_resolution():
    state = evaluate(AlertState(), [GAP], at(0), POLICY).delivered(1)
    state = evaluate(state, [GAP], at(1800), POLICY)  # reminder 1, not delivered
    state = evaluate(state, [GAP], at(3600), POLICY)  # reminder 2 replaces it
    assert [(m.kind, m.at) for m in state.outbox] == [(Kind.REMINDER, at(3600))]
    state = evaluate(state, [], at(3700), POLICY)
    assert [m.kind for m in state.outbox] == [Kind.RESOLVED]


def test_a_full_outbox_drops_the_oldest_and_says_so_once_delivered():
    state = AlertState()
    problems = [Problem(f"run:sensor_{i}", f"runs of sensor_{i} are failing") for i in range(MAX_OUTBOX + 3)]
    for i in range(len(problems)):
        state = evaluate(state, problems[:i + 1], at(i), POLICY)  # one new problem a tick, none delivered
    assert len(state.outbox) == MAX_OUTBOX and state.dropped == 3
    assert state.outbox[0].key == "run:sensor_3"  # the oldest went
    first = state.pending()[0]
    assert first.text.startswith("(3 earlier alert messages could not be delivered and were dropped")
    state = state.delivered(1)
    assert state.dropped == 0 and not state.pending()[0].text.startswith("(")


def test_the_state_survives_the_cursor():
    state = evaluate(AlertState(), [GAP, RUNS], at(0), POLICY).delivered(1)
    state = evaluate(state, [GAP, RUNS, Problem("recorder:down", "the stream recorder is down", hold=timedelta(60))],
                     at(30), POLICY)
    again = AlertState.from_json(__import__("json").loads(state.dumps()))
    assert again == state
    assert evaluate(again, [GAP], at(90), POLICY) == evaluate(state, [GAP], at(90), POLICY)
    assert AlertState.from_json(None) == AlertState() == AlertState.from_json({"v": 0, "ongoing": []})


def test_bad_input_is_refused_with_what_is_wrong():
    with pytest.raises(ValueError, match="a problem key is 'source:name', got 'gap'"):
        Problem("gap", "missing cells")
    with pytest.raises(ValueError, match="hold cannot be negative"):
        Problem("gap:live", "x", hold=timedelta(seconds=-1))
    with pytest.raises(ValueError, match="reminders come at most once a minute"):
        Policy(reminder_every=timedelta(seconds=30))
    with pytest.raises(ValueError, match="timezone-aware"):
        evaluate(AlertState(), [], datetime(2026, 12, 1, 12, 0), POLICY)


@pytest.mark.parametrize(("seconds", "said"), [(0, "0 s"), (45, "45 s"), (119, "119 s"), (120, "2 min"),
                                               (7199, "119 min"), (7200, "2 h 00 min"), (3 * 86400 + 7300, "3 d 2 h")])
def test_durations_read_as_a_person_says_them(seconds, said):
    assert duration(timedelta(seconds=seconds)) == said


def test_a_long_detail_is_cut():
    state = evaluate(AlertState(), [Problem("gap:live", "missing cells", "x" * 5000)], at(0), POLICY)
    assert len(state.outbox[0].text) == 1500 and state.outbox[0].text.endswith("…")
