"""Asset checks, shown in the UI next to each asset: are the stored books sane, are the features
in range, and is any (minute, symbol) cell missing over the recent window.

They run in every minute run after their asset (and can be run alone from the UI). Each reads
what was stored in MongoDB, so it reports the data as it really is, whatever the run said. They
write no data: the minute each symbol is counted from (`tracked_since`) is written with the
snapshots, by the MongoDB I/O manager; the completeness check notes which cells it saw stored
(`storage.seen_cells`), so that it reads each minute once, not 15 times.

They are partitioned like their assets. An unpartitioned check of a partitioned asset depends on
it through an all-partitions mapping, and Dagster then lists every partition key of the asset to
version the check's input: every minute since the start times every symbol, 18.5 million keys
at 500 symbols (a minute of CPU and 10 GB per run, measured by benchmarks/minute_collection.py).
Partitioned, the check's input is the run's own range.
"""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from dagster import (
    AssetChecksDefinition,
    PartitionsDefinition,
    AssetCheckEvaluation,
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    MetadataValue,
    asset_check,
)

from acts_pipeline.orchestration.assets import order_book_features, order_book_snapshot
from acts_pipeline.orchestration.book_source import BookSource
from acts_pipeline.orchestration.capture import CaptureClock
from acts_pipeline.core.cells import Cell, cells_of, floor_minute, format_minute
from acts_pipeline.orchestration.partitions import minute_symbol_partitions
from acts_pipeline.core.quality import coverage, feature_problems, minute_spans, snapshot_problems
from acts_pipeline.storage.boundary_books import BoundaryBooks
from acts_pipeline.storage.collections import ORDER_BOOK_FEATURES, ORDER_BOOK_SNAPSHOTS
from acts_pipeline.storage.handlers import as_utc
from acts_pipeline.storage.io_manager import MongoResource
from acts_pipeline.storage.seen_cells import SeenCells
from acts_pipeline.orchestration.symbols import registered_symbols

#: How far back the completeness check looks: a gap is reported by the 15 runs after it;
#: `acts-pipeline coverage --minutes N` answers for any window. Each run reads its own minute
#: and the cells missing from what earlier runs saw (`SeenCells`), not the whole window.
COVERAGE_WINDOW = timedelta(minutes=15)
#: Rows of the coverage table in the check's metadata: only symbols with gaps, at most this many.
MAX_TABLE_ROWS = 50
MAX_LISTED = 20


#: The minute checks' functions and decorator arguments, for `minute_checks`.
_MINUTE_CHECKS: list[tuple[Callable, dict]] = []


def _minute_check(asset, **kwargs):
    """`asset_check` on `asset`, partitioned like the minute assets as defined in code; recorded so
    that `minute_checks` can build the same checks over the live window."""
    def build(fn: Callable) -> AssetChecksDefinition:
        _MINUTE_CHECKS.append((fn, {"asset": asset.key, **kwargs}))
        return asset_check(asset=asset, blocking=False, partitions_def=minute_symbol_partitions, **kwargs)(fn)
    return build


def minute_checks(partitions_def: PartitionsDefinition) -> list[AssetChecksDefinition]:
    """The checks of the minute assets, partitioned by `partitions_def` (the code location's live
    window: `definitions.py`)."""
    return [asset_check(blocking=False, partitions_def=partitions_def, **kwargs)(fn) for fn, kwargs in _MINUTE_CHECKS]


def _run_cells(context: AssetCheckExecutionContext) -> list[Cell]:
    """The cells of the run the check is part of; run alone, the last closed minute."""
    try:
        return cells_of(context.op_execution_context.partition_keys)
    except Exception:  # noqa: BLE001 - a check run without partitions has no keys
        minute = floor_minute(datetime.now(UTC)) - timedelta(minutes=1)
        return [Cell(minute, s) for s in registered_symbols(context.instance)]


def _result(problems: list[str], checked: int, what: str, severity: AssetCheckSeverity) -> AssetCheckResult:
    return AssetCheckResult(
        passed=not problems,
        severity=severity,
        description=(f"{len(problems)} problems in {checked} {what}: " + "; ".join(problems[:3])) if problems
        else f"{checked} {what} checked",
        metadata={"checked": checked, "problems": len(problems),
                  "first_problems": MetadataValue.json(problems[:MAX_LISTED])},
    )


