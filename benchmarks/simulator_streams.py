"""The simulator's diff-depth streams: what streaming every book costs the simulator, how much
memory the truth's checkpoints take, and what a REST depth request costs now that the book is
one evolving state instead of a template redrawn every 100 ms.

    python benchmarks/simulator_streams.py [--symbols 500,1262] [--seconds 60] [--retention-minutes 30]

- **Streaming**: for each N, a fresh `python -m acts_simulator` (`processes.start_simulator`) and
  a consumer in this process: 2 websocket connections (aiohttp), each a combined stream of N/2
  `<symbol>@depth@100ms` (the first N TRADING symbols), every message parsed and its levels
  counted. After a 5 s warm-up, for `--seconds`: the simulator's CPU (`/proc/<pid>/stat`, 10 ms
  ticks) as core-seconds per minute, its peak RSS (`VmHWM`, over its whole life), messages and
  levels a second received. Baseline in the same run: the same simulator, idle (no connection, no
  book touched), over the same time, measured first.
- **Truth memory**: a `Market` in this process on a simulated clock, all 1262 books born at one
  epoch and advanced second by second through `--retention-minutes` + 1 minutes, so every book
  holds a full retention of checkpoints. Figures: this process's RSS growth (`VmRSS`), the
  checkpoints kept, the CPU per simulated minute (the events' generation alone) and per event.
- **REST depth cost**: `Market.depth_json(symbol, 100)` (what `GET /api/v3/depth` sends) in this
  process, over the first 500 TRADING symbols, 5 rounds each after a warm one, for the market of
  the commit before the evolving books (loaded from git: the template rescaled and redrawn per
  100 ms slot) and for today's; microseconds of CPU per request, and the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

PROJECT = Path(__file__).resolve().parents[1]
if str(PROJECT) not in sys.path:
    sys.path.insert(0, str(PROJECT))

from benchmarks._platform import (  # noqa: E402
    CLK_TCK,
    log,
    print_grid,
    print_run_header,
    read_hwm,
    read_rss,
    read_stat,
)
from acts_pipeline.platform.processes import start_simulator  # noqa: E402
from acts_simulator.market import Market, load_captures  # noqa: E402

WARM_UP_SECONDS = 5.0


def cpu_seconds(pid: int) -> float:
    sample = read_stat(pid)
    return sample.own_ticks / CLK_TCK if sample else float("nan")


# ---- streaming ------------------------------------------------------------------------------------


async def consume(ws_url: str, symbols: list[str], seconds: float, pid: int) -> dict[str, float]:
    halves = [symbols[: len(symbols) // 2], symbols[len(symbols) // 2:]]
    counts = {"messages": 0, "levels": 0}
    measuring = asyncio.Event()

    async def reader(ws: aiohttp.ClientWebSocketResponse) -> None:
        async for message in ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                break
            if measuring.is_set():
                data = json.loads(message.data)["data"]
                counts["messages"] += 1
                counts["levels"] += len(data["b"]) + len(data["a"])

    async with aiohttp.ClientSession() as session:
        sockets = [await session.ws_connect(f"{ws_url}/stream?streams=" + "/".join(f"{s.lower()}@depth@100ms" for s in half),
                                            max_msg_size=0) for half in halves]
        readers = [asyncio.create_task(reader(ws)) for ws in sockets]
        await asyncio.sleep(WARM_UP_SECONDS)
        measuring.set()
        cpu_start, started = cpu_seconds(pid), time.monotonic()
        await asyncio.sleep(seconds)
        cpu_end, elapsed = cpu_seconds(pid), time.monotonic() - started
        measuring.clear()
        for ws in sockets:
            await ws.close()
        for task in readers:
            task.cancel()
    return {"cpu_per_min": (cpu_end - cpu_start) / elapsed * 60, "messages_s": counts["messages"] / elapsed,
            "levels_s": counts["levels"] / elapsed}


def streaming_row(count: int, seconds: float, symbols: list[str]) -> list:
    simulator = start_simulator()
    try:
        pid, port = simulator.process.pid, simulator.port
        time.sleep(1.0)
        cpu_start, started = cpu_seconds(pid), time.monotonic()
        time.sleep(min(seconds, 20.0))
        idle = (cpu_seconds(pid) - cpu_start) / (time.monotonic() - started) * 60
        log(f"{count} symbols: idle {idle:.2f} core-s/min; streaming {seconds:.0f} s")
        figures = asyncio.run(consume(f"ws://127.0.0.1:{port}", symbols[:count], seconds, pid))
        hwm = read_hwm(pid)
    finally:
        simulator.stop()
    return [count, f"{idle:.2f}", f"{figures['cpu_per_min']:.2f}", f"{figures['cpu_per_min'] / 60:.3f}",
            f"{hwm / 2**20:.0f}", f"{figures['messages_s']:.0f}", f"{figures['levels_s']:.0f}",
            f"{figures['levels_s'] / max(figures['messages_s'], 1e-9):.2f}"]


# ---- the truth's memory -----------------------------------------------------------------------------


def truth_memory(retention_minutes: float) -> list:
    epoch = 1_780_272_000.0
    now = [epoch]
    market = Market(load_captures(), seed=0, clock=lambda: now[0], epoch=epoch,
                    retention_seconds=retention_minutes * 60)
    symbols = market.trading_symbols
    for symbol in symbols:  # the models (per-symbol constants) before the baseline
        market.event_rate(symbol)
    rss_before = read_rss(_self_pid())
    for symbol in symbols:
        market.watch(symbol)
        market.unwatch(symbol)
    cpu_start = time.process_time()
    minutes = int(retention_minutes) + 1
    for second in range(1, minutes * 60 + 1):
        now[0] = epoch + second
        market.advance_all(int(now[0] * 1000))
    cpu = time.process_time() - cpu_start
    rss_after = read_rss(_self_pid())
    tracks = market._tracks.values()
    checkpoints = sum(len(t.checkpoints) for t in tracks)
    fulls = sum(1 for t in tracks for c in t.checkpoints if c.full is not None)
    events = sum(t.state.u for t in tracks) - sum(t.checkpoints[0].u for t in tracks)  # update ids, >= events
    check = market.true_book("NKNUSDT", int((epoch + 60 * (minutes - retention_minutes + 0.5)) * 1000), 5)
    assert check["bids"], "the oldest retained instant is served"
    return [len(symbols), f"{retention_minutes:.0f}", f"{(rss_after - rss_before) / 2**20:.0f}",
            f"{rss_after / 2**20:.0f}", checkpoints, fulls, f"{cpu / minutes:.2f}",
            f"{cpu / max(events, 1) * 1e6:.1f}"]


def _self_pid() -> int:
    import os

    return os.getpid()


# ---- REST depth cost ------------------------------------------------------------------------------


def baseline_market_class():
    """`Market` of the commit before `acts_simulator/book.py` existed (the template redrawn per slot)."""
    added = subprocess.run(["git", "log", "--diff-filter=A", "--format=%H", "--", "acts_simulator/book.py"],
                           cwd=PROJECT, capture_output=True, text=True, check=True).stdout.split()
    revision = f"{added[-1]}^"
    source = subprocess.run(["git", "show", f"{revision}:acts_simulator/market.py"], cwd=PROJECT,
                            capture_output=True, text=True, check=True).stdout
    path = Path(tempfile.mkdtemp()) / "baseline_market.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("baseline_market", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["baseline_market"] = module
    spec.loader.exec_module(module)
    short = subprocess.run(["git", "rev-parse", "--short", revision], cwd=PROJECT, capture_output=True, text=True,
                           check=True).stdout.strip()
    return module.Market, short


def depth_cost(market, symbols: list[str], rounds: int = 5) -> float:
    for symbol in symbols:
        market.depth_json(symbol, 100)
    started = time.process_time()
    for _ in range(rounds):
        for symbol in symbols:
            market.depth_json(symbol, 100)
    return (time.process_time() - started) / (rounds * len(symbols)) * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--symbols", default="500,1262", help="comma-separated stream counts (default 500,1262)")
    parser.add_argument("--seconds", type=float, default=60.0, help="measured streaming time per count")
    parser.add_argument("--retention-minutes", type=float, default=30.0, help="truth kept (default 30)")
    args = parser.parse_args()
    print_run_header("simulator_streams.py", sys.argv[1:])
    symbols = Market(load_captures()).trading_symbols

    rows = [streaming_row(int(n), args.seconds, symbols) for n in args.symbols.split(",")]
    print("\nstreaming: 2 connections, combined streams of <symbol>@depth@100ms (simulator process)")
    print_grid(["streams", "idle core-s/min (baseline)", "core-s/min", "cores", "peak RSS MiB", "messages/s",
                "levels/s", "levels/message"], rows)

    log(f"truth memory: 1262 books through {args.retention_minutes:.0f} + 1 simulated minutes")
    print("\nthe truth's checkpoints at full retention (in this process, simulated clock)")
    print_grid(["books", "retention min", "RSS growth MiB", "RSS MiB", "checkpoints", "full copies",
                "CPU s per simulated minute", "CPU us per update id"], [truth_memory(args.retention_minutes)])

    log("REST depth cost")
    old_class, revision = baseline_market_class()
    sample = symbols[:500]
    old = depth_cost(old_class(seed=0), sample)
    new = depth_cost(Market(load_captures(), seed=0), sample)
    print("\nREST depth: Market.depth_json(symbol, 100), 500 symbols x 5 rounds (in this process)")
    print_grid(["market", "CPU us/request", "ratio"],
               [[f"before (template per slot, {revision})", f"{old:.0f}", "1.00"],
                ["after (one evolving book)", f"{new:.0f}", f"{new / old:.2f}"]])
    return 0


if __name__ == "__main__":
    sys.exit(main())
