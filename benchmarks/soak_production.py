"""The soak on the production profile: `python benchmarks/soak.py --profile production ...`.

    python benchmarks/soak.py --profile production --minutes 120 --symbols 100 [--seed S]
    python benchmarks/soak.py --profile production --minutes 20 --symbols 20 --plan-only   # the plan, nothing started
    python benchmarks/soak.py --report DIR        # account again from a finished run's folder

What runs (all real processes, owned by this script so that it can break them; the run folder
keeps every log, soak.json and memory.jsonl):

- PostgreSQL 15 (`acts_devkit.postgres.start_postgres`: the Debian package's server on a free
  port, its data in a temporary folder removed at the end), the Dagster instance's storage
  (`DAGSTER_PG_URL`);
- the embedded MongoDB-compatible server, as the dev soak starts it (fixed port, storage in the run
  folder, so that it can be stopped for the outage and started again), `ACTS_MONGO_URI`;
- the exchange simulator (`--seed`, its past books kept for the whole run: the truth);
- a local Slack-like webhook (`acts_pipeline_tests/webhook_receiver.py`), `ACTS_ALERT_WEBHOOK_URL`:
  every message the alert sensor posts is kept with the moment it arrived;
- the services of `deploy/systemd` as separate processes with the environment of
  `deploy/acts.env.example` (`acts_devkit.production.Profile`): the code server, the webserver, the
  daemon, the stream recorder and the hourly reload, each started as its unit starts it
  (`acts-pipeline check-instance`, then its command), with `ACTS_SYMBOLS` = N trading symbols,
  `ACTS_CAPTURE_TOLERANCE_SECONDS=10`, and the simulator's REST and stream URLs.

What is done to it (planned up front from the seed and printed; each logged with its minute):

- the dev soak's seeded exchange faults, unchanged (`soak.minute_rules`: every minute a random mix
  of recoverable REST faults, at four minutes a non-recoverable one) and its stream faults (every
  kind at least once, in minutes of their own for the connection faults);
- one MongoDB outage: the server stopped for 90-150 s, then started on the same port and storage;
- one PostgreSQL restart: fast shutdown while a minute run waits for its close, 3-8 s down, start
  (same data, same port);
- one restart of EACH service, as a crash and systemd's `Restart=always` (SIGKILL to the main
  process, its unit's `RestartSec`, then its ExecStartPre and command again): the code server
  while the minute's run is in flight (its unit's KillMode=process leaves the run to finish), the
  daemon, the webserver, the recorder, the hourly reload. A service that exits unplanned is
  started again the same way, and counted: any such crash fails the soak.

Where: every episode in its own span of minutes, from soak minute 2 to M-2 (a 20-minute soak
holds them all). With M >= 90 the five service restarts come first (minutes 2 to about 20) and
the outage, the PostgreSQL restart and the non-recoverable faults over the whole run, so that each
service's memory is compared within one life of its process (like with like).

Memory: every 10 s the RSS of each service's process tree (the code server's apart from its run
processes, which are counted on their own), PostgreSQL's (postmaster and backends) and the
database's and simulator's, to memory.jsonl. Reported per service: the mean RSS of the first 30
minutes after warm-up (10 minutes after start-up, and at least 5 after the last planned service
restart) against the last 30 minutes, and the ratio; flat means last <= 1.10 x first, or less than
20 MB more. A service whose process changed inside or between the windows is said so. When the two
windows would overlap (M too short), the memory verdict is not given, and the minutes it needs
are said. PostgreSQL, the database and the simulator are reported, not judged.

Accounted (the dev soak's accounting, `soak.report`, on the production episodes): 0 duplicated,
0 corrupt, 0 wrongly labelled; a missing snapshot or features cell explained only by a
non-recoverable REST fault with no usable recorder book, by the recorder's withdrawal of a stored
book (a revision, explained by a fault on its symbol or connection), or by a downtime whose window
touched the minute's run (the code server's restart until the webserver has loaded its location again, the
daemon's until minute_sensor ticks again, PostgreSQL's until it accepts connections; the MongoDB
outage explains nothing: the spool must make it invisible); every stream book against the
simulator's truth; every unusable boundary book explained by an episode on its symbol or
connection (the recorder's restart is the dev soak's recorder kill). Then the alerts:

- every cluster of minutes with missing cells (snapshots or features) is covered by exactly one
  `missing cells in the live minutes` episode (PROBLEM then RESOLVED), alerted within 2 minutes
  of the first missed close unless the daemon was down then; except the cells deleted after the
  live scan because the recorder withdrew their book, each covered by one `stored books withdrawn
  by the recorder` episode within 10 minutes of its close; every failed run of a sensor or schedule that Dagster did not
  retry by one `... runs are failing` episode; the outage by one `the alert sensor cannot read
  MongoDB` episode when it lasted >= 120 s (it may fire from 60 s: at most once then); the
  recorder's restart by one `the stream recorder is down` episode when it was down >= 75 s;
- every episode has exactly one PROBLEM and one RESOLVED (reminders counted), and every episode is
  explained by an episode of the plan (its kind and its time: the table says which), or by the
  start-up (a PROBLEM in the first 3 minutes). Any other is UNEXPLAINED and fails the soak.

Exit 1 on any failed verdict: the dev soak's, an unexplained or missing or repeated alert, an
unplanned crash, a memory growth (when judged).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
if str(PROJECT) not in sys.path:  # the tests' webhook receiver, as the end-to-end tests use it
    sys.path.insert(0, str(PROJECT))

import soak as dev  # noqa: E402
from soak import MINUTE, floor_minute, http, iso, now, parse, say  # noqa: E402

from acts_devkit.postgres import PostgresServer, start_postgres  # noqa: E402
from acts_devkit.production import SERVICES, UNITS, Profile, read_unit  # noqa: E402
from acts_pipeline.core.cells import format_minute, parse_minute  # noqa: E402
from acts_pipeline.platform.processes import mongo_uri_of, simulator_api_url, simulator_ws_url, start_simulator  # noqa: E402
from acts_pipeline_tests.webhook_receiver import WebhookReceiver  # noqa: E402

#: Minutes each episode occupies from the one it starts in (its recovery included).
SPANS = {"mongo_outage": 4, "postgres_restart": 1, "restart:code-server": 2, "restart:daemon": 2,
         "restart:webserver": 1, "restart:recorder": 2, "restart:reload-code": 1}
SERVICE_RESTARTS = [f"restart:{name}" for name in SERVICES]
#: Memory: samples every MEMORY_INTERVAL s; windows of MEMORY_WINDOW minutes after MEMORY_WARMUP
#: (and MEMORY_SETTLE after the last planned service restart); flat within the tolerance.
MEMORY_INTERVAL = 10.0
MEMORY_WINDOW = 30
MEMORY_WARMUP = 10
MEMORY_SETTLE = 5
FLAT_RATIO = 1.10
FLAT_MB = 20.0
#: With this many minutes the service restarts come first (memory compared within one life).
RESTARTS_FIRST_FROM = 90
STARTUP_ALERTS = timedelta(minutes=3)
OUTAGE_ALERT_REQUIRED_S = 120
RECORDER_DOWN_ALERT_REQUIRED_S = 75
#: The code server's run processes: its gRPC server starts each run with multiprocessing's spawn
#: (`python -c "from multiprocessing.spawn import spawn_main; ..." --multiprocessing-fork`); their
#: children (compute log tails) are counted with them.
RUN_PROCESS_MARKERS = (b"multiprocessing.spawn", b"execute_run", b"resume_run", b"execute_step")
#: What the code server says once it has loaded the definitions.
CODE_SERVER_LOADED = "Started Dagster code server for module acts_pipeline.definitions"
#: What the reload service says once it waits for the next hour.
RELOAD_WAITING = "10 s past every hour; Ctrl-C stops"
#: Every episode in a span of its own between soak minutes 2 and M-2.
MIN_MINUTES = sum(SPANS.values()) + 4


# --------------------------------------------------------------------------------------------
# The plan


def restart_sec(name: str) -> float:
    """The unit's RestartSec: how long systemd waits before starting a crashed service again."""
    values = read_unit(UNITS / SERVICES[name])["Service"].get("RestartSec", ["0.1"])
    return float(values[-1].rstrip("s"))


