"""The fault-injection matrix: every fault against every operation, over real HTTP.

Each cell stages one fault (rows) against one operation (columns) with the app talking
to the sandbox served on 127.0.0.1 through the real HTTP backend, runs the operation
through its service *and* through its management command, and asserts what a site relies
on: the message's lifecycle state, the error recorded on it, retries only where repeating
cannot send twice (counted by the requests that reached the server), no duplicate send,
no lost row, no unhandled exception and the command's exit status. It then takes the
fault away and shows the app goes on working: a message queued for a retry is sent
exactly once, one whose outcome is unknown is not sent again, a status poll that failed
is made again later and moves the status forward.

When every cell passed, the module writes what it observed to
``docs/reliability_matrix.inc`` (included by ``docs/reliability.rst``)::

    .venv/bin/python -m pytest tests/test_fault_matrix.py
"""

from __future__ import annotations

import datetime as dt
import email.utils
import io
import re
import socket
import traceback
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
import responses
from django.core.cache import cache
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings
from django.utils import timezone

from django_smsfly import exceptions, services
from django_smsfly.backends.http import DEFAULT_MAX_REPLY_BYTES
from django_smsfly.backends.sandbox import (
    DEEP_JSON_DEPTH,
    DEFAULT_HUGE_SIZE,
    UNLISTED_STATUS,
    Fault,
    RecordedRequest,
    Simulator,
)
from django_smsfly.backends.sandbox_server import SandboxServer
from django_smsfly.client import SmsFlyClient
from django_smsfly.conf import HTTP_BACKEND
from django_smsfly.exceptions import SmsFlyError
from django_smsfly.models import Message
from django_smsfly.statuses import DeliveryStatus
from tests.conftest import API_KEY, API_URL

pytestmark = [pytest.mark.e2e, pytest.mark.django_db]

KEY = "fault-matrix-key-0123456789abcdef0123"  # 36 characters, like a real key
RECIPIENT = "380501234567"  # a number the sandbox delivers
MATRIX = Path(__file__).resolve().parent.parent / "docs" / "reliability_matrix.inc"

#: Repeats allowed per request; every persistent fault is injected for all attempts.
MAX_RETRIES = 1
ATTEMPTS = MAX_RETRIES + 1
#: Generous for a server on this machine; the timeout rows shorten one side of it.
TIMEOUT = (2.0, 5.0)
#: Connect timeout of the connect-timeout row: the SYN is dropped, so this is all it costs.
SHORT_CONNECT = 0.25
#: Read timeout of the read-timeout row; the server stays silent for SILENCE seconds.
SHORT_READ = 0.5
SILENCE = 2.0

SEND, SYNC, BALANCE, SOURCES, PRICES = "send", "sync", "balance", "sources", "prices"
OPERATIONS = (SEND, SYNC, BALANCE, SOURCES, PRICES)
ACTION = {
    SEND: "SENDMESSAGE",
    SYNC: "GETMESSAGESTATUS",
    BALANCE: "GETBALANCE",
    SOURCES: "GETSOURCES",
    PRICES: "GETPRICELIST",
}
COMMAND: dict[str, tuple[str, ...]] = {
    SEND: ("smsfly_send", "--to", RECIPIENT, "--text", "Hi"),
    SYNC: ("smsfly_sync",),
    # With a threshold, "could not read it" (1) must not pass for "it is low" (2).
    BALANCE: ("smsfly_balance", "--warn-below", "1"),
    SOURCES: ("smsfly_sources",),
    PRICES: ("smsfly_prices",),
}

# Where a fault is staged: on the sandbox server, or at an address that fails to connect.
SERVER, REFUSED, BLACKHOLE = "server", "refused", "blackhole"

# Lifecycle states of a sent message.
ACCEPTED, QUEUED, FAILED, UNKNOWN = (
    Message.State.ACCEPTED.value,
    Message.State.QUEUED.value,
    Message.State.FAILED.value,
    Message.State.UNKNOWN.value,
)


# -- what each cell must show -------------------------------------------------------------


@dataclass(frozen=True)
class Send:
    """What a send must end as while the fault lasts."""

    state: str
    #: The error code stored on the message ("" when it was accepted).
    code: str
    #: HTTP requests the client made (for a fault at the server: the ones that arrived).
    requests: int
    #: SENDMESSAGE requests the server acted on: the truth the state must not contradict.
    sent: int
    exit: int
    #: A queued message: seconds until it is tried again.
    retry_in: float | None = None


@dataclass(frozen=True)
class Read:
    """What a read (status sync, balance, sources, prices) must end as."""

    #: The exception raised by the service (its class name), or None for a success.
    error: str | None
    code: str
    requests: int
    exit: int
    #: Status sync: seconds until the message is polled again after a failed poll.
    next_in: float = 10.0


