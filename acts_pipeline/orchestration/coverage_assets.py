"""`daily_coverage`: how complete each collection was over each UTC day, per symbol, in the UI.

One partition per closed UTC day (`history_partitions.day_partitions`), materialized by
`daily_coverage_schedule` shortly after midnight for the day that just closed, and backfillable
for any past day from the UI (Materialize... on the asset, a range of days). A run reads MongoDB
with one aggregation per collection (`storage.coverage_reads.hourly_masks`) and writes nothing but
its metadata and the check result: re-running a day replaces what the UI shows for it.
"""

from datetime import UTC, datetime

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    DefaultScheduleStatus,
    MaterializeResult,
    MetadataValue,
    TableColumn,
    TableRecord,
    TableSchema,
    asset,
    build_schedule_from_partitioned_job,
    define_asset_job,
)

from acts_pipeline.core.coverage import DAY, CollectionDay, coverage_heatmap_svg, day_coverage, format_ranges, svg_markdown
from acts_pipeline.orchestration.history_partitions import day_partitions
from acts_pipeline.orchestration.symbols import registered_symbols
from acts_pipeline.storage.client import MongoStore
from acts_pipeline.storage.collections import KLINES_1M, ORDER_BOOK_FEATURES, ORDER_BOOK_SNAPSHOTS
from acts_pipeline.storage.coverage_reads import hourly_masks
from acts_pipeline.storage.io_manager import MongoResource

#: collection -> the short name the metadata and the picture use.
COLLECTIONS = {ORDER_BOOK_SNAPSHOTS: "snapshots", ORDER_BOOK_FEATURES: "features", KLINES_1M: "klines"}
CHECK_NAME = "day_is_complete"
#: Rows of the gaps table: the symbols missing most, per collection together.
MAX_TABLE_ROWS = 50
#: Missing ranges listed per row of the table.
MAX_RANGES = 3
#: Symbols drawn in the heatmap (the ones missing most).
MAX_HEATMAP_SYMBOLS = 40

GAPS_SCHEMA = TableSchema(columns=[
    TableColumn("collection", "string"),
    TableColumn("symbol", "string"),
    TableColumn("expected", "int", description="minutes expected (from when the symbol was tracked)"),
    TableColumn("stored", "int"),
    TableColumn("missing", "int"),
    TableColumn("complete_pct", "float"),
    TableColumn("missing_ranges", "string", description=f"first {MAX_RANGES} missing ranges, UTC"),
])


def read_day(store: MongoStore, day: datetime, symbols: list[str] | None) -> list[CollectionDay]:
    """Each collection's coverage of the UTC day starting at `day` (one aggregation each)."""
    tracked = store.tracked_since()
    return [day_coverage(name, day, hourly_masks(store, name, day, day + DAY), tracked, symbols)
            for name in COLLECTIONS]


def coverage_metadata(days: list[CollectionDay]) -> dict:
    """The materialization's metadata: completeness and gap counts per collection, the table of
    symbols with gaps, and the heatmap."""
    metadata: dict = {}
    gap_symbols: set[str] = set()
    rows = []
    for cov in days:
        short = COLLECTIONS.get(cov.collection, cov.collection)
        with_gaps = cov.with_gaps
        gap_symbols.update(s.symbol for s in with_gaps)
        metadata[f"{short}_complete_pct"] = MetadataValue.float(round(cov.completeness_pct, 3))
        metadata[f"{short}_missing_minutes"] = MetadataValue.int(cov.missing)
        metadata[f"{short}_symbols_with_gaps"] = MetadataValue.int(len(with_gaps))
        rows += [(s.missing, cov.collection, s) for s in with_gaps]
    rows.sort(key=lambda r: (-r[0], r[1], r[2].symbol))
    metadata["symbols_with_gaps"] = MetadataValue.int(len(gap_symbols))
    metadata["missing_minutes"] = MetadataValue.int(sum(c.missing for c in days))
    metadata["symbols_tracked"] = MetadataValue.int(len({s.symbol for c in days for s in c.symbols}))
    metadata["gaps"] = MetadataValue.table(
        records=[TableRecord({"collection": COLLECTIONS.get(name, name), "symbol": s.symbol, "expected": s.expected,
                              "stored": s.stored, "missing": s.missing,
                              "complete_pct": round(100 * s.completeness, 2),
                              "missing_ranges": format_ranges(s.missing_ranges, MAX_RANGES)})
                 for _, name, s in rows[:MAX_TABLE_ROWS]],
        schema=GAPS_SCHEMA)
    if len(rows) > MAX_TABLE_ROWS:
        metadata["gaps_not_listed"] = MetadataValue.int(len(rows) - MAX_TABLE_ROWS)
    svg = coverage_heatmap_svg([_renamed(c) for c in days], MAX_HEATMAP_SYMBOLS)
    metadata["heatmap"] = MetadataValue.md(svg_markdown(svg, "completeness per symbol and hour"))
    return metadata


