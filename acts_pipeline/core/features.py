"""Order-book features: what one minute's snapshot of a book says about price, cost and pressure.

Every field of the `order_book_features` collection is computed here, from the snapshot alone
(no history, no other symbol), following the formulas of DESIGN.md literally in float64. Notation:
`p` price and `q` quantity of a level, bids and asks sorted best first, `k` in `DEPTH_LEVELS`,
`x` in `BAND_BPS`.

What the features mean for a trader
-----------------------------------
- `best_bid`, `best_ask`, `best_bid_qty`, `best_ask_qty`: the top of the book: the prices at which
  one could sell or buy right now, and how much (base asset) rests there.
- `mid_price` and `spread`, `spread_bps`: the reference price and the cost of crossing the book;
  in basis points of the mid the spread compares across symbols and price scales.
- `weighted_mid`: the mid leaned towards the side with *less* size on top (each best price is
  weighted by the opposite side's quantity), a better short-term fair price than the mid when one
  side is thin.
- `bid_qty_k`, `ask_qty_k`, `bias_k`: resting size (base asset) in the best `k` levels of each
  side, and their imbalance, +1 when all the size is on the bids, -1 when all is on the asks.
  Counted in levels, so they depend on the symbol's tick size.
- `bid_notional_xbps`, `ask_notional_xbps`, `depth_bias_xbps`: the quote-currency value resting
  within `x` basis points of the mid on each side, i.e. what can be traded before the price moves
  by `x` bps, and its imbalance. Counted in price distance, so they compare across tick sizes.
  They only see the levels the snapshot holds: with `ACTS_DEPTH_LIMIT=100`, a thin book's
  100 bps band can reach past the last returned level, and the notional is then a lower bound
  (compare the last level's price with the band edge if that matters).
- `bid_levels`, `ask_levels`: how many levels the exchange returned on each side (at most the
  depth limit); they say how much of `k = 100` or of a band was really observed.
- `crossed`: `best_bid >= best_ask`. A Binance Spot book should never be crossed or locked, so a
  True is a data-quality flag on that snapshot, not a trading signal.

Values that cannot be computed (null rules)
-------------------------------------------
A value that cannot be computed is NaN in the float columns; the storage layer writes NaN as
`null` (DESIGN.md: never 0, never NaN in MongoDB). Precisely:

- An empty side has no top: its `best_*` are NaN, and so is everything built on the mid or on
  both tops: `mid_price`, `spread`, `spread_bps`, `weighted_mid`, and all band notionals and
  `depth_bias_xbps` (with no mid there is no band). This holds even for the non-empty side's
  notional: a band needs a mid, not just levels.
- Depth sums are sums over the first `min(k, levels)` levels, so an empty side sums to 0.0, a real
  value ("nothing rests there"). `bias_k` is therefore -1.0 when only the bids are empty and +1.0
  when only the asks are empty; it is NaN only when its denominator is 0 (both sides empty, or
  every quantity in the top `k` levels is 0).
- A zero denominator anywhere gives NaN: `weighted_mid` when both top quantities are 0,
  `spread_bps` when the mid is 0, `depth_bias_xbps` when neither band holds any notional (a band
  with no level sums to 0.0, which is a value; only the ratio of two zeros is NaN).
- `bid_levels`, `ask_levels` are int64 and always known. `crossed` is a pandas nullable
  `"boolean"`: True/False when both sides are non-empty, `<NA>` when either side is empty.
- The formulas are applied as written, including to crossed books: `spread` is then negative or
  zero, and the bands are measured from a mid that lies between the crossed tops.
- Band edges are `mid * (1 - x / 1e4)` and `mid * (1 + x / 1e4)` in float64, edges included.
  A level whose decimal price lies exactly on an edge may land one ulp on either side of the
  float64 edge (for a mid of 100, `100 * (1 + 50 / 1e4)` is 100.49999999999999); the result is
  still exactly what the documented formula gives on the stored doubles.
- Inputs are assumed finite, positive prices and non-negative quantities, as the exchange sends;
  they are not validated here.

Why it is vectorised
--------------------
A backfill computes features for every (minute, symbol): a day of 500 symbols is 720,000 books of
up to 2 x 100 levels. A per-book Python function costs tens of microseconds per book before it
does any arithmetic, so a batch is computed at once: all levels of one side of every book are
concatenated into flat arrays with per-book offsets, and every sum is a segmented sum
(`np.add.reduceat`) over those arrays: a handful of whole-array numpy passes per batch, no
Python loop per book or per level. Sums stay per book (never a running total across books, which
would lose precision), so a book's features are bit-for-bit the same whatever batch it is
computed in. `benchmarks/features.py` measures the gain
against the row-by-row `DataFrame.apply` baseline.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from acts_pipeline.core.models import OrderBook, OrderBookSnapshot

DEPTH_LEVELS: tuple[int, ...] = (1, 5, 10, 20, 50, 100)
"""Values of `k`: the depth features sum the best `k` levels of each side."""

BAND_BPS: tuple[int, ...] = (10, 50, 100)
"""Values of `x`: the band features sum the notional within `x` basis points of the mid."""

_TOP_OF_BOOK_COLUMNS = [
    "best_bid",
    "best_ask",
    "best_bid_qty",
    "best_ask_qty",
    "mid_price",
    "spread",
    "spread_bps",
    "weighted_mid",
]
_DEPTH_COLUMNS = (
    [f"bid_qty_{k}" for k in DEPTH_LEVELS]
    + [f"ask_qty_{k}" for k in DEPTH_LEVELS]
    + [f"bias_{k}" for k in DEPTH_LEVELS]
)
_BAND_COLUMNS = [
    f"{name}_{x}bps" for x in BAND_BPS for name in ("bid_notional", "ask_notional", "depth_bias")
]
_COUNT_COLUMNS = ["bid_levels", "ask_levels"]

FEATURE_COLUMNS: list[str] = (
    _TOP_OF_BOOK_COLUMNS + _DEPTH_COLUMNS + _BAND_COLUMNS + _COUNT_COLUMNS + ["crossed"]
)
"""Every feature field, in the order of the frames returned here (names as in DESIGN.md)."""

SNAPSHOT_COLUMNS: list[str] = ["symbol", "minute", "captured_at"]
"""The snapshot's identity, first columns of `compute_features`."""

