"""`bson_levels.decode_document` against the driver's own decoding of the same bytes: the same
document, the book sides as float64 arrays holding the very doubles stored, whatever the number
of levels (the array keys grow from one digit to four), and the driver's result for anything that
is not an array of `[double, double]` pairs."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import bson
import numpy as np
from bson.codec_options import CodecOptions
from hypothesis import given, settings
from hypothesis import strategies as st

from acts_pipeline.core.models import OrderBookSnapshot
from acts_pipeline.storage.bson_levels import decode_document, pairs_in
from acts_pipeline.storage.handlers import SnapshotHandler
from acts_pipeline_tests.fakes import CAPTURED_SYMBOLS, captured_book

OPTIONS = CodecOptions(tz_aware=True, tzinfo=UTC)
MINUTE = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
doubles = st.floats(allow_nan=True, allow_infinity=True, width=64)


def driver(raw: bytes) -> dict:
    document = bson.decode(raw, OPTIONS)
    document.pop("_id", None)
    return document


def same_doubles(array: np.ndarray, pairs: list) -> bool:
    """Bit for bit (NaN, -0.0 included), as the driver's floats are."""
    return array.dtype == np.float64 and array.shape == (len(pairs), 2) and \
        array.tobytes() == np.array(pairs, dtype=np.float64).reshape(-1, 2).tobytes()


def _snapshot(symbol: str) -> OrderBookSnapshot:
    return OrderBookSnapshot(symbol=symbol, minute=MINUTE, requested_at=MINUTE, captured_at=MINUTE, depth_limit=100,
                             book=captured_book(symbol), source="rest")


def test_a_stored_snapshot_decodes_to_the_drivers_document_with_array_sides():
    for symbol in CAPTURED_SYMBOLS:
        (document,) = SnapshotHandler().to_documents([_snapshot(symbol)])
        raw = bson.encode({"_id": bson.ObjectId(), **document})
        decoded, expected = decode_document(raw, OPTIONS), driver(raw)
        assert set(decoded) == set(expected)
        for side in ("bids", "asks"):
            assert isinstance(decoded[side], np.ndarray) and same_doubles(decoded[side], expected[side])
        assert {k: v for k, v in decoded.items() if k not in ("bids", "asks")} == \
               {k: v for k, v in expected.items() if k not in ("bids", "asks")}
        book = SnapshotHandler().from_documents([decoded])[0].book
        assert np.array_equal(book.bids, np.array(expected["bids"]))


@settings(max_examples=200, deadline=None)
@given(bids=st.lists(st.tuples(doubles, doubles), max_size=1200),
       asks=st.lists(st.tuples(doubles, doubles), max_size=30),
       extra=st.dictionaries(st.sampled_from(["source", "event_time", "last_update_id", "note", "flag", "sub"]),
                             st.one_of(st.none(), st.text(max_size=20), st.integers(-2**63, 2**63 - 1),
                                       st.booleans(), st.just(MINUTE), st.binary(max_size=10),
                                       st.dictionaries(st.text("abc", max_size=3), st.integers(-2**63, 2**63 - 1), max_size=3)),
                             max_size=6),
       bids_first=st.booleans())
def test_any_levels_and_fields_decode_as_the_driver_does(bids, asks, extra, bids_first):
    sides = {"bids": [list(p) for p in bids], "asks": [list(p) for p in asks]}
    order = ["bids", "asks"] if bids_first else ["asks", "bids"]
    raw = bson.encode({"_id": bson.ObjectId(), "symbol": "ABCUSDT", **{k: sides[k] for k in order[:1]},
                       "minute": MINUTE, **extra, **{k: sides[k] for k in order[1:]}})
    decoded, expected = decode_document(raw, OPTIONS), driver(raw)
    assert set(decoded) == set(expected)
    for side in ("bids", "asks"):
        if sides[side]:
            assert same_doubles(decoded[side], expected[side])
        else:
            assert decoded[side] == [] == expected[side]
    assert {k: v for k, v in decoded.items() if k not in ("bids", "asks")} == \
           {k: v for k, v in expected.items() if k not in ("bids", "asks")}


def test_sides_that_are_not_double_pairs_are_the_drivers_lists():
    unusual = {
        "integers": [[10, 2], [9, 1]],
        "a triple": [[10.0, 2.0, 1.0]],
        "a string": [[10.0, "2.0"]],
        "a mixed pair": [[10.0, 2.0], [9, 1.0]],
        "documents": [{"0": 10.0, "1": 2.0}],
        "a single level": [10.0, 2.0],
    }
    for what, bids in unusual.items():
        raw = bson.encode({"_id": bson.ObjectId(), "symbol": "X", "bids": bids, "asks": [[11.0, 1.0]]})
        decoded = decode_document(raw, OPTIONS)
        assert decoded["bids"] == driver(raw)["bids"], what
        assert isinstance(decoded["asks"], np.ndarray), what  # the other side still takes the fast path


def test_only_the_level_fields_are_decoded_as_arrays_and_drop_is_honoured():
    raw = bson.encode({"_id": 7, "symbol": "X", "bids": [[1.0, 2.0]], "other": [[1.0, 2.0]]})
    decoded = decode_document(raw, OPTIONS)
    assert decoded["other"] == [[1.0, 2.0]] and isinstance(decoded["bids"], np.ndarray) and "_id" not in decoded
    assert decode_document(raw, OPTIONS, drop=())["_id"] == 7


def test_a_type_the_walk_does_not_size_leaves_the_whole_document_to_the_driver():
    raw = bson.encode({"_id": 1, "pattern": re.compile("^x"), "bids": [[1.0, 2.0]]})
    decoded = decode_document(raw, OPTIONS)
    assert decoded == {"pattern": bson.decode(raw)["pattern"], "bids": [[1.0, 2.0]]}


def test_pairs_in_knows_the_length_of_every_count_of_pairs():
    for pairs in (0, 1, 9, 10, 11, 99, 100, 101, 999, 1000, 1001, 5000):
        length = len(bson.encode({"a": [[0.0, 0.0]] * pairs})) - 4 - 3 - 1  # the array's own bytes
        assert pairs_in(length) == pairs
        assert pairs_in(length + 1) is None and pairs_in(length - 1) is None


def test_every_width_of_the_array_keys():
    rng = np.random.default_rng(3)
    for pairs in (1, 9, 10, 11, 99, 100, 101, 999, 1000, 1001, 5000):
        bids = rng.normal(0, 1e6, (pairs, 2))
        raw = bson.encode({"symbol": "X", "bids": bids.tolist(), "asks": []})
        decoded = decode_document(raw, OPTIONS)
        assert decoded["bids"].tobytes() == bids.tobytes() and decoded["asks"] == [], pairs
