"""The minute x symbol partitions of the minute assets, and the run tags of a range run.

A partition is a cell (`acts_pipeline.core.cells`); its key reads `2026-11-26-13:54|BTCUSDT`
(Dagster orders dimensions by name: `minute`, then `symbol`).

Two forms of the same partitions:

- As defined in code (`minute_symbol_partitions`): every minute since `HISTORY_START`. In process
  (`materialize()`, tests, scripts) any minute is a key. Nothing is read at import: no setting, no
  clock.
- In the code location (`live_minute_symbol_partitions`, applied by `definitions.py` when Dagster
  loads it): the live hours only, from `ACTS_PARTITION_WINDOW_HOURS` (default 1) whole hours before
  the hour of the load to the minute in progress. The UI's partition pages cost time in proportion
  to the cells they show, and Dagster's guidance is at most 100,000 keys per asset: 1 hour is at
  most 121 minutes, 60,500 cells at 500 symbols. Older data is seen and backfilled through the
  history assets (`history_partitions.py`), and klines still missing there are fetched by
  `klines_history_catch_up_sensor`.

Why the live window is still moved by a reload of the code location (hourly, `acts-pipeline dev`
does it; `acts-pipeline reload-code`), and not by minute keys added and deleted at run time: a
dynamic minute dimension changes the partitions definition's identity with every key added
(`DynamicPartitionsDefinition.get_serializable_unique_identifier` is derived from its keys), and
Dagster keys each asset's partition status cache by that identity, so every asset page would
rebuild the status of all its cells once a minute. A time-window dimension's identity changes only
when its start moves: once an hour, after which the reload warms the caches before anyone asks.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dagster import (
    AssetsDefinition,
    DynamicPartitionsDefinition,
    MultiPartitionsDefinition,
    PartitionsDefinition,
    TimeWindowPartitionsDefinition,
)

from acts_pipeline.core.cells import MINUTE_FORMAT, format_minute

SYMBOLS_PARTITIONS_NAME = "symbols"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
#: The first day of the platform's history: the minute partitions as defined in code and the
#: history assets' days and months start here.
HISTORY_START = "2025-01-01"
#: Dagster's guidance for one asset's partitions.
MAX_PARTITION_KEYS = 100_000


def window_start(now: datetime, hours: int) -> datetime:
    """The first minute of the live window: the start of `now`'s hour (UTC), less `hours` hours."""
    return now.astimezone(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=hours)


def _minutes_from(start: datetime) -> TimeWindowPartitionsDefinition:
    return TimeWindowPartitionsDefinition(
        cron_schedule="* * * * *",
        start=format_minute(start),
        fmt=MINUTE_FORMAT,
        timezone="UTC",
        # The minute in progress is a valid key, so its run can be requested before it closes and
        # the UI and `dagster asset materialize` accept it.
        end_offset=1,
    )


symbol_partitions = DynamicPartitionsDefinition(name=SYMBOLS_PARTITIONS_NAME)
minute_partitions = _minutes_from(datetime.fromisoformat(HISTORY_START).replace(tzinfo=UTC))
minute_symbol_partitions = MultiPartitionsDefinition({"minute": minute_partitions, "symbol": symbol_partitions})


def live_minute_symbol_partitions(hours: int, now: datetime) -> MultiPartitionsDefinition:
    """The minute x symbol partitions of the live window: `hours` whole hours before `now`'s hour
    to the minute in progress."""
    return MultiPartitionsDefinition({"minute": _minutes_from(window_start(now, hours)), "symbol": symbol_partitions})


def most_live_cells(hours: int, symbols: int) -> int:
    """The most cells the live window holds (just before the hourly move): `hours` hours, the hour
    in progress and the minute in progress, for every symbol."""
    return (hours * 60 + 61) * symbols


def with_partitions(assets_def: AssetsDefinition, partitions_def: PartitionsDefinition) -> AssetsDefinition:
    """`assets_def` partitioned by `partitions_def` instead (Dagster's public `map_asset_specs`)."""
    return assets_def.map_asset_specs(lambda spec: spec.replace_attributes(partitions_def=partitions_def))


def minute_window_start(partitions_def: PartitionsDefinition | None) -> datetime:
    """The first minute of a minute x symbol partitions definition (the live window's start in the
    code location); `HISTORY_START` for anything else."""
    if isinstance(partitions_def, MultiPartitionsDefinition):
        minutes = partitions_def.get_partitions_def_for_dimension("minute")
        if isinstance(minutes, TimeWindowPartitionsDefinition):
            return minutes.start.astimezone(UTC)
    return datetime.fromisoformat(HISTORY_START).replace(tzinfo=UTC)


def minute_range_tags(minute: datetime, symbols: list[str], last_minute: datetime | None = None) -> dict[str, str]:
    """Run tags that make one run cover `minute` (to `last_minute`, if given) for every symbol.

    `symbols` must be in registration order: Dagster resolves the range over the dynamic
    dimension in that order, so first-registered to last-registered covers them all.
    """
    last = last_minute or minute
    return {RANGE_START_TAG: f"{format_minute(minute)}|{symbols[0]}",
            RANGE_END_TAG: f"{format_minute(last)}|{symbols[-1]}"}
