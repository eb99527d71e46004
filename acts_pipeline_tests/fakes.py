"""Stand-ins for fast in-process tests: an exchange that serves the real captured books, a
fixed clock, a MongoDB resource over mongomock, and a Dagster webserver's GraphQL endpoint. Integration and end-to-end tests use the
real simulator and database server instead."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import mongomock
import numpy as np
from pydantic import PrivateAttr

from acts_pipeline.orchestration.book_source import BookSource
from acts_pipeline.orchestration.capture import CaptureClock
from acts_pipeline.core.errors import ExchangeError, UnknownSymbolError
from acts_pipeline.exchange import BinanceExchange, TimedBook, WeightGate
from acts_pipeline.core.models import Kline, SymbolInfo
from acts_pipeline.core.parsing import parse_depth
from acts_pipeline.storage import MongoResource, MongoStore
from acts_pipeline.storage.handlers import levels_to_binary

#: Made-up boundary books, small and distinct from the captured REST books.
STREAM_BIDS = [[1.5, 2.0], [1.4, 3.0]]
STREAM_ASKS = [[1.6, 1.0], [1.7, 4.0]]


def boundary_book(symbol: str, minute: datetime, *, usable: bool = True, reason: str | None = None, **fields):
    """A boundary book (flat, as `storage.boundary_books` reads it) of `symbol` at `minute`'s close:
    the STREAM_* levels, or, with `usable=False`, none and `reason`."""
    close = minute + timedelta(minutes=1)
    book = {"symbol": symbol, "minute": minute, "close": close, "source": "stream", "in_sync": usable,
            "reason": reason, "depth_limit": 100, "decided_at": close + timedelta(milliseconds=12),
            "revised": False, "connection": "ws-1"}
    if usable:
        book.update(complete=True, last_update_id=1234, event_time=close - timedelta(milliseconds=59),
                    bids=levels_to_binary(np.array(STREAM_BIDS)), asks=levels_to_binary(np.array(STREAM_ASKS)))
    book.update(fields)
    return book


CAPTURES = Path(__file__).resolve().parent.parent / "acts_simulator" / "data" / "binance"
CAPTURED_SYMBOLS = ("NKNUSDT", "BLZETH", "LRCBTC", "RUNEEUR")


def captured_book(symbol: str, levels: int | None = 100):
    body = json.loads((CAPTURES / "depth" / f"{symbol}.json").read_text())
    if levels is not None:
        body = {**body, "bids": body["bids"][:levels], "asks": body["asks"][:levels]}
    return parse_depth(body, symbol)


class FakeClient:
    """Serves the captured books as if fetched `latency` after `now()`; records calls."""

    depth_limit = 100

    def __init__(self, now, failing: dict[str, ExchangeError] | None = None, levels: int | None = 100):
        self._now = now
        self.levels = levels
        if levels is None:
            self.depth_limit = 1000
        self.failing = failing or {}
        self.book_calls: list[str] = []
        self.kline_calls: list[tuple[str, datetime, datetime]] = []
        self.gate = WeightGate()  # nothing observed: used weight 0, so klines are never held back

    def order_books(self, symbols, *, deadline=None, max_attempts=6):
        results = {}
        for symbol in symbols:
            self.book_calls.append(symbol)
            if symbol in self.failing:
                results[symbol] = self.failing[symbol]
                continue
            requested = self._now()
            results[symbol] = TimedBook(captured_book(symbol, self.levels), requested, requested + timedelta(milliseconds=7), 1)
        return results

    def klines(self, symbol, start, end, max_attempts=4):
        self.kline_calls.append((symbol, start, end))
        if symbol in self.failing:
            raise self.failing[symbol]
        out, minute = [], start
        while minute < end:
            price = 1.0 + (minute.minute % 7) / 100
            out.append(Kline(symbol, minute, price, price * 1.01, price * 0.99, price, 10.0, 10.0 * price, 5, 4.0, 4.0 * price))
            minute += timedelta(minutes=1)
        return out

    def exchange_info(self):
        infos = {s: SymbolInfo(s, "TRADING", s[:3], s[3:]) for s in (*CAPTURED_SYMBOLS, "BTCUSDT", "ETHUSDT")}
        infos["HALTED"] = SymbolInfo("HALTED", "BREAK", "HAL", "TED")
        return infos

    def close(self):
        pass


_FAKE_CLIENTS: dict[str, FakeClient] = {}


class FakeExchange(BinanceExchange):
    """`BinanceExchange` whose client is a `FakeClient` (looked up by id: Dagster copies
    resources, so the client cannot live on the instance)."""

    fake_id: str

    def get_client(self):  # type: ignore[override]
        return _FAKE_CLIENTS[self.fake_id]


def fake_exchange(client: FakeClient, **fields) -> FakeExchange:
    """`fields`: other fields of `BinanceExchange`, e.g. `depth_limit=5000`."""
    fake_id = str(id(client))
    _FAKE_CLIENTS[fake_id] = client
    return FakeExchange(fake_id=fake_id, **fields)


class FixedClock(CaptureClock):
    """A capture clock that starts at `at` and moves only when slept on, instantly."""

    at: str
    _slept: list = PrivateAttr(default_factory=lambda: [0.0])

    def now(self) -> datetime:
        return datetime.fromisoformat(self.at) + timedelta(seconds=self._slept[0])

    def sleep(self, seconds: float) -> None:
        self._slept[0] += max(seconds, 0.001)


def failing_symbol(symbol: str) -> dict[str, ExchangeError]:
    return {symbol: UnknownSymbolError(f"Binance does not know symbol {symbol!r}", symbol=symbol)}


def _accept_pymongo_sort_argument() -> None:
    """pymongo >= 4.11 passes `sort=` to bulk builders' add_replace/add_update; mongomock 4.3
    predates it. Drop it when unset (ACTS never sorts inside a bulk write)."""
    from mongomock.collection import BulkOperationBuilder

    for name in ("add_replace", "add_update"):
        original = getattr(BulkOperationBuilder, name)
        if getattr(original, "_acts_shim", False):
            continue

        def shim(self, *args, _original=original, sort=None, **kwargs):
            assert sort is None, "mongomock cannot sort inside a bulk write"
            return _original(self, *args, **kwargs)

        shim._acts_shim = True
        setattr(BulkOperationBuilder, name, shim)


_accept_pymongo_sort_argument()

_MOCK_CLIENTS: dict[str, mongomock.MongoClient] = {}


class MongomockResource(MongoResource):
    """`MongoResource` over an in-memory mongomock database (one per `database` name)."""

    def get_store(self) -> MongoStore:
        client = _MOCK_CLIENTS.setdefault(self.database or "acts", mongomock.MongoClient(tz_aware=True))
        return MongoStore(client[self.database or "acts"])


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


class GraphqlWebserver:
    """A stand-in Dagster webserver: answers POST /graphql with a canned body; records what was
    posted. Serves on a free local port from a daemon thread until `close()`."""

    def __init__(self, body):
        """`body`: the JSON answer, or a function of the posted query that gives it."""
        self.posted = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                posted = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.posted.append(posted)
                answer = body(posted["query"]) if callable(body) else body
                data = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def rest_books() -> BookSource:
    """The snapshot asset's book source in the REST design (the recorder's store is never read)."""
    return BookSource(mongo=MongomockResource(database="book_source_unused"), source="rest")
