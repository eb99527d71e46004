"""`symbols_are_listed`, run from the UI on `tracked_symbols`: checks every registered symbol
against the exchange now, names the refused ones, and removes nothing."""

from dagster import AssetSelection, DagsterInstance, Definitions, define_asset_job

from acts_pipeline.orchestration.symbol_watch import symbols_are_listed, tracked_symbols
from acts_pipeline.orchestration.symbols import registered_symbols
from acts_pipeline_tests.fakes import FakeClient, fake_exchange


def run_check(instance):
    job = define_asset_job("check_symbols", selection=AssetSelection.checks(symbols_are_listed))
    defs = Definitions(assets=[tracked_symbols], asset_checks=[symbols_are_listed], jobs=[job],
                       resources={"exchange": fake_exchange(FakeClient(now=None))})
    result = defs.resolve_job_def("check_symbols").execute_in_process(instance=instance)
    assert result.success
    [evaluation] = [e.event_specific_data for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"]
    return evaluation


def test_the_check_names_every_refused_symbol_and_removes_nothing():
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions("symbols", ["BTCUSDT", "NOPE", "HALTED"])
        evaluation = run_check(instance)
        assert not evaluation.passed
        assert evaluation.description == "NOPE is not a Binance Spot symbol; HALTED is not trading (status BREAK)"
        assert registered_symbols(instance) == ["BTCUSDT", "NOPE", "HALTED"]


def test_the_check_passes_when_every_symbol_trades():
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions("symbols", ["BTCUSDT", "ETHUSDT"])
        assert run_check(instance).passed
