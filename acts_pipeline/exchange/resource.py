"""`BinanceExchange`: the Dagster resource that builds an `ExchangeClient` from its fields.

The code location binds each field to its `ACTS_*` variable (`orchestration/environment.py`);
values are parsed here by the settings' own parsers, so a bad one names the variable.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dagster import ConfigurableResource
from pydantic import Field, PrivateAttr

from acts_pipeline import settings

if TYPE_CHECKING:
    from acts_pipeline.exchange.client import ExchangeClient


class BinanceExchange(ConfigurableResource):
    """Binance Spot market data (order books, klines, exchangeInfo) over its REST API."""

    api_url: str = Field(
        default=settings.DEFAULT_BINANCE_API_URL,
        description="REST base URL of Binance Spot, e.g. the offline simulator's "
        "(ACTS_BINANCE_API_URL).")
    depth_limit: int = Field(
        default=settings.DEFAULT_DEPTH_LIMIT,
        description="Levels per side of each order book, 1..5000 (ACTS_DEPTH_LIMIT). Binance "
        "charges 5 weight per book up to 100 levels, 25 up to 500, 50 up to 1000, 250 above.")
    spool_dir: str | None = Field(
        default=None,
        description="The spool folder (ACTS_SPOOL_DIR); the file through which every run process "
        "shares a Retry-After or an IP ban lies beside it. Unset: acts_spool in DAGSTER_HOME.")
    timeout_seconds: float = Field(
        default=5.0, description="Longest wait for one HTTP response; cut to the minute's capture deadline.")
    max_workers: int = Field(
        default=settings.DEFAULT_MAX_IN_FLIGHT, description="The most order-book requests in flight at once.")
    weight_budget_fraction: float = Field(
        default=0.8, description="Share of Binance's per-minute request weight (6000) ACTS lets itself "
        "spend; the rest is headroom for other clients on the same IP.")

    _client: Any = PrivateAttr(default=None)  # the ExchangeClient, built on first use

    def levels(self) -> int:
        """Levels per side of each book. Whatever plans around the books' request weight (the
        sensors) asks here, so it agrees with the fetch."""
        return settings.parse_depth_limit(self.depth_limit)

    def get_client(self) -> ExchangeClient:
        if self._client is None:
            # Imported here, not with the module: aiohttp and python-binance cost every process
            # that loads the definitions 0.3 s of CPU, and a minute run whose books all come from
            # the recorder never sends a request (`acts_pipeline_tests/unit/test_import_cost.py`).
            from acts_pipeline.exchange.client import ExchangeClient

            self._client = ExchangeClient(
                settings.parse_binance_api_url(self.api_url),
                depth_limit=self.levels(),
                timeout_seconds=self.timeout_seconds,
                max_workers=self.max_workers,
                weight_budget_fraction=self.weight_budget_fraction,
                shared_block_path=settings.block_path_beside(settings.parse_spool_dir(self.spool_dir)),
                shared_weight_path=settings.weight_path_beside(settings.parse_spool_dir(self.spool_dir)),
            )
        return self._client

    def teardown_after_execution(self, context) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
