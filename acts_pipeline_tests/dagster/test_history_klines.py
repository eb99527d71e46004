"""`klines_history` run in process against the real simulator (its own process) and the real
embedded database: a month of one symbol stored as the simulator serves it, re-runs that replace,
a refused symbol, the month in progress; and, with a fake exchange on a fake clock, the pacing
under the weight budget and a month before the symbol was listed."""

from __future__ import annotations

import json
import urllib.request
from datetime import UTC, datetime, timedelta

import pytest
from dagster import AssetKey, DagsterInstance, materialize

from acts_pipeline.core.cells import floor_minute
from acts_pipeline.core.errors import ExchangeServerError
from acts_pipeline.exchange import KLINES_WEIGHT, BinanceExchange, WeightGate
from acts_pipeline.orchestration.capture import CaptureClock
from acts_pipeline.orchestration.history_klines import klines_history, plan_pages
from acts_pipeline.orchestration.klines_budget import BOOKS_BURST_SECONDS, KLINES_WEIGHT_BUDGET
from acts_pipeline.storage import MongoResource
from acts_pipeline_tests.fakes import FakeClient, MongomockResource, fake_exchange, failing_symbol

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]
SYMBOL = "NKNUSDT"
FEBRUARY = datetime(2025, 2, 1, tzinfo=UTC)  # 28 days: 40,320 minutes, 41 requests
#: A listing after every month asked for: the fake exchange returns no kline.
NEVER = datetime(2030, 1, 1, tzinfo=UTC)


def range_tags(first_month: str, last_month: str, first_symbol: str, last_symbol: str | None = None) -> dict:
    return {"dagster/asset_partition_range_start": f"{first_month}|{first_symbol}",
            "dagster/asset_partition_range_end": f"{last_month}|{last_symbol or first_symbol}"}


@pytest.fixture
def instance():
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions("symbols", [SYMBOL, "NOSUCHUSDT"])
        yield instance


@pytest.fixture
def mongo(mongo_uri, mongo_db_name):
    return MongoResource(uri=mongo_uri, database=mongo_db_name)


def run(instance, mongo, exchange, tags, clock=None):
    return materialize([klines_history], instance=instance, raise_on_error=False, tags=tags,
                       resources={"exchange": exchange, "mongo": mongo, "capture_clock": clock or CaptureClock()})


def simulator_klines(simulator, symbol: str, start: datetime, end: datetime) -> dict[datetime, list]:
    """The simulator's own klines of [start, end), read straight from its HTTP API, by open time."""
    truth = {}
    cursor = int(start.timestamp() * 1000)
    end_ms = int(end.timestamp() * 1000)
    while cursor < end_ms:
        url = (f"{simulator.api_url}/v3/klines?symbol={symbol}&interval=1m&startTime={cursor}"
               f"&endTime={min(end_ms, cursor + 1000 * 60_000) - 1}&limit=1000")
        with urllib.request.urlopen(url, timeout=10) as response:
            rows = json.loads(response.read())
        for row in rows:
            truth[datetime.fromtimestamp(row[0] / 1000, UTC)] = row
        cursor += 1000 * 60_000
    return truth


def stored(mongo, symbol=SYMBOL, start=FEBRUARY, end=datetime(2025, 3, 1, tzinfo=UTC)):
    return {d["minute"]: d for d in mongo.get_store().collection("klines_1m").find(
        {"symbol": symbol, "minute": {"$gte": start, "$lt": end}}, {"_id": False})}


def materialized(instance):
    return instance.get_materialized_partitions(AssetKey("klines_history"))


def test_a_month_of_one_symbol_is_stored_as_the_simulator_serves_it(simulator, instance, mongo, tmp_path):
    exchange = BinanceExchange(api_url=simulator.api_url, spool_dir=str(tmp_path))
    result = run(instance, mongo, exchange, range_tags("2025-02-01", "2025-02-01", SYMBOL))
    assert result.success
    truth = simulator_klines(simulator, SYMBOL, FEBRUARY, datetime(2025, 3, 1, tzinfo=UTC))
    documents = stored(mongo)
    assert len(truth) == 28 * 1440 and sorted(documents) == sorted(truth)
    for minute, row in truth.items():
        document = documents[minute]
        assert [document[f] for f in ("open", "high", "low", "close", "volume")] == [float(v) for v in row[1:6]]
        assert document["quote_volume"] == float(row[7]) and document["trades"] == row[8]
        assert (document["taker_buy_base_volume"], document["taker_buy_quote_volume"]) == (float(row[9]), float(row[10]))
    # the fields the minute runs store, and nothing else
    assert set(documents[FEBRUARY]) == {"symbol", "minute", "open", "high", "low", "close", "volume", "quote_volume",
                                        "trades", "taker_buy_base_volume", "taker_buy_quote_volume"}
    assert materialized(instance) == {f"2025-02-01|{SYMBOL}"}
    (event,) = [e for e in result.get_asset_materialization_events()]
    metadata = event.materialization.metadata
    assert metadata["klines"].value == 40_320 and metadata["requests"].value == 41
    assert metadata["first_minute"].value == "2025-02-01-00:00" and metadata["last_minute"].value == "2025-02-28-23:59"


