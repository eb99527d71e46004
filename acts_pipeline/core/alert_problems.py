"""Which observations of the platform are problems a person must hear about, as `alerting.Problem`s.

Pure: `alert_sensor` (`orchestration/alerts.py`) reads the instance and MongoDB and hands plain
values here. Four kinds, each with its key (one key = one ongoing problem):

| key | raised when | over when |
|---|---|---|
| `run:<sensor or schedule>` | a run it launched failed since the last look, or its latest finished run failed, and Dagster will not retry it | its latest finished run succeeded |
| `check:<asset>/<check>` | the check's latest evaluation failed with ERROR severity, or with WARN for `ALERTED_WARN_CHECKS` | its latest evaluation passed (or is a warning not alerted) |
| `gap:live` | minutes closed since the last look miss (symbol, minute) cells in snapshots or features | the next minutes closed are complete |
| `gap:withdrawn` | stream books of minutes the gap scan had already looked at were withdrawn by the recorder and are not stored now (the catch-up run deleted them) | said once: the next minute's look |
| `recorder:down`, `recorder:out_of_sync` | the stream recorder is stopped, silent, or never reported; or some symbols have had no book it vouches for over `OUT_OF_SYNC_HOLD` | it reports again; every symbol in sync |

Two checks are not alerted as checks: their subject is observed directly, sooner and with a
proper end. `snapshots_are_complete` looks back 15 minutes, so it stays red for 15 minutes after a
one-minute gap; the gap scan reports the missing cells when their minute closes and the end of
the gap when the next minute is complete. `stream_recorder_is_healthy` reads the recorder's
status once per minute run; the sensor reads the same status every tick, also when no run runs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from acts_pipeline.core.alerting import Problem
from acts_pipeline.core.quality import SymbolCoverage, minute_spans

#: A warning is worth a person for these checks only: `day_is_complete` (a closed UTC day missed
#: minutes in some collection: the net under the live scan, which does not see gaps made later,
#: such as books the recorder withdrew, nor klines). `month_is_complete` says the same per symbol
#: and month, once a day for every symbol: not again. Every ERROR failure is alerted.
ALERTED_WARN_CHECKS = frozenset({"day_is_complete"})
#: Checks observed directly by the sensor instead (see the module docstring).
OBSERVED_DIRECTLY = frozenset({"snapshots_are_complete", "stream_recorder_is_healthy"})
#: Checks that judge a closed period: their failure stands until the next period is judged, so it
#: is said once, with no reminders.
PERIOD_CHECKS = frozenset({"day_is_complete"})

#: A symbol resyncs in a second or two (a gap in its stream, a new symbol's first snapshot); one
#: without a vouched book this long is worth a look.
OUT_OF_SYNC_HOLD = timedelta(seconds=60)
#: A recorder that has never reported may be starting; one that stopped reporting is said at once
#: (its status is already 30 s old when it counts as silent).
NEVER_REPORTED_HOLD = timedelta(seconds=60)
#: A source the sensor cannot read for this long (MongoDB down) is a problem of its own.
UNREADABLE_HOLD = timedelta(seconds=60)
#: Symbols named per message; the rest are counted.
MAX_NAMED = 5
MAX_ERROR = 300


@dataclass(frozen=True)
class FailedRun:
    """A failed run: its id, the minute it collected (minute runs), the first line of the error
    that failed it, and whether Dagster will retry it (`run_retries`)."""

    run_id: str
    error: str
    minute: str | None = None
    will_retry: bool = False


def runs_problem(origin: str, failed: Sequence[FailedRun], latest_failed: FailedRun | None) -> Problem | None:
    """The runs of `origin` (a sensor or schedule): `failed` since the last look (oldest first),
    and its latest finished run if that failed. None: nothing failed and the latest succeeded.

    A failure Dagster will retry (`run_retries`) is not a problem yet: the retry may succeed (a
    PostgreSQL restart while the run was dequeued, a run process killed). Its retry's failure,
    once the retries are spent, is; a minute the retries could not save is a gap, said as such."""
    failed = [run for run in failed if not run.will_retry]
    if latest_failed is not None and latest_failed.will_retry:
        latest_failed = None
    if not failed and latest_failed is None:
        return None
    newest = failed[-1] if failed else latest_failed
    title = "minute runs are failing" if newest.minute else f"runs of {origin} are failing"
    error = _first_line(newest.error)
    detail = f"run {newest.run_id[:8]}" + (f" (minute {newest.minute})" if newest.minute else "") + \
        (f" failed: {error}" if error else " failed")
    if len(failed) > 1:
        detail += f" {len(failed)} runs of {origin} failed since the last look."
    return Problem(f"run:{origin}", title, detail)


@dataclass(frozen=True)
class CheckOutcome:
    """A check's latest evaluation: `severity` "ERROR" or "WARN"; `partition` if it judged one."""

    asset: str
    check: str
    passed: bool
    severity: str
    description: str = ""
    partition: str | None = None


def alerted(check: str, severity: str) -> bool:
    """Whether a failure of `check` with `severity` is worth a person (module docstring)."""
    if check in OBSERVED_DIRECTLY:
        return False
    return severity == "ERROR" or check in ALERTED_WARN_CHECKS


