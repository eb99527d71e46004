"""The simulator's HTTP face: Binance's public REST routes, request weights and fault switches.

`create_app()` builds an aiohttp application serving

    GET /api/v3/ping | time | exchangeInfo | depth | klines | ticker/bookTicker

with Binance's response shapes, error bodies (`{"code": -1121, "msg": "Invalid symbol."}`) and
`X-MBX-USED-WEIGHT-1M` headers, over a `Market` (the prices, books and candles) and a
`FaultSet` (the documented fault switches). Every market-data request goes through the same
steps: an IP ban answers 418; a request that would exceed the minute's weight answers 429 (and
one sent before the 429's Retry-After has passed earns a ban); the weight is charged; a fault
rule, if one fires, is acted out; else the endpoint answers.

On the same port, Binance's websocket market streams (`streams.py`): `GET /stream?streams=...`
(combined) and `GET /ws/<stream>` (raw), the diff-depth streams `<symbol>@depth@100ms` of the same
books `depth` answers from.

Control routes, which cost no weight and are never refused:

    GET    /_simulator/faults   {"rules": [rule, ...]}
    POST   /_simulator/faults   body {"rules": [rule, ...]}: adds them (all or none), 400 if bad
    DELETE /_simulator/faults   removes every rule and lifts any ban
    GET    /_simulator/stats    request, response and fault counts, the weight used, and the
                                streams' counts under "streams"
    GET    /_simulator/true_book?symbol=NKNUSDT&at_ms=1780272060000&limit=100
                                the true book at `at_ms` (default now): every diff event with
                                E <= at_ms applied, none after (`Market.true_book`):
        {"symbol": "NKNUSDT", "at_ms": 1780272060000, "lastUpdateId": 2459335911,
         "E": 1780272059968, "bids": [["0.35180000", "2512.00000000"], ...], "asks": [...]}
                                400 for a bad symbol or parameter or a time after now, 404 for a
                                time before the book's birth or past the retention
    GET    /_simulator/events?symbol=NKNUSDT&from_ms=...&to_ms=...
                                {"events": [payload, ...]}: every diff event of the symbol with
                                from_ms < E <= to_ms (default now), as the stream sends its data,
                                faults or not: what a subscriber should have received
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import math
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from acts_simulator.faults import FaultRule, FaultSet, alter_book, truncate_json
from acts_simulator.market import (
    DEFAULT_DEPTH_LIMIT,
    DEFAULT_KLINES_LIMIT,
    DEFAULT_RETENTION_SECONDS,
    MAX_LEVELS,
    BookUnavailable,
    Clock,
    InvalidSymbol,
    Market,
)
from acts_simulator.streams import StreamConfig, StreamHub

logger = logging.getLogger(__name__)

#: Binance Spot's REQUEST_WEIGHT limit per minute today (the 2021 capture says 1200).
DEFAULT_WEIGHT_LIMIT = 6000
#: A first IP ban on Binance lasts 2 minutes (repeat offenders get up to 3 days).
DEFAULT_BAN_SECONDS = 120.0
#: The `timeout` fault never answers within any sane client timeout.
TIMEOUT_FAULT_SECONDS = 60.0

_dumps = functools.partial(json.dumps, separators=(",", ":"))


class ApiError(Exception):
    """An error answered with Binance's body `{"code": ..., "msg": ...}`."""

    def __init__(self, status: int, code: int, msg: str) -> None:
        super().__init__(msg)
        self.status, self.code, self.msg = status, code, msg


def _invalid_symbol() -> ApiError:
    return ApiError(400, -1121, "Invalid symbol.")


def _mandatory(name: str) -> ApiError:
    return ApiError(
        400, -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
    )


def _illegal(name: str, legal: str = "^[0-9]{1,20}$") -> ApiError:
    return ApiError(400, -1100, f"Illegal characters found in parameter '{name}'; legal range is '{legal}'.")


def _int_param(query, name: str, default: int | None) -> int | None:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit():
        raise _illegal(name)
    return int(raw)


