"""The sandbox over real HTTP on 127.0.0.1: what a client sees on the wire, faults included."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from django_smsfly.backends.http import HTTPBackend
from django_smsfly.backends.sandbox import Fault, Simulator
from django_smsfly.backends.sandbox_server import AbortConnection, SandboxServer, make_wsgi_app
from django_smsfly.exceptions import SmsFlyTimeout, SmsFlyTransportError, Verdict

pytestmark = pytest.mark.e2e

KEY = "sandbox-server-test-key-000000000000"
ROOT = Path(__file__).resolve().parent.parent
SMS_SEND = {
    "recipient": "380501234567",
    "channels": ["sms"],
    "sms": {"source": "InfoCenter", "ttl": 5, "text": "Hello"},
}


def body(action: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"auth": {"key": KEY}, "action": action, "data": data or {}}


@pytest.fixture
def server() -> Iterator[SandboxServer]:
    with SandboxServer() as running:
        yield running


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as http:
        yield http


def test_a_round_trip(server: SandboxServer, session: requests.Session) -> None:
    reply = session.post(server.url, json=body("SENDMESSAGE", SMS_SEND), timeout=5)
    assert reply.status_code == 200
    assert reply.headers["Content-Type"] == "application/json"
    assert int(reply.headers["Content-Length"]) == len(reply.content)
    message_id = reply.json()["data"]["messageID"]
    status = session.post(
        server.url, json=body("GETMESSAGESTATUS", {"messageID": message_id}), timeout=5
    )
    assert status.json()["data"]["sms"]["status"] == "ACCEPTD"
    assert [r.action for r in server.simulator.requests] == ["SENDMESSAGE", "GETMESSAGESTATUS"]


def test_url_and_port(server: SandboxServer) -> None:
    assert server.url == f"http://127.0.0.1:{server.port}/api/v2/api.php"
    assert server.port > 0


def test_errors_keep_their_http_status(server: SandboxServer, session: requests.Session) -> None:
    not_json = session.post(server.url, data=b"{oops", timeout=5)
    assert (not_json.status_code, not_json.json()["error"]["code"]) == (422, "INVREQUEST")
    forbidden = session.post(server.url, json={**body("GETBALANCE"), "auth": {}}, timeout=5)
    assert (forbidden.status_code, forbidden.json()["error"]["code"]) == (403, "FORBIDDEN")


def test_connections_are_kept_alive(server: SandboxServer, session: requests.Session) -> None:
    for _ in range(10):
        assert session.post(server.url, json=body("GETBALANCE"), timeout=5).status_code == 200
    assert server.connection_count == 1


def test_get_is_not_allowed(server: SandboxServer, session: requests.Session) -> None:
    reply = session.get(server.url, timeout=5)
    assert reply.status_code == 405
    assert reply.headers["Allow"] == "POST"
    assert server.simulator.requests == []


def test_rate_limited_on_the_wire(server: SandboxServer, session: requests.Session) -> None:
    server.simulator.inject(Fault.RATE_LIMITED, retry_after=7)
    reply = session.post(server.url, json=body("SENDMESSAGE", SMS_SEND), timeout=5)
    assert reply.status_code == 429
    assert reply.headers["Retry-After"] == "7"
    assert "429 Too Many Requests" in reply.text
    assert server.simulator.messages == []
    # The connection survives a refusal.
    assert session.post(server.url, json=body("GETBALANCE"), timeout=5).status_code == 200
    assert server.connection_count == 1


@pytest.mark.parametrize(
    ("fault", "status"),
    [(Fault.SERVER_ERROR, 500), (Fault.BAD_GATEWAY, 502), (Fault.SERVICE_UNAVAILABLE, 503)],
)
def test_server_errors_on_the_wire(
    server: SandboxServer, session: requests.Session, fault: Fault, status: int
) -> None:
    server.simulator.inject(fault)
    reply = session.post(server.url, json=body("SENDMESSAGE", SMS_SEND), timeout=5)
    assert reply.status_code == status
    assert reply.headers["Content-Type"] == "text/html"
    assert reply.text.startswith("<html>")
    assert server.simulator.messages == []


def test_broken_json_on_the_wire(server: SandboxServer, session: requests.Session) -> None:
    server.simulator.inject(Fault.BROKEN_JSON)
    reply = session.post(server.url, json=body("SENDMESSAGE", SMS_SEND), timeout=5)
    assert reply.status_code == 200
    with pytest.raises(requests.JSONDecodeError):
        reply.json()
    assert len(server.simulator.messages) == 1


def test_empty_body_and_html_page_on_the_wire(
    server: SandboxServer, session: requests.Session
) -> None:
    server.simulator.inject(Fault.EMPTY_BODY)
    server.simulator.inject(Fault.HTML_ERROR)
    empty = session.post(server.url, json=body("GETBALANCE"), timeout=5)
    assert (empty.status_code, empty.content, empty.headers["Content-Length"]) == (200, b"", "0")
    html = session.post(server.url, json=body("GETBALANCE"), timeout=5)
    assert html.status_code == 200
    assert html.headers["Content-Type"].startswith("text/html")


def test_timeout_leaves_the_client_waiting_after_the_send(
    server: SandboxServer, session: requests.Session
) -> None:
    server.simulator.inject(Fault.TIMEOUT, delay=10)
    started = time.monotonic()
    with pytest.raises(requests.ReadTimeout):
        session.post(server.url, json=body("SENDMESSAGE", SMS_SEND), timeout=(2, 0.3))
    assert time.monotonic() - started < 5
    assert len(server.simulator.messages) == 1
    assert server.simulator.requests[-1].fault is Fault.TIMEOUT
    # The next request gets through on a fresh connection.
    assert session.post(server.url, json=body("GETBALANCE"), timeout=5).status_code == 200


def test_connection_reset_after_the_send(server: SandboxServer, session: requests.Session) -> None:
    server.simulator.inject(Fault.CONNECTION_RESET)
    with pytest.raises(requests.ConnectionError):
        session.post(server.url, json=body("SENDMESSAGE", SMS_SEND), timeout=5)
    assert len(server.simulator.messages) == 1
    assert session.post(server.url, json=body("GETBALANCE"), timeout=5).status_code == 200


def test_connection_refused_fault_drops_the_connection_without_sending(
    server: SandboxServer, session: requests.Session
) -> None:
    server.simulator.inject(Fault.CONNECTION_REFUSED)
    with pytest.raises(requests.ConnectionError):
        session.post(server.url, json=body("SENDMESSAGE", SMS_SEND), timeout=5)
    assert server.simulator.messages == []


def test_a_stopped_server_refuses_connections() -> None:
    server = SandboxServer().start()
    url = server.url
    server.stop()
    server.stop()  # twice is fine
    with pytest.raises(requests.ConnectionError):
        requests.post(url, json=body("GETBALANCE"), timeout=5)


def test_stopping_does_not_wait_for_a_request_sleeping_out_a_timeout() -> None:
    server = SandboxServer().start()
    server.simulator.inject(Fault.TIMEOUT, delay=60)
    failures: list[BaseException] = []

    def wait_for_reply() -> None:
        try:
            requests.post(server.url, json=body("GETBALANCE"), timeout=30)
        except requests.RequestException as error:
            failures.append(error)

    caller = threading.Thread(target=wait_for_reply)
    caller.start()
    while not server.simulator.requests:
        time.sleep(0.01)
    started = time.monotonic()
    server.stop()
    caller.join(timeout=10)
    assert time.monotonic() - started < 5
    assert not caller.is_alive()
    assert len(failures) == 1  # the client saw the connection close, not a reply


def test_latency_is_honoured(session: requests.Session) -> None:
    with SandboxServer() as fast, SandboxServer(latency=0.05) as slow:
        timings = []
        for running in (fast, slow):
            started = time.monotonic()
            for _ in range(10):
                session.post(running.url, json=body("GETBALANCE"), timeout=5)
            timings.append(time.monotonic() - started)
        assert slow.latency == 0.05
    fast_time, slow_time = timings
    assert slow_time >= 0.5
    assert slow_time > fast_time + 0.4


def test_requests_in_parallel_overlap_their_latency() -> None:
    with SandboxServer(latency=0.2) as server:

        def one() -> None:
            with requests.Session() as http:
                http.post(server.url, json=body("GETBALANCE"), timeout=5)

        threads = [threading.Thread(target=one) for _ in range(10)]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
    assert elapsed < 10 * 0.2 / 2  # far less than one after the other
    assert len(server.simulator.requests) == 10


def test_a_shared_simulator_sees_the_servers_messages() -> None:
    simulator = Simulator(api_key=KEY)
    with SandboxServer(simulator, speed=10) as server:
        requests.post(server.url, json=body("SENDMESSAGE", SMS_SEND), timeout=5)
    assert server.simulator is simulator
    assert simulator.speed == 10
    assert len(simulator.messages) == 1


def test_url_needs_a_running_server() -> None:
    with pytest.raises(RuntimeError, match="not running"):
        _ = SandboxServer().url


def test_the_http_backend_speaks_to_the_sandbox(server: SandboxServer) -> None:
    backend = HTTPBackend(api_url=server.url, timeout=(2.0, 0.5), max_retries=0)
    try:
        for _ in range(3):
            reply = backend.send(body("GETBALANCE"))
            assert (reply.http_status, reply.body["data"]) == (200, {"balance": "1000.000"})
        assert server.connection_count == 1
        server.simulator.inject(Fault.TIMEOUT, delay=5)
        with pytest.raises(SmsFlyTimeout):
            backend.send(body("SENDMESSAGE", SMS_SEND))
        server.simulator.inject(Fault.CONNECTION_RESET)
        with pytest.raises(SmsFlyTransportError) as caught:
            backend.send(body("SENDMESSAGE", SMS_SEND))
        assert caught.value.verdict is Verdict.UNKNOWN
        assert len(server.simulator.messages) == 2
    finally:
        backend.close()


def test_the_wsgi_app_signals_a_dropped_connection() -> None:
    simulator = Simulator()
    app = make_wsgi_app(simulator)
    simulator.inject(Fault.CONNECTION_RESET)
    raw = b'{"auth": {"key": "k"}, "action": "GETBALANCE", "data": {}}'
    environ = {
        "REQUEST_METHOD": "POST",
        "CONTENT_LENGTH": str(len(raw)),
        "wsgi.input": io.BytesIO(raw),
    }
    with pytest.raises(AbortConnection):
        app(environ, lambda status, headers, exc_info=None: lambda data: None)


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.parametrize(
    ("stop_with", "sigint_ignored"),
    [(signal.SIGINT, False), (signal.SIGINT, True), (signal.SIGTERM, False)],
    ids=["sigint", "sigint-while-inherited-ignored", "sigterm"],
)
def test_the_command_line_serves_until_interrupted(
    stop_with: signal.Signals, sigint_ignored: bool
) -> None:
    """It stops on SIGINT even when started with SIGINT ignored, as under nohup or "&" in
    a script (issue 13: the test failed whenever the run started that way), and on
    SIGTERM."""
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    process = subprocess.Popen(
        [sys.executable, "-m", "django_smsfly.backends.sandbox_server", "--port", "0",
         "--speed", "5"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True,
        preexec_fn=_ignore_sigint if sigint_ignored else None,  # noqa: PLW1509
    )  # fmt: skip
    try:
        assert process.stdout is not None
        first_line = process.stdout.readline()
        url = first_line.split()[4]
        assert url.startswith("http://127.0.0.1:")
        reply = requests.post(url, json=body("GETBALANCE"), timeout=5)
        assert reply.json()["data"]["balance"] == "1000.000"
        process.send_signal(stop_with)
        assert process.wait(timeout=10) == 0
        assert process.stdout.read().strip().endswith("stopped")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
