"""Minutes inside the live partition window, for tests that touch Dagster partitions.

In the code location the minute partitions start `ACTS_PARTITION_WINDOW_HOURS` whole hours before
the hour it loaded and end at the minute in progress, and Dagster refuses a key outside them: a
test pinned to a calendar date stops working days later. The test session sets a 48-hour window
(`conftest.py`), so yesterday (UTC) is inside it, and stays inside it even if the session runs
past midnight. (The assets as defined in code take any minute since 2025.) Tests that
materialize, request runs or check keys take their minutes from here; pure functions of a date
(parsing, formatting, features) may keep literal dates.

Expected keys are spelled here with the key format written out, not with the code under test.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def recent_minute(hour: int = 10, minute: int = 0) -> datetime:
    """`hour:minute` UTC yesterday: a whole, closed minute every partition window contains."""
    if not (0 <= hour < 24 and 0 <= minute < 60):
        raise ValueError(f"not a time of day: {hour}:{minute}")
    midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight - timedelta(days=1) + timedelta(hours=hour, minutes=minute)


def minute_key(minute: datetime, symbol: str | None = None) -> str:
    """The partition key of `minute` (`2026-11-26-10:00`), or of its cell with `symbol`
    (`2026-11-26-10:00|BTCUSDT`)."""
    key = f"{minute.astimezone(UTC):%Y-%m-%d-%H:%M}"
    return key if symbol is None else f"{key}|{symbol}"


def iso_instant(minute: datetime, **offset: float) -> str:
    """The ISO 8601 instant `offset` (timedelta keywords) after `minute` starts, as
    `FixedClock(at=...)` takes it: `iso_instant(m, minutes=1, milliseconds=4)` is
    `2026-11-26T10:01:00.004000+00:00` for `m` 2026-11-26 10:00 UTC."""
    return (minute + timedelta(**offset)).isoformat()