def _symbol_list(raw: str) -> list[str]:
    """Binance's `symbols` parameter: a JSON array of names, e.g. `["BTCUSDT","BNBBTC"]`."""
    try:
        symbols = json.loads(raw)
    except ValueError:
        symbols = None
    if not isinstance(symbols, list) or not symbols or not all(isinstance(s, str) for s in symbols):
        raise _illegal("symbols", '^\\[("[A-Z0-9-_.]{1,20}"(,"[A-Z0-9-_.]{1,20}"){0,}){0,1}\\]$')
    return symbols


# --------------------------------------------------------------------------------------------
# Request weight.


@dataclass(frozen=True)
class Verdict:
    """What the weight ledger says about a request: admitted, or refused with Retry-After."""

    status: int  # 200 (admitted), 429 or 418
    retry_after: int = 0


class WeightLedger:
    """REQUEST_WEIGHT used per wall-clock minute, with Binance's escalation.

    Over the limit: 429 with Retry-After = seconds to the next minute. Any request before that
    moment, from a client that was told to wait: 418 and a ban of `ban_seconds`, during which every
    request gets 418. One budget for the whole server: the simulator serves one machine.
    """

    def __init__(self, limit: int, ban_seconds: float, clock: Clock) -> None:
        self.limit = limit
        self.ban_seconds = ban_seconds
        self._clock = clock
        self._minute = math.floor(clock() / 60)
        self._used = 0
        self._retry_at = 0.0
        self._banned_until = 0.0
        self._lock = threading.Lock()

    def _roll(self, now: float) -> None:
        minute = math.floor(now / 60)
        if minute != self._minute:
            self._minute, self._used = minute, 0

    def used(self) -> int:
        with self._lock:
            self._roll(self._clock())
            return self._used

    def banned_for(self) -> float:
        with self._lock:
            return max(0.0, self._banned_until - self._clock())

    def admit(self, weight: int) -> Verdict:
        now = self._clock()
        with self._lock:
            self._roll(now)
            if now < self._banned_until:
                return Verdict(418, math.ceil(self._banned_until - now))
            if now < self._retry_at:
                self._banned_until = now + self.ban_seconds
                logger.warning("request sent during Retry-After: banned for %.0f s", self.ban_seconds)
                return Verdict(418, math.ceil(self.ban_seconds))
            if self._used + weight > self.limit:
                self._retry_at = (self._minute + 1) * 60.0
                return Verdict(429, max(1, math.ceil(self._retry_at - now)))
            self._used += weight
            return Verdict(200)

    def ban(self, seconds: float) -> None:
        with self._lock:
            self._banned_until = max(self._banned_until, self._clock() + seconds)

    def lift_ban(self) -> None:
        with self._lock:
            self._banned_until = self._retry_at = 0.0


# --------------------------------------------------------------------------------------------
# Counters for /_simulator/stats.


@dataclass
class Stats:
    requests: Counter = field(default_factory=Counter)
    requests_by_symbol: defaultdict = field(default_factory=lambda: defaultdict(Counter))
    responses: Counter = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record_request(self, endpoint: str, symbol: str | None) -> None:
        with self.lock:
            self.requests[endpoint] += 1
            if symbol:
                self.requests_by_symbol[endpoint][symbol] += 1

    def record_response(self, outcome: int | str) -> None:
        with self.lock:
            self.responses[str(outcome)] += 1

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "requests": dict(self.requests),
                "requests_by_symbol": {e: dict(c) for e, c in self.requests_by_symbol.items()},
                "responses": dict(self.responses),
            }


@dataclass
class Simulator:
    """Everything one running simulator owns; in-process users reach it via `app[SIMULATOR]`."""

    market: Market
    faults: FaultSet
    ledger: WeightLedger
    stats: Stats = field(default_factory=Stats)
    streams: StreamHub | None = None

    def set_faults(self, rules: list[FaultRule | dict[str, Any]]) -> list[FaultRule]:
        return self.faults.add(rules)

    def clear_faults(self) -> None:
        """Remove every rule and lift any ban, so the next test starts clean."""
        self.faults.clear()
        self.ledger.lift_ban()

    def stats_snapshot(self) -> dict[str, Any]:
        return {
            **self.stats.snapshot(),
            "faults_fired": self.faults.fired(),
            "used_weight": self.ledger.used(),
            "weight_limit": self.ledger.limit,
            "banned_for": self.ledger.banned_for(),
            "streams": self.streams.stats.snapshot() if self.streams is not None else {},
        }


