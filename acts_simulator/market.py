"""The simulated Binance Spot market: deterministic prices, order books and 1-minute candles.

Pure: no HTTP and no I/O once the captures are loaded (the books are state, advanced with time). `app.py` turns requests into calls on
`Market` and sends back what they return, which is already in Binance's wire shape (prices and
quantities as decimal strings with the symbol's precision).

How a symbol's market is made
-----------------------------
* Symbols and their filters are the captured `exchangeInfo` (1695 symbols, 1262 TRADING). Only
  TRADING symbols have a market; the others (status BREAK) answer like unknown ones, -1121
  "Invalid symbol.", which is what Binance answers for a delisted symbol.
* Base price: the captured mid for the four symbols with a captured book (NKNUSDT 0.3523, BLZETH,
  LRCBTC, RUNEEUR). Otherwise the ratio of rough USD values of the two assets: anchors for the
  quote currencies (BTC 57000, ETH 3500, EUR 1.16, ... as in October 2021, when the captures were
  made), the captured books for NKN, BLZ, LRC and RUNE, and for any other asset a value drawn from
  a hash of its name (so ADAUSDT and ADABTC agree). The result is kept inside the symbol's
  PRICE_FILTER with room for at least 1000 ticks below it, so a rescaled book stays deep.
* Price path: log price = base + a stationary hourly AR(1) component (hourly knots, 4 % standard
  deviation) + a Brownian bridge of 1-minute steps (8 bp each) between consecutive knots. Every
  random number is a hash of (seed, symbol, stream, index), so the price at any minute is computed
  directly, without replaying history: the same (symbol, minute, seed) always gives the same value.
* Book: ONE evolving state per symbol (`book.py`), changed only by sparse diff events, which the
  websocket stream sends, REST `depth` slices, and `true_book` rebuilds for any past instant, so
  that `lastUpdateId`, `U` and `u` agree exactly as on Binance. It is born from one of the four
  captured books (the symbol's own, else one picked by a hash of its name), prices rescaled so
  that its mid sits at the price path and snapped outward to the tick (bids down, asks up; levels
  that land on the same tick are merged), quantities rescaled to keep the captured USD notional
  and jittered. Birth: the market's epoch (its construction minute, or `epoch=`), or, for a book
  first asked for more than a minute after it, the minute it is asked in (and again for a book
  not advanced for `catch_up_seconds`): a book is never replayed through hours nobody watched. A running
  server advances every born book each 100 ms, so its books are continuous from their birth.
* Candle of minute m: open is the price at m, close the price at m+1 (so a candle opens at the
  previous close), high and low extend past them by a drawn excursion, volume and trades are drawn
  around a per-symbol USD turnover. The in-progress minute is the same candle cut at "now".
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
import time
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import cache, cached_property
from importlib import resources
from typing import Any

import numpy as np

from acts_simulator.book import (
    CAPTURED_RATES,
    FULL_EVERY_MINUTES,
    MAX_LEVELS,
    MIN_RATE,
    RATE_RANGE,
    SIDE_SLACK,
    SLOT_MS,
    BookState,
    Checkpoint,
    DepthEvent,
    SymbolModel,
    SymbolTrack,
    diff_arrays,
    full_copy,
    state_at_checkpoint,
)

Clock = Callable[[], float]

MINUTE_MS = 60_000
#: Binance's cap on `GET /api/v3/klines?limit=`.
MAX_KLINES_LIMIT = 1000
DEFAULT_KLINES_LIMIT = 500
#: Binance's cap on `GET /api/v3/depth?limit=` (larger limits are truncated to it).
MAX_DEPTH_LIMIT = 5000
DEFAULT_DEPTH_LIMIT = 100
#: The simulated history starts when Binance opened (2017-07-14): no candle is older than this.
LISTING_MINUTE = 1_500_000_000_000 // MINUTE_MS
#: When the captures were taken (captures.json); update ids grow from here.
CAPTURED_AT = 1_633_998_511.0

# Rough USD values in October 2021 of the assets that quote symbols, so that cross prices are
# plausible (BTCUSDT near 57000, ETHBTC near 0.06). Assets not listed here and not in a captured
# book get a hashed value between 0.05 and 50 USD.
_ANCHOR_USD = {
    "USDT": 1.0, "BUSD": 1.0, "USDC": 1.0, "TUSD": 1.0, "DAI": 1.0, "USDP": 1.0, "PAX": 1.0,
    "VAI": 1.0, "UST": 1.0, "SUSD": 1.0,
    "BTC": 57_000.0, "ETH": 3_500.0, "BNB": 420.0, "TRX": 0.095, "XRP": 1.1, "DOGE": 0.23,
    "EUR": 1.16, "GBP": 1.36, "AUD": 0.73, "TRY": 0.11, "BRL": 0.18, "RUB": 0.0138,
    "UAH": 0.038, "NGN": 0.0024, "ZAR": 0.067, "BIDR": 0.00007, "IDRT": 0.00007, "BVND": 0.000044,
}

# The price path (see the module docstring).
MINUTE_VOLATILITY = 0.0008
HOURLY_PERSISTENCE = 0.97
STATIONARY_VOLATILITY = 0.04
_KNOT_MEMORY = 150  # hours of shocks summed per knot: 0.97**150 < 1 %, the rest is negligible
SLOT_VOLATILITY = 0.0003  # the 100 ms noise on top of the interpolated path
SLOTS_PER_SECOND = 10
QUANTITY_JITTER = 0.3
MIN_TICKS_PER_PRICE = 1000


#: How far back `true_book` reaches (checkpoints older than this are dropped).
DEFAULT_RETENTION_SECONDS = 30 * 60.0
#: A book not advanced for longer than this is born again rather than replayed (see `_advance`).
DEFAULT_CATCH_UP_SECONDS = 10 * 60.0
#: A book first asked for later than this after the epoch is born at that minute (see `_track`).
BIRTH_CATCH_UP_MS = 60_000


class BookUnavailable(LookupError):
    """A past book the simulator no longer has: before the book's birth or past the retention."""

    def __init__(self, symbol: str, at_ms: int, oldest_ms: int) -> None:
        super().__init__(f"{symbol} at {at_ms}: the oldest book kept is at {oldest_ms}")
        self.symbol, self.at_ms, self.oldest_ms = symbol, at_ms, oldest_ms


class InvalidSymbol(LookupError):
    """A symbol that is not in exchangeInfo, or not TRADING there (Binance error -1121)."""

    def __init__(self, symbol: str) -> None:
        super().__init__(symbol)
        self.symbol = symbol


# --------------------------------------------------------------------------------------------
# Counter-based random numbers: a pure function of (key, index), vectorised.

