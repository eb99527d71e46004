"""What to tell a person, and when: problems observed in, messages and the new state out.

Pure: no Dagster, no HTTP, no clock. `alert_sensor` (`orchestration/alerts.py`) observes the
platform every 30 s and hands the problems it sees now to `evaluate`, with the state the previous
tick left (kept in the sensor's cursor, `AlertState.to_json`); it posts the messages the state's
outbox holds and records which were delivered (`AlertState.delivered`).

A problem has a stable `key` ("gap:live", "run:minute_sensor"): the same key on the next tick is
the same ongoing problem, however its detail changed. For each key:

- first seen: one PROBLEM message, once it has been observed continuously for its `hold` (a
  symbol resyncing for a second is not worth a person; a recorder out of sync for a minute is);
- still seen: nothing, except a REMINDER once `reminder_every` has passed since the last message
  about it (never for a problem with `remind=False`: a day's coverage is a fact, not an outage);
- no longer seen: one RESOLVED message if a PROBLEM was sent (a problem that went away within its
  hold is dropped silently);
- not known this tick (`unknown`: its source could not be read, or has nothing new): kept as it is.

Messages wait in the state's outbox until delivered, so a webhook that is down loses nothing but
what overflows a bounded outbox (counted, and said in the next message delivered). A reminder
waiting in the outbox is replaced by a newer one, and dropped when its problem resolves.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import Enum

#: Messages kept for a webhook that is down; older ones are dropped (and counted) beyond this.
MAX_OUTBOX = 50
#: Problem and resolution texts are cut to this many characters (a chat message, not a log).
MAX_TEXT = 1500
STATE_VERSION = 1


class Kind(str, Enum):
    PROBLEM = "problem"
    REMINDER = "reminder"
    RESOLVED = "resolved"


@dataclass(frozen=True)
class Problem:
    """One problem as observed now. `key`: its identity, `source:name` (`unknown` entries match a
    whole source or one key); `title`: what is wrong, the same for the whole episode; `detail`:
    what is seen now (the latest detail goes into reminders and the resolution)."""

    key: str
    title: str
    detail: str = ""
    hold: timedelta = timedelta(0)
    remind: bool = True

    def __post_init__(self) -> None:
        if ":" not in self.key or not self.key.split(":", 1)[0]:
            raise ValueError(f"a problem key is 'source:name', got {self.key!r}")
        if self.hold < timedelta(0):
            raise ValueError(f"a problem's hold cannot be negative, got {self.hold}")

    @property
    def source(self) -> str:
        return self.key.split(":", 1)[0]


@dataclass(frozen=True)
class Policy:
    """`reminder_every`: the least time between two messages about one ongoing problem;
    `deployment`: how the messages name the platform ("ACTS", "ACTS PROD")."""

    reminder_every: timedelta = timedelta(minutes=60)
    deployment: str = "ACTS"

    def __post_init__(self) -> None:
        if self.reminder_every < timedelta(minutes=1):
            raise ValueError(f"reminders come at most once a minute, got every {self.reminder_every}")


@dataclass(frozen=True)
class Ongoing:
    """A problem being followed: seen since `first_seen` (with `first_detail`; `detail` is the
    latest), alerted at `alerted_at` (None: still within its hold), last PROBLEM or REMINDER
    queued at `last_sent`."""

    key: str
    title: str
    detail: str
    first_seen: datetime
    alerted_at: datetime | None = None
    last_sent: datetime | None = None
    reminders: int = 0
    remind: bool = True
    first_detail: str = ""


@dataclass(frozen=True)
class Message:
    key: str
    kind: Kind
    text: str
    at: datetime

    def payload(self) -> dict[str, str]:
        """The Slack-compatible body (`{"text": ...}`: Slack, Mattermost, Rocket.Chat, Teams
        workflows and most chat webhooks take it)."""
        return {"text": self.text}


@dataclass(frozen=True)
class AlertState:
    ongoing: Mapping[str, Ongoing] = field(default_factory=dict)
    outbox: tuple[Message, ...] = ()
    #: Messages dropped from a full outbox since the last delivery.
    dropped: int = 0

    def pending(self) -> list[Message]:
        """The outbox in order, the first text saying how many older messages were dropped."""
        messages = list(self.outbox)
        if messages and self.dropped:
            first = messages[0]
            note = f"({self.dropped} earlier alert message{'s' if self.dropped != 1 else ''} could not be delivered " \
                   "and were dropped: see the Dagster UI)\n"
            messages[0] = replace(first, text=note + first.text)
        return messages

    def delivered(self, count: int) -> AlertState:
        """The state once the first `count` messages of the outbox were delivered."""
        if not 0 <= count <= len(self.outbox):
            raise ValueError(f"{count} messages delivered of an outbox of {len(self.outbox)}")
        return replace(self, outbox=self.outbox[count:], dropped=self.dropped if count == 0 else 0)

    # ---- the sensor's cursor ------------------------------------------------------------------

    def to_json(self) -> dict:
        return {
            "v": STATE_VERSION,
            "ongoing": [{"key": o.key, "title": o.title, "detail": o.detail, "first_seen": o.first_seen.isoformat(),
                         "alerted_at": _iso(o.alerted_at), "last_sent": _iso(o.last_sent),
                         "reminders": o.reminders, "remind": o.remind, "first_detail": o.first_detail}
                        for o in self.ongoing.values()],
            "outbox": [{"key": m.key, "kind": m.kind.value, "text": m.text, "at": m.at.isoformat()}
                       for m in self.outbox],
            "dropped": self.dropped,
        }

    @classmethod
    def from_json(cls, data: Mapping | None) -> AlertState:
        """The state `to_json` gave; an empty state for None or a state of another version."""
        if not data or data.get("v") != STATE_VERSION:
            return cls()
        ongoing = {o["key"]: Ongoing(o["key"], o["title"], o["detail"], datetime.fromisoformat(o["first_seen"]),
                                     _from_iso(o["alerted_at"]), _from_iso(o["last_sent"]), o["reminders"], o["remind"],
                                     o["first_detail"])
                   for o in data["ongoing"]}
        outbox = tuple(Message(m["key"], Kind(m["kind"]), m["text"], datetime.fromisoformat(m["at"]))
                       for m in data["outbox"])
        return cls(ongoing, outbox, data["dropped"])

    def dumps(self) -> str:
        return json.dumps(self.to_json(), sort_keys=True)


def evaluate(state: AlertState, observed: Iterable[Problem], now: datetime, policy: Policy,
             unknown: Iterable[str] = ()) -> AlertState:
    """The state after a tick at `now` that observed `observed` (the problems present now; a key
    observed twice: the last wins) and could not tell about `unknown` (sources, or single keys):
    its outbox holds the messages to send (see the module docstring)."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    seen = {p.key: p for p in observed}
    unknown = frozenset(unknown)
    ongoing: dict[str, Ongoing] = {}
    messages: list[Message] = []
    for key, problem in seen.items():
        before = state.ongoing.get(key)
        current = (Ongoing(key, problem.title, problem.detail, now, remind=problem.remind, first_detail=problem.detail)
                   if before is None
                   else replace(before, title=problem.title, detail=problem.detail, remind=problem.remind))
        if current.alerted_at is None:
            if now - current.first_seen >= problem.hold:
                current = replace(current, alerted_at=now, last_sent=now)
                messages.append(Message(key, Kind.PROBLEM, _problem_text(current, now, policy), now))
        elif current.remind and current.last_sent is not None and now - current.last_sent >= policy.reminder_every:
            current = replace(current, last_sent=now, reminders=current.reminders + 1)
            messages.append(Message(key, Kind.REMINDER, _reminder_text(current, now, policy), now))
        ongoing[key] = current
    for key, before in state.ongoing.items():
        if key in seen:
            continue
        if key in unknown or key.split(":", 1)[0] in unknown:
            ongoing[key] = before
        elif before.alerted_at is not None:
            messages.append(Message(key, Kind.RESOLVED, _resolved_text(before, now, policy), now))
    return _queued(replace(state, ongoing=ongoing), messages)


