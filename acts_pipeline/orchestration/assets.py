"""The three assets of the minute graph. Each is thin: the exchange client fetches, the feature
module computes, the MongoDB I/O manager stores. Their docstrings are what the Dagster UI shows.

All three are partitioned by minute x symbol and run a whole partition range in one step
(`BackfillPolicy.single_run()`): the minute run covers every registered symbol, and a backfill of
days is a handful of runs, not one per cell.
"""


from collections import defaultdict
from datetime import datetime, timedelta

import pandas as pd
from dagster import (
    AssetExecutionContext,
    AssetObservation,
    Backoff,
    BackfillPolicy,
    Failure,
    Jitter,
    MetadataValue,
    RetryPolicy,
    asset,
)

from acts_pipeline.orchestration.capture import CaptureClock
from acts_pipeline.core.errors import ExchangeError, TooLateError
from acts_pipeline.exchange import BinanceExchange, klines_weight
from acts_pipeline.orchestration.klines_budget import pace_klines_request
from acts_pipeline.core.features import compute_features
from acts_pipeline.core.models import OrderBook, OrderBookSnapshot
from acts_pipeline.orchestration.book_source import BookSource
from acts_pipeline.storage.client import StorageError
from acts_pipeline.storage.collections import KLINES_1M, ORDER_BOOK_FEATURES, ORDER_BOOK_SNAPSHOTS, boundary_book_usable
from acts_pipeline.storage.handlers import as_utc, levels_from_binary
from acts_pipeline.storage.io_manager import COLLECTION_METADATA_KEY
from acts_pipeline.storage.ui_metadata import minute_table
from acts_pipeline.core.cells import Cell, cells_of, format_minute, minute_close
from acts_pipeline.orchestration.partitions import minute_symbol_partitions

#: Retries of a whole step, after the client's own per-request retries gave up. Short and
#: jittered, so a retried snapshot still lands inside the capture tolerance; a retry that would
#: not is refused by `CaptureClock` with a message, not run late.
EXCHANGE_RETRY_POLICY = RetryPolicy(max_retries=2, delay=0.5, backoff=Backoff.EXPONENTIAL, jitter=Jitter.PLUS_MINUS)
#: Klines only close with the minute; give the exchange a moment to seal the candle.
KLINE_SETTLE = timedelta(seconds=1)


def _minutes(cells: list[Cell]) -> dict[datetime, list[str]]:
    by_minute: dict[datetime, list[str]] = defaultdict(list)
    for cell in cells:
        by_minute[cell.minute].append(cell.symbol)
    return dict(sorted(by_minute.items()))


