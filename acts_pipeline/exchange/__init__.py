"""The Binance Spot edge: rate limits, the one transport, the client, the Dagster resource.

- `rate_limits`: Binance's request weights and the `WeightGate` (with the `SharedBlock` and
  `SharedWeight` files every process of the instance shares), no I/O but those files.
- `transport`: the asyncio transport (one aiohttp session on a loop thread; the gate, deadlines,
  typed errors, retries) and the bridge synchronous callers use.
- `client`: `ExchangeClient`, order books, klines and exchangeInfo parsed into models.
- `resource`: `BinanceExchange`, the `ConfigurableResource` that builds a client.

Imports run downward only: resource -> client -> transport -> rate_limits.
"""

from acts_pipeline.exchange.client import ExchangeClient, TimedBook
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
from acts_pipeline.exchange.transport import (
    DEFAULT_MAX_IN_FLIGHT,
    INVALID_SYMBOL_CODE,
    KEEPALIVE_SECONDS,
    Transport,
)

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
