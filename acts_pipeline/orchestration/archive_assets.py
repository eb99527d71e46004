"""The research archive in Dagster: each closed UTC day written to Parquet, then MongoDB's
retention of the days the archive verifiably holds.

- `daily_archive` (one partition per UTC day, `history_partitions.day_partitions`) writes the
  day's snapshots, features and klines under `ACTS_ARCHIVE_DIR` (layout:
  `acts_pipeline.storage.archive`), verifies every file and records rows, bytes, sha256 and path
  per collection as the materialization's metadata. `daily_archive_schedule` materializes
  yesterday's partition at 00:15 UTC; any past day can be (re)archived from the UI with a
  backfill, which replaces the day's files.
- `mongo_retention` deletes from MongoDB the days older than each collection's retention
  (`ACTS_SNAPSHOT_RETENTION_DAYS`, default 30; `ACTS_FEATURES_RETENTION_DAYS` and
  `ACTS_KLINES_RETENTION_DAYS`, default forever), and only those whose archive file is in the
  day's manifest, verifies now (size, sha256, rows) and holds every document MongoDB has for the
  day. `mongo_retention_schedule` runs it at 00:45 UTC, after the archive.

The settings are read when a run builds its `ArchiveResource`, never at import. Exported as
`ASSETS`, `JOBS`, `SCHEDULES`; the resource is `archive` (see `ArchiveResource`).
"""

from datetime import UTC, datetime

from dagster import (
    AssetExecutionContext,
    ConfigurableResource,
    DefaultScheduleStatus,
    MaterializeResult,
    MetadataValue,
    ScheduleDefinition,
    asset,
    build_schedule_from_partitioned_job,
    define_asset_job,
)
from pydantic import Field

from acts_pipeline import settings
from acts_pipeline.orchestration.history_partitions import day_partitions
from acts_pipeline.storage.archive import ARCHIVED_COLLECTIONS, Archive, apply_retention, as_day
from acts_pipeline.storage.collections import KLINES_1M, ORDER_BOOK_FEATURES, ORDER_BOOK_SNAPSHOTS
from acts_pipeline.storage.io_manager import MongoResource

#: Short names for metadata keys (the UI plots a numeric key across partitions).
SHORT = {ORDER_BOOK_SNAPSHOTS: "snapshots", ORDER_BOOK_FEATURES: "features", KLINES_1M: "klines"}


class ArchiveResource(ConfigurableResource):
    """Where the daily Parquet archive lives and how long MongoDB keeps what it holds."""

    root: str | None = Field(
        default=None,
        description="Archive root (ACTS_ARCHIVE_DIR): a folder or an fsspec URL such as s3://bucket/prefix; "
        "unset: .acts/archive in the platform's working directory (the project folder).")
    snapshot_retention_days: str | None = Field(
        default=None,
        description="Whole days of snapshots MongoDB keeps once archived and verified "
        "(ACTS_SNAPSHOT_RETENTION_DAYS; default 30; 'forever' keeps them all).")
    features_retention_days: str | None = Field(
        default=None, description="As for snapshots, for features (ACTS_FEATURES_RETENTION_DAYS; default forever).")
    klines_retention_days: str | None = Field(
        default=None, description="As for snapshots, for klines (ACTS_KLINES_RETENTION_DAYS; default forever).")

    def get_archive(self) -> Archive:
        return Archive(settings.parse_archive_dir(self.root))

    def retention_days(self) -> dict[str, int | None]:
        """Per collection, the days MongoDB keeps (None: forever); `ConfigurationError` naming
        the variable if a value is bad."""
        return {
            ORDER_BOOK_SNAPSHOTS: settings.parse_snapshot_retention_days(self.snapshot_retention_days),
            ORDER_BOOK_FEATURES: settings.parse_features_retention_days(self.features_retention_days),
            KLINES_1M: settings.parse_klines_retention_days(self.klines_retention_days),
        }