@_minute_check(asset=order_book_snapshot,
               description="Every stored book of the run has both sides, is not crossed, has strictly "
             "ordered prices, and was captured after its minute's close and within the tolerance.")
def snapshot_books_are_valid(context: AssetCheckExecutionContext, mongo: MongoResource,
                             capture_clock: CaptureClock) -> AssetCheckResult:
    documents = mongo.get_store().find_cells(ORDER_BOOK_SNAPSHOTS, _run_cells(context))
    problems = [p for d in documents for p in snapshot_problems(d, capture_clock.tolerance)]
    return _result(problems, len(documents), "books", AssetCheckSeverity.ERROR)


@_minute_check(asset=order_book_features,
               description="Every stored feature row of the run has its biases in [-1, 1], no NaN or "
             "infinity (not computable is null), and a positive spread unless flagged crossed.")
def features_are_in_range(context: AssetCheckExecutionContext, mongo: MongoResource) -> AssetCheckResult:
    documents = mongo.get_store().find_cells(ORDER_BOOK_FEATURES, _run_cells(context))
    problems = [p for d in documents for p in feature_problems(d)]
    return _result(problems, len(documents), "feature rows", AssetCheckSeverity.ERROR)


@_minute_check(asset=order_book_snapshot,
               description="Missing (minute, symbol) snapshots over the last 15 minutes, each symbol counted "
             "from the first minute a run collected it for. A gap is a missed minute: it is "
             "never filled with another minute's book.")
def snapshots_are_complete(context: AssetCheckExecutionContext, mongo: MongoResource) -> AssetCheckResult:
    store = mongo.get_store()
    cells = _run_cells(context)
    registered = set(registered_symbols(context.instance))
    end = max(c.minute for c in cells) + timedelta(minutes=1) if cells else floor_minute(datetime.now(UTC))
    tracked = {s: since for s, since in store.tracked_since().items() if s in registered}
    # The window as stored, reading in full only the run's own minutes and the minutes no run
    # has looked at before (`SeenCells`: 15 minutes of books every minute were 3.6 s of the
    # embedded server's CPU at 1262 symbols).
    stored = SeenCells(store, ORDER_BOOK_SNAPSHOTS).stored_minutes(
        end - COVERAGE_WINDOW, end, tracked, fresh={c.minute for c in cells})
    rows = coverage(tracked, stored, end - COVERAGE_WINDOW, end)
    missing = [r for r in rows if r.missing]
    # Each of the run's own cells that has no snapshot is marked failed on its partition of this
    # check: the check's Partitions tab then shows it red, where the asset's grid can only show
    # it missing (an open-source instance marks a cell failed only when its run fails).
    gaps = {(m, r.symbol) for r in missing for m in r.missing_minutes}
    for cell in cells:
        if (cell.minute, cell.symbol) in gaps:
            context.op_execution_context.log_event(AssetCheckEvaluation(
                asset_key=order_book_snapshot.key, check_name="snapshots_are_complete", passed=False,
                severity=AssetCheckSeverity.WARN, partition=str(cell),
                description=f"no snapshot stored for {cell.symbol} at {format_minute(cell.minute)}"))
    table = "| symbol | tracked since | expected | stored | missing minutes |\n|---|---|---|---|---|\n" + "\n".join(
        f"| {r.symbol} | {format_minute(r.tracked_since)} | {r.expected} | {r.stored} | {minute_spans(r.missing_minutes)} |"
        for r in missing[:MAX_TABLE_ROWS])
    if len(missing) > MAX_TABLE_ROWS:
        table += f"\n\n... and {len(missing) - MAX_TABLE_ROWS} more symbols with gaps"
    return AssetCheckResult(
        passed=not missing,
        severity=AssetCheckSeverity.WARN,
        description=("missing: " + "; ".join(f"{r.symbol} at {minute_spans(r.missing_minutes)}" for r in missing[:5]))
        if missing else f"all {sum(r.expected for r in rows)} cells of the last 15 minutes are stored",
        metadata={"missing_cells": sum(r.missing for r in rows), "expected_cells": sum(r.expected for r in rows),
                  "symbols_with_gaps": len(missing), "gaps": MetadataValue.md(table)},
    )


