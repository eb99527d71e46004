"""The exchange transport against a raw local HTTP server: what the library underneath
(aiohttp) would do on its own, and that the transport does not let it.

aiohttp silently sends a GET a second time when its connection drops; the transport turns that
off with a public client middleware (`transport._send_once`) instead of aiohttp's private
`ClientSession._retry_connection`. These tests pin that: if an aiohttp upgrade changes how its
retry meets middlewares, they fail.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from acts_pipeline.core.errors import ExchangeServerError
from acts_pipeline.exchange import ExchangeClient, TimedBook, Transport, WeightGate
from acts_pipeline.exchange.transport import rest_url

pytestmark = pytest.mark.integration

BOOK = json.dumps({"lastUpdateId": 7, "bids": [["1.00", "2.0"]], "asks": [["1.01", "3.0"]]}).encode()


@dataclass
class DroppingServer:
    """HTTP/1.1 on a raw socket: reads each request's head, then closes the connection without
    a byte of answer for the first `drops` requests, and answers the others with a book."""

    drops: int = 0
    url: str = ""
    requests: int = 0
    connections: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                if not head:
                    return
                self.requests += 1
                if self.drops > 0:
                    self.drops -= 1
                    return  # the finally closes the connection: no status line, nothing
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             b"X-MBX-USED-WEIGHT-1M: 5\r\n"
                             b"Content-Length: %d\r\n\r\n%s" % (len(BOOK), BOOK))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            writer.close()


@pytest.fixture
def server() -> Iterator[DroppingServer]:
    state = DroppingServer()
    loop = asyncio.new_event_loop()
    started = threading.Event()
    holder: dict = {}

    def serve() -> None:
        asyncio.set_event_loop(loop)
        srv = loop.run_until_complete(asyncio.start_server(state.handle, "127.0.0.1", 0))
        holder["server"] = srv
        state.url = f"http://127.0.0.1:{srv.sockets[0].getsockname()[1]}/api"
        started.set()
        loop.run_forever()
        srv.close()
        loop.run_until_complete(srv.wait_closed())
        loop.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert started.wait(10)
    yield state
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


def test_a_dropped_connection_is_one_request_never_resent_silently(server):
    server.drops = 1
    client = ExchangeClient(server.url)
    try:
        result = client.order_books(["BTCUSDT"], deadline=time.time() + 5, max_attempts=1)["BTCUSDT"]
    finally:
        client.close()
    assert isinstance(result, ExchangeServerError)
    assert "ServerDisconnectedError" in str(result) and "BTCUSDT" in str(result)
    assert server.requests == 1  # aiohttp alone would have sent it twice


def test_a_dropped_connection_on_a_pooled_one_is_retried_by_the_policy_alone(server):
    """The connection of the first book is kept alive and reused for the second, which it drops:
    the retry (attempt 2) is the transport's, through the gate, and the server sees 3 requests."""
    client = ExchangeClient(server.url)
    try:
        first = client.order_books(["BTCUSDT"], deadline=time.time() + 5)["BTCUSDT"]
        server.drops = 1
        second = client.order_books(["BTCUSDT"], deadline=time.time() + 5)["BTCUSDT"]
    finally:
        client.close()
    assert isinstance(first, TimedBook) and first.attempts == 1
    assert isinstance(second, TimedBook) and second.attempts == 2
    assert server.requests == 3
    assert client.gate.used_weight >= 15  # three requests reserved weight, none bypassed the gate


def test_rest_urls_are_binances_documented_paths_with_sorted_parameters():
    assert str(rest_url("https://api.binance.com/api", "depth", (("symbol", "BTCUSDT"), ("limit", 100)))) == \
        "https://api.binance.com/api/v3/depth?limit=100&symbol=BTCUSDT"
    assert str(rest_url("http://127.0.0.1:1/api", "klines", tuple(dict(
        symbol="ETHBTC", interval="1m", startTime=1, endTime=2, limit=1000).items()))) == \
        "http://127.0.0.1:1/api/v3/klines?endTime=2&interval=1m&limit=1000&startTime=1&symbol=ETHBTC"
    assert str(rest_url("http://127.0.0.1:1/api", "exchangeInfo", ())) == "http://127.0.0.1:1/api/v3/exchangeInfo"


def test_get_runs_only_on_the_transports_loop_and_the_bridge_not_from_it(server):
    transport = Transport(server.url, gate=WeightGate())
    try:
        with pytest.raises(RuntimeError, match="through run"):
            asyncio.run(transport.get("depth", {"symbol": "BTCUSDT", "limit": 5}, weight=5, what="depth"))
        response = transport.run(transport.get("depth", {"symbol": "BTCUSDT", "limit": 5}, weight=5, what="depth"))
        assert response.body["lastUpdateId"] == 7

        async def bridge_from_the_loop():
            return transport.run(asyncio.sleep(0))

        with pytest.raises(RuntimeError, match="own event loop"):
            transport.run(bridge_from_the_loop())
    finally:
        transport.close()
    assert transport.loop is None and transport.session is None