def _queued(state: AlertState, messages: list[Message]) -> AlertState:
    outbox = list(state.outbox)
    for message in messages:
        if message.kind is not Kind.PROBLEM:
            # a newer reminder, or the resolution, makes a reminder still waiting pointless
            outbox = [m for m in outbox if not (m.key == message.key and m.kind is Kind.REMINDER)]
        outbox.append(message)
    overflow = max(0, len(outbox) - MAX_OUTBOX)
    return replace(state, outbox=tuple(outbox[overflow:]), dropped=state.dropped + overflow)


# ---- texts -------------------------------------------------------------------------------------

def _problem_text(o: Ongoing, now: datetime, policy: Policy) -> str:
    held = f" (for {duration(now - o.first_seen)})" if now > o.first_seen else ""
    return _cut(f"[{policy.deployment}] PROBLEM: {o.title}{held}" + (f"\n{o.detail}" if o.detail else ""))


def _reminder_text(o: Ongoing, now: datetime, policy: Policy) -> str:
    return _cut(f"[{policy.deployment}] STILL A PROBLEM since {o.first_seen:%Y-%m-%d %H:%M} UTC "
                f"({duration(now - o.first_seen)}): {o.title}" + (f"\n{o.detail}" if o.detail else ""))


def _resolved_text(o: Ongoing, now: datetime, policy: Policy) -> str:
    seen = f"\nlast seen: {o.detail}" if o.detail else ""
    if o.first_detail and o.first_detail != o.detail:
        seen = f"\nfirst seen: {o.first_detail}" + seen
    return _cut(f"[{policy.deployment}] RESOLVED after {duration(now - o.first_seen)} "
                f"(since {o.first_seen:%Y-%m-%d %H:%M} UTC): {o.title}{seen}")


def duration(span: timedelta) -> str:
    """`45 s`, `12 min`, `3 h 05 min`, `2 d 4 h`: how long, for a person."""
    seconds = max(0, int(span.total_seconds()))
    if seconds < 120:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 120:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} min"
    return f"{hours // 24} d {hours % 24} h"


def _cut(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT - 1] + "…"


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _from_iso(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text is not None else None
