"""Snapshot documents decoded from raw BSON with their book sides as numpy arrays.

A stored snapshot's `bids` and `asks` are arrays of `[price, qty]` doubles
(`handlers.SnapshotHandler`). The driver decodes them into Python lists, 600 objects for 100
levels a side, which was most of the client's CPU when a backfill read a day of snapshots: 0.3 to
0.45 ms a snapshot, against 0.05 ms here (`features_history`'s run, all its work: 0.49 ms of CPU a
snapshot before, 0.14 ms with this; `benchmarks/features_history.py`).

Such an array's bytes are fixed but for its doubles: pair i is the element `\x04 "i" \x00`
holding the 27-byte document `len \x01 "0" double \x01 "1" double \x00`. So `decode_document`
checks every fixed byte of the array against the layout of that many pairs, takes the doubles at
their offsets with numpy, and has the driver decode the document's other fields. An array that is
not exactly that (integers, another shape, an empty side) is left to the driver: the document is
the same either way, a side as a `(levels, 2)` float64 array where it matched, as lists otherwise
(`OrderBook` takes both).
"""

from __future__ import annotations

import struct
from collections.abc import Collection, Iterator, Mapping
from functools import lru_cache
from typing import Any

import bson
import numpy as np
from bson.codec_options import CodecOptions
from bson.raw_bson import RawBSONDocument

LEVEL_FIELDS = frozenset({"bids", "asks"})
_INT32 = struct.Struct("<i")
#: Value sizes of the fixed-size BSON types: double, ObjectId, bool, datetime, null, int32,
#: timestamp, int64, decimal128.
_FIXED_SIZES = {0x01: 8, 0x07: 12, 0x08: 1, 0x09: 8, 0x0A: 0, 0x10: 4, 0x11: 8, 0x12: 8, 0x13: 16}
_LENGTH_PREFIXED = {0x02: 4, 0x0D: 4, 0x0E: 4, 0x03: 0, 0x04: 0, 0x05: 5}  # string, code, symbol; document, array; binary
_ARRAY = 0x04
#: One `[price, qty]` pair as BSON: length 27, double "0", double "1", end; the doubles zeroed.
_PAIR = _INT32.pack(27) + b"\x010\x00" + bytes(8) + b"\x011\x00" + bytes(8) + b"\x00"
_PRICE_AT, _QTY_AT = 7, 18


def pairs_in(length: int) -> int | None:
    """How many pairs an array of `length` bytes holds if it is an array of pairs; None if no
    count of pairs has that length. Element i takes 29 + len(str(i)) bytes (type, key, NUL,
    pair), plus 5 for the array's length and end."""
    count, rest, width = 0, length - 5, 1
    while rest > 0:
        keys = 10 ** width - (10 ** (width - 1) if width > 1 else 0)
        size = 29 + width
        if rest <= keys * size:
            return count + rest // size if rest % size == 0 else None
        count, rest, width = count + keys, rest - keys * size, width + 1
    return count if rest == 0 else None


@lru_cache(maxsize=64)
def _layout(pairs: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """For an array of `pairs` pairs: the positions of its fixed bytes, those bytes, and the
    positions of each price's and quantity's 8 bytes."""
    elements, prices, quantities, at = [], [], [], 4
    for i in range(pairs):
        head = b"\x04" + str(i).encode() + b"\x00"
        elements.append(head + _PAIR)
        prices.append(at + len(head) + _PRICE_AT)
        quantities.append(at + len(head) + _QTY_AT)
        at += len(head) + len(_PAIR)
    template = np.frombuffer(_INT32.pack(at + 1) + b"".join(elements) + b"\x00", dtype=np.uint8)
    eight = np.arange(8)
    price_bytes = (np.asarray(prices)[:, None] + eight).ravel()
    quantity_bytes = (np.asarray(quantities)[:, None] + eight).ravel()
    fixed = np.ones(len(template), dtype=bool)
    fixed[price_bytes] = fixed[quantity_bytes] = False
    positions = np.flatnonzero(fixed)
    return positions, template[positions], price_bytes, quantity_bytes


def _levels(array: np.ndarray) -> np.ndarray | None:
    """The `(pairs, 2)` doubles of the BSON array `array` (its bytes), None unless it is a
    non-empty array of `[double, double]` pairs laid out as the driver writes them."""
    pairs = pairs_in(len(array))
    if not pairs:
        return None
    positions, expected, price_bytes, quantity_bytes = _layout(pairs)
    if not np.array_equal(array[positions], expected):
        return None
    levels = np.empty((pairs, 2), dtype=np.float64)
    levels[:, 0] = array[price_bytes].view("<f8")
    levels[:, 1] = array[quantity_bytes].view("<f8")
    return levels


def decode_document(raw: bytes, codec_options: CodecOptions, *, level_fields: Collection[str] = LEVEL_FIELDS,
                    drop: Collection[str] = ("_id",)) -> dict[str, Any]:
    """The BSON document `raw` as a dict, the arrays of `level_fields` as `(levels, 2)` float64
    arrays where they are arrays of `[double, double]` pairs, the fields of `drop` left out;
    every other field decoded by the driver with `codec_options`."""
    data = np.frombuffer(raw, dtype=np.uint8)
    kept: list[bytes] = []
    arrays: dict[str, np.ndarray] = {}
    at, copied, end = 4, 4, len(raw) - 1
    while at < end:
        kind = raw[at]
        name_end = raw.index(b"\x00", at + 1)
        value = name_end + 1
        if kind in _FIXED_SIZES:
            size = _FIXED_SIZES[kind]
        elif kind in _LENGTH_PREFIXED:
            size = _INT32.unpack_from(raw, value)[0] + _LENGTH_PREFIXED[kind]
        else:  # a type this walk does not size: the driver decodes the whole document
            return _decoded(raw, codec_options, drop)
        name = raw[at + 1:name_end].decode()
        levels = _levels(data[value:value + size]) if kind == _ARRAY and name in level_fields else None
        if levels is not None or name in drop:
            kept.append(raw[copied:at])
            copied = value + size
            if levels is not None:
                arrays[name] = levels
        at = value + size
    if not arrays:
        return _decoded(raw, codec_options, drop)
    kept.append(raw[copied:])  # to the document's end byte
    body = b"".join(kept)
    document = bson.decode(_INT32.pack(4 + len(body)) + body, codec_options)
    document.update(arrays)
    return document


def find_decoded(collection: Any, query: Mapping[str, Any], *, sort: str | None = None,
                 batch_size: int = 0) -> Iterator[dict[str, Any]]:
    """The documents of `collection` (a pymongo collection) matching `query`, received as raw
    BSON and decoded by `decode_document` (book sides as arrays, no `_id`); sorted by the
    ascending field `sort` if given. No projection: the embedded server deep-copies every document
    it projects, even for `{"_id": False}` (1.5 to 2.5 times its CPU for snapshots)."""
    options = collection.codec_options
    raw = collection.with_options(codec_options=options.with_options(document_class=RawBSONDocument))
    cursor = raw.find(query).batch_size(batch_size)
    if sort is not None:
        cursor = cursor.sort(sort, 1)
    for document in cursor:
        yield decode_document(bytes(document.raw), options)


def _decoded(raw: bytes, codec_options: CodecOptions, drop: Collection[str]) -> dict[str, Any]:
    document: Mapping[str, Any] = bson.decode(raw, codec_options)
    return {k: v for k, v in document.items() if k not in drop}
