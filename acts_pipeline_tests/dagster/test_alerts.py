"""`alert_sensor` evaluated with `build_sensor_context` against a real temporary instance and a real
local webhook: a failed minute run, a failed ERROR check, missing cells and a silent recorder are
each said once, reminded, and resolved once they are over; a webhook that is down loses nothing
and breaks nothing; without a URL the sensor is off and says so once; the URL appears nowhere."""

import json
import logging
import time
from datetime import UTC, datetime, timedelta

import pytest
from dagster import DagsterInstance, Definitions, SkipReason, build_sensor_context, materialize

from acts_pipeline.core.cells import Cell, floor_minute
from acts_pipeline.core.parsing import parse_depth
from acts_pipeline.exchange import TimedBook
from acts_pipeline.orchestration.alert_webhook import AlertWebhook
from acts_pipeline.orchestration.alerts import POST_BUDGET_SECONDS, alert_sensor, alert_tick
from acts_pipeline.orchestration.assets import klines_1m, order_book_features, order_book_snapshot
from acts_pipeline.orchestration.book_source import BookSource
from acts_pipeline.orchestration.checks import (
    features_are_in_range,
    snapshot_books_are_valid,
    snapshots_are_complete,
    stream_recorder_is_healthy,
)
from acts_pipeline.orchestration.partitions import minute_range_tags
from acts_pipeline.orchestration.sensors import minute_sensor
from acts_pipeline.orchestration.symbols import InitialSymbols
from acts_pipeline.storage import MongoIOManager, MongoResource
from acts_pipeline.storage.boundary_books import BoundaryBooks
from acts_pipeline.storage.client import StorageError
from acts_pipeline.storage.cell_events import PER_CELL_EVENTS_TAGS
from acts_pipeline.storage.collections import ORDER_BOOK_FEATURES, ORDER_BOOK_SNAPSHOTS, RECORDER_NAME, RECORDER_STATUS
from acts_pipeline_tests.dates import iso_instant, minute_key, recent_minute
from acts_pipeline_tests.fakes import (
    CAPTURED_SYMBOLS,
    FakeClient,
    FixedClock,
    MongomockResource,
    fake_exchange,
    rest_books,
)
from acts_pipeline_tests.webhook_receiver import WebhookReceiver

SYMBOLS = list(CAPTURED_SYMBOLS)
SECRET = "s3cr3tT0kenInThePath"
CHECKS = [snapshot_books_are_valid, features_are_in_range, snapshots_are_complete, stream_recorder_is_healthy]
#: The minute of the in-process runs (yesterday: inside every partition window).
RUN_MINUTE = recent_minute(10, 0)


class EmptyBidsClient(FakeClient):
    """The captured books, but `symbol`'s comes with no bids (a thin market is stored as it came,
    and `snapshot_books_are_valid` fails on it)."""

    def __init__(self, now, symbol):
        super().__init__(now)
        self.empty = symbol

    def order_books(self, symbols, *, deadline=None, max_attempts=6):
        books = super().order_books(symbols, deadline=deadline, max_attempts=max_attempts)
        requested = self._now()
        book = parse_depth({"lastUpdateId": 1, "bids": [], "asks": [["10.0", "2.0"], ["11.0", "3.0"]]}, self.empty)
        books[self.empty] = TimedBook(book, requested, requested + timedelta(milliseconds=7), 1)
        return books


@pytest.fixture
def instance(tmp_path):
    with DagsterInstance.local_temp(str(tmp_path)) as instance:
        instance.add_dynamic_partitions("symbols", SYMBOLS)
        yield instance


@pytest.fixture
def mongo(request):
    return MongomockResource(database=f"alerts_{request.node.name}")


@pytest.fixture
def receiver():
    with WebhookReceiver(path=f"/services/T0ACTS/B0ACTS/{SECRET}") as receiver:
        yield receiver


