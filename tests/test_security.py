"""Security: the API key stays secret, and the app fetches nothing it is handed.

The admin's pages (escaping, POST-only actions, permissions, CSRF) are tested in the
test_admin*.py modules; this module checks what no page test would catch.
"""

from __future__ import annotations

import logging
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
from django_smsfly.backends.http import HTTPBackend
from django_smsfly.client import SmsFlyClient
from django_smsfly.exceptions import SmsFlyAPIError, SmsFlyBadReply, SmsFlyError
from django_smsfly.models import ChannelStatus, Message
from django_smsfly.statuses import Status
from tests.conftest import API_KEY, API_URL


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


# -- no piece of the key: texts cut after scrubbing, successful replies scrubbed ----------
#
# An attacker's server echoes the key where the client keeps only the start of a text
# (200 characters of an error page as the description, 500 as the body). Cut first and
# scrubbed after, a key straddling the cut would leave its start behind, no longer
# recognisable as the key. And a key echoed inside a successful reply would be stored.

#: Long and random-looking, with a ``/`` and a ``+`` that percent-encoding and PHP's
#: json_encode write differently. Every run of 4 of its characters holds a digit or a
#: symbol, so none occurs by chance in the texts around it.
FRAGMENT_KEY = "q7ZtR2/xK9vLp+4mWn8sYc3HbJ6dF0gA1eUo"
#: How the key reads URL-encoded and JSON-escaped by PHP.
FRAGMENT_KEY_FORMS = (
    FRAGMENT_KEY,
    FRAGMENT_KEY.replace("/", "%2F").replace("+", "%2B"),
    FRAGMENT_KEY.replace("/", "\\/"),
)
#: The shortest piece of the key searched for. Shorter runs occur in ordinary text by
#: chance, and a piece of 3 characters tells an attacker under 18 of the key's ~214 bits.
MIN_PIECE = 4


def _pieces_of_the_key(text: str) -> set[str]:
    """Every run of :data:`MIN_PIECE` characters of the key (in any of its forms, in any
    case) found in ``text``: a prefix, a suffix or any piece of the key is caught."""
    found = text.lower()
    return {
        form[i : i + MIN_PIECE]
        for form in FRAGMENT_KEY_FORMS
        for i in range(len(form) - MIN_PIECE + 1)
        if form[i : i + MIN_PIECE].lower() in found
    }


def _texts_of(exc: BaseException) -> dict[str, str]:
    """Everything of an exception that can end up in a log, a page or a database row."""
    return {
        "str": str(exc),
        "repr": repr(exc),
        "args": repr(exc.args),
        "description": str(getattr(exc, "description", "")),
        "body": str(getattr(exc, "body", "")),
        "attributes": repr(vars(exc)),
    }


def _assert_no_piece_of_the_key(exc: BaseException, log: str) -> None:
    texts = {**_texts_of(exc), "log": log}
    leaks = {
        name: sorted(found) for name, text in texts.items() if (found := _pieces_of_the_key(text))
    }
    assert not leaks, leaks


@pytest.fixture
def keyed_client(mocked: Any) -> Iterator[SmsFlyClient]:
    """A client with :data:`FRAGMENT_KEY` on the real HTTP backend, no retries."""
    backend = HTTPBackend(api_url=API_URL, max_retries=0, sleep=lambda seconds: None)
    smsfly = SmsFlyClient(FRAGMENT_KEY, backend=backend, sms_source="InfoCenter")
    yield smsfly
    smsfly.close()


def _page_with_the_key_at(offset: int, html: bool) -> str:
    """An error page of 700 characters that echoes the key at ``offset``."""
    start = "<html><body><p>Invalid key: " if html else "Invalid key: "
    before = start + "." * (offset - len(start))
    after = ("</p></body></html>" if html else "") + "\n"
    return before + FRAGMENT_KEY + "." * (700 - offset - len(FRAGMENT_KEY) - len(after)) + after


# Offsets around both cuts: the key starts before a cut and ends after it (the leaks),
# ends exactly at it, or starts at or after it.
CUT_OFFSETS = [164, 170, 190, 196, 199, 200, 210, 464, 470, 490, 496, 499, 500, 510]


