"""Binance's websocket market streams, on the simulator's REST port: the diff-depth streams.

Routes (Binance's spot protocol, base `ws://HOST:PORT` standing for `wss://stream.binance.com:9443`):

    GET /stream?streams=nknusdt@depth@100ms/lrcbtc@depth@100ms   combined streams
    GET /stream                                                   combined, streams by SUBSCRIBE
    GET /ws/nknusdt@depth@100ms                                   one raw stream
    GET /ws                                                       raw, streams by SUBSCRIBE

A combined stream wraps each payload, a raw one sends it bare:

    {"stream":"nknusdt@depth@100ms","data":{"e":"depthUpdate","E":1633998512068,"s":"NKNUSDT",
     "U":499869750,"u":499869752,"b":[["0.35130000","6195.00000000"]],"a":[]}}

(the first NKNUSDT message of the real capture `stream.jsonl`). Control messages and answers:

    {"method":"SUBSCRIBE","params":["nknusdt@depth@100ms"],"id":1}     -> {"result":null,"id":1}
    {"method":"UNSUBSCRIBE","params":["nknusdt@depth@100ms"],"id":2}   -> {"result":null,"id":2}
    {"method":"LIST_SUBSCRIPTIONS","id":3}         -> {"result":["nknusdt@depth@100ms"],"id":3}
    {"method":"SET_PROPERTY","params":["combined",true],"id":4}        -> {"result":null,"id":4}
    {"method":"GET_PROPERTY","params":["combined"],"id":5}             -> {"result":true,"id":5}
    {"method":"NOPE","id":6} -> {"error":{"code":2,"msg":"Invalid request: unknown variant `NOPE`,
                                expected one of `SUBSCRIBE`, `UNSUBSCRIBE`, `LIST_SUBSCRIPTIONS`,
                                `SET_PROPERTY`, `GET_PROPERTY`"},"id":6}

(the error's shape as clients measured it on Binance; the codes and texts are Binance's documented
ones: 0 unknown property, 1 value type, 2 invalid request, 3 invalid JSON). A stream of an unknown
or non-TRADING symbol, or of another kind than `@depth@100ms`, is accepted and listed and never
sends anything: what Binance does.

Limits, as Binance's documentation states them (each configurable, see `StreamConfig`):
* 1024 streams a connection: a URL with more is refused (HTTP 400) and a SUBSCRIBE that would
  pass it is answered `{"error":{"code":2,"msg":"Invalid request: too many parameters"},"id":N}`
  and subscribes none of its streams (Binance does not document which; this is the simulator's).
* 5 incoming messages a second (text, ping and pong frames alike): the connection is closed
  (close frame 1008 "Too many requests", as clients saw Binance do).
* 300 connection attempts per 5 minutes per IP: more get HTTP 429 and no websocket.
* 24 h per connection: then a close frame (1000, "connection expired").
* A ping frame every 20 s; a connection that has not answered a ping within 60 s is closed
  (close frame 1008, "pong timeout"). Pings from the client are answered with their payload.

How the events get out: ONE asyncio task per server (`StreamHub.run`) wakes at every 100 ms
slot boundary, advances every book the simulator has touched (`Market.advance_all`, one
vectorised draw for all of them), takes the events of the watched symbols (`Market.drain`),
renders each event's JSON once, and appends it to the queue of each connection subscribed to
it, in E order (and so in non-decreasing E order across the symbols of a connection). One small
writer task per connection sends its queue. The stream faults (`faults.py`, endpoint "stream")
are drawn per event and connection, and change only what is sent, never the book.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from acts_simulator.faults import DEFAULT_LATE_SECONDS, DEFAULT_STALL_SECONDS, FaultSet
from acts_simulator.market import DepthEvent, InvalidSymbol, Market

logger = logging.getLogger(__name__)

DEPTH_SUFFIX = "@depth@100ms"
METHODS = ("SUBSCRIBE", "UNSUBSCRIBE", "LIST_SUBSCRIPTIONS", "SET_PROPERTY", "GET_PROPERTY")
_UNKNOWN_METHOD = ("Invalid request: unknown variant `%s`, expected one of "
                   + ", ".join(f"`{m}`" for m in METHODS))


@dataclass
class StreamConfig:
    """Binance's websocket limits, shortened in tests."""

    max_streams: int = 1024
    max_incoming_per_second: int = 5
    max_connection_attempts: int = 300
    attempts_window_seconds: float = 300.0
    max_lifetime_seconds: float = 24 * 3600.0
    ping_interval_seconds: float = 20.0
    pong_timeout_seconds: float = 60.0
    tick_seconds: float = 0.1


