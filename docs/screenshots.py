"""Screenshots of the Dagster UI for the README, taken of a running `acts-pipeline dev`.

    python docs/screenshots.py --url http://127.0.0.1:3000 --minute 2026-12-01-00:12 --failed XRPUSDT

Needs Playwright (`pip install playwright`, not a project dependency) and Debian's `chromium`
(Playwright drives it; nothing is downloaded). `--minute` is a collected minute and `--failed`
a symbol whose cell of that minute failed (the README's pictures were made by injecting the
simulator fault `invalid_symbol` for it, `POST /_simulator/faults`). Pages are those an operator
opens; each picture is written to docs/images/.
"""

import argparse
import json
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

from playwright.sync_api import sync_playwright

IMAGES = Path(__file__).resolve().parent / "images"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default="http://127.0.0.1:3000")
    parser.add_argument("--minute", required=True, help="a collected minute, e.g. 2026-12-01-00:12")
    parser.add_argument("--symbol", default="BTCUSDT", help="a symbol stored at that minute")
    parser.add_argument("--failed", required=True, help="a symbol whose cell of that minute failed")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()

    def partition(asset: str, symbol: str) -> str:
        return f"/assets/{asset}?view=partitions&partition={quote(f'{args.minute}|{symbol}')}"

    def observation(asset: str, partition: str | None) -> str:
        """The events tab opened at the asset's latest observation of `partition` (None: the
        minute tables, which have no partition)."""
        query = ('{ assetOrError(assetKey: {path: ["%s"]}) { ... on Asset { assetObservations(limit: 50) '
                 '{ timestamp partition } } } }' % asset)
        request = urllib.request.Request(args.url + "/graphql", data=json.dumps({"query": query}).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request) as response:
            events = json.loads(response.read())["data"]["assetOrError"]["assetObservations"]
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
        page = browser.new_page(viewport={"width": 1500, "height": 950})
        for name, path in pages.items():
            page.goto(args.url + path)
            page.wait_for_timeout(5000)
            skip = page.get_by_role("button", name="Skip")
            if skip.count():  # Dagster's "join the community" dialog, shown once per browser
                skip.first.click()
                page.wait_for_timeout(1000)
            for text in clicks.get(name, []):
                page.get_by_text(text, exact=True).filter(visible=True).last.click()
                page.wait_for_timeout(3000)
            page.screenshot(path=str(IMAGES / f"{name}.png"))
            print(f"{name}: {path}")
        browser.close()


if __name__ == "__main__":
    main()