_U64 = np.uint64
_KEY_MULTIPLIER = _U64(0xD1B54A32D192ED03)
_SECOND_UNIFORM = 0x5A5A5A5A5A5A5A5A  # the key of u2 in Box-Muller is the stream's key XOR this


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser of uint64 arrays (arithmetic modulo 2**64: array operations wrap
    without a warning, only numpy's scalar arithmetic warns, hence the errstate)."""
    with np.errstate(over="ignore"):
        x = x + _U64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> _U64(30))) * _U64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> _U64(27))) * _U64(0x94D049BB133111EB)
        return x ^ (x >> _U64(31))


@cache
def _stream_key(seed: int, symbol: str, stream: str) -> int:
    digest = hashlib.blake2b(f"{seed}\0{symbol}\0{stream}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def _uniform_bits(keys: np.ndarray | int, index: np.ndarray | int) -> np.ndarray:
    """The 53-bit uniforms of `_uniforms` as floats in [0, 1), one per (key, index) pair; `keys`
    is one key or one per index (uint64)."""
    idx = np.atleast_1d(np.asarray(index, dtype=np.int64)).astype(_U64)
    keys = keys if isinstance(keys, np.ndarray) else _U64(keys)
    h = _splitmix64(idx * _KEY_MULTIPLIER ^ keys)  # arrays: wraps modulo 2**64 without a warning
    return (h >> _U64(11)).astype(np.float64) * 2.0**-53


def _uniforms(key: int, index: np.ndarray | int) -> np.ndarray:
    """Uniforms in [0, 1), one per index."""
    return _uniform_bits(key, index)


def _normals(key: int, index: np.ndarray | int) -> np.ndarray:
    """Standard normals, one per index (Box-Muller on two hashed uniforms)."""
    idx = np.atleast_1d(np.asarray(index, dtype=np.int64))
    return _normals_of_keys(np.asarray([key], dtype=_U64), idx.ravel()).reshape(idx.shape)


def _normals_of_keys(keys: np.ndarray, index: np.ndarray) -> np.ndarray:
    """`_normals` of many streams at once: element i is `_normals(keys[i], index[i])[0]`, or
    `_normals(keys[0], index[i])[0]` when `keys` has one element (uint64 keys, int64 indices).

    One hashing pass for both uniforms of Box-Muller: each element is computed exactly as
    `_normals` computes it (the same uint64 and float64 operations), only more at a time.
    """
    n = len(index)
    both = np.concatenate((index, index))
    pair_keys = np.concatenate((keys, keys ^ _U64(_SECOND_UNIFORM)))
    if len(keys) == 1:
        pair_keys = np.repeat(pair_keys, n)
    u = _uniform_bits(pair_keys, both)
    u1 = 1.0 - u[:n]  # in (0, 1]: log is finite
    u2 = u[n:]
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)


_MASK64 = 2**64 - 1


