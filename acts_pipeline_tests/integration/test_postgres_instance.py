"""The production instance's tables on a real PostgreSQL server (the Debian package's).

systemd starts the services of deploy/ side by side, and each runs `acts-pipeline check-instance`
before its command: on a new database they all open the instance at once, and each would create
Dagster's tables. Dagster's own creation is not safe against that (a CI run of the production
profile failed with `relation "instance_info" already exists`), so `PostgresStorage` creates the
tables under one PostgreSQL advisory lock: every service that starts on a new database opens it.
"""

import threading

import pytest
import sqlalchemy as sa

from acts_devkit.postgres import start_postgres
from acts_pipeline.platform.postgres_storage import PostgresStorage, sqlalchemy_url

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

SERVICES_STARTING_AT_ONCE = 8
#: New databases tried: without the lock, about one in two failed (measured: 2 of 5).
NEW_DATABASES = 5


@pytest.fixture(scope="module")
def postgres():
    server = start_postgres()
    yield server
    server.remove()


def new_database(server, name: str) -> str:
    engine = sa.create_engine(sqlalchemy_url(server.url), poolclass=sa.pool.NullPool, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(sa.text(f"create database {name}"))
    engine.dispose()
    return f"{server.url.rsplit('/', 1)[0]}/{name}"


def open_side_by_side(url: str, count: int) -> list[str]:
    """`count` instances' storages opened at the same instant (a barrier), as services do."""
    barrier = threading.Barrier(count)
    errors: list[str] = []

    def open_storage() -> None:
        barrier.wait()
        try:
            PostgresStorage(postgres_url=sqlalchemy_url(url))
        except Exception as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(repr(exc)[:300])

    threads = [threading.Thread(target=open_storage) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return errors


@pytest.mark.parametrize("attempt", range(NEW_DATABASES))
def test_services_opening_a_new_database_at_once_all_open_it_and_one_schema_is_made(postgres, attempt):
    url = new_database(postgres, f"new_{attempt}")

    assert open_side_by_side(url, SERVICES_STARTING_AT_ONCE) == []

    engine = sa.create_engine(sqlalchemy_url(url), poolclass=sa.pool.NullPool)
    with engine.connect() as connection:
        tables = set(sa.inspect(connection).get_table_names())
        assert {"runs", "event_logs", "jobs", "instance_info", "alembic_version"} <= tables
        assert connection.execute(sa.text("select count(*) from alembic_version")).scalar_one() == 1
        # the lock is released: nothing holds it once the storages are open
        held = connection.execute(sa.text("select count(*) from pg_locks where locktype = 'advisory'")).scalar_one()
        assert held == 0
    engine.dispose()
    # and a service started later opens the finished schema as it is
    assert open_side_by_side(url, 1) == []


def backend_pids(storage: PostgresStorage) -> dict[str, set[int]]:
    """The server process behind each of the storage's connections, for five statements each."""
    openers = {"runs": storage.run_storage.connect, "event log": storage.event_log_storage.index_connection,
               "schedules": storage.schedule_storage.connect}
    pids: dict[str, set[int]] = {}
    for name, connect in openers.items():
        for _ in range(5):
            with connect() as connection:
                pids.setdefault(name, set()).add(connection.execute(sa.text("select pg_backend_pid()")).scalar_one())
    return pids


def test_every_process_reuses_one_connection_per_storage(postgres):
    """dagster-postgres opens a connection per statement outside the webserver; ACTS's storage
    pools (`optimize_for_webserver` of each storage: this pins what it does)."""
    storage = PostgresStorage(postgres_url=sqlalchemy_url(new_database(postgres, "pooled")))
    pids = backend_pids(storage)
    assert {name: len(found) for name, found in pids.items()} == {"runs": 1, "event log": 1, "schedules": 1}
    # and a statement timeout is not imposed on the runs and the daemon (0: none)
    with storage.run_storage.connect() as connection:
        assert connection.execute(sa.text("show statement_timeout")).scalar_one() == "0"


def test_after_a_postgres_restart_every_storage_answers_on_a_new_connection_without_a_failure(postgres):
    """A pooled connection is a dead socket after a restart: it is pinged at checkout and replaced,
    so no statement fails (a minute run in flight across the restart goes on)."""
    storage = PostgresStorage(postgres_url=sqlalchemy_url(new_database(postgres, "restarted")))
    before = backend_pids(storage)
    postgres.stop()
    postgres.start()

    assert storage.run_storage.get_runs_count() == 0
    assert storage.event_log_storage.get_asset_records() == []
    assert storage.schedule_storage.all_instigator_state() == []
    after = backend_pids(storage)
    assert all(len(pids) == 1 for pids in after.values()), after
    assert all(after[name].isdisjoint(before[name]) for name in after), (before, after)
