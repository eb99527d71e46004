"""Properties of the alert throttling (`core.alerting.evaluate`) over random histories: ticks at
random intervals, each observing some problems, not knowing about others; random reminder
intervals, holds, and a webhook that takes only some of the messages.

For every problem key: messages go PROBLEM, REMINDER..., RESOLVED, episode after episode; one
PROBLEM per episode seen for its hold, none for a shorter one; reminders never closer than the
interval and never skipped; the end said at the first tick it is not seen, never while unknown;
the state through the sensor's cursor changes nothing; a webhook that is down delays messages
without losing or reordering them."""

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from acts_pipeline.core.alerting import MAX_OUTBOX, AlertState, Kind, Policy, Problem, evaluate

T0 = datetime(2026, 12, 1, tzinfo=UTC)
KEYS = ("gap:live", "run:minute_sensor", "recorder:out_of_sync")

ticks = st.lists(st.tuples(
    # seconds since the previous tick: the sensor's 30 s (and its multiples, so that ticks land on
    # the reminder interval and the holds exactly), or any time (a slow tick, a daemon down)
    st.one_of(st.sampled_from([30, 60, 90, 300, 600]), st.integers(min_value=1, max_value=2400)),
    st.sets(st.sampled_from(KEYS)),                          # the problems that start or end
    st.sets(st.sampled_from(KEYS + ("gap", "run", "recorder")))),  # unknown keys or sources
    min_size=1, max_size=60)
holds = st.fixed_dictionaries({k: st.sampled_from([0, 30, 60, 300]) for k in KEYS})
reminds = st.fixed_dictionaries({k: st.booleans() for k in KEYS})
minutes = st.integers(min_value=1, max_value=90)


def problems(observed, hold, remind):
    return [Problem(k, f"title of {k}", f"detail of {k}", hold=timedelta(seconds=hold[k]), remind=remind[k])
            for k in sorted(observed)]


def history(steps, hold, remind, policy, *, deliver=None, through_cursor=False):
    """(tick time, observed, unknown keys, messages delivered at that tick) for each tick;
    `deliver(i, waiting)`: how many messages the webhook takes at tick i (default all)."""
    state, now, out, observed = AlertState(), T0, [], frozenset()
    for i, (gap, toggled, unknown) in enumerate(steps):
        now += timedelta(seconds=gap)
        observed = observed ^ toggled  # problems last several ticks, as they do
        if through_cursor:
            state = AlertState.from_json(AlertState.from_json(state.to_json()).to_json())
        state = evaluate(state, problems(observed, hold, remind), now, policy, unknown)
        waiting = state.pending()
        taken = len(waiting) if deliver is None else deliver(i, len(waiting))
        state = state.delivered(taken)
        out.append((now, observed, unknown, waiting[:taken]))
    return out, state


def is_unknown(key, unknown):
    return key in unknown or key.split(":")[0] in unknown


@settings(max_examples=400, deadline=None)
@given(ticks, holds, reminds, minutes)
def test_each_key_follows_its_episodes(steps, hold, remind, reminder_minutes):
    policy = Policy(reminder_every=timedelta(minutes=reminder_minutes))
    timeline, _ = history(steps, hold, remind, policy)
    every = policy.reminder_every
    for key in KEYS:
        ongoing = False           # in an episode (observed, then observed or unknown)
        first_seen = alerted = last_sent = None
        for now, observed, unknown, messages in timeline:
            mine = [m for m in messages if m.key == key]
            assert len(mine) <= 1, mine
            kind = mine[0].kind if mine else None
            if key in observed:
                if not ongoing:
                    ongoing, first_seen, alerted, last_sent = True, now, None, None
                if alerted is None:
                    due = now - first_seen >= timedelta(seconds=hold[key])
                    assert kind == (Kind.PROBLEM if due else None), (key, now, kind)
                    if due:
                        alerted = last_sent = now
                else:
                    due = remind[key] and now - last_sent >= every
                    assert kind == (Kind.REMINDER if due else None), (key, now, kind)
                    if due:
                        assert now - last_sent >= every  # never closer than the interval
                        last_sent = now
                    if remind[key]:
                        assert now - last_sent < every  # and never skipped
            elif ongoing and is_unknown(key, unknown):
                assert kind is None  # nothing is said while it cannot be known
            else:
                # not seen: resolved if it was said, silently dropped if within its hold
                assert kind == (Kind.RESOLVED if ongoing and alerted is not None else None), (key, now, kind)
                ongoing = False


@settings(max_examples=200, deadline=None)
@given(ticks, holds, reminds, minutes)
def test_the_cursor_round_trip_changes_nothing(steps, hold, remind, reminder_minutes):
    policy = Policy(reminder_every=timedelta(minutes=reminder_minutes))
    assert history(steps, hold, remind, policy) == history(steps, hold, remind, policy, through_cursor=True)


@settings(max_examples=300, deadline=None)
@given(ticks, holds, reminds, minutes, st.lists(st.integers(min_value=0, max_value=3), min_size=60, max_size=60))
def test_a_webhook_that_is_down_delays_but_neither_loses_nor_reorders(steps, hold, remind, reminder_minutes, takes):
    policy = Policy(reminder_every=timedelta(minutes=reminder_minutes))
    prompt, _ = history(steps, hold, remind, policy)
    late, state = history(steps, hold, remind, policy, deliver=lambda i, waiting: min(waiting, takes[i]))
    if state.dropped or any(len(m) >= MAX_OUTBOX for *_, m in late):
        return  # an overflowing outbox drops messages on purpose (said in the next one delivered)
    delivered = [m for *_, messages in late for m in messages] + list(state.pending())
    sent = [m for *_, messages in prompt for m in messages]
    # every PROBLEM and RESOLVED arrives, in order; a reminder may give way to a newer one or
    # to the resolution while it waits
    assert [m for m in delivered if m.kind is not Kind.REMINDER] == [m for m in sent if m.kind is not Kind.REMINDER]
    assert {m for m in delivered if m.kind is Kind.REMINDER} <= {m for m in sent if m.kind is Kind.REMINDER}
    for key in KEYS:
        kinds = [m.kind for m in delivered if m.key == key]
        for before, after in zip(kinds, kinds[1:]):
            assert (before, after) in {(Kind.PROBLEM, Kind.REMINDER), (Kind.PROBLEM, Kind.RESOLVED),
                                       (Kind.REMINDER, Kind.REMINDER), (Kind.REMINDER, Kind.RESOLVED),
                                       (Kind.RESOLVED, Kind.PROBLEM)}, kinds