@dataclass(frozen=True)
class Case:
    """One row of the matrix: a fault and what every operation must do under it."""

    id: str
    label: str
    group: str
    send: Send
    read: Read
    fault: Fault | None = None
    #: Arguments of Simulator.inject (a callable when they must be made at the time).
    options: Mapping[str, Any] | Callable[[], dict[str, Any]] = field(default_factory=dict)
    #: The fault hits one request only (else every attempt).
    once: bool = False
    endpoint: str = SERVER
    timeout: tuple[float, float] = TIMEOUT
    #: A different expectation for some reads.
    overrides: Mapping[str, Read] = field(default_factory=dict)
    #: Run with the fault's settings before the operation (and before counting).
    before: Callable[[Stage], None] | None = None
    #: The operation must open exactly one new connection (its pooled one was closed).
    reconnects: bool = False

    def expected_read(self, operation: str) -> Read:
        return self.overrides.get(operation, self.read)

    def inject_options(self) -> dict[str, Any]:
        return dict(self.options() if callable(self.options) else self.options)


def _http_date(seconds_ahead: int) -> dict[str, Any]:
    moment = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=seconds_ahead)
    return {"retry_after": email.utils.format_datetime(moment, usegmt=True)}


def _refused_by_api(code: str, error: str, http_status: int | None = None) -> Case:
    label = f"``{code}``"
    options: dict[str, Any] = {"code": code}
    if http_status is not None:
        label += f" with HTTP {http_status}"
        options["http_status"] = http_status
    return Case(
        id=f"code-{code.lower()}" + (f"-http-{http_status}" if http_status else ""),
        label=label,
        group="api",
        fault=Fault.API_ERROR,
        options=options,
        send=Send(FAILED, code, 1, 0, 1),
        read=Read(error, code, 1, 1),
    )


def _untrusted(case_id: str, label: str, fault: Fault, **case: Any) -> Case:
    """A reply that cannot be trusted: a send's outcome is unknown, a read fails."""
    return Case(
        id=case_id,
        label=label,
        group="reply",
        fault=fault,
        send=Send(UNKNOWN, "BAD_REPLY", 1, 1, 1),
        read=Read("SmsFlyBadReply", "BAD_REPLY", 1, 1),
        **case,
    )


def _rate_limited(
    case_id: str,
    label: str,
    *,
    retry_in: float,
    options: Callable[[], dict[str, Any]] | None = None,
    **inject: Any,
) -> Case:
    """HTTP 429 on every attempt: nothing was sent, so each attempt is repeated and a send
    is queued again ``retry_in`` seconds on (``inject``, or ``options()``: the fault's)."""
    return Case(
        id=case_id,
        label=label,
        group="http",
        fault=Fault.RATE_LIMITED,
        options=inject if options is None else options,
        send=Send(QUEUED, "RATE_LIMITED", ATTEMPTS, 0, 0, retry_in=retry_in),
        read=Read("SmsFlyRateLimited", "RATE_LIMITED", ATTEMPTS, 1),
    )


def _pooled_then_closed(stage: Stage) -> None:
    """Leave a kept-alive connection in the client's pool, then have the server close it."""
    services.get_client().get_balance()
    stage.server.close_connections()


#: The error codes of the API document's table, plus FORBIDDEN (its example error) and
#: both spellings of the funds error (see DESIGN.md), with the exception each becomes.
API_CODES = {
    "INVREQUEST": "SmsFlyInvalidRequest",
    "INVACTION": "SmsFlyInvalidRequest",
    "INVRECIPIENT": "SmsFlyInvalidRequest",
    "INVTEXT": "SmsFlyInvalidRequest",
    "INVBUTTON": "SmsFlyInvalidRequest",
    "INVIMAGEURL": "SmsFlyInvalidRequest",
    "INVROUTE": "SmsFlyInvalidRequest",
    "INVSOURCE": "SmsFlyInvalidRequest",
    "INVCHANNELS": "SmsFlyInvalidRequest",
    "INVSMSMESSAGE": "SmsFlyInvalidRequest",
    "INVVIBERMESSAGE": "SmsFlyInvalidRequest",
    "INVMSGID": "SmsFlyMessageNotFound",
    "FORBIDDEN": "SmsFlyAuthError",
    "INSUFFICIENTFUND": "SmsFlyInsufficientFunds",
    "INSUFFICIENTFUNDS": "SmsFlyInsufficientFunds",
}

GROUPS = {
    "transport": "Connections",
    "http": "HTTP errors",
    "reply": "Replies that cannot be trusted",
    "api": "API error codes (``success: 0``)",
}

