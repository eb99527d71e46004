"""An independent stand-in for Binance's Spot REST API, for measuring the platform from outside.

    python benchmarks/standin_exchange.py --port N --symbols BTCUSDT,ETHUSDT,...
    python benchmarks/standin_exchange.py --port N --symbols 500

Why it exists: `acts_simulator` is the project's own exchange, written together with the client
and tuned for the benchmarks; a figure measured against it could hide a cost (or a saving) that a
user's deployment, talking to Binance, would see. This server is written from Binance's public
REST documentation only (it imports nothing of `acts_simulator` or `acts_pipeline`), the way an
outside tester would write one: a plain aiohttp (asyncio) server.

What it serves, in Binance's shapes (`/api/v3/...`):

- `ping` ({}), `time` ({"serverTime": ms});
- `exchangeInfo`: the given symbols, all TRADING, with baseAsset/quoteAsset, PRICE_FILTER and
  LOT_SIZE filters, and the REQUEST_WEIGHT limit of 6000 per minute in `rateLimits`;
- `depth?symbol&limit`: a book of `limit` levels a side (default 100, at most 5000) around a
  per-symbol random walk of the mid price, prices and quantities as decimal strings, bids falling
  and asks rising strictly, never crossed, `lastUpdateId` growing between requests;
- `klines?symbol&interval=1m&startTime&endTime&limit`: closed 1-minute candles whose open time is
  in [startTime, endTime] (default limit 500, at most 1000), as Binance's 12-field arrays; a
  candle's values depend only on (symbol, minute), so asking twice gives the same candle;
- every response carries `X-MBX-USED-WEIGHT-1M` (and `X-MBX-USED-WEIGHT`): the weight of all
  requests in the current wall-clock minute, by Binance's table (depth 5 up to 100 levels, 25 up
  to 500, 50 up to 1000, 250 above; klines 2; exchangeInfo 20; ping and time 1). Beyond 6000 it
  answers 429 with `Retry-After`, as Binance does;
- errors as Binance's JSON (`{"code": -1121, "msg": "Invalid symbol."}`, HTTP 400).

Connections are kept alive (HTTP/1.1 keep-alive, as Binance's front end does).

One endpoint is not Binance's: `GET /_standin/stats` returns this minute's `used_weight` and the
request counts per endpoint, for the benchmark's weight figures.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import math
import random
import sys
import time

from aiohttp import web

WEIGHT_LIMIT = 6000
KLINE_MS = 60_000
# Binance's quote assets, longest first so that e.g. FDUSD wins over USD-anything shorter.
QUOTES = ("FDUSD", "USDT", "USDC", "TUSD", "BUSD", "BTC", "ETH", "BNB", "TRY", "EUR", "BRL",
          "JPY", "DAI", "XRP", "DOGE", "TRX", "SOL", "USD")


def depth_weight(limit: int) -> int:
    """Binance's published weight of `GET /api/v3/depth` for `limit` levels."""
    if limit <= 100:
        return 5
    if limit <= 500:
        return 25
    if limit <= 1000:
        return 50
    return 250


def split_symbol(symbol: str) -> tuple[str, str]:
    for quote in sorted(QUOTES, key=len, reverse=True):
        if symbol.endswith(quote) and len(symbol) > len(quote):
            return symbol[: -len(quote)], quote
    return symbol[:-4], symbol[-4:]


def _seed(*parts: object) -> int:
    """A stable seed (Python's hash() of a str changes between runs)."""
    return int.from_bytes(hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=8).digest(), "big")


