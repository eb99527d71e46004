"""The asyncio path of `ExchangeClient.order_books` against a small local aiohttp server that
sees what the simulator cannot show: how many requests are in flight at once, over which
connections, and which weight header each response carried.

Also the life of the client's event loop: started on first use, kept (with its connections)
from one fetch to the next, stopped by `close()` (or when the client is dropped) without
"Unclosed client session" warnings.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import random
import threading
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web

from acts_pipeline.core.errors import ExchangeServerError, MalformedResponseError
from acts_pipeline.exchange import ExchangeClient, TimedBook

pytestmark = pytest.mark.integration

LOOP_THREAD = "acts-exchange-loop"
BOOK = {"lastUpdateId": 7, "bids": [["1.00", "2.0"], ["0.99", "1.0"]], "asks": [["1.01", "3.0"]]}


@dataclass
class LocalExchange:
    """`GET /api/v3/depth` answering a fixed book after `delay(symbol)` seconds, each response with
    its own `X-MBX-USED-WEIGHT-1M` (1000, 1001, ...) and `X-Echo-Symbol`; `malformed` symbols get
    a truncated body the first time. With `body_pause(symbol)`, the headers and the start of the
    body go out first and the rest that many seconds later, as a large book over a real network
    arrives: the client reads the headers of one response while others' bodies still come in."""

    url: str = ""
    delay: Callable[[str], float] = lambda symbol: 0.0
    #: With it, each request is held (up to 10 s) until `hold_until(self)` is true, then delayed.
    hold_until: Callable[[LocalExchange], bool] | None = None
    body_pause: Callable[[str], float] | None = None
    malformed: set[str] = field(default_factory=set)
    in_flight: int = 0
    max_in_flight: int = 0
    requests: Counter = field(default_factory=Counter)
    connections: set = field(default_factory=set)
    weights_sent: list[tuple[str, int]] = field(default_factory=list)
    _next_weight: int = 1000

    @property
    def api_url(self) -> str:
        return f"{self.url}/api"

    async def depth(self, request: web.Request) -> web.Response:
        symbol = request.query["symbol"]
        self.requests[symbol] += 1
        self.connections.add(request.transport.get_extra_info("peername"))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            held_until = time.monotonic() + 10
            while self.hold_until is not None and not self.hold_until(self) and time.monotonic() < held_until:
                await asyncio.sleep(0.002)
            await asyncio.sleep(self.delay(symbol))
        finally:
            self.in_flight -= 1
        weight, self._next_weight = self._next_weight, self._next_weight + 1
        self.weights_sent.append((symbol, weight))
        headers = {"X-MBX-USED-WEIGHT-1M": str(weight), "X-Echo-Symbol": symbol}
        body = json.dumps(BOOK)
        if symbol in self.malformed:
            self.malformed.discard(symbol)
            body = '{"lastUpdateId": 7, "bids": ['
        if self.body_pause is None:
            return web.Response(text=body, content_type="application/json", headers=headers)
        response = web.StreamResponse(headers=headers)
        response.content_type = "application/json"
        response.content_length = len(body)
        await response.prepare(request)
        await response.write(body[:10].encode())
        await asyncio.sleep(self.body_pause(symbol))
        await response.write(body[10:].encode())
        await response.write_eof()
        return response


@pytest.fixture
def local_exchange() -> Iterator[LocalExchange]:
    exchange = LocalExchange()
    loop = asyncio.new_event_loop()
    started = threading.Event()

    async def start() -> web.AppRunner:
        app = web.Application()
        app.router.add_get("/api/v3/depth", exchange.depth)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        exchange.url = f"http://127.0.0.1:{port}"
        return runner

    def serve() -> None:
        asyncio.set_event_loop(loop)
        runner = loop.run_until_complete(start())
        started.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())
        loop.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert started.wait(10)
    yield exchange
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


def assert_served_book(result, symbol: str) -> None:
    """`result` is the book LocalExchange served, parsed: BOOK's numbers, under `symbol`."""
    assert isinstance(result, TimedBook), result
    book = result.book
    assert (book.symbol, book.last_update_id) == (symbol, 7)
    assert book.bids.tolist() == [[1.0, 2.0], [0.99, 1.0]]
    assert book.asks.tolist() == [[1.01, 3.0]]
    assert result.requested_at <= result.captured_at


def loop_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == LOOP_THREAD]


def symbols(n: int) -> list[str]:
    return [f"S{i:03d}USDT" for i in range(n)]


