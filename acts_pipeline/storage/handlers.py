"""Conversion between in-memory data and MongoDB documents: the I/O manager's type handlers.

Each handler knows the Python types in its `supported_types`, and is chosen by the EXACT type an
asset declares (as Dagster's `DbIOManager` chooses a `DbTypeHandler`): `list[OrderBookSnapshot]`
is stored as snapshots, a list of anything else is refused, never guessed. `to_documents` makes BSON-ready dicts (every one carries
`symbol` and `minute`, the unique key), `from_documents` rebuilds the type from stored documents.
Floats that could not be computed (NaN) and pandas' missing values are stored as null: a reader
never has to tell NaN, 0 and missing apart.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol, get_args, get_origin

import numpy as np
import pandas as pd

from acts_pipeline.core.models import OrderBook, OrderBookSnapshot


class TypeHandler(Protocol):
    #: The exact types this handler stores and loads (a generic alias names its items: `list[X]`).
    supported_types: tuple[Any, ...]

    def to_documents(self, obj: Any) -> list[dict[str, Any]]: ...

    def from_documents(self, documents: Sequence[Mapping[str, Any]]) -> Any: ...


def as_utc(moment: Any) -> datetime:
    """Mongo returns naive datetimes (UTC by convention); pandas may hand Timestamps."""
    if isinstance(moment, pd.Timestamp):
        moment = moment.to_pydatetime()
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def bson_value(value: Any) -> Any:
    """A value BSON can store, with NaN and pandas NA as None."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return None if math.isnan(value) else value
    if isinstance(value, (pd.Timestamp, datetime)):
        return as_utc(value)
    return value


class SnapshotHandler:
    """`list[OrderBookSnapshot]` <-> `order_book_snapshots` documents.

    Book sides are stored as arrays of `[price, qty]` doubles, best first, so MongoDB queries
    can reach single levels (`bids.0.0` is the best bid) instead of an opaque blob.
    """

    supported_types = (list[OrderBookSnapshot],)

    def to_documents(self, obj: Sequence[OrderBookSnapshot]) -> list[dict[str, Any]]:
        strangers = {type(s).__name__ for s in obj if not isinstance(s, OrderBookSnapshot)}
        if strangers:
            raise TypeError(f"a list[OrderBookSnapshot] output holds {', '.join(sorted(strangers))} items")
        return [
            {
                "symbol": s.symbol,
                "minute": as_utc(s.minute),
                "captured_at": as_utc(s.captured_at),
                "requested_at": as_utc(s.requested_at),
                "last_update_id": int(s.last_update_id),
                "depth_limit": int(s.depth_limit),
                "bids": s.bids.tolist(),
                "asks": s.asks.tolist(),
                "source": s.source,
                **({"event_time": as_utc(s.event_time)} if s.event_time is not None else {}),
            }
            for s in obj
        ]

    def from_documents(self, documents: Sequence[Mapping[str, Any]]) -> list[OrderBookSnapshot]:
        return [
            OrderBookSnapshot(
                symbol=d["symbol"],
                minute=as_utc(d["minute"]),
                requested_at=as_utc(d["requested_at"]),
                captured_at=as_utc(d["captured_at"]),
                depth_limit=int(d["depth_limit"]),
                book=OrderBook(d["symbol"], int(d["last_update_id"]), d["bids"], d["asks"]),
                # Snapshots stored before the recorder existed have neither field: REST books.
                source=d.get("source", "rest"),
                event_time=as_utc(d["event_time"]) if d.get("event_time") is not None else None,
            )
            for d in documents
        ]


class DataFrameHandler:
    """`pandas.DataFrame` (one row per cell, `symbol` and `minute` columns) <-> documents."""

    supported_types = (pd.DataFrame,)

    def to_documents(self, obj: pd.DataFrame) -> list[dict[str, Any]]:
        missing = {"symbol", "minute"} - set(obj.columns)
        if missing:
            raise ValueError(f"a stored DataFrame needs columns symbol and minute; missing {sorted(missing)}")
        columns = list(obj.columns)
        return [
            {column: bson_value(value) for column, value in zip(columns, row, strict=True)}
            for row in obj.itertuples(index=False, name=None)
        ]

    def from_documents(self, documents: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
        frame = pd.DataFrame([{k: v for k, v in d.items() if k != "_id"} for d in documents])
        for column in ("minute", "captured_at", "requested_at"):
            if column in frame.columns:
                frame[column] = pd.to_datetime(frame[column], utc=True)
        return frame


HANDLERS: tuple[TypeHandler, ...] = (DataFrameHandler(), SnapshotHandler())


def _exact(python_type: Any) -> Any:
    """`python_type` in one spelling: Dagster hands `typing.List[X]` where code writes `list[X]`."""
    origin = get_origin(python_type)
    return (origin, get_args(python_type)) if origin is not None else python_type


def _handlers_by_type() -> dict[Any, TypeHandler]:
    by_type: dict[Any, TypeHandler] = {}
    for handler in HANDLERS:
        for supported in handler.supported_types:
            if _exact(supported) in by_type:
                raise TypeError(f"two type handlers for {supported!r}")
            by_type[_exact(supported)] = handler
    return by_type


_BY_TYPE = _handlers_by_type()
STORED_TYPES = "pandas.DataFrame and list[OrderBookSnapshot]"


def handler_for(python_type: Any) -> TypeHandler:
    """The handler of exactly `python_type` (an output's or input's declared type); any other
    type, a bare `list` or a list of anything but `OrderBookSnapshot` included, is refused."""
    try:
        handler = _BY_TYPE.get(_exact(python_type))
    except TypeError:  # an unhashable "type"
        handler = None
    if handler is None:
        raise TypeError(f"the MongoDB I/O manager stores {STORED_TYPES}, not {python_type!r}")
    return handler


#: How `boundary_books` holds levels: the (k, 2) float64 array of [price, qty] rows, little-endian,
#: as BSON binary. The recorder writes a close's books for every symbol within a fraction of a
#: second after it; lists of doubles cost BSON encoding and server-side parsing per number,
#: bytes cost nothing. (Snapshots, the public contract, keep lists of doubles.)
LEVELS_DTYPE = np.dtype("<f8")


def levels_to_binary(levels: np.ndarray) -> bytes:
    return np.ascontiguousarray(levels, dtype=LEVELS_DTYPE).tobytes()


def levels_from_binary(data: bytes | None) -> np.ndarray:
    """The (k, 2) array `levels_to_binary` stored (a copy: writable, independent of `data`)."""
    if not data:
        return np.empty((0, 2), dtype=np.float64)
    return np.frombuffer(data, dtype=LEVELS_DTYPE).reshape(-1, 2).astype(np.float64)