def this_month() -> datetime:
    return datetime.now(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def test_the_month_in_progress_is_stored_to_its_last_closed_minute_and_a_rerun_replaces(
        simulator, instance, mongo, tmp_path):
    exchange = BinanceExchange(api_url=simulator.api_url, spool_dir=str(tmp_path))
    month = this_month()
    key = f"{month:%Y-%m-%d}"
    store = mongo.get_store()
    other = {"symbol": "BLZETH", "minute": month, "open": 1.0}  # another symbol's kline: untouched
    store.upsert("klines_1m", [other])
    before = datetime.now(UTC)
    assert run(instance, mongo, exchange, range_tags(key, key, SYMBOL)).success
    documents = stored(mongo, SYMBOL, month, month + timedelta(days=31))
    last = max(documents)
    assert floor_minute(before) - timedelta(minutes=2) <= last <= floor_minute(datetime.now(UTC)) - timedelta(minutes=1)
    assert sorted(documents) == [month + timedelta(minutes=i) for i in range(len(documents))]  # every closed minute
    truth = simulator_klines(simulator, SYMBOL, month, last + timedelta(minutes=1))
    assert all(documents[m]["close"] == float(truth[m][4]) for m in documents)

    # a re-run replaces: a tampered kline is the simulator's again, and nothing is doubled
    store.collection("klines_1m").update_one({"symbol": SYMBOL, "minute": month}, {"$set": {"close": -1.0}})
    assert run(instance, mongo, exchange, range_tags(key, key, SYMBOL)).success
    again = stored(mongo, SYMBOL, month, month + timedelta(days=31))
    assert again[month] == documents[month] and {m: again[m] for m in documents} == documents
    assert store.collection("klines_1m").count_documents({"symbol": SYMBOL}) == len(again)
    assert store.collection("klines_1m").find_one({"symbol": "BLZETH"}, {"_id": False}) == other


def test_a_symbol_the_exchange_does_not_know_is_refused_and_the_other_stored(simulator, instance, mongo, tmp_path):
    exchange = BinanceExchange(api_url=simulator.api_url, spool_dir=str(tmp_path))
    key = f"{this_month():%Y-%m-%d}"
    kept = {"symbol": "NOSUCHUSDT", "minute": this_month(), "open": 1.0}  # stored before: never removed
    mongo.get_store().upsert("klines_1m", [kept])
    result = run(instance, mongo, exchange, range_tags(key, key, SYMBOL, "NOSUCHUSDT"))
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "NOSUCHUSDT" in failure.step_failure_data.error.message
    assert "does not know" in failure.step_failure_data.error.message
    assert materialized(instance) == {f"{key}|{SYMBOL}"}  # the refused symbol's month is not
    assert mongo.get_store().collection("klines_1m").find_one({"symbol": "NOSUCHUSDT"}, {"_id": False}) == kept
    assert mongo.get_store().collection("klines_1m").count_documents({"symbol": SYMBOL}) > 0


def span_tags(first: datetime, last: datetime) -> dict:
    return {"acts/klines_from": f"{first:%Y-%m-%d-%H:%M}", "acts/klines_to": f"{last:%Y-%m-%d-%H:%M}"}


def test_a_span_run_stores_exactly_its_minutes_for_collected_symbols_and_marks_no_month(simulator, instance, mongo,
                                                                                         tmp_path):
    """What klines_history_catch_up_sensor requests for a gap older than the live window: the span
    straddles a month's end, so two months of one symbol; a registered symbol the minute runs never
    collected (NOSUCHUSDT, between them in the range) is left out, not refused."""
    exchange = BinanceExchange(api_url=simulator.api_url, spool_dir=str(tmp_path))
    first, last = datetime(2025, 2, 28, 23, 0, tzinfo=UTC), datetime(2025, 3, 1, 0, 29, tzinfo=UTC)
    store = mongo.get_store()
    store.record_tracked([SYMBOL], datetime(2025, 2, 1, tzinfo=UTC))
    outside = [{"symbol": SYMBOL, "minute": m, "open": -1.0} for m in (first - timedelta(minutes=1), last + timedelta(minutes=1))]
    store.upsert("klines_1m", outside)  # just outside the span: not touched
    tags = {**range_tags("2025-02-01", "2025-03-01", SYMBOL, "NOSUCHUSDT"), **span_tags(first, last)}
    result = run(instance, mongo, exchange, tags)
    assert result.success
    truth = simulator_klines(simulator, SYMBOL, first, last + timedelta(minutes=1))
    documents = stored(mongo, SYMBOL, first - timedelta(hours=1), last + timedelta(hours=1))
    span_documents = {m: d for m, d in documents.items() if first <= m <= last}
    assert sorted(span_documents) == sorted(truth) and len(truth) == 90
    assert all(span_documents[m]["close"] == float(row[4]) for m, row in truth.items())
    assert {m: documents[m]["open"] for m in documents if not first <= m <= last} == {o["minute"]: -1.0 for o in outside}
    assert mongo.get_store().collection("klines_1m").count_documents({"symbol": "NOSUCHUSDT"}) == 0
    # the months are observed with what was stored, not marked materialized
    assert materialized(instance) == set()
    observed = {e.event_specific_data.asset_observation.partition: e.event_specific_data.asset_observation.metadata
                for e in result.all_events if e.event_type_value == "ASSET_OBSERVATION"
                and e.event_specific_data.asset_observation.partition}
    assert sorted(observed) == [f"2025-02-01|{SYMBOL}", f"2025-03-01|{SYMBOL}"]
    assert observed[f"2025-02-01|{SYMBOL}"]["klines"].value == 60
    assert observed[f"2025-03-01|{SYMBOL}"]["span"].value == "2025-03-01-00:00..2025-03-01-00:29"
    # a re-run replaces: nothing doubled
    assert run(instance, mongo, exchange, tags).success
    assert store.collection("klines_1m").count_documents({"symbol": SYMBOL}) == len(documents)


def test_a_span_with_one_tag_or_backwards_is_refused_by_name():
    from acts_pipeline.orchestration.history_klines import span_of

    assert span_of({}) is None
    with pytest.raises(ValueError, match="acts/klines_to"):
        span_of({"acts/klines_from": "2025-02-01-00:00"})
    with pytest.raises(ValueError, match="ends before it starts"):
        span_of(span_tags(datetime(2025, 2, 2, tzinfo=UTC), datetime(2025, 2, 1, tzinfo=UTC)))
    with pytest.raises(ValueError, match="bad klines span"):
        span_of({"acts/klines_from": "yesterday", "acts/klines_to": "2025-02-01-00:00"})


def test_plan_pages_clips_months_to_the_span():
    first, end = datetime(2025, 2, 28, 23, 0, tzinfo=UTC), datetime(2025, 3, 1, 0, 30, tzinfo=UTC)
    keys = [f"2025-01-01|{SYMBOL}", f"2025-02-01|{SYMBOL}", f"2025-03-01|{SYMBOL}"]
    months, pages = plan_pages(keys, datetime(2026, 1, 1, tzinfo=UTC), (first, end))
    assert [(m.key, m.start, m.end) for m in months] == [
        (f"2025-02-01|{SYMBOL}", first, datetime(2025, 3, 1, tzinfo=UTC)),
        (f"2025-03-01|{SYMBOL}", datetime(2025, 3, 1, tzinfo=UTC), end)]  # January is outside: not planned
    assert [(p.start, p.end) for p in pages] == [(first, end)]  # one request for both


# -- pacing and listing, with a fake exchange on a fake clock ----------------------------------------


class FakeTime:
    """A wall clock that moves only when slept on (instantly), shared by the fake exchange, its
    weight gate and the asset's clock resource."""

    def __init__(self, at: str):
        self.t = datetime.fromisoformat(at).timestamp()

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.t, UTC)

    def sleep(self, seconds: float) -> None:
        self.t += max(seconds, 0.001)


