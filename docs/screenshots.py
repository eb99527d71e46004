"""Screenshots of the Dagster UI for the README, taken of a running `acts-pipeline dev`.

    python docs/screenshots.py --url http://127.0.0.1:3000 --minute 2026-12-01-00:12 --failed XRPUSDT
    python docs/screenshots.py --history --url http://127.0.0.1:3000 --mongo-uri mongodb://127.0.0.1:PORT \\
        --symbol XRPUSDT --seed

Needs Playwright (`pip install playwright`, not a project dependency) and Debian's `chromium`
(Playwright drives it; nothing is downloaded). Pages are those an operator opens; each picture is
written to docs/images/.

The minute pictures (default): `--minute` is a collected minute and `--failed` a symbol whose
cell of that minute failed (the README's pictures were made by injecting the simulator fault
`invalid_symbol` for it, `POST /_simulator/faults`).

The history pictures (`--history`): how an operator sees last month's gaps for one symbol
(`daily_coverage_check_partitions`: the check `day_is_complete` day by day, a red day picked;
`daily_coverage_day` and `daily_coverage`: one day's numbers, gaps table and heatmap;
`symbol_month_coverage` and `symbol_month_heatmap`: `--symbol`'s month, its gap days and its day
x hour heatmap) and `klines_history_backfill`: `klines_history`'s backfill dialog for that
symbol's last 12 months, filled in and not launched. With `--seed`, last month is first written
into the platform's MongoDB (`--mongo-uri`, the embedded one `acts-pipeline dev` prints) for
every registered symbol, documents with the fields the coverage reads (symbol, minute), less a
few gaps (`LAST_MONTH_GAPS`: `--symbol` misses minutes on several days, another symbol a few,
every symbol the minutes of a restart); then `daily_coverage` (each day of last month) and
`symbol_month_coverage` (last month x every symbol) are backfilled through the webserver as the
UI's *Launch backfill* does, and the daemon of `acts-pipeline dev` runs them. The README's
pictures: `ACTS_SYMBOLS=BTCUSDT,ETHUSDT,XRPUSDT,SOLUSDT,ADAUSDT,DOGEUSDT acts-pipeline dev
--simulated`, then `--history --seed --symbol XRPUSDT`.
"""

import argparse
import json
import re
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

from playwright.sync_api import Page, sync_playwright

IMAGES = Path(__file__).resolve().parent / "images"
VIEWPORT = {"width": 1500, "height": 950}
HISTORY_VIEWPORT = {"width": 1500, "height": 1100}
MINUTE = timedelta(minutes=1)
COLLECTIONS = ("order_book_snapshots", "order_book_features", "klines_1m")

#: Last month's gaps written by --seed: (day of the month, first minute "HH:MM", minutes, collections,
#: symbols). "SYMBOL" is --symbol, "OTHER" the first other registered symbol, "ALL" every symbol.
LAST_MONTH_GAPS = (
    (4, "06:00", 45, ("order_book_snapshots", "order_book_features"), "SYMBOL"),  # the exchange refused it
    (12, "14:00", 240, COLLECTIONS, "SYMBOL"),  # a trading halt
    (12, "14:00", 10, ("order_book_snapshots", "order_book_features"), "OTHER"),
    (18, "03:00", 5, COLLECTIONS, "ALL"),  # the platform restarted
    (21, "02:15", 15, ("klines_1m",), "SYMBOL"),
    (27, "20:00", 240, ("order_book_snapshots", "order_book_features"), "SYMBOL"),  # the recorder out of sync
)

LAUNCH_BACKFILL = """mutation LaunchBackfill($backfillParams: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $backfillParams) {
    __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message }
    ... on InvalidSubsetError { message } ... on UnauthorizedError { message } } }"""
BACKFILL_STATUS = """query BackfillStatus($id: String!) {
  partitionBackfillOrError(backfillId: $id) { __typename ... on PartitionBackfill { status } } }"""
