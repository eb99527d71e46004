"""`WeightGate.acquire_async`, the gate of the asyncio `order_books`, on a fake clock: the same
decisions as `acquire`, waiting with the (awaited) async sleep and never the blocking one."""

from __future__ import annotations

import asyncio

import pytest

from acts_pipeline.core.errors import BannedError, RateLimitedError
from acts_pipeline.exchange import SharedBlock, WeightGate

START = 1_800_000_010.0  # 10 s into a wall-clock minute
NEXT_MINUTE = 1_800_000_060.0


class FakeTime:
    def __init__(self, now: float = START):
        self.now = now
        self.async_sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def blocking_sleep(self, seconds: float) -> None:
        raise AssertionError("the async gate called the blocking sleep")

    async def async_sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.async_sleeps.append(seconds)
        self.now += max(seconds, 0.001)


def gate_on(fake: FakeTime, limit: int = 100, fraction: float = 0.5, shared: SharedBlock | None = None) -> WeightGate:
    return WeightGate(limit, fraction, clock=fake.clock, sleep=fake.blocking_sleep,
                      async_sleep=fake.async_sleep, shared=shared)


def test_reserves_weight_without_waiting_while_the_budget_lasts():
    fake = FakeTime()
    gate = gate_on(fake)  # budget 50
    for n in range(1, 11):
        asyncio.run(gate.acquire_async(5, deadline=START + 1))
        assert gate.used_weight == 5 * n
    assert fake.async_sleeps == []


def test_a_spent_budget_waits_for_the_next_minute_or_raises_before_the_deadline():
    fake = FakeTime()
    gate = gate_on(fake)
    asyncio.run(gate.acquire_async(50, deadline=None))
    with pytest.raises(RateLimitedError, match="weight budget 50/min spent") as raised:
        asyncio.run(gate.acquire_async(5, deadline=START + 5, symbol="BTCUSDT"))
    assert type(raised.value) is RateLimitedError and raised.value.symbol == "BTCUSDT"
    assert raised.value.retry_after == pytest.approx(50)
    assert fake.async_sleeps == []
    asyncio.run(gate.acquire_async(5, deadline=NEXT_MINUTE + 1))
    assert fake.async_sleeps == [pytest.approx(50)]
    assert fake.now >= NEXT_MINUTE and gate.used_weight == 5


def test_a_retry_after_is_awaited_and_a_ban_past_the_deadline_raises():
    fake = FakeTime()
    gate = gate_on(fake)
    gate.block(3, banned=False)
    asyncio.run(gate.acquire_async(5, deadline=START + 10))
    assert fake.async_sleeps == [pytest.approx(3)]
    gate.block(30, banned=True)
    with pytest.raises(BannedError):
        asyncio.run(gate.acquire_async(5, deadline=fake.now + 5))


def test_a_block_written_by_another_process_holds_the_async_gate_too(tmp_path):
    fake = FakeTime()
    SharedBlock(tmp_path / "block.json").write(START + 2, banned=False)
    gate = gate_on(fake, shared=SharedBlock(tmp_path / "block.json"))
    asyncio.run(gate.acquire_async(5, deadline=START + 10))
    assert fake.async_sleeps == [pytest.approx(2)]


def test_waiting_coroutines_let_others_run():
    """Two fetches on one loop: the one held by the gate does not stop the other. `held` starts
    first and `other` only needs one turn of the loop, so the order is decided by whether the
    gate yields while it waits, not by how fast the machine is."""
    gate = WeightGate(100, 0.5)
    order: list[str] = []

    async def held() -> None:
        await gate.acquire_async(5, deadline=None)
        order.append("held")

    async def other() -> None:
        await asyncio.sleep(0)
        order.append("other")

    async def both() -> None:
        gate.block(0.3, banned=False)
        await asyncio.gather(held(), other())

    asyncio.run(both())
    assert order == ["other", "held"]