SIMULATOR = web.AppKey("simulator", Simulator)


# --------------------------------------------------------------------------------------------
# Endpoints: (weight, answer) per route. Each answer turns the query into a JSON-able body.


def depth_weight(query) -> int:
    """Binance's depth weights: 5 up to 100 levels, 25 to 500, 50 to 1000, 250 to 5000."""
    limit = _int_param(query, "limit", DEFAULT_DEPTH_LIMIT) or DEFAULT_DEPTH_LIMIT
    if limit <= 100:
        return 5
    if limit <= 500:
        return 25
    return 50 if limit <= 1000 else 250


def handle_ping(market: Market, query) -> dict:
    """`GET /api/v3/ping`: `{}`."""
    return {}


def handle_time(market: Market, query) -> dict:
    """`GET /api/v3/time`: `{"serverTime": 1633998511098}`."""
    return {"serverTime": int(market.clock() * 1000)}


def handle_exchange_info(market: Market, query, *, weight_limit: int) -> dict:
    """`GET /api/v3/exchangeInfo[?symbol=X | ?symbols=["A","B"]]`: the captured body.

        {"timezone": "UTC", "serverTime": 1633998511098,
         "rateLimits": [{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE",
                         "intervalNum": 1, "limit": 6000}, ...],
         "exchangeFilters": [],
         "symbols": [{"symbol": "ETHBTC", "status": "TRADING", "baseAsset": "ETH", ...,
                      "filters": [{"filterType": "PRICE_FILTER", "tickSize": "0.00000100", ...}]}]}

    `serverTime` is now and the REQUEST_WEIGHT limit is the simulator's own.
    """
    symbols = None
    if query.get("symbol"):
        symbols = [query["symbol"]]
    elif query.get("symbols"):
        symbols = _symbol_list(query["symbols"])
    try:
        return market.exchange_info(symbols, request_weight_limit=weight_limit)
    except InvalidSymbol:
        raise _invalid_symbol() from None


def handle_depth(market: Market, query) -> dict:
    """`GET /api/v3/depth?symbol=NKNUSDT&limit=5`: the order book, best levels first.

        {"lastUpdateId": 499869752,
         "bids": [["0.35210000", "672.00000000"], ["0.35200000", "1144.00000000"], ...],
         "asks": [["0.35250000", "3959.00000000"], ["0.35260000", "3199.00000000"], ...]}

    (the head of the real capture the simulated books are rescaled from). `limit` defaults to
    100 and is truncated to 5000; a side has fewer levels when its captured book had fewer.
    """
    symbol, limit = _depth_params(query)
    try:
        return market.depth(symbol, limit)
    except InvalidSymbol:
        raise _invalid_symbol() from None


def render_depth(market: Market, query) -> str:
    """`handle_depth`'s body as JSON text (`Market.depth_json`): what a request that no fault
    rule touches is sent, without building the lists and strings only to serialise them."""
    symbol, limit = _depth_params(query)
    try:
        return market.depth_json(symbol, limit)
    except InvalidSymbol:
        raise _invalid_symbol() from None


def _depth_params(query) -> tuple[str, int]:
    symbol = query.get("symbol")
    if not symbol:
        raise _mandatory("symbol")
    limit = _int_param(query, "limit", DEFAULT_DEPTH_LIMIT)
    if limit == 0:
        raise _illegal("limit")
    return symbol, limit


