"""Binance's combined market streams: websocket connections on the transport's loop and session.

A `CombinedStream` is one connection to `{ws_url}/stream?streams=a/b/...` carrying up to
`max_streams` streams; `StreamPool` spreads many symbols' streams over as few connections as that
allows and keeps each one up. What Binance documents, and how each rule is kept here:

- **1024 streams per connection**: a pool never puts more than `max_streams` (default 400) on
  one connection, so a reconnect re-synchronises a bounded set of books.
- **5 incoming messages a second per connection** (SUBSCRIBE, UNSUBSCRIBE, pongs; Binance drops
  a connection that sends more): subscription changes are batched, at most `MAX_STREAMS_PER_MESSAGE`
  streams per message, and sent at most `MESSAGES_PER_SECOND` (3) a second.
- **300 connection attempts per 5 minutes per IP**: every attempt of every connection of the
  process takes a turn from one `ConnectionAttempts` window (default 100 per 5 minutes), and a
  failed attempt backs off exponentially (1 s doubling to 60 s, jittered).
- **A connection lives at most 24 h**: each connection is closed and opened again after
  `max_lifetime` (23 h 30 min), staggered, before Binance cuts it.
- **The server pings every 20 s** and drops a connection that does not answer within a minute:
  aiohttp answers pings itself (`autoping`); `heartbeat` also pings the server, so a half-open
  TCP connection is noticed in `heartbeat` seconds rather than never.

Messages reach the caller as text, with the time they were received (`time.time()`); parsing
belongs to `acts_pipeline.core.parsing` so this module stays about connections.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import aiohttp

from acts_pipeline import settings
from acts_pipeline.core.errors import ConfigurationError

log = logging.getLogger(__name__)

DEFAULT_WS_URL = "wss://stream.binance.com:9443"
#: Binance's own cap is 1024; fewer per connection keeps each reconnect's resync small.
DEFAULT_MAX_STREAMS = 400
#: Streams in the connection URL; the rest are subscribed by messages (a URL stays short).
URL_STREAMS = 100
MAX_STREAMS_PER_MESSAGE = 200
#: Binance's limit is 5 incoming messages a second per connection; this leaves room for pongs.
MESSAGES_PER_SECOND = 3
DEFAULT_ATTEMPTS_PER_WINDOW = 100
ATTEMPT_WINDOW_SECONDS = 300.0
DEFAULT_MAX_LIFETIME_SECONDS = 23.5 * 3600
HEARTBEAT_SECONDS = 30.0


def depth_stream(symbol: str) -> str:
    """The diff-depth stream of `symbol` at Binance's fastest cadence: `btcusdt@depth@100ms`."""
    return f"{symbol.lower()}@depth@100ms"


def check_ws_url(url: str) -> str:
    """`url` without a trailing slash, if it is a ws(s) URL with a host (the setting's own parser;
    an empty `url` is refused, not taken for the default)."""
    if not url.strip():
        raise ConfigurationError("ACTS_BINANCE_WS_URL must be a ws:// or wss:// URL, got ''")
    return settings.parse_binance_ws_url(url)


class ConnectionAttempts:
    """A sliding window of connection attempts shared by every connection of the process."""

    def __init__(self, limit: int = DEFAULT_ATTEMPTS_PER_WINDOW, window: float = ATTEMPT_WINDOW_SECONDS,
                 clock: Callable[[], float] = time.monotonic):
        self.limit, self.window, self._clock = limit, window, clock
        self._times: collections.deque[float] = collections.deque()
        self.total = 0

    def wait_seconds(self) -> float:
        """How long until an attempt is allowed (0: now)."""
        now = self._clock()
        while self._times and self._times[0] <= now - self.window:
            self._times.popleft()
        return 0.0 if len(self._times) < self.limit else self._times[0] + self.window - now

    async def take(self) -> None:
        while (wait := self.wait_seconds()) > 0:
            log.warning("%d websocket connection attempts in %g s: waiting %.0f s", self.limit, self.window, wait)
            await asyncio.sleep(wait)
        self._times.append(self._clock())
        self.total += 1


