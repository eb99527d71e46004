"""The recorder as a process: built from the settings, stopped by SIGINT or SIGTERM, its health
served on `http://127.0.0.1:<port>/health` (JSON) while it runs.

`acts-pipeline record` calls `serve` with the Dagster instance's `symbols` partitions as the
symbol source (`acts_pipeline.platform`); tests pass a list.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from aiohttp import web

from acts_pipeline import settings
from acts_pipeline.core.errors import ConfigurationError
from acts_pipeline.exchange.client import ExchangeClient
from acts_pipeline.recorder.recorder import Recorder, RecorderOptions
from acts_pipeline.storage.client import MongoStore
from acts_pipeline.storage.durable import Spool

log = logging.getLogger(__name__)

DEFAULT_HEALTH_PORT = 8790
#: The recorder's share of the IP's request weight: the minute runs keep the rest.
RECORDER_WEIGHT_FRACTION = 0.5


@dataclass
class RecorderConfig:
    api_url: str
    ws_url: str
    mongo_uri: str
    mongo_db: str
    spool: Spool
    options: RecorderOptions
    health_port: int = DEFAULT_HEALTH_PORT

    @classmethod
    def from_environment(cls, *, health_port: int | None = None) -> RecorderConfig:
        spool_dir = settings.spool_dir()
        port = health_port if health_port is not None else settings.recorder_health_port()
        depth, snapshot_depth = settings.depth_limit(), settings.recorder_snapshot_depth()
        if snapshot_depth <= depth:
            # Measured (benchmarks/recorder.py): with no levels beyond the published ones, the
            # first level deleted from the top leaves the book short of its depth, and every
            # book is re-snapshotted over and over.
            raise ConfigurationError(
                f"ACTS_RECORDER_SNAPSHOT_DEPTH ({snapshot_depth}) must be larger than ACTS_DEPTH_LIMIT ({depth}): "
                "the snapshot must reach beyond the published levels, or every deleted level costs a new one")
        return cls(
            api_url=settings.binance_api_url(), ws_url=settings.binance_ws_url(),
            mongo_uri=settings.mongo_uri(), mongo_db=settings.mongo_db(),
            spool=Spool(spool_dir.parent / "acts_recorder_spool"),
            options=RecorderOptions(
                depth=depth, snapshot_depth=snapshot_depth,
                retention=timedelta(days=settings.recorder_retention_days())),
            health_port=DEFAULT_HEALTH_PORT if port is None else port,
        )


def _json_default(value):
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(type(value).__name__)


async def _serve_health(recorder: Recorder, port: int, on_listening: Callable[[str], None]) -> web.AppRunner:
    async def health(request: web.Request) -> web.Response:
        body = recorder.health()
        if request.query.get("symbols") == "0":
            body.pop("symbols")
        return web.Response(text=json.dumps(body, default=_json_default), content_type="application/json")

    app = web.Application()
    app.router.add_get("/health", health)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    bound = runner.addresses[0][1] if runner.addresses else port
    on_listening(f"http://127.0.0.1:{bound}/health")
    return runner


def serve(config: RecorderConfig, symbols: Callable[[], list[str]], *,
          on_listening: Callable[[str], None] = lambda url: None, stop: threading.Event | None = None) -> None:
    """Run the recorder until SIGINT/SIGTERM (or `stop` is set); blocks the calling thread."""
    client = ExchangeClient(config.api_url, depth_limit=config.options.snapshot_depth,
                            weight_budget_fraction=RECORDER_WEIGHT_FRACTION,
                            shared_block_path=settings.block_path_beside(config.spool.folder),
                            shared_weight_path=settings.weight_path_beside(config.spool.folder))
    store = MongoStore.connect(config.mongo_uri, config.mongo_db)
    recorder = Recorder(client, config.ws_url, store, config.spool, symbols, config.options)
    stopped = stop or threading.Event()

    async def main() -> None:
        done = asyncio.Event()
        loop = asyncio.get_running_loop()

        def watch_stop() -> None:
            stopped.wait()
            loop.call_soon_threadsafe(done.set)

        threading.Thread(target=watch_stop, daemon=True, name="recorder stop").start()
        runner = await _serve_health(recorder, config.health_port, on_listening)
        try:
            await recorder.run(done)
        finally:
            await runner.cleanup()

    def request_stop(signum, frame) -> None:  # noqa: ARG001 - signal handler signature
        log.info("recorder stopping (signal %d)", signum)
        stopped.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, request_stop)
        signal.signal(signal.SIGTERM, request_stop)
    try:
        client.transport.run(main())
    finally:
        client.close()
        store.database.client.close()
