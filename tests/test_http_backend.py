"""Tests of :mod:`django_smsfly.backends.http`.

Most tests fake HTTP with ``responses``; the failures ``responses`` cannot fake
faithfully (refused ports, slow servers, TLS handshakes, cut-short replies, keep-alive
reuse) run against real servers on 127.0.0.1. Nothing goes anywhere else.
"""

from __future__ import annotations

import errno
import http.client
import json
import logging
import socket
import ssl
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

import pytest
import requests
import responses
import urllib3
import urllib3.connection
import urllib3.exceptions
from django.core.exceptions import ImproperlyConfigured
from django.views.debug import ExceptionReporter
from responses.registries import OrderedRegistry

import django_smsfly
from django_smsfly.backends.base import RawReply
from django_smsfly.backends.http import HTTPBackend
from django_smsfly.exceptions import (
    SmsFlyBadReply,
    SmsFlyConnectionError,
    SmsFlyError,
    SmsFlyTimeout,
    SmsFlyTransportError,
    Verdict,
)
from tests.workers import run_together

URL = "https://sms-fly.ua/api/v2/api.php"
HOST = "sms-fly.ua"
KEY = "5f3c2b1a-SECRET-4d5e-8f90-0123456789ab"
OK_REPLY: dict[str, Any] = {
    "success": 1,
    "date": "2021-12-16 17:15:25 +0200",
    "data": {"balance": "91.477"},
}
READ_ONLY = "GETBALANCE"

_E = TypeVar("_E", bound=BaseException)
SEND = "SENDMESSAGE"


def make_body(action: str = SEND, **data: Any) -> dict[str, Any]:
    """A request body as the client builds it."""
    if not data and action == SEND:
        data = {
            "recipient": "380501234567",
            "channels": ["sms"],
            "sms": {"source": "InfoCenter", "ttl": 300, "text": "Код: 1234 — дякуємо"},
        }
    return {
        "auth": {"key": KEY, "appversion": "django-smsfly/test"},
        "action": action,
        "data": data,
    }


