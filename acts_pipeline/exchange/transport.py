"""The one transport to Binance: an aiohttp session on an event loop of its own thread.

Every request of an `ExchangeClient` (books, klines, exchangeInfo) is one `Transport.get`
coroutine, and every retry goes through `Transport.retrying`, so each rule is written once:

- **The weight gate.** A request reserves its weight (`WeightGate.acquire_async`) right before it
  is sent, inside the bound on requests in flight, and the gate reads `X-MBX-USED-WEIGHT-1M` from
  this request's own response (a 2xx, an error or a malformed body alike).
- **The deadline.** A request that could only be sent after its deadline is not sent; its timeout
  is cut to the time left; a response that still arrives after the deadline is an error.
- **Typed errors.** Statuses, Binance error codes, bodies that are not JSON, timeouts and dropped
  connections become the `acts_pipeline.core.errors` classes, which say whether a retry can help; a
  429 or 418 blocks the gate for its `Retry-After`.
- **Retries.** Jittered exponential backoff (0.2 s, 0.4 s, ...), at least a `Retry-After`, never
  past the deadline, only for errors a retry can cure.

Synchronous callers (a Dagster asset, the CLI) run coroutines through `Transport.run`, the bridge:
the loop lives on a daemon thread of its own from first use until `close()`, so the pool's
keep-alive connections serve one minute's fetch after the other, whether or not the caller's
thread runs a loop of its own. The websocket streams belong on the same loop and session.

Why not python-binance's `AsyncClient` request methods: each keeps its response in
`AsyncClient.response`, one attribute that every concurrent coroutine overwrites while the others
still await their bodies, so the weight header read from it would credit one request with
another's count. The URLs are built here from Binance's documented REST paths
(`{api_url}/v3/depth?limit=...&symbol=...`, parameters in python-binance's order), with its
public version constant, rather than through its private URL helpers.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import random
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import quote

import aiohttp
import yarl
from binance.base_client import BaseClient

from acts_pipeline import settings
from acts_pipeline.core.errors import (
    BannedError,
    ExchangeError,
    ExchangeRequestError,
    ExchangeServerError,
    MalformedResponseError,
    RateLimitedError,
    UnknownSymbolError,
)
from acts_pipeline.exchange.rate_limits import WeightGate

log = logging.getLogger(__name__)

#: Requests in flight at once (`max_workers`).
DEFAULT_MAX_IN_FLIGHT = settings.DEFAULT_MAX_IN_FLIGHT
#: How long an idle pooled connection is kept: longer than a minute, so that the connections of
#: one minute's fetch are still open at the next close (aiohttp's default is 15 s).
KEEPALIVE_SECONDS = 75.0
INVALID_SYMBOL_CODE = -1121
#: The name of the loop's thread.
LOOP_THREAD_NAME = "acts-exchange-loop"

T = TypeVar("T")


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Response:
    """A 2xx response's JSON body, with when its request left and when it arrived."""

    body: Any
    requested_at: datetime
    captured_at: datetime


@functools.lru_cache(maxsize=4096)
def rest_url(api_url: str, path: str, params: tuple[tuple[str, Any], ...]) -> yarl.URL:
    """`{api_url}/v3/{path}?{query}`: Binance's public REST path, the parameters sorted by name
    (as python-binance orders them) and quoted. Remembered: the same few hundred depth URLs are
    asked for every minute."""
    uri = f"{api_url}/{BaseClient.PUBLIC_API_VERSION}/{path}"
    query = "&".join(f"{name}={quote(str(value), safe='')}" for name, value in sorted(params))
    return yarl.URL(f"{uri}?{query}" if query else uri, encoded=True)


class ConnectionDropped(aiohttp.ClientConnectionError):
    """The connection of a request dropped before its response came (closed by the server, reset)."""


