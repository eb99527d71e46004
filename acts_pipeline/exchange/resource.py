"""`BinanceExchange`: the Dagster resource that builds an `ExchangeClient` from configuration."""

from __future__ import annotations

from dagster import ConfigurableResource
from pydantic import PrivateAttr

from acts_pipeline import settings
from acts_pipeline.exchange.client import ExchangeClient
from acts_pipeline.exchange.transport import DEFAULT_MAX_IN_FLIGHT


class BinanceExchange(ConfigurableResource):
    """Binance Spot market data (order books, klines, exchangeInfo) over its REST API.

    Fields left unset are read from the environment when the resource is built:
    `ACTS_BINANCE_API_URL` (the REST base URL, e.g. the offline simulator's) and `ACTS_DEPTH_LIMIT`.
    """

    api_url: str | None = None
    depth_limit: int | None = None
    timeout_seconds: float = 5.0
    #: The most order-book requests in flight at once.
    max_workers: int = DEFAULT_MAX_IN_FLIGHT
    weight_budget_fraction: float = 0.8

    _client: ExchangeClient | None = PrivateAttr(default=None)

    def levels(self) -> int:
        """Levels per side of each book: `depth_limit`, else `ACTS_DEPTH_LIMIT`. Whatever plans
        around the books' request weight (the sensors) asks here, so it agrees with the fetch."""
        return self.depth_limit or settings.depth_limit()

    def get_client(self) -> ExchangeClient:
        if self._client is None:
            self._client = ExchangeClient(
                self.api_url or settings.binance_api_url(),
                depth_limit=self.levels(),
                timeout_seconds=self.timeout_seconds,
                max_workers=self.max_workers,
                weight_budget_fraction=self.weight_budget_fraction,
                shared_block_path=settings.exchange_block_path(),
            )
        return self._client

    def teardown_after_execution(self, context) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
