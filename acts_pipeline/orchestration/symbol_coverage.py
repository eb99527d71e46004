"""`symbol_month_coverage`: one symbol's month at a glance, in the UI: which days and hours of the
month it has snapshots, features and klines.

`daily_coverage` answers "which days had gaps, across all symbols"; this asset answers "what did
this symbol miss last month", the question an operator brings from a researcher. One partition
per UTC month and symbol (`history_partitions.month_symbol_partitions`, 6,000 keys a year at 500
symbols). The same pure accounting as the daily view (`core.coverage.day_coverage`, one
aggregation per collection and day, `storage.coverage_reads.hourly_masks`), folded per symbol over
the month's closed days.

Where to look: the asset's *Partitions* tab, a (month, symbol): completeness per collection,
the days with gaps and their missing ranges (table `gap_days`), and `heatmap` (*Show Markdown*): a
day x hour picture of the month for that symbol, one panel per collection. Which symbols had gaps
in a month: the check `month_is_complete`, its latest evaluation (WARN), whose table `symbols`
lists every symbol of the run with gaps and its missing minutes per collection.

The check is not partitioned: Dagster's open-source storage rebuilds a partitioned check's status
from every evaluated key on each page that shows it, which `benchmarks/ui_pages.py --history`
measured at 2 to 4.5 s for 12,000 (month, symbol) keys; the asset's own partitions, metadata and
picture already are the per-symbol view.

`symbol_month_coverage_schedule` computes the month that just closed for every registered symbol
on the 1st at 00:20 UTC (once a month: recomputing the month in progress every day would write
500 materializations a day, about 2.5 GB of event log a year at 500 symbols). The month in
progress (its closed days), or any range of months and symbols, can be (re)computed from the UI
with *Materialize...*; a run writes nothing but what the UI shows, so re-running replaces it.
"""

from collections.abc import Iterator
from datetime import UTC, datetime

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetMaterialization,
    BackfillPolicy,
    DefaultScheduleStatus,
    MetadataValue,
    MultiPartitionKey,
    RunRequest,
    ScheduleEvaluationContext,
    SkipReason,
    TableColumn,
    TableRecord,
    TableSchema,
    asset,
    schedule,
)

from acts_pipeline.core.coverage import DAY, CollectionDay, day_coverage, format_ranges, svg_markdown, symbol_month_heatmap_svg
from acts_pipeline.orchestration.coverage_assets import COLLECTIONS
from acts_pipeline.orchestration.history_partitions import month_symbol_partitions
from acts_pipeline.orchestration.partitions import RANGE_END_TAG, RANGE_START_TAG
from acts_pipeline.orchestration.symbols import registered_symbols
from acts_pipeline.storage.client import MongoStore
from acts_pipeline.storage.coverage_reads import hourly_masks
from acts_pipeline.storage.io_manager import MongoResource

CHECK_NAME = "month_is_complete"
MONTH_FORMAT = "%Y-%m-%d"
#: Rows of the check's table of symbols with gaps (the most missing first).
MAX_SYMBOL_ROWS = 500
SYMBOLS_SCHEMA = TableSchema(columns=[
    TableColumn("month", "string"),
    TableColumn("symbol", "string"),
    TableColumn("snapshots_missing", "int"),
    TableColumn("features_missing", "int"),
    TableColumn("klines_missing", "int"),
])
GAP_DAYS_SCHEMA = TableSchema(columns=[
    TableColumn("day", "string"),
    TableColumn("collection", "string"),
    TableColumn("missing", "int", description="minutes missing that day"),
    TableColumn("complete_pct", "float"),
    TableColumn("missing_ranges", "string", description="first missing ranges, UTC"),
])


def month_start(key: str) -> datetime:
    return datetime.strptime(key, MONTH_FORMAT).replace(tzinfo=UTC)


def closed_days(month: datetime, now: datetime) -> list[datetime]:
    """The UTC days of `month` that have closed by `now`, in order."""
    days, day = [], month
    while day.month == month.month and day + DAY <= now:
        days.append(day)
        day += DAY
    return days


def read_month(store: MongoStore, month: datetime, symbols: list[str], now: datetime) -> list[list[CollectionDay]]:
    """Per closed day of `month`, one `CollectionDay` per collection for `symbols` (one aggregation
    per collection and day, only those symbols' documents)."""
    tracked = store.tracked_since()
    return [[day_coverage(name, day, hourly_masks(store, name, day, day + DAY, symbols), tracked, symbols)
             for name in COLLECTIONS] for day in closed_days(month, now)]