_FAKE_TIMES: dict[str, FakeTime] = {}


class FakeTimeClock(CaptureClock):
    """The asset's clock on a `FakeTime` (looked up by id: Dagster copies resources)."""

    time_id: str

    def now(self) -> datetime:
        return _FAKE_TIMES[self.time_id].now()

    def sleep(self, seconds: float) -> None:
        _FAKE_TIMES[self.time_id].sleep(seconds)


def fake_clock(fake_time: FakeTime) -> FakeTimeClock:
    _FAKE_TIMES[str(id(fake_time))] = fake_time
    return FakeTimeClock(time_id=str(id(fake_time)))


class MeteredExchangeClient(FakeClient):
    """Klines as `FakeClient` makes them (none before `listed`), with Binance's per-IP weight on a
    fake clock: each new minute starts with the minute run's `books_weight`, each klines request
    adds 2 and takes `request_seconds`, and the used weight is reported back to the gate as
    `X-MBX-USED-WEIGHT-1M` is."""

    def __init__(self, clock: FakeTime, books_weight: int, listed: datetime | None = None,
                 request_seconds: float = 0.05, failing=None, flaky=()):
        super().__init__(now=clock.now, failing=failing)
        self.flaky = set(flaky)  # page starts that fail once, as an exchange outage would
        self.requests: list[tuple[str, datetime, datetime]] = []
        self.clock = clock
        self.books_weight = books_weight
        self.listed = listed
        self.request_seconds = request_seconds
        self.gate = WeightGate(clock=lambda: clock.now().timestamp())
        self.weight_by_minute: dict[int, int] = {}
        self.klines_by_minute: dict[int, int] = {}

    def _minute(self) -> int:
        minute = int(self.clock.now().timestamp() // 60)
        self.weight_by_minute.setdefault(minute, self.books_weight)
        return minute

    def klines(self, symbol, start, end, max_attempts=4):
        self.requests.append((symbol, start, end))
        minute = self._minute()
        assert int((end - start) / timedelta(minutes=1)) <= 1000, "one request is at most 1000 minutes"
        self.gate.acquire(KLINES_WEIGHT, deadline=None)
        self.weight_by_minute[minute] += KLINES_WEIGHT
        self.klines_by_minute[minute] = self.klines_by_minute.get(minute, 0) + 1
        self.clock.sleep(self.request_seconds)
        self.gate.observe({"X-MBX-USED-WEIGHT-1M": str(self.weight_by_minute[minute])})
        if start in self.flaky:
            self.flaky.discard(start)
            raise ExchangeServerError(f"GET /api/v3/klines {symbol}: HTTP 503 after every attempt", symbol=symbol)
        found = super().klines(symbol, max(start, self.listed or start), end)
        return [k for k in found if k.minute < end]


def test_pacing_keeps_every_minute_under_the_budget_and_spreads_a_year_over_minutes(instance):
    """A year of one symbol beside a minute run of 500 symbols' books (2,500 weight a minute):
    the klines fit in the 380 weight the budget leaves each minute, never in a minute's first
    seconds, so 526 requests spread over three minutes. (The exchange has no klines to give here:
    the requests are what is measured, not the storage.)"""
    clock = FakeTime("2026-11-30T12:00:30+00:00")
    client = MeteredExchangeClient(clock, books_weight=2500, listed=NEVER)
    result = run(instance, MongomockResource(database="klines_history_pacing"), fake_exchange(client),
                 range_tags("2025-11-01", "2026-10-01", SYMBOL), clock=fake_clock(clock))
    assert result.success
    assert sum(client.klines_by_minute.values()) == 526
    assert max(client.weight_by_minute.values()) <= KLINES_WEIGHT_BUDGET  # books included
    assert client.gate.max_used_seen <= KLINES_WEIGHT_BUDGET
    assert len(client.klines_by_minute) >= 3  # (526 x 2 weight) / (2880 - 2500) per minute
    observation = next(e for e in result.all_events if e.event_type_value == "ASSET_OBSERVATION")
    metadata = observation.event_specific_data.asset_observation.metadata
    assert metadata["requests"].value == 526 and metadata["weight_used"].value == 1052
    assert metadata["seconds_paused_for_weight"].value > 60
    assert len(materialized(instance)) == 12


def test_pacing_sends_nothing_in_the_first_seconds_of_a_minute(instance):
    clock = FakeTime("2026-11-30T12:00:58+00:00")
    client = MeteredExchangeClient(clock, books_weight=0, request_seconds=1.0, listed=NEVER)
    sent_at = []
    original = client.klines

    def spy(*args, **kwargs):
        sent_at.append(clock.now().timestamp() % 60)
        return original(*args, **kwargs)

    client.klines = spy
    assert run(instance, MongomockResource(database="klines_history_burst"), fake_exchange(client),
               range_tags("2026-09-01", "2026-09-01", SYMBOL), clock=fake_clock(clock)).success
    assert len(sent_at) == 44 and all(s >= BOOKS_BURST_SECONDS for s in sent_at)


def test_a_month_before_the_listing_is_empty_and_a_listing_month_starts_at_the_listing(instance):
    clock = FakeTime("2026-11-30T12:00:30+00:00")
    listed = datetime(2025, 3, 31, 20, 0, tzinfo=UTC)
    client = MeteredExchangeClient(clock, books_weight=0, listed=listed)
    mongo = MongomockResource(database="klines_history_listing")
    result = run(instance, mongo, fake_exchange(client), range_tags("2025-02-01", "2025-03-01", SYMBOL), clock=fake_clock(clock))
    assert result.success
    events = {e.materialization.partition: e.materialization.metadata for e in result.get_asset_materialization_events()}
    assert events[f"2025-02-01|{SYMBOL}"]["klines"].value == 0
    assert "no kline" in events[f"2025-02-01|{SYMBOL}"]["note"].value
    assert events[f"2025-03-01|{SYMBOL}"]["first_minute"].value == "2025-03-31-20:00"
    first = mongo.get_store().collection("klines_1m").find_one({}, sort=[("minute", 1)])
    assert first["minute"].replace(tzinfo=UTC) == listed  # nothing invented before the listing


def test_a_page_the_exchange_keeps_failing_fails_its_months_only(instance):
    clock = FakeTime("2026-11-30T12:00:30+00:00")
    client = MeteredExchangeClient(clock, books_weight=0, failing=failing_symbol("NOSUCHUSDT"),
                                   listed=datetime(2025, 3, 31, 23, 0, tzinfo=UTC))
    result = run(instance, MongomockResource(database="klines_history_refused"), fake_exchange(client),
                 range_tags("2025-02-01", "2025-03-01", SYMBOL, "NOSUCHUSDT"), clock=fake_clock(clock))
    assert not result.success
    assert materialized(instance) == {f"2025-02-01|{SYMBOL}", f"2025-03-01|{SYMBOL}"}
    # the refused symbol was asked once, not once per page
    assert [c[0] for c in client.kline_calls].count("NOSUCHUSDT") == 1


def test_a_retried_step_resumes_after_the_months_the_failed_attempt_stored(instance):
    """The exchange fails a page of March for good (the client's retries spent): February is
    stored, March failed; the step's retry (10 s later) fetches March only, from its start."""
    clock = FakeTime("2026-11-30T12:00:30+00:00")
    march = datetime(2025, 3, 1, tzinfo=UTC)
    client = MeteredExchangeClient(clock, books_weight=0, listed=datetime(2025, 3, 31, 23, 0, tzinfo=UTC),
                                   flaky=[FEBRUARY + timedelta(minutes=50_000)])
    result = run(instance, MongomockResource(database="klines_history_resume"), fake_exchange(client),
                 range_tags("2025-02-01", "2025-03-01", SYMBOL), clock=fake_clock(clock))
    assert result.success
    assert materialized(instance) == {f"2025-02-01|{SYMBOL}", f"2025-03-01|{SYMBOL}"}
    starts = [start for _, start, _ in client.requests]
    assert sum(1 for s in starts if s < march) == 41  # February's pages (the last one straddles): once
    assert starts.count(march) == 1 and starts[-1] == march + timedelta(minutes=44_000)  # the retry: March alone
    assert any(e.event_type_value == "STEP_RESTARTED" for e in result.all_events)


@pytest.mark.parametrize("months, requests", [(["2025-01-01"], 45), (["2025-01-01", "2025-02-01"], 85),
                                              ([f"2025-{m:02d}-01" for m in range(1, 13)], 526)])
def test_following_months_are_paged_as_one_span(months, requests):
    _, pages = plan_pages([f"{m}|{SYMBOL}" for m in months], datetime(2026, 1, 1, tzinfo=UTC))
    assert len(pages) == requests
    assert all(p.end - p.start <= timedelta(minutes=1000) for p in pages)
    assert pages[0].start == datetime.fromisoformat(months[0]).replace(tzinfo=UTC)
