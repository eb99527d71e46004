"""The simulator's market model, without HTTP: determinism, book invariants, kline ranges."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest

from acts_simulator.market import (
    LISTING_MINUTE,
    MAX_KLINES_LIMIT,
    MINUTE_MS,
    InvalidSymbol,
    Market,
    kline_open_minutes,
    load_captures,
)

# 2026-06-01 00:00:00 UTC, plus 30 s: inside a minute, so the current candle is in progress.
DAY_START = 1_780_272_000
NOW = DAY_START + 86_400 + 30.0


def market(seed: int = 0, now: float = NOW) -> Market:
    return Market(load_captures(), seed=seed, clock=lambda: now)


def _trading_sample(size: int = 200) -> list[str]:
    symbols = market().trading_symbols
    return sorted(random.Random(0).sample(symbols, size))


SAMPLE = _trading_sample()


def _on_tick(value: str, tick: Decimal) -> bool:
    return Decimal(value) % tick == 0


# ---- symbols --------------------------------------------------------------------------------


def test_only_trading_symbols_have_a_market():
    m = market()
    assert len(m.specs) == 1695
    assert len(m.trading_symbols) == 1262
    break_symbol = next(s for s, spec in m.specs.items() if spec.status == "BREAK")
    for symbol in (break_symbol, "NOPEUSDT"):
        with pytest.raises(InvalidSymbol):
            m.depth(symbol)
        with pytest.raises(InvalidSymbol):
            m.klines(symbol)


def test_base_prices_are_plausible():
    m = market()
    assert m.base_price("NKNUSDT") == pytest.approx((0.3521 + 0.3525) / 2)  # the captured mid
    assert 20_000 < m.base_price("BTCUSDT") < 200_000
    assert 0.01 < m.base_price("ETHBTC") < 0.2
    for symbol in SAMPLE:
        spec = m.specs[symbol]
        assert float(spec.min_price) <= m.base_price(symbol) <= float(spec.max_price)


# ---- books ----------------------------------------------------------------------------------


@pytest.mark.parametrize("symbol", SAMPLE)
def test_books_are_ordered_uncrossed_and_on_tick(symbol):
    m = market()
    spec = m.specs[symbol]
    for offset in (0.0, 17.3, 3_600.0 * 7):
        book = m.depth(symbol, 1000, at=NOW + offset)
        bids = [Decimal(p) for p, _ in book["bids"]]
        asks = [Decimal(p) for p, _ in book["asks"]]
        assert bids and asks
        assert all(a > b for a, b in zip(bids, bids[1:])), "bids must strictly fall"
        assert all(b > a for a, b in zip(asks, asks[1:])), "asks must strictly rise"
        assert bids[0] < asks[0], "never crossed"
        assert all(_on_tick(p, spec.tick_size) for p, _ in book["bids"] + book["asks"])
        assert all(Decimal(q) > 0 for _, q in book["bids"] + book["asks"])
        assert bids[-1] >= spec.min_price and asks[-1] <= spec.max_price


def test_book_strings_have_the_symbols_precision():
    book = market().depth("NKNUSDT", 5)
    price, quantity = book["bids"][0]
    assert len(price.split(".")[1]) == 8 and len(quantity.split(".")[1]) == 8
    bidr = market().depth("USDTBIDR", 5)  # quotePrecision 2
    assert len(bidr["bids"][0][0].split(".")[1]) == 2


@pytest.mark.parametrize("limit", [1, 5, 100, 500, 1000, 5000, 9999])
def test_depth_limit_is_honoured(limit):
    book = market().depth("NKNUSDT", limit)
    # The captured NKNUSDT book has 609 bid and 1000 ask levels; a limit never adds levels.
    assert 0 < len(book["bids"]) <= min(limit, 609)
    assert 0 < len(book["asks"]) <= min(limit, 1000)
    if limit <= 500:
        assert len(book["bids"]) == limit and len(book["asks"]) == limit


def test_a_smaller_limit_is_the_head_of_the_larger_book():
    m = market()
    full, head = m.depth("BTCUSDT", 1000, at=NOW), m.depth("BTCUSDT", 10, at=NOW)
    assert head["bids"] == full["bids"][:10] and head["asks"] == full["asks"][:10]


def test_the_book_is_deterministic_for_a_time_and_seed():
    assert market().depth("ETHBTC", 50, at=NOW)["bids"] == market().depth("ETHBTC", 50, at=NOW)["bids"]
    assert market(1).depth("ETHBTC", 50, at=NOW)["bids"] != market().depth("ETHBTC", 50, at=NOW)["bids"]


def test_the_book_moves_between_requests():
    m = market()
    first = m.depth("BTCUSDT", 20, at=NOW)
    later = m.depth("BTCUSDT", 20, at=NOW + 5)
    next_minute = m.depth("BTCUSDT", 20, at=NOW + 60)
    assert first["bids"] != later["bids"]
    assert first["bids"][0][0] != next_minute["bids"][0][0]
    assert first["lastUpdateId"] < later["lastUpdateId"] < next_minute["lastUpdateId"]


def test_last_update_id_only_moves_with_the_book():
    """As on Binance: two requests with no event between them get the same book and id."""
    m = market()
    ids = [m.depth("NKNUSDT", 5, at=NOW)["lastUpdateId"] for _ in range(5)]
    assert len(set(ids)) == 1
    assert m.depth("NKNUSDT", 5, at=NOW) == m.depth("NKNUSDT", 5, at=NOW)
    assert m.depth("NKNUSDT", 5, at=NOW + 10)["lastUpdateId"] > ids[0]


def test_book_ticker_is_the_top_of_the_book():
    m = market()
    book = m.depth("LRCBTC", 5, at=NOW)
    ticker = m.book_ticker("LRCBTC", at=NOW)
    assert ticker == {
        "symbol": "LRCBTC",
        "bidPrice": book["bids"][0][0], "bidQty": book["bids"][0][1],
        "askPrice": book["asks"][0][0], "askQty": book["asks"][0][1],
    }


# ---- klines ---------------------------------------------------------------------------------


def test_klines_are_deterministic_per_symbol_minute_and_seed():
    start = (DAY_START + 3_600) * 1000
    a = market().klines("BTCUSDT", start_ms=start, limit=5)
    b = market(now=NOW + 3_600).klines("BTCUSDT", start_ms=start, limit=5)  # asked later
    assert a == b
    assert market(seed=7).klines("BTCUSDT", start_ms=start, limit=5) != a
    assert market().klines("ETHUSDT", start_ms=start, limit=5) != a


def test_kline_shape_and_invariants():
    rows = market().klines("NKNUSDT", start_ms=DAY_START * 1000, limit=1000)
    assert len(rows) == 1000
    for row in rows:
        assert len(row) == 12
        open_time, o, h, lo, c, volume, close_time, quote_volume, trades, taker_base, taker_quote, ignore = row
        assert isinstance(open_time, int) and open_time % MINUTE_MS == 0
        assert close_time == open_time + 59_999
        o, h, lo, c = map(Decimal, (o, h, lo, c))
        assert lo <= min(o, c) <= max(o, c) <= h
        assert all(_on_tick(str(p), Decimal("0.0001")) for p in (o, h, lo, c))
        assert Decimal(volume) >= Decimal(taker_base) >= 0
        assert Decimal(quote_volume) >= Decimal(taker_quote) >= 0
        assert isinstance(trades, int) and trades >= 1
        assert ignore == "0"
    # Each candle opens at the previous close.
    assert all(prev[4] == row[1] for prev, row in zip(rows, rows[1:]))


def test_consecutive_minutes_differ():
    # BTCUSDT: a one-minute step (about 8 bp) is hundreds of ticks, so every close differs.
    # (NKNUSDT at 0.35 with tick 0.0001 often closes unchanged, as it does on Binance.)
    rows = market().klines("BTCUSDT", start_ms=DAY_START * 1000, limit=1000)
    closes = [row[4] for row in rows]
    assert sum(a != b for a, b in zip(closes, closes[1:])) >= 990
    assert len({row[5] for row in rows}) > 900  # volumes vary too


def test_klines_range_semantics():
    m = market()
    start, end = DAY_START * 1000, (DAY_START + 600) * 1000
    rows = m.klines("BTCUSDT", start_ms=start, end_ms=end, limit=1000)
    # openTime in [startTime, endTime]: both ends included.
    assert [r[0] for r in rows] == list(range(start, end + 1, MINUTE_MS))
    assert len(m.klines("BTCUSDT", start_ms=start, end_ms=end, limit=3)) == 3
    # A startTime inside a minute starts at the next minute's open.
    assert m.klines("BTCUSDT", start_ms=start + 1, limit=1)[0][0] == start + MINUTE_MS
    # Without startTime: the last `limit` up to endTime.
    assert [r[0] for r in m.klines("BTCUSDT", end_ms=end, limit=2)] == [end - MINUTE_MS, end]
    # The limit is capped at 1000.
    assert len(m.klines("BTCUSDT", start_ms=start, limit=5000)) == MAX_KLINES_LIMIT


def test_klines_never_include_future_minutes_and_end_with_the_open_one():
    m = market()
    current = int(NOW // 60) * MINUTE_MS
    latest = m.klines("BTCUSDT", limit=3)
    assert [r[0] for r in latest] == [current - 2 * MINUTE_MS, current - MINUTE_MS, current]
    assert m.klines("BTCUSDT", start_ms=current + MINUTE_MS) == []
    assert m.klines("BTCUSDT", start_ms=current - MINUTE_MS, end_ms=current + 10 * MINUTE_MS)[-1][0] == current
    # The in-progress candle is half done; once the minute closes the candle is final and its
    # close is the next minute's open.
    in_progress = latest[-1]
    closed = market(now=NOW + 120).klines("BTCUSDT", start_ms=current, limit=2)
    assert in_progress[1] == closed[0][1]
    assert Decimal(in_progress[5]) < Decimal(closed[0][5])
    assert closed[0][4] == closed[1][1]


def test_klines_before_listing_do_not_exist():
    rows = market().klines("BTCUSDT", start_ms=0, limit=2)
    assert rows[0][0] == LISTING_MINUTE * MINUTE_MS


def test_a_day_of_klines_in_two_requests():
    m = market()
    start, end = DAY_START * 1000, (DAY_START + 86_400) * 1000 - 1
    first = m.klines("ETHUSDT", start_ms=start, end_ms=end, limit=1000)
    second = m.klines("ETHUSDT", start_ms=first[-1][0] + MINUTE_MS, end_ms=end, limit=1000)
    day = first + second
    assert (len(first), len(second)) == (1000, 440)
    assert [r[0] for r in day] == list(range(start, end, MINUTE_MS))


_M = LISTING_MINUTE + 100_000  # the current minute in these cases


@pytest.mark.parametrize(
    ("start", "end", "limit", "expected"),
    [
        (None, None, 3, range(_M - 2, _M + 1)),
        (0, None, 2, range(LISTING_MINUTE, LISTING_MINUTE + 2)),
        ((_M - 10) * MINUTE_MS, None, 1000, range(_M - 10, _M + 1)),
        ((_M - 10) * MINUTE_MS, (_M - 9) * MINUTE_MS, 1000, range(_M - 10, _M - 8)),
        (None, (_M - 1000) * MINUTE_MS + 59_999, 2, range(_M - 1001, _M - 999)),
        ((_M + 1) * MINUTE_MS, None, 10, range(0)),
        ((_M - 5) * MINUTE_MS, (_M - 10) * MINUTE_MS, 10, range(0)),
        (None, None, 5000, range(_M - 999, _M + 1)),
    ],
)
def test_kline_open_minutes(start, end, limit, expected):
    now_ms = _M * MINUTE_MS + 1234
    assert kline_open_minutes(start_ms=start, end_ms=end, limit=limit, now_ms=now_ms) == expected


# ---- exchange info --------------------------------------------------------------------------


def test_exchange_info_reports_todays_time_and_weight_limit():
    info = market().exchange_info(request_weight_limit=6000)
    assert info["serverTime"] == int(NOW * 1000)
    weight = next(r for r in info["rateLimits"] if r["rateLimitType"] == "REQUEST_WEIGHT")
    assert weight["limit"] == 6000
    assert len(info["symbols"]) == 1695
    assert load_captures().exchange_info["rateLimits"][0]["limit"] == 1200  # captures untouched
    only = market().exchange_info(["ETHBTC", "NKNUSDT"], request_weight_limit=6000)
    assert [s["symbol"] for s in only["symbols"]] == ["ETHBTC", "NKNUSDT"]
    with pytest.raises(InvalidSymbol):
        market().exchange_info(["NOPE"], request_weight_limit=6000)
