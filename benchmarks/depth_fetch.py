"""The minute's order-book fetch: `ExchangeClient.order_books` on asyncio (the exchange
transport: one aiohttp session and connection pool, at most `max_workers` requests in flight, on
the client's own event loop) against the threaded fetch it replaced (python-binance's synchronous
`Client` in a 16-thread pool, kept below as `ThreadedExchangeClient`), both in the same run,
against the offline simulator.

    python benchmarks/depth_fetch.py [--symbols 500] [--rounds 3] [--reuse-client]

- **Simulator**: `python -m acts_simulator` on a free port (`processes.start_simulator`),
  the stand-in for Binance; it runs on the same machine and its CPU is not counted.
- **Symbols**: the first N of the simulator's exchangeInfo (asked with `ExchangeClient.exchange_info`)
  whose status is TRADING.
- **Rounds**: each round fetches the N books once with each design, each fetch at the start of
  its own wall-clock minute, as the platform does at a minute's close: the simulator enforces
  Binance's 6000 weight/min and the client's gate holds requests at 80 % (4800), and 500 books
  of 100 levels weigh 2500, so two fetches do not fit in one minute. The order of the two
  designs alternates from round to round. Rounds take 2 x R minutes.
- **Client**: a fresh `ExchangeClient` per fetch (as each minute's Dagster run process builds
  its own), made before the minute starts; its first-use costs (the event loop, the threads,
  the connections) are inside the timed call. `--reuse-client` keeps one client per design for
  all rounds instead (warm connections).
- **Figures**: `captured_at - start` of each book, `start` being just before `order_books` is
  called (the platform's `start` is the minute's close); time to all books is the wall time of
  the call; client CPU is `time.process_time()` over the call (every thread of this process);
  books per CPU second = books fetched / that CPU. Percentiles are numpy's (linear). "sim CPU"
  is the simulator process's CPU over the same call (`/proc/<pid>/stat`, 10 ms ticks): the
  simulator answers one request at a time, so it bounds how fast any client can get 500 books
  on this machine (and it shares the 2 cores with the client).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import random
import sys
import threading
import time
from datetime import UTC, datetime
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import requests
from binance.client import Client
from binance.exceptions import BinanceAPIException, BinanceRequestException

PROJECT = Path(__file__).resolve().parents[1]
if str(PROJECT) not in sys.path:
    sys.path.insert(0, str(PROJECT))

from acts_pipeline.core.errors import ExchangeError, ExchangeServerError  # noqa: E402
from acts_pipeline.exchange import (  # noqa: E402
    DEFAULT_MAX_IN_FLIGHT,
    ExchangeClient,
    TimedBook,
    WeightGate,
    depth_weight,
)
from acts_pipeline.core.parsing import parse_depth  # noqa: E402
from acts_pipeline.settings import DEFAULT_DEPTH_LIMIT  # noqa: E402
from acts_pipeline.platform.processes import simulator_api_url, start_simulator  # noqa: E402

DEADLINE_SECONDS = 10.0  # the platform's default capture tolerance
OLD, NEW = "threaded (old)", "asyncio (new)"


class ThreadedExchangeClient:
    """The baseline: the threaded fetch of the books before the asyncio path, kept here since the
    product no longer has a synchronous request path. Each of `max_workers` (16) pool threads
    fetches one book after the other with python-binance's synchronous `Client` (requests; one
    client per thread, since `Client.response` holds the last response's weight header), through
    the product's weight gate, retried with the product's backoff until the deadline. Reduced to
    what is measured here: every failure is an `ExchangeServerError` (the benchmark sees none)."""

    def __init__(self, api_url: str, *, max_workers: int = 16, depth_limit: int = DEFAULT_DEPTH_LIMIT,
                 timeout_seconds: float = 5.0):
        self.api_url = api_url.rstrip("/")
        self.max_workers = max_workers
        self.depth_limit = depth_limit
        self.timeout_seconds = timeout_seconds
        self.gate = WeightGate()
        self._local = threading.local()
        self._clients: list[Client] = []
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None

    def _client(self) -> Client:
        client = getattr(self._local, "client", None)
        if client is None:
            client = Client(ping=False, requests_params={"timeout": self.timeout_seconds})
            client.API_URL = self.api_url
            self._local.client = client
            with self._lock:
                self._clients.append(client)
        return client

    def _workers(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=self.max_workers, thread_name_prefix="acts-depth")
            return self._pool

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)
        with self._lock:
            for client in self._clients:
                client.session.close()
            self._clients.clear()

    def order_book(self, symbol: str, *, deadline: float | None, max_attempts: int) -> TimedBook:
        delay = 0.2
        for number in range(1, max_attempts + 1):
            try:
                self.gate.acquire(depth_weight(self.depth_limit), deadline=deadline, symbol=symbol)
                client = self._client()
                timeout = self.timeout_seconds
                if deadline is not None:
                    timeout = max(0.01, min(timeout, deadline - time.time()))
                requested_at = datetime.now(UTC)
                body = client.get_order_book(symbol=symbol, limit=self.depth_limit,
                                             requests_params={"timeout": timeout})
                captured_at = datetime.now(UTC)
                self.gate.observe(getattr(client.response, "headers", None))
                return TimedBook(parse_depth(body, symbol), requested_at, captured_at, number)
            except (ExchangeError, BinanceAPIException, BinanceRequestException,
                    requests.RequestException) as exc:
                wait = delay * random.uniform(0.5, 1.5)
                if number == max_attempts or (deadline is not None and time.time() + wait >= deadline):
                    if isinstance(exc, ExchangeError):
                        raise
                    raise ExchangeServerError(f"{symbol}: {type(exc).__name__}", symbol=symbol) from None
                time.sleep(wait)
                delay *= 2
        raise AssertionError("unreachable")

    def order_books(self, symbols: Iterable[str], *, deadline: float | None = None,
                    max_attempts: int = 6) -> dict[str, TimedBook | ExchangeError]:
        symbols = list(symbols)

        def one(symbol: str) -> TimedBook | ExchangeError:
            try:
                return self.order_book(symbol, deadline=deadline, max_attempts=max_attempts)
            except ExchangeError as exc:
                return exc

        if not symbols:
            return {}
        return dict(zip(symbols, self._workers().map(one, symbols), strict=True))


@dataclass
class Fetch:
    design: str
    round: int
    asked: int
    books: int
    seconds: float
    cpu: float
    sim_cpu: float
    lateness: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)


def wait_for_next_minute() -> None:
    time.sleep(60.0 - time.time() % 60 + 0.001)


def process_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def fetch(client: ExchangeClient | ThreadedExchangeClient, design: str, number: int, symbols: list[str], simulator_pid: int) -> Fetch:
    sim_cpu = process_cpu_seconds(simulator_pid)
    start = time.time()
    cpu = time.process_time()
    results = client.order_books(symbols, deadline=start + DEADLINE_SECONDS)
    cpu = time.process_time() - cpu
    seconds = time.time() - start
    sim_cpu = process_cpu_seconds(simulator_pid) - sim_cpu
    lateness = [r.captured_at.timestamp() - start for r in results.values() if isinstance(r, TimedBook)]
    errors: dict[str, int] = {}
    for result in results.values():
        if isinstance(result, ExchangeError):
            errors[type(result).__name__] = errors.get(type(result).__name__, 0) + 1
    return Fetch(design, number, len(symbols), len(lateness), seconds, cpu, sim_cpu, lateness, errors)


def pooled(fetches: list[Fetch], design: str) -> Fetch:
    mine = [f for f in fetches if f.design == design]
    return Fetch(design, 0, sum(f.asked for f in mine), sum(f.books for f in mine),
                 float(np.mean([f.seconds for f in mine])), sum(f.cpu for f in mine), sum(f.sim_cpu for f in mine),
                 [x for f in mine for x in f.lateness],
                 {k: sum(f.errors.get(k, 0) for f in mine) for f in mine for k in f.errors})


def figures(f: Fetch) -> dict[str, float]:
    lateness = np.array(f.lateness) if f.lateness else np.array([np.nan])
    p50, p90, p99 = np.percentile(lateness, [50, 90, 99])
    return {"seconds": f.seconds, "p50": p50, "p90": p90, "p99": p99, "max": lateness.max(),
            "cpu": f.cpu, "books/cpu-s": f.books / f.cpu if f.cpu else float("nan"), "sim": f.sim_cpu}


def row(label: str, f: Fetch) -> str:
    x = figures(f)
    errors = ", ".join(f"{k} {v}" for k, v in sorted(f.errors.items())) or "-"
    return (f"{label:<24} {f.books:>5}/{f.asked:<5} {x['seconds']:>8.3f} {x['p50']:>7.3f} {x['p90']:>7.3f} "
            f"{x['p99']:>7.3f} {x['max']:>7.3f} {x['cpu']:>7.2f} {x['books/cpu-s']:>11.0f} {x['sim']:>7.2f}  {errors}")


def version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--symbols", type=int, default=500, help="books per fetch (TRADING symbols)")
    parser.add_argument("--rounds", type=int, default=3, help="fetches per design, one per minute")
    parser.add_argument("--max-workers", type=int, default=None,
                        help="requests in flight of the asyncio path (default: the product's, 32)")
    parser.add_argument("--baseline-workers", type=int, default=16, help="threads of the old path")
    parser.add_argument("--reuse-client", action="store_true", help="one client per design for all rounds")
    args = parser.parse_args()

    load_start = load_average()
    simulator = start_simulator()
    api_url = simulator_api_url(simulator)
    makers = {
        OLD: lambda: ThreadedExchangeClient(api_url, max_workers=args.baseline_workers),
        NEW: lambda: (ExchangeClient(api_url, max_workers=args.max_workers) if args.max_workers
                      else ExchangeClient(api_url)),
    }
    kept: dict[str, ExchangeClient | ThreadedExchangeClient] = {}
    fetches: list[Fetch] = []
    try:
        info_client = ExchangeClient(api_url)
        try:
            info = info_client.exchange_info()
        finally:
            info_client.close()
        symbols = [name for name, symbol in info.items() if symbol.status == "TRADING"][:args.symbols]
        if len(symbols) < args.symbols:
            raise SystemExit(f"only {len(symbols)} TRADING symbols in the simulator's exchangeInfo")
        new_workers = args.max_workers or DEFAULT_MAX_IN_FLIGHT
        print(f"{len(symbols)} TRADING symbols, depth limit {info_client.depth_limit}, {args.rounds} round(s), "
              f"{'one client per design for all rounds' if args.reuse_client else 'a fresh client per fetch'}; "
              f"old: {args.baseline_workers} threads, new: {new_workers} requests in flight", flush=True)
        for number in range(1, args.rounds + 1):
            order = (OLD, NEW) if number % 2 else (NEW, OLD)
            for design in order:
                if args.reuse_client:
                    client = kept.setdefault(design, makers[design]())
                else:
                    client = makers[design]()
                wait_for_next_minute()
                try:
                    result = fetch(client, design, number, symbols, simulator.process.pid)
                finally:
                    if not args.reuse_client:
                        client.close()
                fetches.append(result)
                print(f"  round {number}, {design}: {result.books} books in {result.seconds:.3f} s", flush=True)
    finally:
        for client in kept.values():
            client.close()
        simulator.stop()
    load_end = load_average()

    print()
    print(f"machine: {os.cpu_count()} cores (nproc), load average at start {load_start}, at end {load_end}")
    print(f"python {sys.version.split()[0]}, python-binance {version('python-binance')}, "
          f"aiohttp {version('aiohttp')}, requests {version('requests')}, numpy {np.__version__}")
    print()
    header = (f"{'fetch':<24} {'books':>11} {'all (s)':>8} {'p50':>7} {'p90':>7} {'p99':>7} {'max':>7} "
              f"{'CPU s':>7} {'books/CPU-s':>11} {'sim CPU':>7}  errors")
    print("captured_at - start, seconds; all = time to all books (the call's wall time); CPU = client process")
    print(header)
    print("-" * len(header))
    for f in fetches:
        print(row(f"{f.design} #{f.round}", f))
    print("-" * len(header))
    old, new = pooled(fetches, OLD), pooled(fetches, NEW)
    print(row(f"{OLD} all", old))
    print(row(f"{NEW} all", new))
    a, b = figures(old), figures(new)
    ratios = "  ".join(f"{key} {b[key] / a[key]:.2f}" for key in ("seconds", "p50", "p90", "p99", "max", "cpu",
                                                                 "books/cpu-s"))
    print(f"ratios new/old (pooled; 'all' is the mean over rounds): {ratios}")
    print(f"target at {args.symbols} symbols: p50 <= 0.3 s, p99 <= 1.0 s -> new p50 {b['p50']:.3f} s, "
          f"p99 {b['p99']:.3f} s: {'met' if b['p50'] <= 0.3 and b['p99'] <= 1.0 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