@dataclass
class StreamStats:
    connections_opened: int = 0
    connections_refused: int = 0
    connections_open: int = 0
    closed: dict = field(default_factory=dict)  # reason -> count
    messages_sent: int = 0
    events_sent: int = 0
    control_messages: int = 0

    def close(self, reason: str) -> None:
        self.closed[reason] = self.closed.get(reason, 0) + 1

    def snapshot(self) -> dict[str, Any]:
        return {**self.__dict__, "closed": dict(self.closed)}


class _Error(Exception):
    def __init__(self, code: int, msg: str) -> None:
        super().__init__(msg)
        self.code, self.msg = code, msg


class Connection:
    """One websocket client: its streams, its send queue and its fault state."""

    def __init__(self, hub: StreamHub, ws: web.WebSocketResponse, request: web.Request, combined: bool) -> None:
        now = time.monotonic()
        self.hub, self.ws, self.combined = hub, ws, combined
        self.transport = request.transport
        self.streams: dict[str, None] = {}  # ordered, for LIST_SUBSCRIPTIONS
        self.queue: deque[str] = deque()
        self.wake = asyncio.Event()
        self.stall_until = 0.0
        self.held: dict[str, tuple[str, float]] = {}  # symbol -> (text, release deadline)
        self.expires_at = now + hub.config.max_lifetime_seconds
        self.incoming: deque[float] = deque()
        self.last_ping = now
        self.unanswered_since: float | None = None
        self.closing = False

    def symbol_of(self, stream: str) -> str | None:
        return self.hub.symbol_of(stream)


