"""Binance's request weight, and the gate that keeps this instance within it.

Binance counts request weight per minute per IP (6000 today) and answers 429 with `Retry-After`
when it is exceeded, then 418 (an IP ban) to clients that keep going. The gate reads
`X-MBX-USED-WEIGHT-1M` from every response, holds requests back once the budget is spent, and
sends nothing at all while a `Retry-After` runs, in this process or (through `SharedBlock`) in
any other process of the instance.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from acts_pipeline.core.errors import BannedError, RateLimitedError

log = logging.getLogger(__name__)

#: Binance's REQUEST_WEIGHT limit per minute (exchangeInfo's rateLimits).
DEFAULT_WEIGHT_LIMIT = 6000
#: Most klines one `GET /api/v3/klines` returns.
KLINES_PER_REQUEST = 1000
KLINES_WEIGHT = 2
EXCHANGE_INFO_WEIGHT = 20


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
    """Shared by every request of one client: holds requests back while the exchange said to
    wait (429/418 `Retry-After`, also when another process of the instance was told so, through
    `shared`) and once this minute's weight budget is spent.

    The transport waits with `acquire_async` (on its event loop); `acquire` is the same decision
    for a blocking caller. Thread-safe: the lock is only ever held for a few instructions."""

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
        budget holds back this request without blocking the event loop."""
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