@pytest.fixture
def no_leaks(caplog) -> Iterator[list[warnings.WarningMessage]]:
    """Records every warning (any thread) and asyncio's error log during the test, then collects
    garbage and asserts that neither a session, a connector nor a transport was left open."""
    gc.collect()  # earlier tests' garbage (a MongoClient, say) is theirs to answer for
    caplog.set_level(logging.WARNING, logger="asyncio")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield caught
        gc.collect()
    ours = ("client session", "connector", "transport", "socket", "event loop", "coroutine", "task")
    leaks = [str(w.message) for w in caught
             if any(word in str(w.message).lower() for word in ours)
             and (issubclass(w.category, ResourceWarning) or "unclosed" in str(w.message).lower())]
    assert leaks == []
    assert [r.getMessage() for r in caplog.records if r.name == "asyncio"] == []


# ---- the bound on requests in flight ---------------------------------------------------------


@pytest.mark.parametrize(("max_workers", "books"), [(1, 6), (4, 40), (32, 100)])
def test_in_flight_requests_never_exceed_max_workers(local_exchange, max_workers, books):
    # Each request is held until max_workers are in flight (or all the rest are), however slowly
    # a loaded machine opens the connections, then answered 50 ms later: time for a request
    # beyond the bound to arrive too.
    local_exchange.hold_until = lambda exchange: exchange.in_flight >= min(max_workers, books - len(exchange.weights_sent))
    local_exchange.delay = lambda symbol: 0.05
    client = ExchangeClient(local_exchange.api_url, max_workers=max_workers)
    try:
        results = client.order_books(symbols(books), deadline=time.time() + 20)
    finally:
        client.close()
    assert sorted(results) == symbols(books)
    for symbol, result in results.items():
        assert_served_book(result, symbol)
        assert result.attempts == 1
    assert local_exchange.max_in_flight == max_workers  # reached, never passed
    assert len(local_exchange.connections) <= max_workers  # one pool, no more connections than that


def test_connections_are_reused_from_one_fetch_to_the_next(local_exchange):
    local_exchange.delay = lambda symbol: 0.02
    client = ExchangeClient(local_exchange.api_url, max_workers=4)
    try:
        client.order_books(symbols(16), deadline=time.time() + 10)
        first = set(local_exchange.connections)
        thread = loop_threads()
        client.order_books(symbols(16), deadline=time.time() + 10)
        assert loop_threads() == thread  # the same loop, on the same thread
    finally:
        client.close()
    assert len(first) <= 4
    assert local_exchange.connections == first  # no new connection for the second fetch


# ---- headers: each response's own ------------------------------------------------------------


def test_weight_headers_are_taken_from_each_requests_own_response(local_exchange):
    """Responses finish in random order while others are still being read. python-binance's
    `AsyncClient.response` holds whichever came last; the gate must see each response's own
    header exactly once, also that of a malformed body (which is retried)."""
    rng = random.Random(5)
    delays = {symbol: rng.uniform(0, 0.03) for symbol in symbols(60)}
    pauses = {symbol: rng.uniform(0, 0.03) for symbol in symbols(60)}
    local_exchange.delay = delays.__getitem__
    local_exchange.body_pause = pauses.__getitem__
    local_exchange.malformed = {"S007USDT", "S031USDT"}
    client = ExchangeClient(local_exchange.api_url, max_workers=16)
    observed: list[tuple[str, str, int]] = []
    real_observe = client.gate.observe

    def observe(headers) -> None:
        task = asyncio.current_task()
        observed.append((task.get_name() if task else "", headers.get("X-Echo-Symbol"),
                         int(headers.get("X-MBX-USED-WEIGHT-1M"))))
        real_observe(headers)

    client.gate.observe = observe
    try:
        results = client.order_books(list(delays), deadline=time.time() + 10)
    finally:
        client.close()
    for symbol, result in results.items():
        assert_served_book(result, symbol)
    assert results["S007USDT"].attempts == results["S031USDT"].attempts == 2
    assert len(local_exchange.weights_sent) == 62
    # Every response's header observed once, none twice, none missed...
    assert sorted((symbol, weight) for _, symbol, weight in observed) == sorted(local_exchange.weights_sent)
    # ...and each by the fetch of the symbol it answered.
    assert all(task == f"order book {symbol}" for task, symbol, _ in observed), observed
    assert client.gate.max_used_seen == max(w for _, w in local_exchange.weights_sent)


# ---- the deadline ----------------------------------------------------------------------------


def test_a_request_waiting_for_a_slot_past_the_deadline_is_never_sent(local_exchange):
    """One slot: A holds it until its timeout at the deadline; B would only get it then. B is
    not sent at all (its book could only arrive after the deadline)."""
    local_exchange.delay = lambda symbol: 2.0 if symbol == "AAAUSDT" else 0.0
    client = ExchangeClient(local_exchange.api_url, max_workers=1)
    try:
        client.order_books(["S000USDT"], deadline=time.time() + 5)  # the loop up, so A is sent at once
        deadline = time.time() + 0.5
        results = client.order_books(["AAAUSDT", "BBBUSDT"], deadline=deadline)
        returned = time.time()
    finally:
        client.close()
    # Back at the deadline, not when A's book would have come (1.5 s after it): a wide margin
    # for a loaded machine, and still far from waiting for A.
    assert returned < deadline + 1.0
    assert isinstance(results["AAAUSDT"], ExchangeServerError)
    assert "no response within" in str(results["AAAUSDT"])
    assert isinstance(results["BBBUSDT"], ExchangeServerError)
    assert "deadline passed before the request could be sent" in str(results["BBBUSDT"])
    assert local_exchange.requests == {"S000USDT": 1, "AAAUSDT": 1}


