"""The weight gate of the exchange client, on a fake clock: budget, Retry-After, bans, headers."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest
from requests.structures import CaseInsensitiveDict

from acts_pipeline.core.errors import BannedError, RateLimitedError
from acts_pipeline.exchange import WeightGate

START = 1_800_000_010.0  # 10 s into a wall-clock minute (1_800_000_000 is a multiple of 60)
NEXT_MINUTE = 1_800_000_060.0


class FakeTime:
    """A clock that only moves when the gate sleeps. `wake_early` makes each sleep last only
    that fraction of what was asked, as a spurious early wake-up would."""

    def __init__(self, now: float = START, wake_early: float = 1.0):
        self.now = now
        self.wake_early = wake_early
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        # at least 1 ms so that a gate that keeps sleeping tiny amounts still ends
        self.now += max(seconds * self.wake_early, min(seconds, 0.001))


@pytest.fixture
def fake() -> FakeTime:
    return FakeTime()


def gate_on(fake: FakeTime, limit: int = 100, fraction: float = 0.5) -> WeightGate:
    return WeightGate(limit, fraction, clock=fake.clock, sleep=fake.sleep)


# ---- the per-minute budget -------------------------------------------------------------------


def test_budget_is_the_fraction_of_the_limit(fake):
    assert gate_on(fake, 6000, 0.8).budget == 4800
    assert gate_on(fake, 60, 0.8).budget == 48


def test_acquire_reserves_weight_without_waiting_while_the_budget_lasts(fake):
    gate = gate_on(fake)  # budget 50
    for n in range(1, 11):
        gate.acquire(5, deadline=START + 1)
        assert gate.used_weight == 5 * n
    assert fake.sleeps == [] and fake.now == START


def test_once_the_budget_is_spent_acquire_waits_for_the_next_minute(fake):
    gate = gate_on(fake)
    for _ in range(10):
        gate.acquire(5, deadline=None)
    gate.acquire(5, deadline=None)
    assert fake.sleeps == [pytest.approx(50.0)]
    assert fake.now == pytest.approx(NEXT_MINUTE)
    assert gate.used_weight == 5  # a fresh minute, with this request's weight reserved


def test_a_request_heavier_than_what_is_left_waits_even_if_a_lighter_one_would_fit(fake):
    gate = gate_on(fake)
    gate.acquire(45, deadline=None)
    gate.acquire(5, deadline=None)  # 50: exactly the budget
    assert fake.sleeps == []
    gate.acquire(1, deadline=NEXT_MINUTE + 1)
    assert fake.now == pytest.approx(NEXT_MINUTE)


def test_waiting_past_the_deadline_raises_instead_of_sleeping(fake):
    gate = gate_on(fake)
    for _ in range(10):
        gate.acquire(5, deadline=None)
    with pytest.raises(RateLimitedError) as raised:
        gate.acquire(5, deadline=START + 3, symbol="BTCUSDT")
    error = raised.value
    assert type(error) is RateLimitedError
    assert "weight budget 50/min spent" in str(error)
    next_minute = datetime.fromtimestamp(NEXT_MINUTE, UTC)
    assert f"no request to Binance before {next_minute:%H:%M:%S} UTC" in str(error)
    assert error.retry_after == pytest.approx(50.0)
    assert error.symbol == "BTCUSDT"
    assert fake.sleeps == [] and fake.now == START
    assert gate.used_weight == 50  # nothing reserved for the refused request


def test_a_deadline_just_after_the_minute_is_enough(fake):
    gate = gate_on(fake)
    gate.acquire(50, deadline=None)
    gate.acquire(5, deadline=NEXT_MINUTE + 0.001)
    assert fake.now == pytest.approx(NEXT_MINUTE)


# ---- Retry-After (429) -----------------------------------------------------------------------


def test_no_acquire_succeeds_before_a_retry_after_expires():
    # Sleeps that wake early: the gate must look at the clock again, not trust its sleep.
    fake = FakeTime(wake_early=0.3)
    gate = gate_on(fake)
    gate.block(2.0, banned=False)
    granted = []
    for _ in range(5):
        gate.acquire(5, deadline=None)
        granted.append(fake.now)
    assert len(fake.sleeps) > 1  # it woke early and went back to sleep
    assert all(moment >= START + 2.0 for moment in granted)
    assert granted[0] == pytest.approx(START + 2.0, abs=0.01)


def test_retry_after_past_the_deadline_raises_a_rate_limited_error(fake):
    gate = gate_on(fake)
    gate.block(2.0, banned=False)
    with pytest.raises(RateLimitedError) as raised:
        gate.acquire(5, deadline=START + 1.5, symbol="ETHUSDT")
    assert type(raised.value) is RateLimitedError
    assert "Retry-After" in str(raised.value)
    assert raised.value.retry_after == pytest.approx(2.0)
    assert fake.sleeps == []
    assert gate.used_weight == 0


def test_a_shorter_block_never_shortens_a_longer_one(fake):
    gate = gate_on(fake)
    gate.block(5.0, banned=False)
    gate.block(1.0, banned=False)
    gate.acquire(5, deadline=None)
    assert fake.now == pytest.approx(START + 5.0)
    gate.block(1.0, banned=False)
    gate.block(3.0, banned=False)  # a longer one extends it
    gate.acquire(5, deadline=None)
    assert fake.now == pytest.approx(START + 8.0)


def test_every_thread_waits_out_a_retry_after():
    """Real threads and the real clock: none of them sends before the block ends."""
    gate = WeightGate(6000, 0.8)
    granted: list[float] = []
    lock = threading.Lock()
    start = threading.Barrier(9)

    def worker():
        start.wait()
        gate.acquire(5, deadline=time.time() + 5)
        with lock:
            granted.append(time.time())

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    blocked_at = time.time()
    gate.block(0.3, banned=False)
    start.wait()
    for thread in threads:
        thread.join(5)
    assert len(granted) == 8
    assert min(granted) >= blocked_at + 0.3


# ---- bans (418) ------------------------------------------------------------------------------


def test_a_ban_raises_banned_error_with_until_and_does_not_sleep(fake):
    gate = gate_on(fake)
    gate.block(30.0, banned=True)
    with pytest.raises(BannedError) as raised:
        gate.acquire(5, deadline=START + 5, symbol="BTCUSDT")
    error = raised.value
    assert isinstance(error, RateLimitedError)  # callers that handle 429 handle 418 too
    assert error.until == datetime.fromtimestamp(START + 30, UTC)
    assert error.retry_after == pytest.approx(30.0)
    assert error.symbol == "BTCUSDT"
    assert f"{error.until:%H:%M:%S} UTC" in str(error)
    assert fake.sleeps == []


def test_without_a_deadline_a_ban_is_waited_out(fake):
    gate = gate_on(fake)
    gate.block(30.0, banned=True)
    gate.acquire(5, deadline=None)
    assert fake.now == pytest.approx(START + 30.0)


def test_after_a_ban_the_budget_refusal_is_not_called_a_ban(fake):
    gate = gate_on(fake)
    gate.block(1.0, banned=True)
    gate.acquire(50, deadline=None)  # waits out the ban, spends the budget
    with pytest.raises(RateLimitedError) as raised:
        gate.acquire(5, deadline=fake.now + 1)
    assert type(raised.value) is RateLimitedError
    assert "weight budget" in str(raised.value)


def test_a_429_during_a_ban_does_not_shorten_it(fake):
    gate = gate_on(fake)
    gate.block(30.0, banned=True)
    gate.block(2.0, banned=False)
    with pytest.raises(BannedError):
        gate.acquire(5, deadline=START + 5)


# ---- the exchange's own count ----------------------------------------------------------------


def test_observe_takes_the_used_weight_header(fake):
    gate = gate_on(fake)
    gate.observe(CaseInsensitiveDict({"x-mbx-used-weight-1m": "40", "x-mbx-used-weight": "40"}))
    assert gate.used_weight == 40
    assert gate.max_used_seen == 40
    gate.acquire(10, deadline=None)  # 50: still within the budget
    assert fake.sleeps == []
    with pytest.raises(RateLimitedError, match="weight budget"):
        gate.acquire(1, deadline=START + 1)


def test_observe_never_lowers_the_count_below_what_was_reserved(fake):
    gate = gate_on(fake)
    gate.acquire(30, deadline=None)
    gate.observe({"X-MBX-USED-WEIGHT-1M": "12"})  # an older response, overtaken by reservations
    assert gate.used_weight == 30
    assert gate.max_used_seen == 12


@pytest.mark.parametrize("headers", [None, {}, {"X-MBX-USED-WEIGHT-1M": "many"},
                                     {"X-MBX-USED-WEIGHT": "40"}])
def test_observe_ignores_missing_or_unreadable_headers(fake, headers):
    gate = gate_on(fake)
    gate.acquire(5, deadline=None)
    gate.observe(headers)
    assert gate.used_weight == 5 and gate.max_used_seen == 0


def test_the_count_starts_again_each_wall_clock_minute(fake):
    gate = gate_on(fake)
    gate.observe({"X-MBX-USED-WEIGHT-1M": "48"})
    fake.now = NEXT_MINUTE + 0.5
    assert gate.used_weight == 0
    gate.acquire(50, deadline=None)
    assert fake.sleeps == []
    assert gate.max_used_seen == 48  # the highest ever seen stays


def test_a_ban_seen_by_one_process_holds_back_the_next_ones(tmp_path):
    """Each minute runs in a new process: the ban must outlive the process that received it."""
    from acts_pipeline.core.errors import BannedError
    from acts_pipeline.exchange import SharedBlock, WeightGate

    now = [1_000_000.0]
    first = WeightGate(clock=lambda: now[0], sleep=lambda s: None, shared=SharedBlock(tmp_path / "block.json"))
    first.block(120, banned=True)
    later_process = WeightGate(clock=lambda: now[0] + 5, sleep=lambda s: None,
                               shared=SharedBlock(tmp_path / "block.json"))
    with pytest.raises(BannedError) as raised:
        later_process.acquire(5, deadline=now[0] + 15, symbol="BTCUSDT")
    assert raised.value.until.timestamp() == pytest.approx(now[0] + 120)
    after = WeightGate(clock=lambda: now[0] + 121, sleep=lambda s: None, shared=SharedBlock(tmp_path / "block.json"))
    after.acquire(5, deadline=now[0] + 130)


# ---- one ledger of weight for every process of the instance -------------------------------------


def ledger_gate(fake: FakeTime, path, fraction: float, limit: int = 100) -> WeightGate:
    from acts_pipeline.exchange import SharedWeight

    return WeightGate(limit, fraction, clock=fake.clock, sleep=fake.sleep, ledger=SharedWeight(path))


def test_each_process_sees_the_weight_the_others_reserved_before_any_response(fake, tmp_path):
    """The recorder (half the limit) and a minute run (80 %) spending in the same second: neither
    has had a response yet, so only the ledger tells each what the other spent."""
    run = ledger_gate(fake, tmp_path / "weight", 0.8)
    recorder = ledger_gate(fake, tmp_path / "weight", 0.5)
    for _ in range(8):
        run.acquire(5, deadline=START)
    assert recorder.used_weight == 40
    recorder.acquire(10, deadline=START)  # 50: exactly the recorder's share of the IP
    with pytest.raises(RateLimitedError, match="weight budget 50/min spent"):
        recorder.acquire(1, deadline=START + 1)
    for _ in range(6):
        run.acquire(5, deadline=START)  # the run keeps its own budget: up to 80 in all
    with pytest.raises(RateLimitedError, match="weight budget 80/min spent"):
        run.acquire(1, deadline=START + 1)
    assert run.used_weight == recorder.used_weight == 80
    assert fake.sleeps == []


def test_the_exchange_header_raises_every_process_count(fake, tmp_path):
    first = ledger_gate(fake, tmp_path / "weight", 0.8)
    second = ledger_gate(fake, tmp_path / "weight", 0.8)
    first.acquire(5, deadline=START)
    first.observe(CaseInsensitiveDict({"X-MBX-USED-WEIGHT-1M": "70"}))  # someone else on the IP
    assert second.used_weight == 70
    with pytest.raises(RateLimitedError):
        second.acquire(15, deadline=START + 1)
    second.observe(CaseInsensitiveDict({"X-MBX-USED-WEIGHT-1M": "60"}))  # an older response: never lowers it
    assert first.used_weight == 70


def test_the_ledger_starts_again_each_wall_clock_minute(fake, tmp_path):
    first = ledger_gate(fake, tmp_path / "weight", 0.8)
    first.acquire(80, deadline=START)
    fake.now = NEXT_MINUTE + 1
    later = ledger_gate(fake, tmp_path / "weight", 0.8)  # a new run process, the next minute
    assert later.used_weight == 0
    later.acquire(80, deadline=NEXT_MINUTE + 1)
    assert fake.sleeps == []


def test_without_its_ledger_file_a_gate_counts_alone_and_says_so_once(fake, tmp_path, caplog):
    (tmp_path / "weight").mkdir()  # a folder where the file should be: it cannot be opened
    gate = ledger_gate(fake, tmp_path / "weight", 0.5)
    with caplog.at_level("WARNING", logger="acts_pipeline.exchange.rate_limits"):
        for _ in range(10):
            gate.acquire(5, deadline=START)
        with pytest.raises(RateLimitedError):
            gate.acquire(5, deadline=START + 1)
    assert gate.used_weight == 50
    warnings = [r.message for r in caplog.records if "ledger" in r.message]
    assert len(warnings) == 1 and "counts its own weight only" in warnings[0]


FIXED_NOW = START


def _fixed_clock() -> float:
    return FIXED_NOW


def _spend_until_refused(path: str, fraction: float, weight: int, ready, go, granted_queue) -> None:
    """In its own process: reserve `weight` again and again until the gate refuses; puts the weight granted."""
    from acts_pipeline.exchange import SharedWeight, WeightGate

    gate = WeightGate(6000, fraction, clock=_fixed_clock, sleep=lambda s: None, ledger=SharedWeight(path))
    granted = 0
    ready.set()
    go.wait(60)
    while True:
        try:
            gate.acquire(weight, deadline=FIXED_NOW)
        except RateLimitedError:
            break
        granted += weight
    granted_queue.put((fraction, weight, granted))


def test_processes_spending_at_once_never_pass_the_budget_together(tmp_path):
    """Four processes at once (three runs' worth of 5-weight books and a recorder's 25-weight
    snapshots), on one ledger: together exactly the largest budget, never a request more."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    path = str(tmp_path / "weight")
    go, granted = context.Event(), context.Queue()
    jobs = [(0.8, 5), (0.8, 5), (0.8, 5), (0.5, 25)]
    readies = [context.Event() for _ in jobs]
    processes = [context.Process(target=_spend_until_refused, args=(path, fraction, weight, ready, go, granted))
                 for (fraction, weight), ready in zip(jobs, readies, strict=True)]
    for process in processes:
        process.start()
    try:
        for ready in readies:
            assert ready.wait(60)
        go.set()
        results = [granted.get(timeout=60) for _ in jobs]
    finally:
        for process in processes:
            process.join(10)
            if process.is_alive():
                process.kill()
    assert sum(g for _, _, g in results) == 4800, results
    assert all(g <= 3000 for fraction, _, g in results if fraction == 0.5)  # the recorder within its share


