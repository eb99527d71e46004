"""Parsers of Binance Spot REST bodies and websocket events into `acts_pipeline.core.models` values.

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
from acts_pipeline.core.models import DepthUpdate, Kline, OrderBook, SymbolInfo


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


_INF = float("inf")


def _update_levels(data: Mapping[str, Any], key: str, symbol: str) -> tuple[tuple[float, float], ...]:
    side = "bids" if key == "b" else "asks"
    raw = data.get(key)
    if type(raw) is not list:
        raise MalformedResponseError(
            f"depthUpdate for {symbol}: '{key}' ({side}) is missing or not a list", symbol=symbol
        )
    try:
        # The hot loop of the recorder (one call per side per message): a comprehension of two
        # float() calls; unpacking refuses a level that is not a pair, float() a non-number.
        levels = tuple([(float(price), float(qty)) for price, qty in raw])
    except (TypeError, ValueError) as exc:
        raise MalformedResponseError(
            f"depthUpdate for {symbol}: '{key}' ({side}) holds a level that is not a [price, qty] "
            f"pair of numbers ({exc})",
            symbol=symbol,
        ) from None
    for price, qty in levels:
        # NaN fails both comparisons; float() reads "NaN" and "inf", neither is a price or a quantity
        if not (0.0 < price < _INF and 0.0 <= qty < _INF):
            raise MalformedResponseError(
                f"depthUpdate for {symbol}: '{key}' ({side}) has level [{price}, {qty}]: the price "
                "must be positive and the quantity non-negative, both finite",
                symbol=symbol,
            )
    return levels


def _update_id(data: Mapping[str, Any], key: str, symbol: str) -> int:
    value = data.get(key)
    if type(value) is not int or value < 0:
        raise MalformedResponseError(
            f"depthUpdate for {symbol} has no non-negative integer '{key}' (got {value!r:.40})", symbol=symbol
        )
    return value


def parse_depth_update(data: Any, *, expected_symbol: str | None = None) -> DepthUpdate:
    """Parse the `data` of one diff-depth stream event (`<symbol>@depth@100ms`).

    A real one (NKNUSDT, 2021-10-12, the second NKNUSDT event of the capture)::

        {"e": "depthUpdate", "E": 1633998512568, "s": "NKNUSDT", "U": 499869753, "u": 499869754,
         "b": [["0.35170000", "4265.00000000"]], "a": [["0.35290000", "10968.00000000"]]}

    `E` is the event time (ms), `U` and `u` the first and final update IDs the event covers, `b`
    and `a` the changed bid and ask levels with their new absolute quantities ("0.00000000"
    deletes a level). `U` > `u`, a missing or non-integer field, a level that is not two finite
    numbers, a non-positive price or a negative quantity are refused with `MalformedResponseError`
    naming the symbol and the field. `expected_symbol` (the symbol of the stream the event came
    on) must then equal `s`.
    """
    if not isinstance(data, Mapping):
        raise MalformedResponseError(
            f"depthUpdate for {expected_symbol or 'an unknown symbol'} is not a JSON object",
            symbol=expected_symbol,
        )
    symbol = data.get("s")
    if type(symbol) is not str or not symbol:
        raise MalformedResponseError(
            f"depthUpdate for {expected_symbol or 'an unknown symbol'} has no symbol 's'", symbol=expected_symbol
        )
    if expected_symbol is not None and symbol != expected_symbol:
        raise MalformedResponseError(
            f"depthUpdate on the stream of {expected_symbol} names another symbol in 's': {symbol!r}",
            symbol=expected_symbol,
        )
    event_type = data.get("e")
    if event_type != "depthUpdate":
        raise MalformedResponseError(
            f"event for {symbol} has 'e' {event_type!r}, not 'depthUpdate'", symbol=symbol
        )
    event_time = _update_id(data, "E", symbol)
    first = _update_id(data, "U", symbol)
    final = _update_id(data, "u", symbol)
    if first > final:
        raise MalformedResponseError(
            f"depthUpdate for {symbol} has first update ID 'U' {first} > final update ID 'u' {final}",
            symbol=symbol,
        )
    return DepthUpdate(
        symbol=symbol,
        event_time_ms=event_time,
        first_update_id=first,
        final_update_id=final,
        bids=_update_levels(data, "b", symbol),
        asks=_update_levels(data, "a", symbol),
    )


def split_combined_stream_message(message: Any) -> tuple[str, Any]:
    """The stream name and the payload of one combined-stream message (`/stream?streams=...`).

    A real one (the first message of the capture, abridged)::

        {"stream": "nknusdt@depth@100ms",
         "data": {"e": "depthUpdate", "E": 1633998512068, "s": "NKNUSDT", "U": 499869750, ...}}

    Anything else (a `SUBSCRIBE` reply such as `{"result": null, "id": 1}`, a non-object) is
    refused with `MalformedResponseError`: the caller tells those apart before it parses events.
    """
    if not isinstance(message, Mapping):
        raise MalformedResponseError("combined-stream message is not a JSON object")
    stream, data = message.get("stream"), message.get("data")
    if type(stream) is not str or data is None:
        raise MalformedResponseError(
            f"combined-stream message has no 'stream' name and 'data' (keys: {sorted(message)[:5]})"
        )
    return stream, data


def parse_depth_stream_message(message: Any) -> DepthUpdate:
    """Parse one combined-stream message of a diff-depth stream into a `DepthUpdate`.

    The real first message of the capture::

        {"stream": "nknusdt@depth@100ms",
         "data": {"e": "depthUpdate", "E": 1633998512068, "s": "NKNUSDT", "U": 499869750,
                  "u": 499869752, "b": [["0.35130000", "6195.00000000"],
                  ["0.34750000", "5548.00000000"], ["0.34640000", "6222.00000000"]], "a": []}}

    The stream must be `<symbol>@depth` or `<symbol>@depth@<speed>` (stream names are lower case)
    and its symbol the event's `s`; see `parse_depth_update` for the event itself.
    """
    stream, data = split_combined_stream_message(message)
    name, _, kind = stream.partition("@")
    if not (kind == "depth" or kind.startswith("depth@")) or not name:
        raise MalformedResponseError(f"combined-stream message from {stream!r}, not a diff-depth stream")
    return parse_depth_update(data, expected_symbol=name.upper())