async def _send_once(request: aiohttp.ClientRequest, handler) -> aiohttp.ClientResponse:
    """aiohttp client middleware: a request whose connection drops is not sent a second time.

    aiohttp (3.x) silently sends an idempotent request (a GET) again when its connection drops
    (`ServerDisconnectedError` or `ClientOSError` from the send), and the only switch for that is
    the private `ClientSession._retry_connection`. The second request would bypass the weight
    gate (and so a Retry-After) and the attempt count: every request is ours to send. Middlewares
    are public (aiohttp 3.12) and run for every send, the silent one too; raising the drop as an
    error that aiohttp's loop does not catch ends the request instead, and `Transport.retrying`
    decides. Pinned by `test_transport.py`: a server that drops the connection once receives one
    request."""
    try:
        return await handler(request)
    except aiohttp.ClientConnectorError:  # could not connect: aiohttp never resends these
        raise
    except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
        raise ConnectionDropped(str(exc)) from exc


class _LoopThread:
    """An asyncio event loop running on a daemon thread, and what lives on it: one aiohttp
    session (one connection pool) and the semaphore bounding the requests in flight."""

    def __init__(self, max_in_flight: int):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, name=LOOP_THREAD_NAME, daemon=True)
        self._closed = False
        self.thread.start()
        try:
            self.session, self.in_flight = self.run(self._open(max_in_flight))
        except BaseException:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            raise

    @staticmethod
    async def _open(max_in_flight: int) -> tuple[aiohttp.ClientSession, asyncio.Semaphore]:
        # Made in a coroutine: the session and its connector belong to the loop they are made on.
        # The connector never holds more connections than requests may be in flight, and keeps
        # idle ones past the next minute's close.
        connector = aiohttp.TCPConnector(limit=max_in_flight, keepalive_timeout=KEEPALIVE_SECONDS)
        session = aiohttp.ClientSession(connector=connector, headers={"Accept": "application/json"},
                                        middlewares=(_send_once,))
        return session, asyncio.Semaphore(max_in_flight)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        finally:
            try:
                pending = asyncio.all_tasks(self.loop)
                for task in pending:
                    task.cancel()
                if pending:
                    self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
                self.loop.run_until_complete(self.loop.shutdown_asyncgens())
                self.loop.run_until_complete(self.loop.shutdown_default_executor())
            finally:
                asyncio.set_event_loop(None)
                self.loop.close()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run `coroutine` on the loop; block the calling thread (never the loop's) until done."""
        if threading.current_thread() is self.thread:
            coroutine.close()
            raise RuntimeError("ExchangeClient's blocking methods cannot be called from its own event loop")
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()  # the caller gave up (e.g. KeyboardInterrupt): so does the request
            raise

    def close(self, timeout: float = 10.0) -> None:
        """Close the session (and so every pooled connection), then stop the loop and its thread."""
        if self._closed:
            return
        self._closed = True
        if not self.thread.is_alive():
            return
        if threading.current_thread() is self.thread:  # the garbage collector ran the finalizer here
            self.loop.create_task(self._aclose(stop=True))
            return
        try:
            asyncio.run_coroutine_threadsafe(self._aclose(stop=False), self.loop).result(timeout)
        except Exception as exc:  # noqa: BLE001 - closing must not raise over the caller's own error
            log.warning("could not close the exchange client's HTTP session cleanly: %r", exc)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout)

    async def _aclose(self, *, stop: bool) -> None:
        try:
            await self.session.close()
            # One more turn of the loop: the transports the connector has just closed get their
            # connection_lost callbacks before the loop stops (no "unclosed transport" warnings).
            await asyncio.sleep(0)
        finally:
            if stop:
                self.loop.stop()


def _retry_after(headers: Any, default: float) -> float:
    try:
        return max(0.0, float(headers.get("Retry-After")))
    except (TypeError, ValueError, AttributeError):
        return default


def _error_fields(text: str) -> tuple[Any, str]:
    """(code, msg) of a Binance error body, read as python-binance's `BinanceAPIException` reads
    them (a body that is not a JSON object gives code 0 and the start of the text)."""
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return 0, f"Invalid JSON error message from Binance: {text[:300]}"
    return body.get("code"), body.get("msg")


