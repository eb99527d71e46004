"""`klines_history`: Binance 1-minute klines of any past month and symbol, backfilled from the UI.

The plan of a run is pure (`plan_pages`): each symbol's selected months, merged where they follow
each other, cut into pages of `KLINES_PER_REQUEST` minutes, one request each. The asset sends the
pages one after the other, paced under the weight budget, stores each page as it comes, and
reports each month as soon as its last page is stored.

A run tagged with a span (`KLINES_SPAN_FROM_TAG`, `KLINES_SPAN_TO_TAG`: what
`klines_history_catch_up_sensor` requests for a gap older than the live minute window) fetches only the
minutes of that span in each selected month, for the symbols the minute runs have collected. It
stores them like any run, and reports each month as an observation, not a materialization: the
month was not fetched whole.
"""


import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pandas as pd
from dagster import (
    AssetExecutionContext,
    AssetMaterialization,
    AssetObservation,
    AssetRecordsFilter,
    BackfillPolicy,
    Backoff,
    Failure,
    MetadataValue,
    RetryPolicy,
    asset,
)

from acts_pipeline.core.cells import floor_minute, format_minute, parse_minute
from acts_pipeline.core.errors import ExchangeError, UnknownSymbolError
from acts_pipeline.core.models import Kline
from acts_pipeline.exchange import KLINES_PER_REQUEST, KLINES_WEIGHT, BinanceExchange
from acts_pipeline.orchestration.assets import KLINE_COLUMNS, KLINE_SETTLE
from acts_pipeline.orchestration.capture import CaptureClock
from acts_pipeline.orchestration.history_partitions import month_symbol_partitions
from acts_pipeline.orchestration.klines_budget import pace_klines_request
from acts_pipeline.storage.collections import KLINES_1M
from acts_pipeline.storage.handlers import DataFrameHandler
from acts_pipeline.storage.io_manager import COLLECTION_METADATA_KEY, MongoResource

#: A progress line in the run's log every this many requests (and at each month's end).
PROGRESS_EVERY_REQUESTS = 50
#: Attempts per request (the client's own retries, with backoff): a backfill has no deadline, and
#: a month whose request still fails is reported failed, the others are stored.
ATTEMPTS_PER_REQUEST = 6
MONTH_FORMAT = "%Y-%m-%d"
MINUTE = timedelta(minutes=1)
#: Run tags of a span run: its first and last minute (`format_minute`, both included).
KLINES_SPAN_FROM_TAG = "acts/klines_from"
KLINES_SPAN_TO_TAG = "acts/klines_to"
#: After the client's own retries (about 6 s), the step is retried twice, 10 then 20 s later; a
#: retry resumes after the months the failed attempt stored (`stored_by_this_run`).
KLINES_HISTORY_RETRY_POLICY = RetryPolicy(max_retries=2, delay=10, backoff=Backoff.EXPONENTIAL)


def month_key_parts(partition_key: str) -> tuple[datetime, str]:
    """(first minute of the month, symbol) of a `2026-11-01|BTCUSDT` key (Dagster orders the
    dimensions by name: `month`, then `symbol`)."""
    month, sep, symbol = str(partition_key).partition("|")
    if not sep or not symbol:
        raise ValueError(f"not a month|symbol partition key: {partition_key!r}")
    return datetime.strptime(month, MONTH_FORMAT).replace(tzinfo=UTC), symbol


def next_month(month: datetime) -> datetime:
    return (month.replace(day=28) + timedelta(days=4)).replace(day=1)


@dataclass
class Month:
    """One partition: a symbol's month, the minutes `[start, end)` a run may fetch (up to the last
    closed minute), and what was stored."""

    key: str
    symbol: str
    start: datetime
    end: datetime
    rows: int = 0
    requests: int = 0
    first: datetime | None = None
    last: datetime | None = None
    error: str | None = None

    @property
    def minutes(self) -> int:
        return max(0, int((self.end - self.start) / timedelta(minutes=1)))

    def add(self, klines: list[Kline]) -> None:
        if not klines:
            return
        self.rows += len(klines)
        self.first = min(self.first or klines[0].minute, klines[0].minute)
        self.last = max(self.last or klines[-1].minute, klines[-1].minute)


