"""The stream pool's bookkeeping: connection attempts within Binance's window, symbols spread
over connections of bounded size and kept where they are, ws URLs checked."""

import asyncio

import aiohttp
import pytest

from acts_pipeline.core.errors import ConfigurationError
from acts_pipeline.exchange.streams import ConnectionAttempts, StreamPool, check_ws_url, depth_stream


def test_depth_streams_are_binance_stream_names():
    assert depth_stream("BTCUSDT") == "btcusdt@depth@100ms"


@pytest.mark.parametrize("url", ["wss://stream.binance.com:9443", "ws://127.0.0.1:8765/"])
def test_ws_urls_are_accepted_without_their_trailing_slash(url):
    assert check_ws_url(url) == url.rstrip("/")


@pytest.mark.parametrize("url", ["https://stream.binance.com", "stream.binance.com:9443", "ws://host:port"])
def test_other_urls_are_refused_naming_the_variable(url):
    with pytest.raises(ConfigurationError, match="ACTS_BINANCE_WS_URL must be a ws:// or wss:// URL"):
        check_ws_url(url)


def test_connection_attempts_stay_within_the_window():
    now = [0.0]
    attempts = ConnectionAttempts(limit=3, window=300, clock=lambda: now[0])
    for _ in range(3):
        assert attempts.wait_seconds() == 0
        asyncio.run(attempts.take())
        now[0] += 10
    # the fourth must wait until the first attempt (t=0) leaves the window (t=300)
    assert attempts.wait_seconds() == pytest.approx(300 - 30)
    now[0] = 300.5
    assert attempts.wait_seconds() == 0


def test_symbols_are_spread_over_bounded_connections_and_stay_on_theirs():
    async def scenario():
        async with aiohttp.ClientSession() as session:
            pool = StreamPool("ws://127.0.0.1:9", session, lambda *a: None, lambda *a: None, max_streams=3,
                              attempts=ConnectionAttempts(limit=1000))
            try:
                added, removed = pool.set_symbols([f"S{i}USDT" for i in range(7)])
                assert (len(added), removed) == (7, [])
                sizes = sorted(len(c.streams) for c in pool.connections)
                assert sizes == [2, 2, 3] and all(len(pool.symbols_on(c)) <= 3 for c in pool.connections)
                # listed busiest first, the first symbols land on different connections
                assert len({pool.connection_of[f"S{i}USDT"].name for i in range(3)}) == 3
                before = dict(pool.connection_of)
                # one removed, two added: nobody moves, the new ones fill the free room first
                added, removed = pool.set_symbols([*(f"S{i}USDT" for i in range(1, 7)), "NEW1USDT", "NEW2USDT"])
                assert (added, removed) == (["NEW1USDT", "NEW2USDT"], ["S0USDT"])
                assert all(pool.connection_of[s] is before[s] for s in before if s != "S0USDT")
                assert len(pool.connections) == 3 and max(len(c.streams) for c in pool.connections) == 3
                assert "s0usdt@depth@100ms" not in set().union(*(c.streams for c in pool.connections))
            finally:
                await pool.close()

    asyncio.run(scenario())