class Waits(list[float]):
    """An injectable ``sleep`` that records the waits instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def waits() -> Waits:
    return Waits()


@pytest.fixture
def backend_factory(waits: Waits) -> Iterator[Callable[..., HTTPBackend]]:
    made: list[HTTPBackend] = []

    def factory(**kwargs: Any) -> HTTPBackend:
        kwargs.setdefault("api_url", URL)
        kwargs.setdefault("sleep", waits)
        backend = HTTPBackend(**kwargs)
        made.append(backend)
        return backend

    yield factory
    for backend in made:
        backend.close()


@pytest.fixture
def backend(backend_factory: Callable[..., HTTPBackend]) -> HTTPBackend:
    return backend_factory()


@pytest.fixture
def mock() -> Iterator[responses.RequestsMock]:
    # Ordered: each registered reply is used once, in order; all must be used.
    with responses.RequestsMock(registry=OrderedRegistry) as rsps:
        yield rsps


@pytest.fixture
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make sure requests to 127.0.0.1 cannot be routed through a proxy from the env."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


# --- failures built the way requests and urllib3 build them -------------------------


def _pool() -> urllib3.HTTPSConnectionPool:
    return urllib3.HTTPSConnectionPool(HOST, 443)


def _raised(exc: _E, cause: BaseException | None = None) -> _E:
    """``exc`` after really raising it (from ``cause``), so it has a traceback."""
    try:
        raise exc from cause
    except BaseException:
        return exc
    raise AssertionError("unreachable")


def connection_refused() -> requests.ConnectionError:
    conn = urllib3.connection.HTTPSConnection(HOST, 443)
    refused = _raised(ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"))
    new_conn = _raised(
        urllib3.exceptions.NewConnectionError(
            conn, f"Failed to establish a new connection: {refused}"
        ),
        refused,
    )
    max_retry = _raised(urllib3.exceptions.MaxRetryError(_pool(), "/api/v2/api.php", new_conn))
    return requests.ConnectionError(max_retry)


def name_not_resolved() -> requests.ConnectionError:
    conn = urllib3.connection.HTTPSConnection(HOST, 443)
    gaierror = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    failure = urllib3.exceptions.NameResolutionError(HOST, conn, gaierror)
    return requests.ConnectionError(
        urllib3.exceptions.MaxRetryError(_pool(), "/api/v2/api.php", failure)
    )


def connect_timeout() -> requests.ConnectTimeout:
    conn = urllib3.connection.HTTPSConnection(HOST, 443)
    failure = urllib3.exceptions.ConnectTimeoutError(
        conn, f"Connection to {HOST} timed out. (connect timeout=5)"
    )
    return requests.ConnectTimeout(
        urllib3.exceptions.MaxRetryError(_pool(), "/api/v2/api.php", failure)
    )


def certificate_rejected() -> requests.exceptions.SSLError:
    failure = urllib3.exceptions.SSLError(
        ssl.SSLCertVerificationError(
            1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed"
        )
    )
    return requests.exceptions.SSLError(
        urllib3.exceptions.MaxRetryError(_pool(), "/api/v2/api.php", failure)
    )


def read_timeout() -> requests.ReadTimeout:
    cause = _raised(TimeoutError("timed out"))
    failure = _raised(
        urllib3.exceptions.ReadTimeoutError(_pool(), URL, "Read timed out. (read timeout=30)"),
        cause,
    )
    return requests.ReadTimeout(failure)


def connection_reset() -> requests.ConnectionError:
    reset = ConnectionResetError(errno.ECONNRESET, "Connection reset by peer")
    return requests.ConnectionError(urllib3.exceptions.ProtocolError("Connection aborted.", reset))


def remote_disconnected() -> requests.ConnectionError:
    gone = http.client.RemoteDisconnected("Remote end closed connection without response")
    return requests.ConnectionError(urllib3.exceptions.ProtocolError("Connection aborted.", gone))


def broken_chunks() -> requests.exceptions.ChunkedEncodingError:
    cut = urllib3.exceptions.IncompleteRead(10, 990)
    return requests.exceptions.ChunkedEncodingError(
        urllib3.exceptions.ProtocolError("Connection broken: IncompleteRead", cut)
    )


def tls_error_after_sending() -> requests.exceptions.SSLError:
    # An SSL error raised while the reply is read, not while connecting.
    eof = _raised(ssl.SSLEOFError(8, "EOF occurred in violation of protocol"))
    return requests.exceptions.SSLError(urllib3.exceptions.SSLError(eof))


NOT_SENT_FAILURES: dict[str, Callable[[], BaseException]] = {
    "refused": connection_refused,
    "dns": name_not_resolved,
    "connect-timeout": connect_timeout,
    "certificate": certificate_rejected,
}
UNKNOWN_FAILURES: dict[str, Callable[[], BaseException]] = {
    "read-timeout": read_timeout,
    "reset": connection_reset,
    "disconnected": remote_disconnected,
    "chunked": broken_chunks,
    "tls-after-sending": tls_error_after_sending,
}


def add_reply(
    mock: responses.RequestsMock,
    status: int = 200,
    *,
    json_body: Any = OK_REPLY,
    body: str | bytes | BaseException | None = None,
    headers: dict[str, str] | None = None,
    content_type: str = "application/json",
) -> None:
    if body is None:
        mock.add(responses.POST, URL, json=json_body, status=status, headers=headers)
    else:
        mock.add(
            responses.POST,
            URL,
            body=body,
            status=status,
            headers=headers,
            content_type=content_type,
        )


def sent_json(mock: responses.RequestsMock, index: int = 0) -> Any:
    raw = mock.calls[index].request.body
    assert isinstance(raw, bytes)
    return json.loads(raw)


# --- the request ----------------------------------------------------------------------


def test_posts_the_exact_body_as_json(backend: HTTPBackend, mock: responses.RequestsMock) -> None:
    add_reply(mock)
    body = make_body()

    backend.send(body)

    assert len(mock.calls) == 1
    request = mock.calls[0].request
    assert request.method == "POST"
    assert request.url == URL
    assert sent_json(mock) == body
    assert body["auth"]["key"] == KEY  # the caller's dict is left alone


def test_sends_json_headers_and_the_given_user_agent(
    backend_factory: Callable[..., HTTPBackend], mock: responses.RequestsMock
) -> None:
    add_reply(mock)
    backend = backend_factory(user_agent="django-smsfly/0.1.0 (+python-requests/2.32)")

    backend.send(make_body())

    headers = mock.calls[0].request.headers
    assert headers["Content-Type"] == "application/json"
    assert headers["Accept"] == "application/json"
    assert headers["User-Agent"] == "django-smsfly/0.1.0 (+python-requests/2.32)"
    assert "Cookie" not in headers


def test_default_user_agent_names_the_package_version(
    backend: HTTPBackend, mock: responses.RequestsMock
) -> None:
    add_reply(mock)

    backend.send(make_body())

    expected = f"django-smsfly/{django_smsfly.__version__}"
    assert mock.calls[0].request.headers["User-Agent"] == expected


def test_passes_timeouts_and_always_verifies_tls(
    backend_factory: Callable[..., HTTPBackend],
    mock: responses.RequestsMock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A CA bundle from the environment would replace True by its path (still verifying);
    # without one the request must carry verify=True itself.
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    add_reply(mock)
    backend = backend_factory(timeout=(3.0, 7.5))
    backend.session.verify = False  # not even the session's setting can turn it off

    backend.send(make_body())

    kwargs = mock.calls[0].request.req_kwargs  # type: ignore[attr-defined]
    assert kwargs["timeout"] == (3.0, 7.5)
    assert kwargs["verify"] is True
    assert kwargs["stream"] is True


def test_a_single_timeout_number_is_used_for_connect_and_read(
    backend_factory: Callable[..., HTTPBackend],
) -> None:
    assert backend_factory(timeout=12).timeout == (12.0, 12.0)


def test_redirects_are_not_followed(backend: HTTPBackend, mock: responses.RequestsMock) -> None:
    # Following a 307 would POST the API key to wherever the Location points.
    add_reply(mock, 307, body="", headers={"Location": "https://elsewhere.example/steal"})

    reply = backend.send(make_body())

    assert reply.http_status == 307
    assert reply.headers["location"] == "https://elsewhere.example/steal"
    assert len(mock.calls) == 1


def test_cookies_are_never_kept(backend: HTTPBackend, mock: responses.RequestsMock) -> None:
    add_reply(mock, headers={"Set-Cookie": "PHPSESSID=abc123; path=/"})
    add_reply(mock)

    backend.send(make_body(READ_ONLY))
    backend.send(make_body(READ_ONLY))

    assert "Cookie" not in mock.calls[1].request.headers
    assert len(backend.session.cookies) == 0


# --- replies are returned, whatever their status ----------------------------------


@pytest.mark.parametrize("status", [200, 400, 403, 422, 429, 500, 502, 503, 504])
def test_json_replies_are_returned_for_any_status(
    backend_factory: Callable[..., HTTPBackend], mock: responses.RequestsMock, status: int
) -> None:
    error = {"success": 0, "error": {"code": "FORBIDDEN", "description": ""}}
    add_reply(mock, status, json_body=error)
    backend = backend_factory(max_retries=0)

    reply = backend.send(make_body(READ_ONLY))

    assert reply == RawReply(
        http_status=status,
        body=error,
        text="",
        headers={"content-type": "application/json"},
    )


@pytest.mark.parametrize("status", [200, 400, 403, 422, 429, 500, 502])
def test_non_json_replies_keep_the_start_of_the_text(
    backend_factory: Callable[..., HTTPBackend], mock: responses.RequestsMock, status: int
) -> None:
    page = "<html><body><h1>Bad Gateway</h1>" + "Ї" * 1000 + "</body></html>"
    add_reply(mock, status, body=page.encode("utf-8"), content_type="text/html")
    backend = backend_factory(max_retries=0)

    reply = backend.send(make_body(READ_ONLY))

    assert reply.http_status == status
    assert reply.body is None
    assert reply.text == page[:500]
    assert reply.headers["content-type"] == "text/html"


@pytest.mark.parametrize("offset", [470, 480, 490, 496, 499])
def test_a_key_echoed_across_the_cut_leaves_no_piece_in_the_text(
    backend_factory: Callable[..., HTTPBackend], mock: responses.RequestsMock, offset: int
) -> None:
    # Cut first and scrubbed after, the key's first 500 - offset characters would stay.
    page = "." * offset + KEY + "." * 500
    add_reply(mock, 500, body=page, content_type="text/html")

    reply = backend_factory(max_retries=0).send(make_body(READ_ONLY))

    assert reply.text == ("." * offset + "***" + "." * 500)[:500]
    assert KEY[:4] not in reply.text


def test_json_is_decoded_whatever_the_content_type(
    backend: HTTPBackend, mock: responses.RequestsMock
) -> None:
    add_reply(mock, body=json.dumps(OK_REPLY), content_type="text/html; charset=UTF-8")

    reply = backend.send(make_body(READ_ONLY))

    assert reply.body == OK_REPLY
    assert reply.text == ""


def test_json_with_a_byte_order_mark_is_decoded(
    backend: HTTPBackend, mock: responses.RequestsMock
) -> None:
    add_reply(mock, body=b"\xef\xbb\xbf" + json.dumps(OK_REPLY).encode())

    assert backend.send(make_body(READ_ONLY)).body == OK_REPLY


def test_an_empty_reply_has_no_body_and_no_text(
    backend: HTTPBackend, mock: responses.RequestsMock
) -> None:
    add_reply(mock, body=b"")

    reply = backend.send(make_body(READ_ONLY))

    assert (reply.http_status, reply.body, reply.text) == (200, None, "")


def test_a_declared_charset_is_used_for_the_text(
    backend: HTTPBackend, mock: responses.RequestsMock
) -> None:
    add_reply(mock, body="Помилка".encode("cp1251"), content_type="text/plain; charset=cp1251")

    assert backend.send(make_body(READ_ONLY)).text == "Помилка"


def test_header_names_are_lower_case(backend: HTTPBackend, mock: responses.RequestsMock) -> None:
    add_reply(mock, 429, headers={"Retry-After": "120", "X-Request-ID": "abc"})

    reply = backend.send(make_body(SEND))

    assert reply.headers["retry-after"] == "120"
    assert reply.headers["content-type"] == "application/json"
    assert reply.headers["x-request-id"] == "abc"


# --- SENDMESSAGE is repeated only when it certainly did not arrive --------------------


@pytest.mark.parametrize("failure", list(UNKNOWN_FAILURES))
def test_send_is_not_repeated_when_the_outcome_is_unknown(
    backend: HTTPBackend, mock: responses.RequestsMock, waits: Waits, failure: str
) -> None:
    add_reply(mock, body=UNKNOWN_FAILURES[failure]())

    with pytest.raises(SmsFlyTransportError) as caught:
        backend.send(make_body(SEND))

    assert len(mock.calls) == 1
    assert waits == []
    assert caught.value.verdict is Verdict.UNKNOWN
    assert not isinstance(caught.value, SmsFlyConnectionError)
    assert caught.value.action == SEND


def test_a_read_timeout_raises_sms_fly_timeout(
    backend: HTTPBackend, mock: responses.RequestsMock
) -> None:
    add_reply(mock, body=read_timeout())

    with pytest.raises(SmsFlyTimeout) as caught:
        backend.send(make_body(SEND))

    assert caught.value.verdict is Verdict.UNKNOWN
    assert not caught.value.safe_to_retry
    assert str(caught.value) == (
        "SENDMESSAGE: no reply from sms-fly.ua within 30 s; the request may have been processed"
    )


@pytest.mark.parametrize(
    ("failure", "message"),
    [
        ("reset", "SENDMESSAGE: the connection to sms-fly.ua was reset"),
        ("disconnected", "SENDMESSAGE: sms-fly.ua closed the connection without replying"),
        ("chunked", "SENDMESSAGE: the reply from sms-fly.ua was cut short"),
    ],
)
def test_a_broken_connection_says_what_happened(
    backend: HTTPBackend, mock: responses.RequestsMock, failure: str, message: str
) -> None:
    add_reply(mock, body=UNKNOWN_FAILURES[failure]())

    with pytest.raises(SmsFlyTransportError) as caught:
        backend.send(make_body(SEND))

    assert str(caught.value) == f"{message}; the request may have been processed"


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_send_is_not_repeated_after_a_server_error(
    backend: HTTPBackend, mock: responses.RequestsMock, waits: Waits, status: int
) -> None:
    add_reply(mock, status, json_body={"success": 0})

    reply = backend.send(make_body(SEND))

    assert reply.http_status == status
    assert len(mock.calls) == 1
    assert waits == []


def test_send_is_repeated_after_429(
    backend: HTTPBackend, mock: responses.RequestsMock, waits: Waits
) -> None:
    add_reply(mock, 429, json_body={"success": 0})
    add_reply(mock, json_body={"success": 1, "data": {"messageID": "FAPI0001"}})

    reply = backend.send(make_body(SEND))

    assert reply.http_status == 200
    assert reply.body["data"]["messageID"] == "FAPI0001"
    assert len(mock.calls) == 2
    assert sent_json(mock, 0) == sent_json(mock, 1) == make_body(SEND)
    assert len(waits) == 1


@pytest.mark.parametrize("failure", list(NOT_SENT_FAILURES))
def test_send_is_repeated_when_it_certainly_did_not_arrive(
    backend: HTTPBackend, mock: responses.RequestsMock, waits: Waits, failure: str
) -> None:
    add_reply(mock, body=NOT_SENT_FAILURES[failure]())
    add_reply(mock)

    reply = backend.send(make_body(SEND))

    assert reply.http_status == 200
    assert len(mock.calls) == 2
    assert len(waits) == 1


@pytest.mark.parametrize(
    ("failure", "message"),
    [
        ("refused", "SENDMESSAGE: connection refused by sms-fly.ua"),
        ("dns", "SENDMESSAGE: could not resolve sms-fly.ua"),
        ("connect-timeout", "SENDMESSAGE: timed out connecting to sms-fly.ua"),
        (
            "certificate",
            "SENDMESSAGE: TLS certificate of sms-fly.ua rejected (verification failed)",
        ),
    ],
)
def test_connection_failures_raise_not_sent_errors(
    backend_factory: Callable[..., HTTPBackend],
    mock: responses.RequestsMock,
    failure: str,
    message: str,
) -> None:
    add_reply(mock, body=NOT_SENT_FAILURES[failure]())
    backend = backend_factory(max_retries=0)

    with pytest.raises(SmsFlyConnectionError) as caught:
        backend.send(make_body(SEND))

    assert caught.value.verdict is Verdict.NOT_SENT
    assert caught.value.safe_to_retry
    assert caught.value.action == SEND
    assert str(caught.value) == message


def test_send_is_not_repeated_after_an_oversized_reply(
    backend_factory: Callable[..., HTTPBackend], mock: responses.RequestsMock
) -> None:
    add_reply(mock, body=b"x" * 2000)
    backend = backend_factory(max_reply_bytes=1000)

    with pytest.raises(SmsFlyBadReply):
        backend.send(make_body(SEND))

    assert len(mock.calls) == 1


def test_actions_outside_the_read_only_list_are_treated_like_sending(
    backend: HTTPBackend, mock: responses.RequestsMock
) -> None:
    add_reply(mock, 503)

    assert backend.send(make_body("SOMEFUTUREACTION", x=1)).http_status == 503
    assert len(mock.calls) == 1


# --- read-only actions are repeated after any transient failure ----------------------


@pytest.mark.parametrize("status", [429, 502, 503, 504])
def test_read_only_actions_are_repeated_after_busy_statuses(
    backend: HTTPBackend, mock: responses.RequestsMock, waits: Waits, status: int
) -> None:
    add_reply(mock, status, body="busy", content_type="text/plain")
    add_reply(mock)

    reply = backend.send(make_body(READ_ONLY))

    assert reply.body == OK_REPLY
    assert len(mock.calls) == 2
    assert len(waits) == 1


@pytest.mark.parametrize("failure", [*NOT_SENT_FAILURES, "read-timeout", "reset", "disconnected"])
def test_read_only_actions_are_repeated_after_transport_failures(
    backend: HTTPBackend, mock: responses.RequestsMock, waits: Waits, failure: str
) -> None:
    make_failure = {**NOT_SENT_FAILURES, **UNKNOWN_FAILURES}[failure]
    add_reply(mock, body=make_failure())
    add_reply(mock, body=make_failure())
    add_reply(mock)

    reply = backend.send(make_body("GETMESSAGESTATUS", messageID="FAPI0001"))

    assert reply.body == OK_REPLY
    assert len(mock.calls) == 3
    assert len(waits) == 2


def test_read_only_actions_are_not_repeated_after_500(
    backend: HTTPBackend, mock: responses.RequestsMock
) -> None:
    add_reply(mock, 500)

    assert backend.send(make_body(READ_ONLY)).http_status == 500
    assert len(mock.calls) == 1


def test_the_action_is_matched_whatever_its_case(
    backend: HTTPBackend, mock: responses.RequestsMock
) -> None:
    add_reply(mock, 502)
    add_reply(mock)

    assert backend.send(make_body("getBalance")).http_status == 200


# --- how long to wait, how often to try -------------------------------------------


def test_backoff_doubles_with_a_little_jitter(
    backend_factory: Callable[..., HTTPBackend], mock: responses.RequestsMock, waits: Waits
) -> None:
    for _ in range(4):
        add_reply(mock, 503)
    backend = backend_factory(max_retries=3, retry_backoff=1.0, max_retry_wait=100.0)

    reply = backend.send(make_body(READ_ONLY))

    assert reply.http_status == 503  # the last reply, once retries are exhausted
    assert len(mock.calls) == 4
    assert len(waits) == 3
    for wait, base in zip(waits, [1.0, 2.0, 4.0], strict=True):
        assert base <= wait <= base * 1.1


def test_backoff_is_capped(
    backend_factory: Callable[..., HTTPBackend], mock: responses.RequestsMock, waits: Waits
) -> None:
    for _ in range(4):
        add_reply(mock, body=connection_refused())
    backend = backend_factory(max_retries=3, retry_backoff=10.0, max_retry_wait=15.0)

    with pytest.raises(SmsFlyConnectionError):
        backend.send(make_body(SEND))

    assert waits[0] <= 11.0
    assert waits[1:] == [15.0, 15.0]


@pytest.mark.parametrize("max_retries", [0, 1, 2, 5])
def test_max_retries_is_respected_for_replies(
    backend_factory: Callable[..., HTTPBackend],
    mock: responses.RequestsMock,
    waits: Waits,
    max_retries: int,
) -> None:
    for _ in range(max_retries + 1):
        add_reply(mock, 429, headers={"Retry-After": "1"})
    backend = backend_factory(max_retries=max_retries)

    reply = backend.send(make_body(SEND))

    assert reply.http_status == 429
    assert len(mock.calls) == max_retries + 1
    assert waits == [1.0] * max_retries


@pytest.mark.parametrize("max_retries", [0, 1, 3])
def test_max_retries_is_respected_for_failures(
    backend_factory: Callable[..., HTTPBackend],
    mock: responses.RequestsMock,
    waits: Waits,
    max_retries: int,
) -> None:
    for _ in range(max_retries + 1):
        add_reply(mock, body=connection_refused())
    backend = backend_factory(max_retries=max_retries)

    with pytest.raises(SmsFlyConnectionError):
        backend.send(make_body(SEND))

    assert len(mock.calls) == max_retries + 1
    assert len(waits) == max_retries


def test_the_last_failure_is_raised_when_retries_run_out(
    backend_factory: Callable[..., HTTPBackend], mock: responses.RequestsMock
) -> None:
    add_reply(mock, body=connection_refused())
    add_reply(mock, body=read_timeout())
    backend = backend_factory(max_retries=1)

    with pytest.raises(SmsFlyTimeout):
        backend.send(make_body(READ_ONLY))


@pytest.mark.parametrize(
    ("status", "retry_after", "action", "options", "waited"),
    [
        pytest.param(429, "7", SEND, {}, 7.0, id="seconds"),
        pytest.param(503, "3", READ_ONLY, {}, 3.0, id="on-503-for-a-read-only-action"),
        pytest.param(429, "30", SEND, {"max_retry_wait": 30.0}, 30.0, id="up-to-the-cap"),
        pytest.param(429, "Wed, 21 Oct 2015 07:28:00 GMT", SEND, {}, 0.0, id="in-the-past"),
    ],
)
def test_retry_after_is_waited_for_then_the_request_repeated(
    backend_factory: Callable[..., HTTPBackend],
    mock: responses.RequestsMock,
    waits: Waits,
    status: int,
    retry_after: str,
    action: str,
    options: dict[str, Any],
    waited: float,
) -> None:
    add_reply(mock, status, headers={"Retry-After": retry_after})
    add_reply(mock)
    backend = backend_factory(**options)

    assert backend.send(make_body(action)).http_status == 200
    assert waits == [waited]


def test_retry_after_as_an_http_date_is_honoured(
    backend: HTTPBackend, mock: responses.RequestsMock, waits: Waits
) -> None:
    add_reply(mock, 429, headers={"Retry-After": formatdate(time.time() + 12, usegmt=True)})
    add_reply(mock)

    assert backend.send(make_body(SEND)).http_status == 200
    assert len(waits) == 1
    assert 10.0 <= waits[0] <= 12.0


@pytest.mark.parametrize(
    "retry_after", ["31", "3600", formatdate(time.time() + 3600, usegmt=True)]
)
def test_retry_after_over_the_cap_returns_the_429_at_once(
    backend_factory: Callable[..., HTTPBackend],
    mock: responses.RequestsMock,
    waits: Waits,
    retry_after: str,
) -> None:
    add_reply(mock, 429, headers={"Retry-After": retry_after})
    backend = backend_factory(max_retry_wait=30.0)

    reply = backend.send(make_body(SEND))

    assert reply.http_status == 429
    assert reply.headers["retry-after"] == retry_after
    assert len(mock.calls) == 1
    assert waits == []


def test_an_unreadable_retry_after_falls_back_to_backoff(
    backend_factory: Callable[..., HTTPBackend], mock: responses.RequestsMock, waits: Waits
) -> None:
    add_reply(mock, 429, headers={"Retry-After": "soon"})
    add_reply(mock)
    backend = backend_factory(retry_backoff=2.0)

    assert backend.send(make_body(SEND)).http_status == 200
    assert len(waits) == 1
    assert 2.0 <= waits[0] <= 2.2


# --- the reply size cap ---------------------------------------------------------------


def test_a_streamed_reply_over_the_cap_is_refused(
    backend_factory: Callable[..., HTTPBackend], mock: responses.RequestsMock
) -> None:
    add_reply(mock, body=b"{" + b" " * 5000 + b"}")
    backend = backend_factory(max_reply_bytes=4096)

    with pytest.raises(SmsFlyBadReply) as caught:
        backend.send(make_body(READ_ONLY))

    assert caught.value.verdict is Verdict.UNKNOWN
    assert caught.value.http_status == 200
    assert str(caught.value) == ("GETBALANCE: the reply from sms-fly.ua is larger than 4096 bytes")


def test_a_declared_length_over_the_cap_is_refused_unread(
    backend_factory: Callable[..., HTTPBackend], mock: responses.RequestsMock
) -> None:
    mock.add(
        responses.POST,
        URL,
        body=b"x" * 2000,
        status=502,
        auto_calculate_content_length=True,
    )
    backend = backend_factory(max_reply_bytes=1000)

    with pytest.raises(SmsFlyBadReply) as caught:
        backend.send(make_body(READ_ONLY))

    assert caught.value.http_status == 502
    assert len(mock.calls) == 1  # a huge reply is not asked for again


def test_a_reply_at_the_cap_is_accepted(
    backend_factory: Callable[..., HTTPBackend], mock: responses.RequestsMock
) -> None:
    text = json.dumps(OK_REPLY).encode()
    add_reply(mock, body=text)
    backend = backend_factory(max_reply_bytes=len(text))

    assert backend.send(make_body(READ_ONLY)).body == OK_REPLY


def test_the_default_cap_is_4_mib(backend: HTTPBackend) -> None:
    assert backend.max_reply_bytes == 4 * 1024 * 1024


# --- the key never shows -------------------------------------------------------------


def _assert_key_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    assert caplog.records
    assert KEY not in caplog.text
    for record in caplog.records:
        assert KEY not in record.getMessage()
        assert KEY not in repr(record.args)


def test_the_key_is_not_logged_on_success(
    backend: HTTPBackend, mock: responses.RequestsMock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    add_reply(mock)

    backend.send(make_body(SEND))

    _assert_key_not_logged(caplog)
    debug = [r.getMessage() for r in caplog.records if r.name == "django_smsfly.http"]
    # The body is logged, redacted, with the action, attempt, status and timing.
    assert any('"key": "***"' in m and "380501234567" in m for m in debug)
    assert any(m.startswith("SMS-fly SENDMESSAGE: attempt 1: HTTP 200 in ") for m in debug)


def test_the_key_is_not_logged_when_retrying(
    backend: HTTPBackend, mock: responses.RequestsMock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    add_reply(mock, 429)
    add_reply(mock, body=connection_refused())
    add_reply(mock)

    backend.send(make_body(SEND))

    _assert_key_not_logged(caplog)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert warnings[0].startswith("SMS-fly SENDMESSAGE: HTTP 429; retry 1 of 3 in ")
    assert warnings[1].startswith(
        "SMS-fly SENDMESSAGE: connection refused by sms-fly.ua; retry 2 of 3 in "
    )


@pytest.mark.parametrize("failure", [*NOT_SENT_FAILURES, *UNKNOWN_FAILURES, "oversize"])
def test_the_key_is_not_logged_or_raised_on_failure(
    backend_factory: Callable[..., HTTPBackend],
    mock: responses.RequestsMock,
    caplog: pytest.LogCaptureFixture,
    failure: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    backend = backend_factory(max_retries=1, max_reply_bytes=100)
    for _ in range(2 if failure in NOT_SENT_FAILURES else 1):
        if failure == "oversize":
            add_reply(mock, body=b"x" * 200)
        else:
            add_reply(mock, body={**NOT_SENT_FAILURES, **UNKNOWN_FAILURES}[failure]())

    with pytest.raises(SmsFlyError) as caught:
        backend.send(make_body(SEND))

    _assert_key_not_logged(caplog)
    error = caught.value
    assert KEY not in str(error)
    assert KEY not in repr(error)
    assert KEY not in repr(error.args)
    assert KEY not in "".join(traceback.format_exception(error))


def test_the_key_is_redacted_even_where_the_client_should_not_have_put_it(
    backend: HTTPBackend, mock: responses.RequestsMock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    add_reply(mock)

    backend.send(make_body(SEND, note=f"key is {KEY}"))

    _assert_key_not_logged(caplog)


def test_repr_shows_the_class_and_url_only(backend: HTTPBackend) -> None:
    assert repr(backend) == f"<HTTPBackend {URL}>"


def test_repr_hides_credentials_in_the_url(backend_factory: Callable[..., HTTPBackend]) -> None:
    backend = backend_factory(api_url="https://user:pa55@sms-fly.ua:8443/api/v2/api.php")

    assert repr(backend) == "<HTTPBackend https://sms-fly.ua:8443/api/v2/api.php>"


# --- the session ------------------------------------------------------------------------


def test_one_session_serves_every_request(
    backend: HTTPBackend, mock: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = backend.session
    used: list[requests.Session] = []
    original = requests.Session.request

    def spy(self: requests.Session, *args: Any, **kwargs: Any) -> requests.Response:
        used.append(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(requests.Session, "request", spy)
    for _ in range(3):
        add_reply(mock)
        backend.send(make_body(READ_ONLY))

    assert backend.session is session
    assert len(used) == 3
    assert all(item is session for item in used)


def test_the_adapter_pools_connections_and_never_retries_by_itself(
    backend_factory: Callable[..., HTTPBackend],
) -> None:
    backend = backend_factory(pool_size=24)

    adapter = backend.session.get_adapter(URL)

    assert isinstance(adapter, requests.adapters.HTTPAdapter)
    # Up to pool_size idle keep-alive connections per host, for that many threads.
    assert adapter.poolmanager.connection_pool_kw["maxsize"] == 24
    assert adapter.max_retries.total == 0


def test_close_closes_the_session(backend: HTTPBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    closed: list[bool] = []
    monkeypatch.setattr(backend.session, "close", lambda: closed.append(True))

    backend.close()

    assert closed == [True]


# --- configuration ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"api_url": ""},
        {"api_url": "ftp://sms-fly.ua/api"},
        {"api_url": "sms-fly.ua/api/v2/api.php"},
        {"api_url": "http://sms-fly.ua/api/v2/api.php"},  # the key would travel in clear
        {"timeout": 0},
        {"timeout": (5, -1)},
        {"timeout": "5"},
        {"max_retries": -1},
        {"max_retries": 1.5},
        {"retry_backoff": -0.1},
        {"max_retry_wait": float("nan")},
        {"pool_size": 0},
        {"max_reply_bytes": 0},
    ],
)
def test_bad_options_are_refused(
    backend_factory: Callable[..., HTTPBackend], kwargs: dict[str, Any]
) -> None:
    with pytest.raises(ImproperlyConfigured):
        backend_factory(**kwargs)


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8000/api.php", "http://localhost/api.php", "http://[::1]:80/"]
)
def test_plain_http_is_allowed_for_loopback_test_servers(
    backend_factory: Callable[..., HTTPBackend], url: str
) -> None:
    assert backend_factory(api_url=url).api_url == url


def test_there_is_no_option_to_skip_tls_verification(
    backend_factory: Callable[..., HTTPBackend],
) -> None:
    with pytest.raises(TypeError):
        backend_factory(verify=False)


# --- against real servers on 127.0.0.1 ---------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.received: list[tuple[str, Any, int]] = []
        self.lock = threading.Lock()
        self.release = threading.Event()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients hanging up on purpose are expected here; stay quiet."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output clean."""

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        payload = json.loads(self.rfile.read(length))
        with self.server.lock:
            self.server.received.append((self.path, payload, self.client_address[1]))
        if self.path == "/slow":
            self.server.release.wait(5)
        elif self.path == "/cut":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b'{"success": 1, ')
            self.wfile.flush()
            self.close_connection = True
            return
        elif self.path == "/hangup":
            self.close_connection = True
            return
        data = json.dumps(OK_REPLY).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def server(no_proxy: None) -> Iterator[_Server]:
    httpd = _Server()
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.release.set()
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts TCP connections (the kernel does) but never says anything."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock.getsockname()[1]