def test_prepaid_weight_is_kept_from_the_others_and_drawn_by_its_owner(fake, tmp_path):
    """The recorder prepays its share at the start of a minute: the run's fallback keeps to the
    rest of the ceiling, and the recorder's snapshots draw on the prepaid weight."""
    recorder = ledger_gate(fake, tmp_path / "weight", 0.5)  # budget 50 of 100, ceiling 80
    run = ledger_gate(fake, tmp_path / "weight", 0.8)
    run.acquire(10, deadline=START)
    assert recorder.prepay(60, ceiling=80) == 60  # its own budget is 50, but prepay goes to the ceiling
    with pytest.raises(RateLimitedError):
        run.acquire(15, deadline=START + 1)  # 10 + 60 + 15 > 80
    run.acquire(10, deadline=START)  # exactly 80
    for _ in range(12):
        recorder.acquire(5, deadline=START)  # 60 drawn from what it prepaid, nothing counted twice
    assert run.used_weight == 80
    with pytest.raises(RateLimitedError):
        recorder.acquire(5, deadline=START + 1)  # prepaid spent, the count past its budget
    assert fake.sleeps == []


def test_prepay_takes_only_what_fits_and_nothing_during_a_retry_after(fake, tmp_path):
    recorder = ledger_gate(fake, tmp_path / "weight", 0.5)
    run = ledger_gate(fake, tmp_path / "weight", 0.8)
    run.acquire(70, deadline=START)
    assert recorder.prepay(50, ceiling=80) == 10
    assert run.used_weight == 80
    fake.now = NEXT_MINUTE
    recorder.block(5, banned=False)
    assert recorder.prepay(50, ceiling=80) == 0
    assert run.used_weight == 0
    fake.now = NEXT_MINUTE + 6
    assert recorder.prepay(50, ceiling=80) == 50  # a new minute: last minute's prepaid is gone
    recorder.acquire(25, deadline=NEXT_MINUTE + 6)
    assert run.used_weight == 50


def test_prepay_without_a_ledger_counts_in_the_gate_alone(fake):
    gate = gate_on(fake, 100, 0.5)
    assert gate.prepay(30, ceiling=80) == 30
    gate.acquire(30, deadline=START)  # drawn from the prepaid weight
    assert gate.used_weight == 30
    gate.acquire(20, deadline=START)
    with pytest.raises(RateLimitedError):
        gate.acquire(5, deadline=START + 1)