@pytest.mark.parametrize("offset", CUT_OFFSETS)
@pytest.mark.parametrize(
    ("status", "html"), [(404, True), (503, False), (500, True), (200, False), (200, True)]
)
def test_no_piece_of_the_key_survives_an_error_page_cut_across_it(
    keyed_client: SmsFlyClient,
    mocked: Any,
    caplog: pytest.LogCaptureFixture,
    status: int,
    html: bool,
    offset: int,
) -> None:
    caplog.set_level(logging.DEBUG)
    page = _page_with_the_key_at(offset, html)
    content_type = "text/html" if html else "text/plain"
    mocked.post(API_URL, body=page, status=status, content_type=content_type)
    with pytest.raises(SmsFlyError) as caught:
        keyed_client.send_sms("380501234567", "Hi")
    _assert_no_piece_of_the_key(caught.value, caplog.text)
    # The page is still there to read, the key replaced where it stood (when kept).
    kept = getattr(caught.value, "body" if status == 200 else "description")
    assert kept.startswith("<html>" if html else "Invalid key: ")


@pytest.mark.parametrize("offset", [10, 150, 190, 199, 490, 499])
@pytest.mark.parametrize("status", [400, 500])
def test_no_piece_of_the_key_survives_a_json_error_that_echoes_it(
    keyed_client: SmsFlyClient,
    mocked: Any,
    caplog: pytest.LogCaptureFixture,
    status: int,
    offset: int,
) -> None:
    caplog.set_level(logging.DEBUG)
    description = "." * offset + FRAGMENT_KEY + "." * 300
    error = {"code": "INVKEY", "description": description}
    mocked.post(API_URL, json={"success": 0, "error": error}, status=status)
    with pytest.raises(SmsFlyAPIError) as caught:
        keyed_client.get_balance()
    _assert_no_piece_of_the_key(caught.value, caplog.text)
    assert caught.value.description == "." * offset + "***" + "." * 300
    assert (caught.value.code, caught.value.http_status) == ("INVKEY", status)


def test_a_key_echoed_as_the_error_code_is_scrubbed_before_it_is_upper_cased(
    keyed_client: SmsFlyClient, mocked: Any, caplog: pytest.LogCaptureFixture
) -> None:
    mocked.post(API_URL, json={"success": 0, "error": {"code": FRAGMENT_KEY}}, status=400)
    with pytest.raises(SmsFlyAPIError) as caught:
        keyed_client.get_balance()
    _assert_no_piece_of_the_key(caught.value, caplog.text)
    assert caught.value.code == "***"


@pytest.mark.parametrize(
    "echo",
    [
        # A page linking back with the key in its query string, percent-encoded.
        "<a href='/login?key=" + FRAGMENT_KEY_FORMS[1] + "'>again</a>",
        # ... with lower-case hex, as some encoders write it.
        "<a href='/login?key=" + FRAGMENT_KEY_FORMS[1].lower().replace("q7ztr2", "q7ZtR2") + "'>",
        # PHP warnings before the JSON: not readable as JSON, and json_encode wrote the
        # key's "/" as "\/".
        "<b>Warning</b>: Undefined index<br>\n"
        + '{"success":0,"error":{"code":"INVKEY","description":"bad key '
        + FRAGMENT_KEY_FORMS[2]
        + '"}}',
    ],
    ids=["url-encoded", "url-encoded-lower-hex", "json-escaped"],
)
def test_no_piece_of_the_key_survives_in_an_encoded_echo(
    keyed_client: SmsFlyClient, mocked: Any, caplog: pytest.LogCaptureFixture, echo: str
) -> None:
    mocked.post(API_URL, body=echo, status=500, content_type="text/html")
    with pytest.raises(SmsFlyError) as caught:
        keyed_client.get_balance()
    _assert_no_piece_of_the_key(caught.value, caplog.text)