@dataclass
class Page:
    """One request: `[start, end)` of one symbol, at most `KLINES_PER_REQUEST` minutes, and the
    months it covers (a page may straddle two)."""

    symbol: str
    start: datetime
    end: datetime
    months: list[Month] = field(default_factory=list)


def span_of(tags: dict[str, str]) -> tuple[datetime, datetime] | None:
    """The minutes `[first, last + 1 minute)` a span run's tags ask for, or None (a whole-month
    run). A span with one tag and not the other, or a bad minute, is refused by name."""
    first, last = tags.get(KLINES_SPAN_FROM_TAG), tags.get(KLINES_SPAN_TO_TAG)
    if first is None and last is None:
        return None
    if first is None or last is None:
        raise ValueError(f"a klines span needs both run tags {KLINES_SPAN_FROM_TAG} and {KLINES_SPAN_TO_TAG}, "
                         f"got {first!r} and {last!r}")
    try:
        start, end = parse_minute(first), parse_minute(last) + MINUTE
    except ValueError as exc:
        raise ValueError(f"bad klines span {first!r}..{last!r}: {exc}") from None
    if end <= start:
        raise ValueError(f"bad klines span {first!r}..{last!r}: it ends before it starts")
    return start, end


def plan_pages(partition_keys: Iterable[str], last_closed_end: datetime,
               span: tuple[datetime, datetime] | None = None) -> tuple[list[Month], list[Page]]:
    """The months of `partition_keys` (clipped to end at `last_closed_end`, the open time after
    the last closed minute, and to `span` if given) and the pages that fetch them: per symbol,
    months that follow each other are one span, paged every `KLINES_PER_REQUEST` minutes (a year
    is 526 requests, not one per month and a remainder each: 532)."""
    months = []
    for key in sorted(set(map(str, partition_keys)), key=lambda k: month_key_parts(k)[::-1]):
        start, symbol = month_key_parts(key)
        end = min(next_month(start), max(start, last_closed_end))
        if span is not None:
            start, end = max(start, span[0]), min(end, span[1])
            if end <= start:
                continue  # the span does not reach into this month
        months.append(Month(key, symbol, start, end))
    spans: list[list[Month]] = []
    for month in months:
        if spans and spans[-1][-1].symbol == month.symbol and spans[-1][-1].end == month.start:
            spans[-1].append(month)
        else:
            spans.append([month])
    pages = []
    for span in spans:
        cursor, end = span[0].start, span[-1].end
        while cursor < end:
            page_end = min(end, cursor + timedelta(minutes=KLINES_PER_REQUEST))
            pages.append(Page(span[0].symbol, cursor, page_end,
                              [m for m in span if m.start < page_end and cursor < m.end]))
            cursor = page_end
    return months, pages


def stored_by_this_run(context: AssetExecutionContext) -> set[str]:
    """The partitions an earlier attempt of this run's step materialized (none on a first
    attempt): a retried backfill resumes instead of fetching a year again."""
    if context.retry_number == 0:
        return set()
    done: set[str] = set()
    records_filter = AssetRecordsFilter(asset_key=context.asset_key, asset_partitions=list(context.partition_keys))
    cursor = None
    while True:
        result = context.instance.fetch_materializations(records_filter, limit=1000, cursor=cursor)
        done.update(r.partition_key for r in result.records if r.run_id == context.run.run_id and r.partition_key)
        if not result.has_more:
            return done
        cursor = result.cursor


def kline_documents(klines: list[Kline]) -> list[dict]:
    """The stored form of `klines`: the live `klines_1m` asset's frame, through the same handler,
    so the documents (fields, types, unique key) are the ones the minute runs write."""
    return DataFrameHandler().to_documents(pd.DataFrame([vars(k) for k in klines], columns=KLINE_COLUMNS))


def _month_metadata(month: Month) -> dict:
    metadata = {
        "klines": month.rows,
        "minutes": month.minutes,
        "minutes_without_kline": month.minutes - month.rows,
        "first_minute": format_minute(month.first) if month.first else "-",
        "last_minute": format_minute(month.last) if month.last else "-",
        "fetched_up_to": format_minute(month.end),
        "requests": month.requests,
    }
    if month.rows == 0 and month.minutes:
        metadata["note"] = ("the exchange has no kline of this symbol in this month (before it was listed, "
                            "or a halt); nothing was invented and nothing stored was removed")
    elif month.end < next_month(month.start):
        metadata["note"] = ("the month is in progress: klines up to the last closed minute; a later run over "
                            "this month adds the rest")
    return metadata