def month_metadata(symbol: str, month: datetime, days: list[list[CollectionDay]]) -> tuple[dict, dict[str, int]]:
    """The partition's metadata and the missing minutes per collection."""
    metadata: dict = {"days_counted": MetadataValue.int(len(days))}
    missing: dict[str, int] = {}
    records = []
    for c, name in enumerate(COLLECTIONS):
        short = COLLECTIONS[name]
        rows = [(day[c].day, next((r for r in day[c].symbols if r.symbol == symbol), None)) for day in days]
        expected = sum(r.expected for _, r in rows if r)
        stored = sum(r.stored for _, r in rows if r)
        missing[short] = expected - stored
        metadata[f"{short}_complete_pct"] = MetadataValue.float(round(100.0 * stored / expected, 3) if expected else 100.0)
        metadata[f"{short}_missing_minutes"] = MetadataValue.int(expected - stored)
        records += [TableRecord({"day": f"{day:%Y-%m-%d}", "collection": short, "missing": r.missing,
                                 "complete_pct": round(100 * r.completeness, 2),
                                 "missing_ranges": format_ranges(r.missing_ranges, 3)})
                    for day, r in rows if r and r.missing]
    records.sort(key=lambda r: (r.data["day"], r.data["collection"]))
    metadata["gap_days"] = MetadataValue.table(records=records, schema=GAP_DAYS_SCHEMA)
    svg = symbol_month_heatmap_svg(symbol, [[CollectionDay(COLLECTIONS[d.collection], d.day, d.symbols) for d in day]
                                            for day in days])
    metadata["heatmap"] = MetadataValue.md(svg_markdown(svg, f"{symbol} {month:%Y-%m} per day and hour"))
    return metadata, missing


@asset(
    partitions_def=month_symbol_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    output_required=False,
    check_specs=[AssetCheckSpec(
        CHECK_NAME, asset="symbol_month_coverage",
        description="Warns when symbols missed minutes in the run's months (closed days) in snapshots, features or "
        "klines; its table lists each such symbol with its missing minutes per collection.")],
    group_name="history",
    kinds={"python", "mongodb"},
)
def symbol_month_coverage(context: AssetExecutionContext,
                          mongo: MongoResource) -> Iterator[AssetMaterialization | AssetCheckResult]:
    """How complete snapshots, features and klines were for one symbol over one UTC month.

    Counts the month's closed days (the month in progress up to yesterday). A symbol is expected
    every minute from the minute a run first collected it, as in `daily_coverage`: a month before
    it was tracked is complete with nothing expected. Each (month, symbol) gets its completeness
    per collection, the table `gap_days` (each day with gaps, its missing ranges) and `heatmap`
    (*Show Markdown*: the month's days x hours, one panel per collection), and its partition of
    the run's evaluation of `month_is_complete` lists the symbols with gaps. A range of months
    and symbols is one run.
    """
    store = mongo.get_store()
    now = datetime.now(UTC)
    by_month: dict[str, list[str]] = {}
    for key in context.partition_keys:
        dims = key.keys_by_dimension if isinstance(key, MultiPartitionKey) else dict(
            zip(("month", "symbol"), key.split("|")))
        by_month.setdefault(dims["month"], []).append(dims["symbol"])
    with_gaps: list[tuple[int, str, str, dict[str, int]]] = []
    for month_key, symbols in sorted(by_month.items()):
        month = month_start(month_key)
        days = read_month(store, month, symbols, now)
        for symbol in symbols:
            key = MultiPartitionKey({"month": month_key, "symbol": symbol})
            metadata, missing = month_metadata(symbol, month, days)
            yield AssetMaterialization(asset_key=context.asset_key, partition=key, metadata=metadata)
            if any(missing.values()):
                with_gaps.append((sum(missing.values()), f"{month:%Y-%m}", symbol, missing))
        context.log.info(f"{month:%Y-%m}: {len(symbols)} symbols over {len(days)} closed days")
    with_gaps.sort(key=lambda row: (-row[0], row[1], row[2]))
    total = len(context.partition_keys)
    table = MetadataValue.table(
        records=[TableRecord({"month": month, "symbol": symbol, **{f"{name}_missing": n for name, n in missing.items()}})
                 for _, month, symbol, missing in with_gaps[:MAX_SYMBOL_ROWS]],
        schema=SYMBOLS_SCHEMA)
    yield AssetCheckResult(
        check_name=CHECK_NAME, passed=not with_gaps, severity=AssetCheckSeverity.WARN,
        description=(f"{len(with_gaps)} of {total} (month, symbol) with gaps: "
                     + ", ".join(f"{symbol} {month}" for _, month, symbol, _ in with_gaps[:10])
                     + (" ..." if len(with_gaps) > 10 else ""))
        if with_gaps else f"all {total} (month, symbol) complete",
        metadata={"symbols": table, "with_gaps": len(with_gaps), "checked": total})


@schedule(cron_schedule="20 0 1 * *", execution_timezone="UTC", target=[symbol_month_coverage],
          name="symbol_month_coverage_schedule", default_status=DefaultScheduleStatus.RUNNING)
def symbol_month_coverage_schedule(context: ScheduleEvaluationContext):
    """On the 1st of each month at 00:20 UTC: the month that just closed, every registered symbol, one run."""
    symbols = registered_symbols(context.instance)
    if not symbols:
        return SkipReason("no symbol registered yet")
    yesterday = context.scheduled_execution_time.astimezone(UTC) - DAY
    month = f"{yesterday:%Y-%m-01}"
    return RunRequest(
        run_key=month,
        asset_selection=[symbol_month_coverage.key],
        tags={RANGE_START_TAG: f"{month}|{symbols[0]}", RANGE_END_TAG: f"{month}|{symbols[-1]}"},
    )


ASSETS = [symbol_month_coverage]
SCHEDULES = [symbol_month_coverage_schedule]