def test_a_malformed_body_is_retried_and_the_book_is_honestly_timed(local_exchange):
    local_exchange.malformed = {"S000USDT"}
    client = ExchangeClient(local_exchange.api_url)
    try:
        started = time.time()
        results = client.order_books(["S000USDT"], deadline=started + 5, max_attempts=1)
        assert isinstance(results["S000USDT"], MalformedResponseError)
        assert "not valid JSON" in str(results["S000USDT"])
        local_exchange.malformed = {"S000USDT"}
        timed = client.order_books(["S000USDT"], deadline=time.time() + 5)["S000USDT"]
        ended = time.time()
    finally:
        client.close()
    assert_served_book(timed, "S000USDT")
    assert timed.attempts == 2
    assert started <= timed.requested_at.timestamp() <= timed.captured_at.timestamp() <= ended


# ---- the event loop's life -------------------------------------------------------------------


def test_the_loop_starts_on_first_use_lives_until_close_and_leaks_nothing(local_exchange, no_leaks):
    client = ExchangeClient(local_exchange.api_url)
    assert loop_threads() == []  # nothing started by the constructor...
    client.close()  # ...so closing is a no-op
    assert loop_threads() == []

    assert_served_book(client.order_books(["S000USDT"], deadline=time.time() + 5)["S000USDT"], "S000USDT")
    [thread] = loop_threads()
    assert thread.daemon
    session = client.transport.session
    client.order_books(symbols(5), deadline=time.time() + 5)
    assert loop_threads() == [thread]

    client.close()
    assert not thread.is_alive() and loop_threads() == []
    assert session.closed
    client.close()  # twice is fine

    # Usable again: a new loop and session.
    assert_served_book(client.order_books(["S001USDT"], deadline=time.time() + 5)["S001USDT"], "S001USDT")
    assert len(loop_threads()) == 1
    client.close()
    assert loop_threads() == []


def test_a_client_dropped_without_close_still_stops_its_loop(local_exchange, no_leaks):
    client = ExchangeClient(local_exchange.api_url)
    client.order_books(symbols(3), deadline=time.time() + 5)
    [thread] = loop_threads()
    del client
    gc.collect()
    thread.join(5)
    assert not thread.is_alive()


def test_order_books_may_be_called_from_a_thread_running_its_own_loop(local_exchange):
    client = ExchangeClient(local_exchange.api_url)

    async def inside_a_coroutine() -> dict:
        return client.order_books(symbols(3), deadline=time.time() + 5)

    try:
        results = asyncio.run(inside_a_coroutine())
    finally:
        client.close()
    assert sorted(results) == symbols(3)
    for symbol, result in results.items():
        assert_served_book(result, symbol)


def test_a_retry_after_holds_requests_back_without_blocking_the_loop(local_exchange):
    """While the gate waits out a Retry-After, the loop keeps answering: the wait is an
    `asyncio.sleep`, not a `time.sleep` on the loop's thread. Checked by order, not by speed: with
    the fetch's five tasks on the loop, waiting, a coroutine sent to the loop comes back before
    the block ends and before the exchange has seen any of their requests."""
    client = ExchangeClient(local_exchange.api_url)
    try:
        client.order_books(["S000USDT"], deadline=time.time() + 5)  # loop up
        loop = client.transport.loop
        lifted = time.time() + 1.5
        client.gate.block_until(lifted, banned=False)
        outcome: dict = {}
        fetcher = threading.Thread(
            target=lambda: outcome.update(client.order_books(symbols(5), deadline=lifted + 5)))
        fetcher.start()

        async def fetch_tasks() -> list[str]:
            return sorted(t.get_name() for t in asyncio.all_tasks() if t.get_name().startswith("order book "))

        waiting: list[str] = []
        while not waiting and fetcher.is_alive():
            waiting = asyncio.run_coroutine_threadsafe(fetch_tasks(), loop).result(10)
            answered_at, seen = time.time(), dict(local_exchange.requests)
        fetcher.join(10)
    finally:
        client.close()
    assert waiting == [f"order book {symbol}" for symbol in symbols(5)]
    assert answered_at < lifted and seen == {"S000USDT": 1}, (answered_at - lifted, seen)
    assert sorted(outcome) == symbols(5)
    for symbol, result in outcome.items():
        assert_served_book(result, symbol)
        assert result.requested_at.timestamp() >= lifted - 0.001  # not one sent before the block ended