class Market:
    """One symbol: tick and step sizes, and a mid price (in ticks) that walks at random."""

    def __init__(self, symbol: str):
        self.symbol = symbol
        self.base, self.quote = split_symbol(symbol)
        rng = random.Random(_seed("market", symbol))
        price = 10 ** rng.uniform(-3, 4.5)  # 0.001 .. ~30000, like Spot's spread of prices
        # about 5 significant digits of price, as Binance's PRICE_FILTER tick sizes give
        self.price_decimals = min(8, max(0, 4 - math.floor(math.log10(price))))
        self.tick = 10.0 ** -self.price_decimals
        self.qty_decimals = min(8, max(0, math.floor(math.log10(price)) + 2))
        self.mid_ticks = max(10_000, round(price / self.tick))
        self.base_price = self.mid_ticks * self.tick
        self.last_update_id = rng.randrange(10**8, 10**10)
        self.last_move = time.monotonic()
        self.rng = rng

    def filters(self) -> list[dict]:
        step = 10.0 ** -self.qty_decimals
        return [
            {"filterType": "PRICE_FILTER", "minPrice": f"{self.tick:.8f}", "maxPrice": f"{1_000_000:.8f}",
             "tickSize": f"{self.tick:.8f}"},
            {"filterType": "LOT_SIZE", "minQty": f"{step:.8f}", "maxQty": f"{9_000_000:.8f}",
             "stepSize": f"{step:.8f}"},
        ]

    def book(self, limit: int) -> dict:
        """A fresh book of `limit` levels a side around the walked mid."""
        rng = self.rng
        now = time.monotonic()
        elapsed = now - self.last_move
        self.last_move = now
        # a walk of about 1 tick per second; the mid never gets near zero
        self.mid_ticks = max(10_000, self.mid_ticks + round(rng.gauss(0.0, 1.0 + math.sqrt(elapsed))))
        self.last_update_id += 1 + rng.randrange(20 + int(elapsed * 50))
        pd, qd, tick = self.price_decimals, self.qty_decimals, self.tick
        best_bid = self.mid_ticks - 1 - rng.randrange(2)
        best_ask = self.mid_ticks + 1 + rng.randrange(2)
        bids, asks = [], []
        b, a = best_bid, best_ask
        for _ in range(limit):
            bids.append([f"{b * tick:.{pd}f}", f"{rng.uniform(0.01, 50) * 10 ** (2 - qd):.{qd}f}"])
            asks.append([f"{a * tick:.{pd}f}", f"{rng.uniform(0.01, 50) * 10 ** (2 - qd):.{qd}f}"])
            b -= 1 + rng.randrange(3)
            a += 1 + rng.randrange(3)
            if b <= 0:
                break
        # Binance pads prices and quantities to 8 decimals
        return {"lastUpdateId": self.last_update_id,
                "bids": [[_pad(p), _pad(q)] for p, q in bids],
                "asks": [[_pad(p), _pad(q)] for p, q in asks]}

    def kline(self, open_ms: int) -> list:
        """The closed candle opening at `open_ms`: a function of (symbol, minute) only."""
        rng = random.Random(_seed("kline", self.symbol, open_ms))
        drift = math.sin(open_ms / 3_600_000 + rng.random() * 0.01) * 0.02
        open_ = self.base_price * (1 + drift)
        close = open_ * (1 + rng.gauss(0, 0.001))
        high = max(open_, close) * (1 + abs(rng.gauss(0, 0.0005)))
        low = min(open_, close) * (1 - abs(rng.gauss(0, 0.0005)))
        volume = rng.uniform(0, 1000) * 10 ** (2 - self.qty_decimals)
        taker = volume * rng.random()
        vwap = (high + low) / 2
        pd = self.price_decimals
        return [open_ms, _pad(f"{open_:.{pd}f}"), _pad(f"{high:.{pd}f}"), _pad(f"{low:.{pd}f}"),
                _pad(f"{close:.{pd}f}"), f"{volume:.8f}", open_ms + KLINE_MS - 1, f"{volume * vwap:.8f}",
                rng.randrange(0, 5000), f"{taker:.8f}", f"{taker * vwap:.8f}", "0"]


def _pad(decimal: str) -> str:
    """Binance's 8-decimal form of a decimal string ("0.352" -> "0.35200000")."""
    whole, _, frac = decimal.partition(".")
    return f"{whole}.{frac.ljust(8, '0')[:8]}"


