"""Security: the API key stays secret, and the app fetches nothing it is handed.

The admin's pages (escaping, POST-only actions, permissions, CSRF) are tested in the
test_admin*.py modules; this module checks what no page test would catch.
"""

from __future__ import annotations

import socket
import sys
import threading
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from django.test import RequestFactory, override_settings
from django.views.debug import ExceptionReporter

from django_smsfly import services
from django_smsfly.backends.base import BaseBackend, RawReply
from django_smsfly.client import SmsFlyClient
from django_smsfly.models import Message
from tests.conftest import API_KEY


class ExplodingBackend(BaseBackend):
    """A backend with a bug: it fails with an unexpected error while holding the body."""

    def send(self, body: Mapping[str, Any]) -> RawReply:
        payload = dict(body)  # a local holding the key, as any backend has
        raise RuntimeError(f"backend bug while sending {len(payload)} fields")


def _reports(exc_info: Any) -> tuple[str, str]:
    """The HTML error page (DEBUG) and the text report (error e-mails) for an exception."""
    request = RequestFactory().get("/admin/")
    reporter = ExceptionReporter(request, *exc_info)
    return reporter.get_traceback_html(), reporter.get_traceback_text()


@override_settings(DEBUG=False)
def test_the_key_is_in_no_error_report() -> None:
    """Production error reports (the e-mails to ADMINS, the 500 report) show every frame's
    variables; under the client's request every one of them is hidden."""
    client = SmsFlyClient(API_KEY, backend=ExplodingBackend(), sms_source="InfoCenter")
    try:
        client.send_sms("380501234567", "Hi")
    except RuntimeError:
        html, text = _reports(sys.exc_info())
    else:  # pragma: no cover - the backend always raises
        pytest.fail("the backend's error did not surface")
    # The report does show the failing frames (so it is useful) ...
    assert "backend bug while sending" in html
    assert "_exchange" in text
    # ... but never the key, in any frame's variables.
    assert API_KEY not in html
    assert API_KEY not in text


@pytest.mark.django_db
@override_settings(DEBUG=False)
def test_the_key_is_in_no_error_report_of_a_failing_send_through_the_services(
    settings: Any,
) -> None:
    settings.SMSFLY = {
        **settings.SMSFLY,
        "BACKEND": "tests.test_security.ExplodingBackend",
        "API_KEY": API_KEY,
    }
    services.reset_client()
    try:
        services.send_sms("380501234567", "Hi")
    except RuntimeError:
        html, text = _reports(sys.exc_info())
    else:  # pragma: no cover
        pytest.fail("the backend's error did not surface")
    assert API_KEY not in html
    assert API_KEY not in text
    assert "********" in text  # hidden, not merely absent
    # The message is not lost: its outcome is recorded as unknown.
    message = Message.objects.get()
    assert message.state == Message.State.UNKNOWN
    assert message.error_code == "INTERNAL"
    assert API_KEY not in message.error_text


@pytest.fixture
def listener() -> Iterator[tuple[str, list[str]]]:
    """A TCP listener on 127.0.0.1 that records every connection made to it."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    server.settimeout(0.2)
    seen: list[str] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, address = server.accept()
            except OSError:
                continue
            seen.append(f"{address[0]}:{address[1]}")
            conn.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    host, port = server.getsockname()
    yield f"{host}:{port}", seen
    stop.set()
    thread.join(timeout=2)
    server.close()


@pytest.mark.django_db
def test_image_and_button_urls_are_never_fetched(listener: tuple[str, list[str]]) -> None:
    address, connections = listener
    image = f"https://{address}/banner.png"
    button = f"https://{address}/offer"
    estimate = services.estimate_cost(
        "380501234567",
        channels=["viber", "sms"],
        viber={"text": "Hi", "image": image, "button_caption": "Open", "button_url": button},
        sms={"text": "Hi"},
    )
    assert estimate is not None
    message = services.send_viber(
        "380501234567",
        text="Hi",
        image=image,
        button_caption="Open",
        button_url=button,
        sms_text="Hi",
    )
    assert message.state == Message.State.ACCEPTED
    assert message.content["viber"]["image"] == image
    services.sync_statuses(message_pks=[message.pk], rate_limit=0)
    assert connections == []


def test_the_debug_page_lists_the_settings_without_the_key(settings: Any) -> None:
    """With DEBUG on, Django's page shows every frame's variables to the developer by
    design (docs/security.rst says so); its settings listing hides SMSFLY's key."""
    from django.views.debug import SafeExceptionReporterFilter

    settings.SMSFLY = {**settings.SMSFLY, "API_KEY": API_KEY}
    safe = SafeExceptionReporterFilter().get_safe_settings()
    assert API_KEY not in str(safe["SMSFLY"])
    assert safe["SMSFLY"]["API_KEY"] == SafeExceptionReporterFilter.cleansed_substitute
