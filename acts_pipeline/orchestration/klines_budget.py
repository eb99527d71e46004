"""How klines share Binance's request weight with the minute's order books.

Binance counts request weight per IP and wall-clock minute (6,000). The books are time-critical:
every symbol's book is fetched in the first second after the close, 5 weight each at up to 100
levels (2,500 at 500 symbols). A kline is not: a closed candle can be fetched minutes later
unchanged (2 weight a request, up to 1,000 minutes). So:

- While books plus klines fit in half the limit (`KLINES_IN_MINUTE_RUN_BUDGET`; up to 428
  symbols at 100 levels), each minute's run also fetches that minute's kline: one run a minute.
- Beyond that, the minute run fetches only books, and `klines_catch_up_sensor` collects the
  klines of the last `KLINES_BATCH_MINUTES` minutes of every symbol in one run, one request per
  symbol: 2 weight per symbol per batch instead of per minute.
- Klines requests always pace themselves (`pace_klines_request`): none in the first seconds of a
  minute (the books' burst), and none once the minute's weight, as the exchange reports it in
  `X-MBX-USED-WEIGHT-1M` (books included), reaches `KLINES_WEIGHT_BUDGET`; they wait for the next
  minute instead. A large catch-up (a day of downtime at 500 symbols: 1,000 requests) is spread
  over a few minutes rather than pushing the minute's weight towards the limit.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from acts_pipeline.exchange import KLINES_WEIGHT

#: Klines are fetched in the minute run while (book weight + kline weight) x symbols fits here.
KLINES_IN_MINUTE_RUN_BUDGET = 3000
#: Otherwise they are collected in batches of this many minutes.
KLINES_BATCH_MINUTES = 5
#: A klines request waits for the next minute rather than take the minute's weight past this.
KLINES_WEIGHT_BUDGET = 2880
#: ... and is not sent this many seconds after a minute boundary, while the books are fetched.
BOOKS_BURST_SECONDS = 5.0


def klines_in_minute_run(symbols: int, book_weight: int) -> bool:
    """Whether the minute run fetches klines too, for `symbols` books of `book_weight` each."""
    return symbols * (book_weight + KLINES_WEIGHT) <= KLINES_IN_MINUTE_RUN_BUDGET


class UsedWeight(Protocol):
    @property
    def used_weight(self) -> int: ...


def pace_klines_request(gate: UsedWeight, *, weight: int = KLINES_WEIGHT, budget: int = KLINES_WEIGHT_BUDGET,
                        burst_seconds: float = BOOKS_BURST_SECONDS, clock: Callable[[], float] = time.time,
                        sleep: Callable[[float], None] = time.sleep) -> float:
    """Wait until a klines request of `weight` may be sent; returns the seconds waited.

    `gate.used_weight` is this minute's weight as the exchange last reported it to this client
    (0 at a new minute until the first response). The books' burst is over `burst_seconds`
    after the boundary, so the first klines response of a minute already counts it."""
    waited = 0.0
    while True:
        now = clock()
        into_minute = now % 60
        if into_minute < burst_seconds:
            pause = burst_seconds - into_minute
        elif gate.used_weight + weight > budget:
            pause = 60 - into_minute + burst_seconds
        else:
            return waited
        sleep(pause)
        waited += pause