class Exchange:
    """The endpoints, the per-minute weight ledger and the request counters."""

    def __init__(self, symbols: list[str]):
        self.markets = {s: Market(s) for s in symbols}
        self.minute = -1
        self.used = 0
        self.requests: dict[str, int] = {}

    def charge(self, endpoint: str, weight: int) -> tuple[int, bool]:
        """Add `weight` to this wall-clock minute's ledger; (used, over the limit)."""
        minute = int(time.time() // 60)
        if minute != self.minute:
            self.minute, self.used = minute, 0
        self.used += weight
        self.requests[endpoint] = self.requests.get(endpoint, 0) + 1
        return self.used, self.used > WEIGHT_LIMIT

    def respond(self, body: object, used: int, status: int = 200) -> web.Response:
        return web.Response(body=json.dumps(body, separators=(",", ":")).encode(), status=status,
                            content_type="application/json",
                            headers={"X-MBX-USED-WEIGHT-1M": str(used), "X-MBX-USED-WEIGHT": str(used)})

    def error(self, code: int, msg: str, used: int, status: int = 400) -> web.Response:
        return self.respond({"code": code, "msg": msg}, used, status)

    def too_many(self, used: int) -> web.Response:
        response = self.error(-1003, "Too much request weight used; please use the API to get market data.",
                              used, 429)
        response.headers["Retry-After"] = str(60 - int(time.time()) % 60)
        return response

    async def ping(self, request: web.Request) -> web.Response:
        used, over = self.charge("ping", 1)
        return self.too_many(used) if over else self.respond({}, used)

    async def server_time(self, request: web.Request) -> web.Response:
        used, over = self.charge("time", 1)
        return self.too_many(used) if over else self.respond({"serverTime": int(time.time() * 1000)}, used)

    async def exchange_info(self, request: web.Request) -> web.Response:
        used, over = self.charge("exchangeInfo", 20)
        if over:
            return self.too_many(used)
        return self.respond({
            "timezone": "UTC",
            "serverTime": int(time.time() * 1000),
            "rateLimits": [
                {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": WEIGHT_LIMIT},
                {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
                {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 61000},
            ],
            "exchangeFilters": [],
            "symbols": [{
                "symbol": m.symbol, "status": "TRADING", "baseAsset": m.base, "baseAssetPrecision": 8,
                "quoteAsset": m.quote, "quotePrecision": 8, "quoteAssetPrecision": 8,
                "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"],
                "icebergAllowed": True, "ocoAllowed": True, "isSpotTradingAllowed": True,
                "isMarginTradingAllowed": False, "filters": m.filters(), "permissions": ["SPOT"],
            } for m in self.markets.values()],
        }, used)

    def _market(self, request: web.Request) -> Market | str:
        symbol = request.query.get("symbol")
        if not symbol:
            return "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed."
        return self.markets.get(symbol) or "Invalid symbol."

    @staticmethod
    def _int(request: web.Request, name: str, default: int | None) -> int | None:
        raw = request.query.get(name)
        return default if raw in (None, "") else int(raw)

    async def depth(self, request: web.Request) -> web.Response:
        try:
            limit = self._int(request, "limit", 100)
        except ValueError:
            used, _ = self.charge("depth", 5)
            return self.error(-1100, "Illegal characters found in parameter 'limit'.", used)
        limit = max(1, min(limit, 5000))
        used, over = self.charge("depth", depth_weight(limit))
        if over:
            return self.too_many(used)
        market = self._market(request)
        if isinstance(market, str):
            return self.error(-1121 if market.startswith("Invalid") else -1102, market, used)
        return self.respond(market.book(limit), used)

    async def klines(self, request: web.Request) -> web.Response:
        used, over = self.charge("klines", 2)
        if over:
            return self.too_many(used)
        market = self._market(request)
        if isinstance(market, str):
            return self.error(-1121 if market.startswith("Invalid") else -1102, market, used)
        if request.query.get("interval") != "1m":
            return self.error(-1120, "Invalid interval.", used)
        try:
            start = self._int(request, "startTime", None)
            end = self._int(request, "endTime", None)
            limit = max(1, min(self._int(request, "limit", 500), 1000))
        except ValueError:
            return self.error(-1100, "Illegal characters found in a parameter.", used)
        now_ms = int(time.time() * 1000)
        last_closed = (now_ms // KLINE_MS - 1) * KLINE_MS  # open time of the newest closed candle
        last = last_closed if end is None else min(last_closed, end // KLINE_MS * KLINE_MS)
        if start is None:
            first = last - (limit - 1) * KLINE_MS
        else:
            first = -(-start // KLINE_MS) * KLINE_MS  # the first candle opening at or after start
            last = min(last, first + (limit - 1) * KLINE_MS)
        rows = [market.kline(t) for t in range(first, last + 1, KLINE_MS)] if first <= last else []
        return self.respond(rows, used)

    async def stats(self, request: web.Request) -> web.Response:
        """Not Binance's: this minute's weight and the request counts, for the benchmark."""
        minute = int(time.time() // 60)
        return web.json_response({"used_weight": self.used if minute == self.minute else 0,
                                  "requests": dict(self.requests)})


def make_app(symbols: list[str]) -> web.Application:
    exchange = Exchange(symbols)
    app = web.Application()
    app.router.add_get("/api/v3/ping", exchange.ping)
    app.router.add_get("/api/v3/time", exchange.server_time)
    app.router.add_get("/api/v3/exchangeInfo", exchange.exchange_info)
    app.router.add_get("/api/v3/depth", exchange.depth)
    app.router.add_get("/api/v3/klines", exchange.klines)
    app.router.add_get("/_standin/stats", exchange.stats)
    return app


def symbol_list(spec: str) -> list[str]:
    """`A,B,...` as given, or a count: that many made-up USDT-quoted names."""
    if spec.strip().isdigit():
        return [f"S{i:04d}USDT" for i in range(int(spec))]
    return [s.strip().upper() for s in spec.split(",") if s.strip()]


async def serve(host: str, port: int, symbols: list[str]) -> None:
    # aiohttp's server keeps HTTP/1.1 connections alive (75 s idle) unless the client closes them.
    runner = web.AppRunner(make_app(symbols), access_log=None, keepalive_timeout=75)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = site._server.sockets[0].getsockname()[1] if port == 0 else port  # noqa: SLF001
    print(f"standin exchange on http://{host}:{bound}/api ({len(symbols)} symbols)", flush=True)
    await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: a free port (printed)")
    parser.add_argument("--symbols", required=True, help="comma-separated symbols, or a count")
    args = parser.parse_args(argv)
    try:
        asyncio.run(serve(args.host, args.port, symbol_list(args.symbols)))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
