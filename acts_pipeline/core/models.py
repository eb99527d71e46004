"""The shapes of ACTS market data, as plain values.

Nothing here knows Dagster, MongoDB or HTTP: these are what the exchange client returns, what
the feature math reads and what the storage layer writes. Prices and quantities are floats:
Binance sends them as decimal strings and the exchange client converts them once, at its edge.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np


def _as_levels(levels: np.ndarray | list) -> np.ndarray:
    array = np.asarray(levels, dtype=np.float64)
    if array.size == 0:
        return np.empty((0, 2), dtype=np.float64)
    if array.ndim != 2 or array.shape[1] != 2:
        raise ValueError(f"book levels must be [price, quantity] pairs, got shape {array.shape}")
    return array


@dataclass(frozen=True)
class OrderBook:
    """One side-by-side view of a symbol's book as `GET /api/v3/depth` returned it.

    `bids` and `asks` are float64 arrays of shape (levels, 2), columns price and quantity, best
    level first: bid prices fall, ask prices rise. Either side may be empty (shape (0, 2)).
    """

    symbol: str
    last_update_id: int
    bids: np.ndarray
    asks: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "bids", _as_levels(self.bids))
        object.__setattr__(self, "asks", _as_levels(self.asks))

    @property
    def crossed(self) -> bool:
        """True when the best bid is at or above the best ask (both sides non-empty)."""
        return bool(len(self.bids) and len(self.asks) and self.bids[0, 0] >= self.asks[0, 0])


@dataclass(frozen=True)
class OrderBookSnapshot:
    """A book fetched for one (minute, symbol) partition.

    `minute` is the start of the window `[minute, minute + 60 s)`; the book is the one at its
    close. `requested_at` is when the request was sent and `captured_at` when the response
    arrived, both timezone-aware UTC: they are measured, never derived from `minute`. A stream
    book was never requested: both are when the recorder had it final in hand.
    """

    symbol: str
    minute: datetime
    requested_at: datetime
    captured_at: datetime
    depth_limit: int
    book: OrderBook = field(repr=False)
    #: "rest": fetched by `GET /api/v3/depth` after the close; "stream": the stream recorder's
    #: book at the close (every diff event with E at or before it applied, none after).
    source: str = "rest"
    #: For a stream book, E of the last diff event applied (UTC); None for a REST book.
    event_time: datetime | None = None

    @property
    def last_update_id(self) -> int:
        return self.book.last_update_id

    @property
    def bids(self) -> np.ndarray:
        return self.book.bids

    @property
    def asks(self) -> np.ndarray:
        return self.book.asks


@dataclass(frozen=True)
class Kline:
    """One closed 1-minute candle of `GET /api/v3/klines`; `minute` is its open time (UTC)."""

    symbol: str
    minute: datetime
    open: float
    high: float
    low: float
    close: float
    volume: float
    quote_volume: float
    trades: int
    taker_buy_base_volume: float
    taker_buy_quote_volume: float


@dataclass(frozen=True)
class SymbolInfo:
    """A symbol as `GET /api/v3/exchangeInfo` lists it."""

    symbol: str
    status: str
    base_asset: str
    quote_asset: str

    @property
    def trading(self) -> bool:
        return self.status == "TRADING"


@dataclass(frozen=True, slots=True)
class DepthUpdate:
    """One event of Binance's diff-depth stream (`<symbol>@depth@100ms`, event type `depthUpdate`).

    It carries the book's changes for the update IDs `first_update_id` (`U`) to `final_update_id`
    (`u`), both included, as absolute quantities per price (quantity 0.0 deletes the level), and
    the event time `E` in ms. `bids` and `asks` are tuples of `(price, quantity)` float pairs in
    the order Binance sent them: kept as plain tuples, not numpy arrays, because an event holds a
    handful of levels and is applied one level at a time into a dict (an array costs more to
    build than the event is worth).
    """

    symbol: str
    event_time_ms: int
    first_update_id: int
    final_update_id: int
    bids: tuple[tuple[float, float], ...]
    asks: tuple[tuple[float, float], ...]