CASES: tuple[Case, ...] = (
    Case(
        id="connection-refused",
        label="Connection refused (nothing listens on the port)",
        group="transport",
        endpoint=REFUSED,
        send=Send(QUEUED, "CONNECTION_FAILED", ATTEMPTS, 0, 0, retry_in=30),
        read=Read("SmsFlyConnectionError", "CONNECTION_FAILED", ATTEMPTS, 1),
    ),
    Case(
        id="connect-timeout",
        label="Connect timeout (a full accept backlog drops the SYN)",
        group="transport",
        endpoint=BLACKHOLE,
        timeout=(SHORT_CONNECT, TIMEOUT[1]),
        send=Send(QUEUED, "CONNECTION_FAILED", ATTEMPTS, 0, 0, retry_in=30),
        read=Read("SmsFlyConnectionError", "CONNECTION_FAILED", ATTEMPTS, 1),
    ),
    Case(
        id="idle-close",
        label="The server closed the kept-alive connection while it was idle",
        group="transport",
        before=_pooled_then_closed,
        reconnects=True,
        send=Send(ACCEPTED, "", 1, 1, 0),
        read=Read(None, "", 1, 0),
    ),
    Case(
        id="read-timeout",
        label="Read timeout after the server processed the request",
        group="transport",
        fault=Fault.TIMEOUT,
        options={"delay": SILENCE},
        timeout=(TIMEOUT[0], SHORT_READ),
        send=Send(UNKNOWN, "TIMEOUT", 1, 1, 1),
        read=Read("SmsFlyTimeout", "TIMEOUT", ATTEMPTS, 1),
    ),
    Case(
        id="connection-reset",
        label="Connection reset after the server processed the request",
        group="transport",
        fault=Fault.CONNECTION_RESET,
        send=Send(UNKNOWN, "CONNECTION_LOST", 1, 1, 1),
        read=Read("SmsFlyTransportError", "CONNECTION_LOST", ATTEMPTS, 1),
    ),
    _rate_limited("429", "HTTP 429 without ``Retry-After``", retry_in=30),
    _rate_limited("429-retry-after", "HTTP 429, ``Retry-After: 2``", retry_in=2, retry_after=2),
    Case(
        id="429-retry-after-long",
        label="HTTP 429, ``Retry-After: 3600`` (over ``MAX_RETRY_WAIT``)",
        group="http",
        fault=Fault.RATE_LIMITED,
        options={"retry_after": 3600},
        send=Send(QUEUED, "RATE_LIMITED", 1, 0, 0, retry_in=services.RATE_LIMITED_MAX_DELAY),
        read=Read("SmsFlyRateLimited", "RATE_LIMITED", 1, 1, next_in=3600),
    ),
    _rate_limited(
        "429-retry-after-date",
        "HTTP 429, ``Retry-After`` as an HTTP date 3 s ahead",
        retry_in=3,
        options=lambda: _http_date(3),
    ),
    _rate_limited(
        "429-retry-after-unreadable",
        "HTTP 429, ``Retry-After: soon`` (unreadable)",
        retry_in=30,
        retry_after="soon",
    ),
    Case(
        id="429-retry-after-absurd",
        label="HTTP 429, ``Retry-After: 99999999999999`` (three million years)",
        group="http",
        fault=Fault.RATE_LIMITED,
        options={"retry_after": "99999999999999"},
        send=Send(QUEUED, "RATE_LIMITED", 1, 0, 0, retry_in=services.RATE_LIMITED_MAX_DELAY),
        read=Read("SmsFlyRateLimited", "RATE_LIMITED", 1, 1, next_in=24 * 3600),
    ),
    Case(
        id="429-once",
        label="HTTP 429 once, then served",
        group="http",
        fault=Fault.RATE_LIMITED,
        once=True,
        send=Send(ACCEPTED, "", 2, 1, 0),
        read=Read(None, "", 2, 0),
    ),
    Case(
        id="500",
        label="HTTP 500 (HTML page)",
        group="http",
        fault=Fault.SERVER_ERROR,
        send=Send(UNKNOWN, "HTTP_500", 1, 0, 1),
        read=Read("SmsFlyServerError", "HTTP_500", 1, 1),
    ),
    Case(
        id="502",
        label="HTTP 502 (HTML page)",
        group="http",
        fault=Fault.BAD_GATEWAY,
        send=Send(UNKNOWN, "HTTP_502", 1, 0, 1),
        read=Read("SmsFlyServerError", "HTTP_502", ATTEMPTS, 1),
    ),
    Case(
        id="502-once",
        label="HTTP 502 once, then served",
        group="http",
        fault=Fault.BAD_GATEWAY,
        once=True,
        send=Send(UNKNOWN, "HTTP_502", 1, 0, 1),
        read=Read(None, "", 2, 0),
    ),
    Case(
        id="503",
        label="HTTP 503 (HTML page)",
        group="http",
        fault=Fault.SERVICE_UNAVAILABLE,
        send=Send(UNKNOWN, "HTTP_503", 1, 0, 1),
        read=Read("SmsFlyServerError", "HTTP_503", ATTEMPTS, 1),
    ),
    Case(
        id="503-retry-after",
        label="HTTP 503, ``Retry-After: 1``",
        group="http",
        fault=Fault.SERVICE_UNAVAILABLE,
        options={"retry_after": 1},
        send=Send(UNKNOWN, "HTTP_503", 1, 0, 1),
        read=Read("SmsFlyServerError", "HTTP_503", ATTEMPTS, 1),
    ),
    Case(
        id="422",
        label="HTTP 422 with the API's JSON error",
        group="http",
        fault=Fault.UNPROCESSABLE,
        send=Send(FAILED, "INVREQUEST", 1, 0, 1),
        read=Read("SmsFlyInvalidRequest", "INVREQUEST", 1, 1),
    ),
    Case(
        id="403",
        label="HTTP 403 (a proxy's HTML page)",
        group="http",
        fault=Fault.FORBIDDEN,
        send=Send(FAILED, "HTTP_403", 1, 0, 1),
        read=Read("SmsFlyAuthError", "HTTP_403", 1, 1),
    ),
    _untrusted("html", "HTTP 200 with an HTML page", Fault.HTML_ERROR),
    _untrusted("empty", "HTTP 200 with an empty body", Fault.EMPTY_BODY),
    _untrusted("broken-json", "Broken JSON (cut off half way)", Fault.BROKEN_JSON),
    _untrusted(
        "missing-fields",
        "``success: 1`` with every field missing",
        Fault.MISSING_FIELDS,
        # A channel left out of GETSOURCES means no names for it: an empty list, not an error.
        overrides={SOURCES: Read(None, "", 1, 0)},
    ),
    _untrusted("wrong-types", "``success: 1`` with every field mistyped", Fault.WRONG_TYPES),
    Case(
        id="unknown-status",
        label=f"An unknown status value (``{UNLISTED_STATUS}``)",
        group="reply",
        fault=Fault.UNKNOWN_STATUS,
        send=Send(ACCEPTED, "", 1, 1, 0),
        read=Read(None, "", 1, 0),
    ),
    Case(
        id="deep-json",
        label=f"An error reply nesting a value {DEEP_JSON_DEPTH} levels deep",
        group="reply",
        fault=Fault.DEEP_JSON,
        send=Send(FAILED, "INVREQUEST", 1, 0, 1),
        read=Read("SmsFlyInvalidRequest", "INVREQUEST", 1, 1),
    ),
    _untrusted("huge-body", "A 6 MiB body, streamed without ``Content-Length``", Fault.HUGE_BODY),
    *(_refused_by_api(code, error) for code, error in API_CODES.items()),
    # The codes above come with HTTP 400 (403 for FORBIDDEN), as the sandbox answers; a
    # server may as well say success: 0 with HTTP 200, and that is a refusal all the same.
    _refused_by_api("INVRECIPIENT", "SmsFlyInvalidRequest", http_status=200),
)

