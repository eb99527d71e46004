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
"""

from __future__ import annotations

import json
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
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


def depth_weight(limit: int) -> int:
    """Request weight of `GET /api/v3/depth` for `limit` levels (Binance's published table)."""
    if limit <= 100:
        return 5
    if limit <= 500:
        return 25
    if limit <= 1000:
        return 50
    return 250


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
                 shared: SharedBlock | None = None):
        self.limit = limit
        self.budget = int(limit * budget_fraction)
        self._clock = clock
        self._sleep = sleep
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
        while True:
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
                    return
                blocked_by = self._blocked_by
            if deadline is not None and wait_until > deadline:
                until = datetime.fromtimestamp(wait_until, UTC)
                message = f"{reason}: no request to Binance before {until:%H:%M:%S} UTC"
                if blocked_by is BannedError and reason.startswith("exchange"):
                    raise BannedError(message, retry_after=wait_until - now, until=until, symbol=symbol)
                raise RateLimitedError(message, retry_after=wait_until - now, symbol=symbol)
            self._sleep(max(0.0, wait_until - now))

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


class ExchangeClient:
    """Binance Spot market data over REST via python-binance, safe to use from many threads."""

    def __init__(self, api_url: str, *, depth_limit: int = settings.DEFAULT_DEPTH_LIMIT,
                 timeout_seconds: float = 5.0, max_workers: int = 16,
                 weight_limit: int = DEFAULT_WEIGHT_LIMIT, weight_budget_fraction: float = 0.8,
                 clock: Callable[[], float] = time.time, shared_block_path: Path | None = None):
        self.api_url = api_url.rstrip("/")
        self.depth_limit = depth_limit
        self.timeout_seconds = timeout_seconds
        self.max_workers = max_workers
        self.gate = WeightGate(weight_limit, weight_budget_fraction, clock=clock,
                               shared=SharedBlock(shared_block_path) if shared_block_path else None)
        self._clock = clock
        self._local = threading.local()
        self._clients: list[Client] = []
        self._clients_lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None

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

    def _workers(self) -> ThreadPoolExecutor:
        """One pool for the client's life: its threads keep their python-binance clients, and so
        their open HTTP connections, from one minute's fetch to the next."""
        with self._clients_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=self.max_workers, thread_name_prefix="acts-depth")
            return self._pool

    def close(self) -> None:
        with self._clients_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)
        with self._clients_lock:
            for client in self._clients:
                client.session.close()
            self._clients.clear()

    def _request(self, call: Callable[[Client, dict[str, Any]], Any], *, weight: int, what: str,
                 symbol: str | None, deadline: float | None) -> tuple[Any, datetime, datetime]:
        """One HTTP request; returns (body, requested_at, captured_at) or raises an ExchangeError.

        `call` gets the client and python-binance's per-call `requests_params`."""
        self.gate.acquire(weight, deadline=deadline, symbol=symbol)
        client = self._client()
        timeout = self.timeout_seconds
        if deadline is not None:
            # The request may not outlive the deadline: a book that arrives after it is too late.
            timeout = max(0.01, min(timeout, deadline - self._clock()))
        requested_at = _now()
        try:
            body = call(client, {"timeout": timeout})
        except BinanceAPIException as exc:
            headers = getattr(exc.response, "headers", None)
            self.gate.observe(headers)
            raise self._api_error(exc, headers, what, symbol) from None
        except BinanceRequestException:
            self.gate.observe(getattr(client.response, "headers", None))
            raise MalformedResponseError(f"{what}: the response body is not valid JSON", symbol=symbol) from None
        except requests.Timeout:
            raise ExchangeServerError(
                f"{what}: no response within {timeout:.3g} s", symbol=symbol) from None
        except requests.RequestException as exc:
            raise ExchangeServerError(
                f"{what}: could not reach {settings.redact_uri(self.api_url)} ({type(exc).__name__})",
                symbol=symbol) from None
        captured_at = _now()
        self.gate.observe(getattr(client.response, "headers", None))
        return body, requested_at, captured_at

    def _api_error(self, exc: BinanceAPIException, headers: Any, what: str, symbol: str | None) -> ExchangeError:
        status = exc.status_code
        detail = f"HTTP {status}, code {exc.code}: {exc.message}"
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
        if exc.code == INVALID_SYMBOL_CODE:
            return UnknownSymbolError(f"{what}: Binance does not know symbol {symbol!r} ({detail})", symbol=symbol)
        if status >= 500:
            return ExchangeServerError(f"{what}: server error ({detail})", symbol=symbol)
        return ExchangeRequestError(f"{what}: request refused ({detail})", symbol=symbol)

    def _with_retries(self, attempt: Callable[[float | None], Any], *, deadline: float | None,
                      max_attempts: int) -> tuple[Any, int]:
        """Run `attempt` until it succeeds, a non-retryable error, `max_attempts`, or `deadline`."""
        delay = 0.2
        for number in range(1, max_attempts + 1):
            try:
                return attempt(deadline), number
            except ExchangeError as exc:
                if not exc.retryable or number == max_attempts:
                    raise
                wait = delay * random.uniform(0.5, 1.5)
                if isinstance(exc, RateLimitedError):
                    wait = max(wait, exc.retry_after)
                if deadline is not None and self._clock() + wait >= deadline:
                    raise
                log.warning("%s; retrying in %.2f s (attempt %d of %d)", exc, wait, number + 1, max_attempts)
                time.sleep(wait)
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
        """Books of many symbols fetched concurrently (at most `max_workers` at a time). Each
        symbol's outcome is its own: a book, or the error that ended its retries."""
        symbols = list(symbols)

        def one(symbol: str) -> TimedBook | ExchangeError:
            try:
                return self.order_book(symbol, deadline=deadline, max_attempts=max_attempts)
            except ExchangeError as exc:
                return exc

        if not symbols:
            return {}
        return dict(zip(symbols, self._workers().map(one, symbols), strict=True))

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
    max_workers: int = 16
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
