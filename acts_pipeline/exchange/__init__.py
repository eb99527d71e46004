"""The Binance Spot edge: rate limits, the one transport, the client, the Dagster resource.

- `rate_limits`: Binance's request weights and the `WeightGate` (with the `SharedBlock` and
  `SharedWeight` files every process of the instance shares), no I/O but those files.
- `transport`: the asyncio transport (one aiohttp session on a loop thread; the gate, deadlines,
  typed errors, retries) and the bridge synchronous callers use.
- `client`: `ExchangeClient`, order books, klines and exchangeInfo parsed into models.
- `resource`: `BinanceExchange`, the `ConfigurableResource` that builds a client.

Imports run downward only: resource -> client -> transport -> rate_limits. The resource imports
the client when it first builds one (`BinanceExchange.get_client`).
"""

from typing import TYPE_CHECKING

from acts_pipeline.exchange.rate_limits import (
    DEFAULT_WEIGHT_LIMIT,
    EXCHANGE_INFO_WEIGHT,
    KLINES_PER_REQUEST,
    KLINES_WEIGHT,
    SharedBlock,
    SharedWeight,
    WeightGate,
    depth_weight,
    klines_weight,
)
from acts_pipeline.exchange.resource import BinanceExchange

if TYPE_CHECKING:
    from acts_pipeline.exchange.client import ExchangeClient, TimedBook
    from acts_pipeline.exchange.transport import (
        DEFAULT_MAX_IN_FLIGHT,
        INVALID_SYMBOL_CODE,
        KEEPALIVE_SECONDS,
        Transport,
    )

#: Names of `client` and `transport`, imported on first use: both load aiohttp and python-binance
#: (0.3 s of CPU), which a process that only loads the definitions (every minute run) never needs.
_LAZY = {
    "ExchangeClient": "acts_pipeline.exchange.client",
    "TimedBook": "acts_pipeline.exchange.client",
    "DEFAULT_MAX_IN_FLIGHT": "acts_pipeline.exchange.transport",
    "INVALID_SYMBOL_CODE": "acts_pipeline.exchange.transport",
    "KEEPALIVE_SECONDS": "acts_pipeline.exchange.transport",
    "Transport": "acts_pipeline.exchange.transport",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DEFAULT_MAX_IN_FLIGHT",
    "DEFAULT_WEIGHT_LIMIT",
    "EXCHANGE_INFO_WEIGHT",
    "INVALID_SYMBOL_CODE",
    "KEEPALIVE_SECONDS",
    "KLINES_PER_REQUEST",
    "KLINES_WEIGHT",
    "BinanceExchange",
    "ExchangeClient",
    "SharedBlock",
    "SharedWeight",
    "TimedBook",
    "Transport",
    "WeightGate",
    "depth_weight",
    "klines_weight",
]
