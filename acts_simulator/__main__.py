"""`python -m acts_simulator`: the offline Binance Spot exchange, until SIGTERM/SIGINT.

Prints `simulator listening on http://HOST:PORT` once it accepts connections (with `--port 0`,
the port it got), then `simulator streams on ws://HOST:PORT`: point python-binance at it with
`Client.API_URL = URL + "/api"` and a stream client at `ws://HOST:PORT/stream?streams=...`
(`ACTS_BINANCE_WS_URL=ws://HOST:PORT`).
"""

from __future__ import annotations

import argparse
import logging
import sys

from acts_simulator.app import DEFAULT_BAN_SECONDS, DEFAULT_WEIGHT_LIMIT
from acts_simulator.market import DEFAULT_RETENTION_SECONDS
from acts_simulator.server import DEFAULT_HOST, DEFAULT_PORT, run, ws_url_of
from acts_simulator.streams import StreamConfig


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m acts_simulator",
        description="Offline Binance Spot simulator: REST and diff-depth websocket streams (real captures, "
        "seeded prices, one evolving book per symbol, fault switches).",
    )
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"address to bind (default {DEFAULT_HOST})")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port, 0 for any free one (default {DEFAULT_PORT})"
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of prices and fault probabilities (default 0)"
    )
    parser.add_argument(
        "--weight-limit", type=int, default=DEFAULT_WEIGHT_LIMIT,
        help=f"REQUEST_WEIGHT allowed per minute before 429 (default {DEFAULT_WEIGHT_LIMIT})",
    )
    parser.add_argument(
        "--ban-seconds", type=float, default=DEFAULT_BAN_SECONDS,
        help=f"length of the 418 ban for ignoring Retry-After (default {DEFAULT_BAN_SECONDS:.0f})",
    )
    defaults = StreamConfig()
    parser.add_argument(
        "--retention", type=float, default=DEFAULT_RETENTION_SECONDS, metavar="SECONDS",
        help=f"how far back /_simulator/true_book reaches (default {DEFAULT_RETENTION_SECONDS:.0f})",
    )
    parser.add_argument(
        "--ws-ping-interval", type=float, default=defaults.ping_interval_seconds, metavar="SECONDS",
        help=f"server ping frame interval (default {defaults.ping_interval_seconds:.0f}, as Binance)",
    )
    parser.add_argument(
        "--ws-pong-timeout", type=float, default=defaults.pong_timeout_seconds, metavar="SECONDS",
        help=f"close a connection whose pong is this late (default {defaults.pong_timeout_seconds:.0f})",
    )
    parser.add_argument(
        "--ws-max-lifetime", type=float, default=defaults.max_lifetime_seconds, metavar="SECONDS",
        help=f"close connections this old (default {defaults.max_lifetime_seconds:.0f}: Binance's 24 h)",
    )
    parser.add_argument(
        "--ws-max-connections", type=int, default=defaults.max_connection_attempts, metavar="N",
        help=f"connection attempts allowed per IP per {defaults.attempts_window_seconds:.0f} s "
        f"(default {defaults.max_connection_attempts})",
    )
    parser.add_argument("--log-level", default="WARNING", help="logging level on stderr (default WARNING)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    def announce(url: str) -> None:
        # The one line scripts and test fixtures wait for.
        sys.stdout.write(f"simulator listening on {url}\nsimulator streams on {ws_url_of(url)}\n")
        sys.stdout.flush()

    streams = StreamConfig(
        ping_interval_seconds=args.ws_ping_interval, pong_timeout_seconds=args.ws_pong_timeout,
        max_lifetime_seconds=args.ws_max_lifetime, max_connection_attempts=args.ws_max_connections,
    )
    run(args.host, args.port, on_listening=announce, seed=args.seed,
        weight_limit=args.weight_limit, ban_seconds=args.ban_seconds, retention_seconds=args.retention,
        stream_config=streams)
    return 0


if __name__ == "__main__":
    sys.exit(main())