class StreamHub:
    """Every websocket connection of one simulator, and the task that feeds them."""

    def __init__(self, market: Market, faults: FaultSet, config: StreamConfig | None = None) -> None:
        self.market, self.faults = market, faults
        self.config = config or StreamConfig()
        self.stats = StreamStats()
        self.connections: set[Connection] = set()
        self.by_symbol: dict[str, set[Connection]] = {}
        self._attempts: dict[str, deque[float]] = {}
        self._writers: set[asyncio.Task] = set()

    # ---- names ----------------------------------------------------------------------------------

    def symbol_of(self, stream: str) -> str | None:
        """The TRADING symbol whose diff-depth events `stream` carries, else None (silent)."""
        if not stream.endswith(DEPTH_SUFFIX):
            return None
        name = stream[: -len(DEPTH_SUFFIX)]
        if not name or name != name.lower():
            return None
        symbol = name.upper()
        spec = self.market.specs.get(symbol)
        return symbol if spec is not None and spec.trading else None

    def _subscribe(self, connection: Connection, streams: list[str]) -> None:
        if len(set(connection.streams) | set(streams)) > self.config.max_streams:
            raise _Error(2, "Invalid request: too many parameters")
        for stream in streams:
            if stream in connection.streams:
                continue
            connection.streams[stream] = None
            symbol = self.symbol_of(stream)
            if symbol is None:
                continue
            subscribers = self.by_symbol.setdefault(symbol, set())
            if not subscribers:
                try:
                    self.market.watch(symbol)
                except InvalidSymbol:
                    continue
            subscribers.add(connection)

    def _unsubscribe(self, connection: Connection, streams: list[str]) -> None:
        for stream in streams:
            if stream not in connection.streams:
                continue
            del connection.streams[stream]
            symbol = self.symbol_of(stream)
            subscribers = self.by_symbol.get(symbol) if symbol else None
            if subscribers is None or connection not in subscribers:
                continue
            subscribers.discard(connection)
            connection.held.pop(symbol, None)
            if not subscribers:
                del self.by_symbol[symbol]
                self.market.unwatch(symbol)

    # ---- connections ------------------------------------------------------------------------------

    def _admit(self, ip: str) -> bool:
        now = time.monotonic()
        attempts = self._attempts.setdefault(ip, deque())
        while attempts and attempts[0] <= now - self.config.attempts_window_seconds:
            attempts.popleft()
        if len(attempts) >= self.config.max_connection_attempts:
            return False
        attempts.append(now)
        return True

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """`/stream[?streams=...]` and `/ws[/<stream>]`: upgrade, then serve until closed."""
        combined = request.path.startswith("/stream")
        if combined:
            raw = request.query.get("streams", "")
            streams = [s for s in raw.split("/") if s]
        else:
            name = request.match_info.get("stream", "")
            streams = [name] if name else []
        if not self._admit(request.remote or "?"):
            self.stats.connections_refused += 1
            return web.json_response(
                {"code": -1003, "msg": "Too many connection attempts; limit is "
                 f"{self.config.max_connection_attempts} per {self.config.attempts_window_seconds:.0f} s."},
                status=429)
        if len(dict.fromkeys(streams)) > self.config.max_streams:
            self.stats.connections_refused += 1
            return web.json_response(
                {"code": -1, "msg": f"Too many streams: at most {self.config.max_streams} a connection."}, status=400)
        ws = web.WebSocketResponse(autoping=False, compress=False, max_msg_size=1 << 20)
        await ws.prepare(request)
        connection = Connection(self, ws, request, combined)
        self._subscribe(connection, streams)
        self.connections.add(connection)
        self.stats.connections_opened += 1
        self.stats.connections_open += 1
        writer = asyncio.create_task(self._writer(connection))
        self._writers.add(writer)
        try:
            await self._read(connection)
        finally:
            connection.closing = True
            connection.wake.set()
            self._unsubscribe(connection, list(connection.streams))
            self.connections.discard(connection)
            self.stats.connections_open -= 1
            writer.cancel()
            self._writers.discard(writer)
        return ws

    async def _read(self, connection: Connection) -> None:
        ws = connection.ws
        async for message in ws:
            if message.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                break
            if connection.closing:
                continue
            if not self._count_incoming(connection):
                self._close_soon(connection, 1008, "Too many requests", "too_many_messages")
                continue  # the close handshake ends the loop
            if message.type == WSMsgType.PING:
                await ws.pong(message.data)
            elif message.type == WSMsgType.PONG:
                connection.unanswered_since = None
            elif message.type == WSMsgType.TEXT:
                self.stats.control_messages += 1
                answer = self._control(connection, message.data)
                if answer is not None:
                    connection.queue.append(answer)
                    connection.wake.set()
        if not connection.closing:
            self.stats.close("client")

    def _count_incoming(self, connection: Connection) -> bool:
        now = time.monotonic()
        incoming = connection.incoming
        incoming.append(now)
        while incoming and incoming[0] <= now - 1.0:
            incoming.popleft()
        return len(incoming) <= self.config.max_incoming_per_second

    def _control(self, connection: Connection, text: str) -> str | None:
        """The answer to one control message (see the module docstring)."""
        request_id: Any = None
        try:
            try:
                body = json.loads(text)
            except ValueError as error:
                line, column = getattr(error, "lineno", 1), getattr(error, "colno", 1)
                raise _Error(3, f"Invalid JSON: expected value at line {line} column {column}") from None
            if not isinstance(body, dict):
                raise _Error(2, "Invalid request: expected a JSON object")
            request_id = body.get("id")
            if "method" not in body:
                raise _Error(2, "Invalid request: missing field `method`")
            if request_id is not None and not _valid_id(request_id):
                request_id = None
                raise _Error(2, "Invalid request: request ID must be an unsigned integer")
            method = body["method"]
            if method not in METHODS:
                raise _Error(2, _UNKNOWN_METHOD % method)
            params = body.get("params", [])
            if not isinstance(params, list):
                raise _Error(2, "Invalid request: invalid type: expected a sequence of stream names")
            if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
                if not all(isinstance(p, str) for p in params):
                    raise _Error(2, "Invalid request: invalid type: expected a string stream name")
                if method == "SUBSCRIBE":
                    self._subscribe(connection, params)
                else:
                    self._unsubscribe(connection, params)
                result: Any = None
            elif method == "LIST_SUBSCRIPTIONS":
                result = list(connection.streams)
            else:
                if not params or not isinstance(params[0], str):
                    raise _Error(2, "Invalid request: property name must be a string")
                if params[0] != "combined":
                    raise _Error(0, "Unknown property")
                if method == "GET_PROPERTY":
                    result = connection.combined
                else:
                    if len(params) < 2 or not isinstance(params[1], bool):
                        raise _Error(1, "Invalid value type: expected Boolean")
                    connection.combined, result = params[1], None
            return json.dumps({"result": result, "id": request_id}, separators=(",", ":"))
        except _Error as error:
            return json.dumps({"error": {"code": error.code, "msg": error.msg}, "id": request_id},
                              separators=(",", ":"))

    def _close_soon(self, connection: Connection, code: int, message: str, reason: str) -> None:
        """A close frame from the server, sent by a task; nothing queued after it goes out."""
        if connection.closing:
            return
        self.stats.close(reason)
        connection.closing = True
        connection.wake.set()

        async def close() -> None:
            try:
                await connection.ws.close(code=code, message=message.encode())
            except (ConnectionError, RuntimeError):
                pass

        task = asyncio.get_running_loop().create_task(close())
        self._writers.add(task)
        task.add_done_callback(self._writers.discard)

    def _drop(self, connection: Connection) -> None:
        """An abrupt TCP close: no close frame."""
        connection.closing = True
        connection.wake.set()
        if connection.transport is not None:
            connection.transport.abort()

    async def close_all(self) -> None:
        for connection in list(self.connections):
            self._close_soon(connection, 1001, "server stopping", "server_stopping")
        if self._writers:
            await asyncio.wait(list(self._writers), timeout=1.0)

    # ---- sending ----------------------------------------------------------------------------------

    async def _writer(self, connection: Connection) -> None:
        ws = connection.ws
        try:
            while not connection.closing:
                await connection.wake.wait()
                connection.wake.clear()
                stall = connection.stall_until - time.monotonic()
                if stall > 0:
                    await asyncio.sleep(stall)
                queue = connection.queue
                while queue and not connection.closing:
                    text = queue.popleft()
                    await ws.send_str(text)
                    self.stats.messages_sent += 1
        except (ConnectionError, RuntimeError):
            connection.closing = True
        except asyncio.CancelledError:
            pass

    def _fan_out(self, drained: dict[str, list[DepthEvent]]) -> None:
        per_connection: dict[Connection, list[tuple[int, str, DepthEvent]]] = {}
        for symbol, events in drained.items():
            subscribers = self.by_symbol.get(symbol)
            if not subscribers:
                continue
            for event in events:
                self.market.event_json(event)
            for connection in subscribers:
                per_connection.setdefault(connection, []).extend((e.event_time, symbol, e) for e in events)
        now = time.monotonic()
        check_faults = bool(self.faults.rules_present())
        for connection, items in per_connection.items():
            if connection.closing:
                continue
            items.sort(key=_by_time)
            for _, symbol, event in items:
                text = self._text(connection, symbol, event)
                rule = self.faults.draw("stream", symbol) if check_faults else None
                if rule is not None and self._act_out(connection, rule, symbol, text, now):
                    continue
                if connection.closing:
                    break
                connection.queue.append(text)
                self.stats.events_sent += 1
                held = connection.held.pop(symbol, None)
                if held is not None:
                    connection.queue.append(held[0])
                    self.stats.events_sent += 1
            connection.wake.set()

    def _text(self, connection: Connection, symbol: str, event: DepthEvent) -> str:
        payload = event.text
        if not connection.combined:
            return payload
        return '{"stream":"%s%s","data":%s}' % (symbol.lower(), DEPTH_SUFFIX, payload)

    def _act_out(self, connection: Connection, rule, symbol: str, text: str, now: float) -> bool:
        """Apply a fired stream fault; True when the event is consumed (not sent normally)."""
        kind = rule.kind
        logger.info("stream fault %s fired on %s", kind, symbol)
        if kind == "skip_event":
            return True
        if kind == "duplicate_event":
            connection.queue.extend((text, text))
            self.stats.events_sent += 2
            return True
        if kind == "late_event":
            previous = connection.held.pop(symbol, None)
            if previous is not None:
                connection.queue.append(previous[0])
            connection.held[symbol] = (text, now + (rule.delay if rule.delay is not None else DEFAULT_LATE_SECONDS))
            return True
        if kind == "slow_consumer":
            connection.stall_until = now + (rule.delay if rule.delay is not None else DEFAULT_STALL_SECONDS)
            return False
        if kind == "expire_connection":
            if rule.delay:
                connection.expires_at = now + rule.delay
                return False
            self._close_soon(connection, 1000, "connection expired", "expired")
            return True
        if kind == "drop_connection":
            self.stats.close("dropped")
            self._drop(connection)
            return True
        if kind == "server_close":
            self._close_soon(connection, 1001, "going away", "server_close")
            return True
        return False

    # ---- the one task ----------------------------------------------------------------------------

    async def run(self) -> None:
        """Every 100 ms slot: advance the books, fan the events out, keep the connections."""
        tick = self.config.tick_seconds
        while True:
            now = self.market.clock()
            await asyncio.sleep(max(0.0, (math.floor(now / tick) + 1) * tick - now) + 0.001)
            try:
                self.market.advance_all()
                drained = self.market.drain()
                if drained:
                    self._fan_out(drained)
                await self._housekeeping()
            except Exception:  # a bug here must not stop every stream for good
                logger.exception("stream tick failed")

    async def _housekeeping(self) -> None:
        now = time.monotonic()
        config = self.config
        for connection in list(self.connections):
            if connection.closing:
                continue
            for symbol, (text, deadline) in list(connection.held.items()):
                if deadline <= now:
                    del connection.held[symbol]
                    connection.queue.append(text)
                    connection.wake.set()
            if now >= connection.expires_at:
                self._close_soon(connection, 1000, "connection expired", "expired")
            elif connection.unanswered_since is not None and now - connection.unanswered_since > config.pong_timeout_seconds:
                self._close_soon(connection, 1008, "pong timeout", "pong_timeout")
            elif now - connection.last_ping >= config.ping_interval_seconds:
                connection.last_ping = now
                if connection.unanswered_since is None:
                    connection.unanswered_since = now
                try:
                    await connection.ws.ping(b"%d" % int(time.time() * 1000))
                except (ConnectionError, RuntimeError):
                    connection.closing = True


def _by_time(item: tuple[int, str, DepthEvent]) -> int:
    return item[0]


def _valid_id(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return -(2**63) <= value < 2**63
    return isinstance(value, str) and len(value) <= 36 and value.isalnum()
