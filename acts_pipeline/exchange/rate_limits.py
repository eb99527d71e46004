"""Binance's request weight, and the gate that keeps this instance within it.

Binance counts request weight per minute per IP (6000 today) and answers 429 with `Retry-After`
when it is exceeded, then 418 (an IP ban) to clients that keep going. The gate reads
`X-MBX-USED-WEIGHT-1M` from every response, holds requests back once the budget is spent, and
sends nothing at all while a `Retry-After` runs, in this process or (through `SharedBlock`) in
any other process of the instance. Through `SharedWeight`, every process of the instance counts
its requests' weight in one ledger before sending them, so the recorder's snapshots and a minute
run's requests, sent in the same second, cannot together pass the budget before the exchange's
header could tell either of them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import struct
import threading
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from acts_pipeline.core.errors import BannedError, RateLimitedError

try:
    import fcntl
except ImportError:  # not on Windows: each process counts its own weight there
    fcntl = None

log = logging.getLogger(__name__)

#: Binance's REQUEST_WEIGHT limit per minute (exchangeInfo's rateLimits).
DEFAULT_WEIGHT_LIMIT = 6000
#: The share of the limit the instance's processes spend together at most (the minute runs'
#: budget; the recorder's is smaller, and it may prepay its share up to this ceiling).
IP_BUDGET_FRACTION = 0.8
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


class SharedWeight:
    """This minute's request weight of every process of the instance, in one small file.

    The gate of each process (the recorder, every minute run, the sensors) reserves a request's
    weight here before sending it, under an exclusive `flock`, and raises the count to what the
    exchange's header reports. Binance counts per IP, and the header only tells a process what was
    spent after its own response: before this ledger, the recorder's snapshots and a minute run's
    REST fallbacks sent in the same second both reserved against a stale count, and a cold start
    went to 82 % of the limit with the budget at 80 %.

    The file holds two little-endian int64: the wall-clock minute and its weight. A process whose
    file cannot be opened or locked counts alone (the gate's own count, as before), and says so
    once. The descriptor is opened again after a fork: a `flock` belongs to the open file, which a
    forked child would share with its parent.
    """

    _RECORD = struct.Struct("<qq")

    def __init__(self, path: Path):
        self.path = Path(path)
        self._fd: int | None = None
        self._pid = -1
        self._warned = False

    def _descriptor(self) -> int | None:
        if self._fd is not None and self._pid == os.getpid():
            return self._fd
        if fcntl is None:
            self._unavailable(OSError("no fcntl.flock on this platform"))
            return None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd, self._pid = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644), os.getpid()
        except OSError as exc:
            self._unavailable(exc)
            return None
        return self._fd

    def _unavailable(self, exc: OSError) -> None:
        if not self._warned:
            self._warned = True
            log.warning("the shared request-weight ledger %s is unavailable (%s): this process counts its "
                        "own weight only", self.path, exc)

    def _update(self, minute: int, change: Callable[[int], tuple[int, bool]]) -> int | None:
        """Under the lock: this minute's weight `w` becomes `change(w)[0]`, written if
        `change(w)[1]`; returns `w` as read, or None if the ledger is unavailable."""
        fd = self._descriptor()
        if fd is None:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                raw = os.pread(fd, self._RECORD.size, 0)
                window, used = self._RECORD.unpack(raw) if len(raw) == self._RECORD.size else (-1, 0)
                before = used if window == minute else 0
                after, write = change(before)
                if write:
                    os.pwrite(fd, self._RECORD.pack(minute, after), 0)
                return before
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        except OSError as exc:
            self._unavailable(exc)
            return None

    def reserve(self, minute: int, weight: int, budget: int, floor: int = 0,
                partial: bool = False) -> tuple[int, int | None]:
        """Add `weight` to `minute`'s count if the count (at least `floor`, what this process
        knows) stays within `budget`, or with `partial` as much of it as fits: (the weight
        reserved, 0 if none; the count before it, None if the ledger is unavailable)."""
        granted = 0

        def add(stored: int) -> tuple[int, bool]:
            nonlocal granted
            used = max(stored, floor)
            room = max(0, budget - used)
            granted = min(weight, room) if partial else (weight if weight <= room else 0)
            return used + granted, used + granted != stored

        before = self._update(minute, add)
        return granted, None if before is None else max(before, floor)

    def raise_to(self, minute: int, used: int) -> None:
        """The exchange says `used` weight was spent in `minute`: the count is at least that."""
        self._update(minute, lambda current: (max(current, used), used > current))

    def used(self, minute: int) -> int | None:
        return self._update(minute, lambda current: (current, False))

    def close(self) -> None:
        if self._fd is not None and self._pid == os.getpid():
            os.close(self._fd)
        self._fd = None


class WeightGate:
    """Shared by every request of one client: holds requests back while the exchange said to
    wait (429/418 `Retry-After`, also when another process of the instance was told so, through
    `shared`) and once this minute's weight budget is spent.

    The transport waits with `acquire_async` (on its event loop); `acquire` is the same decision
    for a blocking caller. Thread-safe: the lock is only ever held for a few instructions."""

    def __init__(self, limit: int = DEFAULT_WEIGHT_LIMIT, budget_fraction: float = IP_BUDGET_FRACTION,
                 clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep,
                 shared: SharedBlock | None = None,
                 async_sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
                 ledger: SharedWeight | None = None):
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
        self._ledger = ledger
        self._prepaid = (-1, 0)  # (minute, weight reserved by prepay and not yet sent)

    @property
    def used_weight(self) -> int:
        """This minute's weight: this process's reservations and the exchange's header, and with a
        ledger every other process's reservations too."""
        with self._lock:
            minute = int(self._clock() // 60)
            used = self._used if self._window == minute else 0
            shared = self._ledger.used(minute) if self._ledger is not None else None
            return used if shared is None else max(used, shared)

    def prepay(self, weight: int, *, ceiling: int) -> int:
        """Reserve up to `weight` of this minute at once, as far as the count stays within
        `ceiling` (which may be above this gate's own budget); this minute's requests draw on it
        before anything else. Returns the weight reserved.

        The recorder prepays its share at the start of each minute while it has snapshots to
        take: the minute runs' REST fallback, sent in the same second, then finds that weight
        spent and keeps to the rest, instead of starving the cold start that would end the
        fallback. Nothing is prepaid while the exchange said to wait."""
        if self._shared is not None:
            until, banned = self._shared.read()
            self.block_until(until, banned=banned, share=False)
        with self._lock:
            now = self._clock()
            minute = int(now // 60)
            if minute != self._window:
                self._window, self._used = minute, 0
            if now < self._blocked_until or weight <= 0:
                return 0
            if self._ledger is not None:
                granted, seen = self._ledger.reserve(minute, weight, ceiling, floor=self._used, partial=True)
                if seen is not None:
                    self._used = seen + granted
                else:
                    granted = None
            else:
                granted = None
            if granted is None:  # counting alone
                granted = max(0, min(weight, ceiling - self._used))
                self._used += granted
            left = self._prepaid[1] if self._prepaid[0] == minute else 0
            self._prepaid = (minute, left + granted)
            return granted

    def close(self) -> None:
        """Release the ledger's file (it is opened again if the gate is used again)."""
        with self._lock:
            if self._ledger is not None:
                self._ledger.close()

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
            elif not self._reserve(minute, weight):
                wait_until, reason = (minute + 1) * 60.0, f"weight budget {self.budget}/min spent"
            else:
                return None
            blocked_by = self._blocked_by
        if deadline is not None and wait_until > deadline:
            until = datetime.fromtimestamp(wait_until, UTC)
            message = f"{reason}: no request to Binance before {until:%H:%M:%S} UTC"
            if blocked_by is BannedError and reason.startswith("exchange"):
                raise BannedError(message, retry_after=wait_until - now, until=until, symbol=symbol)
            raise RateLimitedError(message, retry_after=wait_until - now, symbol=symbol)
        return max(0.0, wait_until - now)

    def _reserve(self, minute: int, weight: int) -> bool:
        """With `self._lock` held: reserve `weight` in `minute` if the count stays within the
        budget (the response header corrects the count afterwards)."""
        if self._prepaid[0] == minute and self._prepaid[1] >= weight:
            self._prepaid = (minute, self._prepaid[1] - weight)  # counted when it was prepaid
            return True
        if self._ledger is not None:
            granted, seen = self._ledger.reserve(minute, weight, self.budget, floor=self._used)
            if seen is not None:
                self._used = seen + granted
                return granted == weight
        if self._used + weight > self.budget:
            return False
        self._used += weight
        return True

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
            if self._ledger is not None:
                self._ledger.raise_to(minute, used)

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
