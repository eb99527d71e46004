"""The offline Binance Spot exchange: a real HTTP server python-binance can talk to.

    market.py   the deterministic market model (prices, books, candles), pure
    book.py     one evolving order book per symbol: diff events, checkpoints, the truth
    faults.py   the fault switches (rules, matching, book alterations, stream faults), pure
    app.py      the aiohttp application: routes, request weight, errors, control routes
    streams.py  Binance's websocket market streams (diff depth) on the same port
    server.py   running it: blocking until a signal, or in a background thread
    __main__    `python -m acts_simulator --port N [--seed S]`

Data: the real Binance captures in `data/binance` (see its README.md).
"""

from acts_simulator.app import (
    DEFAULT_BAN_SECONDS,
    DEFAULT_WEIGHT_LIMIT,
    SIMULATOR,
    Simulator,
    WeightLedger,
    create_app,
)
from acts_simulator.faults import KINDS as FAULT_KINDS
from acts_simulator.faults import FaultRule, FaultSet
from acts_simulator.market import BookUnavailable, InvalidSymbol, Market, kline_open_minutes, load_captures
from acts_simulator.server import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    BackgroundSimulator,
    run,
    serve,
    start_in_thread,
    ws_url_of,
)
from acts_simulator.streams import StreamConfig, StreamHub

__all__ = [
    "DEFAULT_BAN_SECONDS",
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "DEFAULT_WEIGHT_LIMIT",
    "FAULT_KINDS",
    "SIMULATOR",
    "BackgroundSimulator",
    "BookUnavailable",
    "FaultRule",
    "FaultSet",
    "InvalidSymbol",
    "Market",
    "Simulator",
    "StreamConfig",
    "StreamHub",
    "WeightLedger",
    "create_app",
    "kline_open_minutes",
    "load_captures",
    "run",
    "serve",
    "start_in_thread",
    "ws_url_of",
]