@pytest.mark.usefixtures("no_proxy")
def test_real_refused_connection_is_not_sent_and_repeated(
    backend_factory: Callable[..., HTTPBackend], waits: Waits, closed_port: int
) -> None:
    backend = backend_factory(api_url=f"http://127.0.0.1:{closed_port}/", max_retries=2)

    with pytest.raises(SmsFlyConnectionError) as caught:
        backend.send(make_body(SEND))

    assert caught.value.verdict is Verdict.NOT_SENT
    assert str(caught.value) == "SENDMESSAGE: connection refused by 127.0.0.1"
    assert len(waits) == 2


def test_real_read_timeout_is_unknown_and_sent_once(
    backend_factory: Callable[..., HTTPBackend], server: _Server, waits: Waits
) -> None:
    backend = backend_factory(api_url=f"{server.base_url}/slow", timeout=(2.0, 0.2))

    with pytest.raises(SmsFlyTimeout) as caught:
        backend.send(make_body(SEND))

    assert caught.value.verdict is Verdict.UNKNOWN
    assert len(server.received) == 1
    assert server.received[0][1] == make_body(SEND)
    assert waits == []


def test_real_read_timeout_of_a_read_only_action_is_repeated(
    backend_factory: Callable[..., HTTPBackend], server: _Server, waits: Waits
) -> None:
    backend = backend_factory(api_url=f"{server.base_url}/slow", timeout=(2.0, 0.2), max_retries=2)

    with pytest.raises(SmsFlyTimeout):
        backend.send(make_body(READ_ONLY))

    assert len(server.received) == 3
    assert len(waits) == 2


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/cut", "the reply from 127.0.0.1 was cut short"),
        ("/hangup", "127.0.0.1 closed the connection without replying"),
    ],
)
def test_real_broken_reply_to_a_send_is_unknown_and_sent_once(
    backend_factory: Callable[..., HTTPBackend], server: _Server, path: str, message: str
) -> None:
    backend = backend_factory(api_url=server.base_url + path)

    with pytest.raises(SmsFlyTransportError) as caught:
        backend.send(make_body(SEND))

    assert caught.value.verdict is Verdict.UNKNOWN
    assert str(caught.value) == f"SENDMESSAGE: {message}; the request may have been processed"
    assert len(server.received) == 1
    if path == "/cut":
        assert caught.value.http_status == 200


