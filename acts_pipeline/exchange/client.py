"""`ExchangeClient`: Binance Spot market data (order books, klines, exchangeInfo), parsed.

Plain Python (the CLI uses it too; `BinanceExchange` is the Dagster resource that builds one).
Each method is a coroutine on the client's `Transport`, run for the synchronous caller through
its bridge: the gate, the deadline, the typed errors and the retry policy are the transport's.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from acts_pipeline import settings
from acts_pipeline.core.errors import ExchangeError
from acts_pipeline.exchange.rate_limits import (
    DEFAULT_WEIGHT_LIMIT,
    EXCHANGE_INFO_WEIGHT,
    KLINES_PER_REQUEST,
    KLINES_WEIGHT,
    SharedBlock,
    SharedWeight,
    WeightGate,
    depth_weight,
)
from acts_pipeline.exchange.transport import DEFAULT_MAX_IN_FLIGHT, Transport
from acts_pipeline.core.models import Kline, OrderBook, SymbolInfo
from acts_pipeline.core.parsing import datetime_to_ms, parse_depth, parse_exchange_info, parse_klines


@dataclass(frozen=True)
class TimedBook:
    """A parsed book with when its request left (`requested_at`) and its response arrived
    (`captured_at`): the honest timestamps of the attempt that succeeded."""

    book: OrderBook
    requested_at: datetime
    captured_at: datetime
    attempts: int


class ExchangeClient:
    """Binance Spot market data over REST, safe to use from many threads.

    `order_books` fetches many books at once (at most `max_workers` requests in flight, over one
    connection pool); `klines` and `exchange_info` go through the same transport. Call `close()`
    when done: it closes the connections and stops the transport's loop thread (a client used
    again afterwards opens new ones).
    """

    def __init__(self, api_url: str, *, depth_limit: int = settings.DEFAULT_DEPTH_LIMIT,
                 timeout_seconds: float = 5.0, max_workers: int = DEFAULT_MAX_IN_FLIGHT,
                 weight_limit: int = DEFAULT_WEIGHT_LIMIT, weight_budget_fraction: float = 0.8,
                 clock: Callable[[], float] = time.time, shared_block_path: Path | None = None,
                 shared_weight_path: Path | None = None):
        self.gate = WeightGate(weight_limit, weight_budget_fraction, clock=clock,
                               shared=SharedBlock(shared_block_path) if shared_block_path else None,
                               ledger=SharedWeight(shared_weight_path) if shared_weight_path else None)
        self.transport = Transport(api_url, gate=self.gate, timeout_seconds=timeout_seconds,
                                   max_in_flight=max_workers, clock=clock)
        self.api_url = self.transport.api_url
        self.depth_limit = depth_limit
        #: The most requests in flight at once.
        self.max_workers = max_workers

    @property
    def timeout_seconds(self) -> float:
        return self.transport.timeout_seconds

    def close(self) -> None:
        self.transport.close()
        self.gate.close()

    # -- order books ---------------------------------------------------------------------------

    def order_books(self, symbols: Iterable[str], *, deadline: float | None = None,
                    max_attempts: int = 6) -> dict[str, TimedBook | ExchangeError]:
        """The current books of `symbols`, `depth_limit` levels a side, fetched concurrently.
        Each symbol's outcome is its own: a book, or the error that ended its retries (until
        `deadline`, at most `max_attempts` requests)."""
        symbols = list(symbols)
        if not symbols:
            return {}
        results = self.transport.run(self._order_books(symbols, deadline, max_attempts))
        return dict(zip(symbols, results, strict=True))

    async def _order_books(self, symbols: list[str], deadline: float | None,
                           max_attempts: int) -> list[TimedBook | ExchangeError]:
        async def one(symbol: str) -> TimedBook | ExchangeError:
            try:
                return await self._order_book(symbol, deadline=deadline, max_attempts=max_attempts)
            except ExchangeError as exc:
                return exc

        tasks = [asyncio.create_task(one(symbol), name=f"order book {symbol}") for symbol in symbols]
        try:
            return await asyncio.gather(*tasks)
        finally:
            for task in tasks:  # only on an unexpected error (a bug) are any left running
                task.cancel()

    async def order_book_async(self, symbol: str, *, limit: int | None = None, deadline: float | None = None,
                               max_attempts: int = 6) -> TimedBook:
        """One book, `limit` levels a side (default `depth_limit`), for a coroutine already on the
        transport's loop (the stream recorder's snapshots); an `ExchangeError` after the retries."""
        return await self._order_book(symbol, deadline=deadline, max_attempts=max_attempts, limit=limit)

    async def _order_book(self, symbol: str, *, deadline: float | None, max_attempts: int,
                          limit: int | None = None) -> TimedBook:
        what = f"GET /api/v3/depth {symbol}"
        limit = limit or self.depth_limit
        params = {"symbol": symbol, "limit": limit}
        weight = depth_weight(limit)

        async def attempt() -> TimedBook:
            response = await self.transport.get("depth", params, weight=weight, what=what, symbol=symbol,
                                                deadline=deadline)
            # Parsed after `captured_at` was taken; a malformed or crossed book is retried.
            return TimedBook(parse_depth(response.body, symbol), response.requested_at, response.captured_at,
                             attempts=0)

        book, attempts = await self.transport.retrying(attempt, deadline=deadline, max_attempts=max_attempts)
        return TimedBook(book.book, book.requested_at, book.captured_at, attempts)

    # -- klines and exchangeInfo ---------------------------------------------------------------

    def klines(self, symbol: str, start: datetime, end: datetime, *, max_attempts: int = 4) -> list[Kline]:
        """Closed and open 1-minute klines of `symbol` whose open time is in [start, end),
        paging `KLINES_PER_REQUEST` minutes a request, one after the other."""
        if start >= end:
            return []
        return self.transport.run(self._klines(symbol, start, end, max_attempts))

    async def _klines(self, symbol: str, start: datetime, end: datetime, max_attempts: int) -> list[Kline]:
        klines: list[Kline] = []
        cursor = start
        while cursor < end:
            page_end = min(end, cursor + timedelta(minutes=KLINES_PER_REQUEST))
            what = f"GET /api/v3/klines {symbol} {cursor:%Y-%m-%d %H:%M}..{page_end:%H:%M}"
            params = dict(symbol=symbol, interval="1m", startTime=datetime_to_ms(cursor),
                          endTime=datetime_to_ms(page_end) - 1, limit=KLINES_PER_REQUEST)

            async def attempt(params=params, what=what) -> list[Kline]:
                response = await self.transport.get("klines", params, weight=KLINES_WEIGHT, what=what,
                                                    symbol=symbol)
                return parse_klines(response.body, symbol)

            page, _ = await self.transport.retrying(attempt, deadline=None, max_attempts=max_attempts)
            klines.extend(k for k in page if cursor <= k.minute < page_end)
            cursor = page_end
        return klines

    def exchange_info(self) -> dict[str, SymbolInfo]:
        """Every symbol the exchange lists, with its trading status."""
        return self.transport.run(self._exchange_info())

    async def _exchange_info(self) -> dict[str, SymbolInfo]:
        async def attempt() -> dict[str, SymbolInfo]:
            response = await self.transport.get("exchangeInfo", weight=EXCHANGE_INFO_WEIGHT,
                                                what="GET /api/v3/exchangeInfo")
            return parse_exchange_info(response.body)

        info, _ = await self.transport.retrying(attempt, deadline=None, max_attempts=3)
        return info