@dataclass
class ConnectionHealth:
    """What a person needs to trust one connection (the recorder's health page shows it)."""

    name: str
    state: str = "new"             # new | connecting | open | backoff | closed
    streams: int = 0
    connects: int = 0
    reconnects: int = 0
    messages: int = 0
    opened_at: float | None = None
    last_message_at: float | None = None
    last_error: str | None = None

    def as_dict(self, now: float) -> dict:
        return {"name": self.name, "state": self.state, "streams": self.streams, "connects": self.connects,
                "reconnects": self.reconnects, "messages": self.messages,
                "open_for_s": None if self.opened_at is None or self.state != "open" else round(now - self.opened_at, 1),
                "last_message_age_s": None if self.last_message_at is None else round(now - self.last_message_at, 3),
                "last_error": self.last_error}


#: Called for every text message: (connection, text, received at in Unix seconds).
OnText = Callable[["CombinedStream", str, float], None]
#: Called when a connection opens (True) or is lost (False, with the reason).
OnState = Callable[["CombinedStream", bool, str], None]


@dataclass(eq=False)  # identity: connections are keys of the pool's maps
class CombinedStream:
    """One combined-stream websocket and the streams it should carry; `run()` keeps it up."""

    name: str
    ws_url: str
    session: aiohttp.ClientSession
    on_text: OnText
    on_state: OnState
    attempts: ConnectionAttempts
    max_lifetime: float = DEFAULT_MAX_LIFETIME_SECONDS
    heartbeat: float = HEARTBEAT_SECONDS
    streams: set[str] = field(default_factory=set)
    health: ConnectionHealth = field(init=False)
    _subscribed: set[str] = field(default_factory=set, init=False)
    _changed: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    _ws: aiohttp.ClientWebSocketResponse | None = field(default=None, init=False)
    _next_id: int = field(default=1, init=False)

    def __post_init__(self) -> None:
        self.health = ConnectionHealth(self.name)

    def want(self, streams: Iterable[str]) -> None:
        """The streams this connection should carry from now on (subscribed while it is open)."""
        self.streams = set(streams)
        self.health.streams = len(self.streams)
        self._changed.set()

    async def run(self) -> None:
        """Connect, read, reconnect, forever (until cancelled)."""
        failures = 0
        while True:
            if not self.streams:
                self.health.state = "idle"
                self._changed.clear()
                await self._changed.wait()
                continue
            await self.attempts.take()
            self.health.state = "connecting"
            first = sorted(self.streams)[:URL_STREAMS]
            url = f"{self.ws_url}/stream?streams={'/'.join(first)}"
            reason = "closed"
            try:
                async with self.session.ws_connect(url, heartbeat=self.heartbeat, autoping=True,
                                                   max_msg_size=0, compress=0) as ws:
                    failures = 0
                    self._ws, self._subscribed = ws, set(first)
                    self.health.state, self.health.opened_at = "open", time.time()
                    self.health.connects += 1
                    self.on_state(self, True, "open")
                    reason = await self._read(ws)
            except asyncio.CancelledError:
                raise
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
                reason = f"{type(exc).__name__}: {exc}"
            finally:
                was_open = self._ws is not None
                self._ws, self._subscribed = None, set()
                if was_open:
                    self.health.reconnects += 1
                    self.on_state(self, False, reason)
            self.health.last_error = reason
            if reason == "lifetime":
                continue  # a planned rotation: reconnect at once
            failures += 1
            delay = min(60.0, 2.0 ** (failures - 1)) * (0.5 + random.random() / 2)
            self.health.state = "backoff"
            log.warning("websocket %s lost (%s): reconnecting in %.1f s", self.name, reason, delay)
            await asyncio.sleep(delay)

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> str:
        """Read messages until the connection ends; subscription changes are sent in between.

        The lifetime is a timer task that closes the connection, not a timeout on every
        `receive()`: entering a timeout per message (`receive(timeout=...)`) was 8 % of the
        recorder's CPU (aiohttp's own comment in `receive` says as much of that context). The
        timer's `ws.close()` makes the pending `receive()` return a CLOSING message."""
        sender = asyncio.create_task(self._sync_subscriptions(ws), name=f"subscriptions {self.name}")
        lifetime = self.max_lifetime * (0.95 + random.random() * 0.05)  # staggered rotations
        rotated = False

        async def rotate() -> None:
            nonlocal rotated
            await asyncio.sleep(lifetime)
            rotated = True
            await ws.close()

        rotation = asyncio.create_task(rotate(), name=f"rotation {self.name}")
        health, on_text, text = self.health, self.on_text, aiohttp.WSMsgType.TEXT
        try:
            while True:
                message = await ws.receive()
                if message.type is text:
                    received = time.time()
                    health.messages += 1
                    health.last_message_at = received
                    on_text(self, message.data, received)
                elif message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED):
                    return "lifetime" if rotated else f"closed by the server (code {ws.close_code})"
                elif message.type is aiohttp.WSMsgType.ERROR:
                    return f"error: {ws.exception()!r}"
        finally:
            sender.cancel()
            if not rotated:
                rotation.cancel()  # a rotation under way finishes its closing handshake
            await asyncio.gather(sender, rotation, return_exceptions=True)

    async def _sync_subscriptions(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """Send SUBSCRIBE/UNSUBSCRIBE until the open connection carries `streams`, paced."""
        while not ws.closed:
            add = sorted(self.streams - self._subscribed)
            drop = sorted(self._subscribed - self.streams)
            if not add and not drop:
                self._changed.clear()
                await self._changed.wait()
                continue
            method, batch = ("SUBSCRIBE", add) if add else ("UNSUBSCRIBE", drop)
            batch = batch[:MAX_STREAMS_PER_MESSAGE]
            await ws.send_str(json.dumps({"method": method, "params": batch, "id": self._next_id}))
            self._next_id += 1
            if method == "SUBSCRIBE":
                self._subscribed.update(batch)
            else:
                self._subscribed.difference_update(batch)
            await asyncio.sleep(1 / MESSAGES_PER_SECOND)


class StreamPool:
    """Symbols' diff-depth streams spread over connections of at most `max_streams` each.

    A symbol keeps its connection while it is tracked (moving it would resync its book); new
    symbols fill the connection with the most room, or a new one.
    """

    def __init__(self, ws_url: str, session: aiohttp.ClientSession, on_text: OnText, on_state: OnState, *,
                 max_streams: int = DEFAULT_MAX_STREAMS, attempts: ConnectionAttempts | None = None,
                 max_lifetime: float = DEFAULT_MAX_LIFETIME_SECONDS, heartbeat: float = HEARTBEAT_SECONDS):
        self.ws_url = check_ws_url(ws_url)
        self.session = session
        self.on_text, self.on_state = on_text, on_state
        self.max_streams = max_streams
        self.attempts = attempts or ConnectionAttempts()
        self.max_lifetime, self.heartbeat = max_lifetime, heartbeat
        self.connections: list[CombinedStream] = []
        self.connection_of: dict[str, CombinedStream] = {}
        self._tasks: dict[str, asyncio.Task] = {}

    def set_symbols(self, symbols: Iterable[str]) -> tuple[list[str], list[str]]:
        """Track exactly `symbols`; returns (added, removed)."""
        wanted = dict.fromkeys(symbols)
        removed = [s for s in self.connection_of if s not in wanted]  # a dict: each lookup O(1)
        for symbol in removed:
            self.connection_of.pop(symbol)
        added = [s for s in wanted if s not in self.connection_of]
        # As many connections as the symbols need, each symbol on the least loaded one: symbols
        # listed busiest first are spread over all of them, so that no connection carries only
        # thin books (a connection's closes are decided by its first event after the close).
        while len(self.connections) * self.max_streams < len(wanted):
            self._new_connection()
        counts = collections.Counter(self.connection_of.values())
        for symbol in added:
            roomy = [c for c in self.connections if counts[c] < self.max_streams]
            connection = min(roomy, key=lambda c: counts[c]) if roomy else self._new_connection()
            counts[connection] += 1
            self.connection_of[symbol] = connection
        by_connection: dict[str, list[str]] = {c.name: [] for c in self.connections}
        for symbol, connection in self.connection_of.items():
            by_connection[connection.name].append(depth_stream(symbol))
        for connection in self.connections:
            if set(by_connection[connection.name]) != connection.streams:
                connection.want(by_connection[connection.name])
        return added, removed

    def symbols_on(self, connection: CombinedStream) -> list[str]:
        return [s for s, c in self.connection_of.items() if c is connection]

    def _new_connection(self) -> CombinedStream:
        connection = CombinedStream(f"ws-{len(self.connections) + 1}", self.ws_url, self.session, self.on_text,
                                    self.on_state, self.attempts, self.max_lifetime, self.heartbeat)
        self.connections.append(connection)
        self._tasks[connection.name] = asyncio.get_running_loop().create_task(
            connection.run(), name=f"websocket {connection.name}")
        return connection

    async def close(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        self._tasks.clear()
