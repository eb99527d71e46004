"""klines_history: one symbol x 12 months of 1-minute klines, against the simulator and the embedded
database, beside a stand-in for the live minute runs' books.

    python benchmarks/klines_history.py [--months 12] [--books 500] [--symbol NKNUSDT]

What it does, all on this machine:
1. starts the offline exchange simulator and the embedded MongoDB-compatible server (each its own
   process);
2. starts the stand-in of the minute runs: at each minute boundary, `--books` order books of 100
   levels (5 weight each; 500 books are 2,500 weight, what 500 symbols' minute run takes) over a
   client of its own, the simulator counting both clients' weight as Binance counts an IP's;
3. materializes `klines_history` in process for the last `--months` closed months of one symbol
   (one run, as the UI's backfill of those partitions launches it), with the code location's
   resources;
4. as the baseline, fetches the same pages with the bare client, no pacing, no storage: what the
   exchange alone costs.

It prints: requests, weight, the weight per minute as the simulator reported it (peak, books
included), the books' minutes (all served? time to all books) during the backfill and before it,
seconds paused for the weight budget, and wall seconds (backfill, fetch-only baseline, ratio).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._platform import print_grid, print_run_header, symbols_for  # noqa: E402


class MinuteBooks(threading.Thread):
    """At each minute boundary, every book at once (the minute run's REST burst); per minute: books
    served, seconds to all of them, and the weight the exchange reported at the end."""

    def __init__(self, api_url: str, symbols: list[str]):
        super().__init__(daemon=True)
        from acts_pipeline.exchange import ExchangeClient

        self.client = ExchangeClient(api_url)
        self.symbols = symbols
        self.minutes: list[dict] = []
        self.stop = threading.Event()
        self.backfilling = False

    def run(self) -> None:
        while not self.stop.is_set():
            time.sleep(60 - time.time() % 60 + 0.05)
            if self.stop.is_set():
                break
            started = time.time()
            results = self.client.order_books(self.symbols, deadline=started + 10)
            took = time.time() - started
            ok = sum(1 for r in results.values() if not isinstance(r, Exception))
            self.minutes.append({"minute": datetime.fromtimestamp(started, UTC).strftime("%H:%M"), "books": ok,
                                 "failed": len(results) - ok, "seconds": round(took, 3),
                                 "backfilling": self.backfilling})

    def close(self) -> None:
        self.stop.set()
        self.client.close()


def last_closed_months(count: int) -> list[str]:
    now = datetime.now(UTC)
    year, month = now.year, now.month
    months = []
    for _ in range(count):
        month -= 1
        if month == 0:
            year, month = year - 1, 12
        months.append(f"{year:04d}-{month:02d}-01")
    return sorted(months)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--books", type=int, default=500, help="books fetched at each minute boundary (0: none)")
    parser.add_argument("--symbol", default="NKNUSDT")
    args = parser.parse_args()
    print_run_header("klines_history.py", sys.argv[1:])

    from acts_devkit.servers import start_test_mongo
    from dagster import DagsterInstance, materialize

    from acts_pipeline.exchange import BinanceExchange, ExchangeClient
    from acts_pipeline.orchestration.capture import CaptureClock
    from acts_pipeline.orchestration.history_klines import klines_history, plan_pages
    from acts_pipeline.platform.processes import mongo_uri_of
    from acts_pipeline.storage import MongoResource
    from acts_pipeline_tests.servers_simulator import running_simulator

    base = Path(tempfile.mkdtemp(prefix="klines-history-"))
    mongo_server = start_test_mongo(base / "data", log_path=base / "secantusd.log")
    try:
        with running_simulator() as simulator:
            books = MinuteBooks(simulator.api_url, symbols_for(args.books)) if args.books else None
            if books:
                books.start()
                # one minute of books alone first: the minute runs' baseline
                time.sleep(60 - time.time() % 60 + 5)
            months = last_closed_months(args.months)
            mongo = MongoResource(uri=mongo_uri_of(mongo_server), database="bench")
            with DagsterInstance.ephemeral() as instance:
                instance.add_dynamic_partitions("symbols", [args.symbol])
                if books:
                    books.backfilling = True
                started = time.perf_counter()
                result = materialize(
                    [klines_history], instance=instance,
                    tags={"dagster/asset_partition_range_start": f"{months[0]}|{args.symbol}",
                          "dagster/asset_partition_range_end": f"{months[-1]}|{args.symbol}"},
                    resources={"exchange": BinanceExchange(api_url=simulator.api_url, spool_dir=str(base / "spool")),
                               "mongo": mongo, "capture_clock": CaptureClock()})
                wall = time.perf_counter() - started
                if books:
                    books.backfilling = False
                    time.sleep(60 - time.time() % 60 + 5)  # the minute after the backfill too
                    books.close()
            assert result.success, "the backfill failed"
            observation = next(e for e in result.all_events if e.event_type_value == "ASSET_OBSERVATION")
            summary = {k: v.value for k, v in observation.event_specific_data.asset_observation.metadata.items()}
            stored = mongo.get_store().collection("klines_1m").count_documents({"symbol": args.symbol})

            # the baseline: the same pages, the bare client, no pacing, no storage
            _, pages = plan_pages([f"{m}|{args.symbol}" for m in months], datetime.now(UTC))
            client = ExchangeClient(simulator.api_url)
            started = time.perf_counter()
            fetched = sum(len(client.klines(args.symbol, p.start, p.end)) for p in pages)
            fetch_only = time.perf_counter() - started
            client.close()
    finally:
        mongo_server.stop()

    print(f"\n{args.symbol} x {args.months} months ({months[0]} .. {months[-1]}), "
          f"{args.books} books at each minute boundary\n")
    print_grid(["figure", "value"], [
        ["klines stored", f"{stored:,}"],
        ["requests", summary["requests"]],
        ["weight used by the backfill", summary["weight_used"]],
        ["peak weight per minute reported by the exchange (books included)", summary["peak_weight_per_minute_seen"]],
        ["seconds paused for the weight budget", summary["seconds_paused_for_weight"]],
        ["backfill wall seconds (fetch + store, one run)", round(wall, 1)],
        ["baseline: the same pages fetched only, bare client (s)", round(fetch_only, 1)],
        ["ratio backfill / fetch only", f"{wall / fetch_only:.1f}x"],
    ])
    assert fetched == stored, (fetched, stored)
    if books:
        print("\nThe minute runs' stand-in: every book at each minute boundary\n")
        print_grid(["minute", "backfill running", "books served", "books failed", "s to all books"],
                   [[m["minute"], "yes" if m["backfilling"] else "no", m["books"], m["failed"], m["seconds"]]
                    for m in books.minutes])


if __name__ == "__main__":
    main()