def _splitmix64_int(x: int) -> int:
    """`_splitmix64` of one value, in Python integers (the same arithmetic modulo 2**64)."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def _normal(key: int, index: int) -> np.float64:
    """`_normals(key, index)[0]`: the same number, without numpy's per-call cost for the hashing
    (exact integer arithmetic either way); the floating-point part is numpy's, as in `_normals`,
    on one-element arrays (numpy's log is not libm's: `math.log` can differ in the last bit)."""
    mixed = ((index & _MASK64) * 0xD1B54A32D192ED03) & _MASK64
    u1 = np.array([1.0 - (_splitmix64_int(mixed ^ key) >> 11) * 2.0**-53])
    u2 = np.array([(_splitmix64_int(mixed ^ key ^ _SECOND_UNIFORM) >> 11) * 2.0**-53])
    return (np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2))[0]


def _unit(seed: int, symbol: str, stream: str) -> float:
    """One uniform in [0, 1) per (seed, name, stream): per-symbol constants."""
    return float(_uniforms(_stream_key(seed, symbol, stream), 0)[0])


# --------------------------------------------------------------------------------------------
# Decimal formatting of integer multiples of a tick or step, exactly as Binance prints them.


def _decimal_strings(units: Sequence[int], unit: Decimal, decimals: int) -> list[str]:
    """`units * unit` as strings with `decimals` places: 35210 x 0.00001 -> "0.35210000"."""
    factor = unit.scaleb(decimals)
    if factor != factor.to_integral_value():
        quantum = Decimal(1).scaleb(-decimals)
        return [str((Decimal(u) * unit).quantize(quantum)) for u in units]
    factor_int, denominator = int(factor), 10**decimals
    if decimals == 0:
        return [str(u * factor_int) for u in units]
    return [f"{v // denominator}.{v % denominator:0{decimals}d}" for v in (u * factor_int for u in units)]


_INT64_MAX = 2**63 - 1


class _DecimalFormat:
    """`_decimal_strings` of one (unit, decimals) for int64 arrays of units, in bulk: numpy
    computes each value's integer and fraction parts (`v // 10**decimals`, `v % 10**decimals`,
    v = units x unit x 10**decimals) and one %-format prints them all, digit for digit what the
    per-value f-string prints. Units that do not fit (negative, or a product past int64) and
    units that are not a whole number of 10**-decimals go through `_decimal_strings` itself.
    """

    def __init__(self, unit: Decimal, decimals: int) -> None:
        self.unit, self.decimals = unit, decimals
        factor = unit.scaleb(decimals)
        exact = factor == factor.to_integral_value()
        self.factor = int(factor) if exact else 0
        self.denominator = 10**decimals
        self.vectorised = exact and 0 < self.factor <= _INT64_MAX and 0 <= decimals <= 18
        self.max_units = _INT64_MAX // self.factor if self.vectorised else -1
        #: The %-format of one value (its parts from `columns`).
        self.pattern = "%d" if decimals == 0 else f"%d.%0{decimals}d"

    def fits(self, units: np.ndarray) -> bool:
        if not self.vectorised:
            return False
        return units.size == 0 or (int(units.min()) >= 0 and int(units.max()) <= self.max_units)

    def columns(self, units: np.ndarray) -> tuple[np.ndarray, ...]:
        """The integers `pattern` prints, per unit (only for units that `fits`)."""
        values = units.astype(np.int64) * self.factor
        if self.decimals == 0:
            return (values,)
        return tuple(np.divmod(values, self.denominator))

    def strings(self, units: np.ndarray) -> list[str]:
        if not len(units):
            return []
        if not self.fits(units):
            return _decimal_strings(units.tolist(), self.unit, self.decimals)
        columns = self.columns(units)
        flat = columns[0].tolist() if len(columns) == 1 else np.stack(columns, axis=1).ravel().tolist()
        return (",".join([self.pattern] * len(units)) % tuple(flat)).split(",")


def _level_list(spec: SymbolSpec, levels: list[tuple[int, int]]) -> str:
    """(tick, steps) pairs as the JSON text inside a level list: `["0.35130000","6195.00000000"]`."""
    if not levels:
        return ""
    ticks, steps = zip(*levels)
    return ",".join([f'["{p}","{q}"]' for p, q in zip(spec.prices(ticks), spec.quantities(steps))])


def _copy_state(state: BookState, next_slot: int) -> BookState:
    return BookState(
        (array("q", state.keys[0]), array("q", state.keys[1])), (array("q", state.qtys[0]), array("q", state.qtys[1])),
        state.u, state.last_e, next_slot,
    )


def _float_string(value: float, decimals: int) -> str:
    return f"{value:.{decimals}f}"


# --------------------------------------------------------------------------------------------
# The captured data.


@dataclass(frozen=True)
class SymbolSpec:
    """What the simulator needs of one exchangeInfo entry."""

    symbol: str
    status: str
    base_asset: str
    quote_asset: str
    tick_size: Decimal
    min_price: Decimal
    max_price: Decimal
    step_size: Decimal
    price_decimals: int
    quantity_decimals: int

    @classmethod
    def from_exchange_info(cls, entry: dict[str, Any]) -> SymbolSpec:
        filters = {f["filterType"]: f for f in entry["filters"]}
        price, lot = filters["PRICE_FILTER"], filters["LOT_SIZE"]
        return cls(
            symbol=entry["symbol"],
            status=entry["status"],
            base_asset=entry["baseAsset"],
            quote_asset=entry["quoteAsset"],
            tick_size=Decimal(price["tickSize"]),
            min_price=Decimal(price["minPrice"]),
            max_price=Decimal(price["maxPrice"]),
            step_size=Decimal(lot["stepSize"]),
            price_decimals=int(entry["quotePrecision"]),
            quantity_decimals=int(entry["baseAssetPrecision"]),
        )

    @property
    def trading(self) -> bool:
        return self.status == "TRADING"

    def prices(self, ticks: Sequence[int]) -> list[str]:
        return _decimal_strings(ticks, self.tick_size, self.price_decimals)

    def quantities(self, steps: Sequence[int]) -> list[str]:
        return _decimal_strings(steps, self.step_size, self.quantity_decimals)

    @cached_property
    def _price_format(self) -> _DecimalFormat:
        return _DecimalFormat(self.tick_size, self.price_decimals)

    @cached_property
    def _quantity_format(self) -> _DecimalFormat:
        return _DecimalFormat(self.step_size, self.quantity_decimals)

    @cached_property
    def _level_pattern(self) -> str:
        return f'["{self._price_format.pattern}","{self._quantity_format.pattern}"]'

    def levels(self, ticks: np.ndarray, steps: np.ndarray) -> list[list[str]]:
        """Book levels as Binance prints them: `[["0.35210000", "672.00000000"], ...]`."""
        ticks, steps = np.asarray(ticks), np.asarray(steps)
        return [[p, q] for p, q in zip(self._price_format.strings(ticks), self._quantity_format.strings(steps))]

    def levels_json(self, ticks: np.ndarray, steps: np.ndarray) -> str:
        """`levels` as the JSON text inside its brackets, exactly as `json.dumps(levels,
        separators=(",", ":"))[1:-1]` writes it (the strings are ASCII digits and points, which
        JSON writes as they are): `["0.35210000","672.00000000"],["0.35200000","1144.00000000"]`.
        """
        ticks, steps = np.asarray(ticks), np.asarray(steps)
        count = min(len(ticks), len(steps))
        if count == 0:
            return ""
        prices, quantities = self._price_format, self._quantity_format
        if len(ticks) == len(steps) and prices.fits(ticks) and quantities.fits(steps):
            flat = np.stack((*prices.columns(ticks), *quantities.columns(steps)), axis=1).ravel().tolist()
            return ",".join([self._level_pattern] * count) % tuple(flat)
        return ",".join([f'["{p}","{q}"]' for p, q in self.levels(ticks, steps)])


@dataclass(frozen=True)
class BookTemplate:
    """A captured `GET /api/v3/depth?limit=1000` body as float arrays (price, quantity)."""

    symbol: str
    last_update_id: int
    bids: np.ndarray
    asks: np.ndarray

    @property
    def mid(self) -> float:
        return float(self.bids[0, 0] + self.asks[0, 0]) / 2.0

    @classmethod
    def from_depth(cls, symbol: str, body: dict[str, Any]) -> BookTemplate:
        return cls(
            symbol=symbol,
            last_update_id=int(body["lastUpdateId"]),
            bids=np.asarray(body["bids"], dtype=np.float64).reshape(-1, 2),
            asks=np.asarray(body["asks"], dtype=np.float64).reshape(-1, 2),
        )


@dataclass(frozen=True)
class Captures:
    """The real Binance captures shipped in `data/binance` (see its README.md)."""

    exchange_info: dict[str, Any]
    books: dict[str, BookTemplate]


@cache
def load_captures() -> Captures:
    """Read the packaged captures once per process (they are never modified)."""
    root = resources.files("acts_simulator") / "data" / "binance"
    exchange_info = json.loads((root / "exchange_info.json").read_text())
    books = {}
    for entry in json.loads((root / "captures.json").read_text()):
        if entry["file"].startswith("depth/"):
            symbol = entry["file"].removeprefix("depth/").removesuffix(".json")
            body = json.loads((root / "depth" / f"{symbol}.json").read_text())
            books[symbol] = BookTemplate.from_depth(symbol, body)
    return Captures(exchange_info=exchange_info, books=books)


# --------------------------------------------------------------------------------------------
# Pure helpers the HTTP layer and the tests share.


def kline_open_minutes(
    *, start_ms: int | None, end_ms: int | None, limit: int, now_ms: int
) -> range:
    """The minutes (as `openTime // 60000`) that `GET /api/v3/klines` returns, ascending.

    Like Binance: klines whose openTime lies in [startTime, endTime], at most `limit` (capped at
    1000) counted from startTime; without startTime, the last `limit` up to endTime (or up to the
    current, still open, minute). Never a minute after the current one, never before listing.
    """
    limit = max(1, min(limit, MAX_KLINES_LIMIT))
    last = now_ms // MINUTE_MS
    if end_ms is not None:
        last = min(last, end_ms // MINUTE_MS)
    if start_ms is not None:
        first = max(-(-start_ms // MINUTE_MS), LISTING_MINUTE)  # first openTime >= startTime
        last = min(last, first + limit - 1)
    else:
        first = max(last - limit + 1, LISTING_MINUTE)
    return range(first, last + 1) if first <= last else range(0)


def _snap(
    prices: np.ndarray, *, bid: bool, lowest: int, highest: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Snap scaled prices (in ticks, floats) to whole ticks and find the levels that collide.

    Bids round down and asks round up, so the spread only ever widens and a book that was
    uncrossed stays uncrossed. Levels outside [lowest, highest] ticks (PRICE_FILTER) are dropped.
    Returns (the kept levels' ticks, their indices in `prices`, where each run of equal ticks
    starts among the kept levels): a merged level's quantity is the sum over its run.
    """
    ticks = (np.floor(prices + 1e-9) if bid else np.ceil(prices - 1e-9)).astype(np.int64)
    kept = ((ticks >= lowest) & (ticks <= highest)).nonzero()[0]
    ticks = ticks[kept]
    if ticks.size == 0:
        return ticks, kept, kept
    starts = np.concatenate(([True], ticks[1:] != ticks[:-1])).nonzero()[0]
    return ticks, kept, starts


