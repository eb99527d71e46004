"""Running the simulator: blocking until a signal (`run`), or in a background thread (`start_in_thread`)."""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Callable
from typing import Any

from aiohttp import web

from acts_simulator.app import SIMULATOR, Simulator, create_app

logger = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
# How long shutdown waits for in-flight requests (a `timeout` fault sleeps far longer).
_SHUTDOWN_SECONDS = 1.0


async def serve(
    app: web.Application,
    host: str,
    port: int,
    stop: asyncio.Event,
    on_listening: Callable[[str], None] | None = None,
) -> None:
    """Serve `app` on host:port (0 = any free port) until `stop` is set."""
    # handler_cancellation: a request whose client went away (a `timeout` fault) stops sleeping.
    runner = web.AppRunner(
        app, handle_signals=False, shutdown_timeout=_SHUTDOWN_SECONDS, handler_cancellation=True,
        access_log=None,
        # A combined-stream URL names up to 1024 streams (about 25 kB): above aiohttp's 8 kB default.
        max_line_size=64 * 1024,
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port, shutdown_timeout=_SHUTDOWN_SECONDS)
        await site.start()
        bound_port = runner.addresses[0][1]  # the real port when port == 0
        url = f"http://{host}:{bound_port}"
        logger.info("simulator listening on %s (websocket streams on %s)", url, ws_url_of(url))
        if on_listening is not None:
            on_listening(url)
        await stop.wait()
    finally:
        await runner.cleanup()
        logger.info("simulator stopped")


def ws_url_of(url: str) -> str:
    """The websocket base of a simulator at `url` (`ACTS_BINANCE_WS_URL`): the same port;
    combined streams are at `{base}/stream?streams=...`, raw ones at `{base}/ws/<stream>`."""
    return "ws://" + url.removeprefix("http://")


def run(
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    *,
    on_listening: Callable[[str], None] | None = None,
    **app_options: Any,
) -> None:
    """Serve until SIGTERM or SIGINT, then return. `app_options` go to `create_app`."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await serve(create_app(**app_options), host, port, stop, on_listening)

    asyncio.run(main())


class BackgroundSimulator:
    """The simulator on its own event loop in a daemon thread, for in-process use.

    `with start_in_thread() as sim: Client(...).API_URL = sim.api_url` ; `sim.simulator` gives
    direct access to the market, the fault rules and the stats.
    """

    def __init__(self, host: str = DEFAULT_HOST, port: int = 0, **app_options: Any) -> None:
        self.host, self._port = host, port
        self.app = create_app(**app_options)
        self.url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="binance-simulator", daemon=True)

    @property
    def api_url(self) -> str:
        """What python-binance's `Client.API_URL` must be set to."""
        return f"{self.url}/api"

    @property
    def ws_url(self) -> str:
        """The websocket base (`ACTS_BINANCE_WS_URL`): `{ws_url}/stream?streams=...`."""
        return ws_url_of(self.url)

    @property
    def simulator(self) -> Simulator:
        return self.app[SIMULATOR]

    def set_faults(self, rules: list[dict[str, Any]]) -> None:
        self.simulator.set_faults(rules)

    def clear_faults(self) -> None:
        self.simulator.clear_faults()

    def stats(self) -> dict[str, Any]:
        return self.simulator.stats_snapshot()

    def _run(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            await serve(self.app, self.host, self._port, self._stop, self._listening)

        try:
            asyncio.run(main())
        except BaseException as error:  # reported to the thread that called start()
            self._error = error
            self._ready.set()

    def _listening(self, url: str) -> None:
        self.url = url
        self._ready.set()

    def start(self, timeout: float = 10.0) -> BackgroundSimulator:
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError(f"the simulator did not start within {timeout} s")
        if self._error is not None:
            raise RuntimeError("the simulator failed to start") from self._error
        return self

    def stop(self, timeout: float = 10.0) -> None:
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)

    def __enter__(self) -> BackgroundSimulator:
        return self.start() if not self._thread.is_alive() else self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def start_in_thread(host: str = DEFAULT_HOST, port: int = 0, **app_options: Any) -> BackgroundSimulator:
    """Start a simulator in a background thread and return it once it listens."""
    return BackgroundSimulator(host, port, **app_options).start()