#: What each cell observed, filled in as cells pass; written out when all have.
OBSERVED: dict[tuple[str, str], tuple[str, str, str]] = {}


# -- the servers --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    """One sandbox server for the whole module."""
    with SandboxServer(Simulator(api_key=KEY)) as running:
        yield running


@pytest.fixture(scope="module")
def refused_url() -> Iterator[str]:
    """An address on 127.0.0.1 where nothing listens: every connection is refused.

    The port stays bound (never listening) so no other program can take it meanwhile.
    """
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{bound.getsockname()[1]}/api/v2/api.php"


@pytest.fixture(scope="module")
def blackhole_url() -> Iterator[str]:
    """An address on 127.0.0.1 where connecting times out.

    A listener that never accepts, with an accept backlog of 0, takes one connection
    into its queue; once the queue is full the kernel drops further SYNs, so a client's
    connect() waits until its own timeout, just as with a host that does not answer.
    """
    listener = socket.socket()
    fillers: list[socket.socket] = []
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        address = listener.getsockname()
        for _ in range(64):
            filler = socket.socket()
            filler.settimeout(0.2)
            try:
                filler.connect(address)
            except TimeoutError:
                filler.close()
                break
            fillers.append(filler)
        else:
            pytest.skip("this system does not drop connections to a full accept backlog")
        yield f"http://127.0.0.1:{address[1]}/api/v2/api.php"
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


@pytest.fixture(scope="module", autouse=True)
def matrix_file() -> Iterator[None]:
    """Write the observed matrix once every cell of the module has passed."""
    yield
    if len(OBSERVED) == len(CASES) * len(OPERATIONS) and MATRIX.parent.is_dir():
        text = render_matrix()
        if not MATRIX.exists() or MATRIX.read_text(encoding="utf-8") != text:
            MATRIX.write_text(text, encoding="utf-8")


# -- running one cell ---------------------------------------------------------------------


@dataclass
class Stage:
    """Everything one cell needs: the server, the fault's endpoint and the waits seen."""

    case: Case
    operation: str
    server: SandboxServer
    urls: dict[str, str]
    waits: list[float] = field(default_factory=list)

    @property
    def simulator(self) -> Simulator:
        return self.server.simulator

    def smsfly(self, *, faulty: bool) -> dict[str, Any]:
        case = self.case
        return {
            "BACKEND": HTTP_BACKEND,
            "API_URL": self.urls[case.endpoint] if faulty else self.server.url,
            "API_KEY": KEY,
            "TIMEOUT": case.timeout if faulty else TIMEOUT,
            "MAX_RETRIES": MAX_RETRIES,
            "RETRY_BACKOFF": 0.0,
            # Retries wait here (recorded) instead of sleeping: they are counted, not timed.
            "BACKEND_OPTIONS": {"sleep": self.waits.append},
            "SMS_SOURCE": "InfoCenter",
            "VIBER_SOURCE": "Promo",
            "SYNC_RATE_LIMIT": 0,
        }

    @contextmanager
    def fault(self) -> Iterator[Probe]:
        """The fault in force for one run of the operation; what the run did, after it."""
        simulator = self.simulator
        simulator.clear_faults()
        with override_settings(SMSFLY=self.smsfly(faulty=True)):
            cache.clear()  # the price list is cached: every run must ask
            if self.case.before is not None:
                self.case.before(self)
            self.waits.clear()
            connections = self.server.connection_count
            probe = Probe(self, ACTION[self.operation])
            if self.case.fault is not None:
                simulator.inject(
                    self.case.fault,
                    times=1 if self.case.once else ATTEMPTS,
                    action=ACTION[self.operation],
                    **self.case.inject_options(),
                )
            yield probe
            probe.finish()
            if self.case.reconnects:
                assert self.server.connection_count == connections + 1
        simulator.clear_faults()


