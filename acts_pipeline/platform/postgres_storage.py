"""The production instance's storage: dagster-postgres, from one `postgresql://` URL.

`deploy/dagster.yaml` gives the instance one variable, `DAGSTER_PG_URL`, as operators write it:
`postgresql://acts:<password>@db.internal:5432/dagster`. dagster-postgres hands its URL to
SQLAlchemy as it is, and SQLAlchemy 2.1 maps a plain `postgresql://` to the psycopg 3 driver:
not installed with dagster-postgres, and with it dagster-postgres fails on its first event
(`NOTIFY run_events, %(id)s`: ProgrammingError). `PostgresStorage` is dagster-postgres's own
storage (runs, event log, schedules, in the same tables), given the URL with the driver it is
built for, psycopg2 (`postgresql+psycopg2://`, installed with it).

    storage:
      custom:
        module: acts_pipeline.platform.postgres_storage
        class: PostgresStorage
        config:
          postgres_url: {env: DAGSTER_PG_URL}

The per-cell events of a minute run need nothing more here: dagster-postgres writes a batch of
materializations with one multi-row insert and one index transaction (its own
`store_event_batch`), which is what `BatchedSqliteEventLogStorage` adds to SQLite. Dagster hands
it batches when `DAGSTER_EVENT_BATCH_SIZE` is set in the run processes' environment.

Creating the tables is serialized. systemd starts the services side by side, and each opens the
instance (`acts-pipeline check-instance`, then its command): on a new database several would
create Dagster's tables at once, and dagster-postgres's creation is not safe against that
(`relation "instance_info" already exists`, `type "snapshots" already exists`). So the storage
opens under a PostgreSQL advisory lock, held on a connection of its own for the few milliseconds
(seconds, the first time) that dagster-postgres takes to find or create its tables.

Connections are pooled in every process. dagster-postgres opens a new connection for every
statement (SQLAlchemy's NullPool) except in the webserver, which calls each storage's
`optimize_for_webserver` (one pooled connection, more on demand). At 500 symbols the run and
daemon processes opened about 1,050 connections a minute, about 12 ms of server CPU each: the
instance on PostgreSQL took 38.8 core-s a minute against SQLite's 21.2, and the event batch was
not the cause (0.50 ms an event). So every process pools, through that same public method of
dagster-postgres's storages (a method of the classes, not in Dagster's API docs: its effect, one
connection reused, is pinned by acts_pipeline_tests/integration/test_postgres_instance.py),
with no statement timeout outside the webserver (whose own call still sets its timeout).

A pooled connection outlives a PostgreSQL restart as a dead socket, and its next statement would
fail: a minute run in flight across a restart would fail where a connection per statement would
have opened a new one. So each checkout of a pooled psycopg2 connection is pinged first
(`SELECT 1`, SQLAlchemy's documented pessimistic disconnect handling: a pool `checkout` listener
raising `DisconnectionError` has the pool open a fresh connection). The production profile's
end-to-end test restarts PostgreSQL under the running services.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

from dagster import Field, StringSource
from dagster_postgres import DagsterPostgresStorage
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from acts_pipeline.core.errors import ConfigurationError
from acts_pipeline.dagster_private import ConfigurableClassData
from acts_pipeline.settings import redact_uri

#: The variable deploy/dagster.yaml reads the URL from (named in messages).
URL_VARIABLE = "DAGSTER_PG_URL"
#: The driver dagster-postgres is built and tested with.
DRIVER = "psycopg2"
#: What an operator may write; each means PostgreSQL through psycopg2.
ACCEPTED_SCHEMES = ("postgresql", "postgres", f"postgresql+{DRIVER}")
EXAMPLE = "postgresql://acts:<password>@db.internal:5432/dagster"
#: The advisory lock key under which the instance's tables are created (any constant bigint;
#: it names ACTS's lock in pg_locks: 0x41435453 is "ACTS").
SCHEMA_LOCK_KEY = 0x41435453_00000001
#: Pooled connections: recycled after an hour (as the webserver's default), up to this many more
#: than the pooled one while threads of a process (the daemon's) query at once.
POOL_RECYCLE_SECONDS = 3600
POOL_MAX_OVERFLOW = 20
#: No statement timeout (runs and the daemon's ticks may run long queries; the webserver sets its own).
NO_STATEMENT_TIMEOUT = 0


def sqlalchemy_url(url: str, variable: str = URL_VARIABLE) -> str:
    """The URL for SQLAlchemy with the psycopg2 driver: `postgresql://` and `postgres://` become
    `postgresql+psycopg2://`, everything else (user, password, host, port, database, query
    parameters such as `sslmode`) stays as written. Raises `ConfigurationError` naming `variable`
    (never the password) for anything that is not a PostgreSQL URL with a host and a database."""
    text = (url or "").strip()
    if not text:
        raise ConfigurationError(f"{variable} is empty: set it to the instance's database, e.g. {EXAMPLE}")
    scheme = text.split("://", 1)[0].lower() if "://" in text else ""
    if scheme not in ACCEPTED_SCHEMES:
        raise ConfigurationError(f"{variable} must be a postgresql:// URL such as {EXAMPLE}, got {redact_uri(text)} "
                                 f"(scheme {scheme or 'missing'!r}; dagster-postgres runs on {DRIVER})")
    try:
        parsed = make_url(f"postgresql+{DRIVER}://{text.split('://', 1)[1]}")
    except (ArgumentError, ValueError) as exc:
        raise ConfigurationError(f"{variable} is not a valid URL ({redact_uri(text)}): {exc}") from None
    missing = [part for part, value in (("host", parsed.host), ("database", parsed.database)) if not value]
    if missing:
        raise ConfigurationError(f"{variable} ({redact_uri(text)}) has no {' and no '.join(missing)}: "
                                 f"write it as {EXAMPLE}")
    return f"postgresql+{DRIVER}://{text.split('://', 1)[1]}"


@contextmanager
def schema_lock(url: str) -> Iterator[None]:
    """PostgreSQL's session advisory lock `SCHEMA_LOCK_KEY` on the database at `url` (a
    SQLAlchemy URL), held on a connection of its own until the block ends (or the process dies:
    the server releases a session lock with its connection)."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("select pg_advisory_lock(:key)"), {"key": SCHEMA_LOCK_KEY})
            try:
                yield
            finally:
                connection.execute(sa.text("select pg_advisory_unlock(:key)"), {"key": SCHEMA_LOCK_KEY})
    finally:
        engine.dispose()