def minute_run(instance, mongo, client, *, late=False, from_sensor=True):
    """A minute run of RUN_MINUTE as the minute sensor launches it (its tags), in process: just after
    the close, or (`late`) 30 s after it, past the tolerance, which fails the run."""
    clock = FixedClock(at=iso_instant(RUN_MINUTE, minutes=1, seconds=30 if late else 0.004))
    client._now = clock.now
    tags = {**minute_range_tags(RUN_MINUTE, SYMBOLS), **PER_CELL_EVENTS_TAGS}
    if from_sensor:
        tags.update({"dagster/sensor_name": "minute_sensor", "acts/minute": minute_key(RUN_MINUTE)})
    return materialize([order_book_snapshot, order_book_features, klines_1m, *CHECKS], instance=instance,
                       raise_on_error=False, tags=tags,
                       resources={"exchange": fake_exchange(client), "book_source": rest_books(), "capture_clock": clock,
                                  "mongo": mongo, "io_manager": MongoIOManager(mongo=mongo)})


def definitions(webhook, mongo, book_source):
    return Definitions(assets=[order_book_snapshot, order_book_features, klines_1m], asset_checks=CHECKS,
                       sensors=[minute_sensor, alert_sensor],
                       resources={"alert_webhook": webhook, "mongo": mongo, "book_source": book_source,
                                  "exchange": fake_exchange(FakeClient(now=None)), "initial_symbols": InitialSymbols(),
                                  "io_manager": MongoIOManager(mongo=mongo), "capture_clock": FixedClock(at="2026-01-01")})


