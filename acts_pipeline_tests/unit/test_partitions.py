"""The minute x symbol partitions and the key <-> cell helpers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from dagster import DagsterInstance, MultiPartitionKey, TimeWindowPartitionsDefinition
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from acts_pipeline.orchestration import partitions
from acts_pipeline.core.cells import MINUTE_FORMAT, Cell, cell_of, cells_of, floor_minute, format_minute, minute_close, parse_minute
from acts_pipeline.orchestration.partitions import (
    HISTORY_START, MAX_PARTITION_KEYS, RANGE_END_TAG, RANGE_START_TAG, live_minute_symbol_partitions, minute_partitions,
    minute_range_tags, minute_symbol_partitions, minute_window_start, most_live_cells, window_start, with_partitions)
from acts_pipeline_tests.dates import minute_key, recent_minute

MINUTE = datetime(2026, 11, 26, 13, 54, tzinfo=UTC)


def test_cell_of_a_string_key():
    cell = cell_of("2026-11-26-13:54|BTCUSDT")
    assert cell == Cell(MINUTE, "BTCUSDT")
    assert cell.minute.tzinfo is UTC


def test_cell_of_a_multi_partition_key():
    key = MultiPartitionKey({"symbol": "ETHUSDT", "minute": "2026-11-26-13:54"})
    assert str(key) == "2026-11-26-13:54|ETHUSDT"  # dimensions sorted by name
    assert cell_of(key) == Cell(MINUTE, "ETHUSDT")


def test_cell_round_trips_through_its_partition_key():
    cell = Cell(MINUTE, "NKNUSDT")
    key = cell.partition_key
    assert key == str(cell) == "2026-11-26-13:54|NKNUSDT"
    # the key Dagster's own multi-partition key of the cell reads as
    dagster_key = minute_symbol_partitions.get_partition_key_from_str(key)
    assert dagster_key.keys_by_dimension == {"minute": "2026-11-26-13:54", "symbol": "NKNUSDT"}
    assert cell_of(dagster_key) == cell_of(key) == cell


@pytest.mark.parametrize("key", ["2026-11-26-13:54", "2026-11-26-13:54|", "|BTCUSDT", ""])
def test_cell_of_refuses_a_key_without_both_parts(key):
    with pytest.raises(ValueError):
        cell_of(key)


def test_cell_of_refuses_a_bad_minute():
    with pytest.raises(ValueError):
        cell_of("2026-11-26 13:54|BTCUSDT")


def test_cells_of_sorts_by_minute_then_symbol_and_drops_repeats():
    keys = [
        "2026-11-26-13:55|BTCUSDT",
        MultiPartitionKey({"minute": "2026-11-26-13:54", "symbol": "ETHUSDT"}),
        "2026-11-26-13:54|BTCUSDT",
        "2026-11-26-13:54|ETHUSDT",  # the same cell as the MultiPartitionKey above
        "2026-11-26-12:59|ZECUSDT",
    ]
    assert cells_of(keys) == [
        Cell(datetime(2026, 11, 26, 12, 59, tzinfo=UTC), "ZECUSDT"),
        Cell(MINUTE, "BTCUSDT"),
        Cell(MINUTE, "ETHUSDT"),
        Cell(MINUTE + timedelta(minutes=1), "BTCUSDT"),
    ]
    assert cells_of([]) == []


def test_minute_helpers():
    assert parse_minute("2026-11-26-13:54") == MINUTE
    assert format_minute(MINUTE) == "2026-11-26-13:54"
    # Another timezone is the same instant, keyed in UTC.
    paris = MINUTE.astimezone(timezone(timedelta(hours=1)))
    assert format_minute(paris) == "2026-11-26-13:54"
    assert floor_minute(paris.replace(second=59, microsecond=999_999)) == MINUTE
    assert floor_minute(MINUTE + timedelta(seconds=59.9)) == MINUTE
    assert floor_minute(MINUTE).tzinfo == UTC
    assert minute_close(MINUTE) == MINUTE + timedelta(seconds=60)


def test_minute_range_tags_cover_every_symbol_in_registration_order():
    tags = minute_range_tags(MINUTE, ["ETHUSDT", "BTCUSDT", "NKNUSDT"])  # not alphabetical
    assert tags == {
        RANGE_START_TAG: "2026-11-26-13:54|ETHUSDT",
        RANGE_END_TAG: "2026-11-26-13:54|NKNUSDT",
    }
    # The tags Dagster reads a run's partition range from.
    assert (RANGE_START_TAG, RANGE_END_TAG) == (ASSET_PARTITION_RANGE_START_TAG, ASSET_PARTITION_RANGE_END_TAG)
    one = minute_range_tags(MINUTE, ["BTCUSDT"])
    assert one[RANGE_START_TAG] == one[RANGE_END_TAG] == "2026-11-26-13:54|BTCUSDT"


def test_partitions_definitions_are_the_documented_ones():
    assert [d.name for d in minute_symbol_partitions.partitions_defs] == ["minute", "symbol"]
    # A key is one UTC minute, spelled as the README shows it, and the next key is the next minute.
    minute = recent_minute(13, 54)
    key = f"{minute:%Y-%m-%d}-13:54"
    window = minute_partitions.time_window_for_partition_key(key)
    assert (window.start, window.end) == (minute, minute + timedelta(minutes=1))
    assert window.start.utcoffset() == timedelta(0)
    assert minute_partitions.get_next_partition_key(key) == f"{minute:%Y-%m-%d}-13:55"


# ---- the rolling window ----------------------------------------------------------------------


def test_window_start_is_the_start_of_the_hour_less_the_window():
    assert window_start(datetime(2026, 11, 26, 13, 54, 12, 345, tzinfo=UTC), 6) == datetime(2026, 11, 26, 7, tzinfo=UTC)
    assert window_start(datetime(2026, 11, 26, 13, tzinfo=UTC), 1) == datetime(2026, 11, 26, 12, tzinfo=UTC)  # on the hour
    assert window_start(datetime(2026, 11, 26, 13, 59, 59, 999_999, tzinfo=UTC), 1) == datetime(2026, 11, 26, 12, tzinfo=UTC)
    assert window_start(datetime(2026, 11, 26, 3, 10, tzinfo=UTC), 6) == datetime(2026, 11, 25, 21, tzinfo=UTC)  # across midnight
    assert window_start(datetime(2026, 11, 26, 8, 0, tzinfo=UTC), 2160) == datetime(2026, 8, 28, 8, tzinfo=UTC)
    assert window_start(datetime(2026, 11, 26, 8, 0, tzinfo=UTC), 3).tzinfo is UTC


def test_window_start_takes_the_utc_hour_of_an_aware_datetime_in_another_timezone():
    # 00:30 on the 27th in UTC+01:00 is 23:30 on the 26th in UTC.
    paris = datetime(2026, 11, 27, 0, 30, tzinfo=timezone(timedelta(hours=1)))
    assert window_start(paris, 1) == datetime(2026, 11, 26, 22, tzinfo=UTC)
    # India is 5:30 ahead: 06:15 there is 00:45 UTC, whose hour starts at 00:00 UTC.
    india = datetime(2026, 11, 27, 6, 15, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    assert window_start(india, 6) == datetime(2026, 11, 26, 18, tzinfo=UTC)
    assert window_start(india, 6).tzinfo is UTC


def test_the_partitions_in_code_take_every_minute_since_the_history_start_and_read_nothing(monkeypatch):
    assert minute_window_start(minute_symbol_partitions) == datetime(2025, 1, 1, tzinfo=UTC) == datetime.fromisoformat(
        HISTORY_START).replace(tzinfo=UTC)
    assert minute_partitions.has_partition_key("2025-01-01-00:00")
    assert not minute_partitions.has_partition_key("2024-12-31-23:59")
    # The minutes the tests take theirs from (acts_pipeline_tests/dates.py) are inside.
    assert minute_partitions.has_partition_key(minute_key(recent_minute(0, 0)))
    assert minute_partitions.has_partition_key(minute_key(recent_minute(23, 59)))
    # Nothing in the module reads the environment: the window is applied by definitions.py.
    source = open(partitions.__file__).read()
    assert "settings" not in source and "environ" not in source


@pytest.mark.parametrize("hours", [1, 2, 48])
def test_the_live_window_is_the_hours_before_the_hour_of_the_load(hours):
    now = datetime(2026, 11, 26, 13, 54, 12, tzinfo=UTC)
    live = live_minute_symbol_partitions(hours, now)
    minutes = live.get_partitions_def_for_dimension("minute")
    start = datetime(2026, 11, 26, 13, tzinfo=UTC) - timedelta(hours=hours)
    assert minute_window_start(live) == start
    assert minutes.get_first_partition_key() == format_minute(start)
    assert minutes.has_partition_key(format_minute(start))
    assert not minutes.has_partition_key(format_minute(start - timedelta(minutes=1)))
    assert live.get_partitions_def_for_dimension("symbol").name == "symbols"


def test_the_default_live_window_stays_within_dagsters_guidance_at_500_symbols():
    from acts_pipeline.settings import DEFAULT_PARTITION_WINDOW_HOURS

    assert most_live_cells(DEFAULT_PARTITION_WINDOW_HOURS, 500) == 121 * 500 <= MAX_PARTITION_KEYS
    assert most_live_cells(3, 500) > MAX_PARTITION_KEYS


def test_with_partitions_changes_only_the_partitions():
    from acts_pipeline.orchestration.assets import order_book_snapshot

    live = live_minute_symbol_partitions(2, datetime(2026, 11, 26, 13, 54, tzinfo=UTC))
    narrowed = with_partitions(order_book_snapshot, live)
    assert narrowed.key == order_book_snapshot.key and narrowed.partitions_def is live
    assert narrowed.backfill_policy == order_book_snapshot.backfill_policy
    assert order_book_snapshot.partitions_def is minute_symbol_partitions  # the original is untouched


def test_the_code_location_narrows_the_minute_assets_and_their_checks_to_the_live_window(monkeypatch):
    monkeypatch.setenv("ACTS_PARTITION_WINDOW_HOURS", "3")
    from acts_pipeline.definitions import defs

    before = datetime.now(UTC)
    # In an instance's context, as Dagster loads a code location: Dagster keeps the current
    # instance's definitions-state storage in a context variable, and an earlier test's instance,
    # gone since, would otherwise be asked for it ("undefined DagsterInstance weakref").
    with DagsterInstance.ephemeral():
        repository = defs().get_repository_def()
    after = datetime.now(UTC)
    starts = {window_start(moment, 3) for moment in (before, after)}
    for key, assets_def in repository.assets_defs_by_key.items():
        if key.path[0] in ("order_book_snapshot", "order_book_features", "klines_1m"):
            assert minute_window_start(assets_def.partitions_def) in starts, key
    for check_key, checks_def in repository.asset_checks_defs_by_key.items():
        partitions_def = checks_def.get_spec_for_check_key(check_key).partitions_def
        if partitions_def is not None:
            assert minute_window_start(partitions_def) in starts, check_key


def test_the_current_minute_is_a_valid_key():
    before = floor_minute(datetime.now(UTC))
    last = minute_partitions.get_last_partition_key()
    after = floor_minute(datetime.now(UTC))
    # With end_offset=1 the minute in progress is the last key (not the one that closed last).
    assert last in {format_minute(before), format_minute(after)}
    assert minute_partitions.has_partition_key(format_minute(after))

    # What end_offset=1 buys: without it the last key is the previous, closed minute.
    closed_only = TimeWindowPartitionsDefinition(
        cron_schedule="* * * * *", start=HISTORY_START + "-00:00", fmt=MINUTE_FORMAT, timezone="UTC"
    )
    before = floor_minute(datetime.now(UTC))
    last_closed = closed_only.get_last_partition_key()
    after = floor_minute(datetime.now(UTC))
    one_minute = timedelta(minutes=1)
    assert last_closed in {format_minute(before - one_minute), format_minute(after - one_minute)}


def test_the_next_minute_is_not_a_key_yet():
    last = parse_minute(minute_partitions.get_last_partition_key())
    assert last <= floor_minute(datetime.now(UTC))
    assert not minute_partitions.has_partition_key(format_minute(last + timedelta(minutes=2)))
