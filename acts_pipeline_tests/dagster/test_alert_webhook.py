"""`AlertWebhook` against a real local HTTP receiver: it posts Slack's `{"text": ...}`, retries what
may pass (a 5xx, a 429 after its Retry-After, a timeout), gives up on what will not (a 404), stops
at its deadline, and never says the URL, whose path is the secret."""

import socket
import time

import pytest

from acts_pipeline.core.errors import ConfigurationError
from acts_pipeline.orchestration.alert_webhook import AlertDeliveryError, AlertWebhook
from acts_pipeline_tests.webhook_receiver import WebhookReceiver

SECRET = "s3cr3tT0kenInThePath"


@pytest.fixture
def receiver():
    with WebhookReceiver(path=f"/services/T0ACTS/B0ACTS/{SECRET}") as receiver:
        yield receiver


def webhook(url, **fields):
    return AlertWebhook(url=url, retry_pause_seconds=0.05, **fields)


def test_a_message_is_posted_as_slack_json(receiver):
    assert webhook(receiver.url).post({"text": "[ACTS] PROBLEM: minute runs are failing"}) == 1
    [message] = receiver.received
    assert message.path == f"/services/T0ACTS/B0ACTS/{SECRET}"
    assert message.body == {"text": "[ACTS] PROBLEM: minute runs are failing"}


def test_a_5xx_and_a_429_are_retried_after_their_retry_after(receiver):
    receiver.answer_next(503, (429, {"Retry-After": "0.3"}, "rate_limited"))
    started = time.monotonic()
    assert webhook(receiver.url).post({"text": "x"}) == 3
    assert time.monotonic() - started >= 0.3  # the Retry-After was waited for
    assert receiver.attempts == 3 and receiver.texts() == ["x"]


def test_a_refusal_is_not_retried_and_its_echo_of_the_url_is_scrubbed(receiver):
    receiver.answer_next((404, {}, f"Cannot POST /services/T0ACTS/B0ACTS/{SECRET} (no_service)"))
    with pytest.raises(AlertDeliveryError) as raised:
        webhook(receiver.url).post({"text": "x"})
    assert str(raised.value) == "HTTP 404 from the webhook on 127.0.0.1: Cannot POST <webhook path> (no_service)"
    assert receiver.attempts == 1


def test_retries_run_out_with_the_last_reason_and_never_the_url(receiver):
    receiver.answer_next(500, 502, 500)
    with pytest.raises(AlertDeliveryError) as raised:
        webhook(receiver.url, attempts=3).post({"text": "x"})
    assert receiver.attempts == 3 and receiver.received == []
    assert str(raised.value) == "HTTP 500 from the webhook on 127.0.0.1: error 500" and SECRET not in repr(raised.value)


def test_a_long_retry_after_waits_for_the_next_tick(receiver):
    receiver.answer_next((429, {"Retry-After": "60"}, ""))
    started = time.monotonic()
    with pytest.raises(AlertDeliveryError, match=r"HTTP 429 from the webhook on 127.0.0.1 \(retry after 60 s\)"):
        webhook(receiver.url).post({"text": "x"})
    assert time.monotonic() - started < 1


def test_a_webhook_that_does_not_answer_is_abandoned_at_the_deadline():
    with WebhookReceiver(path=f"/hook/{SECRET}", delay=3) as slow:
        started = time.monotonic()
        with pytest.raises(AlertDeliveryError) as raised:
            webhook(slow.url, timeout_seconds=5, attempts=3).post({"text": "x"}, deadline=time.monotonic() + 1.0)
        assert time.monotonic() - started < 1.8
        assert str(raised.value).startswith("the webhook on 127.0.0.1 did not answer: ") and SECRET not in str(raised.value)


def test_a_closed_port_is_a_delivery_error_without_the_url():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/hook/{SECRET}"
    with pytest.raises(AlertDeliveryError) as raised:
        webhook(url, attempts=2).post({"text": "x"})
    assert "did not answer" in str(raised.value) and "refused" in str(raised.value).lower()
    assert SECRET not in str(raised.value) and str(port) not in str(raised.value)


def test_without_a_url_alerts_are_off_and_a_bad_one_names_only_the_variable():
    assert not AlertWebhook().enabled() and AlertWebhook().where() == "no webhook"
    with pytest.raises(AlertDeliveryError, match="alerts are off"):
        AlertWebhook().post({"text": "x"})
    with pytest.raises(ConfigurationError, match="ACTS_ALERT_WEBHOOK_URL must be an http"):
        AlertWebhook(url=f"hooks.slack.com/services/{SECRET}").enabled()


def test_the_reminder_interval_and_the_deployment_make_the_policy():
    policy = AlertWebhook(url="http://127.0.0.1:1/x", reminder_minutes=15, deployment="ACTS PROD").policy()
    assert policy.reminder_every.total_seconds() == 900 and policy.deployment == "ACTS PROD"
    with pytest.raises(ConfigurationError, match="ACTS_ALERT_REMINDER_MINUTES must be between 1 and 10080, got 0"):
        AlertWebhook(reminder_minutes=0).policy()