class Logged(logging.Handler):
    """What the sensor said in its log (the daemon stores it with the tick), as plain lines."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)

    def lines(self, level=logging.DEBUG) -> list[str]:
        return [r.getMessage().split(" - ", 2)[-1] for r in self.records if r.levelno >= level]


class Ticks:
    """The sensor ticked by hand at chosen moments, its cursor carried from tick to tick."""

    def __init__(self, instance, webhook, mongo, book_source):
        self.instance, self.webhook, self.mongo, self.book_source = instance, webhook, mongo, book_source
        self.cursor = None
        self.skips: list[str] = []
        self.logged = Logged()

    def at(self, now: datetime) -> SkipReason:
        defs = definitions(self.webhook, self.mongo, self.book_source)
        with build_sensor_context(instance=self.instance, definitions=defs, cursor=self.cursor,
                                  resources={"alert_webhook": self.webhook, "mongo": self.mongo,
                                             "book_source": self.book_source}) as context:
            context.log.addHandler(self.logged)
            result = alert_tick(context, self.webhook, self.mongo, self.book_source, now)
            self.cursor = context.cursor
        self.skips.append(result.skip_message)
        return result


def store_minute(mongo, minute, symbols):
    """Snapshots and features of `symbols` at `minute`, as a minute run leaves them."""
    store = mongo.get_store()
    for name in (ORDER_BOOK_SNAPSHOTS, ORDER_BOOK_FEATURES):
        store.upsert(name, [{"symbol": s, "minute": minute} for s in symbols])


def recorder_status(mongo, updated_at, out=()):
    mongo.get_store().put_status(RECORDER_STATUS, RECORDER_NAME, {
        "state": "running", "updated_at": updated_at,
        "symbols": {s: {"in_sync": s not in out, "reason": "resyncing" if s in out else None} for s in SYMBOLS}})


def kinds(texts):
    """(kind, subject) of each message: `("PROBLEM", "minute runs are failing")`."""
    out = []
    for text in texts:
        head = text.split("\n")[0].removeprefix("[ACTS] ")
        kind = head.split(":")[0].split(" since")[0].split(" after")[0]
        subject = head.split(": ", 1)[1].split(" (for ")[0]
        out.append((kind, subject))
    return sorted(out)


FOUR = ["check snapshot_books_are_valid on order_book_snapshot failed", "minute runs are failing",
        "missing cells in the live minutes", "the stream recorder is down"]


def test_each_problem_is_said_once_reminded_and_resolved(instance, mongo, receiver):
    # a failed minute run (started 30 s after its close: refused), then a run launched by hand that
    # stores a book without bids: snapshot_books_are_valid fails (ERROR)
    assert not minute_run(instance, mongo, FakeClient(now=None), late=True).success
    assert minute_run(instance, mongo, EmptyBidsClient(None, "LRCBTC"), from_sensor=False).success
    # NKNUSDT missing from the live minutes B-1, B and B+1; the recorder silent since B-1
    base = floor_minute(datetime.now(UTC))
    for k in (-2, -1, 0, 1, 2):
        store_minute(mongo, base + timedelta(minutes=k), SYMBOLS if k in (-2, 2) else [s for s in SYMBOLS if s != "NKNUSDT"])
    recorder_status(mongo, base - timedelta(minutes=1))
    webhook = AlertWebhook(url=receiver.url, reminder_minutes=2, retry_pause_seconds=0.05)
    ticks = Ticks(instance, webhook, mongo, BookSource(mongo=mongo, source="stream"))

    ticks.at(base + timedelta(seconds=45))   # looks at minute B-1
    assert kinds(receiver.texts()) == [("PROBLEM", subject) for subject in FOUR]
    said = {kinds([text])[0][1]: text for text in receiver.texts()}
    assert f"(minute {minute_key(RUN_MINUTE)}) failed: " in said["minute runs are failing"]
    assert "closed 30.0 s ago" in said["minute runs are failing"]
    assert "LRCBTC" in said["check snapshot_books_are_valid on order_book_snapshot failed"]
    assert f"NKNUSDT at {minute_key(base - timedelta(minutes=1))}" in said["missing cells in the live minutes"]
    assert "order_book_snapshots, order_book_features" in said["missing cells in the live minutes"]
    assert "it is silent for 105 s" in said["the stream recorder is down"]

    ticks.at(base + timedelta(seconds=75))   # no minute closed since: the gap stands
    ticks.at(base + timedelta(seconds=105))  # minute B: NKNUSDT still missing
    assert len(receiver.texts()) == 4  # one message per problem
    assert ticks.skips[-1] == ("4 ongoing: check:order_book_snapshot/snapshot_books_are_valid, gap:live, "
                               "recorder:down, run:minute_sensor")

    ticks.at(base + timedelta(seconds=170))  # 2 minutes after the first: reminders (minute B+1 still missing it)
    assert kinds(receiver.texts()[4:]) == [("STILL A PROBLEM", subject) for subject in FOUR]

    # everything recovers: a minute run succeeds (and its books pass the check), minute B+2 is
    # complete, the recorder reports again with every symbol in sync
    assert minute_run(instance, mongo, FakeClient(now=None)).success
    recorder_status(mongo, base + timedelta(seconds=228))
    ticks.at(base + timedelta(seconds=230))
    assert kinds(receiver.texts()[8:]) == [("RESOLVED", subject) for subject in FOUR]
    assert "RESOLVED after 3 min (since" in [t for t in receiver.texts()[8:] if "gap" in t or "missing" in t][0]
    recorder_status(mongo, base + timedelta(seconds=258))  # it reports every 5 s
    ticks.at(base + timedelta(seconds=260))
    assert len(receiver.texts()) == 12 and ticks.skips[-1] == "no problem"

    # the URL's secret is nowhere: not in what was logged, the cursor, the ticks' messages
    logged = "\n".join(ticks.logged.lines())
    assert "alert posted (problem, gap:live): [ACTS] PROBLEM: missing cells in the live minutes" in logged
    for where in (logged, ticks.cursor, *ticks.skips):
        assert SECRET not in where and receiver.url not in where


def test_a_webhook_that_is_down_keeps_the_messages_and_breaks_nothing(instance, mongo, receiver):
    assert not minute_run(instance, mongo, FakeClient(now=None), late=True).success
    webhook = AlertWebhook(url=receiver.url, attempts=2, retry_pause_seconds=0.05)
    ticks = Ticks(instance, webhook, mongo, rest_books())
    now = datetime.now(UTC)
    receiver.answer_next(503, 503, 503, 503)
    result = ticks.at(now)  # two attempts, both refused
    assert isinstance(result, SkipReason) and result.skip_message.endswith("; 1 messages waiting for the webhook")
    ticks.at(now + timedelta(seconds=30))  # two more, refused: the warning is not repeated
    assert ticks.logged.lines(logging.WARNING) == ["alerts not delivered: HTTP 503 from the webhook on 127.0.0.1: error 503; 1 waiting, "
                        "retried every 30 s"]
    assert receiver.received == [] and json.loads(ticks.cursor)["alerts"]["outbox"][0]["key"] == "run:minute_sensor"
    ticks.at(now + timedelta(seconds=60))  # the webhook is back
    assert kinds(receiver.texts()) == [("PROBLEM", "minute runs are failing")]
    assert "alerts delivered again to the webhook on 127.0.0.1" in ticks.logged.lines()
    assert ticks.skips[-1] == "1 ongoing: run:minute_sensor"


def test_a_webhook_that_hangs_holds_the_tick_no_longer_than_its_budget(instance, mongo):
    assert not minute_run(instance, mongo, FakeClient(now=None), late=True).success
    with WebhookReceiver(path=f"/hook/{SECRET}", delay=20) as hanging:
        ticks = Ticks(instance, AlertWebhook(url=hanging.url), mongo, rest_books())
        started = time.monotonic()
        ticks.at(datetime.now(UTC))
        took = time.monotonic() - started
    # the daemon's sensor threads are shared with minute_sensor: the tick gives up and the message waits
    assert took < POST_BUDGET_SECONDS + 2, took
    assert json.loads(ticks.cursor)["alerts"]["outbox"][0]["key"] == "run:minute_sensor"
    assert ticks.logged.lines(logging.WARNING)[0].startswith("alerts not delivered: the webhook on 127.0.0.1 did not "
                                                             "answer: ")


class UnreachableMongo(MongoResource):
    def get_store(self):
        raise StorageError("reading symbol_registry: MongoDB down: connection refused")


def test_an_unreadable_database_is_its_own_problem_and_keeps_the_gap_as_it_was(instance, mongo, receiver):
    base = floor_minute(datetime.now(UTC))
    store_minute(mongo, base - timedelta(minutes=2), SYMBOLS)
    mongo.get_store().collection("symbol_registry").insert_many(
        [{"symbol": s, "tracked_since": base - timedelta(minutes=2)} for s in SYMBOLS])
    webhook = AlertWebhook(url=receiver.url, retry_pause_seconds=0.05)
    ticks = Ticks(instance, webhook, mongo, rest_books())
    ticks.at(base + timedelta(seconds=45))  # minute B-1 has nothing: a gap of every symbol
    assert kinds(receiver.texts()) == [("PROBLEM", "missing cells in the live minutes")]
    ticks.mongo = UnreachableMongo()
    for seconds in (105, 135, 165):  # unreadable: the gap is kept, not resolved; said after a minute
        ticks.at(base + timedelta(seconds=seconds))
    assert kinds(receiver.texts()[1:]) == [("PROBLEM", "the alert sensor cannot read MongoDB")]
    assert "MongoDB down: connection refused" in receiver.texts()[1]


def test_without_a_url_the_sensor_is_off_and_says_so_once(instance, mongo):
    webhook = AlertWebhook()
    defs = definitions(webhook, mongo, rest_books())
    cursor, logged = None, Logged()
    for _ in range(3):
        with build_sensor_context(instance=instance, definitions=defs, cursor=cursor,
                                  resources={"alert_webhook": webhook, "mongo": mongo, "book_source": rest_books()}) as context:
            context.log.addHandler(logged)
            result = alert_sensor(context)
            cursor = context.cursor
        assert result.skip_message == "alerts are off: ACTS_ALERT_WEBHOOK_URL is not set"
    [said] = logged.lines()
    assert said.startswith("alerts are off: ACTS_ALERT_WEBHOOK_URL is not set (set it to")


def test_a_stored_book_the_recorder_withdraws_later_is_said_once_when_it_is_deleted(instance, mongo, receiver):
    """The live look finds minute B-2 complete; then the recorder withdraws three books of it (its
    connection dropped before a later event confirmed them): one stored from the stream (the
    catch-up run deletes it a minute later), one stored over REST (it stays), one already deleted
    when the sensor first sees the withdrawal. The deleted cells are said as the recorder's
    withdrawal (the second in the resolution, whose detail is the latest), never the REST one."""
    base = floor_minute(datetime.now(UTC))
    store = mongo.get_store()
    store.record_tracked(SYMBOLS, base - timedelta(minutes=10))
    for k in range(-4, 3):
        for name in (ORDER_BOOK_SNAPSHOTS, ORDER_BOOK_FEATURES):
            store.upsert(name, [{"symbol": s, "minute": base + timedelta(minutes=k), "source": "stream"}
                                for s in SYMBOLS])
    a, b, c = SYMBOLS[:3]
    minute = base - timedelta(minutes=2)
    store.upsert(ORDER_BOOK_SNAPSHOTS, [{"symbol": b, "minute": minute, "source": "rest"}])
    webhook = AlertWebhook(url=receiver.url, retry_pause_seconds=0.05)
    ticks = Ticks(instance, webhook, mongo, BookSource(mongo=mongo, source="stream"))

    def tick(seconds):
        recorder_status(mongo, base + timedelta(seconds=seconds - 1))
        return ticks.at(base + timedelta(seconds=seconds))

    tick(-75)  # looks at B-3
    tick(-15)  # looks at B-2: complete
    assert receiver.texts() == []
    reason = "connection ws-1 lost: made-up drop: no event of the symbol after the close confirmed its book"
    BoundaryBooks(store).write([{"symbol": s, "minute": minute, "close": minute + timedelta(minutes=1),
                                 "connection": "ws-1", "decided_at": base + timedelta(seconds=20), "revised": True,
                                 "depth_limit": 100, "in_sync": False, "reason": reason} for s in (a, b, c)])
    BookSource(mongo=mongo, source="stream").withdraw(minute, [c])  # deleted before the sensor looks
    tick(45)  # looks at B-1: A still stored from the stream (its deletion is to come), C deleted
    [text] = receiver.texts()
    assert kinds([text]) == [("PROBLEM", "stored books withdrawn by the recorder")]
    assert f"1 cell of 1 symbol no longer stored: {c} at {minute_key(minute)}" in text and reason in text
    BookSource(mongo=mongo, source="stream").withdraw(minute, [a, b])  # the catch-up run: A goes, B (REST) stays
    tick(105)  # looks at B: A deleted now, within the ongoing problem (said once, no reminder)
    assert len(receiver.texts()) == 1 and "gap:withdrawn" in ticks.skips[-1]
    tick(165)  # looks at B+1: nothing new, the problem is over; its last detail names A
    assert kinds(receiver.texts()[1:]) == [("RESOLVED", "stored books withdrawn by the recorder")]
    assert f"{a} at {minute_key(minute)}" in receiver.texts()[-1]
    assert store.find_cells(ORDER_BOOK_SNAPSHOTS, [Cell(minute, b)])[0]["source"] == "rest"
    assert all(b not in t for t in receiver.texts())  # its REST book stays: no gap
    count = len(receiver.texts())
    tick(225)
    assert len(receiver.texts()) == count and ticks.skips[-1] == "no problem"