def check_problem(outcome: CheckOutcome) -> Problem | None:
    if outcome.passed or not alerted(outcome.check, outcome.severity):
        return None
    warning = " (warning)" if outcome.severity != "ERROR" else ""
    where = f" [{outcome.partition}]" if outcome.partition else ""
    return Problem(f"check:{outcome.asset}/{outcome.check}",
                   f"check {outcome.check} on {outcome.asset} failed{warning}",
                   f"{_first_line(outcome.description) or 'no description'}{where}",
                   remind=outcome.check not in PERIOD_CHECKS)


def gap_problem(coverage: Mapping[str, Sequence[SymbolCoverage]]) -> Problem | None:
    """The cells missing from each collection (name -> its coverage rows over the minutes just
    closed), or None if every expected cell is stored. Collections missing the same cells are
    named together."""
    said: dict[str, list[str]] = {}
    cells = 0
    symbols: set[str] = set()
    for collection, rows in coverage.items():
        missing = [r for r in rows if r.missing]
        if not missing:
            continue
        cells += sum(r.missing for r in missing)
        symbols |= {r.symbol for r in missing}
        text = "; ".join(f"{r.symbol} at {minute_spans(r.missing_minutes)}" for r in missing[:MAX_NAMED])
        if len(missing) > MAX_NAMED:
            text += f"; and {len(missing) - MAX_NAMED} more symbols"
        said.setdefault(text, []).append(collection)
    if not said:
        return None
    lines = [f"{', '.join(collections)}: {text}" for text, collections in said.items()]
    return Problem("gap:live", "missing cells in the live minutes",
                   f"{_count(cells, 'cell')} of {_count(len(symbols), 'symbol')} missing. " + "\n".join(lines)
                   + " (`acts-pipeline coverage --minutes 60` lists the gaps)")


def withdrawn_problem(deleted: Mapping[str, Mapping[datetime, str]]) -> Problem | None:
    """The cells whose stored stream book the recorder withdrew after the gap scan had looked at
    their minute, and that are not stored now (`{symbol: {minute: the recorder's reason}}`), or
    None. The live scan cannot say these: their minute was complete when it looked."""
    if not deleted:
        return None
    cells = sum(len(minutes) for minutes in deleted.values())
    named = "; ".join(f"{symbol} at {minute_spans(minutes)}" for symbol, minutes in sorted(deleted.items())[:MAX_NAMED])
    if len(deleted) > MAX_NAMED:
        named += f"; and {len(deleted) - MAX_NAMED} more symbols"
    reason = _first_line(next(iter(next(iter(deleted.values())).values()), ""))
    return Problem("gap:withdrawn", "stored books withdrawn by the recorder",
                   f"{_count(cells, 'cell')} of {_count(len(deleted), 'symbol')} no longer stored: {named}. The "
                   f"recorder learnt their book at the close may be wrong ({reason}), so the book and its features "
                   "were deleted: a visible gap instead of a wrong book (`acts-pipeline coverage --minutes 60` lists "
                   "the gaps)", remind=False)


def recorder_problems(why_down: str | None, never_reported: bool, symbols: Mapping[str, Mapping],
                      registered: Sequence[str]) -> tuple[list[Problem], set[str]]:
    """The stream recorder's problems, and the keys this observation cannot tell about: `why_down`
    ("stopped", "silent for 42 s", None while it reports), whether it ever reported, and its
    stored status's symbols (`{symbol: {"in_sync": bool, "reason": str | None}}`)."""
    if why_down:
        detail = (f"it is {why_down}: every book comes over REST, and minutes it does not record cannot be "
                  "backfilled; see its log and `curl <its address>/health`")
        hold = NEVER_REPORTED_HOLD if never_reported else timedelta(0)
        # while it is down, whether its books are in sync is not known
        return [Problem("recorder:down", "the stream recorder is down", detail, hold=hold)], {"recorder:out_of_sync"}
    out = {s: (symbols[s].get("reason") or "not in sync") if s in symbols else "not recorded yet"
           for s in registered if not (symbols.get(s) or {}).get("in_sync")}
    if not out:
        return [], set()
    named = "; ".join(f"{s}: {reason}" for s, reason in list(out.items())[:MAX_NAMED])
    more = f"; and {len(out) - MAX_NAMED} more" if len(out) > MAX_NAMED else ""
    return [Problem("recorder:out_of_sync", "the stream recorder cannot vouch for some books",
                    f"{len(out)} of {len(registered)} symbols without a book it vouches for (their books come "
                    f"over REST): {named}{more}", hold=OUT_OF_SYNC_HOLD)], set()


def unreadable(source: str, what: str, error: str) -> Problem:
    """The alert sensor could not read `what` (its problems there are unknown meanwhile)."""
    return Problem(f"sensor:{source}", f"the alert sensor cannot read {what}", _first_line(error), hold=UNREADABLE_HOLD)


def _count(n: int, what: str) -> str:
    return f"{n} {what}" if n == 1 else f"{n} {what}s"


def _first_line(text: str) -> str:
    line = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    return line if len(line) <= MAX_ERROR else line[:MAX_ERROR - 1] + "…"