@asset(
    partitions_def=minute_symbol_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    retry_policy=EXCHANGE_RETRY_POLICY,
    metadata={COLLECTION_METADATA_KEY: ORDER_BOOK_SNAPSHOTS},
    # In a minute run the in-process executor starts the highest priority first: the book must
    # be taken at the close, before klines and features use the run's time.
    op_tags={"dagster/priority": "10"},
    group_name="binance_spot",
    kinds={"python", "mongodb"},
)
def order_book_snapshot(
    context: AssetExecutionContext, exchange: BinanceExchange, capture_clock: CaptureClock, book_source: BookSource
) -> list[OrderBookSnapshot]:
    """The Binance Spot order book of each symbol at the close of each minute.

    One document per (minute, symbol) in `order_book_snapshots`: up to `ACTS_DEPTH_LIMIT` bid
    and ask levels as `[price, qty]` (best first), Binance's `last_update_id`, and where the book
    came from (`source`):

    - `stream` (with `ACTS_BOOK_SOURCE=stream`): the stream recorder's book at the close, every
      diff event with event time at or before it applied and none after; `event_time` is that of
      the last event applied, `captured_at` when the recorder had the book final. Past minutes
      inside the recorder's retention can be materialized again (backfilled) from these books.
    - `rest`: fetched right after the close (all symbols concurrently), with the honest
      `requested_at` / `captured_at` of the request; never later than the capture tolerance.
      In the stream design, the fallback of a symbol the recorder could not vouch for.

    A minute neither source has stays missing, with the reason: nothing is invented. A stream
    book the recorder withdraws after it was stored (it learnt the book may be wrong) is deleted,
    with its features, by the next run over its cell (`snapshot_catch_up_sensor` requests it).

    Reading the partitions view: a stored cell is materialized, and its metadata shows the
    book's best bid and ask, mid, spread in bps, level counts and lateness. Grey cells are
    minutes with no book: those of the window before a symbol was first collected (the window
    reaches hours back, before the platform started: expected, not a fault), and missed minutes.
    A cell that failed has an observation `failed_to_materialize` saying why, and the check
    `snapshots_are_complete` counts the missing cells since each symbol's first minute.
    """
    snapshots: list[OrderBookSnapshot] = []
    failures: dict[str, str] = {}
    streams = book_source.streams()
    from_stream = withdrawn = 0
    for minute, symbols in _minutes(cells_of(context.partition_keys)).items():
        unvouched: dict[str, str] = {}
        if streams:
            if capture_clock.now() < minute_close(minute):
                capture_clock.wait_for_close(minute)
            try:
                alive = book_source.recorder_down(book_source.recorder_status(), capture_clock.now()) is None
                documents = book_source.boundary_books(
                    minute, symbols, wait_until=book_source.wait_deadline(minute) if alive else None)
                missing = ("the stream recorder stored no book for this close" if alive
                           else "the stream recorder is not running")
            except StorageError as exc:
                # MongoDB is down at the close: the recorder's books cannot be read (its own are
                # spooled), but REST can still take every book within the tolerance, and the
                # write is spooled too. Found by the stream soak: the step failed on the read and
                # was retried past the tolerance, losing the books the recorder had no book for.
                documents, missing = {}, f"the recorder's books could not be read: {exc}"
            for symbol in symbols:
                document = documents.get(symbol)
                if boundary_book_usable(document):
                    snapshots.append(_stream_snapshot(document))
                    from_stream += 1
                else:
                    unvouched[symbol] = (document or {}).get("reason") or missing
            # A book the recorder published, a run stored, and the recorder then withdrew (an
            # event of the close came late, a gap showed events missing): the stored cell is wrong
            # and goes, with its features (the catch-up sensor requests these runs).
            revised = [s for s in unvouched if (documents.get(s) or {}).get("revised")]
            for symbol in book_source.withdraw(minute, revised) if revised else []:
                context.log.warning(f"{format_minute(minute)}|{symbol}: the stored book was withdrawn by the "
                                    f"recorder ({unvouched[symbol]}); deleted with its features")
                withdrawn += 1
            rest_symbols = list(unvouched)
        else:
            rest_symbols = symbols
        if not rest_symbols:
            continue
        try:
            capture_clock.wait_for_close(minute)
        except TooLateError as exc:
            if not streams:
                raise Failure(str(exc), allow_retries=False) from None
            failures.update({f"{format_minute(minute)}|{s}": f"{unvouched[s]}; {exc}" for s in rest_symbols})
            continue
        client = exchange.get_client()
        deadline = capture_clock.deadline(minute).timestamp()
        results = client.order_books(rest_symbols, deadline=deadline)
        for symbol, result in results.items():
            if isinstance(result, ExchangeError):
                failures[f"{format_minute(minute)}|{symbol}"] = str(result)
                continue
            snapshots.append(OrderBookSnapshot(
                symbol=symbol, minute=minute, requested_at=result.requested_at,
                captured_at=result.captured_at, depth_limit=client.depth_limit, book=result.book))
        lateness = [(s.captured_at - minute_close(minute)).total_seconds() for s in snapshots
                    if s.minute == minute and s.source == "rest"]
        if lateness:
            context.log.info(
                f"{format_minute(minute)}: {len(lateness)}/{len(rest_symbols)} books over REST"
                + (f" (the recorder had no book for {len(unvouched)})" if unvouched else "")
                + f", captured {min(lateness):.3f}..{max(lateness):.3f} s after the close")
    for cell, message in failures.items():
        context.log.error(f"no book for {cell}: {message}")
    if not snapshots:
        raise Failure(f"no order book could be taken: {next(iter(failures.values()), 'no partitions')}")
    context.add_output_metadata({
        "books": len(snapshots),
        "books_from_stream": from_stream,
        "books_over_rest": len(snapshots) - from_stream,
        "books_withdrawn": withdrawn,
        "failed_cells": MetadataValue.json(failures),
        "max_lateness_s": max((s.captured_at - minute_close(s.minute)).total_seconds() for s in snapshots),
    })
    return snapshots


def _stream_snapshot(document: dict) -> OrderBookSnapshot:
    """A snapshot of the recorder's boundary book: in hand (`captured_at`) when it was decided."""
    decided = as_utc(document["decided_at"])
    return OrderBookSnapshot(
        symbol=document["symbol"], minute=as_utc(document["minute"]), requested_at=decided, captured_at=decided,
        depth_limit=int(document["depth_limit"]),
        book=OrderBook(document["symbol"], int(document["last_update_id"]), levels_from_binary(document["bids"]),
                       levels_from_binary(document["asks"])),
        source="stream", event_time=as_utc(document["event_time"]))


