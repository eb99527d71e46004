"""Parsers of Binance REST bodies: the real captures parse exactly, malformed bodies are refused.

Bodies built in this module are made up (named `made_up_*`); the real ones are the captures in
`acts_simulator/data/binance/`, used as they are.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime

import numpy as np
import pytest

from acts_pipeline.core.errors import MalformedResponseError
from acts_pipeline.core.parsing import (
    datetime_to_ms,
    ms_to_datetime,
    parse_depth,
    parse_exchange_info,
    parse_klines,
)

# ---- depth: the real captures ---------------------------------------------------------------

CAPTURED_BOOKS = {  # symbol: (bid levels, ask levels, lastUpdateId), as recorded
    "NKNUSDT": (609, 1000, 499869752),
    "RUNEEUR": (221, 468, 15602511),
    "BLZETH": (174, 1000, 281916627),
    "LRCBTC": (176, 1000, 259345543),
}


def load_depth(captures_dir, symbol: str) -> dict:
    return json.loads((captures_dir / "depth" / f"{symbol}.json").read_text())


@pytest.mark.parametrize("symbol", sorted(CAPTURED_BOOKS))
def test_real_captured_depth_parses_exactly(captures_dir, symbol):
    body = load_depth(captures_dir, symbol)
    book = parse_depth(body, symbol)
    n_bids, n_asks, last_update_id = CAPTURED_BOOKS[symbol]
    assert book.symbol == symbol
    assert book.last_update_id == last_update_id
    assert book.bids.shape == (n_bids, 2) and book.asks.shape == (n_asks, 2)
    assert book.bids.dtype == book.asks.dtype == np.float64
    # Every float is the decimal string Binance sent, converted once.
    assert book.bids.tolist() == [[float(p), float(q)] for p, q in body["bids"]]
    assert book.asks.tolist() == [[float(p), float(q)] for p, q in body["asks"]]
    assert (np.diff(book.bids[:, 0]) < 0).all() and (np.diff(book.asks[:, 0]) > 0).all()
    assert book.bids[0, 0] < book.asks[0, 0] and not book.crossed


def test_nknusdt_top_of_book_is_the_recorded_one(captures_dir):
    book = parse_depth(load_depth(captures_dir, "NKNUSDT"), "NKNUSDT")
    assert book.bids[0].tolist() == [0.3521, 672.0]
    assert book.asks[0].tolist() == [0.3525, 3959.0]


# ---- depth: made-up malformed bodies --------------------------------------------------------

MADE_UP_SYMBOL = "MADEUPUSDT"


def made_up_depth(**changes) -> dict:
    """A small valid made-up depth body, with `changes` applied (None deletes a key)."""
    body = {
        "lastUpdateId": 42,
        "bids": [["10.0", "1.5"], ["9.9", "2.0"], ["9.8", "0.1"]],
        "asks": [["10.1", "1.0"], ["10.2", "3.0"]],
    }
    for key, value in changes.items():
        if value is None:
            del body[key]
        else:
            body[key] = value
    return body


def test_made_up_valid_body_parses():
    book = parse_depth(made_up_depth(), MADE_UP_SYMBOL)
    assert book.bids.tolist() == [[10.0, 1.5], [9.9, 2.0], [9.8, 0.1]]
    assert book.asks.tolist() == [[10.1, 1.0], [10.2, 3.0]]


MALFORMED_DEPTH = {
    "not_an_object": (["lastUpdateId", 42], "is not a JSON object"),
    "null_body": (None, "is not a JSON object"),
    "missing_last_update_id": (made_up_depth(lastUpdateId=None), "'lastUpdateId'"),
    "string_last_update_id": (made_up_depth(lastUpdateId="42"), "'lastUpdateId'"),
    "bool_last_update_id": (made_up_depth(lastUpdateId=True), "'lastUpdateId'"),
    "missing_bids": (made_up_depth(bids=None), "has no 'bids'"),
    "missing_asks": (made_up_depth(asks=None), "has no 'asks'"),
    "bids_not_a_list": (made_up_depth(bids={"10.0": "1.5"}), "'bids' is not a list"),
    "level_of_three": (made_up_depth(bids=[["10.0", "1.5", "7"]]), "not [price, qty] pairs"),
    "level_of_one": (made_up_depth(asks=[["10.1"], ["10.2"]]), "not [price, qty] pairs"),
    "ragged_levels": (made_up_depth(bids=[["10.0", "1.5"], ["9.9"]]), "not [price, qty]"),
    "level_is_a_string": (made_up_depth(asks=["10.1", "1.0"]), "not [price, qty] pairs"),
    "non_numeric_price": (made_up_depth(bids=[["ten", "1.5"]]), "not [price, qty] numbers"),
    "null_qty": (made_up_depth(asks=[["10.1", None]]), "not a finite number"),
    "negative_qty": (made_up_depth(bids=[["10.0", "-1.5"]]), "negative quantity"),
    "zero_price": (made_up_depth(asks=[["0", "1.0"]]), "non-positive price"),
    "nan_price": (made_up_depth(bids=[["NaN", "1.0"]]), "not a finite number"),
    "infinite_qty": (made_up_depth(asks=[["10.1", "inf"]]), "not a finite number"),
    "unordered_bids": (made_up_depth(bids=[["9.9", "1"], ["10.0", "1"]]), "bid prices do not fall"),
    "repeated_bid_price": (made_up_depth(bids=[["10.0", "1"], ["10.0", "2"]]), "bid prices do not fall"),
    "unordered_asks": (made_up_depth(asks=[["10.2", "1"], ["10.1", "1"]]), "ask prices do not rise"),
    "crossed": (made_up_depth(bids=[["10.3", "1"]], asks=[["10.1", "1"]]), "is crossed"),
    "locked": (made_up_depth(bids=[["10.1", "1"]], asks=[["10.1", "1"]]), "is crossed"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED_DEPTH))
def test_made_up_malformed_depth_is_refused_naming_symbol_and_problem(case):
    body, problem = MALFORMED_DEPTH[case]
    with pytest.raises(MalformedResponseError) as raised:
        parse_depth(body, MADE_UP_SYMBOL)
    message = str(raised.value)
    assert MADE_UP_SYMBOL in message
    assert problem in message
    assert raised.value.symbol == MADE_UP_SYMBOL
    assert raised.value.retryable  # a corrupt response: the next one may be fine


@pytest.mark.parametrize("side", ["bids", "asks"])
def test_made_up_empty_side_is_accepted(side):
    book = parse_depth(made_up_depth(**{side: []}), MADE_UP_SYMBOL)
    assert getattr(book, side).shape == (0, 2)
    assert not book.crossed


def test_made_up_both_sides_empty_is_accepted():
    book = parse_depth(made_up_depth(bids=[], asks=[]), MADE_UP_SYMBOL)
    assert book.bids.shape == book.asks.shape == (0, 2)


# ---- klines ----------------------------------------------------------------------------------

# The fields of the real NKNUSDT kline_1m message of the captured stream, in REST form.
REAL_SHAPED_KLINE = [1633998480000, "0.35270000", "0.35280000", "0.35220000", "0.35280000",
                     "25877.00000000", 1633998539999, "9116.04600000", 30,
                     "58.00000000", "20.46240000", "0"]


def test_real_shaped_kline_row_parses():
    (kline,) = parse_klines([REAL_SHAPED_KLINE], "NKNUSDT")
    assert kline.symbol == "NKNUSDT"
    assert kline.minute == datetime(2021, 10, 12, 0, 28, tzinfo=UTC)
    assert (kline.open, kline.high, kline.low, kline.close) == (0.3527, 0.3528, 0.3522, 0.3528)
    assert kline.volume == 25877.0 and kline.quote_volume == 9116.046
    assert kline.trades == 30 and isinstance(kline.trades, int)
    assert (kline.taker_buy_base_volume, kline.taker_buy_quote_volume) == (58.0, 20.4624)


def test_empty_klines_body_is_no_klines():
    assert parse_klines([], "NKNUSDT") == []


def made_up_kline(**fields) -> list:
    """The real-shaped row with some fields replaced (made up), by index name."""
    index = {"open_time": 0, "open": 1, "high": 2, "low": 3, "close": 4, "trades": 8}
    row = list(REAL_SHAPED_KLINE)
    for name, value in fields.items():
        row[index[name]] = value
    return row


MALFORMED_KLINES = {
    "not_a_list": ({"data": []}, "is not a JSON list"),
    "short_row": ([REAL_SHAPED_KLINE[:10]], "short row"),
    "row_not_a_list": ([42], "short row"),
    "non_numeric_open": ([made_up_kline(open="abc")], "non-numeric"),
    "non_numeric_open_time": ([made_up_kline(open_time="soon")], "non-numeric"),
    "null_close": ([made_up_kline(close=None)], "non-numeric"),
    "fractional_trades": ([made_up_kline(trades="30.5")], "non-numeric"),
    "low_above_open": ([made_up_kline(low="0.35275000")], "low/high do not bound"),
    "high_below_close": ([made_up_kline(high="0.35275000")], "low/high do not bound"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED_KLINES))
def test_made_up_malformed_klines_are_refused(case):
    body, problem = MALFORMED_KLINES[case]
    with pytest.raises(MalformedResponseError) as raised:
        parse_klines(body, "NKNUSDT")
    assert "NKNUSDT" in str(raised.value) and problem in str(raised.value)


def test_one_bad_kline_row_refuses_the_whole_page():
    with pytest.raises(MalformedResponseError):
        parse_klines([REAL_SHAPED_KLINE, made_up_kline(low="1.0")], "NKNUSDT")


def test_ms_and_datetime_round_trip():
    moment = datetime(2026, 11, 26, 13, 54, tzinfo=UTC)
    assert ms_to_datetime(datetime_to_ms(moment)) == moment
    assert datetime_to_ms(ms_to_datetime(1633998480000)) == 1633998480000
    assert ms_to_datetime(0).tzinfo is UTC


# ---- exchangeInfo ----------------------------------------------------------------------------


def test_real_exchange_info_parses(captures_dir):
    body = json.loads((captures_dir / "exchange_info.json").read_text())
    info = parse_exchange_info(body)
    assert len(info) == 1695
    assert Counter(s.status for s in info.values()) == {"TRADING": 1262, "BREAK": 433}
    assert list(info) == [s["symbol"] for s in body["symbols"]]
    ethbtc = info["ETHBTC"]
    assert (ethbtc.base_asset, ethbtc.quote_asset, ethbtc.status) == ("ETH", "BTC", "TRADING")
    assert ethbtc.trading
    assert info["NKNUSDT"].trading
    assert not next(s for s in info.values() if s.status == "BREAK").trading


@pytest.mark.parametrize("body", [[], {"symbols": None}, {"timezone": "UTC"}, "symbols"])
def test_made_up_exchange_info_without_symbols_is_refused(body):
    with pytest.raises(MalformedResponseError, match="no 'symbols' list"):
        parse_exchange_info(body)


def test_made_up_exchange_info_entry_without_status_is_refused():
    body = {"symbols": [{"symbol": "MADEUPBTC", "baseAsset": "MADEUP", "quoteAsset": "BTC"}]}
    with pytest.raises(MalformedResponseError, match="MADEUPBTC"):
        parse_exchange_info(body)
