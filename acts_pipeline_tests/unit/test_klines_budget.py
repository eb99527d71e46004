"""How klines share the request weight with the minute's books (acts_pipeline/orchestration/klines_budget.py)."""

from collections import Counter

import pytest

from acts_pipeline.exchange import depth_weight
from acts_pipeline.orchestration.klines_budget import (
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


#: Binance's published request weights (Spot REST API, "General API Information" and the
#: endpoints' pages), written out here rather than read from the code under test.
BINANCE_WEIGHT_LIMIT_PER_MINUTE = 6000
BINANCE_DEPTH_WEIGHTS = [(1, 100, 5), (101, 500, 25), (501, 1000, 50), (1001, 5000, 250)]  # limit from, to, weight
BINANCE_KLINES_WEIGHT = 2
HALF_THE_LIMIT = BINANCE_WEIGHT_LIMIT_PER_MINUTE // 2


@pytest.mark.parametrize(("low", "high", "weight"), BINANCE_DEPTH_WEIGHTS)
def test_depth_weight_is_binances_table(low, high, weight):
    assert [depth_weight(limit) for limit in (low, (low + high) // 2, high)] == [weight] * 3


@pytest.mark.parametrize(("symbols", "book_weight", "ride_along"), [
    # 100 levels weigh 5: (5 + 2) x 428 = 2,996 fits half of 6,000, 429 x 7 = 3,003 does not.
    (20, 5, True), (428, 5, True), (429, 5, False), (500, 5, False),
    # 1,000 levels weigh 50: 57 x 52 = 2,964, 58 x 52 = 3,016.
    (57, 50, True), (58, 50, False),
])
def test_klines_ride_along_while_books_and_klines_fit_half_the_limit(symbols, book_weight, ride_along):
    assert (symbols * (book_weight + BINANCE_KLINES_WEIGHT) <= HALF_THE_LIMIT) is ride_along  # the table above
    assert klines_in_minute_run(symbols, book_weight) is ride_along


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


class ExchangeMinutes:
    """Binance's per-IP weight counter: what each wall-clock minute has spent, and the used weight
    the last response reported (`X-MBX-USED-WEIGHT-1M`), 0 at a new minute until a response."""

    def __init__(self, clock):
        self.clock = clock
        self.spent = Counter()

    def send(self, weight):
        self.spent[int(self.clock() // 60)] += weight

    @property
    def used_weight(self):
        return self.spent[int(self.clock() // 60)]


def test_a_day_of_catch_up_at_500_symbols_keeps_every_minute_within_half_the_limit():
    """The module's promise: a day of downtime at 500 symbols (1,440 minutes: two requests of
    1,000 minutes each per symbol) is caught up while each minute's books are fetched, and no
    wall-clock minute, books included, spends more than half of Binance's 6,000."""
    start = 1_800_000_000 + 7.0  # 7 s into a minute, its books already fetched
    clock = Clock(at=start)
    exchange = ExchangeMinutes(clock)
    books = 500 * 5  # 500 books of 100 levels
    exchange.spent[int(start // 60)] = books
    books_fetched = {int(start // 60)}

    def sleep(seconds):
        clock.sleep(seconds)
        if clock.at - start > 15 * 60:
            raise AssertionError("the catch-up still waits after 15 minutes")
        minute = int(clock.at // 60)
        if minute not in books_fetched:  # the minute run fetches its books in its first second
            books_fetched.add(minute)
            exchange.spent[minute] += books

    requests = 500 * 2
    for _ in range(requests):
        pace_klines_request(exchange, weight=BINANCE_KLINES_WEIGHT, clock=clock, sleep=sleep)
        assert clock.at % 60 >= 1.0, "a klines request during the books' burst"
        exchange.send(BINANCE_KLINES_WEIGHT)
        clock.at += 0.05  # the request's round trip
    assert max(exchange.spent.values()) <= HALF_THE_LIMIT
    assert len(exchange.spent) <= 10, "spread over a few minutes"
    assert sum(exchange.spent.values()) == len(exchange.spent) * books + requests * BINANCE_KLINES_WEIGHT


@pytest.mark.parametrize(("minutes", "weight"), [(1, 2), (5, 2), (1000, 2), (1001, 4), (1440, 4), (2001, 6)])
def test_a_klines_span_weighs_two_per_thousand_minutes(minutes, weight):
    from datetime import UTC, datetime, timedelta

    from acts_pipeline.exchange import klines_weight

    start = datetime(2026, 11, 26, tzinfo=UTC)
    assert klines_weight(start, start + timedelta(minutes=minutes)) == weight
