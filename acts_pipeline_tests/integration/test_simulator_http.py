"""The simulator over real HTTP, as the pipeline sees it: python-binance's Client and requests."""

from __future__ import annotations

import signal
import time
from decimal import Decimal

import pytest
import requests
from binance.client import Client
from binance.exceptions import BinanceAPIException, BinanceRequestException

from acts_pipeline_tests.servers_simulator import (
    running_simulator,
    stop_simulator_process,
    wait_for_minute_headroom,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def client(simulator) -> Client:
    client = Client(ping=False, requests_params={"timeout": 5})
    client.API_URL = simulator.api_url
    return client


def get(simulator, path: str, **params) -> requests.Response:
    return requests.get(f"{simulator.api_url}/v3/{path}", params=params, timeout=5)


def used_weight(response: requests.Response) -> int:
    return int(response.headers["X-MBX-USED-WEIGHT-1M"])


# ---- shapes ---------------------------------------------------------------------------------


def test_ping_and_time(client, simulator):
    assert client.ping() == {}
    server_ms = client.get_server_time()["serverTime"]
    assert abs(server_ms - time.time() * 1000) < 5_000
    response = get(simulator, "ping")
    assert response.headers["X-MBX-USED-WEIGHT"] == response.headers["X-MBX-USED-WEIGHT-1M"]


def test_exchange_info(client, simulator):
    info = client.get_exchange_info()
    assert len(info["symbols"]) == 1695
    assert abs(info["serverTime"] - time.time() * 1000) < 5_000
    weight = next(r for r in info["rateLimits"] if r["rateLimitType"] == "REQUEST_WEIGHT")
    assert weight["limit"] == 6000
    one = get(simulator, "exchangeInfo", symbol="BTCUSDT").json()
    assert [s["symbol"] for s in one["symbols"]] == ["BTCUSDT"]
    two = get(simulator, "exchangeInfo", symbols='["ETHBTC","NKNUSDT"]').json()
    assert [s["symbol"] for s in two["symbols"]] == ["ETHBTC", "NKNUSDT"]
    unknown = get(simulator, "exchangeInfo", symbols='["ETHBTC","NOPE"]')
    assert (unknown.status_code, unknown.json()["code"]) == (400, -1121)


def test_depth(client):
    book = client.get_order_book(symbol="BTCUSDT", limit=100)
    assert set(book) == {"lastUpdateId", "bids", "asks"}
    assert len(book["bids"]) == len(book["asks"]) == 100
    bids = [Decimal(p) for p, _ in book["bids"]]
    asks = [Decimal(p) for p, _ in book["asks"]]
    assert bids == sorted(bids, reverse=True) and asks == sorted(asks) and bids[0] < asks[0]
    assert all(len(p.split(".")[1]) == 8 for p, _ in book["bids"])
    # The book moves only with its diff events (BTCUSDT: about 2 a second); as on Binance, no
    # event in between means the same book and the same lastUpdateId.
    deadline = time.monotonic() + 5
    while True:
        time.sleep(0.2)
        again = client.get_order_book(symbol="BTCUSDT", limit=100)
        assert again["lastUpdateId"] >= book["lastUpdateId"]
        if again["lastUpdateId"] > book["lastUpdateId"]:
            break
        assert again == book
        assert time.monotonic() < deadline, "the book did not move in 5 s"


def test_depth_errors(client, simulator):
    with pytest.raises(BinanceAPIException) as raised:
        client.get_order_book(symbol="NOPEUSDT")
    assert (raised.value.status_code, raised.value.code) == (400, -1121)
    missing = get(simulator, "depth")
    assert missing.status_code == 400
    assert missing.json() == {
        "code": -1102,
        "msg": "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.",
    }
    # A BREAK symbol of exchangeInfo is served like an unknown one.
    assert get(simulator, "depth", symbol="BTCIDRT").json()["code"] == -1121


def test_klines(client, simulator):
    now_ms = int(time.time() * 1000)
    start = (now_ms // 60_000 - 10) * 60_000
    rows = client.get_klines(symbol="ETHUSDT", interval="1m", startTime=start, endTime=now_ms, limit=1000)
    assert len(rows) == 11
    assert [r[0] for r in rows] == list(range(start, start + 11 * 60_000, 60_000))
    assert all(len(r) == 12 and r[6] == r[0] + 59_999 for r in rows)
    assert all(isinstance(v, str) for r in rows for v in (r[1], r[2], r[3], r[4], r[5], r[7]))
    # Closed candles are final: asking again gives the same ones.
    closed = client.get_klines(symbol="ETHUSDT", interval="1m", startTime=start, endTime=start + 5 * 60_000)
    assert closed == rows[:6]
    bad = get(simulator, "klines", symbol="ETHUSDT", interval="5m")
    assert (bad.status_code, bad.json()["code"]) == (400, -1120)


def test_book_ticker(client, simulator):
    ticker = client.get_orderbook_ticker(symbol="NKNUSDT")
    assert set(ticker) == {"symbol", "bidPrice", "bidQty", "askPrice", "askQty"}
    assert Decimal(ticker["bidPrice"]) < Decimal(ticker["askPrice"])
    book = client.get_order_book(symbol="NKNUSDT", limit=5)
    mid = (Decimal(book["bids"][0][0]) + Decimal(book["asks"][0][0])) / 2
    assert abs(Decimal(ticker["bidPrice"]) / mid - 1) < Decimal("0.01")
    everything = get(simulator, "ticker/bookTicker")
    assert len(everything.json()) == 1262


def test_weight_header_counts_each_requests_weight(simulator):
    cases = [("depth", {"symbol": "BTCUSDT", "limit": 100}, 5), ("depth", {"symbol": "BTCUSDT", "limit": 101}, 25),
             ("depth", {"symbol": "BTCUSDT", "limit": 500}, 25), ("depth", {"symbol": "BTCUSDT", "limit": 1000}, 50),
             ("depth", {"symbol": "BTCUSDT", "limit": 5000}, 250), ("depth", {"symbol": "BTCUSDT"}, 5),
             ("klines", {"symbol": "BTCUSDT", "interval": "1m"}, 2), ("exchangeInfo", {}, 20),
             ("ticker/bookTicker", {"symbol": "BTCUSDT"}, 2), ("time", {}, 1), ("ping", {}, 1)]
    wait_for_minute_headroom(5)
    before = used_weight(get(simulator, "ping"))
    for path, params, weight in cases:
        after = used_weight(get(simulator, path, **params))
        assert after - before == weight, (path, params)
        before = after
    # The control endpoints cost nothing.
    simulator.stats()
    simulator.faults()
    assert simulator.stats()["used_weight"] == before


# ---- faults, from the client's side ---------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "status", "code"),
    [("http_500", 500, -1000), ("http_502", 502, 0), ("http_503", 503, -1008), ("http_504", 504, -1007),
     ("invalid_symbol", 400, -1121)],
)
def test_http_error_faults(client, simulator, kind, status, code):
    simulator.set_faults([{"endpoint": "depth", "kind": kind, "times": 1}])
    with pytest.raises(BinanceAPIException) as raised:
        client.get_order_book(symbol="BTCUSDT")
    assert (raised.value.status_code, raised.value.code) == (status, code)
    if kind == "http_502":
        assert "502 Bad Gateway" in raised.value.response.text
    assert client.get_order_book(symbol="BTCUSDT")["bids"]  # times=1: only once


def test_rate_limit_fault_sends_retry_after(client, simulator):
    simulator.set_faults([{"endpoint": "klines", "kind": "rate_limit_429", "retry_after": 7, "times": 1}])
    with pytest.raises(BinanceAPIException) as raised:
        client.get_klines(symbol="BTCUSDT", interval="1m", limit=1)
    assert (raised.value.status_code, raised.value.code) == (429, -1003)
    assert raised.value.response.headers["Retry-After"] == "7"


def test_ban_fault_refuses_every_request_until_cleared(client, simulator):
    simulator.set_faults([{"endpoint": "depth", "kind": "ban_418", "retry_after": 30, "times": 1}])
    with pytest.raises(BinanceAPIException) as raised:
        client.get_order_book(symbol="BTCUSDT")
    assert raised.value.status_code == 418
    assert raised.value.response.headers["Retry-After"] == "30"
    # The rule is spent, but the ban holds for every endpoint.
    later = get(simulator, "ping")
    assert later.status_code == 418 and 0 < int(later.headers["Retry-After"]) <= 30
    simulator.clear_faults()
    assert get(simulator, "ping").status_code == 200


def test_latency_fault(client, simulator):
    simulator.set_faults([{"endpoint": "depth", "symbol": "ETHUSDT", "kind": "latency", "delay": 0.6}])
    started = time.monotonic()
    client.get_order_book(symbol="BTCUSDT")  # another symbol: not delayed
    fast = time.monotonic() - started
    started = time.monotonic()
    assert client.get_order_book(symbol="ETHUSDT")["bids"]
    slow = time.monotonic() - started
    assert fast < 0.5 <= 0.6 <= slow < 2.0


def test_timeout_fault(simulator):
    simulator.set_faults([{"endpoint": "depth", "kind": "timeout", "times": 1}])
    client = Client(ping=False, requests_params={"timeout": 0.5})
    client.API_URL = simulator.api_url
    started = time.monotonic()
    with pytest.raises(requests.exceptions.ReadTimeout):
        client.get_order_book(symbol="BTCUSDT")
    assert time.monotonic() - started < 2
    assert client.get_order_book(symbol="BTCUSDT")["bids"]


def test_close_connection_fault(client, simulator):
    simulator.set_faults([{"endpoint": "depth", "kind": "close_connection", "times": 1}])
    with pytest.raises(requests.exceptions.ConnectionError):
        client.get_order_book(symbol="BTCUSDT")
    assert client.get_order_book(symbol="BTCUSDT")["bids"]
    assert simulator.stats()["responses"]["dropped"] >= 1


def test_malformed_json_fault(client, simulator):
    simulator.set_faults([{"endpoint": "depth", "kind": "malformed_json", "times": 1}])
    with pytest.raises(BinanceRequestException):
        client.get_order_book(symbol="BTCUSDT")


@pytest.mark.parametrize("kind", ["missing_bids", "empty_bids", "empty_asks", "crossed"])
def test_book_faults(client, simulator, kind):
    simulator.set_faults([{"endpoint": "depth", "symbol": "BTCUSDT", "kind": kind, "times": 1}])
    book = client.get_order_book(symbol="BTCUSDT", limit=10)
    if kind == "missing_bids":
        assert "bids" not in book and book["asks"]
    elif kind == "empty_bids":
        assert book["bids"] == [] and book["asks"]
    elif kind == "empty_asks":
        assert book["asks"] == [] and book["bids"]
    else:
        assert Decimal(book["bids"][0][0]) > Decimal(book["asks"][0][0])
    normal = client.get_order_book(symbol="BTCUSDT", limit=10)
    assert normal["bids"] and normal["asks"]
    assert Decimal(normal["bids"][0][0]) < Decimal(normal["asks"][0][0])


def test_rules_fire_times_times_in_order_and_are_counted(client, simulator):
    before = simulator.stats()["faults_fired"]
    simulator.set_faults([
        {"endpoint": "depth", "symbol": "ETHUSDT", "kind": "http_503", "times": 2},
        {"endpoint": "*", "kind": "http_500", "times": 1},
    ])
    statuses = []
    for _ in range(4):
        try:
            client.get_order_book(symbol="ETHUSDT")
            statuses.append(200)
        except BinanceAPIException as error:
            statuses.append(error.status_code)
    assert statuses == [503, 503, 500, 200]
    rules = simulator.faults()
    assert [(r["kind"], r["fired"]) for r in rules] == [("http_503", 2), ("http_500", 1)]
    fired = simulator.stats()["faults_fired"]
    assert fired["http_503"] - before.get("http_503", 0) == 2
    assert fired["http_500"] - before.get("http_500", 0) == 1


def test_probability_zero_never_fires_and_bad_rules_are_refused(client, simulator):
    simulator.set_faults([{"kind": "http_500", "probability": 0.0}])
    assert client.ping() == {}
    refused = requests.post(f"{simulator.url}/_simulator/faults", json={"rules": [{"kind": "nope"}]}, timeout=5)
    assert refused.status_code == 400 and "unknown fault kind" in refused.json()["error"]
    assert len(simulator.faults()) == 1


def test_stats_count_requests_by_endpoint_and_symbol(client, simulator):
    before = simulator.stats()
    client.get_order_book(symbol="LRCBTC")
    client.get_order_book(symbol="LRCBTC")
    get(simulator, "depth", symbol="NOPE")
    after = simulator.stats()
    assert after["requests"]["depth"] - before["requests"].get("depth", 0) == 3
    by_symbol = after["requests_by_symbol"]["depth"]
    assert by_symbol["LRCBTC"] - before["requests_by_symbol"].get("depth", {}).get("LRCBTC", 0) == 2
    assert after["responses"]["400"] - before["responses"].get("400", 0) == 1


# ---- request weight limit, on a private simulator -------------------------------------------


def test_weight_limit_gives_429_then_a_418_ban_and_sigterm_stops_cleanly():
    with running_simulator("--weight-limit", "30", "--ban-seconds", "5") as simulator:
        wait_for_minute_headroom(5)
        responses = [get(simulator, "depth", symbol="BTCUSDT") for _ in range(7)]
        assert [r.status_code for r in responses] == [200] * 6 + [429]
        assert [used_weight(r) for r in responses] == [5, 10, 15, 20, 25, 30, 30]
        limited = responses[-1]
        assert limited.json()["code"] == -1003
        assert 0 < int(limited.headers["Retry-After"]) <= 60
        # Ignoring Retry-After earns an IP ban, for every endpoint.
        banned = get(simulator, "ping")
        assert banned.status_code == 418 and banned.headers["Retry-After"] == "5"
        assert banned.json()["code"] == -1003
        with pytest.raises(BinanceAPIException) as raised:
            client = Client(ping=False)
            client.API_URL = simulator.api_url
            client.get_order_book(symbol="BTCUSDT")
        assert raised.value.status_code == 418

        simulator.process.send_signal(signal.SIGTERM)
        started = time.monotonic()
        assert simulator.process.wait(5) == 0
        assert time.monotonic() - started < 3
        assert stop_simulator_process(simulator) == 0
