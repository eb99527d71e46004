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


def test_a_batch_round_trips_exactly_as_bson(tmp_path):
    spool = Spool(tmp_path / "spool")
    documents = [{"symbol": "A", "minute": MINUTE, "bids": b"\x00\x01binary", "bias": -0.25, "n": 3,
                  "none": None, "nested": {"levels": [[1.5, 2.0]]}}]
    path = spool.put("order_book_snapshots", documents)
    assert path.suffix == ".bson" and spool.count() == 1
    (batch,) = spool.pending()
    assert batch.collection == "order_book_snapshots"
    assert batch.documents == documents  # datetimes come back tz-aware UTC, ints stay ints
    assert batch.documents[0]["minute"].tzinfo is not None


def test_a_batch_spooled_by_an_earlier_version_as_json_is_still_written(tmp_path):
    from bson import json_util
    from bson.json_util import CANONICAL_JSON_OPTIONS
    folder = tmp_path / "spool"
    folder.mkdir()
    legacy = folder / "00000000000000000001-abcdef12-klines_1m.json"
    legacy.write_text(json_util.dumps({"collection": "klines_1m", "documents": [{"symbol": "OLD", "minute": MINUTE}]},
                                      json_options=CANONICAL_JSON_OPTIONS))
    spool = Spool(folder)
    spool.put("klines_1m", [{"symbol": "NEW", "minute": MINUTE}])
    assert spool.count() == 2
    target = store()
    order = []
    assert flush_spool(target, spool, on_written=lambda batch: order.append(batch.documents[0]["symbol"])) == 2
    assert order == ["OLD", "NEW"] and spool.count() == 0
    assert target.collection("klines_1m").find_one({"symbol": "OLD"})["minute"].replace(tzinfo=UTC) == MINUTE


def test_a_truncated_batch_is_set_aside_not_half_written(tmp_path, caplog):
    spool = Spool(tmp_path / "spool")
    path = spool.put("klines_1m", [{"symbol": "A", "minute": MINUTE}, {"symbol": "B", "minute": MINUTE}])
    data = path.read_bytes()
    # a whole document lost from the end: each remaining document still decodes
    last = bson_length(data, 2)
    path.write_bytes(data[:last])
    target = store()
    assert flush_spool(target, spool) == 0
    assert list(target.collection("klines_1m").find()) == []
    assert "truncated batch" in caplog.text and path.with_name(path.name + ".unreadable").exists()


def test_flushing_skips_the_named_batch_without_reading_it(tmp_path, monkeypatch):
    spool = Spool(tmp_path / "spool")
    own = spool.put("klines_1m", [{"symbol": "A", "minute": MINUTE}])
    read = []
    import acts_pipeline.storage.durable as durable
    real = durable._decode_batch
    monkeypatch.setattr(durable, "_decode_batch", lambda path: read.append(path) or real(path))
    assert flush_spool(store(), spool, skip=own) == 0
    assert read == [] and spool.count() == 1


def bson_length(data: bytes, documents: int) -> int:
    """The length of the first `documents` BSON documents of `data`."""
    offset = 0
    for _ in range(documents):
        offset += int.from_bytes(data[offset:offset + 4], "little")
    return offset
