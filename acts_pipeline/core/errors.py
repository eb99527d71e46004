"""Typed errors of the exchange edge and of configuration.

Every error names what went wrong (the symbol, the variable, the status) so that an operator
reading a failed run in the Dagster UI knows what to do without opening the code. None of them
carries a credential: URLs are reported without their query string or user info.
"""

from __future__ import annotations

from datetime import datetime


class ConfigurationError(ValueError):
    """A setting (an `ACTS_*` environment variable or resource field) has an unusable value."""


class ExchangeError(Exception):
    """Base of every failure to get usable data from the exchange."""

    #: Whether trying the same request again later can succeed.
    retryable: bool = True

    def __init__(self, message: str, *, symbol: str | None = None):
        super().__init__(message)
        self.symbol = symbol


class UnknownSymbolError(ExchangeError):
    """The exchange does not know the symbol, or it does not trade (Binance code -1121)."""

    retryable = False


class RateLimitedError(ExchangeError):
    """HTTP 429: the request weight per minute was exceeded; nothing may be sent before
    `retry_after` seconds have passed."""

    def __init__(self, message: str, *, retry_after: float, symbol: str | None = None):
        super().__init__(message, symbol=symbol)
        self.retry_after = retry_after


class BannedError(RateLimitedError):
    """HTTP 418: the IP is banned for ignoring 429s, until `until` (UTC)."""

    def __init__(self, message: str, *, retry_after: float, until: datetime, symbol: str | None = None):
        super().__init__(message, retry_after=retry_after, symbol=symbol)
        self.until = until


class ExchangeServerError(ExchangeError):
    """HTTP 5xx, or a transport failure (connection refused or dropped, timeout)."""


class ExchangeRequestError(ExchangeError):
    """HTTP 4xx other than the ones above: the request itself is wrong; retrying won't help."""

    retryable = False


class MalformedResponseError(ExchangeError):
    """A 2xx response whose body is not what Binance documents (bad JSON, a missing field,
    a price that is not a number, an unordered or crossed book)."""


class TooLateError(Exception):
    """A minute closed longer ago than the capture tolerance: its book can no longer be taken
    (Binance serves only the current book), so labelling a book with it would be a lie."""


class ReadRequestError(ValueError):
    """A read of the stored data (`acts_pipeline.read`) asks for what cannot be answered: a time
    range that is not one (start after end, a naive or unparsable time) or a symbol ACTS never
    stored. The message names the argument and the value."""
