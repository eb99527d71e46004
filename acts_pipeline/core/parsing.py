"""Parsers of Binance Spot REST bodies into `acts_pipeline.core.models` values.

Binance sends prices and quantities as decimal strings; they become float64 here, once. Each
parser validates what it reads and raises `MalformedResponseError` naming the symbol and the
field, so a bad body is rejected before anything is stored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np

from acts_pipeline.core.errors import MalformedResponseError
from acts_pipeline.core.models import Kline, OrderBook, SymbolInfo


def _levels(body: Mapping[str, Any], side: str, symbol: str) -> np.ndarray:
    if side not in body:
        raise MalformedResponseError(f"depth response for {symbol} has no '{side}'", symbol=symbol)
    raw = body[side]
    if not isinstance(raw, list):
        raise MalformedResponseError(f"depth response for {symbol}: '{side}' is not a list", symbol=symbol)
    if not raw:
        return np.empty((0, 2), dtype=np.float64)
    try:
        levels = np.array(raw, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise MalformedResponseError(
            f"depth response for {symbol}: '{side}' holds a level that is not [price, qty] numbers ({exc})",
            symbol=symbol,
        ) from None
    if levels.ndim != 2 or levels.shape[1] != 2:
        raise MalformedResponseError(
            f"depth response for {symbol}: '{side}' levels are not [price, qty] pairs", symbol=symbol
        )
    if not np.isfinite(levels).all():
        # numpy reads null as NaN and accepts "NaN" and "inf": none is a price or a quantity
        raise MalformedResponseError(
            f"depth response for {symbol}: '{side}' has a price or quantity that is not a finite number",
            symbol=symbol,
        )
    if (levels[:, 0] <= 0).any() or (levels[:, 1] < 0).any():
        raise MalformedResponseError(
            f"depth response for {symbol}: '{side}' has a non-positive price or negative quantity",
            symbol=symbol,
        )
    return levels


def parse_depth(body: Any, symbol: str) -> OrderBook:
    """Parse a `GET /api/v3/depth` body.

    A real one (NKNUSDT, 2021-10-12, first levels)::

        {"lastUpdateId": 499869752,
         "bids": [["0.35210000", "672.00000000"], ["0.35200000", "1144.00000000"], ...],
         "asks": [["0.35250000", "3959.00000000"], ["0.35260000", "3199.00000000"], ...]}

    Bids must fall and asks rise strictly; a side may be empty (a thin market), but a book whose
    best bid is at or above its best ask is rejected: Binance never serves a crossed book, so one
    is a corrupt response, not data.
    """
    if not isinstance(body, Mapping):
        raise MalformedResponseError(f"depth response for {symbol} is not a JSON object", symbol=symbol)
    last_update_id = body.get("lastUpdateId")
    if not isinstance(last_update_id, int) or isinstance(last_update_id, bool):
        raise MalformedResponseError(
            f"depth response for {symbol} has no integer 'lastUpdateId'", symbol=symbol
        )
    bids = _levels(body, "bids", symbol)
    asks = _levels(body, "asks", symbol)
    # Compared directly rather than through np.diff: for the finite prices left here, a - b < 0
    # exactly when a < b (IEEE subtraction keeps the sign, and underflows gradually).
    bid_prices, ask_prices = bids[:, 0], asks[:, 0]
    if len(bids) > 1 and not (bid_prices[1:] < bid_prices[:-1]).all():
        raise MalformedResponseError(f"depth response for {symbol}: bid prices do not fall", symbol=symbol)
    if len(asks) > 1 and not (ask_prices[1:] > ask_prices[:-1]).all():
        raise MalformedResponseError(f"depth response for {symbol}: ask prices do not rise", symbol=symbol)
    book = OrderBook(symbol=symbol, last_update_id=last_update_id, bids=bids, asks=asks)
    if book.crossed:
        raise MalformedResponseError(
            f"depth response for {symbol} is crossed: best bid {bids[0, 0]} >= best ask {asks[0, 0]}",
            symbol=symbol,
        )
    return book


def ms_to_datetime(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def datetime_to_ms(moment: datetime) -> int:
    return int(round(moment.timestamp() * 1000))


def parse_klines(body: Any, symbol: str) -> list[Kline]:
    """Parse a `GET /api/v3/klines?interval=1m` body: one array per candle.

    The rows carry the fields of a real NKNUSDT 1-minute candle recorded on 2021-10-12 (from the
    kline stream message `{"t": 1633998480000, "o": "0.35270000", "h": "0.35280000", ...}`,
    still open when recorded), in REST form::

        [1633998480000, "0.35270000", "0.35280000", "0.35220000", "0.35280000",
         "25877.00000000", 1633998539999, "9116.04600000", 30,
         "58.00000000", "20.46240000", "0"]

    fields: open time (ms), open, high, low, close, volume, close time, quote volume, trades,
    taker buy base volume, taker buy quote volume, ignore.
    """
    if not isinstance(body, list):
        raise MalformedResponseError(f"klines response for {symbol} is not a JSON list", symbol=symbol)
    klines = []
    for row in body:
        if not isinstance(row, Sequence) or len(row) < 11:
            raise MalformedResponseError(f"klines response for {symbol} has a short row: {row!r}", symbol=symbol)
        try:
            kline = Kline(
                symbol=symbol,
                minute=ms_to_datetime(int(row[0])),
                open=float(row[1]),
                high=float(row[2]),
                low=float(row[3]),
                close=float(row[4]),
                volume=float(row[5]),
                quote_volume=float(row[7]),
                trades=int(row[8]),
                taker_buy_base_volume=float(row[9]),
                taker_buy_quote_volume=float(row[10]),
            )
        except (TypeError, ValueError) as exc:
            raise MalformedResponseError(
                f"klines response for {symbol} has a non-numeric field ({exc})", symbol=symbol
            ) from None
        if kline.low > min(kline.open, kline.close) or kline.high < max(kline.open, kline.close):
            raise MalformedResponseError(
                f"klines response for {symbol} at {kline.minute:%Y-%m-%d %H:%M}: low/high do not bound open/close",
                symbol=symbol,
            )
        klines.append(kline)
    return klines


def parse_exchange_info(body: Any) -> dict[str, SymbolInfo]:
    """Parse a `GET /api/v3/exchangeInfo` body into symbol name -> `SymbolInfo`.

    One real entry (trimmed)::

        {"symbol": "ETHBTC", "status": "TRADING", "baseAsset": "ETH", "quoteAsset": "BTC", ...}
    """
    if not isinstance(body, Mapping) or not isinstance(body.get("symbols"), list):
        raise MalformedResponseError("exchangeInfo response has no 'symbols' list")
    symbols = {}
    for entry in body["symbols"]:
        try:
            info = SymbolInfo(
                symbol=entry["symbol"],
                status=entry["status"],
                base_asset=entry["baseAsset"],
                quote_asset=entry["quoteAsset"],
            )
        except (KeyError, TypeError):
            raise MalformedResponseError(f"exchangeInfo has a malformed symbol entry: {entry!r:.200}") from None
        symbols[info.symbol] = info
    return symbols