_CHUNK_BOOKS = 2048
"""Books computed together; see `_feature_arrays` (1024 to 4096 measured equally fast)."""


def compute_features(snapshots: Sequence[OrderBookSnapshot]) -> pd.DataFrame:
    """Compute the `order_book_features` of a batch of snapshots, one row per snapshot.

    Rows are in input order (RangeIndex). Columns are `symbol`, `minute`, `captured_at`
    (datetime64, UTC) and then `FEATURE_COLUMNS`: float64 except `bid_levels`, `ask_levels`
    (int64) and `crossed` (nullable `"boolean"`). NaN (and `<NA>` for `crossed`) marks a value
    that cannot be computed; the storage layer writes it as `null` (see the module docstring for
    the exact rules). Each row depends on its own snapshot only.
    """
    columns: dict[str, Any] = {
        "symbol": [snapshot.symbol for snapshot in snapshots],
        # cache=False: the conversion cache only pays off for many repeats of a few values.
        "minute": pd.to_datetime([s.minute for s in snapshots], utc=True, cache=False),
        "captured_at": pd.to_datetime([s.captured_at for s in snapshots], utc=True, cache=False),
    }
    columns.update(_feature_arrays([snapshot.book for snapshot in snapshots]))
    return pd.DataFrame(columns, index=pd.RangeIndex(len(snapshots)))


def book_features(books: Sequence[OrderBook]) -> pd.DataFrame:
    """The `FEATURE_COLUMNS` of a batch of books, one row per book in input order.

    Same math and dtypes as `compute_features`, for books without snapshot metadata.
    """
    return pd.DataFrame(_feature_arrays(books), index=pd.RangeIndex(len(books)))


def features_of_book(book: OrderBook) -> dict[str, Any]:
    """The features of one book as a dict keyed by `FEATURE_COLUMNS` (a batch of one)."""
    row = book_features([book]).iloc[0]
    return {column: row[column] for column in FEATURE_COLUMNS}


