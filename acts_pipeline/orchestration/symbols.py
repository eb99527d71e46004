"""The tracked symbols: Dagster dynamic partitions named `symbols`, checked against the exchange.

Registration order matters: a minute run covers the symbol range from the first-registered to
the last-registered symbol, so symbols are only ever appended (or removed), never reordered.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from dagster import ConfigurableResource, DagsterInstance
from pydantic import Field

from acts_pipeline.core.models import SymbolInfo
from acts_pipeline.orchestration.partitions import SYMBOLS_PARTITIONS_NAME
from acts_pipeline.settings import DEFAULT_SYMBOLS_TEXT, parse_symbols

if TYPE_CHECKING:
    from acts_pipeline.exchange import ExchangeClient


class SymbolError(ValueError):
    """A symbol was refused: malformed, unknown to the exchange, or not trading."""


class InitialSymbols(ConfigurableResource):
    """The symbols the minute sensor registers on the first start, when none are registered yet."""

    symbols: str = Field(
        default=DEFAULT_SYMBOLS_TEXT,
        description="Comma-separated Binance Spot symbols, e.g. BTCUSDT,ETHUSDT (ACTS_SYMBOLS); each is "
        "checked against exchangeInfo before it is registered. Later symbols are added in the UI or "
        "with `acts-pipeline symbols add`.")

    def parsed(self) -> tuple[str, ...]:
        return parse_symbols(self.symbols)


def registered_symbols(instance: DagsterInstance) -> list[str]:
    """Tracked symbols in registration order."""
    return list(instance.get_dynamic_partitions(SYMBOLS_PARTITIONS_NAME))


def refusals(listed: Mapping[str, SymbolInfo], symbols: Iterable[str]) -> dict[str, str]:
    """Why the exchange's listing (`exchangeInfo`) refuses each of `symbols` it refuses: unknown,
    or not trading. The symbols it accepts are absent."""
    refused = {}
    for symbol in symbols:
        info = listed.get(symbol)
        if info is None:
            refused[symbol] = f"{symbol} is not a Binance Spot symbol"
        elif not info.trading:
            refused[symbol] = f"{symbol} is not trading (status {info.status})"
    return refused


def check_symbols(client: ExchangeClient, symbols: Iterable[str]) -> list[str]:
    """The symbols, normalised, if the exchange lists each of them as TRADING; otherwise a
    `SymbolError` naming every symbol refused and why."""
    wanted = parse_symbols(",".join(symbols), variable="symbol list")
    refused = refusals(client.exchange_info(), wanted)
    if refused:
        raise SymbolError("; ".join(refused.values()))
    return list(wanted)


def add_symbols(instance: DagsterInstance, client: ExchangeClient, symbols: Iterable[str]) -> list[str]:
    """Register the symbols not yet tracked, all or none; returns those newly added."""
    checked = check_symbols(client, symbols)
    known = set(registered_symbols(instance))
    new = [s for s in checked if s not in known]
    if new:
        instance.add_dynamic_partitions(SYMBOLS_PARTITIONS_NAME, new)
    return new


def remove_symbols(instance: DagsterInstance, symbols: Iterable[str]) -> list[str]:
    """Stop tracking the symbols; their stored data stays in MongoDB. Returns those removed."""
    known = set(registered_symbols(instance))
    removed = []
    for symbol in parse_symbols(",".join(symbols), variable="symbol list"):
        if symbol in known:
            instance.delete_dynamic_partition(SYMBOLS_PARTITIONS_NAME, symbol)
            removed.append(symbol)
    return removed
