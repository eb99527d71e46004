"""The Binance Spot REST client: python-binance underneath, typed errors and a weight gate on top.

`ExchangeClient` is plain Python (the CLI uses it too); `BinanceExchange` is the Dagster resource
that builds one from configuration. Three things are owned here and nowhere else:

- **Typed errors.** python-binance raises `BinanceAPIException` for any non-2xx status and
  `BinanceRequestException` for a body that is not JSON; requests raises its own transport
  errors. They become the `acts_pipeline.errors` classes, which say whether a retry can help.
- **Retries within a deadline.** A snapshot is only worth having close to the minute's close, so
  each symbol is retried with jittered exponential backoff until a deadline, never after it.
- **Rate limits.** Binance counts request weight per minute per IP (6000 today) and answers
  429 with `Retry-After` when it is exceeded, then 418 (an IP ban) to clients that keep going.
  The gate reads `X-MBX-USED-WEIGHT-1M` from every response, holds requests back once the
  budget is spent, and sends nothing at all while a `Retry-After` runs: every thread waits.
- **Concurrent books.** `order_books` (the minute's fetch of up to 500 books) runs on asyncio:
  python-binance's `AsyncClient` over one aiohttp connection pool, at most `max_workers`
  requests in flight, on an event loop that the client owns (its own thread, kept for the
  client's life so connections are reused). The one-at-a-time calls (`order_book`, `klines`,
  `exchange_info`) stay on the synchronous `Client`. Both paths share the gate, the retry policy
  and the error mapping.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import aiohttp
import requests
import yarl
from binance.async_client import AsyncClient
from binance.client import Client
from binance.exceptions import BinanceAPIException, BinanceRequestException
from dagster import ConfigurableResource
from pydantic import PrivateAttr

from acts_pipeline import settings
from acts_pipeline.errors import (
    BannedError,
    ExchangeError,
    ExchangeRequestError,
    ExchangeServerError,
    MalformedResponseError,
    RateLimitedError,
    UnknownSymbolError,
)
from acts_pipeline.models import Kline, OrderBook, SymbolInfo
from acts_pipeline.parsing import datetime_to_ms, parse_depth, parse_exchange_info, parse_klines

log = logging.getLogger(__name__)

#: Binance's REQUEST_WEIGHT limit per minute (exchangeInfo's rateLimits).
DEFAULT_WEIGHT_LIMIT = 6000
#: Most klines one `GET /api/v3/klines` returns.
KLINES_PER_REQUEST = 1000
KLINES_WEIGHT = 2
EXCHANGE_INFO_WEIGHT = 20
INVALID_SYMBOL_CODE = -1121
#: Requests of `order_books` in flight at once (`max_workers`).
DEFAULT_MAX_IN_FLIGHT = 32
#: How long an idle pooled connection is kept: longer than a minute, so that the connections of
#: one minute's fetch are still open at the next close (aiohttp's default is 15 s).
KEEPALIVE_SECONDS = 75.0

T = TypeVar("T")


def depth_weight(limit: int) -> int:
    """Request weight of `GET /api/v3/depth` for `limit` levels (Binance's published table)."""
    if limit <= 100:
        return 5
    if limit <= 500:
        return 25
    if limit <= 1000:
        return 50
    return 250


def klines_weight(start: datetime, end: datetime) -> int:
    """Request weight of fetching the 1-minute klines of `[start, end)`: `KLINES_PER_REQUEST`
    minutes a request, as `ExchangeClient.klines` pages them."""
    minutes = int((end - start) / timedelta(minutes=1))
    return -(-minutes // KLINES_PER_REQUEST) * KLINES_WEIGHT


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class TimedBook:
    """A parsed book with when its request left (`requested_at`) and its response arrived
    (`captured_at`): the honest timestamps of the attempt that succeeded."""

    book: OrderBook
    requested_at: datetime
    captured_at: datetime
    attempts: int


class SharedBlock:
    """A Retry-After or ban, shared through a small file by every process of the instance.

    Each minute is a new run process; Binance counts per IP and lengthens the bans of clients
    that keep sending, so the next minute's process must know about a ban the last one got.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self._seen_mtime = -1.0
        self._cached: tuple[float, bool] = (0.0, False)

    def read(self) -> tuple[float, bool]:
        """(blocked until, as a Unix time; banned?) as last written by any process."""
        try:
            mtime = self.path.stat().st_mtime
        except FileNotFoundError:
            return 0.0, False
        if mtime != self._seen_mtime:
            try:
                raw = json.loads(self.path.read_text())
                self._cached = (float(raw["blocked_until"]), bool(raw["banned"]))
            except (OSError, ValueError, KeyError, TypeError):
                return self._cached
            self._seen_mtime = mtime
        return self._cached

    def write(self, until: float, banned: bool) -> None:
        if until <= self.read()[0]:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        temporary.write_text(json.dumps({"blocked_until": until, "banned": banned}))
        os.replace(temporary, self.path)


class WeightGate:
    """Shared by every request thread of one client: holds requests back while the exchange
    said to wait (429/418 `Retry-After`, also when another process of the instance was told so,
    through `shared`) and once this minute's weight budget is spent."""

    def __init__(self, limit: int = DEFAULT_WEIGHT_LIMIT, budget_fraction: float = 0.8,
                 clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep,
                 shared: SharedBlock | None = None,
                 async_sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep):
        self.limit = limit
        self.budget = int(limit * budget_fraction)
        self._clock = clock
        self._sleep = sleep
        self._async_sleep = async_sleep
        self._lock = threading.Lock()
        self._blocked_until = 0.0
        self._blocked_by: type[RateLimitedError] = RateLimitedError
        self._window = -1  # the wall-clock minute the weight below was counted in
        self._used = 0
        self.max_used_seen = 0
        self._shared = shared

    @property
    def used_weight(self) -> int:
        with self._lock:
            return self._used if self._window == int(self._clock() // 60) else 0

    def acquire(self, weight: int, *, deadline: float | None, symbol: str | None = None) -> None:
        """Block until `weight` may be sent; raise instead if that is after `deadline`."""
        while (wait := self._reserve_or_wait(weight, deadline=deadline, symbol=symbol)) is not None:
            self._sleep(wait)

    async def acquire_async(self, weight: int, *, deadline: float | None, symbol: str | None = None) -> None:
        """`acquire` for coroutines: waits with `asyncio.sleep`, so a Retry-After or a spent
        budget holds back this request without blocking the event loop (the lock below is only
        ever held for a few instructions, never across a wait)."""
        while (wait := self._reserve_or_wait(weight, deadline=deadline, symbol=symbol)) is not None:
            await self._async_sleep(wait)

    def _reserve_or_wait(self, weight: int, *, deadline: float | None, symbol: str | None) -> float | None:
        """Reserve `weight` and return None, or return how long to wait before asking again;
        raise if the wait would end after `deadline`."""
        if self._shared is not None:
            until, banned = self._shared.read()
            self.block_until(until, banned=banned, share=False)
        with self._lock:
            now = self._clock()
            minute = int(now // 60)
            if minute != self._window:
                self._window, self._used = minute, 0
            if now < self._blocked_until:
                wait_until, reason = self._blocked_until, "exchange asked to wait (Retry-After)"
            elif self._used + weight > self.budget:
                wait_until, reason = (minute + 1) * 60.0, f"weight budget {self.budget}/min spent"
            else:
                self._used += weight  # reserve it; the response header corrects the count
                return None
            blocked_by = self._blocked_by
        if deadline is not None and wait_until > deadline:
            until = datetime.fromtimestamp(wait_until, UTC)
            message = f"{reason}: no request to Binance before {until:%H:%M:%S} UTC"
            if blocked_by is BannedError and reason.startswith("exchange"):
                raise BannedError(message, retry_after=wait_until - now, until=until, symbol=symbol)
            raise RateLimitedError(message, retry_after=wait_until - now, symbol=symbol)
        return max(0.0, wait_until - now)

    def observe(self, headers: Any) -> None:
        """Take the exchange's own count of this minute's weight from a response."""
        raw = headers.get("X-MBX-USED-WEIGHT-1M") if headers is not None else None
        if raw is None:
            return
        try:
            used = int(raw)
        except ValueError:
            return
        with self._lock:
            minute = int(self._clock() // 60)
            if minute != self._window:
                self._window, self._used = minute, 0
            self._used = max(self._used, used)
            self.max_used_seen = max(self.max_used_seen, used)

    def block(self, seconds: float, *, banned: bool) -> None:
        self.block_until(self._clock() + seconds, banned=banned)

    def block_until(self, until: float, *, banned: bool, share: bool = True) -> None:
        with self._lock:
            if until <= self._blocked_until:
                return
            self._blocked_until = until
            self._blocked_by = BannedError if banned else RateLimitedError
        if share and self._shared is not None:
            try:
                self._shared.write(until, banned)
            except OSError as exc:
                log.warning("could not share the exchange's Retry-After with other runs: %s", exc)


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


class _EventLoopThread:
    """The asynchronous side of an `ExchangeClient`: an asyncio event loop running on a daemon
    thread of its own, and what lives on that loop: python-binance's `AsyncClient` (so one
    aiohttp session, one connection pool) and the semaphore bounding the requests in flight.

    Made on first use and kept until `close()`, so the pool's keep-alive connections serve one
    minute's fetch after the other. A thread with its own loop (rather than `asyncio.run` per
    call) is what makes that possible from synchronous callers such as a Dagster asset, and it
    works whether or not the caller's thread has a loop of its own running.
    """

    def __init__(self, api_url: str, max_in_flight: int):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, name="acts-exchange-loop", daemon=True)
        self._closed = False
        self._urls: dict[tuple, yarl.URL] = {}
        self.thread.start()
        try:
            self.client, self.in_flight = self.run(self._open(api_url, max_in_flight))
        except BaseException:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            raise

    @staticmethod
    async def _open(api_url: str, max_in_flight: int) -> tuple[AsyncClient, asyncio.Semaphore]:
        # Not `AsyncClient.create()`, which pings the exchange. Made in a coroutine because the
        # session and its connector belong to the loop they are made on. The connector never
        # holds more connections than requests may be in flight, and keeps idle ones past the
        # next minute's close.
        connector = aiohttp.TCPConnector(limit=max_in_flight, keepalive_timeout=KEEPALIVE_SECONDS)
        client = AsyncClient(loop=asyncio.get_running_loop(), session_params={"connector": connector})
        client.API_URL = api_url  # as the synchronous path sets it
        # aiohttp silently sends an idempotent request a second time when its connection drops
        # (its `test_utils` turns this off the same way). That second request would bypass the
        # weight gate (and so a Retry-After) and the attempt count: every request is ours to send.
        client.session._retry_connection = False
        return client, asyncio.Semaphore(max_in_flight)

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

    def url(self, path: str, params: dict[str, Any]) -> yarl.URL:
        """`API_URL/v3/<path>?<query>` built by python-binance's own helpers, exactly as its
        `get_order_book` and friends build them (parameters ordered, the symbol quoted).
        Remembered: the same few hundred depth URLs are asked for every minute."""
        key = (path, *sorted(params.items()))
        url = self._urls.get(key)
        if url is None:
            client = self.client
            uri = client._create_api_uri(path, False, client.PUBLIC_API_VERSION)
            query = client._get_request_kwargs("get", False, data=dict(params)).get("params")
            url = self._urls[key] = yarl.URL(f"{uri}?{query}" if query else uri, encoded=True)
        return url

    def run(self, coroutine: Awaitable[T]) -> T:
        """Run `coroutine` on the loop; block the calling thread (never the loop's) until done."""
        if threading.current_thread() is self.thread:
            raise RuntimeError("ExchangeClient's blocking methods cannot be called from its own event loop")
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()  # the caller gave up (e.g. KeyboardInterrupt): so does the fetch
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
            await self.client.close_connection()
            # One more turn of the loop: the transports the connector has just closed get their
            # connection_lost callbacks before the loop stops (no "unclosed transport" warnings).
            await asyncio.sleep(0)
        finally:
            if stop:
                self.loop.stop()


class ExchangeClient:
    """Binance Spot market data over REST via python-binance, safe to use from many threads.

    `order_book`, `klines` and `exchange_info` are synchronous (python-binance's `Client`, one
    per calling thread); `order_books` fetches many books at once on the client's event loop
    (python-binance's `AsyncClient`, at most `max_workers` requests in flight). Call `close()`
    when done: it closes both paths' connections and stops the loop's thread.
    """

    def __init__(self, api_url: str, *, depth_limit: int = settings.DEFAULT_DEPTH_LIMIT,
                 timeout_seconds: float = 5.0, max_workers: int = DEFAULT_MAX_IN_FLIGHT,
                 weight_limit: int = DEFAULT_WEIGHT_LIMIT, weight_budget_fraction: float = 0.8,
                 clock: Callable[[], float] = time.time, shared_block_path: Path | None = None):
        if max_workers < 1:
            raise ValueError(f"max_workers must be at least 1, got {max_workers}")
        self.api_url = api_url.rstrip("/")
        self.depth_limit = depth_limit
        self.timeout_seconds = timeout_seconds
        #: The most requests `order_books` has in flight at once.
        self.max_workers = max_workers
        self.gate = WeightGate(weight_limit, weight_budget_fraction, clock=clock,
                               shared=SharedBlock(shared_block_path) if shared_block_path else None)
        self._clock = clock
        self._local = threading.local()
        self._clients: list[Client] = []
        self._clients_lock = threading.Lock()
        self._runtime: _EventLoopThread | None = None
        self._runtime_finalizer: weakref.finalize | None = None
        self._runtime_lock = threading.Lock()

    # -- transport ---------------------------------------------------------------------------

    def _client(self) -> Client:
        """One python-binance `Client` (and so one HTTP session) per thread: `Client.response`,
        which holds the last response's headers, is per instance, so sharing one would mix the
        weight headers of concurrent requests."""
        client = getattr(self._local, "client", None)
        if client is None:
            client = Client(ping=False, requests_params={"timeout": self.timeout_seconds})
            client.API_URL = self.api_url
            self._local.client = client
            with self._clients_lock:
                self._clients.append(client)
        return client

    def _event_loop(self) -> _EventLoopThread:
        """The event loop of `order_books`, started on first use and kept for the client's life."""
        with self._runtime_lock:
            if self._runtime is None:
                runtime = _EventLoopThread(self.api_url, self.max_workers)
                # A client dropped without close() still closes its session and stops its thread,
                # when it is collected or at the latest at interpreter exit.
                self._runtime_finalizer = weakref.finalize(self, runtime.close)
                self._runtime = runtime
            return self._runtime

    def close(self) -> None:
        """Close every connection of both paths and stop the event loop's thread. The client may
        be used again afterwards: it then opens new ones."""
        with self._runtime_lock:
            finalizer, self._runtime_finalizer, self._runtime = self._runtime_finalizer, None, None
        if finalizer is not None:
            finalizer()  # runtime.close(), once
        with self._clients_lock:
            for client in self._clients:
                client.session.close()
            self._clients.clear()
        self._local = threading.local()

    def _timeout(self, deadline: float | None) -> float:
        timeout = self.timeout_seconds
        if deadline is not None:
            # The request may not outlive the deadline: a book that arrives after it is too late.
            timeout = max(0.01, min(timeout, deadline - self._clock()))
        return timeout

    def _request(self, call: Callable[[Client, dict[str, Any]], Any], *, weight: int, what: str,
                 symbol: str | None, deadline: float | None) -> tuple[Any, datetime, datetime]:
        """One HTTP request; returns (body, requested_at, captured_at) or raises an ExchangeError.

        `call` gets the client and python-binance's per-call `requests_params`."""
        self.gate.acquire(weight, deadline=deadline, symbol=symbol)
        client = self._client()
        timeout = self._timeout(deadline)
        requested_at = _now()
        try:
            body = call(client, {"timeout": timeout})
        except BinanceAPIException as exc:
            headers = getattr(exc.response, "headers", None)
            self.gate.observe(headers)
            raise self._api_error(exc.status_code, exc.code, exc.message, headers, what, symbol) from None
        except BinanceRequestException:
            self.gate.observe(getattr(client.response, "headers", None))
            raise self._malformed(what, symbol) from None
        except requests.Timeout:
            raise self._timed_out(what, timeout, symbol) from None
        except requests.RequestException as exc:
            raise self._unreachable(what, exc, symbol) from None
        captured_at = _now()
        self.gate.observe(getattr(client.response, "headers", None))
        return body, requested_at, captured_at

    async def _request_async(self, runtime: _EventLoopThread, url: yarl.URL, *, weight: int, what: str,
                             symbol: str | None, deadline: float | None) -> tuple[Any, datetime, datetime]:
        """`_request` on the event loop: one GET through the shared aiohttp session.

        The session is python-binance's `AsyncClient.session`, called here directly (with the URL
        python-binance builds, see `_EventLoopThread.url`) rather than through `get_order_book`:
        that one keeps the response in `AsyncClient.response`, a single attribute that every
        concurrent coroutine overwrites while the others are still awaiting their bodies, so
        reading the weight header from it would credit one request with another's count (and
        for a malformed body, the only place its headers are left). Holding the
        `aiohttp.ClientResponse` ourselves gives the headers of exactly this request, and its
        status and body, which are mapped to the same errors as on the synchronous path.
        """
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
                async with runtime.client.session.get(url, timeout=aiohttp.ClientTimeout(total=timeout)) as response:
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
                raise self._malformed(what, symbol) from None
            captured_at, arrived = _now(), self._clock()
        if deadline is not None and (late := arrived - deadline) > 0:
            # The timeout is cut to the time left, but never below 10 ms: such a straggler is
            # too late, and labelling it a book of the minute would be a lie.
            raise ExchangeServerError(f"{what}: the response came {late * 1000:.0f} ms after the deadline",
                                      symbol=symbol)
        return body, requested_at, captured_at

    @staticmethod
    def _malformed(what: str, symbol: str | None) -> MalformedResponseError:
        return MalformedResponseError(f"{what}: the response body is not valid JSON", symbol=symbol)

    @staticmethod
    def _timed_out(what: str, timeout: float, symbol: str | None) -> ExchangeServerError:
        return ExchangeServerError(f"{what}: no response within {timeout:.3g} s", symbol=symbol)

    def _unreachable(self, what: str, exc: BaseException, symbol: str | None) -> ExchangeServerError:
        # The exception's own text is left out: it may hold the URL with its credentials.
        return ExchangeServerError(
            f"{what}: could not reach {settings.redact_uri(self.api_url)} ({type(exc).__name__})",
            symbol=symbol)

    def _api_error(self, status: int, code: Any, message: Any, headers: Any, what: str,
                   symbol: str | None) -> ExchangeError:
        """The typed error of a non-2xx response (status, Binance's error code and message)."""
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

    def _with_retries(self, attempt: Callable[[float | None], Any], *, deadline: float | None,
                      max_attempts: int) -> tuple[Any, int]:
        """Run `attempt` until it succeeds, a non-retryable error, `max_attempts`, or `deadline`."""
        delay = 0.2
        for number in range(1, max_attempts + 1):
            try:
                return attempt(deadline), number
            except ExchangeError as exc:
                wait = self._next_wait(exc, number, max_attempts, delay, deadline)
                if wait is None:
                    raise
                time.sleep(wait)
                delay *= 2
        raise AssertionError("unreachable")

    async def _with_retries_async(self, attempt: Callable[[], Awaitable[T]], *, deadline: float | None,
                                  max_attempts: int) -> tuple[T, int]:
        """`_with_retries` for coroutines: the same policy, waiting without blocking the loop."""
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

    # -- market data -------------------------------------------------------------------------

    def order_book(self, symbol: str, *, deadline: float | None = None, max_attempts: int = 6) -> TimedBook:
        """The current book of `symbol`, `depth_limit` levels a side, retried until `deadline`."""
        what = f"GET /api/v3/depth {symbol}"

        def attempt(deadline: float | None) -> TimedBook:
            body, requested_at, captured_at = self._request(
                lambda c, rp: c.get_order_book(symbol=symbol, limit=self.depth_limit, requests_params=rp),
                weight=depth_weight(self.depth_limit), what=what, symbol=symbol, deadline=deadline)
            return TimedBook(parse_depth(body, symbol), requested_at, captured_at, attempts=0)

        book, attempts = self._with_retries(attempt, deadline=deadline, max_attempts=max_attempts)
        return TimedBook(book.book, book.requested_at, book.captured_at, attempts)

    def order_books(self, symbols: Iterable[str], *, deadline: float | None = None,
                    max_attempts: int = 6) -> dict[str, TimedBook | ExchangeError]:
        """Books of many symbols fetched concurrently on the client's event loop (at most
        `max_workers` requests in flight, over one connection pool). Each symbol's outcome is its
        own: a book, or the error that ended its retries. Same retries, deadline, weight gate and
        errors as `order_book`."""
        symbols = list(symbols)
        if not symbols:
            return {}
        runtime = self._event_loop()
        results = runtime.run(self._order_books_async(runtime, symbols, deadline, max_attempts))
        return dict(zip(symbols, results, strict=True))

    async def _order_books_async(self, runtime: _EventLoopThread, symbols: list[str], deadline: float | None,
                                 max_attempts: int) -> list[TimedBook | ExchangeError]:
        async def one(symbol: str) -> TimedBook | ExchangeError:
            try:
                return await self._order_book_async(runtime, symbol, deadline=deadline, max_attempts=max_attempts)
            except ExchangeError as exc:
                return exc

        tasks = [asyncio.create_task(one(symbol), name=f"order book {symbol}") for symbol in symbols]
        try:
            return await asyncio.gather(*tasks)
        finally:
            for task in tasks:  # only on an unexpected error (a bug) are any left running
                task.cancel()

    async def _order_book_async(self, runtime: _EventLoopThread, symbol: str, *, deadline: float | None,
                                max_attempts: int) -> TimedBook:
        what = f"GET /api/v3/depth {symbol}"
        url = runtime.url("depth", {"symbol": symbol, "limit": self.depth_limit})
        weight = depth_weight(self.depth_limit)

        async def attempt() -> TimedBook:
            body, requested_at, captured_at = await self._request_async(
                runtime, url, weight=weight, what=what, symbol=symbol, deadline=deadline)
            # Parsed after `captured_at` was taken; a malformed or crossed book is retried.
            return TimedBook(parse_depth(body, symbol), requested_at, captured_at, attempts=0)

        book, attempts = await self._with_retries_async(attempt, deadline=deadline, max_attempts=max_attempts)
        return TimedBook(book.book, book.requested_at, book.captured_at, attempts)

    def klines(self, symbol: str, start: datetime, end: datetime, *, max_attempts: int = 4) -> list[Kline]:
        """Closed and open 1-minute klines of `symbol` whose open time is in [start, end),
        paging 1000 minutes a request."""
        klines: list[Kline] = []
        cursor = start
        while cursor < end:
            page_end = min(end, cursor + timedelta(minutes=KLINES_PER_REQUEST))
            what = f"GET /api/v3/klines {symbol} {cursor:%Y-%m-%d %H:%M}..{page_end:%H:%M}"
            params = dict(symbol=symbol, interval="1m", startTime=datetime_to_ms(cursor),
                          endTime=datetime_to_ms(page_end) - 1, limit=KLINES_PER_REQUEST)

            def attempt(deadline: float | None, params=params, what=what) -> list[Kline]:
                body, _, _ = self._request(lambda c, rp: c.get_klines(**params, requests_params=rp),
                                           weight=KLINES_WEIGHT,
                                           what=what, symbol=symbol, deadline=deadline)
                return parse_klines(body, symbol)

            page, _ = self._with_retries(attempt, deadline=None, max_attempts=max_attempts)
            klines.extend(k for k in page if cursor <= k.minute < page_end)
            cursor = page_end
        return klines

    def exchange_info(self) -> dict[str, SymbolInfo]:
        """Every symbol the exchange lists, with its trading status."""
        def attempt(deadline: float | None) -> dict[str, SymbolInfo]:
            body, _, _ = self._request(lambda c, rp: c.get_exchange_info(), weight=EXCHANGE_INFO_WEIGHT,
                                       what="GET /api/v3/exchangeInfo", symbol=None, deadline=deadline)
            return parse_exchange_info(body)

        info, _ = self._with_retries(attempt, deadline=None, max_attempts=3)
        return info


class BinanceExchange(ConfigurableResource):
    """Binance Spot market data (order books, klines, exchangeInfo) through python-binance.

    Fields left unset are read from the environment when the resource is built:
    `ACTS_BINANCE_API_URL` (the REST base URL, e.g. the offline simulator's) and `ACTS_DEPTH_LIMIT`.
    """

    api_url: str | None = None
    depth_limit: int | None = None
    timeout_seconds: float = 5.0
    #: The most order-book requests in flight at once.
    max_workers: int = DEFAULT_MAX_IN_FLIGHT
    weight_budget_fraction: float = 0.8

    _client: ExchangeClient | None = PrivateAttr(default=None)

    def get_client(self) -> ExchangeClient:
        if self._client is None:
            self._client = ExchangeClient(
                self.api_url or settings.binance_api_url(),
                depth_limit=self.depth_limit or settings.depth_limit(),
                timeout_seconds=self.timeout_seconds,
                max_workers=self.max_workers,
                weight_budget_fraction=self.weight_budget_fraction,
                shared_block_path=settings.exchange_block_path(),
            )
        return self._client

    def teardown_after_execution(self, context) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
