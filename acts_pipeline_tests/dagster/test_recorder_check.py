"""`stream_recorder_is_healthy`: the stream recorder, seen from Dagster, through the status it
writes to MongoDB: missing, stopped, silent, some symbols out of sync, all well."""

from datetime import UTC, datetime, timedelta

import pytest
from dagster import AssetCheckSeverity, DagsterInstance, build_asset_check_context

from acts_pipeline.orchestration.book_source import BookSource
from acts_pipeline.orchestration.checks import stream_recorder_is_healthy
from acts_pipeline.core.cells import floor_minute
from acts_pipeline.storage.collections import ORDER_BOOK_SNAPSHOTS, RECORDER_NAME, RECORDER_STATUS
from acts_pipeline.storage.boundary_books import BoundaryBooks
from acts_pipeline_tests.fakes import MongomockResource, boundary_book

SYMBOLS = ["BTCUSDT", "ETHUSDT", "NKNUSDT"]


@pytest.fixture
def mongo(request):
    return MongomockResource(database=f"recorder_check_{request.node.name}")


def evaluate(mongo, source="stream"):
    """The check invoked directly, with its resource and an instance holding the symbols."""
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions("symbols", SYMBOLS)
        context = build_asset_check_context(instance=instance)
        return stream_recorder_is_healthy(context, book_source=BookSource(mongo=mongo, source=source))


def status(mongo, *, age=timedelta(seconds=2), state="running", out=()):
    symbols = {s: {"in_sync": s not in out, "reason": "a gap: resyncing" if s in out else None} for s in SYMBOLS}
    mongo.get_store().put_status(RECORDER_STATUS, RECORDER_NAME, {
        "state": state, "updated_at": datetime.now(UTC) - age, "symbols": symbols,
        "connections": [{"name": "ws-1", "state": "open", "streams": 3, "reconnects": 0, "last_message_age_s": 0.1}],
        "durable_after_close_s": {"p99": 0.2}})


def test_the_rest_design_has_no_recorder_to_check(mongo):
    evaluation = evaluate(mongo, source="rest")
    assert evaluation.passed and "REST design" in evaluation.description


def test_no_recorder_ever_reported(mongo):
    evaluation = evaluate(mongo)
    assert not evaluation.passed and evaluation.severity == AssetCheckSeverity.ERROR
    assert "acts-pipeline record" in evaluation.description


@pytest.mark.parametrize(("age", "state", "said"), [(timedelta(minutes=2), "running", "silent for 120 s"),
                                                   (timedelta(seconds=1), "stopped", "stopped")])
def test_a_silent_or_stopped_recorder_fails_the_check(mongo, age, state, said):
    status(mongo, age=age, state=state)
    evaluation = evaluate(mongo)
    assert not evaluation.passed and evaluation.severity == AssetCheckSeverity.ERROR
    assert said in evaluation.description


def test_symbols_out_of_sync_are_named_as_a_warning(mongo):
    status(mongo, out=("NKNUSDT",))
    evaluation = evaluate(mongo)
    assert not evaluation.passed and evaluation.severity == AssetCheckSeverity.WARN
    assert evaluation.description.startswith("1 of 3 symbols") and "NKNUSDT: a gap: resyncing" in evaluation.description


def test_all_in_sync_passes(mongo):
    status(mongo)
    evaluation = evaluate(mongo)
    assert evaluation.passed and evaluation.description.startswith("all 3 symbols in sync")
    assert evaluation.metadata["symbols_in_sync"].value == 3


def test_books_over_rest_for_symbols_reported_in_sync_are_a_warning(mongo):
    """The recorder says all is well, but no boundary book of two symbols was stored for the run's
    minute (an older recorder writing another layout, another database): the check must not stay
    green. A symbol whose stored decision says why it had no book (it was resyncing at the close)
    is not that."""
    status(mongo)
    minute = floor_minute(datetime.now(UTC)) - timedelta(minutes=1)  # the cells of a check run alone
    store = mongo.get_store()
    store.upsert(ORDER_BOOK_SNAPSHOTS, [{"symbol": s, "minute": minute, "source": source} for s, source in (
        ("BTCUSDT", "stream"), ("ETHUSDT", "rest"), ("NKNUSDT", "rest"))])
    BoundaryBooks(store).write([boundary_book("BTCUSDT", minute),
                                boundary_book("ETHUSDT", minute, usable=False, reason="resyncing")])
    evaluation = evaluate(mongo)
    assert not evaluation.passed and evaluation.severity == AssetCheckSeverity.WARN
    assert evaluation.description.startswith("1 of 3 symbols have no boundary book stored for this run")
    assert "(NKNUSDT)" in evaluation.description
    assert evaluation.metadata["in_sync_without_boundary_book"].value == 1