def handle_klines(market: Market, query) -> list:
    """`GET /api/v3/klines?symbol=NKNUSDT&interval=1m&startTime=...&endTime=...&limit=...`.

    One 12-element array per minute, ascending by open time:

        [[1633998480000,      // open time (ms)
          "0.35270000",       // open
          "0.35280000",       // high
          "0.35220000",       // low
          "0.35280000",       // close
          "25877.00000000",   // volume (base asset)
          1633998539999,      // close time = open time + 59999
          "9116.04600000",    // quote asset volume
          30,                 // number of trades
          "58.00000000",      // taker buy base volume
          "20.46240000",      // taker buy quote volume
          "0"]]               // unused

    (values of a real NKNUSDT kline_1m message of the captured stream). Only interval 1m exists
    here; see `market.kline_open_minutes` for the range rules.
    """
    symbol = query.get("symbol")
    if not symbol:
        raise _mandatory("symbol")
    interval = query.get("interval")
    if not interval:
        raise _mandatory("interval")
    if interval != "1m":
        raise ApiError(400, -1120, "Invalid interval.")
    start_ms = _int_param(query, "startTime", None)
    end_ms = _int_param(query, "endTime", None)
    limit = _int_param(query, "limit", DEFAULT_KLINES_LIMIT) or DEFAULT_KLINES_LIMIT
    try:
        return market.klines(symbol, start_ms=start_ms, end_ms=end_ms, limit=limit)
    except InvalidSymbol:
        raise _invalid_symbol() from None


def handle_book_ticker(market: Market, query) -> dict | list:
    """`GET /api/v3/ticker/bookTicker[?symbol=X | ?symbols=[...]]`: the top of each book.

        {"symbol": "NKNUSDT", "bidPrice": "0.35210000", "bidQty": "672.00000000",
         "askPrice": "0.35260000", "askQty": "3199.00000000"}

    Without a symbol: a list, one per TRADING symbol.
    """
    try:
        if query.get("symbol"):
            return market.book_ticker(query["symbol"])
        names = _symbol_list(query["symbols"]) if query.get("symbols") else market.trading_symbols
        return [market.book_ticker(name) for name in names]
    except InvalidSymbol:
        raise _invalid_symbol() from None


@dataclass(frozen=True)
class Endpoint:
    name: str  # as fault rules and stats name it
    weight: Callable[[Any], int]
    answer: Callable[..., Any]
    #: `answer` already serialised (`_dumps(answer(...))`, the same text), for the hot path; the
    #: fault kinds that alter or cut a body still get it from `answer`.
    render: Callable[..., str] | None = None


def _endpoints(weight_limit: int) -> dict[str, Endpoint]:
    return {
        "ping": Endpoint("ping", lambda q: 1, handle_ping),
        "time": Endpoint("time", lambda q: 1, handle_time),
        "exchangeInfo": Endpoint(
            "exchangeInfo", lambda q: 20, functools.partial(handle_exchange_info, weight_limit=weight_limit)
        ),
        "depth": Endpoint("depth", depth_weight, handle_depth, render_depth),
        "klines": Endpoint("klines", lambda q: 2, handle_klines),
        "ticker/bookTicker": Endpoint(
            "bookTicker", lambda q: 2 if q.get("symbol") else 4, handle_book_ticker
        ),
    }


# --------------------------------------------------------------------------------------------
# Responses.

_ERROR_BODIES = {
    "http_500": (500, -1000, "An unknown error occured while processing the request."),
    "http_503": (503, -1008, "Server is currently overloaded with other requests. "
                             "Please try again in a few minutes."),
    "http_504": (504, -1007, "Timeout waiting for response from backend server. Send status unknown; "
                             "execution status unknown."),
}
# What a load balancer in front of Binance sends: not JSON.
_BAD_GATEWAY_HTML = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n"
)
_NOT_FOUND_HTML = "<html><body><h1>404 Not Found</h1></body></html>"


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return _json_text(_dumps(body), status, headers)


