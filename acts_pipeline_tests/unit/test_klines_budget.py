"""How klines share the request weight with the minute's books (acts_pipeline/klines_budget.py)."""

import pytest

from acts_pipeline.exchange import depth_weight
from acts_pipeline.klines_budget import (
    BOOKS_BURST_SECONDS,
    KLINES_WEIGHT_BUDGET,
    klines_in_minute_run,
    pace_klines_request,
)


class Gate:
    def __init__(self, used):
        self.used = used

    @property
    def used_weight(self):
        return self.used


class Clock:
    def __init__(self, at):
        self.at = at
        self.sleeps = []

    def __call__(self):
        return self.at

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.at += seconds


@pytest.mark.parametrize(("symbols", "levels", "ride_along"), [
    (20, 100, True), (428, 100, True), (429, 100, False), (500, 100, False),
    (57, 1000, True), (58, 1000, False),
])
def test_klines_ride_along_while_books_and_klines_fit_half_the_limit(symbols, levels, ride_along):
    assert klines_in_minute_run(symbols, depth_weight(levels)) is ride_along


def test_no_klines_request_during_the_books_burst():
    clock = Clock(at=1_800_000_000.5)  # half a second after a minute boundary
    waited = pace_klines_request(Gate(0), clock=clock, sleep=clock.sleep)
    assert waited == pytest.approx(BOOKS_BURST_SECONDS - 0.5)
    assert clock.at % 60 == pytest.approx(BOOKS_BURST_SECONDS)


def test_a_request_that_would_pass_the_budget_waits_for_the_next_minute():
    clock = Clock(at=1_800_000_000 + 30.0)
    gate = Gate(KLINES_WEIGHT_BUDGET - 1)

    def sleep(seconds):
        clock.sleep(seconds)
        gate.used = 0  # a new minute: nothing counted yet

    waited = pace_klines_request(gate, weight=2, clock=clock, sleep=sleep)
    assert waited == pytest.approx(30.0 + BOOKS_BURST_SECONDS)
    assert pace_klines_request(Gate(KLINES_WEIGHT_BUDGET - 2), weight=2, clock=clock, sleep=clock.sleep) == 0


def test_the_minute_run_at_500_symbols_stays_within_half_the_limit():
    """The issue's budget: books of 500 symbols (5 each) plus klines paced under the budget."""
    books = 500 * depth_weight(100)
    assert books + (KLINES_WEIGHT_BUDGET - books) <= 0.5 * 6000


@pytest.mark.parametrize(("minutes", "weight"), [(1, 2), (5, 2), (1000, 2), (1001, 4), (1440, 4), (2001, 6)])
def test_a_klines_span_weighs_two_per_thousand_minutes(minutes, weight):
    from datetime import UTC, datetime, timedelta

    from acts_pipeline.exchange import klines_weight

    start = datetime(2026, 11, 26, tzinfo=UTC)
    assert klines_weight(start, start + timedelta(minutes=minutes)) == weight