def test_real_broken_reply_to_a_read_only_action_is_repeated(
    backend_factory: Callable[..., HTTPBackend], server: _Server
) -> None:
    backend = backend_factory(api_url=f"{server.base_url}/cut", max_retries=1)

    with pytest.raises(SmsFlyTransportError):
        backend.send(make_body(READ_ONLY))

    assert len(server.received) == 2


def test_real_failed_tls_handshake_is_not_sent(
    backend_factory: Callable[..., HTTPBackend], server: _Server, waits: Waits
) -> None:
    # A plain-HTTP server answers the TLS ClientHello with an HTTP error page.
    tls_url = server.base_url.replace("http://", "https://") + "/ok"
    backend = backend_factory(api_url=tls_url, max_retries=1)

    with pytest.raises(SmsFlyConnectionError) as caught:
        backend.send(make_body(SEND))

    assert caught.value.verdict is Verdict.NOT_SENT
    assert str(caught.value).startswith("SENDMESSAGE: TLS handshake with 127.0.0.1 failed (")
    assert server.received == []
    assert len(waits) == 1


@pytest.mark.usefixtures("no_proxy")
def test_real_tls_handshake_timeout_is_not_sent(
    backend_factory: Callable[..., HTTPBackend], silent_port: int, waits: Waits
) -> None:
    # urllib3 reports this as a *read* timeout; nothing was sent, though.
    backend = backend_factory(
        api_url=f"https://127.0.0.1:{silent_port}/", timeout=(0.2, 5.0), max_retries=0
    )

    with pytest.raises(SmsFlyConnectionError) as caught:
        backend.send(make_body(SEND))

    assert caught.value.verdict is Verdict.NOT_SENT
    assert str(caught.value) == "SENDMESSAGE: timed out connecting to 127.0.0.1"