class Transport:
    """Binance's REST API over one aiohttp session, at most `max_in_flight` requests at once,
    every request through `gate`. Thread-safe; `close()` closes the connections and stops the
    loop's thread, and the transport opens new ones if used again."""

    def __init__(self, api_url: str, *, gate: WeightGate, timeout_seconds: float = 5.0,
                 max_in_flight: int = DEFAULT_MAX_IN_FLIGHT, clock: Callable[[], float] = time.time):
        if max_in_flight < 1:
            raise ValueError(f"max_workers must be at least 1, got {max_in_flight}")
        self.api_url = api_url.rstrip("/")
        self.gate = gate
        self.timeout_seconds = timeout_seconds
        self.max_in_flight = max_in_flight
        self._clock = clock
        self._runtime: _LoopThread | None = None
        self._finalizer: weakref.finalize | None = None
        self._lock = threading.Lock()

    # -- the loop and the bridge ---------------------------------------------------------------

    def _started(self) -> _LoopThread:
        with self._lock:
            if self._runtime is None:
                runtime = _LoopThread(self.max_in_flight)
                # A transport dropped without close() still closes its session and stops its
                # thread, when it is collected or at the latest at interpreter exit.
                self._finalizer = weakref.finalize(self, runtime.close)
                self._runtime = runtime
            return self._runtime

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """The bridge: run `coroutine` on the transport's loop (started on first use) and block
        the calling thread until it is done."""
        return self._started().run(coroutine)

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The running loop, or None before first use and after `close()`."""
        runtime = self._runtime
        return runtime.loop if runtime is not None else None

    @property
    def session(self) -> aiohttp.ClientSession | None:
        """The loop's session (for coroutines on `loop` only), or None when not running."""
        runtime = self._runtime
        return runtime.session if runtime is not None else None

    def close(self) -> None:
        with self._lock:
            finalizer, self._finalizer, self._runtime = self._finalizer, None, None
        if finalizer is not None:
            finalizer()  # runtime.close(), once

    # -- one request ---------------------------------------------------------------------------

    def _timeout(self, deadline: float | None) -> float:
        timeout = self.timeout_seconds
        if deadline is not None:
            # The request may not outlive the deadline: a book that arrives after it is too late.
            timeout = max(0.01, min(timeout, deadline - self._clock()))
        return timeout

    async def get(self, path: str, params: dict[str, Any] | None = None, *, weight: int, what: str,
                  symbol: str | None = None, deadline: float | None = None) -> Response:
        """`GET {api_url}/v3/{path}`: the JSON body of a 2xx response, or an ExchangeError.
        Call it on the transport's loop (through `run`, or from a coroutine running there)."""
        runtime = self._runtime
        if runtime is None or asyncio.get_running_loop() is not runtime.loop:
            raise RuntimeError("Transport.get runs on the transport's own loop: call it through run()")
        url = rest_url(self.api_url, path, tuple((params or {}).items()))
        async with runtime.in_flight:
            # Inside the bound, right before sending: a request waiting for a free slot has
            # reserved no weight, and one that gets its slot during a Retry-After waits here.
            await self.gate.acquire_async(weight, deadline=deadline, symbol=symbol)
            if deadline is not None and self._clock() >= deadline:
                raise ExchangeServerError(f"{what}: the deadline passed before the request could be sent",
                                          symbol=symbol)
            timeout = self._timeout(deadline)
            requested_at = _now()
            try:
                async with runtime.session.get(url, timeout=aiohttp.ClientTimeout(total=timeout)) as response:
                    raw = await response.read()
            except TimeoutError:  # aiohttp's timeouts are TimeoutErrors (some ClientErrors too)
                raise self._timed_out(what, timeout, symbol) from None
            except (aiohttp.ClientError, OSError) as exc:
                raise self._unreachable(what, exc, symbol) from None
            status, headers = response.status, response.headers
            self.gate.observe(headers)
            if not 200 <= status < 300:
                code, message = _error_fields(raw.decode("utf-8", errors="replace"))
                raise self._api_error(status, code, message, headers, what, symbol)
            try:
                body = json.loads(raw) if raw else {}  # python-binance: an empty body is {}
            except ValueError:  # also a body that is not UTF-8 (UnicodeDecodeError)
                raise MalformedResponseError(f"{what}: the response body is not valid JSON", symbol=symbol) from None
            captured_at, arrived = _now(), self._clock()
        if deadline is not None and (late := arrived - deadline) > 0:
            # The timeout is cut to the time left, but never below 10 ms: such a straggler is
            # too late, and labelling it a book of the minute would be a lie.
            raise ExchangeServerError(f"{what}: the response came {late * 1000:.0f} ms after the deadline",
                                      symbol=symbol)
        return Response(body, requested_at, captured_at)

    @staticmethod
    def _timed_out(what: str, timeout: float, symbol: str | None) -> ExchangeServerError:
        return ExchangeServerError(f"{what}: no response within {timeout:.3g} s", symbol=symbol)

    def _unreachable(self, what: str, exc: BaseException, symbol: str | None) -> ExchangeServerError:
        if isinstance(exc, ConnectionDropped) and exc.__cause__ is not None:
            exc = exc.__cause__
        # The exception's own text is left out: it may hold the URL with its credentials.
        return ExchangeServerError(
            f"{what}: could not reach {settings.redact_uri(self.api_url)} ({type(exc).__name__})",
            symbol=symbol)

    def _api_error(self, status: int, code: Any, message: Any, headers: Any, what: str,
                   symbol: str | None) -> ExchangeError:
        """The typed error of a non-2xx response (status, Binance's error code and message); a
        429 or 418 also blocks the gate for its Retry-After."""
        detail = f"HTTP {status}, code {code}: {message}"
        if status == 418:
            retry_after = _retry_after(headers, 120.0)
            self.gate.block(retry_after, banned=True)
            until = datetime.fromtimestamp(self._clock() + retry_after, UTC)
            return BannedError(
                f"{what}: Binance banned this IP until {until:%H:%M:%S} UTC ({detail})",
                retry_after=retry_after, until=until, symbol=symbol)
        if status == 429:
            retry_after = _retry_after(headers, 60.0)
            self.gate.block(retry_after, banned=False)
            return RateLimitedError(
                f"{what}: rate limited, retry after {retry_after:g} s ({detail})",
                retry_after=retry_after, symbol=symbol)
        if code == INVALID_SYMBOL_CODE:
            return UnknownSymbolError(f"{what}: Binance does not know symbol {symbol!r} ({detail})", symbol=symbol)
        if status >= 500:
            return ExchangeServerError(f"{what}: server error ({detail})", symbol=symbol)
        return ExchangeRequestError(f"{what}: request refused ({detail})", symbol=symbol)

    # -- the retry policy ----------------------------------------------------------------------

    def _next_wait(self, exc: ExchangeError, number: int, max_attempts: int, delay: float,
                   deadline: float | None) -> float | None:
        """Seconds to wait before trying again after attempt `number` failed with `exc` (jittered
        `delay`, at least a Retry-After), or None: give up (not retryable, no attempts left, or
        the wait would reach the deadline)."""
        if not exc.retryable or number == max_attempts:
            return None
        wait = delay * random.uniform(0.5, 1.5)
        if isinstance(exc, RateLimitedError):
            wait = max(wait, exc.retry_after)
        if deadline is not None and self._clock() + wait >= deadline:
            return None
        log.warning("%s; retrying in %.2f s (attempt %d of %d)", exc, wait, number + 1, max_attempts)
        return wait

    async def retrying(self, attempt: Callable[[], Awaitable[T]], *, deadline: float | None,
                       max_attempts: int) -> tuple[T, int]:
        """Run `attempt` until it succeeds, a non-retryable error, `max_attempts`, or `deadline`;
        returns its result and the number of attempts made."""
        delay = 0.2
        for number in range(1, max_attempts + 1):
            try:
                return await attempt(), number
            except ExchangeError as exc:
                wait = self._next_wait(exc, number, max_attempts, delay, deadline)
                if wait is None:
                    raise
                await asyncio.sleep(wait)
                delay *= 2
        raise AssertionError("unreachable")
