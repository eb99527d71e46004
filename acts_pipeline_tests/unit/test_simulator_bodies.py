"""Change detectors: the simulator's response bodies, byte for byte, against what it answered
before it was made faster.

These digests are the simulator's own output, recorded; they say that the bytes changed, not that
they were right (the market model's behaviour is checked in test_simulator_market.py and
test_simulator_http.py).

`acts_pipeline_tests/data/simulator_bodies.json` holds, for every TRADING symbol, the SHA-256 of
the bodies of a fixed sequence of `Market.depth` requests (several instants of one market's life,
including a minute that ends on the next hour, limits from 1 to 5000, two seeds, two requests at
one instant for the `lastUpdateId` rule) serialised as `app.py` sends them, and the same for
`Market.klines` of some symbols. The klines digests were written by the simulator of commit
1b91463 and have not changed since. The depth digests were rewritten when the books became one
evolving state per symbol (diff events, issue 11 part 4): they pin that model's bytes from then
on. A deliberate change of the market model rewrites the file:
`python -m acts_pipeline_tests.unit.test_simulator_bodies --write`.
"""

from __future__ import annotations

import functools
import hashlib
import json
import sys
from collections.abc import Callable
from pathlib import Path

from acts_simulator.market import Market, load_captures

GOLDEN = Path(__file__).resolve().parent.parent / "data" / "simulator_bodies.json"

_dumps = functools.partial(json.dumps, separators=(",", ":"))  # as app.py serialises

# 2026-06-01 00:01:00.123 UTC (inside an hour), 00:59:59.95 (its minute ends on the next hour,
# whose path is drawn with this one) and the instant the captures were taken (klines only).
T_INSIDE = 1_780_272_060.123
T_HOUR_END = 1_780_275_599.95
T_CAPTURED = 1_633_998_511.0


def depth_requests(index: int) -> list[tuple[float, int]]:
    """(instant, limit) of the requests made for the `index`-th TRADING symbol, in order, on a
    market born at T_INSIDE's minute: its first books and 7.5 s of events later."""
    requests = [(T_INSIDE, 100), (T_INSIDE + 7.5, 5), (T_INSIDE + 7.5, 5)]
    if index % 4 == 0:
        requests.append((T_INSIDE + 0.05, 1000))
    if index % 20 == 0:
        requests += [(T_INSIDE + 0.2, 5000), (T_INSIDE + 0.2, 1)]
    return requests


def _market(seed: int, now: float) -> Market:
    return Market(load_captures(), seed=seed, clock=lambda: now, epoch=now)


def depth_digests(render: Callable[[Market, str, int, float], str]) -> dict[str, str]:
    """Per symbol: the digest of its requests' bodies, `render(market, symbol, limit, at)` each.
    One market per seed for all symbols, as a running simulator has; the hour's end on a market
    born in its last minute."""
    markets = {seed: _market(seed, T_INSIDE) for seed in (0, 7)}
    hour_end = _market(0, T_HOUR_END - 59)
    digests = {}
    for index, symbol in enumerate(markets[0].trading_symbols):
        digest = hashlib.sha256()
        for at, limit in depth_requests(index):
            digest.update(render(markets[0], symbol, limit, at).encode() + b"\n")
        if index % 10 == 0:
            digest.update(render(markets[7], symbol, 100, T_INSIDE).encode() + b"\n")
        if index % 5 == 0:
            digest.update(render(hour_end, symbol, 100, T_HOUR_END).encode() + b"\n")
        digests[symbol] = digest.hexdigest()[:24]
    return digests


def klines_digests() -> dict[str, str]:
    market = Market(load_captures(), seed=0)
    digests = {}
    for symbol in market.trading_symbols[::25]:
        rows = market.klines(symbol, start_ms=int((T_INSIDE - 5_400) * 1000), limit=120, now=T_INSIDE)
        digests[symbol] = hashlib.sha256(_dumps(rows).encode()).hexdigest()[:24]
    return digests


def dumped_depth(market: Market, symbol: str, limit: int, at: float) -> str:
    return _dumps(market.depth(symbol, limit, at=at))


def golden() -> dict[str, dict[str, str]]:
    return json.loads(GOLDEN.read_text())


def _differing(actual: dict[str, str], expected: dict[str, str]) -> list[str]:
    assert actual.keys() == expected.keys()
    return [symbol for symbol in expected if actual[symbol] != expected[symbol]]


def test_change_detector_depth_bodies_match_the_recorded_digests():
    assert _differing(depth_digests(dumped_depth), golden()["depth"]) == []


def test_change_detector_depth_json_matches_the_recorded_digests():
    """What the HTTP layer sends (`depth_json`) is the serialised `depth`, digit for digit: both
    give the recorded digests."""
    rendered = depth_digests(lambda market, symbol, limit, at: market.depth_json(symbol, limit, at=at))
    assert _differing(rendered, golden()["depth"]) == []


def test_change_detector_klines_bodies_match_the_recorded_digests():
    assert _differing(klines_digests(), golden()["klines"]) == []


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python -m acts_pipeline_tests.unit.test_simulator_bodies --write")
    GOLDEN.write_text(json.dumps({"depth": depth_digests(dumped_depth), "klines": klines_digests()}, indent=0) + "\n")
    print(f"wrote {GOLDEN}")