@pytest.mark.usefixtures("no_proxy")
def test_real_unanswered_plain_request_is_a_read_timeout(
    backend_factory: Callable[..., HTTPBackend], silent_port: int
) -> None:
    backend = backend_factory(api_url=f"http://127.0.0.1:{silent_port}/", timeout=(2.0, 0.2))

    with pytest.raises(SmsFlyTimeout):
        backend.send(make_body(SEND))


def test_real_keep_alive_connection_is_reused(
    backend_factory: Callable[..., HTTPBackend], server: _Server
) -> None:
    backend = backend_factory(api_url=f"{server.base_url}/ok")

    for _ in range(5):
        assert backend.send(make_body(READ_ONLY)).body == OK_REPLY

    ports = {port for _, _, port in server.received}
    assert len(server.received) == 5
    assert len(ports) == 1


def test_real_concurrent_sends_share_the_pool(
    backend_factory: Callable[..., HTTPBackend], server: _Server
) -> None:
    threads_count, per_thread = 6, 5
    backend = backend_factory(api_url=f"{server.base_url}/ok", pool_size=threads_count)
    replies: list[RawReply] = []

    def work(index: int) -> None:
        for n in range(per_thread):
            reply = backend.send(make_body("GETMESSAGESTATUS", messageID=f"M{index}-{n}"))
            replies.append(reply)

    run_together(threads_count, work, timeout=30)  # fails on any thread's error

    assert len(replies) == threads_count * per_thread
    assert all(reply.body == OK_REPLY for reply in replies)
    sent_ids = sorted(payload["data"]["messageID"] for _, payload, _ in server.received)
    assert sent_ids == sorted(f"M{i}-{n}" for i in range(threads_count) for n in range(per_thread))
    # Keep-alive: no more connections than threads, far fewer than requests.
    assert len({port for _, _, port in server.received}) <= threads_count