class Probe:
    """Counts what one run of an operation sent, at the server and at the client."""

    def __init__(self, stage: Stage, action: str) -> None:
        self.stage = stage
        self.action = action
        self._before = len(stage.simulator.requests_for(action))
        self._others = len(stage.simulator.requests) - self._before
        self.requests: list[RecordedRequest] = []
        self.arrived = 0
        self.processed = 0
        self.attempts = 0

    def finish(self) -> None:
        simulator = self.stage.simulator
        everything = simulator.requests_for(self.action)
        mine = everything[self._before :]
        # The operation asked for nothing else (a sync sends nothing, a send reads nothing).
        assert len(simulator.requests) - len(everything) == self._others
        self.requests = mine
        self.arrived = len(mine)
        self.processed = sum(1 for request in mine if request.processed)
        # One request per run; every repeat of it was preceded by exactly one wait.
        self.attempts = 1 + len(self.stage.waits)
        if self.stage.case.endpoint == SERVER:
            assert self.arrived == self.attempts, "every attempt reached the server"
        else:
            assert self.arrived == 0, "nothing can reach the server through this fault"

    def check(self, expected: int) -> None:
        """The client made ``expected`` requests (and the fault let them arrive or not)."""
        assert self.attempts == expected, f"{self.attempts} requests, expected {expected}"


@dataclass(frozen=True)
class CommandRun:
    exit: int
    output: str


def run_command(*argv: str) -> CommandRun:
    """Run a management command as ``manage.py`` would: CommandError means its status."""
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command(*argv, stdout=out, stderr=err)
    except CommandError as exc:
        return CommandRun(exc.returncode, f"{out.getvalue()}{err.getvalue()}{exc}")
    except SystemExit as exc:  # pragma: no cover - only if a command exits by itself
        code = exc.code if isinstance(exc.code, int) else 1
        return CommandRun(code, out.getvalue() + err.getvalue())
    except Exception:
        pytest.fail(f"{argv[0]} raised instead of reporting:\n{traceback.format_exc()}")
    return CommandRun(0, out.getvalue() + err.getvalue())


def check_command(run: CommandRun, expected_exit: int, code: str) -> None:
    assert run.exit == expected_exit, run.output
    assert "Traceback" not in run.output
    assert KEY not in run.output
    if expected_exit and code:
        assert code in run.output, run.output  # the error is named, not just "failed"


def no_row_left_sending() -> None:
    assert not Message.objects.filter(state=Message.State.SENDING).exists()


def seconds_until(moment: dt.datetime | None) -> float:
    assert moment is not None
    return (moment - timezone.now()).total_seconds()


# -- the operations -----------------------------------------------------------------------


def check_sent_row(message: Message, expected: Send, probe: Probe) -> None:
    """A send's row tells the truth about the fault, and nothing was sent twice."""
    message.refresh_from_db()
    assert message.state == expected.state, (message.state, message.error_text)
    assert message.error_code == expected.code, message.error_text
    assert bool(message.error_text) == bool(expected.code)
    assert KEY not in message.error_text
    probe.check(expected.requests)
    assert probe.processed == expected.sent
    # The state never claims less than the server did: failed or queued means not sent.
    if message.state in (FAILED, QUEUED):
        assert probe.processed == 0
    if message.state == ACCEPTED:
        assert probe.processed == 1
        assert message.message_id
    # Repeated only after a reply proving the request was refused (HTTP 429), or after a
    # connection that never reached the server: never after one it may have acted on.
    assert all(request.http_status == 429 for request in probe.requests[:-1])
    if message.state == QUEUED:
        assert expected.retry_in is not None
        assert abs(seconds_until(message.retry_at) - expected.retry_in) < 2.5
    else:
        assert message.retry_at is None


def send_cell(stage: Stage) -> tuple[str, str, str]:
    case, expected, simulator = stage.case, stage.case.send, stage.simulator
    with stage.fault() as probe:
        message = services.send_sms(RECIPIENT, "Hi")  # never raises for a failed send
    check_sent_row(message, expected, probe)
    no_row_left_sending()

    with stage.fault() as command_probe:
        run = run_command(*COMMAND[SEND])
    check_command(run, expected.exit, expected.code)
    by_command = Message.objects.exclude(pk=message.pk).get()
    check_sent_row(by_command, expected, command_probe)
    no_row_left_sending()

    # The fault is gone: what was queued is sent exactly once, nothing else again.
    sent_before = len(simulator.requests_for("SENDMESSAGE"))
    Message.objects.filter(state=QUEUED).update(retry_at=timezone.now())
    assert services.send_due(rate_limit=0) == (2 if expected.state == QUEUED else 0)
    retried = simulator.requests_for("SENDMESSAGE")[sent_before:]
    assert len(retried) == (2 if expected.state == QUEUED else 0)
    rows = list(Message.objects.order_by("pk"))
    for row in rows:
        assert row.state == (ACCEPTED if expected.state == QUEUED else expected.state)
    issued = [sent.message_id for sent in simulator.messages]
    accepted_ids = [row.message_id for row in rows if row.state == ACCEPTED]
    assert len(set(accepted_ids)) == len(accepted_ids)  # two rows, two messages
    assert set(accepted_ids) <= set(issued)
    # Per message at most one SENDMESSAGE was acted on: the fault's plus the retry's.
    assert len(issued) == 2 * expected.sent + len(retried)
    no_row_left_sending()

    state = f"**{expected.state}**"
    if expected.state == QUEUED:
        state += f", retry in {_duration(expected.retry_in)} → accepted"
    elif expected.state == UNKNOWN:
        state += ", not resent"
    if case.endpoint == SERVER:
        truth = "SMS-fly sent it" if expected.sent else "nothing sent"
        traffic = f"{_requests(expected.requests)}, {truth}"
    else:
        traffic = f"{_attempts(expected.requests)}, none arrived"
    return state, _with_code(expected.code, traffic), f"exit {expected.exit} · ✓ ✓ ✓"


