"""The minute x symbol partitions of the minute assets, and the run tags of a range run.

A partition is a cell (`acts_pipeline.core.cells`); its key reads `2026-11-26-13:54|BTCUSDT`
(Dagster orders dimensions by name: `minute`, then `symbol`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dagster import DynamicPartitionsDefinition, MultiPartitionsDefinition, TimeWindowPartitionsDefinition

from acts_pipeline import settings
from acts_pipeline.core.cells import MINUTE_FORMAT, format_minute, parse_minute

SYMBOLS_PARTITIONS_NAME = "symbols"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


def window_start(now: datetime, hours: int) -> datetime:
    """The first minute of the rolling partition window: the start of `now`'s hour (UTC), less
    `hours` hours."""
    return now.astimezone(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=hours)


#: The minute partitions are a rolling window: from `ACTS_PARTITION_WINDOW_HOURS` (default 6)
#: whole hours before the hour the code location loaded, to the minute in progress. Dagster's
#: partition views (partitions tab, launch and backfill dialogs, the asset page's live data)
#: cost time in proportion to the minute x symbol cells in the window, and a fixed start makes
#: every page slower each day (benchmarks/ui_pages.py). Older data stays in MongoDB, readable as
#: ever; the retention job deletes runs (and their events) older than the window, and the code
#: location is reloaded every hour (`acts-pipeline dev` does it; `acts-pipeline reload-code`),
#: which moves the start.
PARTITION_WINDOW_HOURS = settings.partition_window_hours()
PARTITIONS_START = format_minute(window_start(datetime.now(UTC), PARTITION_WINDOW_HOURS))

minute_partitions = TimeWindowPartitionsDefinition(
    cron_schedule="* * * * *",
    start=PARTITIONS_START,
    fmt=MINUTE_FORMAT,
    timezone="UTC",
    # The minute in progress is a valid key, so its run can be requested before it closes and
    # the UI and `dagster asset materialize` accept it.
    end_offset=1,
)
symbol_partitions = DynamicPartitionsDefinition(name=SYMBOLS_PARTITIONS_NAME)
minute_symbol_partitions = MultiPartitionsDefinition({"minute": minute_partitions, "symbol": symbol_partitions})


def minute_partitions_start() -> datetime:
    return parse_minute(PARTITIONS_START)


def minute_range_tags(minute: datetime, symbols: list[str], last_minute: datetime | None = None) -> dict[str, str]:
    """Run tags that make one run cover `minute` (to `last_minute`, if given) for every symbol.

    `symbols` must be in registration order: Dagster resolves the range over the dynamic
    dimension in that order, so first-registered to last-registered covers them all.
    """
    last = last_minute or minute
    return {RANGE_START_TAG: f"{format_minute(minute)}|{symbols[0]}",
            RANGE_END_TAG: f"{format_minute(last)}|{symbols[-1]}"}