def _feature_arrays(books: Sequence[OrderBook]) -> dict[str, Any]:
    """Every feature column of a batch, in `FEATURE_COLUMNS` order: the one implementation.

    The batch is cut into chunks of `_CHUNK_BOOKS` books: a chunk's flat arrays (a few MB) stay in
    the CPU cache through the dozen whole-array passes below, where a 20,000-book batch would
    stream ~16 MB arrays from memory at each pass (measured: about 1.5x faster overall). Rows are
    independent, so chunking cannot change a value.
    """
    books = list(books)
    chunks = [
        _chunk_feature_arrays(books[start : start + _CHUNK_BOOKS])
        for start in range(0, max(len(books), 1), _CHUNK_BOOKS)
    ]
    columns = {name: np.concatenate([chunk[name] for chunk in chunks]) for name in FEATURE_COLUMNS}
    # `crossed` is only known when both sides have a top.
    unknown = (columns["bid_levels"] == 0) | (columns["ask_levels"] == 0)
    columns["crossed"] = pd.arrays.BooleanArray(columns["crossed"], mask=unknown)
    return columns


def _chunk_feature_arrays(books: list[OrderBook]) -> dict[str, np.ndarray]:
    """The features of one chunk, all as numpy arrays (`crossed` still plain bool)."""
    bids = _FlatSide.of([book.bids for book in books])
    asks = _FlatSide.of([book.asks for book in books])

    best_bid, best_bid_qty = bids.top()
    best_ask, best_ask_qty = asks.top()
    # NaN when a side is empty: NaN propagates into every mid-based field below.
    mid_price = (best_bid + best_ask) / 2
    spread = best_ask - best_bid
    columns: dict[str, np.ndarray] = {
        "best_bid": best_bid,
        "best_ask": best_ask,
        "best_bid_qty": best_bid_qty,
        "best_ask_qty": best_ask_qty,
        "mid_price": mid_price,
        "spread": spread,
        "spread_bps": _ratio(1e4 * spread, mid_price),
        "weighted_mid": _ratio(
            best_bid * best_ask_qty + best_ask * best_bid_qty, best_bid_qty + best_ask_qty
        ),
    }

    bid_qty = bids.depth_sums()
    ask_qty = asks.depth_sums()
    for j, k in enumerate(DEPTH_LEVELS):
        columns[f"bid_qty_{k}"] = bid_qty[:, j]
    for j, k in enumerate(DEPTH_LEVELS):
        columns[f"ask_qty_{k}"] = ask_qty[:, j]
    for j, k in enumerate(DEPTH_LEVELS):
        columns[f"bias_{k}"] = _ratio(bid_qty[:, j] - ask_qty[:, j], bid_qty[:, j] + ask_qty[:, j])

    bid_notional = bids.band_sums(mid_price, is_bid_side=True)
    ask_notional = asks.band_sums(mid_price, is_bid_side=False)
    # No mid, no band: even the non-empty side's notional is not computable.
    no_mid = np.isnan(mid_price)
    bid_notional[no_mid] = np.nan
    ask_notional[no_mid] = np.nan
    for j, x in enumerate(BAND_BPS):
        columns[f"bid_notional_{x}bps"] = bid_notional[:, j]
        columns[f"ask_notional_{x}bps"] = ask_notional[:, j]
        columns[f"depth_bias_{x}bps"] = _ratio(
            bid_notional[:, j] - ask_notional[:, j], bid_notional[:, j] + ask_notional[:, j]
        )

    columns["bid_levels"] = bids.count
    columns["ask_levels"] = asks.count
    # False where a side is empty (NaN compares False); `_feature_arrays` masks those to <NA>.
    columns["crossed"] = best_bid >= best_ask
    return columns


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """`numerator / denominator`, NaN where the denominator is 0 (never an infinity)."""
    out = np.full(np.shape(numerator), np.nan)
    np.divide(numerator, denominator, out=out, where=denominator != 0)
    return out


