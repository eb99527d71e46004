"""`AlertWebhook`: posts alert messages to a Slack-compatible incoming webhook, with its retries.

The URL is a secret: Slack's, for one, carries its token in the path, and anyone holding it can
post to the channel. The code location binds the field to `ACTS_ALERT_WEBHOOK_URL` with `EnvVar`
(`environment.py`), so the UI's resource page names the variable and never shows the value, and
nothing here puts it in a message: errors name the webhook's host only, and any echo of the URL
or its path in an answer is scrubbed.
"""

from __future__ import annotations

import http.client
import json
import socket
import time
import urllib.error
import urllib.request
from datetime import timedelta
from urllib.parse import urlsplit

from dagster import ConfigurableResource
from pydantic import Field

from acts_pipeline import settings
from acts_pipeline.core.alerting import Policy

#: Answers worth trying again: the receiver is busy or failing for now.
RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
#: A Retry-After longer than this is not waited for within a tick: the message waits for the next.
MAX_RETRY_AFTER_SECONDS = 10.0


class AlertDeliveryError(Exception):
    """A message could not be delivered. Never carries the webhook's URL."""


class AlertWebhook(ConfigurableResource):
    """Where alerts go: a Slack-compatible incoming webhook (`{"text": ...}`), and how often an
    ongoing problem is repeated. Without a URL, alerts are off."""

    url: str = Field(
        default="",
        description="The Slack-compatible incoming webhook alerts are posted to as {\"text\": ...} "
        "(ACTS_ALERT_WEBHOOK_URL, a secret: the UI shows the variable's name, never its value). "
        "Empty: alerts are off.")
    reminder_minutes: int = Field(
        default=settings.DEFAULT_ALERT_REMINDER_MINUTES,
        description="While a problem lasts, it is said again at most this often, in minutes "
        "(ACTS_ALERT_REMINDER_MINUTES, 1..10080); its end is always said.")
    deployment: str = Field(
        default="ACTS", description="How each message names this platform, e.g. 'ACTS PROD' where several "
        "deployments post to one channel (ACTS_ALERT_DEPLOYMENT; unset: 'ACTS' and the environment, ACTS_ENV, "
        "as 'ACTS DEV', 'ACTS TEST', 'ACTS PROD').")
    timeout_seconds: float = Field(
        default=3.0, description="How long one post may take before it is abandoned and tried again (a chat "
        "webhook answers within a second).")
    attempts: int = Field(
        default=3, description="Posts of one message per sensor tick (the first and its retries, on a "
        "connection error, a timeout, a 429 or a 5xx); a message not delivered waits for the next tick.")
    retry_pause_seconds: float = Field(
        default=0.5, description="The pause before the first retry; it doubles for each further one.")

    def webhook_url(self) -> str | None:
        """The URL, None when alerts are off; `ConfigurationError` naming the variable (not the
        value) if it is not an http(s) URL."""
        return settings.parse_alert_webhook_url(self.url)

    def enabled(self) -> bool:
        return self.webhook_url() is not None

    def policy(self) -> Policy:
        minutes = settings.parse_alert_reminder_minutes(self.reminder_minutes)
        return Policy(reminder_every=timedelta(minutes=minutes), deployment=self.deployment)

    def where(self) -> str:
        """The webhook as a log line may name it: its host only."""
        url = self.webhook_url()
        return f"the webhook on {urlsplit(url).hostname}" if url else "no webhook"

    def post(self, payload: dict, *, deadline: float | None = None) -> int:
        """Posts `payload` as JSON; retries what may pass (see `attempts`) until `deadline`
        (`time.monotonic()`), if given. Returns the attempts it took; `AlertDeliveryError` if
        it was not delivered."""
        url = self.webhook_url()
        if url is None:
            raise AlertDeliveryError("alerts are off: ACTS_ALERT_WEBHOOK_URL is not set")
        body = json.dumps(payload).encode()
        pause = self.retry_pause_seconds
        last = "not tried"
        for attempt in range(1, max(1, self.attempts) + 1):
            timeout = self.timeout_seconds
            if deadline is not None:
                timeout = min(timeout, deadline - time.monotonic())
                if timeout < 0.2:
                    break
            wait = pause
            try:
                request = urllib.request.Request(url, data=body, method="POST",
                                                 headers={"Content-Type": "application/json; charset=utf-8"})
                with urllib.request.urlopen(request, timeout=timeout) as response:
                    response.read()
                return attempt
            except urllib.error.HTTPError as exc:
                answer = _scrub(exc.read(300).decode(errors="replace").strip(), url)
                last = f"HTTP {exc.code} from {self.where()}" + (f": {answer}" if answer else "")
                if exc.code not in RETRYABLE_STATUSES:
                    raise AlertDeliveryError(last) from None
                retry_after = _seconds(exc.headers.get("Retry-After"))
                if retry_after is not None:
                    if retry_after > MAX_RETRY_AFTER_SECONDS:
                        raise AlertDeliveryError(f"{last} (retry after {retry_after:g} s)") from None
                    wait = max(wait, retry_after)
            except (urllib.error.URLError, http.client.HTTPException, OSError, socket.timeout) as exc:
                reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
                last = f"{self.where()} did not answer: {_scrub(str(reason) or type(reason).__name__, url)}"
            if attempt < self.attempts:
                if deadline is not None and time.monotonic() + wait >= deadline:
                    break
                time.sleep(wait)
                pause *= 2
        raise AlertDeliveryError(last)


def _seconds(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _scrub(text: str, url: str) -> str:
    """`text` without the URL or its path (a receiver may echo the request line)."""
    path = urlsplit(url).path
    text = text.replace(url, "<webhook>")
    return text.replace(path, "<webhook path>") if len(path) > 1 else text
