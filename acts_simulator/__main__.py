"""`python -m acts_simulator`: the offline Binance Spot exchange, until SIGTERM/SIGINT.

Prints one line, `simulator listening on http://HOST:PORT`, once it accepts connections (with
`--port 0`, the port it got); point python-binance at it with `Client.API_URL = URL + "/api"`.
"""

from __future__ import annotations

import argparse
import logging
import sys

from acts_simulator.app import DEFAULT_BAN_SECONDS, DEFAULT_WEIGHT_LIMIT
from acts_simulator.server import DEFAULT_HOST, DEFAULT_PORT, run


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m acts_simulator",
        description="Offline Binance Spot REST simulator (real captures, seeded prices, fault switches).",
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
    parser.add_argument("--log-level", default="WARNING", help="logging level on stderr (default WARNING)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    def announce(url: str) -> None:
        # The one line scripts and test fixtures wait for.
        sys.stdout.write(f"simulator listening on {url}\n")
        sys.stdout.flush()

    run(args.host, args.port, on_listening=announce, seed=args.seed,
        weight_limit=args.weight_limit, ban_seconds=args.ban_seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