def place(rng: random.Random, names: list[str], low: int, high: int, slack_cap: int | None = None) -> dict[str, int]:
    """Each episode's first soak minute: in a random order, in spans of their own from `low` to
    before `high`, the free minutes spread at random between them (at most `slack_cap` in all)."""
    order = list(names)
    rng.shuffle(order)
    need = sum(SPANS[n] for n in order)
    slack = (high - low) - need
    if slack < 0:
        raise ValueError(f"{len(order)} episodes need {need} minutes between soak minutes {low} and {high}; "
                         f"there are {high - low}: run longer (--minutes)")
    if slack_cap is not None:
        slack = min(slack, slack_cap)
    gaps = [0] * (len(order) + 1)
    for _ in range(slack):
        gaps[rng.randrange(len(gaps))] += 1
    starts, at = {}, low
    for n, name in enumerate(order):
        at += gaps[n]
        starts[name] = at
        at += SPANS[name]
    return starts


def plan_production(minutes: int, symbols: list[str], seed: int) -> dict:
    """The episodes of the production soak (see the module docstring), the non-recoverable faults
    in free minutes, the per-minute REST fault seconds and the stream faults."""
    rng = random.Random(seed * 31 + 7)
    plan: dict = {"seed": seed, "minutes": minutes, "symbols": symbols, "profile": "production"}
    low, high = 2, minutes - 2
    restarts_first = minutes >= RESTARTS_FIRST_FROM
    if restarts_first:
        starts = place(rng, SERVICE_RESTARTS, low, high, slack_cap=8)
        band = max(s + SPANS[n] for n, s in starts.items())
        starts.update(place(rng, ["mongo_outage", "postgres_restart"], band + 1, high))
    else:
        starts = place(rng, [*SERVICE_RESTARTS, "mongo_outage", "postgres_restart"], low, high)
    busy: set[int] = set()
    for name, index in starts.items():
        busy |= set(range(index, index + SPANS[name]))
    episodes = []
    for name, index in sorted(starts.items(), key=lambda kv: kv[1]):
        episode = {"name": name, "index": index}
        if name == "mongo_outage":
            episode.update(second=rng.randint(42, 50), seconds=rng.randint(90, 150))
        elif name == "postgres_restart":  # while the minute's run waits for its close
            episode.update(second=rng.randint(35, 45), seconds=rng.randint(3, 8))
        elif name == "restart:code-server":  # the kill waits (until :58) for the minute's run in flight
            episode.update(second=50)
        elif name == "restart:recorder":
            episode.update(second=rng.randint(20, 45))
        else:
            episode.update(second=rng.randint(3, 55))
        episodes.append(episode)
    plan["episodes"] = episodes
    plan["restarts_first"] = restarts_first
    # the dev soak's non-recoverable faults, in minutes free of episodes
    free = [i for i in range(1, minutes - 1) if i not in busy]
    rng.shuffle(free)
    kinds = list(dev.NONRECOVERABLE)
    rng.shuffle(kinds)
    plan["nonrecoverable"] = {str(i): {"kind": k, "symbol": "*" if k == "ban_418" else rng.choice(symbols)}
                              for i, k in zip(sorted(free[:len(kinds)]), kinds, strict=False)}
    plan["inject_seconds"] = [rng.randint(17, 40) for _ in range(minutes)]
    # the dev soak's stream faults; its recorder kill is this soak's recorder restart, which the
    # stream faults stay clear of as they stay clear of dev's restart there
    recorder = next(e for e in episodes if e["name"] == "restart:recorder")
    scratch = {**plan, "restart": {"index": recorder["index"] + 1}}
    dev.plan_stream(scratch)
    plan["stream_faults"] = scratch["stream_faults"]
    # memory windows (soak minutes), judged when they do not overlap
    last_restart = max(e["index"] + SPANS[e["name"]] for e in episodes if e["name"] in SERVICE_RESTARTS)
    first_from = max(MEMORY_WARMUP, last_restart + MEMORY_SETTLE) if restarts_first else MEMORY_WARMUP
    plan["memory"] = {"first": [first_from, first_from + MEMORY_WINDOW], "last": [minutes - MEMORY_WINDOW, minutes],
                      "judged": restarts_first and first_from + MEMORY_WINDOW <= minutes - MEMORY_WINDOW,
                      "needs_minutes": first_from + 2 * MEMORY_WINDOW if restarts_first else
                      max(RESTARTS_FIRST_FROM, MEMORY_WARMUP + 2 * MEMORY_WINDOW)}
    return plan


def print_plan(plan: dict) -> None:
    print(f"production soak plan (seed {plan['seed']}): {plan['minutes']} minutes x {len(plan['symbols'])} symbols "
          f"({', '.join(plan['symbols'][:12])}{', ...' if len(plan['symbols']) > 12 else ''}); tolerance "
          f"{dev.TOLERANCE_S:g} s; books: stream")
    for e in plan["episodes"]:
        what = {"mongo_outage": f"MongoDB outage for {e.get('seconds')} s",
                "postgres_restart": f"PostgreSQL restart, down {e.get('seconds')} s",
                "restart:code-server": "code server restart (SIGKILL while the minute's run is in flight)"}.get(
            e["name"], f"{e['name'].split(':', 1)[-1]} restart (SIGKILL, RestartSec, start)")
        print(f"  soak minute {e['index']:>3} at :{e['second']:02d}: {what}")
    for f in plan["stream_faults"]:
        delay = f" delay {f['delay']} s" if f.get("delay") is not None else ""
        print(f"  soak minute {f['index']:>3} at :{f['second']:02d}: stream fault {f['kind']}{delay} on {f['symbol']}"
              + (" (its connection)" if f["kind"] in dev.STREAM_CONNECTION_KINDS else ""))
    for index, special in sorted(plan["nonrecoverable"].items(), key=lambda kv: int(kv[0])):
        print(f"  soak minute {int(index):>3}: non-recoverable {special['kind']} on {special['symbol']}")
    memory = plan["memory"]
    print(f"  memory: mean RSS of soak minutes {memory['first'][0]}-{memory['first'][1]} against "
          f"{memory['last'][0]}-{memory['last'][1]}" if memory["judged"] else
          f"  memory: sampled, NOT JUDGED (the memory verdict needs --minutes >= {memory['needs_minutes']}: two "
          f"windows of {MEMORY_WINDOW} minutes after the warm-up)")
    print("  recoverable faults: drawn per minute and symbol (p=0.55) from a RNG seeded with (seed, minute)", flush=True)