def _accepted_message(stage: Stage) -> Message:
    """A message SMS-fly accepted (no fault), whose status has since moved on."""
    with override_settings(SMSFLY=stage.smsfly(faulty=False)):
        message = services.send_sms(RECIPIENT, "Hi")
    assert message.state == ACCEPTED
    stage.simulator.advance(10)  # the sandbox now reports it delivered
    Message.objects.filter(pk=message.pk).update(next_check_at=timezone.now())
    return message


def check_polled_row(message: Message, expected: Read, probe: Probe, sends: int) -> None:
    """A poll under the fault kept the row whole; its status moved only on a good reply."""
    assert len(probe.stage.simulator.requests_for("SENDMESSAGE")) == sends  # never sends
    message.refresh_from_db()
    probe.check(expected.requests)
    channel = message.channel_statuses.get()
    assert message.state == ACCEPTED  # a poll never changes whether it was sent
    assert message.error_code == expected.code
    assert bool(message.error_text) == bool(expected.code)
    assert KEY not in message.error_text
    if expected.error is None and probe.stage.case.fault is not Fault.UNKNOWN_STATUS:
        assert message.delivery_status is DeliveryStatus.DELIVERED
        assert message.next_check_at is None
        return
    # Unchanged, and asked again later.
    assert message.delivery_status is DeliveryStatus.ACCEPTED
    assert channel.status == DeliveryStatus.ACCEPTED.value
    assert abs(seconds_until(message.next_check_at) - expected.next_in) < 2.5
    if probe.stage.case.fault is Fault.UNKNOWN_STATUS:
        assert channel.raw_status == UNLISTED_STATUS  # kept as it came, never a crash
    else:
        assert channel.raw_status == "ACCEPTD"


def sync_cell(stage: Stage) -> tuple[str, str, str]:
    case, expected, simulator = stage.case, stage.case.expected_read(SYNC), stage.simulator
    first = _accepted_message(stage)
    sends = len(simulator.requests_for("SENDMESSAGE"))
    with stage.fault() as probe:
        report = services.sync_statuses()
    assert (report.checked, report.errors) == (1, 1 if expected.error else 0)
    check_polled_row(first, expected, probe, sends)

    second = _accepted_message(stage)
    sends = len(simulator.requests_for("SENDMESSAGE"))
    with stage.fault() as command_probe:
        run = run_command(*COMMAND[SYNC])
    check_command(run, expected.exit, expected.code)
    check_polled_row(second, expected, command_probe, sends)

    # The fault is gone: the next poll moves both forward.
    Message.objects.exclude(next_check_at=None).update(next_check_at=timezone.now())
    with override_settings(SMSFLY=stage.smsfly(faulty=False)):
        services.sync_statuses()
    for message in (first, second):
        message.refresh_from_db()
        assert message.delivery_status is DeliveryStatus.DELIVERED
    no_row_left_sending()

    if expected.error is None and case.fault is not Fault.UNKNOWN_STATUS:
        state = "**advanced** to delivered"
    elif case.fault is Fault.UNKNOWN_STATUS:
        state = f"raw ``{UNLISTED_STATUS}`` kept, polled again → delivered"
    else:
        state = f"**unchanged**, next poll in {_duration(expected.next_in)} → delivered"
    traffic = (_requests if case.endpoint == SERVER else _attempts)(expected.requests)
    return state, _with_code(expected.code, traffic), f"exit {expected.exit} · ✓ ✓ ✓"


READS: dict[str, Callable[[], object]] = {
    BALANCE: services.get_balance,
    SOURCES: lambda: services.get_client().get_sources(),
    PRICES: lambda: services.get_price_list("255"),
}


def read_cell(stage: Stage) -> tuple[str, str, str]:
    case, expected = stage.case, stage.case.expected_read(stage.operation)
    read = READS[stage.operation]
    value: object = None
    error: SmsFlyError | None = None
    with stage.fault() as probe:
        try:
            value = read()
        except SmsFlyError as exc:  # anything else fails the test: an unhandled exception
            error = exc
    probe.check(expected.requests)
    if expected.error is None:
        assert error is None, repr(error)
        assert value is not None
    else:
        # Only the documented exceptions escape, each with its code and no key.
        assert error is not None
        assert type(error).__name__ == expected.error
        assert getattr(exceptions, expected.error) is type(error)
        assert error.error_code == expected.code
        assert KEY not in str(error)
        assert KEY not in repr(error)

    with stage.fault() as command_probe:
        run = run_command(*COMMAND[stage.operation])
    command_probe.check(expected.requests)
    check_command(run, expected.exit, expected.code)

    # The fault is gone: the same read works again.
    with override_settings(SMSFLY=stage.smsfly(faulty=False)):
        cache.clear()
        assert read() is not None

    outcome = f"``{expected.error}``" if expected.error else "**ok**"
    traffic = (_requests if case.endpoint == SERVER else _attempts)(expected.requests)
    return outcome, _with_code(expected.code, traffic), f"exit {expected.exit} · – – ✓"