def _json_text(text: str, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(text=text, status=status, content_type="application/json", headers=headers)


def _error(error: ApiError) -> web.Response:
    return _json({"code": error.code, "msg": error.msg}, status=error.status)


def _too_many(retry_after: int, limit: int) -> web.Response:
    msg = (f"Too much request weight used; current limit is {limit} request weight per 1 MINUTE. "
           "Please use WebSocket Streams for live updates to avoid polling the API.")
    return _json({"code": -1003, "msg": msg}, status=429, headers={"Retry-After": str(retry_after)})


def _banned(retry_after: int, now: float) -> web.Response:
    msg = (f"Way too much request weight used; IP banned until {int((now + retry_after) * 1000)}. "
           "Please use WebSocket Streams for live updates to avoid bans.")
    return _json({"code": -1003, "msg": msg}, status=418, headers={"Retry-After": str(retry_after)})


async def _act_out(
    rule: FaultRule, request: web.Request, sim: Simulator, answer: Callable[[], Any]
) -> web.StreamResponse | None:
    """The response a fired rule makes; None when it dropped the connection."""
    kind = rule.kind
    logger.info("fault %s fired on %s", kind, request.path_qs)
    if kind in _ERROR_BODIES:
        return _error(ApiError(*_ERROR_BODIES[kind]))
    if kind == "http_502":
        return web.Response(text=_BAD_GATEWAY_HTML, status=502, content_type="text/html")
    if kind == "rate_limit_429":
        retry = rule.retry_after if rule.retry_after is not None else 60 - sim.market.clock() % 60
        return _too_many(max(1, math.ceil(retry)), sim.ledger.limit)
    if kind == "ban_418":
        seconds = rule.retry_after if rule.retry_after is not None else sim.ledger.ban_seconds
        sim.ledger.ban(seconds)
        return _banned(max(1, math.ceil(seconds)), sim.market.clock())
    if kind == "invalid_symbol":
        return _error(_invalid_symbol())
    if kind == "timeout":
        # The client gives up first; aiohttp then cancels this handler (handler_cancellation).
        await asyncio.sleep(TIMEOUT_FAULT_SECONDS)
        return _json(answer())
    if kind == "close_connection":
        if request.transport is not None:
            request.transport.abort()
        return None
    if kind == "latency":
        await asyncio.sleep(rule.delay if rule.delay is not None else 1.0)
        return _json(answer())
    if kind == "malformed_json":
        body = truncate_json(_dumps(answer()).encode())
        return web.Response(body=body, status=200, content_type="application/json")
    return _json(alter_book(kind, answer()))  # a BOOK_KINDS kind


def create_app(
    market: Market | None = None,
    *,
    seed: int = 0,
    weight_limit: int = DEFAULT_WEIGHT_LIMIT,
    ban_seconds: float = DEFAULT_BAN_SECONDS,
    clock: Clock = time.time,
    faults: FaultSet | None = None,
    retention_seconds: float = DEFAULT_RETENTION_SECONDS,
    stream_config: StreamConfig | None = None,
) -> web.Application:
    """The simulator application. `seed` drives prices and fault probabilities; the books are
    born at the current minute (the market's epoch) and their truth kept `retention_seconds`."""
    market = market or Market.from_captures(seed=seed, clock=clock, retention_seconds=retention_seconds)
    faults = faults or FaultSet(seed)
    sim = Simulator(
        market=market,
        faults=faults,
        ledger=WeightLedger(weight_limit, ban_seconds, market.clock),
        streams=StreamHub(market, faults, stream_config),
    )
    hub = sim.streams
    endpoints = _endpoints(weight_limit)

    async def api(request: web.Request) -> web.StreamResponse:
        endpoint = endpoints.get(request.match_info["path"])
        if endpoint is None:
            return web.Response(status=404, text=_NOT_FOUND_HTML, content_type="text/html")
        query = request.query
        symbol = query.get("symbol") or None
        sim.stats.record_request(endpoint.name, symbol)
        response = None
        try:
            response = await _respond(request, endpoint, query, symbol)
        finally:
            sim.stats.record_response(response.status if response is not None else "dropped")
        if response is None:
            # The connection is gone; aiohttp needs a response object all the same.
            return web.Response(status=204)
        used = str(sim.ledger.used())
        response.headers["X-MBX-USED-WEIGHT-1M"] = used
        response.headers["X-MBX-USED-WEIGHT"] = used
        return response

    async def _respond(request, endpoint: Endpoint, query, symbol) -> web.StreamResponse | None:
        try:
            weight = endpoint.weight(query)
        except ApiError:
            weight = 1  # the answer below reports the bad parameter
        verdict = sim.ledger.admit(weight)
        if verdict.status == 418:
            return _banned(verdict.retry_after, market.clock())
        if verdict.status == 429:
            return _too_many(verdict.retry_after, sim.ledger.limit)
        rule = sim.faults.draw(endpoint.name, symbol)
        try:
            if rule is not None:
                return await _act_out(rule, request, sim, lambda: endpoint.answer(market, query))
            if endpoint.render is not None:
                return _json_text(endpoint.render(market, query))
            return _json(endpoint.answer(market, query))
        except ApiError as error:
            return _error(error)

    async def get_faults(request: web.Request) -> web.Response:
        return _json({"rules": sim.faults.rules()})

    async def post_faults(request: web.Request) -> web.Response:
        try:
            body = await request.json()
            rules = body["rules"] if isinstance(body, dict) else None
            if not isinstance(rules, list):
                raise ValueError('the body must be {"rules": [rule, ...]}')
            sim.set_faults(rules)
        except (ValueError, KeyError, TypeError) as error:
            return _json({"error": str(error)}, status=400)
        return _json({"rules": sim.faults.rules()})

    async def delete_faults(request: web.Request) -> web.Response:
        sim.clear_faults()
        return _json({"rules": []})

    async def get_stats(request: web.Request) -> web.Response:
        return _json(sim.stats_snapshot())

    async def get_true_book(request: web.Request) -> web.Response:
        query = request.query
        symbol = query.get("symbol")
        now_ms = int(market.clock() * 1000)
        try:
            if not symbol:
                raise ValueError("symbol is required")
            at_ms = int(query.get("at_ms", now_ms))
            limit = int(query.get("limit", MAX_LEVELS))
            if limit < 1:
                raise ValueError("limit must be at least 1")
        except ValueError as error:
            return _json({"error": str(error)}, status=400)
        if at_ms > now_ms:
            return _json({"error": f"at_ms {at_ms} is after now ({now_ms})"}, status=400)
        try:
            return _json(market.true_book(symbol, at_ms, limit))
        except InvalidSymbol:
            return _json({"error": f"no book for {symbol!r} (unknown or not TRADING)"}, status=400)
        except BookUnavailable as error:
            return _json({"error": str(error), "oldest_ms": error.oldest_ms}, status=404)

    async def get_events(request: web.Request) -> web.Response:
        query = request.query
        now_ms = int(market.clock() * 1000)
        try:
            symbol = query["symbol"]
            from_ms = int(query["from_ms"])
            to_ms = min(now_ms, int(query.get("to_ms", now_ms)))
        except (KeyError, ValueError) as error:
            return _json({"error": f"symbol and from_ms are required ({error})"}, status=400)
        try:
            events = market.stream_events([symbol], from_ms, to_ms)
        except InvalidSymbol:
            return _json({"error": f"no book for {symbol!r} (unknown or not TRADING)"}, status=400)
        except BookUnavailable as error:
            return _json({"error": str(error), "oldest_ms": error.oldest_ms}, status=404)
        return _json_text('{"events":[%s]}' % ",".join(market.event_json(e) for e in events))

    async def streams_task(app: web.Application):
        task = asyncio.create_task(hub.run(), name="simulator-streams")
        yield
        await hub.close_all()
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass

    async def close_streams(app: web.Application) -> None:
        await hub.close_all()

    app = web.Application()
    app[SIMULATOR] = sim
    app.router.add_get("/api/v3/{path:.+}", api)
    app.router.add_get("/_simulator/faults", get_faults)
    app.router.add_post("/_simulator/faults", post_faults)
    app.router.add_delete("/_simulator/faults", delete_faults)
    app.router.add_get("/_simulator/stats", get_stats)
    app.router.add_get("/_simulator/true_book", get_true_book)
    app.router.add_get("/_simulator/events", get_events)
    app.router.add_get("/stream", hub.handle)
    app.router.add_get("/ws", hub.handle)
    app.router.add_get("/ws/{stream}", hub.handle)
    app.cleanup_ctx.append(streams_task)
    app.on_shutdown.append(close_streams)
    return app