# --------------------------------------------------------------------------------------------
# Memory


def _processes() -> dict[int, tuple[int, int, bytes]]:
    """Every process: pid -> (parent pid, RSS in bytes, command line)."""
    page = os.sysconf("SC_PAGE_SIZE")
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            rss = int((entry / "statm").read_text().split()[1]) * page
            cmdline = (entry / "cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            continue
        table[int(entry.name)] = (ppid, rss, cmdline)
    return table


def _tree(table: dict, root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        if pid in table:
            found.append(pid)
            todo.extend(children.get(pid, []))
    return found


class MemorySampler:
    """Every `interval` s, one JSON line per sample: per process tree its main pid, the RSS of the
    main process, of the tree without run processes, of the run processes and their count."""

    def __init__(self, path: Path, roots, interval: float = MEMORY_INTERVAL):
        self.path, self.roots, self.interval = path, roots, interval
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True, name="memory sampler")

    def start(self) -> MemorySampler:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(15)

    def sample(self) -> dict:
        table = _processes()
        row: dict = {"t": iso(now())}
        for name, pid in self.roots().items():
            if pid is None or pid not in table:
                row[name] = None
                continue
            pids = _tree(table, pid)
            runs = [p for p in pids if p != pid and any(m in table[p][2] for m in RUN_PROCESS_MARKERS)]
            run_trees = {q for r in runs for q in _tree(table, r)}
            row[name] = {"pid": pid, "main": table[pid][1],
                         "tree": sum(table[p][1] for p in pids if p not in run_trees),
                         "runs": sum(table[p][1] for p in run_trees), "n_runs": len(runs), "n": len(pids)}
        return row

    def _loop(self) -> None:
        with open(self.path, "a") as out:
            while not self.stopping.is_set():
                try:
                    out.write(json.dumps(self.sample()) + "\n")
                    out.flush()
                except Exception as exc:  # noqa: BLE001 - a sampler must not stop the soak
                    say(f"memory sample failed: {exc}")
                self.stopping.wait(self.interval)


_NAMED_CELLS = re.compile(r"([A-Z0-9]{2,20}) at ((?:\d{4}-\d{2}-\d{2}-\d{2}:\d{2}(?:\.\.\d{2}:\d{2})?(?:, )?)+)")


def withdrawn_cells_named(text: str) -> set[tuple[datetime, str]]:
    """The (minute, symbol) cells a `stored books withdrawn by the recorder` message names
    ("DOGEUSDT at 2026-12-02-16:51..16:53, 2026-12-02-17:04; ALGOBTC at ..."): an episode is matched
    to the cells it says, not to every withdrawn cell of a symbol it names (two cells of one
    symbol, said in two messages, each counted twice before)."""
    cells = set()
    for symbol, spans in _NAMED_CELLS.findall(text.split("\n", 1)[-1].split(". The recorder")[0]):
        for span in filter(None, (x.strip() for x in spans.split(","))):
            first, _, last = span.partition("..")
            start = parse_minute(first)
            end = start.replace(hour=int(last[:2]), minute=int(last[3:])) if last else start
            while start <= end:
                cells.add((start, symbol))
                start += MINUTE
    return cells


def memory_accounting(state: dict, path: Path) -> tuple[list[str], int]:
    """(lines, services not flat) from memory.jsonl and the plan's windows."""
    plan = state["plan"]
    memory = plan["memory"]
    first = parse(state["first_minute"])
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
    if memory["judged"]:
        span = (memory["first"], memory["last"])
    else:  # for information only: the first half against the second
        span = ([0, plan["minutes"] // 2], [plan["minutes"] // 2, plan["minutes"]])
    lines = [f"memory (mean RSS of each process tree, MB; {len(rows)} samples every {MEMORY_INTERVAL:g} s): soak "
             f"minutes {span[0][0]}-{span[0][1]} against {span[1][0]}-{span[1][1]}"]
    if not memory["judged"]:
        lines.append(f"  NOT JUDGED: the memory verdict needs --minutes >= {memory['needs_minutes']} (two windows of "
                     f"{MEMORY_WINDOW} minutes after the warm-up; this soak has {plan['minutes']}); the halves of the "
                     "soak are shown for information")

    def window(w):
        low, high = first + timedelta(minutes=w[0]), first + timedelta(minutes=w[1])
        return [r for r in rows if low <= parse(r["t"]) < high]

    windows = [window(span[0]), window(span[1])]
    names = list(SERVICES) + ["postgres", "mongodb", "simulator"]
    lines.append(f"  {'process':<13}{'first':>9}{'last':>9}{'ratio':>8}{'growth':>9}  verdict")
    grown = 0
    result = {}
    for name in names:
        means, pids = [], []
        for w in windows:
            values = [r[name]["tree"] for r in w if r.get(name)]
            means.append(sum(values) / len(values) / 2**20 if values else None)
            pids.append(sorted({r[name]["pid"] for r in w if r.get(name)}))
        a, b = means
        if a is None or b is None:
            lines.append(f"  {name:<13}{'-':>9}{'-':>9}{'':>8}{'':>9}  no samples")
            continue
        flat = b <= a * FLAT_RATIO or b - a <= FLAT_MB
        notes = []
        if len(pids[0]) > 1 or len(pids[1]) > 1:
            notes.append("restarted INSIDE a window (" + "; ".join(
                f"{'first' if n == 0 else 'last'}: pids {p}" for n, p in enumerate(pids) if len(p) > 1) + ")")
        elif pids[0] != pids[1]:
            notes.append(f"another process in the last window (pid {pids[0][0]} then {pids[1][0]})")
        judged = memory["judged"] and name in SERVICES
        verdict = ("flat" if flat else "GROWS") if judged else ("(not judged)" if name in SERVICES else "(reported)")
        if judged and not flat:
            grown += 1
        result[name] = {"first_mb": round(a, 1), "last_mb": round(b, 1), "ratio": round(b / a, 3), "pids": pids,
                        "verdict": verdict, "notes": notes}
        lines.append(f"  {name:<13}{a:>9.1f}{b:>9.1f}{b / a:>8.3f}{b - a:>+9.1f}  {verdict}"
                     + (f"; {'; '.join(notes)}" if notes else ""))
        if name == "code-server":
            runs = [[r[name]["runs"] / 2**20 for r in w if r.get(name) and r[name]["n_runs"]] for w in windows]
            if all(runs):
                lines.append(f"  {'(its runs)':<13}{sum(runs[0]) / len(runs[0]):>9.1f}{sum(runs[1]) / len(runs[1]):>9.1f}"
                             f"{'':>8}{'':>9}  per sample with runs in flight ({len(runs[0])} / {len(runs[1])} samples)")
    state["memory"] = result
    return lines, grown


# --------------------------------------------------------------------------------------------
# Alerts

ALERT_FIRST_LINE = re.compile(
    r"^\[(?P<deployment>[^\]]+)\] (?:(?P<problem>PROBLEM): (?P<ptitle>.*?)(?: \(for [^)]*\))?"
    r"|(?P<resolved>RESOLVED) after .*? \(since [^)]*\): (?P<rtitle>.*)"
    r"|(?P<reminder>STILL A PROBLEM) since .*? \([^)]*\): (?P<stitle>.*))$")
GAP_TITLE = "missing cells in the live minutes"
WITHDRAWN_TITLE = "stored books withdrawn by the recorder"
#: The alert sensor reads the recorder's withdrawals of the last hour (alerts.GAP_LOOKBACK).
WITHDRAWN_ALERT_WITHIN = timedelta(minutes=62)
MINUTE_KEY = re.compile(r"\d{4}-\d{2}-\d{2}-\d{2}:\d{2}")


def parse_alert(text: str) -> tuple[str, str] | None:
    """(PROBLEM | RESOLVED | REMINDER, title) of a message the alert sensor posted."""
    lines = [line for line in text.splitlines()
             if not (line.startswith("(") and "could not be delivered" in line)]
    match = ALERT_FIRST_LINE.match(lines[0]) if lines else None
    if not match:
        return None
    if match["problem"]:
        return "PROBLEM", match["ptitle"]
    if match["resolved"]:
        return "RESOLVED", match["rtitle"]
    return "REMINDER", match["stitle"]


def alert_episodes(alerts: list[dict]) -> tuple[list[dict], list[str]]:
    """The episodes (one title from its PROBLEM to its RESOLVED) and what does not fit one."""
    episodes: list[dict] = []
    open_: dict[str, dict] = {}
    anomalies = []
    for alert in sorted(alerts, key=lambda a: a["at"]):
        at = datetime.fromtimestamp(alert["at"], UTC)
        parsed = parse_alert(alert["text"])
        if parsed is None:
            anomalies.append(f"UNPARSED alert at {at:%H:%M:%S}: {alert['text'][:200]!r}")
            continue
        kind, title = parsed
        if kind == "PROBLEM":
            if title in open_:
                open_[title]["problems"] += 1
                anomalies.append(f"PROBLEM again while open at {at:%H:%M:%S}: {title}")
                continue
            open_[title] = {"title": title, "problem": at, "resolved": None, "reminders": 0, "problems": 1,
                            "text": alert["text"][:600]}
            episodes.append(open_[title])
        elif title not in open_:
            anomalies.append(f"{kind} without a PROBLEM at {at:%H:%M:%S}: {title}")
        elif kind == "REMINDER":
            open_[title]["reminders"] += 1
        else:
            closed = open_.pop(title)
            closed["resolved"], closed["resolved_text"] = at, alert["text"][:600]
    return episodes, anomalies


def _windows(state: dict) -> dict[str, list[tuple[datetime, datetime]]]:
    """The planned episodes as time windows, by kind."""
    stopped = parse(state["stopped_at"])
    found: dict[str, list[tuple[datetime, datetime]]] = {}
    outage = state.get("outage") or {}
    if outage.get("from"):
        found["mongo_outage"] = [(parse(outage["from"]), parse(outage.get("to")) or stopped)]
    for d in state.get("downtimes", []):
        found.setdefault(d["label"], []).append((parse(d["from"]), parse(d.get("to")) or stopped))
    for name, r in (state.get("restarts") or {}).items():
        if r.get("killed"):
            found.setdefault(f"{name} restart", []).append((parse(r["killed"]), parse(r.get("ready")) or stopped))
    for c in state.get("crashes", []):
        found.setdefault("UNPLANNED crash", []).append((parse(c["at"]), parse(c.get("ready")) or stopped))
    for f in state.get("stream_faults", []):
        posted = parse(f["posted_at"])
        found.setdefault("stream fault", []).append((posted, posted + timedelta(seconds=(f.get("delay") or 0) + 3)))
    for e in state.get("injections", []):
        if not e["recoverable"]:
            minute = parse(e["minute"])
            found.setdefault(f"non-recoverable {e['kind'].split()[0]}", []).append(
                (parse(e["posted_at"]), minute + MINUTE + timedelta(seconds=15)))
    return found


def _near(windows, at: datetime, before: timedelta, after: timedelta) -> bool:
    """Whether `at` lies in [start - before, end + after] of one of `windows`."""
    return any(start - before <= at <= end + after for start, end in windows)


def alert_accounting(state: dict) -> tuple[list[str], int]:
    """(lines, failures): every alert that should have fired fired once, and nothing else fired."""
    episodes, anomalies = alert_episodes(state.get("alerts", []))
    first = parse(state["first_minute"])
    stopped = parse(state["stopped_at"])
    windows = _windows(state)
    minute = timedelta(minutes=1)

    def ends(e):
        return e["resolved"] or stopped

    def covers(e, moment: datetime, slack: float = 180) -> bool:
        """Whether the episode `e` is about a moment (a close, a failure): from `slack` s before
        its PROBLEM (the sensor's scan settles and ticks) to its RESOLVED."""
        return e["problem"] - timedelta(seconds=slack) <= moment <= ends(e)

    # what should have fired
    required: list[dict] = []
    # A cell deleted after the live scan (its book withdrawn by the recorder minutes later) is not
    # a live gap: the sensor says it as `stored books withdrawn by the recorder` (gap:withdrawn).
    missing = [(parse(row[0]), row[1], row[2] if len(row) > 2 else None)
               for name in ("order_book_snapshots", "order_book_features")
               for row in (state.get("missing") or {}).get(name, [])]
    withdrawn = sorted({(m, s) for m, s, label in missing if label and label.startswith("book withdrawn")})
    gap_minutes = sorted({m for m, s, label in missing if (m, s) not in set(withdrawn)})
    gap_minutes = [m for m in gap_minutes if m + MINUTE <= stopped - timedelta(seconds=90)]
    clusters: list[list[datetime]] = []
    for m in gap_minutes:
        if clusters and m - clusters[-1][-1] <= MINUTE:
            clusters[-1].append(m)
        else:
            clusters.append([m])
    gaps = [e for e in episodes if e["title"] == GAP_TITLE]
    daemon_down = windows.get("daemon restart", []) + windows.get("UNPLANNED crash", [])
    for cluster in clusters:
        close = cluster[0] + MINUTE
        # while the daemon is down the alert sensor is too: it looks back when it is up again
        excused = _near(daemon_down, close, timedelta(seconds=30), minute)
        covering = [e for e in gaps if any(covers(e, m + MINUTE, 480 if excused else 180) for m in cluster)]
        latency = (covering[0]["problem"] - close).total_seconds() if covering else None
        late = latency is not None and latency > 120 and not excused
        required.append({"what": f"gap {cluster[0]:%H:%M}" + (f"-{cluster[-1]:%H:%M}" if len(cluster) > 1 else ""),
                         "episodes": covering, "latency": latency, "late": late})
    withdrawn_episodes = [e for e in episodes if e["title"] == WITHDRAWN_TITLE]
    for m, s in withdrawn:
        # the withdrawal may come long after the close (a quiet symbol's unconfirmed closes, on a
        # drop): an episode after the close, within the hour the sensor looks back, naming it
        close = m + MINUTE
        after = [e for e in withdrawn_episodes if close <= e["problem"] <= close + WITHDRAWN_ALERT_WITHIN]
        naming = [e for e in after if (m, s) in withdrawn_cells_named(e["text"])]
        required.append({"what": f"withdrawn and deleted {s} {m:%H:%M}", "latency": None,
                         "episodes": naming or [e for e in after if not withdrawn_cells_named(e["text"])
                                                or "more symbols" in e["text"]]})
    failed_runs = (state.get("runs") or {}).get("failed_runs", [])
    for run in failed_runs:
        title = "minute runs are failing" if run.get("minute") else f"runs of {run.get('origin')} are failing"
        if not run.get("origin"):
            continue  # launched by hand or a backfill: the sensor does not alert those
        if run.get("will_retry"):
            continue  # Dagster retried it: only a retry's failure is alerted (its own entry here)
        end = datetime.fromtimestamp(run["end"], UTC) if run.get("end") else stopped
        required.append({"what": f"failed run {run['run']} ({run.get('minute') or run['origin']})",
                         "episodes": [e for e in episodes if e["title"] == title and covers(e, end)], "latency": None})
    outage = windows.get("mongo_outage", [])
    optional: list[dict] = []
    for start, end in outage:
        entry = {"what": f"MongoDB outage {start:%H:%M:%S}-{end:%H:%M:%S} ({(end - start).total_seconds():.0f} s)",
                 "episodes": [e for e in episodes if e["title"] == "the alert sensor cannot read MongoDB"
                              and start <= e["problem"] <= end + minute], "latency": None}
        (required if (end - start).total_seconds() >= OUTAGE_ALERT_REQUIRED_S else optional).append(entry)
    for start, end in windows.get("recorder restart", []):
        entry = {"what": f"recorder down {start:%H:%M:%S}-{end:%H:%M:%S} ({(end - start).total_seconds():.0f} s)",
                 "episodes": [e for e in episodes if e["title"] == "the stream recorder is down"
                              and start <= e["problem"] <= end + minute], "latency": None}
        (required if (end - start).total_seconds() >= RECORDER_DOWN_ALERT_REQUIRED_S else optional).append(entry)

    # what explains each episode
    missing_closes = [m + MINUTE for m in gap_minutes]
    empty = [parse_minute_text(s) + MINUTE for s in state.get("empty_sides", []) if parse_minute_text(s)]
    # the episodes that stop or slow a part of the platform (not the faults on one symbol)
    big = [w for k, ws in windows.items() for w in ws if k != "stream fault" and not k.startswith("non-recoverable")]
    run_causes = [w for k, ws in windows.items() for w in ws if k in (
        "code-server restart", "daemon restart", "postgres restart", "mongo_outage", "UNPLANNED crash")
        or k.startswith("non-recoverable")]
    unexplained = []
    for e in episodes:
        title, at = e["title"], e["problem"]
        why = None
        if at < first + STARTUP_ALERTS:
            why = "start-up"
        elif title == GAP_TITLE:
            if any(covers(e, c, 480) for c in missing_closes):
                why = "missing cells"
            elif _near(outage, at, timedelta(0), timedelta(minutes=4)):
                why = "MongoDB outage (cells stored late, from the spool)"
            elif _near(big, at, timedelta(minutes=3), timedelta(minutes=4)):
                why = "cells stored late after a restart"
        elif title == WITHDRAWN_TITLE:
            why = "stored books withdrawn after the gap scan" if any(
                m + MINUTE <= at <= m + MINUTE + WITHDRAWN_ALERT_WITHIN for m, _ in withdrawn) else None
        elif title == "the alert sensor cannot read MongoDB":
            why = "MongoDB outage" if _near(outage, at, timedelta(0), minute) else None
        elif title.startswith("the alert sensor cannot read"):
            pg = windows.get("postgres restart", []) + windows.get("daemon restart", [])
            why = "PostgreSQL or daemon restart" if _near(pg, at, timedelta(seconds=30), timedelta(minutes=2)) else None
        elif title.endswith("runs are failing"):
            covered = [r for r in failed_runs if r.get("end") and covers(e, datetime.fromtimestamp(r["end"], UTC))]
            causes = [r for r in covered if r.get("close") and _near(run_causes, parse(r["close"]),
                                                                     timedelta(minutes=1), timedelta(minutes=3))]
            why = f"failed runs ({len(causes)} of {len(covered)} with a planned cause)" if covered and \
                len(causes) == len(covered) else None
        elif title.startswith("check "):
            if "day_is_complete" in title and gap_minutes:
                why = "missing cells that day"
            elif any(at - timedelta(minutes=5) <= c <= at for c in empty):
                why = "an empty book side stored (REST fault empty_bids/empty_asks)"
            elif _near(big, at, timedelta(minutes=5), timedelta(0)):
                why = "a restart or the outage in the 5 minutes before"
        elif title == "the stream recorder is down":
            near = windows.get("recorder restart", []) + outage + windows.get("UNPLANNED crash", [])
            why = "recorder restart or MongoDB outage" if _near(near, at, timedelta(0), timedelta(minutes=2)) else None
        elif title == "the stream recorder cannot vouch for some books":
            near = windows.get("recorder restart", []) + outage + windows.get("stream fault", []) + [
                w for k, ws in windows.items() if k.startswith("non-recoverable") for w in ws]
            why = "recorder restart, outage, stream or REST fault" if _near(
                near, at, timedelta(0), timedelta(minutes=3)) else None
        e["explained_by"] = why
        if why is None:
            unexplained.append(e)

    lines = [f"alerts: {len(state.get('alerts', []))} messages, {len(episodes)} episodes "
             f"(titles: {dict(Counter(e['title'] for e in episodes))})"]
    failures = len(anomalies) + len(unexplained)
    for e in episodes:
        lines.append(f"  {e['problem']:%H:%M:%S} PROBLEM {e['title']!r} -> "
                     + (f"RESOLVED {e['resolved']:%H:%M:%S}" if e["resolved"] else "NOT RESOLVED")
                     + (f", {e['reminders']} reminders" if e["reminders"] else "")
                     + f"; explained by: {e['explained_by'] or 'NOTHING (UNEXPLAINED)'}")
        if e["resolved"] is None and e["problem"] < stopped - timedelta(minutes=3):
            failures += 1
            lines.append("    FAIL: never resolved")
    for entry in required + optional:
        n = len(entry["episodes"])
        kind = "required" if entry in required else "may fire"
        ok = n == 1 if kind == "required" else n <= 1
        entry["ok"] = ok and not entry.get("late")
        if not entry["ok"]:
            failures += 1
        lines.append(f"  {kind:<9} {entry['what']}: fired {n}x"
                     + (f", {entry['latency']:.0f} s after the close" if entry["latency"] is not None else "")
                     + ("" if entry["ok"] else "  FAIL" + (" (later than 2 minutes)" if entry.get("late") else "")))
    lines.extend(f"  FAIL: {a}" for a in anomalies)
    fired_once = sum(1 for r in required if r["ok"])
    lines.append(f"  alerts that should have fired: {len(required)}, fired once (in time): {fired_once}; may fire: "
                 f"{len(optional)}, fired: {sum(len(o['episodes']) for o in optional)}; unexplained episodes: "
                 f"{len(unexplained)}; anomalies: {len(anomalies)}")
    state["alert_verdict"] = {
        "episodes": [{**e, "problem": iso(e["problem"]), "resolved": iso(e["resolved"])} for e in episodes],
        "required": [{"what": r["what"], "fired": len(r["episodes"]), "latency_s": r["latency"], "ok": r["ok"]}
                     for r in required],
        "optional": [{"what": r["what"], "fired": len(r["episodes"]), "ok": r["ok"]} for r in optional],
        "unexplained": len(unexplained), "anomalies": anomalies, "failures": failures,
        "withdrawn_deleted": [[iso(m), s] for m, s in withdrawn]}
    return lines, failures


def parse_minute_text(text: str) -> datetime | None:
    match = MINUTE_KEY.search(text)
    return datetime.strptime(match.group(0), "%Y-%m-%d-%H:%M").replace(tzinfo=UTC) if match else None


# --------------------------------------------------------------------------------------------
# The soak


RUNS_QUERY = """{ runsOrError(limit: 2000) { ... on Runs { results {
    runId status creationTime startTime endTime tags { key value } } } } }"""


class ProductionSoak(dev.Soak):
    """The dev soak's fault injection, recorder /health polling and book check, on the services of
    deploy/ (acts_devkit.production.Profile) with PostgreSQL and an alert webhook."""

    def __init__(self, args: argparse.Namespace):  # noqa: D107 - not the dev soak's folder layout
        self.args = args
        self.dir = Path(tempfile.mkdtemp(prefix="acts-soak-production-"))
        self.mongo_port = dev.free_port()
        self.mongo = self.simulator = None
        self.postgres: PostgresServer | None = None
        self.profile: Profile | None = None
        self.receiver: WebhookReceiver | None = None
        self.sampler: MemorySampler | None = None
        self.health_port = 0
        self.state: dict = {"dir": str(self.dir), "profile": "production", "injections": [], "loads": [],
                            "events": [], "book_source": "stream", "stream_faults": [], "recorder_lives": {},
                            "downtimes": [], "restarts": {}, "crashes": []}
        self.lock = threading.Lock()
        self.restarting: set[str] = set()
        self.threads: list[threading.Thread] = []

    # -- processes ---------------------------------------------------------------------------

    def graphql(self, query: str, timeout: float = 20) -> dict:
        return self.profile.graphql(query, timeout=timeout)

    def wait_until_ticking(self, since: float, timeout: float = 300) -> datetime:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                tick = self.last_sensor_tick()
                if tick is not None and tick >= since:
                    return datetime.fromtimestamp(tick, UTC)
            except (OSError, KeyError, TypeError, ValueError, RuntimeError):
                pass
            time.sleep(1)
        raise RuntimeError(f"minute_sensor did not tick within {timeout:g} s; see {self.dir}/daemon.log")

    def memory_roots(self) -> dict[str, int | None]:
        roots = {name: (s.process.pid if s.alive() else None) for name, s in self.profile.services.items()}
        pg = self.postgres.process if self.postgres else None
        roots["postgres"] = pg.pid if pg is not None and pg.poll() is None else None
        for name, child in (("mongodb", self.mongo), ("simulator", self.simulator)):
            roots[name] = child.process.pid if child is not None and child.process.poll() is None else None
        return roots

    def cleanup(self) -> None:
        for step in (lambda: self.sampler and self.sampler.stop(),
                     lambda: self.profile and self.profile.stop_all(timeout=30),
                     lambda: self.simulator and self.simulator.stop(),
                     lambda: self.mongo and self.mongo.stop(),
                     lambda: self.postgres and self.postgres.remove(),
                     lambda: self.receiver and self.receiver.close()):
            try:
                step()
            except Exception as exc:  # noqa: BLE001 - stop every other one anyway
                say(f"cleanup: {type(exc).__name__}: {exc}")

    # -- the episodes ------------------------------------------------------------------------

    def run_in_flight(self, minute: datetime) -> bool:
        key = format_minute(minute)
        try:
            runs = self.graphql(RUNS_QUERY.replace("limit: 2000", "limit: 20"))["runsOrError"]["results"]
        except (OSError, KeyError, TypeError, RuntimeError):
            return False
        return any(r["status"] == "STARTED" and {t["key"]: t["value"] for t in r["tags"]}.get("acts/minute") == key
                   for r in runs)

    def ready(self, name: str, since: float, reloads: int, loaded: int) -> datetime:
        """When the restarted service does its job again: the code location loaded by the
        webserver after the code server said so (`loaded` such lines before), minute_sensor ticking, the webserver serving this instance, the recorder's
        /health answering, the reload waiting for the next hour (`reloads` such lines before)."""
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                if name == "code-server":  # its own log first: the webserver may not have noticed the restart yet
                    if self.profile.services["code-server"].log().count(CODE_SERVER_LOADED) > loaded:
                        self.profile.wait_for_code_location(300)
                        return now()
                if name == "daemon":
                    return self.wait_until_ticking(since)
                if name == "webserver":
                    info = self.graphql("{ instance { info } }")["instance"]["info"] or ""
                    if self.profile.services["webserver"].alive() and "postgres" in info.lower():
                        return now()
                elif name == "recorder":
                    http("GET", f"http://127.0.0.1:{self.health_port}/health?symbols=0", timeout=2)
                    return now()
                elif name == "reload-code":
                    if self.profile.services["reload-code"].log().count(RELOAD_WAITING) > reloads:
                        return now()
            except (OSError, KeyError, TypeError, ValueError, RuntimeError):
                pass
            time.sleep(1)
        raise RuntimeError(f"{name} not ready within 300 s after its restart")

    def restart_service(self, name: str, minute: datetime | None, *, crash: dict | None = None) -> None:
        """SIGKILL (unless it crashed by itself), its unit's RestartSec, start (ExecStartPre then
        the command), until it does its job again; in a thread of its own."""
        record = crash if crash is not None else self.state["restarts"].setdefault(name, {})
        self.restarting.add(name)

        def work() -> None:
            try:
                service = self.profile.services[name]
                if crash is None:
                    if name == "code-server" and minute is not None:
                        deadline = minute + MINUTE - timedelta(seconds=2)
                        while not self.run_in_flight(minute) and now() < deadline:
                            time.sleep(0.5)
                        record["run_in_flight"] = self.run_in_flight(minute)
                    record["pid"] = service.process.pid
                    record["killed"] = iso(now())
                    if name == "code-server":
                        table = _processes()
                        record["runs_left_running"] = [pid for pid in _tree(table, service.process.pid)
                                                       if any(m in table[pid][2] for m in RUN_PROCESS_MARKERS)]
                    self.profile.kill(name)
                    say(f"RESTART {name}: SIGKILL to pid {record['pid']}"
                        + (f" (minute {minute:%H:%M}'s run in flight: {record['run_in_flight']}; its run processes "
                           f"left running: {len(record['runs_left_running'])})" if name == "code-server" else ""))
                    if name == "recorder":
                        self.state["recorder_kill"] = {"at": record["killed"], "pid": record["pid"]}
                time.sleep(restart_sec(name))
                since = time.time()
                reloads = self.profile.services["reload-code"].log().count(RELOAD_WAITING)
                loaded = self.profile.services["code-server"].log().count(CODE_SERVER_LOADED)
                record["started"] = iso(now())
                self.profile.start(name)
                record["ready"] = iso(self.ready(name, since, reloads, loaded))
                say(f"RESTART {name}: started again at {record['started'][11:19]}, doing its job at "
                    f"{record['ready'][11:19]}")
            except Exception as exc:  # noqa: BLE001 - said, and the soak goes on (the accounting will tell)
                record["error"] = f"{type(exc).__name__}: {exc}"
                say(f"RESTART {name}: {record['error']}")
            finally:
                if name in ("daemon", "code-server") and record.get("killed"):
                    self.state["downtimes"].append({"label": f"{name} restart" if crash is None else f"{name} crash",
                                                    "from": record["killed"], "to": record.get("ready")})
                self.restarting.discard(name)

        thread = threading.Thread(target=work, daemon=True, name=f"restart {name}")
        self.threads.append(thread)
        thread.start()

    def watch_services(self) -> None:
        """A service that exited unplanned: counted as a crash, started again as systemd would."""
        for name, service in self.profile.services.items():
            if name in self.restarting or service.alive() or service.process is None:
                continue
            code = service.process.returncode
            crash = {"service": name, "at": iso(now()), "code": code, "killed": iso(now())}
            self.state["crashes"].append(crash)
            say(f"CRASH: {name} exited by itself (code {code}); started again as systemd would. See {service.log_path}")
            self.restart_service(name, None, crash=crash)

    def postgres_restart(self, seconds: int) -> None:
        entry = {"label": "postgres restart", "from": iso(now())}
        self.state["downtimes"].append(entry)
        say(f"POSTGRES RESTART: fast shutdown (down {seconds} s)")
        self.postgres.stop()
        entry["stopped"] = iso(now())
        time.sleep(seconds)
        self.postgres.start()
        entry["to"] = iso(now())
        say("POSTGRES RESTART: accepting connections again")

    # -- the run -----------------------------------------------------------------------------

    def run(self) -> int:
        args = self.args
        self.state["machine"] = {"cores": os.cpu_count(), "load_at_start": dev.load_sample(),
                                 "other_processes_at_start": dev.other_heavy_processes()}
        say(f"run folder: {self.dir}")
        self.postgres = start_postgres()
        self.state["postgres"] = {"folder": str(self.postgres.folder), "port": self.postgres.port}
        self.start_mongo()
        retention = (args.minutes + 30) * 60
        self.simulator = start_simulator(log_path=self.dir / "simulator.log",
                                         extra_args=["--seed", str(args.seed), "--retention", str(retention)])
        symbols = trading_symbols(simulator_api_url(self.simulator), args.symbols)
        plan = plan_production(args.minutes, symbols, args.seed)
        self.state["plan"] = plan
        self.state["tolerance_s"] = dev.TOLERANCE_S
        print_plan(plan)
        self.receiver = WebhookReceiver(path="/services/T0ACTS/B0SOAK/soak-receiver")
        self.profile = Profile(self.dir, DAGSTER_PG_URL=self.postgres.url, ACTS_MONGO_URI=mongo_uri_of(self.mongo),
                               ACTS_BINANCE_API_URL=simulator_api_url(self.simulator),
                               ACTS_BINANCE_WS_URL=simulator_ws_url(self.simulator),
                               ACTS_SYMBOLS=",".join(symbols), ACTS_CAPTURE_TOLERANCE_SECONDS=str(dev.TOLERANCE_S),
                               ACTS_ALERT_WEBHOOK_URL=self.receiver.url)
        self.health_port = self.profile.ports["recorder"]
        self.state["dagster_home"] = self.profile.env["DAGSTER_HOME"]
        self.state["ports"] = dict(self.profile.ports)
        self.sampler = MemorySampler(self.dir / "memory.jsonl", self.memory_roots).start()
        started = time.time()
        self.profile.start_all()
        self.profile.wait_for_code_location(300)
        ready = self.wait_until_ticking(started)
        self.state["platform_up"] = iso(ready)
        first = floor_minute(ready) + MINUTE
        self.state["first_minute"] = iso(first)
        say(f"services up (minute_sensor ticking) at {ready:%H:%M:%S}; first accounted minute {first:%H:%M}; "
            f"logs: {self.dir}/<service>.log")
        self.save()

        events: list[tuple[datetime, int, str, int]] = []
        for index in range(args.minutes):
            minute = first + index * MINUTE
            events.append((minute + timedelta(seconds=15), 0, "clear", index))
            events.append((minute + timedelta(seconds=plan["inject_seconds"][index]), 1, "inject", index))
        for n, episode in enumerate(plan["episodes"]):
            at = first + episode["index"] * MINUTE + timedelta(seconds=episode["second"])
            if episode["name"] == "mongo_outage":
                events.append((at, 2, "db_stop", n))
                events.append((at + timedelta(seconds=episode["seconds"]), 2, "db_start", n))
            else:
                events.append((at, 3, episode["name"], n))
        for n, fault in enumerate(plan["stream_faults"]):
            events.append((first + fault["index"] * MINUTE + timedelta(seconds=fault["second"]), 4, "stream", n))
        end = first + args.minutes * MINUTE
        events.append((end + timedelta(seconds=15), 0, "clear", -1))
        events.append((end + timedelta(seconds=args.tail), 9, "stop", 0))
        events.sort()

        last_load = last_health = last_watch = 0.0
        for when, _, what, index in events:
            while now() < when:
                time.sleep(min(0.5, max(0.0, (when - now()).total_seconds())))
                if time.monotonic() - last_load >= 30:
                    last_load = time.monotonic()
                    self.state["loads"].append([iso(now()), *dev.load_sample()])
                if time.monotonic() - last_health >= 3:
                    last_health = time.monotonic()
                    self.poll_health()
                if time.monotonic() - last_watch >= 2:
                    last_watch = time.monotonic()
                    self.watch_services()
            late = (now() - when).total_seconds()
            if self.fault_event(what, index, late, first, plan):
                pass
            elif what == "db_stop":
                self.mongo.stop()
                self.state["outage"] = {"from": iso(now())}
                say(f"DB OUTAGE: MongoDB stopped (for {plan['episodes'][index]['seconds']} s)")
            elif what == "db_start":
                self.start_mongo()
                self.state["outage"]["to"] = iso(now())
                say("DB OUTAGE over: MongoDB started again on the same port and storage")
            elif what == "postgres_restart":  # in a thread: the minute's faults are posted meanwhile
                thread = threading.Thread(target=self.postgres_restart, args=(plan["episodes"][index]["seconds"],),
                                          daemon=True, name="postgres restart")
                self.threads.append(thread)
                thread.start()
            elif what.startswith("restart:"):
                episode = plan["episodes"][index]
                self.restart_service(what.split(":", 1)[1], first + episode["index"] * MINUTE)
            elif what == "stop":
                break
            self.save()

        for thread in self.threads:
            thread.join(120)
        self.state["stopped_at"] = iso(now())
        self.state["runs"] = self.collect_runs()
        try:
            self.state["simulator_stats"] = http("GET", f"{self.sim_url}/_simulator/stats")
        except OSError:
            pass
        self.poll_health()
        self.state["alerts"] = [{"at": r.at, "text": r.text} for r in list(self.receiver.received)]
        self.state["services"] = {n: {"starts": s.starts, "alive": s.alive()} for n, s in self.profile.services.items()}
        self.profile.stop_all(timeout=30)
        self.sampler.stop()
        self.check_books()
        self.state["machine"]["load_at_end"] = dev.load_sample()
        self.state["machine"]["other_processes_at_end"] = dev.other_heavy_processes()
        self.save()
        code = account(self.state, mongo_uri_of(self.mongo), self.dir)
        self.save()
        return code

    def collect_runs(self) -> dict:
        try:
            found = super().collect_runs()
        except RuntimeError as exc:  # GraphQL errors
            found = {"error": str(exc)}
        try:
            runs = self.graphql(RUNS_QUERY, timeout=120)["runsOrError"]["results"]
        except (OSError, KeyError, TypeError, ValueError, RuntimeError) as exc:
            found["failed_runs_error"] = str(exc)
            return found
        failed = []
        for run in runs:
            if run["status"] != "FAILURE":
                continue
            tags = {t["key"]: t["value"] for t in run["tags"]}
            minute = tags.get("acts/minute")
            failed.append({"run": run["runId"][:8], "minute": minute, "end": run.get("endTime"),
                           "close": iso(parse_minute(minute) + MINUTE) if minute else None,
                           "origin": tags.get("dagster/sensor_name") or tags.get("dagster/schedule_name"),
                           "will_retry": tags.get("dagster/will_retry") == "true"})
        found["failed_runs"] = failed
        return found


def trading_symbols(api_url: str, count: int) -> list[str]:
    """The dev soak's choice: its preferred symbols first, then the simulator's others by name."""
    info = http("GET", f"{api_url}/v3/exchangeInfo")
    trading = [s["symbol"] for s in info["symbols"] if s.get("status") == "TRADING"]
    symbols = [s for s in dev.PREFERRED_SYMBOLS if s in trading][:count]
    return symbols + [s for s in sorted(trading) if s not in symbols][:count - len(symbols)]


def account(state: dict, mongo_uri: str, folder: Path) -> int:
    """The dev soak's accounting, then the episodes, the alerts and the memory."""
    code = dev.report(state, mongo_uri, Path(state["dagster_home"]))
    lines = ["", "production episodes:"]
    for name, r in sorted((state.get("restarts") or {}).items(), key=lambda kv: kv[1].get("killed") or ""):
        killed, ready = parse(r.get("killed")), parse(r.get("ready"))
        lines.append(f"  {name:<12} restart: SIGKILL {killed:%H:%M:%S} (pid {r.get('pid')}), started "
                     f"{(r.get('started') or '?')[11:19]}, doing its job "
                     + (f"{ready:%H:%M:%S} ({(ready - killed).total_seconds():.0f} s)" if ready and killed else "NEVER")
                     + (f"; run in flight: {r.get('run_in_flight')}, run processes left running: "
                        f"{len(r.get('runs_left_running') or [])}" if name == "code-server" else "")
                     + (f"; ERROR {r['error']}" if r.get("error") else ""))
    for d in state.get("downtimes", []):
        if d["label"] == "postgres restart":
            lines.append(f"  PostgreSQL restart: {d['from'][11:19]} .. accepting again {(d.get('to') or '?')[11:19]}")
    outage = state.get("outage") or {}
    if outage:
        lines.append(f"  MongoDB outage: {outage['from'][11:19]} .. {(outage.get('to') or '?')[11:19]}")
    crashes = state.get("crashes", [])
    lines.append(f"  unplanned crashes: {len(crashes)}" + "".join(
        f"\n    CRASH {c['service']} at {c['at'][11:19]} (code {c['code']})" for c in crashes))
    runs = state.get("runs") or {}
    failed_runs = runs.get("failed_runs", [])
    lines.append(f"  failed runs: {len(failed_runs)}" + "".join(
        f"\n    {r['run']} minute={r['minute']} origin={r['origin']}" + (" (retried)" if r.get("will_retry") else "") for r in failed_runs))
    alert_lines, alert_failures = alert_accounting(state)
    memory_lines, grown = memory_accounting(state, folder / "memory.jsonl")
    for line in lines + [""] + alert_lines + [""] + memory_lines:
        print(line)
    memory = state["plan"]["memory"]
    failed = bool(code) or alert_failures or crashes or grown
    totals = state.get("totals") or {}
    verdict = state.get("alert_verdict") or {}
    required = verdict.get("required", [])
    services = {n: m for n, m in (state.get("memory") or {}).items() if n in SERVICES}
    print()
    print("| verdict | result |")
    print("|---|---|")
    print(f"| duplicated documents | {totals.get('duplicated')} |")
    print(f"| corrupt documents | {totals.get('corrupt')} |")
    print(f"| wrongly labelled documents | {totals.get('wrongly_labelled')} |")
    for name, c in (totals.get("collections") or {}).items():
        print(f"| {name}: cells expected / stored / missing explained / unexplained | {c['expected']} / {c['stored']} / "
              f"{c['missing_explained']} ({', '.join(f'{k} {n}' for k, n in sorted(c['explained_by'].items())) or '-'})"
              f" / {c['missing_unexplained']} |")
    print(f"| wrong stream books; unexplained unusable boundary books; spooled batches left | "
          f"{totals.get('wrong_books')}; {totals.get('boundary_unexplained')}; {totals.get('spool_left')} |")
    print(f"| alerts that should have fired: fired exactly once (PROBLEM + RESOLVED) | "
          f"{sum(1 for r in required if r['ok'])} of {len(required)} |")
    print(f"| alert episodes explained by no episode; anomalies (repeats, no RESOLVED) | {verdict.get('unexplained')}; "
          f"{len(verdict.get('anomalies', []))} |")
    print(f"| unplanned service crashes | {len(crashes)} |")
    print("| memory of every service, last 30 min / first 30 min | " + (
        ", ".join(f"{n} {m['ratio']:.2f}" for n, m in services.items()) + f" ({grown} growing)"
        if memory["judged"] else f"not judged (needs --minutes >= {memory['needs_minutes']})") + " |")
    print(f"PRODUCTION RESULT: {'FAIL' if failed else 'PASS'}: accounting {'FAIL' if code else 'PASS'} (above), "
          f"alerts {alert_failures} failures, {len(crashes)} unplanned crashes, memory "
          + (f"{grown} services growing" if memory["judged"] else
             f"not judged (needs --minutes >= {memory['needs_minutes']})")
          + f" (run folder {state['dir']})")
    return 1 if failed else 0


def report_again(folder: Path, state: dict) -> int:
    """`--report DIR` of a production run: the database started again on its storage."""
    from acts_pipeline.platform.processes import start_embedded_mongo
    mongo = start_embedded_mongo(folder / "mongo", log_path=folder / "mongo-report.log")
    try:
        return account(state, mongo_uri_of(mongo), folder)
    finally:
        mongo.stop()


def main(args: argparse.Namespace) -> int:
    if args.minutes < MIN_MINUTES:
        raise SystemExit(f"--profile production: --minutes must be at least {MIN_MINUTES} (every episode in a span "
                         f"of its own; got {args.minutes})")
    if args.plan_only:
        symbols = (dev.PREFERRED_SYMBOLS + [f"SYMBOL{n:03d}" for n in range(args.symbols)])[:args.symbols]
        print("plan only: nothing started; symbols past the preferred ones are placeholders (the simulator's "
              "trading symbols by name in a real run)")
        print_plan(plan_production(args.minutes, symbols, args.seed))
        return 0
    return dev.run_to_end(ProductionSoak(args), save=True)


if __name__ == "__main__":
    sys.exit("run it as: python benchmarks/soak.py --profile production ...")