def _requests(count: int) -> str:
    return f"{count} request" + ("s" if count != 1 else "")


def _attempts(count: int) -> str:
    return f"{count} attempt" + ("s" if count != 1 else "")


def _with_code(code: str, traffic: str) -> str:
    return f"``{code}`` · {traffic}" if code else f"no error · {traffic}"


def _duration(seconds: float | None) -> str:
    assert seconds is not None
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds / 3600:g} h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"


CELLS: dict[str, Callable[[Stage], tuple[str, str, str]]] = {
    SEND: send_cell,
    SYNC: sync_cell,
    BALANCE: read_cell,
    SOURCES: read_cell,
    PRICES: read_cell,
}


@pytest.mark.parametrize("operation", OPERATIONS)
@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_cell(
    case: Case,
    operation: str,
    server: SandboxServer,
    refused_url: str,
    request: pytest.FixtureRequest,
) -> None:
    urls = {SERVER: server.url, REFUSED: refused_url}
    if case.endpoint == BLACKHOLE:
        urls[BLACKHOLE] = request.getfixturevalue("blackhole_url")
    stage = Stage(case, operation, server, urls)
    server.simulator.reset()
    server.simulator.freeze()
    with override_settings(SMSFLY=stage.smsfly(faulty=False)):
        OBSERVED[case.id, operation] = CELLS[operation](stage)


# -- the faults are what the rows say ------------------------------------------------------


def _post(server: SandboxServer, action: str, data: dict[str, Any]) -> requests.Response:
    body = {"auth": {"key": KEY}, "action": action, "data": data}
    return requests.post(server.url, json=body, timeout=5)


SMS = {
    "recipient": RECIPIENT,
    "channels": ["sms"],
    "sms": {"source": "InfoCenter", "text": "Hi"},
}


@pytest.fixture
def simulator(server: SandboxServer) -> Simulator:
    server.simulator.reset()
    return server.simulator


def test_an_api_error_carries_its_code_and_usual_status(
    server: SandboxServer, simulator: Simulator
) -> None:
    simulator.inject(Fault.API_ERROR, code="INVTEXT")
    simulator.inject(Fault.API_ERROR, code="FORBIDDEN")
    simulator.inject(Fault.API_ERROR, code="INSUFFICIENTFUND", http_status=200)
    replies = [_post(server, "SENDMESSAGE", SMS) for _ in range(3)]
    assert [(r.status_code, r.json()["success"]) for r in replies] == [
        (400, 0),
        (403, 0),
        (200, 0),
    ]
    assert [r.json()["error"]["code"] for r in replies] == [
        "INVTEXT",
        "FORBIDDEN",
        "INSUFFICIENTFUND",
    ]
    assert simulator.messages == []  # refused: nothing sent
    assert [r.processed for r in simulator.requests] == [False, False, False]


def test_403_is_a_page_and_422_the_apis_json(server: SandboxServer, simulator: Simulator) -> None:
    simulator.inject(Fault.FORBIDDEN)
    simulator.inject(Fault.UNPROCESSABLE)
    forbidden = _post(server, "GETBALANCE", {})
    unprocessable = _post(server, "GETBALANCE", {})
    assert (forbidden.status_code, forbidden.headers["Content-Type"]) == (403, "text/html")
    assert "403 Forbidden" in forbidden.text
    assert unprocessable.status_code == 422
    assert unprocessable.json()["error"]["code"] == "INVREQUEST"


def test_malformed_successes_are_sent_after_the_work_is_done(
    server: SandboxServer, simulator: Simulator
) -> None:
    simulator.inject(Fault.MISSING_FIELDS)
    simulator.inject(Fault.WRONG_TYPES)
    simulator.inject(Fault.UNKNOWN_STATUS)
    missing, mistyped, unknown = (_post(server, "SENDMESSAGE", SMS).json() for _ in range(3))
    assert (missing["success"], missing["data"]) == (1, {})
    assert isinstance(mistyped["data"]["messageID"], list)
    assert isinstance(mistyped["data"]["sms"]["cost"], list)
    assert unknown["data"]["sms"]["status"] == UNLISTED_STATUS
    assert len(simulator.messages) == 3  # each was sent before its reply was spoiled


def test_a_huge_body_is_streamed_without_a_length(
    server: SandboxServer, simulator: Simulator
) -> None:
    simulator.inject(Fault.HUGE_BODY)
    reply = _post(server, "GETBALANCE", {})
    assert reply.headers["Transfer-Encoding"] == "chunked"
    assert "Content-Length" not in reply.headers
    assert len(reply.content) == DEFAULT_HUGE_SIZE > DEFAULT_MAX_REPLY_BYTES
    assert reply.json()["data"]["balance"] == "1000.000"  # valid JSON, only far too long


