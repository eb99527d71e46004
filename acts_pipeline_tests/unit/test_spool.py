"""The local spool (`storage.durable`): batches survive as files until MongoDB has them, oldest
first; an unreadable file is set aside instead of blocking every later write."""

from datetime import UTC, datetime

from acts_pipeline.storage.durable import Spool, flush_spool
from acts_pipeline_tests.fakes import MongomockResource

MINUTE = datetime(2026, 11, 26, 13, 54, tzinfo=UTC)


def store():
    store = MongomockResource(database="spool_test").get_store()
    store.collection("klines_1m").delete_many({})
    return store


def test_batches_are_replayed_oldest_first_and_each_is_reported_once_written(tmp_path):
    spool = Spool(tmp_path / "spool")
    spool.put("klines_1m", [{"symbol": "A", "minute": MINUTE, "v": 1}])
    spool.put("klines_1m", [{"symbol": "A", "minute": MINUTE, "v": 2}, {"symbol": "B", "minute": MINUTE, "v": 3}])
    assert spool.count() == 2
    target = store()
    seen = []
    assert flush_spool(target, spool, on_written=lambda batch: seen.append(len(batch.documents))) == 2
    assert seen == [1, 2] and spool.count() == 0
    # the later batch wins: replayed in order
    assert {d["symbol"]: d["v"] for d in target.collection("klines_1m").find()} == {"A": 2, "B": 3}


def test_an_unreadable_batch_is_set_aside_and_the_others_still_go(tmp_path, caplog):
    spool = Spool(tmp_path / "spool")
    bad = spool.put("klines_1m", [{"symbol": "A", "minute": MINUTE}])
    bad.write_text("{not json")
    spool.put("klines_1m", [{"symbol": "B", "minute": MINUTE}])
    target = store()
    assert flush_spool(target, spool) == 1
    assert spool.count() == 0  # nothing pending any more: writes are not held up by the bad file
    aside = bad.with_name(bad.name + ".unreadable")
    assert aside.read_text() == "{not json"
    assert "unreadable" in caplog.text and aside.name in caplog.text
    assert [d["symbol"] for d in target.collection("klines_1m").find()] == ["B"]
