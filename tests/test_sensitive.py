"""``sensitive=True``: the secret is only in the request body sent to SMS-fly.

The finding: a one-time code sent with ``send_sms`` was stored in plain text in
``Message.content`` and shown to every admin user. A sensitive message keeps its text
masked in every record, log line, page and error; it is sent at once and never kept for
a later try.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
import responses
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from django_smsfly import services
from django_smsfly.backends.sandbox import Fault, Simulator
from django_smsfly.exceptions import SmsFlyValidationError
from django_smsfly.models import ChannelStatus, Message, StatusChange
from tests.conftest import API_URL

pytestmark = pytest.mark.frozen_sandbox

NUMBER = "380501234567"
CODE = "480215"
TEXT = f"Your code: {CODE}"
KEY = "sensitive-test-key-0c7f1e"


def everything_stored() -> str:
    """Every row the app wrote, as text."""
    rows: list[Any] = []
    for model in (Message, ChannelStatus, StatusChange):
        rows += list(model.objects.values())
    return repr(rows)


@pytest.mark.django_db
def test_a_sensitive_sms_is_stored_masked_and_sent_in_full(sandbox: Simulator) -> None:
    message = services.send_sms(NUMBER, TEXT, sensitive=True)
    stored = Message.objects.get(pk=message.pk)
    assert stored.state == Message.State.ACCEPTED
    assert stored.sensitive
    assert stored.content["sms"]["text"] == "Your code: ••••••"
    assert CODE not in everything_stored()
    assert CODE not in repr(message) + str(message)
    [sent] = sandbox.requests_for("SENDMESSAGE")
    assert sent.body["data"]["sms"]["text"] == TEXT  # only the request carries it


@pytest.mark.django_db
def test_a_sensitive_viber_message_with_fallback_is_masked_on_both_channels(
    sandbox: Simulator,
) -> None:
    message = services.send_viber(NUMBER, text=TEXT, sms_text=TEXT, sensitive=True)
    assert message.content["viber"]["text"] == "Your code: ••••••"
    assert message.content["sms"]["text"] == "Your code: ••••••"
    assert CODE not in everything_stored()


@pytest.mark.django_db
def test_a_sensitive_message_cannot_be_deferred(sandbox: Simulator) -> None:
    with pytest.raises(SmsFlyValidationError, match="defer"):
        services.send_sms(NUMBER, TEXT, sensitive=True, defer=True)
    assert not Message.objects.exists()
    assert sandbox.requests_for("SENDMESSAGE") == []


@pytest.mark.django_db
def test_a_refused_sensitive_message_fails_instead_of_waiting_in_the_queue(
    sandbox: Simulator,
) -> None:
    sandbox.inject(Fault.RATE_LIMITED, action="SENDMESSAGE", times=10)
    message = services.send_sms(NUMBER, TEXT, sensitive=True)
    stored = Message.objects.get(pk=message.pk)
    assert stored.state == Message.State.FAILED  # not queued: its text was not kept
    assert stored.retry_at is None
    assert services.resend(stored.pk) is None  # nor sent again with the masked text
    services.run_sync_pass()
    assert Message.objects.get(pk=message.pk).state == Message.State.FAILED
    assert CODE not in everything_stored()


@pytest.mark.django_db
def test_the_http_backends_debug_log_shows_the_text_masked(
    http_site: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="django_smsfly"):
        services.send_sms(NUMBER, TEXT, sensitive=True)
        services.send_sms(NUMBER, "Your order 7731 has shipped")  # not sensitive
    assert CODE not in caplog.text
    assert "Your code: ••••••" in caplog.text
    assert "Your order 7731 has shipped" in caplog.text  # other texts stay readable
    [sent, _other] = http_site.requests_for("SENDMESSAGE")
    assert sent.body["data"]["sms"]["text"] == TEXT


@pytest.mark.django_db
@pytest.mark.parametrize("status", [400, 500])
def test_a_server_echoing_the_code_in_an_error_leaves_no_trace_of_it(
    settings: Any,
    mocked: responses.RequestsMock,
    caplog: pytest.LogCaptureFixture,
    status: int,
) -> None:
    settings.SMSFLY = {
        **settings.SMSFLY,
        "BACKEND": "django_smsfly.backends.http.HTTPBackend",
        "API_URL": API_URL,
        "API_KEY": KEY,
        "MAX_RETRIES": 0,
    }

    def echo(request: Any) -> tuple[int, dict[str, str], str]:
        text = json.loads(request.body)["data"]["sms"]["text"]
        if status == 500:  # an HTML page quoting the request
            return status, {"Content-Type": "text/html"}, f"<h1>Error</h1><p>{text}</p>"
        error = {"code": "INVTEXT", "description": f"cannot send '{text}'"}
        return status, {}, json.dumps({"success": 0, "error": error})

    mocked.add_callback(responses.POST, API_URL, callback=echo)
    with caplog.at_level(logging.DEBUG, logger="django_smsfly"):
        message = services.send_sms(NUMBER, TEXT, sensitive=True)
    stored = Message.objects.get(pk=message.pk)
    assert stored.state in {Message.State.FAILED, Message.State.UNKNOWN}
    assert stored.error_text  # the error is recorded...
    assert CODE not in everything_stored()  # ...without the code
    assert CODE not in caplog.text
    sent = mocked.calls[0].request.body
    assert isinstance(sent, bytes | str)
    assert json.loads(sent)["data"]["sms"]["text"] == TEXT


@pytest.mark.django_db
def test_the_admin_shows_a_sensitive_message_masked_and_offers_no_resend(
    sandbox: Simulator,
) -> None:
    sandbox.inject(Fault.TIMEOUT, action="SENDMESSAGE")
    message = services.send_sms(NUMBER, TEXT, sensitive=True)
    assert message.state == Message.State.UNKNOWN
    admin = User.objects.create_superuser("root", "root@example.com", "pw")
    browser = Client()
    browser.force_login(admin)
    for name in ("change", "changelist"):
        args = [message.pk] if name == "change" else []
        page = browser.get(reverse(f"admin:django_smsfly_message_{name}", args=args))
        assert page.status_code == 200
        assert CODE not in page.content.decode()
    change = browser.get(reverse("admin:django_smsfly_message_change", args=[message.pk]))
    assert 'id="smsfly-resend"' not in change.content.decode()