def test_retry_after_may_be_any_text(server: SandboxServer, simulator: Simulator) -> None:
    simulator.inject(Fault.RATE_LIMITED, retry_after="Wed, 21 Oct 2015 07:28:00 GMT")
    reply = _post(server, "GETBALANCE", {})
    assert reply.headers["Retry-After"] == "Wed, 21 Oct 2015 07:28:00 GMT"


@pytest.mark.parametrize(
    ("fault", "options", "error"),
    [
        (Fault.RATE_LIMITED, {"code": "INVTEXT"}, "API_ERROR only"),
        (Fault.API_ERROR, {"code": ""}, "non-empty string"),
        (Fault.API_ERROR, {"http_status": 99}, "from 100 to 599"),
        (Fault.SERVER_ERROR, {"size": 10}, "HUGE_BODY only"),
        (Fault.HUGE_BODY, {"size": 0}, "bytes >= 1"),
        (Fault.RATE_LIMITED, {"retry_after": "2\r\nX-Forged: 1"}, "one printable line"),
        (Fault.RATE_LIMITED, {"retry_after": -1}, ">= 0"),
    ],
)
def test_staging_refuses_what_no_server_would_send(
    simulator: Simulator, fault: Fault, options: dict[str, Any], error: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(error)):
        simulator.inject(fault, **options)
    assert simulator.pending_faults == []


# -- what the matrix found ----------------------------------------------------------------


def _strings(value: object) -> Iterator[str]:
    """Every string inside ``value`` (keys too), walked without recursion."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, Mapping):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)


def test_a_deep_error_reply_is_scrubbed_without_recursing(
    mocked: responses.RequestsMock, client: SmsFlyClient
) -> None:
    # The key echoed, as a key and as a value, at the bottom of a value nested deeper
    # than the old recursive scrubbing could go (still readable as JSON).
    depth = DEEP_JSON_DEPTH
    trace = '{"echo": {"' + API_KEY + '": "' + API_KEY + '"}}'
    nested = "[" * depth + trace + "]" * depth
    body = '{"success": 0, "error": {"code": "INVTEXT"}, "trace": ' + nested + "}"
    mocked.post(API_URL, body=body, status=400)
    with pytest.raises(exceptions.SmsFlyInvalidRequest) as caught:
        client.get_balance()
    assert caught.value.code == "INVTEXT"
    strings = list(_strings(caught.value.reply))
    assert "***" in strings
    assert not any(API_KEY in text for text in strings)


def test_a_key_echoed_into_a_bad_field_stays_out_of_errors_and_logs(
    mocked: responses.RequestsMock, client: SmsFlyClient, caplog: pytest.LogCaptureFixture
) -> None:
    # An essential field that fails to parse raises, quoting the value; an optional
    # one is dropped with a warning. Neither may carry the key an odd server echoed.
    mocked.post(API_URL, json={"success": 1, "data": {"balance": API_KEY}})
    status = {"messageID": "FAPI1", "sms": {"status": "ACCEPTD", "date": API_KEY}}
    mocked.post(API_URL, json={"success": 1, "data": status})
    with pytest.raises(exceptions.SmsFlyBadReply) as caught:
        client.get_balance()
    assert str(caught.value) == "GETBALANCE: balance: '***' is not a number"
    assert caught.value.action == "GETBALANCE"
    with caplog.at_level("WARNING", logger="django_smsfly.client"):
        assert client.get_message_status("FAPI1")["sms"].date is None
    assert "sms.date" in caplog.text
    assert API_KEY not in caplog.text


def test_json_that_is_not_an_object_is_not_called_empty(
    mocked: responses.RequestsMock, client: SmsFlyClient
) -> None:
    mocked.post(API_URL, body="[]", status=200)
    with pytest.raises(exceptions.SmsFlyBadReply, match="a JSON reply that is not an object"):
        client.get_balance()


# -- the table ----------------------------------------------------------------------------

HEADER = (
    "Fault",
    "Send",
    "Status sync",
    "Balance",
    "Sender names",
    "Prices",
)


def render_matrix() -> str:
    """The observed matrix as reStructuredText tables, one per group of faults."""
    lines = [
        ".. Generated by tests/test_fault_matrix.py when every cell passed; do not edit.",
        ".. Regenerate: .venv/bin/python -m pytest tests/test_fault_matrix.py",
        "",
        f"{len(CASES)} faults × {len(OPERATIONS)} operations = "
        f"{len(CASES) * len(OPERATIONS)} cells, each run through the service and "
        "through the management command.",
        "",
    ]
    for group, title in GROUPS.items():
        lines += [
            f".. list-table:: {title}",
            "   :header-rows: 1",
            "   :widths: 22 18 18 14 14 14",
            "",
            "   * - " + HEADER[0],
            *(f"     - {name}" for name in HEADER[1:]),
        ]
        for case in CASES:
            if case.group != group:
                continue
            lines.append(f"   * - {case.label}")
            for operation in OPERATIONS:
                first, *rest = OBSERVED[case.id, operation]
                lines.append(f"     - | {first}")
                lines += [f"       | {line}" for line in rest]
        lines.append("")
    return "\n".join(lines)
