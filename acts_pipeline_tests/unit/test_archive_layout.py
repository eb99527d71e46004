"""The archive's layout and verification without a database: documents become the documented
columns, paths are hive-style, a file that changed after its manifest (corrupted, truncated,
replaced) does not verify; the archive and retention settings; `read`'s refusals of bad
arguments."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from acts_pipeline import read, settings
from acts_pipeline.core.errors import ConfigurationError, ReadRequestError
from acts_pipeline.storage.archive import (
    SNAPSHOT_SCHEMA,
    Archive,
    ArchivedFile,
    DayManifest,
    documents_table,
    level_pairs,
    retention_cutoff,
    snapshot_table,
)

MINUTE = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def snapshot_document(symbol="BTCUSDT", minute=MINUTE, levels=3, **extra):
    return {"symbol": symbol, "minute": minute, "captured_at": minute + timedelta(seconds=60.2),
            "requested_at": minute + timedelta(seconds=60.1), "last_update_id": 7, "depth_limit": levels,
            "bids": [[100.0 - i, 1.0 + i] for i in range(levels)], "asks": [[101.0 + i, 2.0 + i] for i in range(levels)],
            **extra}


def test_paths_are_hive_style_one_file_per_collection_and_day():
    archive = Archive("memory://acts-layout")
    assert Archive.relative_path("order_book_snapshots", date(2026, 11, 30)) == \
        "order_book_snapshots/date=2026-11-30/part-0.parquet"
    assert archive.url("klines_1m/date=2026-11-30/part-0.parquet") == \
        "memory://acts-layout/klines_1m/date=2026-11-30/part-0.parquet"


def test_snapshot_levels_become_four_list_columns_best_first_and_come_back_as_pairs():
    documents = [snapshot_document(source="stream", event_time=MINUTE + timedelta(seconds=59)),
                 snapshot_document("ETHUSDT", levels=0)]  # a legacy REST book: no source; empty sides
    table = snapshot_table(documents)
    assert table.schema == SNAPSHOT_SCHEMA
    row = table.to_pylist()[0]
    assert row["bid_prices"] == [100.0, 99.0, 98.0] and row["bid_qtys"] == [1.0, 2.0, 3.0]
    assert row["ask_prices"] == [101.0, 102.0, 103.0]
    assert row["minute"] == MINUTE and row["source"] == "stream"
    legacy = table.to_pylist()[1]
    assert legacy["source"] == "rest" and legacy["event_time"] is None and legacy["bid_prices"] == []
    pairs = level_pairs(row["bid_prices"], row["bid_qtys"])
    assert pairs.shape == (3, 2) and np.array_equal(pairs, np.array(documents[0]["bids"]))
    assert level_pairs(None, None).shape == (0, 2)


def test_flat_documents_keep_every_field_with_nulls_and_ms_utc_times():
    documents = [{"symbol": "BTCUSDT", "minute": MINUTE, "mid_price": 100.5, "bias_5": None, "bid_levels": 3,
                  "crossed": False},
                 {"symbol": "BTCUSDT", "minute": MINUTE + timedelta(minutes=1), "mid_price": None, "bias_5": None,
                  "bid_levels": 0, "crossed": False, "late_field": 1.5}]
    table = documents_table(documents)
    assert table.column_names[:2] == ["symbol", "minute"] and "late_field" in table.column_names
    assert table.schema.field("minute").type == pa.timestamp("ms", tz="UTC")
    assert table.schema.field("bias_5").type == pa.float64()  # only ever null: a float that could not be computed
    assert table.schema.field("bid_levels").type == pa.int64()
    assert table.column("mid_price").to_pylist() == [100.5, None]


def write_file(archive: Archive, relative: str, rows: int = 5) -> ArchivedFile:
    table = snapshot_table([snapshot_document(minute=MINUTE + timedelta(minutes=m)) for m in range(rows)])
    archive.fs.makedirs(archive.full_path(relative).rsplit("/", 1)[0], exist_ok=True)
    with archive.fs.open(archive.full_path(relative), "wb") as f:
        pq.write_table(table, f, compression="zstd")
    return ArchivedFile("order_book_snapshots", "2026-11-30", relative, rows, archive.fs.size(archive.full_path(relative)),
                        archive.sha256(relative), symbols=("BTCUSDT",))


@pytest.fixture
def archive(tmp_path):
    return Archive(str(tmp_path / "archive"))


def test_an_intact_file_verifies(archive):
    entry = write_file(archive, Archive.relative_path("order_book_snapshots", date(2026, 11, 30)))
    assert archive.verify(entry) == []
    assert len(archive.keys(entry.path)) == 5


def test_a_truncated_file_does_not_verify(archive):
    entry = write_file(archive, Archive.relative_path("order_book_snapshots", date(2026, 11, 30)))
    path = archive.full_path(entry.path)
    data = open(path, "rb").read()
    open(path, "wb").write(data[: len(data) // 2])
    problems = archive.verify(entry)
    assert any("bytes" in p for p in problems) and any("sha256" in p for p in problems)
    assert any("not a readable Parquet file" in p for p in problems)


def test_a_corrupted_byte_of_the_same_size_does_not_verify(archive):
    entry = write_file(archive, Archive.relative_path("order_book_snapshots", date(2026, 11, 30)))
    path = archive.full_path(entry.path)
    data = bytearray(open(path, "rb").read())
    data[len(data) // 3] ^= 0xFF
    open(path, "wb").write(bytes(data))
    problems = archive.verify(entry)
    assert len(problems) >= 1 and "sha256" in problems[0]


def test_a_replaced_file_with_other_rows_and_a_missing_file_do_not_verify(archive):
    relative = Archive.relative_path("order_book_snapshots", date(2026, 11, 30))
    entry = write_file(archive, relative, rows=5)
    write_file(archive, relative, rows=4)
    assert any("holds 4 rows, the manifest 5" in p for p in archive.verify(entry))
    archive.fs.rm(archive.full_path(relative))
    assert archive.verify(entry) == [f"{archive.url(relative)} is missing"]


def test_a_manifest_round_trips_and_lists_its_days(archive):
    entry = write_file(archive, Archive.relative_path("order_book_snapshots", date(2026, 11, 30)))
    archive._record(date(2026, 11, 30), [entry])
    archive._record(date(2026, 11, 29), [ArchivedFile("klines_1m", "2026-11-29", None, 0, 0, None, status="empty")])
    assert archive.manifest_days() == [date(2026, 11, 29), date(2026, 11, 30)]
    manifest = archive.manifest("2026-11-30")
    assert manifest.files["order_book_snapshots"] == entry
    assert DayManifest.from_json(manifest.to_json()) == manifest
    text = archive.fs.cat(f"{archive.path}/_manifests/date=2026-11-30.json").decode()
    assert json.loads(text)["layout_version"] == 1
    # nothing but the data files and the manifests: no temporary file is left behind
    assert sorted(p.rsplit("/", 1)[-1] for p in archive.fs.find(archive.path)) == [
        "date=2026-11-29.json", "date=2026-11-30.json", "part-0.parquet"]


def test_retention_keeps_whole_closed_days_before_today():
    assert retention_cutoff(date(2026, 12, 31), 30) == date(2026, 12, 1)


# ---- settings --------------------------------------------------------------------------------------


def test_archive_dir_defaults_inside_the_project_and_takes_folders_and_fsspec_urls(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert settings.archive_dir({}) == str(tmp_path / ".acts" / "archive")
    assert settings.archive_dir({"ACTS_ARCHIVE_DIR": " s3://bucket/prefix/ "}) == "s3://bucket/prefix"
    assert settings.archive_dir({"ACTS_ARCHIVE_DIR": "memory://acts"}) == "memory://acts"
    assert settings.archive_dir({"ACTS_ARCHIVE_DIR": "data/archive"}) == str(tmp_path / "data" / "archive")
    with pytest.raises(ConfigurationError, match="ACTS_ARCHIVE_DIR"):
        settings.archive_dir({"ACTS_ARCHIVE_DIR": "s3://"})


def test_retention_days_defaults_and_the_one_spelling_of_forever():
    assert settings.snapshot_retention_days({}) == 30
    assert settings.features_retention_days({}) is None and settings.klines_retention_days({}) is None
    assert settings.snapshot_retention_days({"ACTS_SNAPSHOT_RETENTION_DAYS": "forever"}) is None
    assert settings.klines_retention_days({"ACTS_KLINES_RETENTION_DAYS": " 400 "}) == 400
    for bad in ("0", "never", "-3", "1.5", "inf"):
        with pytest.raises(ConfigurationError, match="ACTS_FEATURES_RETENTION_DAYS.*forever"):
            settings.features_retention_days({"ACTS_FEATURES_RETENTION_DAYS": bad})
    with pytest.raises(ConfigurationError, match="ACTS_SNAPSHOT_RETENTION_DAYS"):
        settings.check_environment({"ACTS_SNAPSHOT_RETENTION_DAYS": "keep"})


# ---- read's arguments ------------------------------------------------------------------------------


@pytest.mark.parametrize(("start", "end", "message"), [
    (datetime(2026, 11, 30, 12), MINUTE, "start 2026-11-30T12:00:00 has no timezone"),
    (MINUTE, "2026-11-30T13:00", "end 2026-11-30T13:00:00 has no timezone"),
    ("yesterday", MINUTE, "start 'yesterday' is not a time"),
    ("2026-13-01", MINUTE, "start '2026-13-01' is not a date"),
    (MINUTE, MINUTE - timedelta(minutes=1), "start 2026-11-30T12:00:00\\+00:00 is after end"),
    (MINUTE, 12, "end must be a datetime"),
])
def test_read_refuses_a_bad_range_naming_it(start, end, message, tmp_path):
    with pytest.raises(ReadRequestError, match=message):
        read.features("BTCUSDT", start, end, mongo_uri="", archive_dir=str(tmp_path))


def test_read_moments_accept_aware_times_iso_strings_with_offsets_and_utc_days():
    assert read.parse_moment("2026-11-30", "start") == datetime(2026, 11, 30, tzinfo=UTC)
    assert read.parse_moment(date(2026, 11, 30), "start") == datetime(2026, 11, 30, tzinfo=UTC)
    assert read.parse_moment("2026-11-30T13:00+01:00", "end") == MINUTE
    assert read.parse_moment("2026-11-30T12:00Z", "end") == MINUTE


def test_read_refuses_malformed_symbols_and_symbols_it_never_stored(tmp_path):
    assert issubclass(ReadRequestError, ValueError)
    with pytest.raises(ReadRequestError, match="malformed symbols: 'BTC-USDT'"):
        read.klines(["BTC-USDT"], MINUTE, MINUTE, mongo_uri="", archive_dir=str(tmp_path))
    with pytest.raises(ReadRequestError, match="no symbols given"):
        read.klines([], MINUTE, MINUTE, mongo_uri="", archive_dir=str(tmp_path))
    with pytest.raises(ReadRequestError, match="unknown symbols NOPEUSDT: not in MongoDB .* never archived"):
        read.klines("nopeusdt", MINUTE, MINUTE, mongo_uri="", archive_dir=str(tmp_path))