@pytest.mark.usefixtures("no_proxy")
def test_django_error_reports_do_not_show_the_key(
    backend_factory: Callable[..., HTTPBackend], closed_port: int
) -> None:
    backend = backend_factory(api_url=f"http://127.0.0.1:{closed_port}/", max_retries=0)

    with pytest.raises(SmsFlyConnectionError) as caught:
        backend.send(make_body(SEND))

    error = caught.value
    frames = ExceptionReporter(
        None, type(error), error, error.__traceback__
    ).get_traceback_frames()
    inner = [frame for frame in frames if frame["filename"] != __file__]
    assert inner  # the backend's, requests' and urllib3's frames
    for frame in inner:
        assert KEY not in repr(frame["vars"]), frame["function"]


def test_environment_is_read_once_and_a_ca_bundle_still_verifies(
    mock: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("not used: responses answers before TLS")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:3128")
    backend = HTTPBackend(api_url="https://sms-fly.ua/api/v2/api.php")
    monkeypatch.delenv("REQUESTS_CA_BUNDLE")  # later changes are not re-read per request
    add_reply(mock)
    backend.send(make_body())
    kwargs = mock.calls[0].request.req_kwargs  # type: ignore[attr-defined]
    assert kwargs["verify"] == str(bundle)
    assert kwargs["proxies"]["https"] == "http://127.0.0.1:3128"
    assert backend.session.trust_env is False
