"""The MongoDB I/O manager, tested as Dagster tests its own database I/O managers: materialize
partition A, then B, then A again, and check A was replaced (not duplicated) and B untouched.
Runs against mongomock and against the embedded server as its own process."""

from datetime import timedelta

import pandas as pd
import pytest
from dagster import (
    AssetExecutionContext,
    BackfillPolicy,
    Config,
    DagsterInstance,
    asset,
    materialize,
)

from acts_pipeline.core.cells import cells_of
from acts_pipeline.orchestration.partitions import minute_range_tags, minute_symbol_partitions
from acts_pipeline.storage import MongoIOManager, MongoResource
from acts_pipeline_tests.dates import minute_key, recent_minute
from acts_pipeline_tests.fakes import MongomockResource

SYMBOLS = ["BTCUSDT", "ETHUSDT", "NKNUSDT"]
MINUTE_A = recent_minute(10, 0)
MINUTE_B = MINUTE_A + timedelta(minutes=1)


class Version(Config):
    version: int


@asset(partitions_def=minute_symbol_partitions, backfill_policy=BackfillPolicy.single_run(),
       metadata={"mongo_collection": "io_test"})
def versioned(context: AssetExecutionContext, config: Version) -> pd.DataFrame:
    cells = cells_of(context.partition_keys)
    return pd.DataFrame({"symbol": [c.symbol for c in cells], "minute": [c.minute for c in cells],
                         "version": config.version, "maybe": [float("nan")] * len(cells)})


@asset(partitions_def=minute_symbol_partitions, backfill_policy=BackfillPolicy.single_run(),
       metadata={"mongo_collection": "io_test_downstream"})
def downstream(versioned: pd.DataFrame) -> pd.DataFrame:
    return versioned.assign(version=versioned["version"] * 10)


@asset(partitions_def=minute_symbol_partitions)
def no_collection() -> pd.DataFrame:
    return pd.DataFrame({"symbol": [], "minute": []})


@pytest.fixture(params=["mongomock", "embedded_server"])
def mongo(request, mongo_db_name):
    if request.param == "mongomock":
        return MongomockResource(database=mongo_db_name)
    return MongoResource(uri=request.getfixturevalue("mongo_uri"), database=mongo_db_name)


@pytest.fixture
def instance():
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions("symbols", SYMBOLS)
        yield instance


def run(assets, minute, version, mongo, instance, symbols=SYMBOLS):
    result = materialize(
        assets, instance=instance, tags=minute_range_tags(minute, symbols),
        resources={"io_manager": MongoIOManager(mongo=mongo)},
        run_config={"ops": {"versioned": {"config": {"version": version}}}},
    )
    assert result.success
    return result


def stored(mongo, collection="io_test"):
    return list(mongo.get_store().collection(collection).find({}, {"_id": False}).sort([("minute", 1), ("symbol", 1)]))


def test_write_a_then_b_then_a_replaces_a_and_keeps_b(mongo, instance):
    run([versioned], MINUTE_A, 1, mongo, instance)
    run([versioned], MINUTE_B, 2, mongo, instance)
    run([versioned], MINUTE_A, 3, mongo, instance)

    docs = stored(mongo)
    assert len(docs) == 2 * len(SYMBOLS), "A was duplicated"
    by_minute = {}
    for d in docs:
        by_minute.setdefault(d["minute"].replace(tzinfo=None), set()).add(d["version"])
    assert by_minute == {MINUTE_A.replace(tzinfo=None): {3}, MINUTE_B.replace(tzinfo=None): {2}}
    assert all(d["maybe"] is None for d in docs), "NaN must be stored as null"
    indexes = mongo.get_store().collection("io_test").index_information()
    assert any(ix.get("unique") and [k for k, _ in ix["key"]] == ["symbol", "minute"] for ix in indexes.values())


def test_single_partition_run_and_partial_range(mongo, instance):
    result = materialize(
        [versioned], instance=instance, partition_key=minute_key(MINUTE_A + timedelta(minutes=5), "ETHUSDT"),
        resources={"io_manager": MongoIOManager(mongo=mongo)},
        run_config={"ops": {"versioned": {"config": {"version": 7}}}},
    )
    assert result.success
    docs = stored(mongo)
    assert [(d["symbol"], d["version"]) for d in docs] == [("ETHUSDT", 7)]
    mat = result.asset_materializations_for_node("versioned")[0]
    assert mat.metadata["documents_written"].value == 1


def test_range_is_loaded_back_for_downstream_assets(mongo, instance):
    run([versioned], MINUTE_A, 4, mongo, instance)
    run([versioned], MINUTE_B, 5, mongo, instance)
    # Load A and B in one range run of the downstream asset only (upstream read from MongoDB).
    result = materialize(
        [versioned, downstream], selection=[downstream], instance=instance,
        tags={"dagster/asset_partition_range_start": minute_key(MINUTE_A, "BTCUSDT"),
              "dagster/asset_partition_range_end": minute_key(MINUTE_B, "NKNUSDT")},
        resources={"io_manager": MongoIOManager(mongo=mongo)},
    )
    assert result.success
    docs = stored(mongo, "io_test_downstream")
    assert len(docs) == 6
    assert sorted({d["version"] for d in docs}) == [40, 50]


def test_asset_without_collection_metadata_is_refused_by_name(mongo, instance):
    result = materialize([no_collection], instance=instance, partition_key=minute_key(MINUTE_A, "BTCUSDT"),
                         resources={"io_manager": MongoIOManager(mongo=mongo)}, raise_on_error=False)
    assert not result.success
    message = str(result.all_events)
    assert "no_collection" in message and "mongo_collection" in message


def test_documents_outside_the_runs_partitions_are_refused(mongo, instance):
    @asset(partitions_def=minute_symbol_partitions, metadata={"mongo_collection": "io_test"}, name="stray")
    def stray() -> pd.DataFrame:
        return pd.DataFrame({"symbol": ["ETHUSDT"], "minute": [MINUTE_B]})

    result = materialize([stray], instance=instance, partition_key=minute_key(MINUTE_A, "BTCUSDT"),
                         resources={"io_manager": MongoIOManager(mongo=mongo)}, raise_on_error=False)
    assert not result.success
    assert stored(mongo) == []



@asset(partitions_def=minute_symbol_partitions, metadata={"mongo_collection": "io_test"})
def dicts() -> list[dict]:
    return [{"symbol": "BTCUSDT", "minute": MINUTE_A}]


@asset(partitions_def=minute_symbol_partitions, metadata={"mongo_collection": "io_test"})
def unannotated():
    return [{"symbol": "BTCUSDT", "minute": MINUTE_A}]


@pytest.mark.parametrize(("refused", "named"), [(dicts, "typing.List[dict]"), (unannotated, "<class 'list'>")])
def test_a_list_of_anything_but_snapshots_is_refused_naming_its_type(mongo, instance, refused, named):
    result = materialize([refused], instance=instance, partition_key=minute_key(MINUTE_A, "BTCUSDT"),
                         resources={"io_manager": MongoIOManager(mongo=mongo)}, raise_on_error=False)
    assert not result.success
    [failure] = [e.event_specific_data.error for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    message = str(failure)
    assert f"stores pandas.DataFrame and list[OrderBookSnapshot], not {named}" in message
    assert stored(mongo) == []