#: The registered symbols, in order: the symbol dimension of a month x symbol asset.
SYMBOLS_QUERY = """{ assetNodeOrError(assetKey: {path: ["klines_history"]}) {
  ... on AssetNode { partitionKeysByDimension { name partitionKeys } } } }"""


def graphql(url: str, query: str, variables: dict | None = None) -> dict:
    request = urllib.request.Request(url + "/graphql", data=json.dumps({"query": query, "variables": variables or {}}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as response:
        body = json.loads(response.read())
    if body.get("errors"):
        raise RuntimeError(f"GraphQL errors: {body['errors']}")
    return body["data"]


def last_month(now: datetime) -> datetime:
    return (now.replace(day=1, hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)).replace(day=1)


def month_days(month: datetime) -> list[datetime]:
    days, day = [], month
    while day.month == month.month:
        days.append(day)
        day += timedelta(days=1)
    return days


def registered_symbols(url: str) -> list[str]:
    dims = graphql(url, SYMBOLS_QUERY)["assetNodeOrError"]["partitionKeysByDimension"]
    return next(d["partitionKeys"] for d in dims if d["name"] == "symbol")


def seed_last_month(mongo_uri: str, database: str, symbols: list[str], symbol: str, month: datetime) -> dict:
    """Writes every minute of `month` for `symbols` in the three collections, less
    `LAST_MONTH_GAPS`; records the symbols as tracked from the month's start. Returns the gaps
    written, per (day, collection, symbol): missing minutes."""
    from acts_pipeline.storage.client import MongoStore

    other = next(s for s in symbols if s != symbol)
    missing: dict[tuple[str, str, str], int] = {}
    holes: set[tuple[str, str, datetime]] = set()
    for day, start, minutes, collections, who in LAST_MONTH_GAPS:
        first = month.replace(day=day, hour=int(start[:2]), minute=int(start[3:]))
        targets = symbols if who == "ALL" else [symbol if who == "SYMBOL" else other]
        for collection in collections:
            for s in targets:
                for m in range(minutes):
                    holes.add((collection, s, first + m * MINUTE))
                key = (f"{first:%Y-%m-%d}", collection, s)
                missing[key] = missing.get(key, 0) + minutes
    store = MongoStore.connect(mongo_uri, database)
    store.record_tracked(symbols, month)
    for day in month_days(month):
        for collection in COLLECTIONS:
            documents = [{"symbol": s, "minute": day + m * MINUTE} for s in symbols for m in range(1440)
                         if (collection, s, day + m * MINUTE) not in holes]
            store.insert_or_replace(collection, documents)
        print(f"seeded {day:%Y-%m-%d}", flush=True)
    return missing


def backfill(url: str, asset: str, partitions: list[str], timeout: float = 1800) -> None:
    """What the UI's Launch backfill sends, then waits until the daemon has finished it."""
    result = graphql(url, LAUNCH_BACKFILL, {"backfillParams": {
        "tags": [{"key": "dagster/from_ui", "value": "true"}], "assetSelection": [{"path": [asset]}],
        "partitionNames": partitions, "fromFailure": False}})["launchPartitionBackfill"]
    if result["__typename"] != "LaunchBackfillSuccess":
        raise RuntimeError(f"backfill of {asset} not launched: {result}")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = graphql(url, BACKFILL_STATUS, {"id": result["backfillId"]})["partitionBackfillOrError"]["status"]
        if status not in ("REQUESTED", "CANCELING"):
            print(f"backfill {result['backfillId']} of {asset} ({len(partitions)} partitions): {status}", flush=True)
            if status not in ("COMPLETED", "COMPLETED_SUCCESS"):
                raise RuntimeError(f"backfill of {asset} ended {status}")
            return
        time.sleep(5)
    raise RuntimeError(f"backfill of {asset} not finished within {timeout:g} s")


def open_page(page: Page, url: str, wait_ms: int = 5000) -> None:
    page.goto(url)
    page.wait_for_timeout(wait_ms)
    skip = page.get_by_role("button", name="Skip")
    if skip.count():  # Dagster's "join the community" dialog, shown once per browser
        skip.first.click()
        page.wait_for_timeout(1000)


def click_text(page: Page, text: str, wait_ms: int = 3000) -> None:
    page.get_by_text(text, exact=True).filter(visible=True).last.click()
    page.wait_for_timeout(wait_ms)


def history_pictures(args: argparse.Namespace) -> None:
    month = last_month(datetime.now(UTC))
    symbols = registered_symbols(args.url)
    if args.symbol not in symbols:
        raise SystemExit(f"{args.symbol} is not registered ({', '.join(symbols)}): add it first")
    if args.seed:
        missing = seed_last_month(args.mongo_uri, args.database, symbols, args.symbol, month)
        print("gaps written: " + "; ".join(f"{d} {c} {s} {n} min" for (d, c, s), n in sorted(missing.items())))
        backfill(args.url, "daily_coverage", [f"{d:%Y-%m-%d}" for d in month_days(month)])
        backfill(args.url, "symbol_month_coverage", [f"{month:%Y-%m-%d}|{s}" for s in symbols])
    gap_day = f"{month.replace(day=12):%Y-%m-%d}"  # LAST_MONTH_GAPS: the symbol's halt, another symbol's minutes
    check_day = f"{month.replace(day=27):%Y-%m-%d}"  # the symbol's 4 hours without books: near the top of the list
    month_key = f"{month:%Y-%m-%d}|{args.symbol}"
    first_month = (month - timedelta(days=334)).replace(day=1)
    months = f"[{first_month:%Y-%m-%d}...{month:%Y-%m-%d}]"  # the last 12 closed months
    IMAGES.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=args.chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport=HISTORY_VIEWPORT)

        def picture(name: str) -> None:
            page.screenshot(path=str(IMAGES / f"{name}.png"))
            print(name, flush=True)

        # which days had gaps: the check's Partitions tab, computed days only, a red day picked
        open_page(page, f"{args.url}/assets/daily_coverage?view=checks")
        click_text(page, "day_is_complete")
        click_text(page, "Partitions")
        page.get_by_text(re.compile(r"^Missing \(")).filter(visible=True).first.click()
        page.wait_for_timeout(2000)
        click_text(page, check_day)
        scroll_to_top(page)
        picture("daily_coverage_check_partitions")

        # one day: its numbers and the gaps table, then the heatmap
        open_page(page, f"{args.url}/assets/daily_coverage?view=partitions&partition={gap_day}")
        scroll_row_to_top(page, "klines_complete_pct")
        picture("daily_coverage_day")
        click_text(page, "[Show Markdown]")
        picture("daily_coverage")

        # one symbol's month: completeness and the gap days, then the day x hour heatmap
        open_page(page, f"{args.url}/assets/symbol_month_coverage?view=partitions&partition={quote(month_key)}")
        scroll_row_to_top(page, "days_counted")
        picture("symbol_month_coverage")
        click_text(page, "[Show Markdown]")
        picture("symbol_month_heatmap")

        # the symbol's last 12 months of klines: Materialize... on klines_history, not launched
        open_page(page, f"{args.url}/assets/klines_history")
        page.get_by_role("button", name="Materialize…").first.click()
        page.wait_for_timeout(3000)
        box = page.get_by_placeholder("ex: 2025-01-01", exact=False).first
        box.fill(months)
        box.press("Enter")
        page.wait_for_timeout(1500)
        click_text(page, "Select a partition or create one", 1000)
        page.keyboard.type(args.symbol)
        page.wait_for_timeout(1500)
        page.get_by_role("menuitem").filter(has_text=args.symbol).first.click()
        page.wait_for_timeout(1000)
        click_text(page, "Launch runs to materialize klines_history", 1500)  # closes the symbol list
        picture("klines_history_backfill")
        browser.close()


def scroll_to_top(page: Page) -> None:
    """Every scrolled box back to its top (clicking a partition scrolls the page to it)."""
    page.evaluate("document.querySelectorAll('*').forEach(e => { if (e.scrollTop) e.scrollTop = 0; })")
    page.wait_for_timeout(500)


def scroll_row_to_top(page: Page, key: str) -> None:
    """The metadata table's row `key` at the top of its scrolled pane."""
    page.locator("tr").filter(has=page.get_by_text(key, exact=True)).first.evaluate(
        "e => e.scrollIntoView({block: 'start'})")
    page.wait_for_timeout(800)


def readme_pictures(args: argparse.Namespace) -> None:
    def partition(asset: str, symbol: str) -> str:
        return f"/assets/{asset}?view=partitions&partition={quote(f'{args.minute}|{symbol}')}"

    def observation(asset: str, partition: str | None) -> str:
        """The events tab opened at the asset's latest observation of `partition` (None: the
        minute tables, which have no partition)."""
        query = ('{ assetOrError(assetKey: {path: ["%s"]}) { ... on Asset { assetObservations(limit: 50) '
                 '{ timestamp partition } } } }' % asset)
        events = graphql(args.url, query)["assetOrError"]["assetObservations"]
        timestamp = next(e["timestamp"] for e in events if e["partition"] == partition)
        return f"/assets/{asset}?view=events&time={timestamp}"

    # The checks first: they show "not evaluated" while the next minute's run is under way.
    pages = {
        "snapshot_checks": "/assets/order_book_snapshot?view=checks",
        "failed_cell_check": "/assets/order_book_snapshot?view=checks",
        "asset_graph": "/asset-groups",
        "snapshot_cell": partition("order_book_snapshot", args.symbol),
        "failed_cell": observation("order_book_snapshot", f"{args.minute}|{args.failed}"),
        "minute_table": observation("order_book_features", None),
        "tracked_symbols_checks": "/assets/tracked_symbols?view=checks",
        "tracked_symbols_table": "/assets/tracked_symbols?view=events",
    }
    #: what to click on a page before the picture, in order
    clicks = {"snapshot_checks": ["snapshots_are_complete"],
              "failed_cell_check": ["snapshots_are_complete", "Partitions"]}
    IMAGES.mkdir(exist_ok=True)
    while not 8 <= datetime.now(UTC).second <= 12:  # just after the minute run's checks
        time.sleep(0.5)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=args.chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport=VIEWPORT)
        for name, path in pages.items():
            open_page(page, args.url + path)
            for text in clicks.get(name, []):
                click_text(page, text)
            page.screenshot(path=str(IMAGES / f"{name}.png"))
            print(f"{name}: {path}")
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default="http://127.0.0.1:3000")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--minute", help="the minute pictures: a collected minute, e.g. 2026-12-01-00:12")
    parser.add_argument("--symbol", default=None,
                        help="a symbol stored at that minute (default BTCUSDT); with --history, the symbol whose "
                             "gaps are shown and whose klines are backfilled (default XRPUSDT)")
    parser.add_argument("--failed", help="the minute pictures: a symbol whose cell of that minute failed")
    parser.add_argument("--history", action="store_true", help="the history pictures instead (see above)")
    parser.add_argument("--seed", action="store_true", help="with --history: write last month and compute its coverage first")
    parser.add_argument("--mongo-uri", help="with --seed: the platform's MongoDB (acts-pipeline dev prints it)")
    parser.add_argument("--database", default="acts", help="with --seed: the database (ACTS_MONGO_DB, default acts)")
    args = parser.parse_args()
    if args.history:
        args.symbol = args.symbol or "XRPUSDT"
        if args.seed and not args.mongo_uri:
            parser.error("--seed needs --mongo-uri")
        history_pictures(args)
    else:
        if not (args.minute and args.failed):
            parser.error("the minute pictures need --minute and --failed (or --history)")
        args.symbol = args.symbol or "BTCUSDT"
        readme_pictures(args)


if __name__ == "__main__":
    main()
