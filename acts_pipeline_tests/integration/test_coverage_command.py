"""`acts-pipeline coverage` against the real embedded database server: a backfill made before a
symbol was first collected is counted and confirmed, and an explicit range expects every minute
of it for the chosen symbols and collection."""

import time
from datetime import UTC, datetime, timedelta

import pytest
from dagster import DagsterInstance

from acts_pipeline.platform import cli
from acts_pipeline.storage import MongoStore

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def closed_minutes_end() -> datetime:
    """The end of the last closed minute, with at least 10 s left before it moves."""
    now = datetime.now(UTC)
    if now.second >= 50:
        time.sleep(61 - now.second)
        now = datetime.now(UTC)
    return now.replace(second=0, microsecond=0)


@pytest.fixture
def platform(tmp_path, monkeypatch, mongo_uri, mongo_db_name):
    """The database and instance a platform would have: BTCUSDT collected by the minute runs
    from E-20 (E the end of the last closed minute) with its klines backfilled from E-50, and
    one snapshot missed at E-5; ETHUSDT only backfilled (klines E-40..E-31), never collected;
    SOLUSDT registered with no data; XRPUSDT unregistered, with klines."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    for name, value in {"DAGSTER_HOME": str(home), "ACTS_MONGO_URI": mongo_uri, "ACTS_MONGO_DB": mongo_db_name}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)  # no project folder here: nothing of a running platform is picked up
    with DagsterInstance.get() as instance:
        instance.add_dynamic_partitions("symbols", ["BTCUSDT", "ETHUSDT", "SOLUSDT"])
    end = closed_minutes_end()
    store = MongoStore.connect(mongo_uri, mongo_db_name)

    def cells(symbol, first, last, skip=()):
        return [{"symbol": symbol, "minute": end - timedelta(minutes=m)} for m in range(first, last - 1, -1)
                if m not in skip]

    store.record_tracked(["BTCUSDT"], end - timedelta(minutes=20))
    store.upsert("order_book_snapshots", cells("BTCUSDT", 20, 1, skip={5}))
    store.upsert("order_book_features", cells("BTCUSDT", 20, 1))
    store.upsert("klines_1m", cells("BTCUSDT", 50, 1) + cells("ETHUSDT", 40, 31) + cells("XRPUSDT", 45, 1))
    return end


def coverage(capsys, *args):
    """The exit code, and per (collection, symbol) the expected, stored and missing counts."""
    code = cli.main(["coverage", *args])
    out = capsys.readouterr().out
    rows = {}
    for line in out.splitlines():
        fields = line.split()
        if fields and fields[0] in ("order_book_snapshots", "order_book_features", "klines_1m"):
            rows[fields[0], fields[1]] = tuple(int(f) for f in fields[4:7])
    return code, rows, out


def test_a_backfill_before_the_first_collected_minute_is_confirmed(platform, capsys):
    code, rows, out = coverage(capsys, "--minutes", "60", "--fail-on-missing")
    assert code == 1, out  # a snapshot is missing
    assert rows["klines_1m", "BTCUSDT"] == (50, 50, 0), out
    assert rows["order_book_snapshots", "BTCUSDT"] == (20, 19, 1), out
    assert rows["order_book_features", "BTCUSDT"] == (20, 20, 0), out
    # counted from its first stored minute: the 30 minutes since the backfill are missing
    assert rows["klines_1m", "ETHUSDT"] == (40, 10, 30), out
    assert ("order_book_snapshots", "ETHUSDT") not in rows
    assert "XRPUSDT" not in out  # not registered
    assert "no data and no run so far: SOLUSDT" in out


def test_an_explicit_range_expects_every_minute_for_the_chosen_symbols_and_collection(platform, capsys):
    start, end = platform - timedelta(minutes=60), platform - timedelta(minutes=40)
    # --start in the partition key format, --end in ISO 8601 with an offset (converted to UTC)
    code, rows, out = coverage(capsys, "--start", f"{start:%Y-%m-%d-%H:%M}",
                               "--end", f"{end + timedelta(hours=1):%Y-%m-%dT%H:%M}+01:00",
                               "--collection", "klines_1m", "--symbols", "btcusdt,XRPUSDT,SOLUSDT")
    assert code == 0, out
    assert f"coverage of {start:%Y-%m-%d %H:%M} .. {end:%Y-%m-%d %H:%M} UTC" in out
    assert rows == {("klines_1m", "BTCUSDT"): (20, 10, 10), ("klines_1m", "XRPUSDT"): (20, 5, 15),
                    ("klines_1m", "SOLUSDT"): (20, 0, 20)}, out
    assert f"{start:%Y-%m-%d-%H:%M}..{start + timedelta(minutes=9):%H:%M}" in out  # BTCUSDT's missing minutes


def test_an_explicit_range_is_cut_at_the_last_closed_minute(platform, capsys):
    start = platform - timedelta(minutes=10)
    code, rows, out = coverage(capsys, "--start", f"{start:%Y-%m-%dT%H:%M}", "--end", "2999-01-01T00:00",
                               "--collection", "order_book_snapshots", "--symbols", "BTCUSDT")
    assert rows == {("order_book_snapshots", "BTCUSDT"): (10, 9, 1)}, out


@pytest.mark.parametrize(("args", "message"), [
    (["--start", "yesterday"], "argument --start: not a UTC minute: 'yesterday'"),
    (["--start", "2026-11-30T10:00:30"], "argument --start: not a whole minute: '2026-11-30T10:00:30'"),
    (["--start", "2026-11-30T10:00", "--end", "2026-11-30-10:00"],
     "error: --end 2026-11-30 10:00 UTC must be after --start 2026-11-30 10:00 UTC"),
    (["--end", "2026-11-30-10:00"], "error: --end needs --start"),
    (["--start", "2999-01-01T00:00"], "error: --start 2999-01-01 00:00 UTC is not a closed minute yet"),
    (["--minutes", "0"], "argument --minutes: not a positive whole number of minutes: '0'"),
    (["--collection", "klines"], "argument --collection: invalid choice: 'klines'"),
    (["--symbols", "BTC-USDT"], "error: --symbols has malformed symbols: BTC-USDT"),
    (["--symbols", " , "], "error: --symbols is empty"),
])
def test_a_bad_option_is_refused_naming_it(platform, capsys, args, message):
    try:
        code = cli.main(["coverage", *args])
    except SystemExit as exit_:  # argparse's own refusal
        code = exit_.code
    assert code == 2
    assert message in capsys.readouterr().err