def test_a_key_quoted_by_a_parse_error_is_scrubbed_before_the_quote_is_cut(
    keyed_client: SmsFlyClient, mocked: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # The error quotes the first 40 characters of the bad value: the key's first 26.
    mocked.post(API_URL, json={"success": 1, "data": {"balance": "not a number: " + FRAGMENT_KEY}})
    with pytest.raises(SmsFlyBadReply) as caught:
        keyed_client.get_balance()
    _assert_no_piece_of_the_key(caught.value, caplog.text)
    assert str(caught.value) == "GETBALANCE: balance: 'not a number: ***' is not a number"


class CuttingBackend(BaseBackend):
    """A backend written without care: it cuts an echoing page at 500 characters
    without scrubbing, so its text ends in the start of the key (kept whole as a bad
    reply's body)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def send(self, body: Mapping[str, Any]) -> RawReply:
        return RawReply(200, None, text=self.text[:500])


@pytest.mark.parametrize("piece", [4, 5, 20, 35])
def test_no_piece_of_the_key_survives_a_text_a_backend_cut_without_scrubbing(
    caplog: pytest.LogCaptureFixture, piece: int
) -> None:
    page = "x" * (500 - piece) + FRAGMENT_KEY
    smsfly = SmsFlyClient(FRAGMENT_KEY, backend=CuttingBackend(page))
    with pytest.raises(SmsFlyBadReply) as caught:
        smsfly.get_balance()
    _assert_no_piece_of_the_key(caught.value, caplog.text)


# -- a key echoed in a successful reply --------------------------------------------------


def _ok(data: dict[str, Any]) -> dict[str, Any]:
    return {"success": 1, "date": "2021-12-17 10:36:07 +0200", "data": data}


def test_a_key_echoed_in_a_sent_message_id_is_scrubbed(
    keyed_client: SmsFlyClient, mocked: Any
) -> None:
    sms = {"status": "ACCEPTD", "date": "2021-12-17 10:36:07 +0200", "cost": "0.479"}
    mocked.post(API_URL, json=_ok({"messageID": f"FAPI{FRAGMENT_KEY}01", "sms": sms}))
    result = keyed_client.send_sms("380501234567", "Hi")
    assert result.message_id == "FAPI***01"
    assert not _pieces_of_the_key(repr(result))


def test_a_key_echoed_in_a_status_reply_is_scrubbed(
    keyed_client: SmsFlyClient, mocked: Any
) -> None:
    status = {
        "messageID": "FAPI01",
        "viber": {"status": "DELIVRD", "date": "2021-12-17 10:36:09", "label": FRAGMENT_KEY},
        "sms": {"status": FRAGMENT_KEY, "date": "2021-12-17 10:36:12"},
    }
    mocked.post(API_URL, json=_ok(status))
    result = keyed_client.get_message_status("FAPI01")
    assert result["viber"].label == "***"
    assert (result["sms"].raw_status, result["sms"].status) == ("***", Status.UNKNOWN)
    assert not _pieces_of_the_key(repr(result))


def test_a_key_echoed_in_the_sender_names_is_scrubbed(
    keyed_client: SmsFlyClient, mocked: Any
) -> None:
    mocked.post(API_URL, json=_ok({"sms": ["InfoCenter", FRAGMENT_KEY], "viber": ["Promo"]}))
    sources = keyed_client.get_sources()
    assert sources.sms == ("InfoCenter", "***")
    assert not _pieces_of_the_key(repr(sources))


@pytest.mark.django_db
def test_a_key_echoed_in_a_successful_send_is_not_stored(settings: Any, mocked: Any) -> None:
    settings.SMSFLY = {
        **settings.SMSFLY,
        "BACKEND": "django_smsfly.backends.http.HTTPBackend",
        "API_URL": API_URL,
        "API_KEY": FRAGMENT_KEY,
    }
    services.reset_client()
    sms = {"status": "ACCEPTD", "date": "2021-12-17 10:36:07 +0200", "label": FRAGMENT_KEY}
    mocked.post(API_URL, json=_ok({"messageID": f"FAPI{FRAGMENT_KEY}", "sms": sms}))
    message = services.send_sms("380501234567", "Hi")
    assert message.state == Message.State.ACCEPTED
    assert message.message_id == "FAPI***"
    rows = [*Message.objects.values(), *ChannelStatus.objects.values()]
    assert not _pieces_of_the_key(repr(rows))