@asset(
    partitions_def=day_partitions,
    group_name="history",
    kinds={"python", "parquet", "mongodb"},
    metadata={"collections": ", ".join(ARCHIVED_COLLECTIONS)},
)
def daily_archive(context: AssetExecutionContext, mongo: MongoResource, archive: ArchiveResource) -> MaterializeResult:
    """One UTC day of snapshots, features and klines as Parquet (zstd), for research.

    Files: `<ACTS_ARCHIVE_DIR>/<collection>/date=<day>/part-0.parquet`, one per collection
    (`order_book_snapshots`, `order_book_features`, `klines_1m`), hive-style: pandas, polars and
    DuckDB read `<root>/<collection>` as one table with a `date` column. One row per (symbol,
    minute), sorted by symbol then minute; snapshot levels as four list columns (`bid_prices`,
    `bid_qtys`, `ask_prices`, `ask_qtys`, best first). `<root>/_manifests/date=<day>.json` records
    what was verified. Each file is written under a temporary name and moved into place, then read
    back: its sha256, rows and (symbol, minute) keys must be what MongoDB held, else the run fails
    and the manifest is not changed. Re-materializing a day replaces its files (rows MongoDB no
    longer holds, deleted by retention, are kept from the previous file). The metadata gives,
    per collection, rows, bytes, sha256 and path.
    """
    day = as_day(context.partition_key)
    store = mongo.get_store()
    target = archive.get_archive()
    manifest = target.archive_day(store, day)
    metadata: dict[str, object] = {"day": day.isoformat(), "archive_root": target.root}
    lines = ["| collection | rows | MB | sha256 | path |", "|---|---|---|---|---|"]
    for collection in ARCHIVED_COLLECTIONS:
        entry = manifest.files[collection]
        short = SHORT[collection]
        metadata[f"{short}_rows"] = MetadataValue.int(entry.rows)
        metadata[f"{short}_bytes"] = MetadataValue.int(entry.bytes)
        metadata[f"{short}_sha256"] = MetadataValue.text(entry.sha256 or "")
        metadata[f"{short}_path"] = MetadataValue.path(target.url(entry.path)) if entry.path else MetadataValue.text(
            "(no documents that day)")
        if entry.carried_rows:
            metadata[f"{short}_rows_kept_from_archive"] = MetadataValue.int(entry.carried_rows)
        lines.append(f"| {collection} | {entry.rows:,} | {entry.bytes / 1e6:.1f} | {(entry.sha256 or '-')[:16]} | "
                     f"{entry.path or '-'} ({entry.status}) |")
        context.log.info(f"{collection} {day}: {entry.rows} rows, {entry.bytes} bytes, {entry.status}")
    metadata["files"] = MetadataValue.md("\n".join(lines))
    return MaterializeResult(metadata=metadata)


@asset(
    deps=[daily_archive],
    group_name="history",
    kinds={"python", "mongodb"},
)
def mongo_retention(context: AssetExecutionContext, mongo: MongoResource, archive: ArchiveResource) -> MaterializeResult:
    """MongoDB's retention: days older than each collection's retention deleted, only where archived.

    Snapshots are kept `ACTS_SNAPSHOT_RETENTION_DAYS` whole UTC days (default 30), features and
    klines forever unless `ACTS_FEATURES_RETENTION_DAYS` / `ACTS_KLINES_RETENTION_DAYS` say a number
    of days. An older day is deleted from MongoDB only if `daily_archive` recorded its file in the
    day's manifest, the file still verifies (size, sha256 and rows as recorded) and it holds every
    (symbol, minute) MongoDB has for the day; otherwise the day stays, and the metadata says why
    (not archived, a file that no longer verifies, documents written after the archive: archive the
    day again). Reading old days is unchanged: `acts_pipeline.read` reads the archive.
    """
    store = mongo.get_store()
    target = archive.get_archive()
    keep = archive.retention_days()
    today = datetime.now(UTC).date()
    metadata: dict[str, object] = {}
    lines = ["| collection | day | deleted | kept | why |", "|---|---|---|---|---|"]
    for collection in ARCHIVED_COLLECTIONS:
        short = SHORT[collection]
        outcomes = apply_retention(store, target, collection, keep[collection], today)
        metadata[f"{short}_retention_days"] = MetadataValue.text(
            settings.KEEP_FOREVER if keep[collection] is None else str(keep[collection]))
        metadata[f"{short}_deleted"] = MetadataValue.int(sum(o.deleted for o in outcomes))
        metadata[f"{short}_days_deleted"] = MetadataValue.int(sum(1 for o in outcomes if o.deleted))
        metadata[f"{short}_days_kept"] = MetadataValue.int(sum(1 for o in outcomes if o.kept))
        for o in outcomes:
            lines.append(f"| {collection} | {o.day} | {o.deleted:,} | {o.kept:,} | {o.reason} |")
            log = context.log.info if o.deleted else context.log.warning
            log(f"{collection} {o.day}: deleted {o.deleted}, kept {o.kept} ({o.reason})")
    metadata["days"] = MetadataValue.md("\n".join(lines) if len(lines) > 2 else "no day past its retention")
    return MaterializeResult(metadata=metadata)


daily_archive_job = define_asset_job(
    "daily_archive_job", selection=[daily_archive],
    description="Archives a UTC day of snapshots, features and klines to Parquet.")
#: A quarter of an hour after midnight UTC: yesterday's partition (the last closed day). The
#: minute runs of 23:59 have stored their cells by then.
daily_archive_schedule = build_schedule_from_partitioned_job(
    daily_archive_job, minute_of_hour=15, hour_of_day=0, name="daily_archive_schedule",
    default_status=DefaultScheduleStatus.RUNNING)
mongo_retention_job = define_asset_job(
    "mongo_retention_job", selection=[mongo_retention],
    description="Deletes from MongoDB the archived and verified days past their retention.")
#: Half an hour after the archive; a day it has not archived (yet) is simply kept.
mongo_retention_schedule = ScheduleDefinition(
    name="mongo_retention_schedule", job=mongo_retention_job, cron_schedule="45 0 * * *",
    execution_timezone="UTC", default_status=DefaultScheduleStatus.RUNNING)

ASSETS = [daily_archive, mongo_retention]
JOBS = [daily_archive_job, mongo_retention_job]
SCHEDULES = [daily_archive_schedule, mongo_retention_schedule]
