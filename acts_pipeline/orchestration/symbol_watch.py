"""No run collects a symbol the exchange has not accepted, however it was registered.

Symbols are Dagster dynamic partitions, and the UI's *Add partition* registers one without any
check (`acts-pipeline symbols add` checks first). One refused symbol used to cost every symbol:
the minute runs included it, and its klines request failed the whole klines step. So
`minute_sensor` keeps watch over the registered symbols, on the ticks that do not request the
minute's run (the first half of each minute):

- a symbol it has not accepted yet is checked against `exchangeInfo` (one request for all new
  symbols); no run includes it until it is accepted, so it joins from the next minute on;
- a refused one (unknown to the exchange, or not trading) is removed from the partitions, said
  in the sensor's log, named by a failing `symbols_are_listed` check on the `tracked_symbols`
  asset, and listed as refused in that asset's table (each change is a new materialization of
  `tracked_symbols`, recorded by the sensor);
- once an accepted symbol's first minute is stored, `tracked_symbols` says so (or says that it
  was not, and tracks the next minute);
- every hour all registered symbols are checked again: one the exchange no longer lists
  (delisted) is removed the same way; one that stopped trading is reported and kept, since a
  halt is often temporary and its books say what they are.

The watch's state is the sensor's cursor (`WatchState`). `watch` is a pure function of the
registered symbols, that state, the clock, and two callables for what it reads from outside.
"""

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from dagster import (
    AssetCheckEvaluation,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckExecutionContext,
    AssetKey,
    AssetMaterialization,
    AssetSpec,
    MetadataValue,
    TableColumn,
    TableRecord,
    TableSchema,
    asset_check,
)

from acts_pipeline.core.errors import ExchangeError
from acts_pipeline.exchange import BinanceExchange
from acts_pipeline.core.models import SymbolInfo
from acts_pipeline.core.cells import format_minute, minute_close, parse_minute
from acts_pipeline.orchestration.symbols import refusals, registered_symbols

TRACKED_SYMBOLS = AssetKey("tracked_symbols")
SYMBOLS_ARE_LISTED = "symbols_are_listed"
#: How often every registered symbol is checked against the exchange again.
RECHECK_EVERY = timedelta(hours=1)
#: A first minute not stored this long after its close is reported, and the next one is tracked.
FIRST_MINUTE_GRACE = timedelta(minutes=3)

tracked_symbols = AssetSpec(
    key=TRACKED_SYMBOLS,
    description="The symbols ACTS collects: the `symbols` dynamic partitions of the minute assets. "
    "Each symbol, however it was added (the UI's *Add partition*, `acts-pipeline symbols add`, "
    "ACTS_SYMBOLS at first start), is checked against Binance `exchangeInfo` before any run "
    "collects it; a refused one is removed and named by the `symbols_are_listed` check. The "
    "table of each materialization says, per symbol, when it was accepted and whether its first "
    "minute was stored. Recorded by `minute_sensor` whenever something changes (not a run: "
    "*Materialize* does nothing here; run the check to ask the exchange again).",
    group_name="binance_spot",
    kinds={"dagster"},
)


@dataclass
class WatchState:
    """What the watch remembers between ticks (the sensor's cursor)."""

    #: symbol -> when it was accepted (ISO, UTC)
    accepted: dict[str, str] = field(default_factory=dict)
    #: accepted symbols whose first minute is not confirmed stored yet -> the minute key of the
    #: first run that included them (None until a run does)
    awaiting_first: dict[str, str | None] = field(default_factory=dict)
    #: when every registered symbol was last checked (ISO, UTC)
    rechecked_at: str | None = None
    #: whether ACTS_SYMBOLS were registered (once, on the first start: a cursor of a version
    #: before this field is of a platform that started long ago)
    initial_registered: bool = False

    @classmethod
    def from_cursor(cls, cursor: str | None) -> "WatchState":
        data = json.loads(cursor) if cursor else {}
        return cls(dict(data.get("accepted", {})), dict(data.get("awaiting_first", {})), data.get("rechecked_at"),
                   bool(data.get("initial_registered", bool(cursor))))

    def to_cursor(self) -> str:
        return json.dumps({"accepted": self.accepted, "awaiting_first": self.awaiting_first,
                           "rechecked_at": self.rechecked_at, "initial_registered": self.initial_registered})

    def accept(self, symbols: list[str], now: datetime) -> None:
        for symbol in symbols:
            if symbol not in self.accepted:
                self.accepted[symbol] = now.isoformat()
                self.awaiting_first[symbol] = None

    def forget(self, symbols) -> None:
        """Drop what is remembered of `symbols` (removed, or no longer registered)."""
        for symbol in symbols:
            self.accepted.pop(symbol, None)
            self.awaiting_first.pop(symbol, None)

    def requested(self, minute: datetime, symbols: list[str]) -> None:
        """Note `minute` as the first collected minute of the awaited symbols a run now covers."""
        for symbol in symbols:
            if symbol in self.awaiting_first and self.awaiting_first[symbol] is None:
                self.awaiting_first[symbol] = format_minute(minute)


@dataclass
class WatchOutcome:
    """What a tick of the watch decided."""

    #: the symbols runs may collect, in registration order
    collect: list[str]
    #: symbols to remove from the partitions, with why
    remove: dict[str, str]
    #: lines for the sensor's log: (level, message)
    messages: list[tuple[str, str]]
    asset_events: list[AssetMaterialization | AssetCheckEvaluation]