@asset(
    partitions_def=minute_symbol_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    metadata={COLLECTION_METADATA_KEY: ORDER_BOOK_FEATURES},
    group_name="binance_spot",
    kinds={"python", "pandas", "mongodb"},
)
def order_book_features(context: AssetExecutionContext, order_book_snapshot: list[OrderBookSnapshot]) -> pd.DataFrame:
    """Order-book features of each stored snapshot: top of book, spread, weighted mid, bid/ask
    quantities and bias over the best 1..100 levels, notional and bias within 10/50/100 bps of
    the mid, level counts and a crossed-book flag (formulas in the README).

    A pure function of `order_book_snapshots`, so any stored range can be backfilled without
    touching the exchange; cells with no stored snapshot get no features. A run of one minute
    (the minute runs) also shows that minute's symbols as one table (`market`, in the asset's
    events).
    """
    features = compute_features(order_book_snapshot)
    have = {Cell(s.minute, s.symbol) for s in order_book_snapshot}
    cells = cells_of(context.partition_keys)
    context.add_output_metadata({"failed_cells": MetadataValue.json(
        {str(c): "no snapshot is stored for this cell (see order_book_snapshot)" for c in cells if c not in have})})
    minutes = {c.minute for c in cells}
    if len(minutes) == 1 and not features.empty:
        context.log_event(AssetObservation(asset_key=context.asset_key, metadata=minute_table(
            minutes.pop(), features.to_dict("records"))))
    return features


@asset(
    partitions_def=minute_symbol_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    retry_policy=EXCHANGE_RETRY_POLICY,
    metadata={COLLECTION_METADATA_KEY: KLINES_1M},
    group_name="binance_spot",
    kinds={"python", "pandas", "mongodb"},
)
def klines_1m(context: AssetExecutionContext, exchange: BinanceExchange, capture_clock: CaptureClock) -> pd.DataFrame:
    """Binance 1-minute candles (OHLCV, quote volume, trade count, taker-buy volumes).

    One document per (minute, symbol) in `klines_1m`, keyed by the candle's open time. Any past
    range can be backfilled: each symbol's contiguous minutes are fetched 1000 per request, so a
    day is two requests per symbol. Only closed candles are stored; a minute the exchange has no
    candle for stays absent. Requests yield to the minute's books: none in the first seconds of
    a minute, and none past a share of the minute's request weight (`klines_budget`), so a large
    backfill is spread over minutes rather than crowding the books out.
    """
    client = exchange.get_client()
    cells = cells_of(context.partition_keys)
    wanted = set(cells)
    last_close = minute_close(max(c.minute for c in cells))
    while capture_clock.now() < last_close + KLINE_SETTLE:
        capture_clock.sleep(min(1.0, (last_close + KLINE_SETTLE - capture_clock.now()).total_seconds()))

    rows = []
    failures: dict[str, str] = {}
    errors: list[ExchangeError] = []
    paused = 0.0
    for symbol, minutes in _contiguous_minutes(cells).items():
        for start, end in minutes:
            paused += pace_klines_request(client.gate, weight=klines_weight(start, end),
                                          clock=lambda: capture_clock.now().timestamp(), sleep=capture_clock.sleep)
            try:
                rows.extend(k for k in client.klines(symbol, start, end) if Cell(k.minute, symbol) in wanted)
            except ExchangeError as exc:
                errors.append(exc)
                # That symbol's cells alone fail (a refused symbol, or retries spent); the
                # others are stored, and the catch-up sensor fetches failed minutes again.
                failures.update({str(c): str(exc) for c in cells if c.symbol == symbol and start <= c.minute < end})
                context.log.error(f"no klines for {symbol} {format_minute(start)}..{end:%H:%M}: {exc}")
    if failures and not rows:
        raise Failure(f"no kline could be fetched: {next(iter(failures.values()))}",
                      allow_retries=any(e.retryable for e in errors))
    missing = len(wanted) - len(rows) - len(failures)
    context.add_output_metadata({"klines": len(rows), "minutes_without_kline": missing,
                                 "failed_cells": MetadataValue.json(failures),
                                 "seconds_paused_for_weight": round(paused, 1)})
    if missing:
        context.log.warning(f"the exchange returned no kline for {missing} of {len(wanted)} cells")
    return pd.DataFrame([vars(k) for k in rows], columns=KLINE_COLUMNS)


KLINE_COLUMNS = ["symbol", "minute", "open", "high", "low", "close", "volume", "quote_volume", "trades",
                 "taker_buy_base_volume", "taker_buy_quote_volume"]


def _contiguous_minutes(cells: list[Cell]) -> dict[str, list[tuple[datetime, datetime]]]:
    """Per symbol, the [start, end) spans of consecutive minutes among `cells`."""
    spans: dict[str, list[tuple[datetime, datetime]]] = defaultdict(list)
    for cell in sorted(cells, key=lambda c: (c.symbol, c.minute)):
        runs = spans[cell.symbol]
        if runs and runs[-1][1] == cell.minute:
            runs[-1] = (runs[-1][0], minute_close(cell.minute))
        else:
            runs.append((cell.minute, minute_close(cell.minute)))
    return dict(spans)