@_minute_check(asset=order_book_snapshot,
               description="With ACTS_BOOK_SOURCE=stream: the stream recorder is running (its status is less "
             "than 30 s old), vouches for every tracked symbol's book (in sync, complete to the "
             "published depth), and stored its books (none of the symbols it reports in sync came over "
             "REST for want of any boundary book). A symbol it cannot vouch for falls back to REST, and a minute past the "
             "tolerance stays missing, so this check is the early warning. Passes in the REST design.")
def stream_recorder_is_healthy(context: AssetCheckExecutionContext, book_source: BookSource) -> AssetCheckResult:
    if not book_source.streams():
        return AssetCheckResult(passed=True, description="REST design (ACTS_BOOK_SOURCE=rest): no recorder",
                                metadata={"book_source": "rest"})
    now = datetime.now(UTC)
    status = book_source.recorder_status()
    if status is None:
        return AssetCheckResult(passed=False, severity=AssetCheckSeverity.ERROR,
                                description="no stream recorder has ever reported: start `acts-pipeline record` "
                                "(`acts-pipeline dev` starts it); every book comes over REST meanwhile")
    age = (now - as_utc(status["updated_at"])).total_seconds()
    symbols: dict = status.get("symbols") or {}
    registered = registered_symbols(context.instance)
    unrecorded = [s for s in registered if s not in symbols]
    out = {s: v.get("reason") or "not in sync" for s, v in symbols.items() if s in registered and not v["in_sync"]}
    durable = status.get("durable_after_close_s") or {}
    metadata = {
        "status_age_s": round(age, 1), "symbols_in_sync": len(registered) - len(out) - len(unrecorded),
        "symbols_tracked": len(registered), "durable_after_close_p99_s": durable.get("p99"),
        "connections": MetadataValue.md("\n".join(
            ["| connection | state | streams | reconnects | last message age (s) |", "|---|---|---|---|---|"]
            + [f"| {c['name']} | {c['state']} | {c['streams']} | {c['reconnects']} | {c['last_message_age_s']} |"
               for c in status.get("connections", [])])),
    }
    why = book_source.recorder_down(status, now)
    if why:
        return AssetCheckResult(passed=False, severity=AssetCheckSeverity.ERROR, metadata=metadata,
                                description=f"the stream recorder is {why}: every book comes over REST, and "
                                "minutes it did not record cannot be backfilled")
    # What the recorder says against what the run found: a book of this run that came over REST
    # for a symbol the recorder reports in sync, with no decision of the recorder stored for that
    # minute at all (an older recorder writing another layout, another database, writes failing):
    # the status alone would look green.
    store = book_source.mongo.get_store()
    in_sync = {s for s, v in symbols.items() if v.get("in_sync")}
    over_rest = [d for d in store.find_cells(ORDER_BOOK_SNAPSHOTS, _run_cells(context), fields=["source"])
                 if d.get("source") == "rest" and d["symbol"] in in_sync]
    books = BoundaryBooks(store)
    decided = {minute: books.decided(minute) for minute in {as_utc(d["minute"]) for d in over_rest}}
    unseen = sorted({d["symbol"] for d in over_rest if d["symbol"] not in decided[as_utc(d["minute"])]})
    metadata["in_sync_without_boundary_book"] = len(unseen)
    if unseen:
        return AssetCheckResult(
            passed=False, severity=AssetCheckSeverity.WARN, metadata=metadata,
            description=f"{len(unseen)} of {len(registered)} symbols have no boundary book stored for this run though "
            f"the recorder reports them in sync, and came over REST ({', '.join(unseen[:5])}{', ...' if len(unseen) > 5 else ''}): is the "
            "recorder writing to this database, in this version's layout? Its log and /health say more")
    if out or unrecorded:
        listed = [f"{s}: {r}" for s, r in sorted(out.items())][:MAX_LISTED] + [
            f"{s}: not recorded yet" for s in unrecorded[:MAX_LISTED]]
        metadata["not_vouched_for"] = MetadataValue.json(dict(item.split(": ", 1) for item in listed))
        return AssetCheckResult(passed=False, severity=AssetCheckSeverity.WARN, metadata=metadata,
                                description=f"{len(out) + len(unrecorded)} of {len(registered)} symbols without a "
                                f"book the recorder vouches for (REST fallback): " + "; ".join(listed[:3]))
    return AssetCheckResult(passed=True, metadata=metadata,
                            description=f"all {len(registered)} symbols in sync; status {age:.0f} s old")