def watch(registered: list[str], state: WatchState, now: datetime, *,
          listing: Callable[[], Mapping[str, SymbolInfo]] | None,
          stored: Callable[[str, datetime], bool]) -> WatchOutcome:
    """One tick of the watch; updates `state` in place.

    `listing` fetches the exchange's symbols (None: do not call the exchange this tick);
    `stored(symbol, minute)` says whether that cell's snapshot was stored.
    """
    state.forget(set(state.accepted) - set(registered))
    messages: list[tuple[str, str]] = []
    events: list[AssetMaterialization | AssetCheckEvaluation] = []
    new = [s for s in registered if s not in state.accepted]
    recheck_due = state.rechecked_at is None or now - datetime.fromisoformat(state.rechecked_at) >= RECHECK_EVERY
    remove: dict[str, str] = {}
    changed = False
    if listing is not None and (new or recheck_due):
        try:
            listed = listing()
        except ExchangeError as exc:
            messages.append(("warning", f"symbols not checked against the exchange ({exc}); "
                             + (f"{', '.join(new)} wait(s) for the check" if new else "trying again next tick")))
        else:
            refused_new = refusals(listed, new)
            delisted = {s: f"{s} is no longer listed by the exchange" for s in state.accepted if s not in listed}
            halted = {s: reason for s, reason in refusals(listed, state.accepted).items() if s not in delisted}
            remove = {**refused_new, **delisted}
            accepted_now = [s for s in new if s not in refused_new]
            state.accept(accepted_now, now)
            state.forget(delisted)
            state.rechecked_at = now.isoformat()
            if accepted_now:
                messages.append(("info", f"accepted by the exchange check, collected from the next minute: "
                                 f"{', '.join(accepted_now)}"))
            for reason in remove.values():
                messages.append(("error", f"removed from the tracked symbols: {reason}; nothing is collected "
                                 "for it (its stored data stays)"))
            for reason in halted.values():
                messages.append(("warning", f"{reason}: kept, its books are still collected"))
            events.append(_check_evaluation(registered, remove, halted))
            changed = bool(new or remove or halted)
    for symbol, minute_key in list(state.awaiting_first.items()):
        if minute_key is None:
            continue
        minute = parse_minute(minute_key)
        if stored(symbol, minute):
            del state.awaiting_first[symbol]
            messages.append(("info", f"{symbol}: first minute {minute_key} stored"))
            changed = True
        elif now > minute_close(minute) + FIRST_MINUTE_GRACE:
            state.awaiting_first[symbol] = None
            messages.append(("warning", f"{symbol}: its first minute {minute_key} was not stored (the run's log "
                             "says why); waiting for the next one"))
            changed = True
    if changed:
        events.append(_registry_event(registered, state, remove))
    collect = [s for s in registered if s in state.accepted]
    return WatchOutcome(collect, remove, messages, events)


def _check_evaluation(registered: list[str], removed: Mapping[str, str],
                      halted: Mapping[str, str]) -> AssetCheckEvaluation:
    problems = {**removed, **halted}
    description = ("; ".join(problems.values()) + (" (removed)" if removed else "")) if problems else (
        f"all {len(registered)} registered symbols are listed and trading")
    return AssetCheckEvaluation(
        asset_key=TRACKED_SYMBOLS, check_name=SYMBOLS_ARE_LISTED, passed=not problems,
        severity=AssetCheckSeverity.ERROR if removed else AssetCheckSeverity.WARN, description=description,
        metadata={"checked": len(registered), "removed": MetadataValue.json(dict(removed)),
                  "not_trading": MetadataValue.json(dict(halted))})


TABLE_SCHEMA = TableSchema(columns=[
    TableColumn("symbol", "string"),
    TableColumn("status", "string", description="collecting, first minute pending, waiting for the check, "
                "or why the exchange refused it"),
    TableColumn("accepted_at", "string", description="when the exchange check accepted it (UTC)"),
    TableColumn("first_minute", "string", description="the first minute a run collected it for, until stored"),
])


def _status(symbol: str, state: WatchState) -> str:
    if symbol not in state.accepted:
        return "waiting for the exchange check"
    if symbol not in state.awaiting_first:
        return "collecting"
    return "first minute pending" if state.awaiting_first[symbol] else "accepted, from the next minute"


def _registry_event(registered: list[str], state: WatchState, removed: Mapping[str, str]) -> AssetMaterialization:
    """A new version of the registry: the sensor records it as a materialization of
    `tracked_symbols` (runless), so the asset's page shows the latest table and its history."""
    records = [TableRecord({"symbol": s, "status": f"refused: {removed[s]}" if s in removed else _status(s, state),
                            "accepted_at": state.accepted.get(s, "")[:19],
                            "first_minute": state.awaiting_first.get(s) or ""})
               for s in registered]
    collecting = sum(1 for s in registered if s in state.accepted and s not in removed)
    return AssetMaterialization(asset_key=TRACKED_SYMBOLS, metadata={
        "symbols": collecting, "refused": len(removed),
        "symbol_table": MetadataValue.table(records, schema=TABLE_SCHEMA)})


@asset_check(asset=TRACKED_SYMBOLS, name=SYMBOLS_ARE_LISTED,
             description="Every registered symbol is listed by Binance exchangeInfo and trading. "
             "`minute_sensor` evaluates it whenever it checks symbols (each new symbol, and hourly), and "
             "removes the ones the exchange does not list; run it here to check them all now (it "
             "removes nothing).")
def symbols_are_listed(context: AssetCheckExecutionContext, exchange: BinanceExchange) -> AssetCheckResult:
    registered = registered_symbols(context.instance)
    refused = refusals(exchange.get_client().exchange_info(), registered)
    return AssetCheckResult(
        passed=not refused, severity=AssetCheckSeverity.ERROR,
        description="; ".join(refused.values()) if refused else f"all {len(registered)} registered symbols "
        "are listed and trading",
        metadata={"checked": len(registered), "refused": MetadataValue.json(refused)})