def _renamed(cov: CollectionDay) -> CollectionDay:
    return CollectionDay(COLLECTIONS.get(cov.collection, cov.collection), cov.day, cov.symbols)


def coverage_check(days: list[CollectionDay]) -> AssetCheckResult:
    """Passes when no tracked symbol misses a minute that day in any collection; else a warning
    with the counts."""
    missing = sum(c.missing for c in days)
    gap_symbols = {s.symbol for c in days for s in c.with_gaps}
    per = "; ".join(f"{COLLECTIONS.get(c.collection, c.collection)} {len(c.with_gaps)} symbols, {c.missing} minutes"
                    for c in days if c.missing)
    return AssetCheckResult(
        check_name=CHECK_NAME,
        passed=missing == 0,
        severity=AssetCheckSeverity.WARN,
        description=f"gaps: {per}" if missing else "every tracked symbol complete in every collection",
        metadata={"symbols_with_gaps": len(gap_symbols), "missing_minutes": missing,
                  **{f"{COLLECTIONS.get(c.collection, c.collection)}_complete_pct": round(c.completeness_pct, 3)
                     for c in days}},
    )


@asset(
    partitions_def=day_partitions,
    check_specs=[AssetCheckSpec(
        CHECK_NAME, asset="daily_coverage", partitions_def=day_partitions,
        description="Warns when a tracked symbol misses minutes that day in snapshots, features or klines; "
        "its Partitions tab colours each day: green complete, red with gaps.")],
    group_name="history",
    kinds={"python", "mongodb"},
)
def daily_coverage(context: AssetExecutionContext, mongo: MongoResource) -> MaterializeResult:
    """How complete snapshots, features and klines were over one UTC day, per symbol.

    Each symbol is expected every minute from the minute a run first collected it (or its first
    minute stored that day in the collection, for a backfill from before): a symbol not tracked
    yet is not a gap. Only the registered symbols (the `symbols` partitions) are counted.

    Where to look:
    - which days have gaps: the check `day_is_complete`, tab *Partitions* (Asset > Checks >
      day_is_complete): one cell per day, green complete, red with gaps, grey not computed
      (untick *Missing* to list the computed days only). The asset's own Partitions tab only
      says which days were computed (a computed day is green whatever its completeness).
    - the trend: Overview > Metadata > *Plots* draws `snapshots_complete_pct`,
      `features_complete_pct`, `klines_complete_pct`, `symbols_with_gaps` and the missing minutes.
    - one day: the asset's Partitions tab, the day: completeness (%) and gap counts per
      collection, the table `gaps` (symbols missing most, with their first missing ranges, UTC)
      and `heatmap` (*Show Markdown*: per symbol and hour, green complete to red missing, the
      first row all symbols together; `docs/images/daily_coverage.png`).

    Runs after each UTC day closes (`daily_coverage_schedule`, 00:10 UTC for yesterday); any past
    day can be (re)computed from the UI, e.g. after a backfill filled its gaps.
    """
    day = datetime.strptime(context.partition_key, "%Y-%m-%d").replace(tzinfo=UTC)
    days = read_day(mongo.get_store(), day, registered_symbols(context.instance))
    for cov in days:
        context.log.info(f"{cov.collection} {day:%Y-%m-%d}: {cov.completeness_pct:.3f}% of {cov.expected} minutes, "
                         f"{len(cov.with_gaps)} symbols with gaps")
    return MaterializeResult(metadata=coverage_metadata(days), check_results=[coverage_check(days)])


daily_coverage_job = define_asset_job(
    "daily_coverage_job", selection=[daily_coverage],
    description="Computes daily_coverage for one UTC day.")

#: Ten minutes after midnight UTC, for the day that just closed: its last minute's run (and the
#: klines catch-up of its last minutes) is done by then.
daily_coverage_schedule = build_schedule_from_partitioned_job(
    daily_coverage_job, minute_of_hour=10, name="daily_coverage_schedule",
    default_status=DefaultScheduleStatus.RUNNING)

ASSETS = [daily_coverage]
JOBS = [daily_coverage_job]
SCHEDULES = [daily_coverage_schedule]
