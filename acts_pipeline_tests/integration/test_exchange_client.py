"""`ExchangeClient` against the offline simulator as a real process over HTTP: books, klines,
exchangeInfo, every fault kind, Retry-After, bans and the weight budget.

Every request goes through the client's one asyncio transport; a single book is
`order_books([symbol])` (the `fetch` fixture), its error raised."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from acts_pipeline.core.errors import (
    BannedError,
    ExchangeError,
    ExchangeServerError,
    MalformedResponseError,
    RateLimitedError,
    UnknownSymbolError,
)
from acts_pipeline.exchange import ExchangeClient, TimedBook
from acts_pipeline_tests.ports import refusing_port
from acts_pipeline_tests.servers_simulator import running_simulator, wait_for_minute_headroom

pytestmark = pytest.mark.integration


@pytest.fixture
def client(simulator) -> Iterator[ExchangeClient]:
    client = ExchangeClient(simulator.api_url)
    yield client
    client.close()


Fetch = Callable[..., TimedBook]


def fetch_alone(client: ExchangeClient, symbol: str, *, deadline: float | None = None) -> TimedBook:
    """One book through `order_books`, its error raised."""
    result = client.order_books([symbol], deadline=deadline)[symbol]
    if isinstance(result, ExchangeError):
        raise result
    return result


@pytest.fixture
def fetch() -> Fetch:
    """`fetch(client, symbol, deadline=...)`: one book, its error raised."""
    return fetch_alone


def depth_requests(stats: dict, symbol: str) -> int:
    return stats["requests_by_symbol"].get("depth", {}).get(symbol, 0)


def klines_requests(stats: dict, symbol: str) -> int:
    return stats["requests_by_symbol"].get("klines", {}).get(symbol, 0)


def fired(stats: dict, kind: str) -> int:
    return stats["faults_fired"].get(kind, 0)


def assert_utc(moment: datetime) -> None:
    assert moment.tzinfo is UTC


def assert_sane_book(timed: TimedBook, symbol: str, levels: int) -> None:
    book = timed.book
    assert book.symbol == symbol
    assert book.bids.shape == (levels, 2) and book.asks.shape == (levels, 2)
    assert (np.diff(book.bids[:, 0]) < 0).all() and (np.diff(book.asks[:, 0]) > 0).all()
    assert book.bids[0, 0] < book.asks[0, 0]


# ---- order books -----------------------------------------------------------------------------


def test_order_book_is_parsed_and_honestly_timed(client, fetch):
    before = datetime.now(UTC)
    timed = fetch(client, "BTCUSDT", deadline=time.time() + 5)
    after = datetime.now(UTC)
    assert isinstance(timed, TimedBook)
    assert_sane_book(timed, "BTCUSDT", 100)  # the default depth limit
    assert_utc(timed.requested_at)
    assert_utc(timed.captured_at)
    assert before <= timed.requested_at <= timed.captured_at <= after
    assert timed.attempts == 1
    assert timed.book.last_update_id > 0
    # The gate read the exchange's own count of this minute's weight.
    assert client.gate.max_used_seen > 0


@pytest.mark.parametrize(("depth_limit", "weight"), [(5, 5), (500, 25)])
def test_depth_limit_is_honoured_and_weighed(simulator, fetch, depth_limit, weight):
    client = ExchangeClient(simulator.api_url, depth_limit=depth_limit)
    try:
        wait_for_minute_headroom(3)
        before = simulator.stats()["used_weight"]
        timed = fetch(client, "ETHUSDT", deadline=time.time() + 5)
        assert_sane_book(timed, "ETHUSDT", depth_limit)
        assert simulator.stats()["used_weight"] - before == weight
        assert client.gate.used_weight == client.gate.max_used_seen == before + weight
    finally:
        client.close()


def test_order_books_of_20_real_symbols_concurrently(client, simulator):
    info = client.exchange_info()
    symbols = [name for name, symbol in info.items() if symbol.trading][:20]
    assert len(symbols) == 20
    # Every answer takes 1 s: one after another they would take 20 s.
    simulator.set_faults([{"endpoint": "depth", "kind": "latency", "delay": 1.0, "times": 20}])
    before = simulator.stats()
    started = time.time()
    results = client.order_books(symbols, deadline=started + 15)
    after = simulator.stats()
    assert list(results) == symbols
    for symbol, result in results.items():
        assert isinstance(result, TimedBook), (symbol, result)
        assert result.book.symbol == symbol and result.attempts == 1
        assert len(result.book.bids) > 0 and len(result.book.asks) > 0
    assert all(depth_requests(after, s) - depth_requests(before, s) == 1 for s in symbols)
    assert fired(after, "latency") - fired(before, "latency") == 20
    # All 20 at once (up to max_workers = 32 in flight): every request had left before the
    # first answer (1 s after its request) came back. Order, not speed: a loaded machine may
    # be slow, it cannot reorder these.
    assert max(r.requested_at for r in results.values()) < min(r.captured_at for r in results.values())


def test_order_books_keep_at_most_max_workers_in_flight(simulator):
    """5 at a time: 20 answers of 0.3 s take four waves, no fewer (the bound holds) and no more."""
    client = ExchangeClient(simulator.api_url, max_workers=5)
    try:
        symbols = [name for name, symbol in client.exchange_info().items() if symbol.trading][:20]
        client.order_books(symbols[:5], deadline=time.time() + 5)  # connections up: waves only below
        simulator.set_faults([{"endpoint": "depth", "kind": "latency", "delay": 0.3, "times": 20}])
        started = time.time()
        results = client.order_books(symbols, deadline=started + 10)
        elapsed = time.time() - started
    finally:
        client.close()
    assert all(isinstance(result, TimedBook) for result in results.values()), results
    assert elapsed >= 1.2  # four waves of 0.3 s at least: the bound holds
    # The (n+1)-th wave of 5 was only sent once the n-th had been answered, 0.3 s later.
    starts = sorted(result.requested_at.timestamp() - started for result in results.values())
    for wave in range(4):
        assert all(t >= 0.3 * wave - 0.01 for t in starts[5 * wave:5 * wave + 5]), starts
    # ...and the first wave was all 5 (no fewer in flight than allowed): five requests had left
    # before the first answer came back.
    first_answer = min(result.captured_at for result in results.values())
    assert sum(result.requested_at < first_answer for result in results.values()) == 5


def test_one_unknown_symbol_does_not_spoil_the_others(client, simulator):
    symbols = ["ETHBTC", "LTCBTC", "BNBBTC", "NEOBTC", "BTCUSDT", "ETHUSDT", "LRCBTC", "NKNUSDT"]
    refused = "BNBBTC"
    simulator.set_faults([{"endpoint": "depth", "symbol": refused, "kind": "invalid_symbol"}])
    before = simulator.stats()
    results = client.order_books(symbols, deadline=time.time() + 10)
    after = simulator.stats()
    error = results[refused]
    assert isinstance(error, UnknownSymbolError) and not error.retryable
    assert error.symbol == refused and refused in str(error) and "-1121" in str(error)
    # Not retried: exactly one request for it.
    assert depth_requests(after, refused) - depth_requests(before, refused) == 1
    for symbol in symbols:
        if symbol != refused:
            assert isinstance(results[symbol], TimedBook), (symbol, results[symbol])


def test_a_symbol_that_does_not_trade_is_unknown(client, simulator):
    info = client.exchange_info()
    assert info["BCCBTC"].status == "BREAK"
    results = client.order_books(["BCCBTC", "ETHBTC"], deadline=time.time() + 5)
    assert isinstance(results["BCCBTC"], UnknownSymbolError)
    assert isinstance(results["ETHBTC"], TimedBook)


# ---- recoverable faults ----------------------------------------------------------------------


class DepthRequestRecorder:
    """Samples the simulator's count of depth requests every 20 ms from a thread, as
    (sent, received, count): the count is what had arrived by some moment in [sent, received]."""

    def __init__(self, simulator):
        self.simulator = simulator
        self.samples: list[tuple[float, float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            sent = time.time()
            count = self.simulator.stats()["requests"].get("depth", 0)
            self.samples.append((sent, time.time(), count))
            self._stop.wait(0.02)

    def counts_within(self, start: float, end: float) -> list[int]:
        return [count for sent, received, count in self.samples if sent >= start and received <= end]

    def __enter__(self) -> DepthRequestRecorder:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(5)


@contextmanager
def recording_blocks(client: ExchangeClient) -> Iterator[list[tuple[float, float, bool]]]:
    """Every `gate.block` call as (time.time() when the client took the 429/418, seconds, banned)."""
    blocks: list[tuple[float, float, bool]] = []
    real_block = client.gate.block

    def block(seconds: float, *, banned: bool) -> None:
        blocks.append((time.time(), seconds, banned))
        real_block(seconds, banned=banned)

    client.gate.block = block
    try:
        yield blocks
    finally:
        del client.gate.block


def test_recoverable_faults_all_end_with_a_book_within_the_deadline(client, simulator):
    A, B, C, D, E, F = "ETHBTC", "LTCBTC", "BNBBTC", "NEOBTC", "BTCUSDT", "ETHUSDT"
    simulator.set_faults([
        {"endpoint": "depth", "symbol": A, "kind": "http_500", "times": 2},
        {"endpoint": "depth", "symbol": B, "kind": "malformed_json", "times": 1},
        {"endpoint": "depth", "symbol": C, "kind": "rate_limit_429", "retry_after": 2, "times": 1},
        {"endpoint": "depth", "symbol": D, "kind": "missing_bids", "times": 1},
        {"endpoint": "depth", "symbol": E, "kind": "close_connection", "times": 1},
        {"endpoint": "depth", "symbol": F, "kind": "latency", "delay": 0.3, "times": 1},
    ])
    symbols = [A, B, C, D, E, F]
    before = simulator.stats()
    deadline = time.time() + 10
    with DepthRequestRecorder(simulator) as recorder, recording_blocks(client) as blocks:
        results = client.order_books(symbols, deadline=deadline)
        finished = time.time()
    after = simulator.stats()

    for symbol in symbols:
        assert isinstance(results[symbol], TimedBook), (symbol, results[symbol])
        assert results[symbol].captured_at.timestamp() <= deadline
        assert_sane_book(results[symbol], symbol, 100)
    assert finished < deadline

    # Each symbol took exactly the attempts its faults call for, and so many requests.
    expected_attempts = {A: 3, B: 2, C: 2, D: 2, E: 2, F: 1}
    assert {s: results[s].attempts for s in symbols} == expected_attempts
    assert {s: depth_requests(after, s) - depth_requests(before, s) for s in symbols} == expected_attempts
    for kind, times in [("http_500", 2), ("malformed_json", 1), ("rate_limit_429", 1),
                        ("missing_bids", 1), ("close_connection", 1), ("latency", 1)]:
        assert fired(after, kind) - fired(before, kind) == times, kind

    # The one 429 blocked the gate for its Retry-After.
    assert [(seconds, banned) for _, seconds, banned in blocks] == [(2.0, False)]
    took_429_at = blocks[0][0]
    retry_at = took_429_at + 2.0

    # C was not asked again before its Retry-After had passed...
    assert results[C].requested_at.timestamp() >= retry_at
    # ...and neither was any other symbol: Binance counts weight per IP, not per symbol, and a
    # request sent during a Retry-After earns a 418 ban for the whole IP. So the gate is shared
    # by every thread of the client, and the retries of A, B, D and E (whose first attempts
    # failed around the same moment as C's) waited for it too.
    for symbol in (A, B, D, E):
        assert results[symbol].requested_at.timestamp() >= retry_at, symbol
    # Seen from the simulator: no depth request at all arrived while the Retry-After ran.
    quiet = recorder.counts_within(took_429_at + 0.1, retry_at - 0.05)
    assert len(quiet) >= 10
    assert len(set(quiet)) == 1, quiet
    assert after["requests"]["depth"] > quiet[-1]  # and then they resumed


@pytest.mark.parametrize(("kind", "side"), [("empty_bids", "bids"), ("empty_asks", "asks")])
def test_an_empty_side_is_a_book_not_an_error(client, simulator, fetch, kind, side):
    simulator.set_faults([{"endpoint": "depth", "symbol": "LRCBTC", "kind": kind, "times": 1}])
    timed = fetch(client, "LRCBTC", deadline=time.time() + 5)
    assert timed.attempts == 1
    assert getattr(timed.book, side).shape == (0, 2)
    other = "asks" if side == "bids" else "bids"
    assert getattr(timed.book, other).shape == (100, 2)


def test_a_crossed_book_is_malformed_and_retried_until_the_deadline(client, simulator, fetch):
    simulator.set_faults([{"endpoint": "depth", "symbol": "NKNUSDT", "kind": "crossed"}])
    before = simulator.stats()
    started = time.time()
    deadline = started + 1.5
    with pytest.raises(MalformedResponseError) as raised:
        fetch(client, "NKNUSDT", deadline=deadline)
    ended = time.time()
    after = simulator.stats()
    assert "NKNUSDT" in str(raised.value) and "crossed" in str(raised.value)
    requests_made = depth_requests(after, "NKNUSDT") - depth_requests(before, "NKNUSDT")
    assert requests_made >= 3  # retried: 0.2 s backoff, doubling, within 1.5 s
    assert ended <= deadline + 0.5  # and not past the deadline (a margin for a loaded machine)


def test_a_crossed_book_once_is_followed_by_a_good_one(client, simulator, fetch):
    simulator.set_faults([{"endpoint": "depth", "symbol": "NKNUSDT", "kind": "crossed", "times": 1}])
    timed = fetch(client, "NKNUSDT", deadline=time.time() + 5)
    assert timed.attempts == 2 and not timed.book.crossed


# ---- non-recoverable faults ------------------------------------------------------------------


def test_invalid_symbol_is_not_retried(client, simulator, fetch):
    simulator.set_faults([{"endpoint": "depth", "symbol": "ETHUSDT", "kind": "invalid_symbol"}])
    before = simulator.stats()
    with pytest.raises(UnknownSymbolError) as raised:
        fetch(client, "ETHUSDT", deadline=time.time() + 5)
    after = simulator.stats()
    assert raised.value.symbol == "ETHUSDT" and "'ETHUSDT'" in str(raised.value)
    assert depth_requests(after, "ETHUSDT") - depth_requests(before, "ETHUSDT") == 1


def test_a_ban_fails_fast_and_nothing_is_sent_until_it_lifts(client, simulator, fetch):
    simulator.set_faults([{"endpoint": "depth", "symbol": "BTCUSDT", "kind": "ban_418",
                           "retry_after": 30, "times": 1}])
    before = simulator.stats()
    started = time.time()
    with pytest.raises(BannedError) as raised:
        fetch(client, "BTCUSDT", deadline=started + 5)
    elapsed = time.time() - started
    banned = simulator.stats()

    error = raised.value
    assert elapsed < 3.0  # not 30 s of sleeping, not even the 5 s to the deadline
    assert "until" in str(error) and "418" in str(error)
    assert error.retry_after == 30
    assert abs(error.until.timestamp() - (started + 30)) < 2
    assert depth_requests(banned, "BTCUSDT") - depth_requests(before, "BTCUSDT") == 1
    assert banned["banned_for"] > 25  # the simulator really banned this IP

    # While the ban runs, no request at all leaves the client, for any symbol.
    for symbol in ["BTCUSDT", "ETHUSDT"]:
        started = time.time()
        with pytest.raises(BannedError) as raised:
            fetch_alone(client, symbol, deadline=started + 2)
        assert time.time() - started < 1.5  # refused, not waited out to the deadline
        assert abs(raised.value.until - error.until) < timedelta(milliseconds=50)
    results = client.order_books(["ETHBTC", "LTCBTC", "NKNUSDT"], deadline=time.time() + 1)
    assert all(isinstance(r, BannedError) for r in results.values())
    still = simulator.stats()
    assert still["requests"] == banned["requests"]
    assert still["responses"] == banned["responses"]


def test_a_timeout_is_a_server_error(simulator, fetch):
    client = ExchangeClient(simulator.api_url, timeout_seconds=1)
    simulator.set_faults([{"endpoint": "depth", "symbol": "ETHBTC", "kind": "timeout"}])
    before = simulator.stats()
    started = time.time()
    deadline = started + 2.5
    try:
        with pytest.raises(ExchangeServerError) as raised:
            fetch(client, "ETHBTC", deadline=deadline)
        ended = time.time()
    finally:
        client.close()
    assert "no response within" in str(raised.value) and "ETHBTC" in str(raised.value)
    assert ended - started >= 2.0  # two 1 s timeouts at least
    assert ended <= deadline + 0.5  # an attempt past the deadline would wait its whole 1 s
    tries = fired(simulator.stats(), "timeout") - fired(before, "timeout")
    assert tries >= 2


def test_a_request_never_outlives_the_deadline(simulator, fetch):
    """With 1.5 s to go and 1 s timeouts, the second attempt starts near 1.2 s: it may only
    wait for what is left, since a book that arrives after the deadline is of no use."""
    client = ExchangeClient(simulator.api_url, timeout_seconds=1)
    simulator.set_faults([{"endpoint": "depth", "symbol": "LTCBTC", "kind": "timeout"}])
    started = time.time()
    deadline = started + 1.5
    try:
        with pytest.raises(ExchangeServerError, match="no response within"):
            fetch(client, "LTCBTC", deadline=deadline)
        ended = time.time()
    finally:
        client.close()
    # A second attempt given its whole 1 s would end near deadline + 0.7.
    assert ended <= deadline + 0.4


def test_connection_refused_is_a_server_error_naming_the_url_without_credentials(fetch):
    with refusing_port() as port:
        client = ExchangeClient(f"http://acts:hunter2xyz@127.0.0.1:{port}/api")
        started = time.time()
        try:
            with pytest.raises(ExchangeServerError) as raised:
                fetch(client, "BTCUSDT", deadline=started + 1)
            ended = time.time()
        finally:
            client.close()
    message = str(raised.value)
    assert f"127.0.0.1:{port}/api" in message
    assert "hunter2xyz" not in message and "acts:" not in message
    assert "BTCUSDT" in message
    assert ended - started < 2.5  # retried until the 1 s deadline at most, not the 5 s timeout


# ---- klines and exchangeInfo -----------------------------------------------------------------


def test_klines_of_18_hours_take_two_requests_per_symbol(client, simulator):
    end = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=2)
    start = end - timedelta(hours=18)
    symbols = ["BTCUSDT", "NKNUSDT"]
    before = simulator.stats()
    klines = {symbol: client.klines(symbol, start, end) for symbol in symbols}
    after = simulator.stats()
    minutes = [start + timedelta(minutes=i) for i in range(18 * 60)]
    for symbol in symbols:
        assert len(klines[symbol]) == 1080
        assert [k.minute for k in klines[symbol]] == minutes  # contiguous, in order, no repeats
        assert all(k.symbol == symbol for k in klines[symbol])
        assert all(k.low <= min(k.open, k.close) and k.high >= max(k.open, k.close) for k in klines[symbol])
        # 1000 + 80, not 1080 requests.
        assert klines_requests(after, symbol) - klines_requests(before, symbol) == 2
    # Candles open at the previous close.
    nkn = klines["NKNUSDT"]
    assert all(a.close == b.open for a, b in zip(nkn, nkn[1:], strict=False))


def test_klines_of_an_empty_range_need_no_request(client, simulator):
    moment = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=1)
    before = simulator.stats()
    assert client.klines("BTCUSDT", moment, moment) == []
    assert klines_requests(simulator.stats(), "BTCUSDT") == klines_requests(before, "BTCUSDT")


def test_exchange_info_lists_every_symbol_with_its_status(client):
    info = client.exchange_info()
    assert len(info) > 1000
    statuses = {symbol.status for symbol in info.values()}
    assert statuses == {"TRADING", "BREAK"}
    assert info["BTCUSDT"].trading and info["BTCUSDT"].base_asset == "BTC"
    assert sum(symbol.trading for symbol in info.values()) == 1262


# ---- the weight budget -----------------------------------------------------------------------


def test_the_client_stops_at_its_weight_budget_before_the_exchange_says_429(fetch):
    with running_simulator("--weight-limit", "60") as simulator:
        client = ExchangeClient(simulator.api_url, weight_limit=60, weight_budget_fraction=0.8)
        try:
            wait_for_minute_headroom(15)  # the budget counts within one wall-clock minute
            books = 0
            with pytest.raises(RateLimitedError) as raised:
                while books < 20:
                    started = time.time()
                    fetch(client, "BTCUSDT", deadline=started + 3)
                    books += 1
            elapsed = time.time() - started  # of the refused fetch alone
        finally:
            client.close()
        stats = simulator.stats()
    error = raised.value
    assert type(error) is RateLimitedError
    assert "weight budget 48/min spent" in str(error)
    assert books == 9  # 9 x 5 = 45 <= 48 = 0.8 x 60; a tenth would make 50
    assert elapsed < 2  # refused at once, not after sleeping to the deadline
    assert error.retry_after > 3
    assert stats["requests"] == {"depth": 9}
    assert stats["used_weight"] == 45 < stats["weight_limit"]
    assert set(stats["responses"]) == {"200"}  # never a 429 (nor a 418)
    assert client.gate.max_used_seen == 45