def _segment_sums(values: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """Sums of `values` between consecutive bounds of each row: shape (rows, bounds - 1).

    `bounds` is (rows, m + 1) flat indices, non-decreasing along each row and from one row's last
    bound to the next row's first; segment `j` of row `r` is `values[bounds[r, j]:bounds[r, j+1]]`.
    All segments go through one `np.add.reduceat`, which reduces each segment on its own: a
    book's sums depend on its levels only, never on the other books of the batch. An empty
    segment sums to 0.0 (reduceat would return its first element). The gaps between rows are
    reduced too and dropped.
    """
    rows, n_bounds = bounds.shape
    if rows == 0:
        return np.zeros((0, n_bounds - 1))
    # reduceat wants every index < len(values); a bound may equal len(values) (end of the batch).
    padded = np.append(values, 0.0)
    sums = np.add.reduceat(padded, bounds.ravel()).reshape(rows, n_bounds)[:, :-1]
    sums[bounds[:, 1:] == bounds[:, :-1]] = 0.0
    return sums


@dataclass(frozen=True)
class _FlatSide:
    """One side (bids or asks) of every book of a batch, as flat per-level arrays.

    Levels are concatenated book after book, each book's best level first. `count[b]` is book
    `b`'s number of levels and `first[b]` the flat index of its best level.
    """

    price: np.ndarray
    qty: np.ndarray
    count: np.ndarray
    first: np.ndarray

    @classmethod
    def of(cls, sides: list[np.ndarray]) -> _FlatSide:
        count = np.fromiter(map(len, sides), dtype=np.int64, count=len(sides))
        levels = np.concatenate(sides) if sides else np.empty((0, 2), dtype=np.float64)
        return cls(
            # Contiguous copies: each column is read a dozen times below, and comparisons and
            # reductions on contiguous data run 2 to 4 times faster than on strided views.
            price=np.ascontiguousarray(levels[:, 0]),
            qty=np.ascontiguousarray(levels[:, 1]),
            count=count,
            first=np.cumsum(count) - count,
        )

    def top(self) -> tuple[np.ndarray, np.ndarray]:
        """Best price and its quantity per book, NaN for an empty side."""
        price = np.full(len(self.count), np.nan)
        qty = np.full(len(self.count), np.nan)
        present = self.count > 0
        price[present] = self.price[self.first[present]]
        qty[present] = self.qty[self.first[present]]
        return price, qty

    def depth_sums(self) -> np.ndarray:
        """Sum of `qty` over the best `min(k, levels)` levels, shape (books, len(DEPTH_LEVELS)).

        Each book is cut at ranks 0, 1, 5, 10, ..., 100 (capped at its length) into buckets whose
        sums accumulate into every `k` at once.
        """
        ranks = np.array((0, *DEPTH_LEVELS), dtype=np.int64)
        bounds = self.first[:, None] + np.minimum(ranks[None, :], self.count[:, None])
        return np.cumsum(_segment_sums(self.qty, bounds), axis=1)

    def band_sums(self, mid_price: np.ndarray, *, is_bid_side: bool) -> np.ndarray:
        """Sum of `price * qty` within each band of the mid, shape (books, len(BAND_BPS)).

        A bid is in band `x` when `price >= mid * (1 - x / 1e4)`, an ask when
        `price <= mid * (1 + x / 1e4)`, tested level by level (no reliance on sorted prices).
        Books without a mid (NaN) come out as 0.0 here; the caller masks them.
        """
        notional = self.price * self.qty
        whole_book = np.column_stack([self.first, self.first + self.count])
        sums = np.empty((len(self.count), len(BAND_BPS)))
        for j, x in enumerate(BAND_BPS):
            # Each book's edge is computed once and repeated over its levels.
            if is_bid_side:
                in_band = self.price >= np.repeat(mid_price * (1 - x / 1e4), self.count)
            else:
                in_band = self.price <= np.repeat(mid_price * (1 + x / 1e4), self.count)
            # Multiplying by the mask is the same as np.where(in_band, notional, 0.0) on finite
            # inputs, at a third of its cost.
            sums[:, j] = _segment_sums(notional * in_band, whole_book)[:, 0]
        return sums