def ping_on_checkout(dbapi_connection: Any, connection_record: Any, connection_proxy: Any) -> None:
    """A pool `checkout` listener: a pooled psycopg2 connection that no longer answers `SELECT 1`
    is replaced before it is handed out (other drivers' connections are left alone)."""
    if not type(dbapi_connection).__module__.startswith(DRIVER):
        return
    try:
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - any failure means the connection is gone
        raise sa.exc.DisconnectionError(f"pooled PostgreSQL connection is gone: {exc}") from exc


def ping_pooled_connections() -> None:
    """Have every QueuePool of this process (the pooled engines of `optimize_for_webserver`)
    ping a psycopg2 connection at checkout; once per process."""
    if not event.contains(sa.pool.QueuePool, "checkout", ping_on_checkout):
        event.listen(sa.pool.QueuePool, "checkout", ping_on_checkout)


class PostgresStorage(DagsterPostgresStorage):
    """dagster-postgres's storage, configured by one `postgres_url` in the form operators write,
    whose tables are found or created by one process at a time."""

    def __init__(self, postgres_url: str, should_autocreate_tables: bool = True,
                 inst_data: ConfigurableClassData | None = None) -> None:
        if not should_autocreate_tables:
            super().__init__(postgres_url, should_autocreate_tables, inst_data)
        else:
            with schema_lock(postgres_url):
                super().__init__(postgres_url, should_autocreate_tables, inst_data)
        ping_pooled_connections()
        for storage in (self.run_storage, self.event_log_storage, self.schedule_storage):
            storage.optimize_for_webserver(statement_timeout=NO_STATEMENT_TIMEOUT, pool_recycle=POOL_RECYCLE_SECONDS,
                                           max_overflow=POOL_MAX_OVERFLOW)

    @classmethod
    def config_type(cls) -> Mapping[str, Any]:
        return {
            "postgres_url": Field(StringSource, description=f"postgresql:// URL of the instance's database "
                                  f"(deploy/dagster.yaml reads {URL_VARIABLE})"),
            "should_autocreate_tables": Field(bool, is_required=False, default_value=True),
        }

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData | None,
                          config_value: Mapping[str, Any]) -> PostgresStorage:
        return cls(postgres_url=sqlalchemy_url(config_value["postgres_url"]),
                   should_autocreate_tables=config_value.get("should_autocreate_tables", True),
                   inst_data=inst_data)
