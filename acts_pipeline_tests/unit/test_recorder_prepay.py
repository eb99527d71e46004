"""The recorder prepays its snapshots' weight in the instance's ledger at the start of each minute
(`Recorder._prepay`), so a minute run's REST fallback sent in the same second keeps to the rest of
the budget: no process passes 80 % of the limit, and the cold start is not starved."""

from __future__ import annotations

import mongomock
import pytest

from acts_pipeline.core.errors import RateLimitedError
from acts_pipeline.exchange import ExchangeClient
from acts_pipeline.recorder.recorder import Recorder, RecorderOptions
from acts_pipeline.storage.client import MongoStore
from acts_pipeline.storage.durable import Spool

MINUTE_START = 1_800_000_000.0  # a multiple of 60


@pytest.fixture
def clock():
    return [MINUTE_START + 0.1]


def client_on(tmp_path, clock, fraction: float) -> ExchangeClient:
    return ExchangeClient("http://127.0.0.1:9", clock=lambda: clock[0], weight_budget_fraction=fraction,
                          shared_weight_path=tmp_path / "acts_exchange_weight")


def recorder_on(tmp_path, clock) -> Recorder:
    client = client_on(tmp_path, clock, 0.5)  # the recorder's share, as service.serve builds it
    store = MongoStore(mongomock.MongoClient(tz_aware=True)["acts"])
    return Recorder(client, "ws://127.0.0.1:9", store, Spool(tmp_path / "spool"), lambda: [],
                    RecorderOptions(depth=100, snapshot_depth=500))


def test_a_cold_start_prepays_the_recorder_share_before_the_fallback_spends_it(tmp_path, clock):
    recorder = recorder_on(tmp_path, clock)
    run = client_on(tmp_path, clock, 0.8)  # a minute run's client, another process in production
    try:
        recorder._wanted = {f"SYMBOL{i:03d}": 0.0 for i in range(500)}  # a cold start: every book wanted
        recorder._prepay(clock[0])
        assert recorder.prepaid_weight == 3000  # 500 snapshots of weight 25, capped at its share
        assert run.gate.used_weight == 3000
        spent = 0
        with pytest.raises(RateLimitedError):  # the fallback's books of weight 5, until refused
            while True:
                run.gate.acquire(5, deadline=clock[0])
                spent += 5
        assert spent == 1800  # the runs keep to 4800 - 3000
        recorder._prepay(clock[0] + 10)
        assert recorder.prepaid_weight == 3000  # once a minute
        for _ in range(120):  # the recorder's 120 snapshots draw on what it prepaid
            recorder.client.gate.acquire(25, deadline=clock[0])
        assert run.gate.used_weight == 4800
    finally:
        recorder.client.close()
        run.close()


def test_the_recorder_prepays_what_it_needs_and_nothing_when_in_sync(tmp_path, clock):
    recorder = recorder_on(tmp_path, clock)
    try:
        recorder._prepay(clock[0])
        assert recorder.prepaid_weight == 0 and recorder.client.gate.used_weight == 0
        recorder._wanted = {"BTCUSDT": 0.0, "ETHUSDT": 0.0}
        recorder._prepay(clock[0] + 1)
        assert recorder.prepaid_weight == 50
        clock[0] += 60
        recorder._prepay(clock[0])  # the next minute, still two wanted
        assert recorder.prepaid_weight == 100
        assert recorder.health()["prepaid_weight"] == 100
    finally:
        recorder.client.close()
