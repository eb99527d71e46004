"""The minute x symbol partitions and the key <-> cell helpers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from dagster import MultiPartitionKey, TimeWindowPartitionsDefinition

from acts_pipeline.partitions import (
    MINUTE_FORMAT,
    PARTITIONS_START,
    RANGE_END_TAG,
    RANGE_START_TAG,
    Cell,
    cell_of,
    cells_of,
    floor_minute,
    format_minute,
    minute_close,
    minute_partitions,
    minute_range_tags,
    minute_symbol_partitions,
    parse_minute,
)

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
    assert isinstance(key, MultiPartitionKey)
    assert key.keys_by_dimension == {"minute": "2026-11-26-13:54", "symbol": "NKNUSDT"}
    assert str(cell) == str(key) == "2026-11-26-13:54|NKNUSDT"
    assert cell_of(key) == cell_of(str(key)) == cell


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
    assert RANGE_START_TAG == "dagster/asset_partition_range_start"
    assert RANGE_END_TAG == "dagster/asset_partition_range_end"
    one = minute_range_tags(MINUTE, ["BTCUSDT"])
    assert one[RANGE_START_TAG] == one[RANGE_END_TAG] == "2026-11-26-13:54|BTCUSDT"


def test_partitions_definitions_are_the_documented_ones():
    assert [d.name for d in minute_symbol_partitions.partitions_defs] == ["minute", "symbol"]
    assert minute_partitions.fmt == MINUTE_FORMAT == "%Y-%m-%d-%H:%M"
    assert minute_partitions.timezone == "UTC"
    assert minute_partitions.get_first_partition_key() == PARTITIONS_START
    assert minute_partitions.end_offset == 1


def test_the_current_minute_is_a_valid_key():
    before = floor_minute(datetime.now(UTC))
    last = minute_partitions.get_last_partition_key()
    after = floor_minute(datetime.now(UTC))
    # With end_offset=1 the minute in progress is the last key (not the one that closed last).
    assert last in {format_minute(before), format_minute(after)}
    assert minute_partitions.has_partition_key(format_minute(after))

    # What end_offset=1 buys: without it the last key is the previous, closed minute.
    closed_only = TimeWindowPartitionsDefinition(
        cron_schedule="* * * * *", start=PARTITIONS_START, fmt=MINUTE_FORMAT, timezone="UTC"
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
