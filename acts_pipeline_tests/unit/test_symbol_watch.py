"""The watch over registered symbols (issue 9): a symbol registered anywhere (the UI's *Add
partition* has no check) is checked against the exchange before any run collects it; a refused
one is removed and reported; an accepted one is confirmed when its first minute is stored."""

from datetime import UTC, datetime, timedelta

from dagster import AssetCheckEvaluation, AssetMaterialization

from acts_pipeline.core.errors import ExchangeServerError
from acts_pipeline.core.models import SymbolInfo
from acts_pipeline.orchestration.symbol_watch import FIRST_MINUTE_GRACE, RECHECK_EVERY, WatchState, watch

NOW = datetime(2026, 11, 30, 12, 0, 10, tzinfo=UTC)
LISTED = {s: SymbolInfo(s, "TRADING", s[:3], s[3:]) for s in ("BTCUSDT", "ETHUSDT", "SOLUSDT")}
LISTED["HALTUSDT"] = SymbolInfo("HALTUSDT", "BREAK", "HALT", "USDT")


def never_stored(symbol, minute):
    return False


def checks(outcome):
    return [e for e in outcome.asset_events if isinstance(e, AssetCheckEvaluation)]


def observations(outcome):
    return [e for e in outcome.asset_events if isinstance(e, AssetMaterialization)]


def test_a_symbol_added_outside_the_cli_is_collected_only_once_the_exchange_accepts_it():
    state = WatchState()
    state.accept(["BTCUSDT"], NOW)
    outcome = watch(["BTCUSDT", "SOLUSDT"], state, NOW, listing=None, stored=never_stored)
    assert outcome.collect == ["BTCUSDT"]  # the tick that requests the run does not call the exchange
    outcome = watch(["BTCUSDT", "SOLUSDT"], state, NOW, listing=lambda: LISTED, stored=never_stored)
    assert outcome.collect == ["BTCUSDT", "SOLUSDT"]
    assert outcome.remove == {}
    assert [c.passed for c in checks(outcome)] == [True]
    assert ("info", "accepted by the exchange check, collected from the next minute: SOLUSDT") in outcome.messages


def test_a_refused_symbol_is_removed_named_by_a_failing_check_and_never_collected():
    state = WatchState()
    state.accept(["BTCUSDT"], NOW)
    outcome = watch(["BTCUSDT", "NOPE", "HALTUSDT"], state, NOW, listing=lambda: LISTED, stored=never_stored)
    assert outcome.collect == ["BTCUSDT"]
    assert set(outcome.remove) == {"NOPE", "HALTUSDT"}
    [check] = checks(outcome)
    assert not check.passed
    assert "NOPE is not a Binance Spot symbol" in check.description
    assert "HALTUSDT is not trading (status BREAK)" in check.description
    assert any(level == "error" and "NOPE" in message for level, message in outcome.messages)
    [observation] = observations(outcome)
    rows = {r.data["symbol"]: r.data["status"] for r in observation.metadata["symbol_table"].value.records}
    assert rows["NOPE"].startswith("refused: NOPE is not a Binance Spot symbol")
    assert rows["BTCUSDT"] == "accepted, from the next minute"


def test_new_symbols_wait_while_the_exchange_cannot_be_asked():
    state = WatchState()
    state.accept(["BTCUSDT"], NOW)

    def down():
        raise ExchangeServerError("GET /api/v3/exchangeInfo: HTTP 503")

    outcome = watch(["BTCUSDT", "SOLUSDT"], state, NOW, listing=down, stored=never_stored)
    assert outcome.collect == ["BTCUSDT"] and outcome.remove == {}
    assert outcome.messages[0][0] == "warning" and "SOLUSDT" in outcome.messages[0][1]


def test_hourly_recheck_removes_a_delisted_symbol_and_keeps_a_halted_one():
    state = WatchState()
    state.accept(["BTCUSDT", "ETHUSDT", "HALTUSDT"], NOW - RECHECK_EVERY)
    state.rechecked_at = (NOW - RECHECK_EVERY + timedelta(seconds=1)).isoformat()
    listed = {s: i for s, i in LISTED.items() if s != "ETHUSDT"}
    assert watch(["BTCUSDT", "ETHUSDT", "HALTUSDT"], state, NOW, listing=lambda: listed,
                 stored=never_stored).remove == {}  # not due yet: nothing asked
    later = NOW + timedelta(seconds=2)
    outcome = watch(["BTCUSDT", "ETHUSDT", "HALTUSDT"], state, later, listing=lambda: listed, stored=never_stored)
    assert list(outcome.remove) == ["ETHUSDT"]
    assert outcome.collect == ["BTCUSDT", "HALTUSDT"]
    [check] = checks(outcome)
    assert not check.passed and "HALTUSDT is not trading" in check.description


def test_the_first_stored_minute_is_confirmed_and_a_missed_one_reported():
    state = WatchState()
    state.accept(["SOLUSDT"], NOW)
    minute = NOW.replace(second=0)
    state.requested(minute, ["SOLUSDT"])
    state.requested(minute + timedelta(minutes=1), ["SOLUSDT"])  # the first one is kept
    assert state.awaiting_first == {"SOLUSDT": "2026-11-30-12:00"}
    outcome = watch(["SOLUSDT"], state, NOW + FIRST_MINUTE_GRACE, listing=None,
                    stored=lambda s, m: (s, m) == ("SOLUSDT", minute))
    assert ("info", "SOLUSDT: first minute 2026-11-30-12:00 stored") in outcome.messages
    assert state.awaiting_first == {}
    assert len(observations(outcome)) == 1

    state.accept(["ETHUSDT"], NOW)
    state.requested(minute, ["ETHUSDT"])
    outcome = watch(["SOLUSDT", "ETHUSDT"], state, NOW + FIRST_MINUTE_GRACE + timedelta(minutes=1), listing=None,
                    stored=never_stored)
    assert any(level == "warning" and "ETHUSDT: its first minute 2026-11-30-12:00 was not stored" in message
               for level, message in outcome.messages)
    assert state.awaiting_first == {"ETHUSDT": None}  # the next run's minute is tracked


def test_the_state_survives_the_cursor_and_forgets_removed_symbols():
    state = WatchState()
    state.accept(["BTCUSDT", "ETHUSDT"], NOW)
    state.rechecked_at = NOW.isoformat()
    restored = WatchState.from_cursor(state.to_cursor())
    assert restored == state
    outcome = watch(["BTCUSDT"], restored, NOW, listing=None, stored=never_stored)
    assert outcome.collect == ["BTCUSDT"] and "ETHUSDT" not in restored.accepted
