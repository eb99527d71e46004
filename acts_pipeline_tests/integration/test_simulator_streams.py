"""The simulator's websocket streams over a real connection (aiohttp's client), as a recorder
sees them: Binance's combined and raw diff-depth streams, its control messages and limits, and
every stream fault, checked against the simulator's truth (`/_simulator/true_book`, `/events`).
"""

from __future__ import annotations

import asyncio
import json
import time
from decimal import Decimal

import aiohttp
import pytest
import requests

from acts_pipeline_tests.servers_simulator import running_simulator

pytestmark = pytest.mark.integration

DEPTH = "@depth@100ms"


def stream(symbol: str) -> str:
    return symbol.lower() + DEPTH


async def receive_for(ws: aiohttp.ClientWebSocketResponse, seconds: float) -> list[tuple[float, dict]]:
    """(arrival time, parsed message) of every text message within `seconds`; stops at a close."""
    out = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            message = await ws.receive(timeout=left)
        except asyncio.TimeoutError:
            break
        if message.type != aiohttp.WSMsgType.TEXT:
            break
        out.append((time.monotonic(), json.loads(message.data)))
    return out


async def until_closed(ws: aiohttp.ClientWebSocketResponse, seconds: float) -> aiohttp.WSMessage:
    """The first non-text message (the close) within `seconds`."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        message = await ws.receive(timeout=left)
        if message.type != aiohttp.WSMsgType.TEXT:
            return message
    raise AssertionError("the connection was not closed in time")


def events_of(messages: list[tuple[float, dict]], symbol: str) -> list[dict]:
    return [m["data"] for _, m in messages if m.get("stream") == stream(symbol)]


def apply(book: dict, event: dict) -> None:
    for side in ("b", "a"):
        for price, quantity in event[side]:
            if Decimal(quantity) == 0:
                book[side].pop(price, None)
            else:
                book[side][price] = quantity


def top(book: dict) -> tuple[list, list]:
    bids = sorted(book["b"].items(), key=lambda level: -Decimal(level[0]))
    asks = sorted(book["a"].items(), key=lambda level: Decimal(level[0]))
    return [list(x) for x in bids], [list(x) for x in asks]


def run(coroutine):
    return asyncio.run(coroutine)


# ---- the combined stream: Binance's shape, and the truth ----------------------------------------


def test_combined_stream_plus_a_rest_snapshot_is_the_true_book(simulator):
    symbols = ["NKNUSDT", "BTCUSDT", "LRCBTC", "ETHBTC"]

    async def scenario():
        url = f"{simulator.ws_url}/stream?streams=" + "/".join(stream(s) for s in symbols)
        async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
            early = await receive_for(ws, 0.5)
            snapshots = {s: requests.get(f"{simulator.api_url}/v3/depth", params={"symbol": s, "limit": 1000},
                                         timeout=5).json() for s in symbols}
            return snapshots, early + await receive_for(ws, 4.0)

    snapshots, messages = run(scenario())
    assert all(set(m) == {"stream", "data"} for _, m in messages)
    times = [m["data"]["E"] for _, m in messages]
    assert times == sorted(times), "non-decreasing E across the symbols of a connection"
    for symbol in symbols:
        events = events_of(messages, symbol)
        assert all(e["e"] == "depthUpdate" and e["s"] == symbol for e in events)
        assert all(b["U"] == a["u"] + 1 for a, b in zip(events, events[1:]))
        snapshot = snapshots[symbol]
        book = {"b": dict(map(tuple, snapshot["bids"])), "a": dict(map(tuple, snapshot["asks"]))}
        kept = [e for e in events if e["u"] > snapshot["lastUpdateId"]]
        if not kept:
            continue
        assert kept[0]["U"] <= snapshot["lastUpdateId"] + 1 <= kept[0]["u"]
        for event in kept:
            apply(book, event)
        truth = simulator.true_book(symbol, kept[-1]["E"])
        assert (truth["lastUpdateId"], truth["E"]) == (kept[-1]["u"], kept[-1]["E"])
        assert top(book) == (truth["bids"], truth["asks"])
    assert len(events_of(messages, "NKNUSDT")) >= 10  # about 5 a second


def test_raw_stream_sends_bare_payloads(simulator):
    async def scenario():
        async with aiohttp.ClientSession() as session, session.ws_connect(f"{simulator.ws_url}/ws/{stream('NKNUSDT')}") as ws:
            return await receive_for(ws, 2.0)

    messages = run(scenario())
    assert messages
    assert all(list(m) == ["e", "E", "s", "U", "u", "b", "a"] and m["s"] == "NKNUSDT" for _, m in messages)


def test_true_book_route(simulator):
    now_ms = int(time.time() * 1000)
    truth = simulator.true_book("NKNUSDT", now_ms - 500, limit=5)
    assert set(truth) == {"symbol", "at_ms", "lastUpdateId", "E", "bids", "asks"}
    assert len(truth["bids"]) == len(truth["asks"]) == 5
    assert truth["E"] is None or truth["E"] <= now_ms - 500
    base = f"{simulator.url}/_simulator/true_book"
    assert requests.get(base, params={"symbol": "NOPE"}, timeout=5).status_code == 400
    assert requests.get(base, params={"symbol": "NKNUSDT", "at_ms": now_ms + 60_000}, timeout=5).status_code == 400
    assert requests.get(base, params={"symbol": "NKNUSDT", "at_ms": 1_600_000_000_000}, timeout=5).status_code == 404


# ---- control messages ---------------------------------------------------------------------------


def test_subscribe_list_unsubscribe_properties_and_errors(simulator):
    async def scenario():
        async with aiohttp.ClientSession() as session, session.ws_connect(f"{simulator.ws_url}/stream") as ws:
            async def ask(body) -> dict:
                await ws.send_str(body if isinstance(body, str) else json.dumps(body))
                while True:
                    message = json.loads((await ws.receive(timeout=5)).data)
                    if "stream" not in message:
                        return message
                    await asyncio.sleep(0)

            answers = [
                await ask({"method": "SUBSCRIBE", "params": [stream("NKNUSDT"), "nopeusdt@depth@100ms"], "id": 1}),
                await ask({"method": "LIST_SUBSCRIPTIONS", "id": 2}),
                await ask({"method": "GET_PROPERTY", "params": ["combined"], "id": 3}),
            ]
            await asyncio.sleep(1.2)  # the rate limit: 5 messages a second
            received = await receive_for(ws, 1.0)
            answers += [
                await ask({"method": "UNSUBSCRIBE", "params": [stream("NKNUSDT")], "id": 4}),
                await ask({"method": "NOPE", "id": 5}),
                await ask("not json"),
            ]
            await asyncio.sleep(1.2)
            answers += [
                await ask({"method": "SET_PROPERTY", "params": ["combined", "yes"], "id": 6}),
                await ask({"method": "GET_PROPERTY", "params": ["colour"], "id": 7}),
                await ask({"method": "SUBSCRIBE", "params": [stream("NKNUSDT")], "id": -1.5}),
            ]
            await asyncio.sleep(0.3)
            after = await receive_for(ws, 1.0)
            return answers, received, after

    answers, received, after = run(scenario())
    assert answers[0] == {"result": None, "id": 1}
    assert answers[1] == {"result": [stream("NKNUSDT"), "nopeusdt@depth@100ms"], "id": 2}
    assert answers[2] == {"result": True, "id": 3}
    assert received and all(m["stream"] == stream("NKNUSDT") for _, m in received)
    assert answers[3] == {"result": None, "id": 4}
    assert answers[4] == {"error": {"code": 2, "msg": "Invalid request: unknown variant `NOPE`, expected one of "
                                    "`SUBSCRIBE`, `UNSUBSCRIBE`, `LIST_SUBSCRIPTIONS`, `SET_PROPERTY`, "
                                    "`GET_PROPERTY`"}, "id": 5}
    assert answers[5]["error"]["code"] == 3 and answers[5]["error"]["msg"].startswith("Invalid JSON")
    assert answers[6] == {"error": {"code": 1, "msg": "Invalid value type: expected Boolean"}, "id": 6}
    assert answers[7] == {"error": {"code": 0, "msg": "Unknown property"}, "id": 7}
    assert answers[8]["error"] == {"code": 2, "msg": "Invalid request: request ID must be an unsigned integer"}
    assert after == [], "nothing after UNSUBSCRIBE, nothing ever for an unknown symbol"


def test_unknown_and_non_trading_symbols_are_accepted_and_silent(simulator):
    async def scenario():
        silent = ["nopeusdt@depth@100ms", "btcidrt@depth@100ms", "btcusdt@trade", "BTCUSDT@depth@100ms"]
        async with aiohttp.ClientSession() as session, session.ws_connect(
                f"{simulator.ws_url}/stream?streams=" + "/".join(silent)) as ws:
            await ws.send_str(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 1}))
            return silent, await receive_for(ws, 1.5)

    silent, messages = run(scenario())
    assert [m for _, m in messages] == [{"result": silent, "id": 1}]


# ---- limits ---------------------------------------------------------------------------------------


def test_1024_streams_a_connection(simulator):
    names = [f"s{i}usdt@depth@100ms" for i in range(1025)]

    async def scenario():
        async with aiohttp.ClientSession() as session:
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await session.ws_connect(f"{simulator.ws_url}/stream?streams=" + "/".join(names))
            async with session.ws_connect(f"{simulator.ws_url}/stream?streams=" + "/".join(names[:1020])) as ws:
                await ws.send_str(json.dumps({"method": "SUBSCRIBE", "params": names[1020:], "id": 1}))
                too_many = json.loads((await ws.receive(timeout=5)).data)
                await ws.send_str(json.dumps({"method": "SUBSCRIBE", "params": names[1020:1024], "id": 2}))
                fits = json.loads((await ws.receive(timeout=5)).data)
                await ws.send_str(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 3}))
                listed = json.loads((await ws.receive(timeout=5)).data)
                return refused.value.status, too_many, fits, listed

    status, too_many, fits, listed = run(scenario())
    assert status == 400
    assert too_many == {"error": {"code": 2, "msg": "Invalid request: too many parameters"}, "id": 1}
    assert fits == {"result": None, "id": 2}
    assert len(listed["result"]) == 1024


def test_more_than_5_incoming_messages_a_second_disconnects(simulator):
    async def scenario():
        async with aiohttp.ClientSession() as session, session.ws_connect(f"{simulator.ws_url}/ws") as ws:
            for request_id in range(7):
                await ws.send_str(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": request_id}))
            return await until_closed(ws, 5), ws.close_code

    message, code = run(scenario())
    assert message.type == aiohttp.WSMsgType.CLOSE and code == 1008


def test_connection_attempts_per_ip_are_limited():
    with running_simulator("--ws-max-connections", "3") as simulator:
        async def scenario():
            async with aiohttp.ClientSession() as session:
                opened = [await session.ws_connect(f"{simulator.ws_url}/ws") for _ in range(3)]
                with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                    await session.ws_connect(f"{simulator.ws_url}/ws")
                for ws in opened:
                    await ws.close()
                return refused.value.status

        assert run(scenario()) == 429
        assert simulator.stats()["streams"]["connections_refused"] == 1


def test_server_pings_and_closes_a_connection_that_stops_answering():
    with running_simulator("--ws-ping-interval", "0.5", "--ws-pong-timeout", "1.5") as simulator:
        async def scenario():
            async with aiohttp.ClientSession() as session, session.ws_connect(
                    f"{simulator.ws_url}/ws", autoping=False) as ws:
                ping = await ws.receive(timeout=3)
                await ws.pong(ping.data)
                second = await ws.receive(timeout=3)  # answered: still open, pinged again
                started = time.monotonic()
                while True:  # stop answering
                    message = await ws.receive(timeout=5)
                    if message.type != aiohttp.WSMsgType.PING:
                        return ping.type, second.type, message.type, ws.close_code, time.monotonic() - started

        first, second, closed, code, waited = run(scenario())
        assert first == second == aiohttp.WSMsgType.PING
        assert closed == aiohttp.WSMsgType.CLOSE and code == 1008
        assert 1.0 <= waited <= 4.0


def test_a_connection_lives_at_most_its_lifetime():
    with running_simulator("--ws-max-lifetime", "2") as simulator:
        async def scenario():
            async with aiohttp.ClientSession() as session, session.ws_connect(
                    f"{simulator.ws_url}/stream?streams={stream('NKNUSDT')}") as ws:
                started = time.monotonic()
                message = await until_closed(ws, 6)
                return message.type, ws.close_code, time.monotonic() - started

        kind, code, lived = run(scenario())
        assert kind == aiohttp.WSMsgType.CLOSE and code == 1000 and 1.5 <= lived <= 3.5


# ---- stream faults: what is sent changes, the truth does not ----------------------------------


async def _with_fault(simulator, rule: dict, seconds: float, symbol: str = "NKNUSDT"):
    """Connect, receive a few events, switch `rule` on, receive for `seconds`; the messages and
    the close message if the connection closed."""
    async with aiohttp.ClientSession() as session, session.ws_connect(
            f"{simulator.ws_url}/stream?streams={stream(symbol)}") as ws:
        before = await receive_for(ws, 0.8)
        deadline = time.monotonic() + 10  # a loaded machine (CI) may deliver the first events late
        while len(events_of(before, symbol)) < 2 and time.monotonic() < deadline:
            before += await receive_for(ws, 0.2)
        assert len(events_of(before, symbol)) >= 2, f"{symbol}'s stream sent events before the fault"
        await asyncio.to_thread(simulator.set_faults, [rule])
        after = []
        deadline = time.monotonic() + seconds
        closing = None
        while (left := deadline - time.monotonic()) > 0:
            try:
                message = await ws.receive(timeout=left)
            except asyncio.TimeoutError:
                break
            if message.type != aiohttp.WSMsgType.TEXT:
                closing = (message.type, ws.close_code)
                break
            after.append((time.monotonic(), json.loads(message.data)))
        return before, after, closing


def _truth_over(simulator, events: list[dict], symbol: str = "NKNUSDT") -> list[dict]:
    return simulator.events(symbol, events[0]["E"] - 1, events[-1]["E"])


def test_skipped_event_leaves_a_gap_and_the_truth_has_it(simulator):
    before, after, _ = run(_with_fault(simulator, {"endpoint": "stream", "symbol": "NKNUSDT", "kind": "skip_event",
                                                   "times": 1}, 2.5))
    received = events_of(before + after, "NKNUSDT")
    gaps = [(a, b) for a, b in zip(received, received[1:]) if b["U"] != a["u"] + 1]
    assert len(gaps) == 1 and gaps[0][1]["U"] > gaps[0][0]["u"] + 1
    truth = _truth_over(simulator, received)
    missing = [e for e in truth if e not in received]
    assert len(missing) == 1 and gaps[0][0]["u"] + 1 == missing[0]["U"]
    assert simulator.true_book("NKNUSDT", received[-1]["E"])["lastUpdateId"] == received[-1]["u"]


def test_duplicated_event_is_sent_twice(simulator):
    before, after, _ = run(_with_fault(simulator, {"endpoint": "stream", "symbol": "NKNUSDT",
                                                   "kind": "duplicate_event", "times": 1}, 2.0))
    received = events_of(before + after, "NKNUSDT")
    twice = [a for a, b in zip(received, received[1:]) if a == b]
    assert len(twice) == 1
    assert [e for i, e in enumerate(received) if i == 0 or e != received[i - 1]] == _truth_over(simulator, received)


def test_late_event_arrives_after_a_later_one(simulator):
    before, after, _ = run(_with_fault(simulator, {"endpoint": "stream", "symbol": "NKNUSDT", "kind": "late_event",
                                                   "times": 1}, 2.5))
    received = events_of(before + after, "NKNUSDT")
    out_of_order = [(a, b) for a, b in zip(received, received[1:]) if b["E"] < a["E"]]
    assert len(out_of_order) == 1 and out_of_order[0][1]["u"] + 1 == out_of_order[0][0]["U"]
    assert sorted(received, key=lambda e: e["E"]) == _truth_over(simulator, received)


def test_slow_consumer_gets_the_backlog_after_the_stall(simulator):
    before, after, _ = run(_with_fault(simulator, {"endpoint": "stream", "symbol": "NKNUSDT", "kind": "slow_consumer",
                                                   "delay": 1.5, "times": 1}, 3.5))
    arrivals = [t for t, _ in before + after]  # the stall starts at the first event after the rule
    assert max(b - a for a, b in zip(arrivals, arrivals[1:])) >= 1.3
    received = events_of(before + after, "NKNUSDT")
    assert received == _truth_over(simulator, received), "complete and in order, only late"


@pytest.mark.parametrize(("kind", "code"), [("drop_connection", 1006), ("server_close", 1001),
                                            ("expire_connection", 1000)])
def test_connection_faults_close_as_specified(simulator, kind, code):
    before, after, closing = run(_with_fault(simulator, {"endpoint": "stream", "symbol": "NKNUSDT", "kind": kind,
                                                         "times": 1}, 3.0))
    assert closing is not None, "the connection was closed"
    message_type, close_code = closing
    if kind == "drop_connection":  # no close frame: the client sees the TCP connection end
        assert message_type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR) and close_code == code
    else:
        assert message_type == aiohttp.WSMsgType.CLOSE and close_code == code
    received = events_of(before + after, "NKNUSDT")
    assert received == _truth_over(simulator, received)
    assert simulator.stats()["faults_fired"][kind] >= 1


def test_stream_faults_are_refused_on_rest_endpoints(simulator):
    refused = requests.post(f"{simulator.url}/_simulator/faults",
                            json={"rules": [{"endpoint": "depth", "kind": "skip_event"}]}, timeout=5)
    assert refused.status_code == 400 and "stream" in refused.json()["error"]
