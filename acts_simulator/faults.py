"""Fault rules: the documented switches that make the simulator misbehave on purpose.

Pure: no HTTP. `app.py` asks `FaultSet.draw(endpoint, symbol)` before answering a market-data
request and acts out the rule it gets; the book-shaped kinds are applied to the real payload by
`alter_book`. Rules come from tests and soak runs, over HTTP (`POST /_simulator/faults`) or
in-process, as plain dicts:

    {"endpoint": "depth", "symbol": "BTCUSDT", "kind": "http_503", "times": 2}
    {"endpoint": "*", "kind": "latency", "delay": 0.5, "probability": 0.1}
    {"kind": "ban_418", "retry_after": 5}

`endpoint` is one of `ENDPOINTS` ("*" = any), `symbol` null matches any symbol (and requests
without one), `times` null fires until cleared, `probability` (default 1) is drawn from an RNG
seeded with the simulator's seed, so a soak run's fault sequence is reproducible. Rules are tried
in the order they were added; the first that matches and fires wins.

Stream faults (endpoint "stream", or "*": a stream kind only ever fires on a stream) are drawn
once per diff event about to be sent on a websocket connection, with the event's symbol, and act
on that event or on its connection. They never change the book (the truth): only what is sent.

    {"endpoint": "stream", "symbol": "NKNUSDT", "kind": "skip_event", "times": 1}
    {"endpoint": "stream", "kind": "slow_consumer", "delay": 3, "times": 1}

    drop_connection    abrupt TCP close (no close frame), before this event is sent
    skip_event         this event is not sent: the next one of the symbol has U > previous u + 1
    duplicate_event    this event is sent twice in a row
    late_event         this event is held back and sent right after the symbol's next event (or
                       after `delay` seconds, default 1, if none comes): it arrives after a later one
    slow_consumer      the server stops writing to this connection for `delay` seconds (default 5),
                       then sends the backlog, this event included, in order
    expire_connection  the connection reaches its lifetime `delay` seconds from now (default 0):
                       closed as at Binance's 24 h mark (close frame 1000, "connection expired")
    server_close       a close frame from the server (1001, going away), before this event
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

ENDPOINTS = frozenset({"ping", "time", "exchangeInfo", "depth", "klines", "bookTicker", "stream", "*"})

#: HTTP error statuses with Binance-like bodies (an HTML page for 502, as a proxy sends it).
HTTP_ERROR_KINDS = frozenset({"http_500", "http_502", "http_503", "http_504"})
#: Kinds that alter a real depth body; they only ever fire on `depth` requests.
BOOK_KINDS = frozenset({"missing_bids", "empty_bids", "empty_asks", "crossed"})
#: Kinds that act on the websocket streams (see the module docstring); only ever on "stream".
STREAM_KINDS = frozenset({
    "drop_connection", "skip_event", "duplicate_event", "late_event", "slow_consumer",
    "expire_connection", "server_close",
})
DEFAULT_STALL_SECONDS = 5.0
DEFAULT_LATE_SECONDS = 1.0
KINDS = STREAM_KINDS | HTTP_ERROR_KINDS | BOOK_KINDS | frozenset({
    "rate_limit_429",    # 429 -1003 with Retry-After
    "ban_418",           # 418 -1003 with Retry-After; every request is refused until it lifts
    "latency",           # sleep `delay` seconds, then answer normally
    "timeout",           # never answer (until the client gives up and disconnects)
    "close_connection",  # drop the TCP connection without an answer
    "malformed_json",    # 200 with a truncated JSON body
    "invalid_symbol",    # 400 -1121 for a symbol that exists
})

DEFAULT_LATENCY_SECONDS = 1.0


@dataclass
class FaultRule:
    """One fault switch. `fired` counts how often it has fired so far."""

    kind: str
    endpoint: str = "*"
    symbol: str | None = None
    times: int | None = None
    retry_after: float | None = None
    delay: float | None = None
    probability: float = 1.0
    fired: int = field(default=0)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; one of {sorted(KINDS)}")
        if self.endpoint not in ENDPOINTS:
            raise ValueError(f"unknown endpoint {self.endpoint!r}; one of {sorted(ENDPOINTS)}")
        if self.kind in BOOK_KINDS and self.endpoint not in ("depth", "*"):
            raise ValueError(f"{self.kind} alters an order book: endpoint must be 'depth' or '*'")
        if self.kind in STREAM_KINDS and self.endpoint not in ("stream", "*"):
            raise ValueError(f"{self.kind} acts on the websocket streams: endpoint must be 'stream' or '*'")
        if self.endpoint == "stream" and self.kind not in STREAM_KINDS:
            raise ValueError(f"{self.kind} is not a stream fault; stream faults: {sorted(STREAM_KINDS)}")
        if self.times is not None and (not isinstance(self.times, int) or self.times < 0):
            raise ValueError(f"times must be a non-negative integer or null, got {self.times!r}")
        if not 0.0 <= float(self.probability) <= 1.0:
            raise ValueError(f"probability must be within [0, 1], got {self.probability!r}")
        for name in ("retry_after", "delay"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int | float) or value < 0):
                raise ValueError(f"{name} must be a non-negative number of seconds, got {value!r}")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FaultRule:
        if not isinstance(data, dict):
            raise ValueError(f"a fault rule is a JSON object, got {data!r}")
        allowed = {"kind", "endpoint", "symbol", "times", "retry_after", "delay", "probability"}
        unknown = set(data) - allowed
        if unknown:
            raise ValueError(f"unknown fault rule fields {sorted(unknown)}; allowed: {sorted(allowed)}")
        if "kind" not in data:
            raise ValueError("a fault rule needs a 'kind'")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.fired >= self.times

    def matches(self, endpoint: str, symbol: str | None) -> bool:
        if self.exhausted:
            return False
        if self.kind in BOOK_KINDS and endpoint != "depth":
            return False
        if (self.kind in STREAM_KINDS) != (endpoint == "stream"):
            return False
        if self.endpoint not in ("*", endpoint):
            return False
        return self.symbol is None or self.symbol == symbol


class FaultSet:
    """The active rules and what they fired. Thread-safe: tests change it from another thread."""

    def __init__(self, seed: int = 0) -> None:
        self._rules: list[FaultRule] = []
        self._fired: Counter[str] = Counter()
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

    def add(self, rules: list[FaultRule | dict[str, Any]]) -> list[FaultRule]:
        """Validate all, then append all (a bad rule adds none)."""
        parsed = [r if isinstance(r, FaultRule) else FaultRule.from_dict(r) for r in rules]
        with self._lock:
            self._rules.extend(parsed)
        return parsed

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def rules(self) -> list[dict[str, Any]]:
        with self._lock:
            return [rule.to_dict() for rule in self._rules]

    def rules_present(self) -> bool:
        return bool(self._rules)

    def fired(self) -> dict[str, int]:
        """How often each kind has fired since start (clearing rules does not reset it)."""
        with self._lock:
            return dict(self._fired)

    def draw(self, endpoint: str, symbol: str | None) -> FaultRule | None:
        """The rule that fires for this request, if any, counted as fired."""
        if not self._rules:  # the hot path of the streams: no lock when there is nothing to draw
            return None
        with self._lock:
            for rule in self._rules:
                if not rule.matches(endpoint, symbol):
                    continue
                if rule.probability < 1.0 and self._rng.random() >= rule.probability:
                    continue
                rule.fired += 1
                self._fired[rule.kind] += 1
                return rule
        return None


def alter_book(kind: str, depth: dict[str, Any]) -> dict[str, Any]:
    """A copy of a real depth body altered as `kind` says (made-up data, for tests only).

    `crossed` swaps the best bid and the best ask, so each side stays sorted but the best bid is
    above the best ask.
    """
    book = {**depth, "bids": list(depth["bids"]), "asks": list(depth["asks"])}
    if kind == "missing_bids":
        del book["bids"]
    elif kind == "empty_bids":
        book["bids"] = []
    elif kind == "empty_asks":
        book["asks"] = []
    elif kind == "crossed":
        if book["bids"] and book["asks"]:
            book["bids"][0], book["asks"][0] = book["asks"][0], book["bids"][0]
    else:
        raise ValueError(f"{kind!r} does not alter a book")
    return book


def truncate_json(body: bytes) -> bytes:
    """A JSON body cut in the middle, as a dropped proxy stream delivers it: never valid JSON."""
    return body[: max(1, len(body) // 2)]
