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


# -- the admin's pages, against the sandbox served over HTTP with a real key ----------------


@pytest.fixture
def admin_over_http(settings: Any) -> Iterator[tuple[Any, Any]]:
    """The admin of a site configured like production: HTTP backend, a key, a server."""
    from django.core.cache import cache
    from django.test import Client

    from django_smsfly.backends.sandbox import Simulator
    from django_smsfly.backends.sandbox_server import SandboxServer

    simulator = Simulator(api_key=API_KEY)
    with SandboxServer(simulator) as server:
        settings.SMSFLY = {
            **settings.SMSFLY,
            "BACKEND": "django_smsfly.backends.http.HTTPBackend",
            "API_URL": server.url,
            "API_KEY": API_KEY,
            "TIMEOUT": (2.0, 2.0),
        }
        services.reset_client()
        cache.clear()
        from django.contrib.auth.models import User

        user = User.objects.create_superuser("boss", "boss@example.com", "pw")
        web = Client()
        web.force_login(user)
        yield web, simulator
        services.reset_client()
        cache.clear()


@pytest.mark.django_db
def test_no_admin_page_shows_the_key(admin_over_http: tuple[Any, Any]) -> None:
    from django.urls import reverse

    from django_smsfly.backends.sandbox import Fault

    web, simulator = admin_over_http
    accepted = services.send_sms("380501234567", "Hi")
    simulator.inject(Fault.TIMEOUT, action="SENDMESSAGE")
    unknown = services.send_sms("380501234568", "Hi")
    assert accepted.state == Message.State.ACCEPTED
    assert unknown.state == Message.State.UNKNOWN
    pages = {
        "list": web.get(reverse("admin:django_smsfly_message_changelist")),
        "detail": web.get(reverse("admin:django_smsfly_message_change", args=[accepted.pk])),
        "unknown": web.get(reverse("admin:django_smsfly_message_change", args=[unknown.pk])),
        "compose": web.get(reverse("admin:django_smsfly_message_add")),
        "compose errors": web.post(
            reverse("admin:django_smsfly_message_add"),
            {"recipient": "not a number", "channels": "sms", "sms_text": "x", "_send": "1"},
        ),
        "estimate": web.post(
            reverse("admin:django_smsfly_message_add"),
            {"recipient": "380501234567", "channels": "sms", "sms_text": "x", "_estimate": "1"},
        ),
        "overview": web.get(reverse("admin:django_smsfly_message_overview")),
        "resend confirm": web.get(
            reverse("admin:django_smsfly_message_resend", args=[unknown.pk])
        ),
    }
    # And the pages when SMS-fly refuses the key outright (the balance panel's error).
    from django.core.cache import cache

    cache.clear()
    services.reset_client()
    simulator.inject(Fault.FORBIDDEN, times=10)
    pages["list, API refusing"] = web.get(reverse("admin:django_smsfly_message_changelist"))
    for name, response in pages.items():
        assert response.status_code in (200, 302), name
        assert API_KEY not in response.content.decode(), name
    assert "380501234567" in pages["list"].content.decode()  # the pages are real
