"""When a minute's book may be taken: at its close, and not later than a short tolerance after it.

Binance serves only the current book. A book fetched at 12:07:30 is not the book of minute 12:03,
however the run was labelled, so a minute whose close is further back than the tolerance is
refused instead of being filled with a later book.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from dagster import ConfigurableResource
from pydantic import Field

from acts_pipeline import settings
from acts_pipeline.core.errors import TooLateError
from acts_pipeline.core.cells import format_minute, minute_close


class CaptureClock(ConfigurableResource):
    """The wall clock of snapshot capture, with the tolerance after a minute's close."""

    #: Text, not a float: Dagster's `EnvVar` binds text and whole numbers only, and the variable
    #: takes fractions ("2.5"). Parsed by the setting's own parser, whose message names it.
    tolerance_seconds: str = Field(
        default=f"{settings.DEFAULT_CAPTURE_TOLERANCE_SECONDS:g}",
        description="Seconds after a minute's close during which its book may still be taken, "
        "0.5..50 (ACTS_CAPTURE_TOLERANCE_SECONDS). Later, the minute stays a gap: Binance serves only "
        "the current book.")

    def now(self) -> datetime:
        return datetime.now(UTC)

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    @property
    def tolerance(self) -> timedelta:
        return timedelta(seconds=settings.parse_capture_tolerance(self.tolerance_seconds))

    def deadline(self, minute: datetime) -> datetime:
        """The last moment a book may arrive and still be labelled with `minute`."""
        return minute_close(minute) + self.tolerance

    def wait_for_close(self, minute: datetime) -> datetime:
        """Sleep until `minute` closes; raise `TooLateError` if its tolerance has passed.

        Returns the close. Sleeping happens in short steps near the end, so the first request
        leaves within a few milliseconds after the boundary.
        """
        close = minute_close(minute)
        while True:
            now = self.now()
            if now >= close:
                break
            remaining = (close - now).total_seconds()
            self.sleep(remaining if remaining < 0.05 else remaining - 0.02)
        lateness = self.now() - close
        if lateness > self.tolerance:
            raise TooLateError(
                f"minute {format_minute(minute)} closed {lateness.total_seconds():.1f} s ago, more than "
                f"the {self.tolerance.total_seconds():g} s capture tolerance: Binance serves only the "
                "current book, so this minute's book can no longer be taken (it stays a gap)"
            )
        return close