def _span_metadata(month: Month) -> dict:
    return {
        "klines": month.rows,
        "minutes": month.minutes,
        "minutes_without_kline": month.minutes - month.rows,
        "span": f"{format_minute(month.start)}..{format_minute(month.end - MINUTE)}",
        "requests": month.requests,
        "note": ("a catch-up of these minutes only (klines_history_catch_up_sensor, a gap older than the live minute "
                 "window): stored in klines_1m, the month itself is not marked materialized"),
    }


@asset(
    partitions_def=month_symbol_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    retry_policy=KLINES_HISTORY_RETRY_POLICY,
    output_required=False,
    metadata={COLLECTION_METADATA_KEY: KLINES_1M},
    group_name="history",
    kinds={"python", "mongodb"},
)
def klines_history(context: AssetExecutionContext, exchange: BinanceExchange, mongo: MongoResource,
                   capture_clock: CaptureClock) -> Iterator[AssetMaterialization | AssetObservation]:
    """Binance 1-minute klines (OHLCV, quote volume, trade count, taker-buy volumes) of a symbol's
    month, for any month since the history starts: the backfill of `klines_1m`.

    One partition per UTC month and symbol. To give a symbol added today its last year, open
    *Materialize...* on this asset, pick the symbol and the twelve months: one run fetches them
    all (about 526 requests of 1000 minutes, 2 weight each), and each month turns materialized
    in the partitions view as soon as it is stored. The klines land in `klines_1m`, the
    collection the minute runs write, in the same document per (symbol, minute): a re-run
    replaces them, never duplicates them, and the live and history views agree. The month in
    progress is fetched up to the last closed minute.

    Pacing: the requests go one at a time, and each waits (`klines_budget.pace_klines_request`)
    while the minute's request weight, as the exchange reports it for the whole IP (the minute
    runs' books included), would pass the klines budget (2,880 of 6,000), and during the first
    seconds of each minute, when the minute run takes every book. So the books always find their
    weight, and a year of one symbol (about 1,050 weight) fits in the room the books leave in one
    to a few minutes; many symbols spread over as many minutes as the room requires.

    `klines_history_catch_up_sensor` runs it too, for a klines gap older than the live minute
    window (a daemon down for hours): the run is tagged with the gap's minutes, fetches only those for the
    symbols the minute runs collected, and reports each month as an observation with what it
    stored (not a materialization: the month was not fetched whole).

    Each month's materialization says what was stored: klines, first and last minute, minutes
    without a kline, requests. A month with no kline at all (before the symbol was listed) is
    stored as empty, with a note: nothing is invented. A symbol the exchange does not know is
    refused: its months are marked failed, the run fails saying so, and the other symbols'
    months are stored; nothing already in `klines_1m` is removed. A request that keeps failing
    (the exchange down) fails its month; the step is then retried, resuming after the months
    already stored.
    """
    client = exchange.get_client()
    store = mongo.get_store()
    now = capture_clock.now()
    span = span_of(context.run.tags)
    keys = list(context.partition_keys)
    if span is None:
        done = stored_by_this_run(context)
        if done:
            context.log.info(f"klines_history: retry {context.retry_number}: resuming after the {len(done)} months "
                             "the earlier attempt stored")
        keys = [k for k in keys if k not in done]
    else:
        # The catch-up's span: only symbols a minute run has collected (the range of keys also holds
        # registered symbols between them that the exchange refused, or that are not checked yet).
        tracked = store.tracked_since()
        skipped = sorted({month_key_parts(k)[1] for k in keys} - set(tracked))
        keys = [k for k in keys if month_key_parts(k)[1] in tracked]
        context.log.info(f"klines_history: catch-up of {format_minute(span[0])}..{format_minute(span[1] - MINUTE)} "
                         f"only; {len(skipped)} symbols never collected are left out"
                         + (f" ({', '.join(skipped[:10])})" if skipped else ""))
    months, pages = plan_pages(keys, floor_minute(now - KLINE_SETTLE), span)
    context.log.info(f"klines_history: {len(months)} months of {len({m.symbol for m in months})} symbols, "
                     f"{len(pages)} requests of up to {KLINES_PER_REQUEST} minutes ({len(pages) * KLINES_WEIGHT} "
                     "weight), paced under the klines weight budget")
    remaining = {id(m): sum(1 for p in pages if m in p.months) for m in months}
    refused: dict[str, str] = {}
    transient = False
    requests = 0
    paused = 0.0
    started = time.monotonic()

    def report(month: Month) -> AssetMaterialization | AssetObservation:
        if span is None:
            return AssetMaterialization(asset_key=context.asset_key, partition=month.key,
                                        metadata=_month_metadata(month))
        return AssetObservation(asset_key=context.asset_key, partition=month.key, metadata=_span_metadata(month))

    for month in months:
        if remaining[id(month)] == 0:  # nothing closed yet in the month: an empty, honest month
            yield report(month)
    for index, page in enumerate(pages):
        if page.symbol in refused:
            for month in page.months:
                month.error = month.error or refused[page.symbol]
            continue
        if all(m.error for m in page.months):  # the month failed on an earlier page: not stored whole
            continue
        paused += pace_klines_request(client.gate, weight=KLINES_WEIGHT,
                                      clock=lambda: capture_clock.now().timestamp(), sleep=capture_clock.sleep)
        try:
            klines = client.klines(page.symbol, page.start, page.end, max_attempts=ATTEMPTS_PER_REQUEST)
        except ExchangeError as exc:
            if isinstance(exc, UnknownSymbolError) or not exc.retryable:
                refused[page.symbol] = str(exc)
            else:
                transient = True
            for month in page.months:
                month.error = str(exc)
            context.log.error(f"klines_history: {page.symbol} {format_minute(page.start)}..{format_minute(page.end)} "
                              f"failed: {exc}")
            continue
        requests += 1
        # Most klines of a backfill are new: one insert, then a replace of those already stored
        # (a re-run, the minute runs' own); 2.9x faster than upserts on the embedded server.
        store.insert_or_replace(KLINES_1M, kline_documents(klines))
        for month in page.months:
            month.requests += 1
            month.add([k for k in klines if month.start <= k.minute < month.end])
            remaining[id(month)] -= 1
            if remaining[id(month)] == 0 and month.error is None:
                yield report(month)
                context.log.info(f"klines_history: {month.symbol} {month.start:%Y-%m} stored, {month.rows:,} "
                                 f"klines ({requests}/{len(pages)} requests done)")
        if requests % PROGRESS_EVERY_REQUESTS == 0:
            context.log.info(
                f"klines_history: {index + 1}/{len(pages)} requests ({100 * (index + 1) // len(pages)}%), at "
                f"{page.symbol} {format_minute(page.end)}; {paused:.0f} s paused for the weight budget, "
                f"{time.monotonic() - started:.0f} s so far")
    failed = {m.key: m.error for m in months if m.error}
    summary = {
        "months_stored": len(months) - len(failed),
        "months_failed": MetadataValue.json(failed),
        "klines": sum(m.rows for m in months),
        "requests": requests,
        "weight_used": requests * KLINES_WEIGHT,
        "peak_weight_per_minute_seen": client.gate.max_used_seen,
        "seconds_paused_for_weight": round(paused, 1),
        "seconds": round(time.monotonic() - started, 1),
    }
    # A run summary, beside each month's own materialization (no partition: it is the run's).
    yield AssetObservation(asset_key=context.asset_key, metadata=summary)
    context.log.info(f"klines_history: done, {summary['klines']:,} klines in {requests} requests "
                     f"({summary['weight_used']} weight; the IP's busiest minute reported "
                     f"{summary['peak_weight_per_minute_seen']}), {summary['seconds']} s")
    if failed:
        reasons = sorted(set(failed.values()))
        # Retried (resuming) only for errors that may pass; a refused symbol is refused again.
        raise Failure(
            f"{len(failed)} of {len(months)} months not stored: " + "; ".join(reasons[:3])
            + ". Their partitions are failed; the other months are stored, and nothing stored before was removed",
            metadata={"months_failed": MetadataValue.json(failed)}, allow_retries=transient)


ASSETS = [klines_history]
