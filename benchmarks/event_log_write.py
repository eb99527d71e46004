"""Benchmark: a minute run's per-cell events written to each event log storage, in this process.

    python benchmarks/event_log_write.py [--symbols 500] [--rounds 5] [--warmup 1] [--connections 300]

What a minute run at N symbols writes to the Dagster event log for its cells: one
`ASSET_MATERIALIZATION` per stored (asset, symbol) cell, in one batch per asset (the MongoDB I/O
manager's `cell_events` gives each output's events one batch id): 3 batches of N events. This
script writes exactly that, alone, to each storage (PostgreSQL's in four ways), and prints the
time and CPU per event:

- **SQLite, Dagster's own** (`SqliteEventLogStorage`, the default instance's): its
  `store_event_batch` is the base class's loop over `store_event` (two committed transactions
  per event, in the run's shard and the index shard); also what any storage does with
  `DAGSTER_EVENT_BATCH_SIZE` unset;
- **SQLite, batched** (`acts_pipeline.platform.event_log.BatchedSqliteEventLogStorage`, dev's
  `dagster.yaml`): `store_event_batch` in one transaction per shard;
- **PostgreSQL, per event**: dagster-postgres's `store_event` for each event, what the
  production instance (`deploy/dagster.yaml`) does when the run processes lack
  `DAGSTER_EVENT_BATCH_SIZE`: per event an INSERT ... RETURNING and a NOTIFY on one connection,
  then an index transaction (the asset key's row) on another;
- **PostgreSQL, batched**: dagster-postgres's own `store_event_batch`, what the production
  instance does with `DAGSTER_EVENT_BATCH_SIZE` set (deploy/acts.env.example sets it): one
  multi-row INSERT ... RETURNING for the batch, then one index transaction (the asset key's row
  from the batch's last event);
- **PostgreSQL, per event / batched, connections held**: the same two with the storage's
  connections pooled (its `optimize_for_webserver`, what dagster-webserver does to its own
  storages: a pool of one connection, kept open), to tell the connections' cost from the
  writes'.

The PostgreSQL storage is the production one (`acts_pipeline.platform.postgres_storage
.PostgresStorage` from a `postgresql://` URL, as `deploy/dagster.yaml` builds it) on a real
PostgreSQL server started here (`acts_devkit.postgres`: the Debian package's server, its default
settings, password authentication over TCP on 127.0.0.1). dagster-postgres opens a new
connection for every `_connect` (SQLAlchemy's NullPool), so each connection's start (a server
process forked, SCRAM authentication on both sides) is part of its cost, as in production.

The events are real: one per-cell minute run (`dagster.materialize`, the run tags of
`minute_sensor`'s requests: the minute's range over the N symbols and the per-cell events tag)
of three assets named and partitioned as the product's, whose I/O manager reports each stored
cell with the product's own `cell_events` and `cell_metadata` (the UI numbers of a snapshot, its
features and its kline), on an ephemeral instance; its materializations are read back and
replayed. Each round writes them again under a new run id (a minute run is a new run: on SQLite
a new run shard) with the round's timestamps. Rounds alternate the storages (round 1: each
storage in turn, round 2: the same), so a change of the machine's load falls on all of them; the
first `--warmup` rounds are not counted (tables and shards created, asset keys' first rows).

Measured per storage over the counted rounds: wall time; this process's CPU (the client:
serialising, SQLAlchemy, the driver, SQLite itself); the PostgreSQL server's CPU (the postmaster
and every process it started, exited connections' included: a connection's process is reaped by
the postmaster, whose reaped-children CPU then holds its total); their sum. Per event, and per
minute at N symbols (3 x N events: what the platform would spend on its cell events each
minute), with the ratios to the batched SQLite storage (the product on one machine) and, for
PostgreSQL, of the batch to the per-event path. After the rounds every storage is checked to
hold the last round's 3 x N events in its run and every cell materialized.

Also, what one PostgreSQL connection costs (`--connections`, default 300): dagster-postgres opens
a new one for every storage call in every process but the webserver (its engines use
SQLAlchemy's NullPool), so the per-event path pays it twice per event, and every other process
(the daemon's run queue, sensors and run monitoring, the run processes' other events and run
reads) pays it for each call. Measured through an engine built as dagster-postgres builds its
own (the production URL's psycopg2 driver, autocommit, NullPool): a connection opened,
`SELECT 1`, closed, against `SELECT 1` on one connection held open; CPU of this process and of
the server, per call.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _platform import (  # noqa: E402
    log,
    machine_line,
    print_grid,
    print_run_header,
    read_stat,
    self_cpu_seconds,
    symbols_for,
)

ASSETS = {"order_book_snapshot": "order_book_snapshots", "order_book_features": "order_book_features",
          "klines_1m": "klines_1m"}


# ------------------------------------------------------------------------------------------------
# the events: one real per-cell minute run, read back


def documents(asset: str, minute: datetime, symbol: str, rng: random.Random) -> dict:
    """A stored document of `asset` for one cell, with the fields its UI metadata reads."""
    from acts_pipeline.storage.ui_metadata import FEATURE_FIELDS, KLINE_FIELDS

    price = rng.uniform(0.01, 60000)
    if asset == "order_book_snapshot":
        tick = price * 1e-4
        return {"symbol": symbol, "minute": minute,
                "captured_at": minute + timedelta(seconds=60 + rng.uniform(0.02, 0.4)),
                "bids": [[price - (i + 1) * tick, rng.uniform(0, 50)] for i in range(100)],
                "asks": [[price + (i + 1) * tick, rng.uniform(0, 50)] for i in range(100)]}
    if asset == "order_book_features":
        return {"symbol": symbol, "minute": minute, **{f: rng.uniform(-1, 1) * price for f in FEATURE_FIELDS}}
    return {"symbol": symbol, "minute": minute, **{f: rng.uniform(0.9, 1.1) * price for f in KLINE_FIELDS},
            "trades": rng.randrange(0, 5000)}


def capture_events(symbols: list[str], minute: datetime) -> list:
    """The materializations of one per-cell minute run of the three assets over `symbols`, in
    the order the run wrote them (one asset's cells after another)."""
    from dagster import DagsterInstance, IOManager, asset, materialize

    from acts_pipeline.core.cells import Cell
    from acts_pipeline.dagster_private import DagsterEventType
    from acts_pipeline.orchestration.partitions import live_minute_symbol_partitions, minute_range_tags
    from acts_pipeline.platform.event_log import EVENT_BATCH_SIZE_VARIABLE
    from acts_pipeline.storage.cell_events import PER_CELL_EVENTS_TAGS, cell_events
    from acts_pipeline.storage.ui_metadata import cell_metadata

    class CellEventsIOManager(IOManager):
        """Stores nothing; reports every cell of the output as stored, as the product's I/O
        manager does after its write (`cell_events`, `cell_metadata`)."""

        def handle_output(self, context, obj):
            collection = ASSETS[context.asset_key.path[-1]]
            stored = {cell: cell_metadata(collection, document) for cell, document in obj.items()}
            yield from cell_events(context, stored, [], {})

        def load_input(self, context):
            return None

    rng = random.Random(7)
    partitions = live_minute_symbol_partitions(2, minute + timedelta(minutes=2))

    def cells_asset(name: str):
        @asset(name=name, partitions_def=partitions)
        def _cells() -> dict:
            return {Cell(minute, s): documents(name, minute, s, rng) for s in symbols}
        return _cells

    os.environ.pop(EVENT_BATCH_SIZE_VARIABLE, None)  # the capture instance stores them one by one
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions("symbols", symbols)
        result = materialize([cells_asset(name) for name in ASSETS], instance=instance,
                             resources={"io_manager": CellEventsIOManager()},
                             tags={**minute_range_tags(minute, symbols), **PER_CELL_EVENTS_TAGS})
        events = instance.all_logs(result.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION)
    if len(events) != len(ASSETS) * len(symbols):
        raise RuntimeError(f"the capture run wrote {len(events)} materializations, expected {len(ASSETS) * len(symbols)}")
    return list(events)


def batches_of(events: list, run_id: str, at: float) -> list[list]:
    """The events as a new run's: one batch per asset, in the run's order, timestamps from `at`."""
    by_asset: dict[str, list] = {}
    for i, event in enumerate(events):
        copy = event._replace(run_id=run_id, timestamp=at + i * 1e-4)
        by_asset.setdefault(event.dagster_event.asset_key.to_user_string(), []).append(copy)
    return list(by_asset.values())


# ------------------------------------------------------------------------------------------------
# the storages


def server_cpu_seconds(root_pid: int) -> float:
    """CPU of the PostgreSQL server so far: the postmaster's own and its reaped children's (every
    connection process that exited), and its live children's own (background processes,
    connections still open)."""
    total = 0
    for name in os.listdir("/proc"):
        if name.isdigit():
            stat = read_stat(int(name))
            if stat is not None and (stat.pid == root_pid or stat.ppid == root_pid):
                total += stat.own_ticks + stat.reaped_ticks
    return total / os.sysconf("SC_CLK_TCK")


@dataclass
class Variant:
    name: str
    storage: object
    batched: bool
    server_pid: int | None = None
    wall_s: float = 0.0
    client_s: float = 0.0
    server_s: float = 0.0
    events: int = 0
    last_run: str = ""

    def write_round(self, events: list, counted: bool) -> None:
        run_id = str(uuid.uuid4())
        batches = batches_of(events, run_id, time.time())
        server0 = server_cpu_seconds(self.server_pid) if self.server_pid else 0.0
        client0, wall0 = time.process_time(), time.perf_counter()
        for batch in batches:
            if self.batched:
                self.storage.store_event_batch(batch)
            else:
                for event in batch:
                    self.storage.store_event(event)
        wall, client = time.perf_counter() - wall0, time.process_time() - client0
        if self.server_pid:
            time.sleep(0.2)  # the last connections' processes exit and are reaped
        server = server_cpu_seconds(self.server_pid) - server0 if self.server_pid else 0.0
        self.last_run = run_id
        if counted:
            self.wall_s += wall
            self.client_s += client
            self.server_s += server
            self.events += sum(len(b) for b in batches)
        log(f"{self.name}: {sum(len(b) for b in batches)} events in {wall:.2f} s, client CPU {client:.2f} s, "
            f"server CPU {server:.2f} s{'' if counted else ' (warm-up)'}")

    def check(self, events: list) -> str:
        """The last round's events are in its run, and every cell of every asset is materialized."""
        from dagster import AssetKey

        logged = len(self.storage.get_logs_for_run(self.last_run))
        missing = []
        keys = {e.dagster_event.partition for e in events}
        for name in ASSETS:
            materialized = set(self.storage.get_materialized_partitions(AssetKey(name)))
            missing += [f"{name} {k}" for k in keys - materialized]
        if logged != len(events) or missing:
            raise RuntimeError(f"{self.name}: the last run holds {logged} events of {len(events)}; "
                               f"cells not materialized: {missing[:5]}")
        return f"{self.name}: {logged} events in the last run, {len(keys)} cells x {len(ASSETS)} assets materialized"


def connection_costs(url: str, server_pid: int, calls: int) -> list[tuple[str, float, float, float]]:
    """(what, wall, client CPU, server CPU) per call, in ms: a new connection for each `SELECT 1`
    (what dagster-postgres does), and `SELECT 1` on one held connection. The engine is built as
    dagster-postgres builds its own: the production URL (`postgres_storage.sqlalchemy_url`: the
    psycopg2 driver), autocommit, NullPool."""
    import sqlalchemy as db
    from sqlalchemy.pool import NullPool

    from acts_pipeline.platform.postgres_storage import sqlalchemy_url

    engine = db.create_engine(sqlalchemy_url(url), isolation_level="AUTOCOMMIT", poolclass=NullPool)
    out = []

    def timed(what: str, body) -> None:
        server0, client0, wall0 = server_cpu_seconds(server_pid), time.process_time(), time.perf_counter()
        body()
        wall, client = time.perf_counter() - wall0, time.process_time() - client0
        time.sleep(0.2)
        out.append((what, 1000 * wall / calls, 1000 * client / calls,
                    1000 * (server_cpu_seconds(server_pid) - server0) / calls))

    def new_connections() -> None:
        for _ in range(calls):
            with engine.connect() as conn:
                conn.execute(db.text("SELECT 1"))

    def held_connection() -> None:
        with engine.connect() as conn:
            for _ in range(calls):
                conn.execute(db.text("SELECT 1"))

    timed("new connection per call (dagster-postgres's NullPool)", new_connections)
    timed("one connection held open", held_connection)
    engine.dispose()
    return out


def per_event_ms(seconds: float, events: int) -> float:
    return 1000 * seconds / events if events else float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--symbols", type=int, default=500, help="N symbols: 3 batches of N events a round (default 500)")
    parser.add_argument("--rounds", type=int, default=5, help="counted rounds per storage (default 5)")
    parser.add_argument("--warmup", type=int, default=1, help="uncounted rounds per storage first (default 1)")
    parser.add_argument("--connections", type=int, default=300,
                        help="calls of the PostgreSQL connection measurement (default 300; 0 skips it)")
    args = parser.parse_args(argv)

    from acts_devkit.postgres import start_postgres
    from acts_pipeline.dagster_private import SqliteEventLogStorage
    from acts_pipeline.platform.event_log import BatchedSqliteEventLogStorage
    from acts_pipeline.platform.postgres_storage import PostgresStorage

    harness0 = self_cpu_seconds()
    print_run_header("event_log_write.py", argv if argv is not None else sys.argv[1:])
    symbols = symbols_for(args.symbols)
    minute = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=1)
    log(f"capturing the events of one per-cell minute run of {len(symbols)} symbols")
    events = capture_events(symbols, minute)
    sizes = [len(e.to_json()) for e in events]
    tmp = Path(tempfile.mkdtemp(prefix="acts-event-log-write-"))
    postgres = None
    try:
        postgres = start_postgres()
        log(f"PostgreSQL on 127.0.0.1:{postgres.port} (pid {postgres.process.pid})")
        import psycopg2

        def pg_storage(database: str, held: bool):
            """The production storage's event log on a database of its own on the server (each
            variant its own tables); `held`: its connections pooled, as in the webserver."""
            if database != postgres.database:
                conn = psycopg2.connect(postgres.url)
                conn.autocommit = True
                conn.cursor().execute(f"CREATE DATABASE {database}")
                conn.close()
            url = postgres.url.rsplit("/", 1)[0] + "/" + database
            storage = PostgresStorage.from_config_value(None, {"postgres_url": url}).event_log_storage
            if held:
                storage.optimize_for_webserver(statement_timeout=0, pool_recycle=3600, max_overflow=20)
            return storage

        pid = postgres.process.pid
        variants = [
            Variant("SQLite, Dagster's own (per event)", SqliteEventLogStorage(base_dir=str(tmp / "sqlite")), True),
            Variant("SQLite, batched (acts, dev)", BatchedSqliteEventLogStorage(base_dir=str(tmp / "batched")), True),
            Variant("PostgreSQL, per event (no batch size)", pg_storage(postgres.database, False), False, pid),
            Variant("PostgreSQL, batched (dagster-postgres's own)", pg_storage("dagster_batched", False), True, pid),
            Variant("PostgreSQL, per event, connections held", pg_storage("dagster_one_held", True), False, pid),
            Variant("PostgreSQL, batched, connections held", pg_storage("dagster_batched_held", True), True, pid),
        ]
        for round_ in range(args.warmup + args.rounds):
            for variant in variants:
                variant.write_round(events, counted=round_ >= args.warmup)
        checks = [variant.check(events) for variant in variants]
        connections = (connection_costs(postgres.url, postgres.process.pid, args.connections)
                       if args.connections else [])
    finally:
        if postgres is not None:
            postgres.remove()
        shutil.rmtree(tmp, ignore_errors=True)

    n_events = len(events)
    print(f"events: {n_events} a round ({len(ASSETS)} batches of {len(symbols)}), event JSON {min(sizes)} to "
          f"{max(sizes)} bytes (mean {sum(sizes) / len(sizes):.0f}); {args.rounds} counted rounds after "
          f"{args.warmup} warm-up per storage, alternated")
    baseline = variants[1]
    base_cpu = (baseline.client_s + baseline.server_s) / baseline.events
    rows = []
    for v in variants:
        cpu = v.client_s + v.server_s
        per_minute = cpu / v.events * n_events
        rows.append([v.name, str(v.events), f"{per_event_ms(v.wall_s, v.events):.3f}",
                     f"{per_event_ms(v.client_s, v.events):.3f}",
                     f"{per_event_ms(v.server_s, v.events):.3f}" if v.server_pid else "-",
                     f"{per_event_ms(cpu, v.events):.3f}", f"{per_minute:.2f}",
                     f"{v.wall_s / v.events * n_events:.2f}", f"{(cpu / v.events) / base_cpu:.2f}x"])
    print_grid(["storage", "events", "wall ms/event", "client CPU ms/event", "server CPU ms/event",
                "CPU ms/event", f"CPU core-s/min at N={len(symbols)}", "wall s/min", "CPU vs SQLite batched"], rows)
    pg_one, pg_batch = variants[2], variants[3]
    one = (pg_one.client_s + pg_one.server_s) / pg_one.events
    batch = (pg_batch.client_s + pg_batch.server_s) / pg_batch.events
    sq_one = (variants[0].client_s + variants[0].server_s) / variants[0].events
    print(f"PostgreSQL per event / batched: CPU {one / batch:.1f}x, wall "
          f"{(pg_one.wall_s / pg_one.events) / (pg_batch.wall_s / pg_batch.events):.1f}x")
    held_one, held_batch = variants[4], variants[5]
    print(f"PostgreSQL with connections held, per event / batched: CPU "
          f"{((held_one.client_s + held_one.server_s) / held_one.events) / ((held_batch.client_s + held_batch.server_s) / held_batch.events):.1f}x")
    print(f"SQLite Dagster's own / batched: CPU {sq_one / base_cpu:.1f}x, wall "
          f"{(variants[0].wall_s / variants[0].events) / (baseline.wall_s / baseline.events):.1f}x")
    if connections:
        print(f"one PostgreSQL call, {args.connections} of each (password authentication, scram-sha-256, over TCP):")
        print_grid(["SELECT 1", "wall ms/call", "client CPU ms/call", "server CPU ms/call", "CPU ms/call"],
                   [[what, f"{wall:.3f}", f"{client:.3f}", f"{server:.3f}", f"{client + server:.3f}"]
                    for what, wall, client, server in connections])
    for line in checks:
        print(f"check: {line}")
    print(machine_line(f"end {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC"))
    print(f"harness CPU (this process, all of it, the clients' included): {self_cpu_seconds() - harness0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