@dataclass(frozen=True)
class _BookConstants:
    """What a symbol's books need that does not change from one request to the next."""

    spec: SymbolSpec
    template: BookTemplate
    template_mid: float
    #: The template's mid in USD (its captured notional per unit of quantity).
    template_mid_usd: float
    quote_usd: float
    tick: float
    step: float
    lowest: int  # PRICE_FILTER in ticks
    highest: int
    side_keys: np.ndarray  # uint64: the "bid" and "ask" jitter streams
    update_rate: float  # book updates per second
    update_base: int


# --------------------------------------------------------------------------------------------


class Market:
    """Every TRADING symbol of the captured exchangeInfo, priced by a seeded model.

    `clock` returns Unix seconds (wall-clock time by default; tests pass a fixed one). The state
    is one evolving book per symbol asked for (`book.py`), and its checkpoints for the truth.

    The books' Python API (thread-safe, one lock):
        depth(symbol, limit, at=None) / depth_json(...)   REST: the book after every E <= now
        true_book(symbol, at_ms, limit)                   the same at any retained instant
        watch(symbol) / unwatch(symbol), drain()          a stream's events as they happen
        advance_all(to_ms)                                every born book to `to_ms` (the tick)
        stream_events(symbols, from_ms, to_ms)            the events of an interval, replayed
        event_json(event)                                 an event's payload, Binance's text
        event_offset_ms(symbol), event_rate(symbol)       when and how often a symbol's events come
    """

    def __init__(
        self,
        captures: Captures | None = None,
        *,
        seed: int = 0,
        clock: Clock = time.time,
        epoch: float | None = None,
        retention_seconds: float = DEFAULT_RETENTION_SECONDS,
        catch_up_seconds: float = DEFAULT_CATCH_UP_SECONDS,
    ):
        self.captures = captures or load_captures()
        self.seed = seed
        self.clock = clock
        self.specs = {
            entry["symbol"]: SymbolSpec.from_exchange_info(entry)
            for entry in self.captures.exchange_info["symbols"]
        }
        self._template_names = sorted(self.captures.books)
        self._asset_usd: dict[str, float] = dict(_ANCHOR_USD)
        for book in self.captures.books.values():
            spec = self.specs[book.symbol]
            self._asset_usd.setdefault(spec.base_asset, book.mid * self._usd(spec.quote_asset))
        self._base_prices: dict[str, float] = {}
        self._book_constants: dict[str, _BookConstants] = {}
        # symbol -> (hour, the log path of that hour at each minute start, as `log_walk` has it)
        self._hour_paths: dict[str, tuple[int, np.ndarray]] = {}
        self.epoch_ms = (int(clock() * 1000) if epoch is None else int(epoch * 1000)) // MINUTE_MS * MINUTE_MS
        self.retention_ms = int(retention_seconds * 1000)
        self.catch_up_ms = int(catch_up_seconds * 1000)
        self._tracks: dict[str, SymbolTrack] = {}
        self._models: dict[str, SymbolModel] = {}
        self._lock = threading.RLock()

    @classmethod
    def from_captures(cls, *, seed: int = 0, clock: Clock = time.time, **options: Any) -> Market:
        return cls(load_captures(), seed=seed, clock=clock, **options)

    # ---- symbols -----------------------------------------------------------------------------

    @cached_property
    def trading_symbols(self) -> list[str]:
        """TRADING symbols in exchangeInfo order."""
        return [s for s, spec in self.specs.items() if spec.trading]

    def spec(self, symbol: str) -> SymbolSpec:
        """The symbol's spec if it can be served, else `InvalidSymbol`."""
        spec = self.specs.get(symbol)
        if spec is None or not spec.trading:
            raise InvalidSymbol(symbol)
        return spec

    def _usd(self, asset: str) -> float:
        value = self._asset_usd.get(asset)
        if value is None:
            # Hashed by asset name only (not the seed): an asset is worth the same in every pair.
            value = 0.05 * 1000.0 ** _unit(0, asset, "usd")
            self._asset_usd[asset] = value
        return value

    def _template(self, symbol: str) -> BookTemplate:
        books = self.captures.books
        if symbol in books:
            return books[symbol]
        pick = int(_uniforms(_stream_key(0, symbol, "template"), 0)[0] * len(self._template_names))
        return books[self._template_names[pick]]

    def base_price(self, symbol: str) -> float:
        """The level the symbol's price wanders around (in its quote asset)."""
        price = self._base_prices.get(symbol)
        if price is None:
            price = self._base_prices[symbol] = self._compute_base_price(symbol)
        return price

    def _compute_base_price(self, symbol: str) -> float:
        spec = self.spec(symbol)
        if symbol in self.captures.books:
            return self.captures.books[symbol].mid
        price = self._usd(spec.base_asset) / self._usd(spec.quote_asset)
        # Keep a margin inside PRICE_FILTER so the walk (a few % either way) never leaves it.
        tick = float(spec.tick_size)
        low = max(float(spec.min_price) * 1.5, MIN_TICKS_PER_PRICE * tick)
        high = float(spec.max_price) / 1.5 if spec.max_price > 0 else math.inf
        if low > high:  # a narrow band (stablecoin and leveraged-token pairs): its middle
            return math.sqrt(float(spec.min_price) * float(spec.max_price))
        return min(max(price, low), high)

    # ---- the price path ----------------------------------------------------------------------

    def log_walk(self, symbol: str, minutes: np.ndarray | Sequence[int]) -> np.ndarray:
        """Log price relative to the base price at the start of each minute (minutes since epoch)."""
        minutes = np.asarray(minutes, dtype=np.int64)
        hours = minutes // 60
        h_lo, h_hi = int(hours.min()), int(hours.max())
        return self._log_paths(symbol, h_lo, h_hi)[hours - h_lo, minutes % 60]

    def _log_paths(self, symbol: str, h_lo: int, h_hi: int) -> np.ndarray:
        """`log_walk` at the 61 minute starts 0..60 of each hour h_lo..h_hi (one row per hour)."""
        # Knots for hours h_lo..h_hi+1: an AR(1) written as its moving average of hourly shocks.
        shocks = _normals(
            _stream_key(self.seed, symbol, "hour"), np.arange(h_lo - _KNOT_MEMORY + 1, h_hi + 2)
        )
        shock_scale = STATIONARY_VOLATILITY * math.sqrt(1 - HOURLY_PERSISTENCE**2)
        weights = HOURLY_PERSISTENCE ** np.arange(_KNOT_MEMORY)
        knots = np.convolve(shocks, weights, mode="valid") * shock_scale  # len h_hi - h_lo + 2
        # Within each hour, a Brownian bridge of one-minute steps pinned to zero at both knots.
        hour_range = np.arange(h_lo, h_hi + 1)
        steps = _normals(
            _stream_key(self.seed, symbol, "minute"), (hour_range[:, None] * 60 + np.arange(60)).ravel()
        ).reshape(-1, 60)
        walk = np.concatenate([np.zeros((len(hour_range), 1)), np.cumsum(steps, axis=1)], axis=1)
        fraction = np.arange(61) / 60.0
        bridge = walk - fraction * walk[:, -1:]
        return (
            knots[:-1, None] * (1 - fraction) + knots[1:, None] * fraction + MINUTE_VOLATILITY * bridge
        )

    def _minute_ends(self, symbol: str, minute: int) -> tuple[float, float]:
        """`log_walk(symbol, [minute, minute + 1])`, the same numbers: the path of the minute's
        hour is computed once (on its first request) and kept, one hour per symbol. A minute
        that ends on the next hour is `log_walk` of the two hours, as it always was."""
        hour, index = divmod(minute, 60)
        if index == 59:
            start, end = self.log_walk(symbol, [minute, minute + 1])
            return start, end
        known = self._hour_paths.get(symbol)
        if known is None or known[0] != hour:
            known = self._hour_paths[symbol] = (hour, self._log_paths(symbol, hour, hour)[0])
        path = known[1]
        return path[index], path[index + 1]

    def minute_prices(self, symbol: str, minutes: np.ndarray | Sequence[int]) -> np.ndarray:
        """The price at the start of each minute: a candle's open, and the previous one's close."""
        return self.base_price(symbol) * np.exp(self.log_walk(symbol, minutes))

    def price_at(self, symbol: str, t: float, *, slot_noise: bool = True) -> float:
        """The price at Unix time `t`: the minute's path interpolated, plus the 100 ms noise."""
        minute = math.floor(t / 60)
        fraction = t / 60 - minute
        start, end = self._minute_ends(symbol, minute)
        log_price = start + fraction * (end - start)
        if slot_noise:
            slot = math.floor(t * SLOTS_PER_SECOND)
            log_price += SLOT_VOLATILITY * _normal(_stream_key(self.seed, symbol, "slot"), slot)
        return self.base_price(symbol) * math.exp(log_price)

    # ---- books -------------------------------------------------------------------------------

    def _constants(self, symbol: str) -> _BookConstants:
        """The symbol's `_BookConstants`, made on its first book; `InvalidSymbol` if not served."""
        constants = self._book_constants.get(symbol)
        if constants is None:
            spec = self.spec(symbol)
            template = self._template(symbol)
            tick, step = float(spec.tick_size), float(spec.step_size)
            update_base = template.last_update_id
            if symbol != template.symbol:
                update_base = 1_000_000 + int(_unit(self.seed, symbol, "update-base") * 1e9)
            constants = _BookConstants(
                spec=spec,
                template=template,
                template_mid=template.mid,
                template_mid_usd=template.mid * self._usd(self.specs[template.symbol].quote_asset),
                quote_usd=self._usd(spec.quote_asset),
                tick=tick,
                step=step,
                lowest=max(1, math.ceil(float(spec.min_price) / tick)),
                highest=math.floor(float(spec.max_price) / tick) if spec.max_price > 0 else 2**62,
                side_keys=np.array(
                    [_stream_key(self.seed, symbol, "bid"), _stream_key(self.seed, symbol, "ask")], dtype=_U64
                ),
                update_rate=5 + 45 * _unit(self.seed, symbol, "update-rate"),
                update_base=update_base,
            )
            self._book_constants[symbol] = constants
        return constants

    def _template_book(self, symbol: str, t: float, limit: int) -> tuple[np.ndarray, ...]:
        """The captured book rescaled to the price at `t` (a book's birth): (bid ticks, bid
        steps, ask ticks, ask steps), best first, `limit` a side."""
        c = self._constants(symbol)
        mid = self.price_at(symbol, t, slot_noise=False)
        price_scale = mid / c.template_mid / c.tick
        # Keep the captured USD notional of each level.
        quantity_scale = c.template_mid_usd / (mid * c.quote_usd) / c.step
        slot = math.floor(t * SLOTS_PER_SECOND)
        sides = []
        for levels, bid in ((c.template.bids, True), (c.template.asks, False)):
            # Levels past the first few hundred cannot reach the top `limit` unless many collide
            # on one tick; then fall back to the whole side. Where a level lands depends on its
            # price only, so the ticks decide how many captured levels make the top `limit`.
            for take in (min(len(levels), limit * 4 + 64), len(levels)):
                ticks, kept, starts = _snap(
                    levels[:take, 0] * price_scale, bid=bid, lowest=c.lowest, highest=c.highest
                )
                if take == len(levels):
                    break
                if len(starts) > limit:  # the last merged level may be incomplete: never served
                    break
            # The captured levels summed into the top `limit` merged levels: only their
            # quantities are drawn (each level's jitter is a function of its index alone).
            used = kept[: starts[limit] if len(starts) > limit else len(kept)]
            sides.append((levels, ticks[starts[:limit]], starts[:limit], used))
        # Quantities rescaled and jittered, both sides' jitter drawn in one pass.
        bid_count = len(sides[0][3])
        jitter = np.exp(
            QUANTITY_JITTER
            * _normals_of_keys(
                np.repeat(c.side_keys, [bid_count, len(sides[1][3])]),
                slot * 8192 + np.concatenate((sides[0][3], sides[1][3])),
            )
        )
        books = []
        for (levels, ticks, starts, used), side_jitter in zip(sides, (jitter[:bid_count], jitter[bid_count:])):
            # np.clip(x, 1, 1e15), without its dispatch overhead (the same values)
            steps = np.minimum(np.maximum(np.rint(levels[used, 1] * quantity_scale * side_jitter), 1.0), 1e15)
            quantities = np.add.reduceat(steps, starts) if len(starts) else steps
            books.append((ticks, quantities.astype(np.int64)))
        (bid_ticks, bid_steps), (ask_ticks, ask_steps) = books
        if len(bid_ticks) and len(ask_ticks) and bid_ticks[0] >= ask_ticks[0]:
            # Cannot happen with outward snapping; kept as the invariant's guard.
            keep = bid_ticks < ask_ticks[0]
            bid_ticks, bid_steps = bid_ticks[keep], bid_steps[keep]
        return bid_ticks, bid_steps, ask_ticks, ask_steps

    # ---- the evolving books (see book.py) ------------------------------------------------------

    def _model(self, symbol: str) -> SymbolModel:
        model = self._models.get(symbol)
        if model is None:
            model = self._models[symbol] = self._make_model(symbol)
        return model

    def _make_model(self, symbol: str) -> SymbolModel:
        c = self._constants(symbol)
        template = c.template
        turnover = _unit(self.seed, symbol, "turnover")  # the klines' turnover draw
        rate = CAPTURED_RATES.get(symbol, MIN_RATE * RATE_RANGE**turnover)
        busy = min(1.0, max(0.0, math.log(rate / MIN_RATE) / math.log(RATE_RANGE)))
        # Template quantities by rank, in the symbol's steps, keeping the captured USD notional
        # at the base price (a level's size does not depend on when it was added).
        scale = c.template_mid_usd / (self.base_price(symbol) * c.quote_usd) / c.step
        base_steps = tuple(np.maximum(template_side[:, 1] * scale, 1.0) for template_side in (template.bids, template.asks))
        return SymbolModel(
            self, symbol, c.spec, rate=rate, ops_mean=1.2 + 1.7 * busy,
            offset_ms=int(_unit(self.seed, symbol, "event-offset") * SLOT_MS),
            activity_key=_stream_key(self.seed, symbol, "activity"),
            event_key=_stream_key(self.seed, symbol, "events"),
            base_steps=base_steps,
        )

    def _birth(self, symbol: str, model: SymbolModel, birth_ms: int) -> SymbolTrack:
        """The symbol's book at `birth_ms` (a minute start): its rescaled captured book."""
        c = self._constants(symbol)
        bid_ticks, bid_steps, ask_ticks, ask_steps = self._template_book(symbol, birth_ms / 1000, MAX_LEVELS)
        raw_rate = model.rate * (1.0 + model.extra_ops)  # update ids a second, on average
        u = c.update_base + int(max(0.0, birth_ms / 1000 - CAPTURED_AT) * raw_rate)
        state = BookState(
            (array("q", (-bid_ticks).tolist()), array("q", ask_ticks.tolist())),
            (array("q", bid_steps.tolist()), array("q", ask_steps.tolist())),
            u, None, model.last_slot(birth_ms) + 1,
        )
        counts = (len(bid_ticks), len(ask_ticks))
        model.floor = tuple(max(min(n, 100), n - SIDE_SLACK) for n in counts)
        model.cap = tuple(min(n + SIDE_SLACK, MAX_LEVELS) for n in counts)
        track = SymbolTrack(model=model, state=state, birth_ms=birth_ms, until_ms=birth_ms, next_close=birth_ms + MINUTE_MS)
        track.checkpoints.append(Checkpoint(birth_ms, u, None, full=full_copy(state)))
        return track

    def _track(self, symbol: str, at_ms: int) -> SymbolTrack:
        """The symbol's track, born if it has none: at the market's epoch if `at_ms` is within a
        minute of it, else at the start of `at_ms`'s minute. A first request replays at most a
        minute of events (all 1262 books asked at once, as `ticker/bookTicker` does: about 2 s
        of CPU), never the hours since the epoch that nobody asked about."""
        track = self._tracks.get(symbol)
        if track is None:
            self.spec(symbol)
            birth = self.epoch_ms
            if at_ms - birth > min(self.catch_up_ms, BIRTH_CATCH_UP_MS) or at_ms < birth:
                birth = at_ms // MINUTE_MS * MINUTE_MS
            track = self._tracks[symbol] = self._birth(symbol, self._model(symbol), birth)
        return track

    def _advance(self, track: SymbolTrack, to_ms: int, slots: list[int] | None = None) -> None:
        """Apply every event with E <= to_ms to the live state, checkpointing each minute close
        passed; `slots`, if given, are the active slots (already drawn) up to `to_ms`."""
        if to_ms <= track.until_ms:
            return
        model, state = track.model, track.state
        if to_ms - track.until_ms > self.catch_up_ms:
            # Not advanced for longer than the catch-up: born again (see `_track`).
            symbol, watchers, outbox = model.symbol, track.watchers, track.outbox
            old_u = state.u
            track = self._tracks[symbol] = self._birth(symbol, model, to_ms // MINUTE_MS * MINUTE_MS)
            track.state.u = max(track.state.u, old_u + 1)
            track.checkpoints[0].u = track.state.u
            track.watchers, track.outbox = watchers, outbox
            model, state = track.model, track.state
        last = model.last_slot(to_ms)
        if slots is None:
            slots = model.active_slots(state.next_slot, last)
        watched = track.watchers > 0
        for slot in slots:
            e_ms = model.event_time(slot)
            while track.next_close < e_ms:
                self._checkpoint(track)
            event = model.step(state, slot, track.changed)
            if event is not None and watched:
                track.outbox.append(event)
        state.next_slot = max(state.next_slot, last + 1)
        while track.next_close <= to_ms:
            self._checkpoint(track)
        track.until_ms = to_ms

    def _checkpoint(self, track: SymbolTrack) -> None:
        close, state = track.next_close, track.state
        minute = close // MINUTE_MS
        if minute % FULL_EVERY_MINUTES == 0:
            checkpoint = Checkpoint(close, state.u, state.last_e, full=full_copy(state))
        else:
            checkpoint = Checkpoint(close, state.u, state.last_e, diff=diff_arrays(track.changed))
        track.checkpoints.append(checkpoint)
        track.changed = ({}, {})
        track.next_close = close + MINUTE_MS
        # Keep the retention: drop what precedes the last full copy at or before its horizon.
        horizon = close - self.retention_ms
        checkpoints = track.checkpoints
        if checkpoints[0].close_ms < horizon:
            keep = None
            for index, old in enumerate(checkpoints):
                if old.close_ms > horizon:
                    break
                if old.full is not None:
                    keep = index
            for _ in range(keep or 0):
                checkpoints.popleft()

    def advance_all(self, to_ms: int | None = None) -> None:
        """Advance every born book to `to_ms` (now by default): the server's tick does this every
        100 ms, so that books stay current and their streams' events are ready. The activity of
        the books that are in step is drawn in one vectorised pass."""
        to_ms = int(self.clock() * 1000) if to_ms is None else to_ms
        with self._lock:
            groups: dict[tuple[int, int], list[SymbolTrack]] = {}
            for track in self._tracks.values():
                if to_ms <= track.until_ms:
                    continue
                key = (track.state.next_slot, track.model.last_slot(to_ms))
                groups.setdefault(key, []).append(track)
            for (first, last), tracks in groups.items():
                if last < first or last - first > 64 or len(tracks) < 8:
                    for track in tracks:
                        self._advance(track, to_ms)
                    continue
                count = last - first + 1
                keys = np.array([t.model.activity_key for t in tracks], dtype=np.uint64)
                slots = np.arange(first, last + 1, dtype=np.int64)
                draws = _uniform_bits(np.repeat(keys, count), np.tile(slots, len(tracks))).reshape(len(tracks), count)
                probabilities = np.array([t.model.probability for t in tracks])
                active = draws < probabilities[:, None]
                rows = active.any(axis=1)
                for track, busy, row in zip(tracks, rows.tolist(), active):
                    self._advance(track, to_ms, slots[row].tolist() if busy else [])

    def _state_at(self, symbol: str, at_ms: int) -> tuple[SymbolTrack, BookState]:
        """The book after every event with E <= at_ms: the live state when it is there, else
        rebuilt from the checkpoints (`BookUnavailable` before the book's birth or retention)."""
        track = self._track(symbol, at_ms)
        if at_ms >= track.until_ms:
            self._advance(track, at_ms)
            return self._tracks[symbol], self._tracks[symbol].state
        state = track.state
        if state.last_e is None or state.last_e <= at_ms:
            # No event between at_ms and the live state's time: the same book.
            return track, state
        checkpoints = track.checkpoints
        if at_ms < checkpoints[0].close_ms:
            raise BookUnavailable(symbol, at_ms, checkpoints[0].close_ms)
        index = min(len(checkpoints) - 1, (at_ms - checkpoints[0].close_ms) // MINUTE_MS)
        while checkpoints[index].close_ms > at_ms:
            index -= 1
        past = state_at_checkpoint(checkpoints, index, track.model)
        track.model.replay(past, at_ms)
        return track, past

    def event_offset_ms(self, symbol: str) -> int:
        """Where in its 100 ms slot a symbol's events are stamped (E = slot start + this)."""
        with self._lock:
            return self._model(symbol).offset_ms

    def event_rate(self, symbol: str) -> float:
        """The symbol's mean number of diff events a second."""
        with self._lock:
            return self._model(symbol).rate

    def _depth(self, symbol: str, limit: int, at: float | None) -> tuple[int, SymbolSpec, tuple[np.ndarray, ...]]:
        at_ms = int((self.clock() if at is None else at) * 1000)
        limit = max(1, min(limit, MAX_DEPTH_LIMIT))
        with self._lock:
            track, state = self._state_at(symbol, at_ms)
            book = (state.ticks(0, limit), state.steps(0, limit), state.ticks(1, limit), state.steps(1, limit))
            return state.u, track.model.spec, book

    def depth(self, symbol: str, limit: int = DEFAULT_DEPTH_LIMIT, *, at: float | None = None) -> dict:
        """The body of `GET /api/v3/depth?symbol=...&limit=...` (see `app.handle_depth`): the top
        `limit` levels a side of the book after every event with E <= now (or `at`)."""
        update_id, spec, (bid_ticks, bid_steps, ask_ticks, ask_steps) = self._depth(symbol, limit, at)
        return {
            "lastUpdateId": update_id,
            "bids": spec.levels(bid_ticks, bid_steps),
            "asks": spec.levels(ask_ticks, ask_steps),
        }

    def depth_json(self, symbol: str, limit: int = DEFAULT_DEPTH_LIMIT, *, at: float | None = None) -> str:
        """`depth` as the JSON text the HTTP layer sends, written directly: the same characters
        as `json.dumps(depth(...), separators=(",", ":"))`."""
        update_id, spec, (bid_ticks, bid_steps, ask_ticks, ask_steps) = self._depth(symbol, limit, at)
        return '{"lastUpdateId":%d,"bids":[%s],"asks":[%s]}' % (
            update_id, spec.levels_json(bid_ticks, bid_steps), spec.levels_json(ask_ticks, ask_steps))

    def true_book(self, symbol: str, at_ms: int, limit: int = MAX_LEVELS) -> dict:
        """The true book at `at_ms`: every event with E <= at_ms applied and none after, the top
        `limit` levels a side, exactly as Binance's strings; what a correct local book holds.

            {"symbol": "NKNUSDT", "at_ms": 1780272060000, "lastUpdateId": 521203388,
             "E": 1780272059968,
             "bids": [["0.35180000", "2512.00000000"], ...], "asks": [["0.35250000", ...], ...]}

        `E` is the event time of the last event applied (null if none since the book's birth).
        `BookUnavailable` before the book's birth or older than the retention."""
        with self._lock:
            track, state = self._state_at(symbol, at_ms)
            limit = max(1, min(limit, MAX_DEPTH_LIMIT))
            spec = track.model.spec
            return {
                "symbol": symbol, "at_ms": at_ms, "lastUpdateId": state.u, "E": state.last_e,
                "bids": spec.levels(state.ticks(0, limit), state.steps(0, limit)),
                "asks": spec.levels(state.ticks(1, limit), state.steps(1, limit)),
            }

    # ---- the diff-depth streams ------------------------------------------------------------------

    def watch(self, symbol: str) -> None:
        """Start keeping `symbol`'s events for its stream (`drain`); counted, so each `watch`
        needs one `unwatch`. `InvalidSymbol` for a symbol with no book."""
        with self._lock:
            track = self._track(symbol, int(self.clock() * 1000))
            self._advance(track, int(self.clock() * 1000))
            self._tracks[symbol].watchers += 1

    def unwatch(self, symbol: str) -> None:
        with self._lock:
            track = self._tracks.get(symbol)
            if track is not None and track.watchers > 0:
                track.watchers -= 1
                if track.watchers == 0:
                    track.outbox.clear()

    def drain(self) -> dict[str, list[DepthEvent]]:
        """The events of watched symbols generated since the last drain, per symbol in E order."""
        with self._lock:
            out = {}
            for symbol, track in self._tracks.items():
                if track.outbox:
                    out[symbol] = track.outbox
                    track.outbox = []
            return out

    def stream_events(self, symbols: Sequence[str], from_ms: int, to_ms: int) -> list[DepthEvent]:
        """The events of `symbols` with from_ms < E <= to_ms, in E order, replayed from the
        checkpoints: what a subscriber over that interval receives (for tests and tools)."""
        events = []
        with self._lock:
            for symbol in symbols:
                self._track(symbol, from_ms)  # born by from_ms if it has to be born
                self._state_at(symbol, to_ms)  # the live book reaches to_ms (and checkpoints it)
                track, state = self._state_at(symbol, from_ms)
                state = _copy_state(state, track.model.last_slot(from_ms) + 1)
                for slot in track.model.active_slots(state.next_slot, track.model.last_slot(to_ms)):
                    event = track.model.step(state, slot, None)
                    if event is not None:
                        events.append(event)
        events.sort(key=lambda e: e.event_time)
        return events

    def event_json(self, event: DepthEvent) -> str:
        """The payload of a `<symbol>@depth@100ms` message, as Binance writes it (rendered once):

            {"e":"depthUpdate","E":1633998512068,"s":"NKNUSDT","U":499869750,"u":499869752,
             "b":[["0.35130000","6195.00000000"],["0.34750000","5548.00000000"]],"a":[]}

        (the first NKNUSDT event of the real capture)."""
        text = event.text
        if text is None:
            spec = self.specs[event.symbol]
            text = event.text = '{"e":"depthUpdate","E":%d,"s":"%s","U":%d,"u":%d,"b":[%s],"a":[%s]}' % (
                event.event_time, event.symbol, event.first_id, event.final_id,
                _level_list(spec, event.bids), _level_list(spec, event.asks))
        return text

    def book_ticker(self, symbol: str, *, at: float | None = None) -> dict:
        """The body of `GET /api/v3/ticker/bookTicker?symbol=...`: the top of `depth`'s book."""
        book = self.depth(symbol, 1, at=at)
        # Binance prints zeros for an empty side; a simulated side is never empty in practice.
        (bid_price, bid_qty), *_ = book["bids"] or [["0", "0"]]
        (ask_price, ask_qty), *_ = book["asks"] or [["0", "0"]]
        return {
            "symbol": symbol, "bidPrice": bid_price, "bidQty": bid_qty, "askPrice": ask_price, "askQty": ask_qty,
        }

    # ---- candles -----------------------------------------------------------------------------

    def _usd_per_minute(self, symbol: str) -> float:
        return 5_000.0 * 100.0 ** _unit(self.seed, symbol, "turnover")  # 5 k to 500 k USD

    def klines(
        self,
        symbol: str,
        *,
        start_ms: int | None = None,
        end_ms: int | None = None,
        limit: int = DEFAULT_KLINES_LIMIT,
        now: float | None = None,
    ) -> list[list]:
        """The body of `GET /api/v3/klines?interval=1m` (see `app.handle_klines`)."""
        spec = self.spec(symbol)
        now = self.clock() if now is None else now
        minutes = kline_open_minutes(
            start_ms=start_ms, end_ms=end_ms, limit=limit, now_ms=int(now * 1000)
        )
        if not minutes:
            return []
        index = np.arange(minutes.start, minutes.stop, dtype=np.int64)
        edges = self.minute_prices(symbol, np.arange(minutes.start, minutes.stop + 1))
        opens, closes = edges[:-1].copy(), edges[1:].copy()
        # How much of each minute has happened: 1 for closed candles, less for the current one.
        elapsed = np.clip(now / 60.0 - index, 0.0, 1.0)
        if elapsed[-1] < 1.0:
            closes[-1] = self.price_at(symbol, now, slot_noise=False)

        def draw(stream: str) -> np.ndarray:
            return _normals(_stream_key(self.seed, symbol, stream), index)

        reach = MINUTE_VOLATILITY * 0.8 * np.sqrt(elapsed)
        highs = np.maximum(opens, closes) * np.exp(reach * np.abs(draw("high")))
        lows = np.minimum(opens, closes) * np.exp(-reach * np.abs(draw("low")))
        tick, step = float(spec.tick_size), float(spec.step_size)
        o, c = np.rint(opens / tick).astype(np.int64), np.rint(closes / tick).astype(np.int64)
        h = np.maximum(np.ceil(highs / tick - 1e-9).astype(np.int64), np.maximum(o, c))
        low = np.maximum(np.minimum(np.floor(lows / tick + 1e-9).astype(np.int64), np.minimum(o, c)), 1)
        vwap = (o + h + low + c) * tick / 4.0

        usd = self._usd_per_minute(symbol) * np.exp(0.6 * draw("volume") - 0.18) * elapsed
        volume_steps = np.maximum(np.rint(usd / (vwap * self._usd(spec.quote_asset)) / step), 1)
        volume_steps = np.where(elapsed > 0, volume_steps, 0).astype(np.int64)
        volume = volume_steps * step
        trades = np.rint(usd / (400.0 * np.exp(0.3 * draw("trade-size")))).astype(np.int64)
        trades = np.where(volume_steps > 0, np.maximum(trades, 1), 0)
        taker_share = 0.5 + 0.15 * np.tanh(draw("taker"))
        taker_steps = np.rint(volume_steps * taker_share).astype(np.int64)

        prices = spec.prices
        quote_decimals = spec.price_decimals
        rows = []
        for i, (open_, high, low_, close, vol, taker, minute) in enumerate(
            zip(prices(o.tolist()), prices(h.tolist()), prices(low.tolist()), prices(c.tolist()),
                spec.quantities(volume_steps.tolist()), spec.quantities(taker_steps.tolist()),
                index.tolist())
        ):
            open_time = minute * MINUTE_MS
            rows.append([
                open_time, open_, high, low_, close, vol, open_time + MINUTE_MS - 1,
                _float_string(volume[i] * vwap[i], quote_decimals), int(trades[i]), taker,
                _float_string(taker_steps[i] * step * vwap[i], quote_decimals), "0",
            ])
        return rows

    # ---- exchange info -----------------------------------------------------------------------

    def exchange_info(
        self, symbols: Sequence[str] | None = None, *, request_weight_limit: int, at: float | None = None
    ) -> dict:
        """The captured exchangeInfo body, optionally filtered, with today's time and weight limit.

        Unknown symbols raise `InvalidSymbol`; BREAK symbols are listed, as Binance lists them.
        """
        t = self.clock() if at is None else at
        info = self.captures.exchange_info
        entries = info["symbols"]
        if symbols is not None:
            by_name = {entry["symbol"]: entry for entry in entries}
            for symbol in symbols:
                if symbol not in by_name:
                    raise InvalidSymbol(symbol)
            entries = [by_name[s] for s in dict.fromkeys(symbols)]
        rate_limits = [
            {**limit, "limit": request_weight_limit} if limit["rateLimitType"] == "REQUEST_WEIGHT" else limit
            for limit in info["rateLimits"]
        ]
        return {**info, "serverTime": int(t * 1000), "rateLimits": rate_limits, "symbols": entries}
