"""The stream pool's bookkeeping: connection attempts within Binance's window, symbols spread
over connections of bounded size and kept where they are, ws URLs checked."""

import asyncio
import dataclasses

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


async def _serve_ticks(close_after: float | None = None):
    """A real websocket server on a free port that sends a text message every 10 ms to each
    client (closing it itself after `close_after` seconds, if given); returns (runner, url, opened)."""
    from aiohttp import web

    opened: list[float] = []

    async def handler(request):
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        loop = asyncio.get_running_loop()
        opened.append(loop.time())

        async def ticks():
            started, n = loop.time(), 0
            while not ws.closed:
                if close_after is not None and loop.time() - started > close_after:
                    await ws.close()
                    return
                await ws.send_str(f'{{"n": {n}}}')
                n += 1
                await asyncio.sleep(0.01)

        sender = asyncio.create_task(ticks())
        async for _ in ws:  # answers the client's close, as Binance does
            pass
        sender.cancel()
        await asyncio.gather(sender, return_exceptions=True)
        return ws

    app = web.Application()
    app.router.add_get("/stream", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # noqa: SLF001 - the port the OS chose
    return runner, f"ws://127.0.0.1:{port}", opened


def _run_pool(url_and_server, max_lifetime: float, seconds: float):
    """Run one connection of a pool for `seconds`; what it said (on_state) and received."""
    states: list[tuple[bool, str]] = []
    texts: list[float] = []

    async def scenario():
        runner, url, opened = await url_and_server()
        try:
            async with aiohttp.ClientSession() as session:
                pool = StreamPool(url, session, lambda c, text, at: texts.append(at),
                                  lambda c, ok, reason: states.append((ok, reason)),
                                  attempts=ConnectionAttempts(limit=1000), max_lifetime=max_lifetime)
                pool.set_symbols(["BTCUSDT"])
                await asyncio.sleep(seconds)
                health = dataclasses.replace(pool.connections[0].health)  # as it was, before the close
                said = list(states)  # before the pool's own close
                await pool.close()
                return opened, health, said
        finally:
            await runner.cleanup()

    opened, health, said = asyncio.run(scenario())
    return said, texts, opened, health


def test_a_connection_is_rotated_after_its_lifetime_and_reconnects_at_once():
    # a lifetime of 0.4 s (staggered down to 0.38) over 1.5 s: three rotations, each a
    # reconnect without backoff, and messages keep coming on every new connection
    states, texts, opened, health = _run_pool(_serve_ticks, max_lifetime=0.4, seconds=1.5)
    assert len(opened) >= 3
    losses = [reason for ok, reason in states if not ok]
    assert losses and set(losses) == {"lifetime"}
    gaps = [b - a for a, b in zip(opened, opened[1:], strict=False)]
    assert max(gaps) < 0.6  # no backoff (at least 0.5 s) between rotations
    assert texts and max(b - a for a, b in zip(texts, texts[1:], strict=False)) < 0.3
    assert health.last_error == "lifetime" and health.reconnects == len(losses)


def test_a_close_by_the_server_is_not_taken_for_a_rotation():
    states, _, opened, health = _run_pool(lambda: _serve_ticks(close_after=0.2), max_lifetime=3600, seconds=0.6)
    losses = [reason for ok, reason in states if not ok]
    assert losses and all(reason.startswith("closed by the server (code") for reason in losses)
    assert health.last_error.startswith("closed by the server")
