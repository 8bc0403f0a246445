"""The sandbox: an in-process simulator of SMS-fly's JSON API v2.04.

Point the app at it with ``SMSFLY = {"BACKEND": "django_smsfly.backends.sandbox.SandboxBackend"}``
and nothing leaves the process: requests are validated as SMS-fly validates them, balances are
debited, message ids are issued and delivery statuses move forward with time. Faults (HTTP 429,
403, 422, 5xx, API error codes, timeouts, dropped connections, broken, malformed or huge
replies) can be injected to rehearse failures.
:mod:`django_smsfly.backends.sandbox_server` serves the same simulator over real HTTP.

Options (``SMSFLY["BACKEND_OPTIONS"]``, or keyword arguments of :class:`Simulator`):

``api_key``
    The key requests must carry; ``None`` (default) accepts any non-empty key.
``balance`` / ``viber_balance``
    Starting SMS and Viber balances (default ``1000.000`` and ``500.000``).
``speed``
    How much faster than real time statuses move (``10`` = ten times faster; 0.01–10000).
``latency``
    Seconds to sleep on every request, to make benchmarks look like a network (default 0).
``rate_limit`` / ``burst``
    Requests per second allowed (token bucket holding ``burst`` tokens, default
    ``rate_limit``); more are refused with HTTP 429. Off by default.
``sources``
    Sender names per channel, e.g. ``{"sms": ["MyShop"]}``; channels not given keep the
    defaults (SMS ``InfoCenter``, ``SMS-fly``; Viber ``Promo``, ``SMS-fly``).
``prices``
    ``channel -> mcc -> mnc -> price`` replacing the built-in prices of the channels given
    (Ukraine ``255`` and Poland ``260``; other countries have no route: ``INVROUTE``).
``test_numbers``
    Whether the built-in test numbers below apply (default ``True``).

Test numbers: any Ukrainian number (``380`` + 9 digits) ending in

======== =========================================================================
``0001`` every channel ends ``UNDELIV`` (:attr:`Outcome.UNDELIVERED`)
``0002`` Viber fails, the SMS fallback is delivered (:attr:`Outcome.NO_VIBER`)
``0003`` never delivered; each channel ends ``EXPIRED`` after its ttl (:attr:`Outcome.EXPIRED`)
``0004`` SENDMESSAGE is refused with ``INVRECIPIENT`` (:attr:`Outcome.REJECTED`)
``0005`` every channel is ``STOPED`` (:attr:`Outcome.STOPPED`)
======== =========================================================================

Every other number is delivered. :data:`TEST_NUMBERS` lists one example of each.

Timeline, in seconds after the send divided by ``speed``: SMS ``ACCEPTD`` → ``INPROGRESS``
(1) → ``SENT`` (3) → ``DELIVRD`` (6); Viber ``ACCEPTD`` → ``SENT`` (2) → ``DELIVRD`` (5) →
``VIEWED`` (15). A fallback channel waits as ``ACCEPTD`` and starts when the channel before it
fails (``UNDELIV`` at 5 s, or ``EXPIRED`` after its ttl); once a channel is delivered, the
channels after it end ``REFUND`` and their cost is credited back. ``STOPED`` comes at 1 s.

A message's status is a pure function of its id and the time: the id encodes when it was
sent, its channels, ttls, outcome and the speed (see :class:`MessagePlan`), so any process
running a sandbox answers GETMESSAGESTATUS for ids another process issued.

Money: an SMS costs the recipient network's price times its parts (:func:`sms_segments`)
and is taken from the SMS balance (the one GETBALANCE reports); a Viber message costs a
flat price from the Viber balance. Viber replies carry a ``label`` (:func:`viber_label`).
A ``ttl`` left out means 1440 minutes.
"""

from __future__ import annotations

import collections
import datetime as dt
import enum
import hashlib
import heapq
import hmac
import itertools
import json
import math
import re
import secrets
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, TypedDict

from django_smsfly.backends.base import BaseBackend, RawReply, redact_body
from django_smsfly.exceptions import (
    SmsFlyConnectionError,
    SmsFlyTimeout,
    SmsFlyTransportError,
    Verdict,
)
from django_smsfly.pricing import network_of
from django_smsfly.results import KYIV
from django_smsfly.segments import count_segments

if TYPE_CHECKING:  # pragma: no cover
    from typing_extensions import Unpack

__all__ = [
    "API_PATH",
    "DEEP_JSON_DEPTH",
    "DEFAULT_HUGE_SIZE",
    "DEFAULT_TIMEOUT_DELAY",
    "TEST_NUMBERS",
    "UNLISTED_STATUS",
    "Fault",
    "MessagePlan",
    "Outcome",
    "RecordedRequest",
    "SandboxBackend",
    "SandboxOptions",
    "SentMessage",
    "SimulatedReply",
    "Simulator",
    "get_simulator",
    "viber_label",
]

#: The path SMS-fly serves the API on (the sandbox server answers there too).
API_PATH = "/api/v2/api.php"

#: Seconds a TIMEOUT fault keeps an HTTP client waiting: past the default 30 s read timeout.
DEFAULT_TIMEOUT_DELAY = 35.0

#: Bytes of a HUGE_BODY reply: past the HTTP backend's default 4 MiB cap.
DEFAULT_HUGE_SIZE = 6 * 1024 * 1024

#: How deep a DEEP_JSON reply nests (Python's default recursion limit is 1000).
DEEP_JSON_DEPTH = 600

#: The status an UNKNOWN_STATUS fault reports: one the API document does not list.
UNLISTED_STATUS = "RESCHEDULED"

#: The most requests and messages kept for inspection; older ones are forgotten.
MAX_RECORDS = 100_000

_SMS = "sms"
_VIBER = "viber"
_CHANNELS = (_SMS, _VIBER)
_MONEY = Decimal("0.001")


class Outcome(str, enum.Enum):
    """What becomes of a message sent to a recipient (chosen by rules and test numbers)."""

    #: The first channel is delivered (a delivered Viber message is later ``VIEWED``).
    DELIVERED = "delivered"
    #: Every channel ends ``UNDELIV``.
    UNDELIVERED = "undelivered"
    #: Viber ends ``UNDELIV``; an SMS channel is delivered.
    NO_VIBER = "no_viber"
    #: Nothing is delivered: each channel ends ``EXPIRED`` when its ttl runs out.
    EXPIRED = "expired"
    #: SENDMESSAGE itself is refused with ``INVRECIPIENT``; nothing is spent.
    REJECTED = "rejected"
    #: Every channel is stopped by the system (``STOPED``).
    STOPPED = "stopped"


class Fault(str, enum.Enum):
    """A failure :meth:`Simulator.inject` stages for a coming request."""

    #: HTTP 429 with an HTML body (and ``Retry-After`` if given); not processed.
    RATE_LIMITED = "rate_limited"
    #: HTTP 500 with an HTML body; not processed.
    SERVER_ERROR = "server_error"
    #: HTTP 502 with an HTML body; not processed.
    BAD_GATEWAY = "bad_gateway"
    #: HTTP 503 with an HTML body (and ``Retry-After`` if given); not processed.
    SERVICE_UNAVAILABLE = "service_unavailable"
    #: Processed, then no reply: in-process :class:`~django_smsfly.exceptions.SmsFlyTimeout`;
    #: over HTTP the server waits ``delay`` seconds and closes the connection.
    TIMEOUT = "timeout"
    #: In-process :class:`~django_smsfly.exceptions.SmsFlyConnectionError`; over HTTP the
    #: connection is dropped without a reply (a listening socket cannot refuse; stop the
    #: server for a true refusal). Not processed.
    CONNECTION_REFUSED = "connection_refused"
    #: Processed, then the connection drops without a reply (verdict unknown).
    CONNECTION_RESET = "connection_reset"
    #: Processed; HTTP 200 whose JSON body is cut off half way.
    BROKEN_JSON = "broken_json"
    #: Processed; HTTP 200 with an empty body.
    EMPTY_BODY = "empty_body"
    #: Processed; HTTP 200 with an HTML page instead of JSON.
    HTML_ERROR = "html_error"
    #: HTTP 403 with a proxy's HTML page (no JSON); not processed.
    FORBIDDEN = "forbidden"
    #: HTTP 422 with the API's JSON error ``INVREQUEST`` (the body could not be read);
    #: not processed.
    UNPROCESSABLE = "unprocessable"
    #: ``success: 0`` with the error ``code`` given to :meth:`Simulator.inject` and its
    #: usual HTTP status (403 for ``FORBIDDEN``, else 400, or ``http_status``); not processed.
    API_ERROR = "api_error"
    #: Processed; ``success: 1`` but the ``data`` object is empty: every field is missing.
    MISSING_FIELDS = "missing_fields"
    #: Processed; ``success: 1`` but every value in ``data`` is wrapped in a list, so no
    #: field has the type the document gives it.
    WRONG_TYPES = "wrong_types"
    #: Processed; every channel's ``status`` is :data:`UNLISTED_STATUS`, a value the
    #: document does not list (replies without statuses are unchanged).
    UNKNOWN_STATUS = "unknown_status"
    #: HTTP 400 with the API's JSON error ``INVREQUEST`` whose body also holds a value
    #: nested :data:`DEEP_JSON_DEPTH` levels deep: more than any reply needs, and too
    #: deep for code that walks it recursively. Not processed.
    DEEP_JSON = "deep_json"
    #: Processed; HTTP 200 with the reply padded to ``size`` bytes (default
    #: :data:`DEFAULT_HUGE_SIZE`). Over HTTP it is streamed in chunks without a
    #: ``Content-Length``, so only a client that counts what it reads can stop it.
    HUGE_BODY = "huge_body"

    @property
    def processed(self) -> bool:
        """Whether the simulator acts on the request (sends, debits) before failing."""
        return self not in _NOT_PROCESSED


_NOT_PROCESSED = frozenset(
    {
        Fault.RATE_LIMITED,
        Fault.SERVER_ERROR,
        Fault.BAD_GATEWAY,
        Fault.SERVICE_UNAVAILABLE,
        Fault.CONNECTION_REFUSED,
        Fault.FORBIDDEN,
        Fault.UNPROCESSABLE,
        Fault.API_ERROR,
        Fault.DEEP_JSON,
    }
)

#: One example number per built-in test outcome (any ``380`` number with that ending works).
TEST_NUMBERS: Mapping[Outcome, str] = {
    Outcome.UNDELIVERED: "380500000001",
    Outcome.NO_VIBER: "380500000002",
    Outcome.EXPIRED: "380500000003",
    Outcome.REJECTED: "380500000004",
    Outcome.STOPPED: "380500000005",
}
_TEST_SUFFIXES = {number[-4:]: outcome for outcome, number in TEST_NUMBERS.items()}
_UA_NUMBER = re.compile(r"380\d{9}")


class SandboxOptions(TypedDict, total=False):
    """Options of :class:`Simulator` (and of :class:`SandboxBackend` via ``BACKEND_OPTIONS``)."""

    api_key: str | None
    balance: Decimal | str | int | float
    viber_balance: Decimal | str | int | float
    speed: float
    latency: float
    rate_limit: float | None
    burst: int | None
    sources: Mapping[str, Sequence[str]]
    prices: Mapping[str, Mapping[str, Mapping[str, Decimal | str | int | float]]]
    test_numbers: bool


_DEFAULT_SOURCES: dict[str, tuple[str, ...]] = {
    _SMS: ("InfoCenter", "SMS-fly"),
    _VIBER: ("Promo", "SMS-fly"),
}

# Prices per segment (SMS) or per message (Viber), mcc -> mnc -> price, in the account's
# currency. "99" stands for the smaller Ukrainian networks.
_DEFAULT_PRICES: dict[str, dict[str, dict[str, str]]] = {
    _SMS: {
        "255": {"01": "0.479", "03": "0.478", "06": "0.477", "07": "0.476", "99": "0.495"},
        "260": {"01": "0.210", "02": "0.210", "03": "0.205", "06": "0.199"},
    },
    _VIBER: {
        "255": dict.fromkeys(("01", "03", "06", "07", "99"), "0.750"),
        "260": dict.fromkeys(("01", "02", "03", "06"), "0.420"),
    },
}

# Country calling code -> mobile country code, for pricing a recipient.
_ERROR_TEXT = {
    "INVREQUEST": "the request is empty or has an invalid format",
    "INVACTION": "action is not specified or not supported",
    "FORBIDDEN": "access denied",
    "INVRECIPIENT": "wrong recipient",
    "INVTEXT": "message text is missing or does not comply with the requirements",
    "INVBUTTON": "invalid button format",
    "INVIMAGEURL": "invalid url format",
    "INVROUTE": "message cannot be sent",
    "INVSOURCE": "unspecified or incorrect sender",
    "INVCHANNELS": "correct sending channels are not set",
    "INVSMSMESSAGE": "message for sms channel not specified",
    "INVVIBERMESSAGE": "message for viber channel not specified",
    "INVMSGID": "identifier not specified or not found",
    "INSUFFICIENTFUNDS": "insufficient funds",
}


class _ApiError(Exception):
    """A refusal the simulator answers with an error reply."""

    def __init__(self, code: str, detail: str = "", http_status: int = 400) -> None:
        super().__init__(code)
        self.code = code
        self.http_status = http_status
        self.description = f"{_ERROR_TEXT.get(code, code)}{': ' + detail if detail else ''}"


# ---------------------------------------------------------------------------------------
# Time formats


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _with_offset(moment: dt.datetime) -> str:
    """``2021-12-17 10:36:07 +0200``: reply and send dates."""
    return moment.astimezone(KYIV).strftime("%Y-%m-%d %H:%M:%S %z")


def _kyiv_local(moment: dt.datetime) -> str:
    """``2021-12-17 10:36:09``: status dates carry no offset on the live API."""
    return moment.astimezone(KYIV).strftime("%Y-%m-%d %H:%M:%S")


def _money(value: Decimal) -> str:
    return format(value.quantize(_MONEY, rounding=ROUND_HALF_UP), "f")


# ---------------------------------------------------------------------------------------
# Message ids and the status timeline

# Simulated seconds after a channel starts (divided by speed for real seconds).
_SMS_STEPS = ((1.0, "INPROGRESS"), (3.0, "SENT"))
_SMS_FINAL_AT = 6.0
_VIBER_STEPS = ((2.0, "SENT"),)
_VIBER_FINAL_AT = 5.0
_VIBER_VIEWED_AT = 15.0
_STOP_AT = 1.0
# Float arithmetic must not keep a status from appearing at exactly its moment.
_EPSILON = 1e-6

_ID_RE = re.compile(r"FAPI[0-9A-F]{32}")
_CHANNEL_CODES: dict[tuple[str, ...], int] = {
    (_SMS,): 1,
    (_VIBER,): 2,
    (_VIBER, _SMS): 3,
    (_SMS, _VIBER): 4,
}
_OUTCOME_CODES: dict[Outcome, int] = {
    Outcome.DELIVERED: 0,
    Outcome.UNDELIVERED: 1,
    Outcome.NO_VIBER: 2,
    Outcome.EXPIRED: 3,
    Outcome.STOPPED: 4,
}
# Field widths in bits, most significant first; 128 bits = 32 hex digits.
_ID_FIELDS = (
    ("ms", 44),
    ("channels", 3),
    ("outcome", 3),
    ("sms_ttl", 11),
    ("viber_ttl", 11),
    ("speed", 20),  # hundredths: 0.01 to 10485.75
    ("unique", 28),
    ("check", 8),
)
_UNIQUE_BITS = 28
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


def _checksum(bits120: int) -> int:
    return hashlib.blake2b(bits120.to_bytes(15, "big"), digest_size=1).digest()[0]


@dataclass(frozen=True)
class MessagePlan:
    """Everything that decides a message's statuses, as carried in its id.

    An id is ``FAPI`` and 32 hex digits: send time in milliseconds, channels, outcome,
    each channel's ttl, speed (in hundredths), 28 unique bits and an 8-bit checksum.
    """

    sent_at: dt.datetime
    channels: tuple[str, ...]
    outcome: Outcome
    #: Minutes per channel.
    ttl: Mapping[str, int]
    speed: float

    def encode(self, unique: int) -> str:
        """The message id for this plan, with ``unique`` (28 bits) making it one of a kind."""
        values = {
            "ms": (self.sent_at - _EPOCH) // dt.timedelta(milliseconds=1),
            "channels": _CHANNEL_CODES[self.channels],
            "outcome": _OUTCOME_CODES[self.outcome],
            "sms_ttl": self.ttl.get(_SMS, 0),
            "viber_ttl": self.ttl.get(_VIBER, 0),
            "speed": round(self.speed * 100),
            "unique": unique % (1 << _UNIQUE_BITS),
            "check": 0,
        }
        number = 0
        for name, width in _ID_FIELDS:
            number = (number << width) | values[name]
        number |= _checksum(number >> 8)
        return f"FAPI{number:032X}"

    @classmethod
    def decode(cls, message_id: object) -> MessagePlan | None:
        """The plan inside an id the sandbox issued, or ``None`` for any other value."""
        if not isinstance(message_id, str) or not _ID_RE.fullmatch(message_id):
            return None
        number = int(message_id[4:], 16)
        if _checksum(number >> 8) != number & 0xFF:
            return None
        values: dict[str, int] = {}
        for name, width in reversed(_ID_FIELDS):
            values[name] = number & ((1 << width) - 1)
            number >>= width
        channels = next((k for k, v in _CHANNEL_CODES.items() if v == values["channels"]), None)
        outcome = next((k for k, v in _OUTCOME_CODES.items() if v == values["outcome"]), None)
        if channels is None or outcome is None or values["speed"] == 0:
            return None
        ttl = {ch: values[f"{ch}_ttl"] for ch in channels}
        if any(not 1 <= minutes <= 1440 for minutes in ttl.values()):
            return None
        if any(values[f"{ch}_ttl"] for ch in _CHANNELS if ch not in channels):
            return None
        sent_at = _EPOCH + dt.timedelta(milliseconds=values["ms"])
        return cls(sent_at, channels, outcome, ttl, values["speed"] / 100)

    def timeline(self) -> dict[str, list[tuple[float, str]]]:
        """Each channel's statuses with the simulated second each one begins."""
        events: dict[str, list[tuple[float, str]]] = {}
        start = 0.0  # when the channel now trying began (a fallback starts on failure)
        delivered_at: float | None = None
        for channel in self.channels:
            steps = events[channel] = [(0.0, "ACCEPTD")]
            if self.outcome is Outcome.STOPPED:
                steps.append((_STOP_AT, "STOPED"))
                continue
            if delivered_at is not None:
                # An earlier channel got through: this one is not needed.
                steps.append((delivered_at, "REFUND"))
                continue
            progress, final_at = (
                (_SMS_STEPS, _SMS_FINAL_AT) if channel == _SMS else (_VIBER_STEPS, _VIBER_FINAL_AT)
            )
            if self.outcome is Outcome.EXPIRED:
                end = start + self.ttl[channel] * 60
                steps += [(start + at, status) for at, status in progress if start + at < end]
                steps.append((end, "EXPIRED"))
                start = end
                continue
            steps += [(start + at, status) for at, status in progress]
            fails = self.outcome is Outcome.UNDELIVERED or (
                self.outcome is Outcome.NO_VIBER and channel == _VIBER
            )
            if fails:
                steps.append((start + final_at, "UNDELIV"))
                start += final_at
                continue
            delivered_at = start + final_at
            steps.append((delivered_at, "DELIVRD"))
            if channel == _VIBER:
                steps.append((start + _VIBER_VIEWED_AT, "VIEWED"))
        return events

    def moment(self, simulated_seconds: float) -> dt.datetime:
        """The real time a simulated second after the send falls on."""
        return self.sent_at + dt.timedelta(seconds=simulated_seconds / self.speed)

    def status_at(self, at: dt.datetime) -> dict[str, tuple[str, dt.datetime]]:
        """Each channel's status and the time it was reached, as of ``at``."""
        elapsed = (at - self.sent_at).total_seconds() * self.speed + _EPSILON
        result: dict[str, tuple[str, dt.datetime]] = {}
        for channel, steps in self.timeline().items():
            began, status = steps[0]
            for step in steps:  # in time order
                if step[0] <= elapsed:
                    began, status = step
            result[channel] = (status, self.moment(began))
        return result


# ---------------------------------------------------------------------------------------
# Records


@dataclass(frozen=True, repr=False)
class RecordedRequest:
    """One request the simulator received. Its ``repr`` hides the API key."""

    #: The action, or ``None`` when the body did not name one.
    action: str | None
    #: The decoded request body (or the start of the raw text when it was not JSON).
    body: Any
    #: The HTTP status of the reply the simulator produced.
    http_status: int
    #: The JSON reply object sent (the simulator's answer, or an injected API error), or
    #: ``None`` when no JSON reply was produced (a refusal page, a dropped connection).
    reply: dict[str, Any] | None
    at: dt.datetime
    #: The injected fault that shaped this exchange, if any.
    fault: Fault | None = None
    #: Whether the simulator acted on the request.
    processed: bool = True

    def __repr__(self) -> str:
        body = redact_body(self.body) if isinstance(self.body, Mapping) else self.body
        fault = f", fault={self.fault.value}" if self.fault else ""
        return (
            f"RecordedRequest(action={self.action!r}, http_status={self.http_status}"
            f"{fault}, body={body!r})"
        )


@dataclass(frozen=True)
class SentMessage:
    """A message the simulator accepted."""

    message_id: str
    recipient: str
    channels: tuple[str, ...]
    #: The request's ``sms`` and ``viber`` blocks (``None`` for an unused channel).
    sms: Mapping[str, Any] | None
    viber: Mapping[str, Any] | None
    #: Total debited, and per channel.
    cost: Decimal
    costs: Mapping[str, Decimal]
    sent_at: dt.datetime
    outcome: Outcome
    #: The Viber label (``"promotion"`` / ``"transaction:1"``), if Viber was used.
    label: str | None = None


@dataclass(frozen=True)
class SimulatedReply:
    """What a transport should do with one request: the bytes of an HTTP reply, or a
    :attr:`fault` (TIMEOUT, CONNECTION_REFUSED, CONNECTION_RESET) meaning no reply."""

    http_status: int
    content: bytes
    content_type: str = "application/json"
    #: Extra headers (``Retry-After``).
    headers: Mapping[str, str] = field(default_factory=dict)
    #: The reply object the simulator produced, if it processed the request.
    reply: dict[str, Any] | None = None
    fault: Fault | None = None
    #: For a TIMEOUT: seconds an HTTP server should stay silent before closing.
    delay: float = 0.0
    action: str | None = None
    #: Whether an HTTP server should stream :attr:`content` in chunks without a
    #: ``Content-Length`` (HUGE_BODY), as a server generating a long page does.
    chunked: bool = False

    def as_raw_reply(self) -> RawReply:
        """The reply as a backend returns it (JSON decoded, or the start of the text)."""
        headers = {"content-type": self.content_type}
        headers.update({k.lower(): v for k, v in self.headers.items()})
        text = self.content.decode("utf-8", errors="replace")
        try:
            body = json.loads(text) if text.strip() else None
        except (ValueError, RecursionError):  # RecursionError: nested too deep to read
            body = None
        if body is None:
            return RawReply(self.http_status, None, text=text[:500], headers=headers)
        return RawReply(self.http_status, body, headers=headers)


_HTML_PAGES = {
    403: "403 Forbidden",
    429: "429 Too Many Requests",
    500: "500 Internal Server Error",
    502: "502 Bad Gateway",
    503: "503 Service Temporarily Unavailable",
}


def _nginx_page(status: int) -> bytes:
    title = _HTML_PAGES[status]
    return (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
        f"<center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n"
        "</body>\r\n</html>\r\n"
    ).encode()


_MAINTENANCE_PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>SMS-fly</title></head>\n"
    b"<body><h1>Technical works</h1><p>The service will be back shortly.</p></body></html>\n"
)


@dataclass
class _Injected:
    fault: Fault
    remaining: int
    action: str | None
    retry_after: float | str | None
    delay: float
    code: str = "INVREQUEST"
    http_status: int | None = None
    size: int = DEFAULT_HUGE_SIZE


@dataclass
class _Rule:
    match: Callable[[str], bool]
    outcome: Outcome


# ---------------------------------------------------------------------------------------
# Validation helpers


def _channels(value: object) -> tuple[str, ...]:
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(c, str) and c in _CHANNELS for c in value)
        or len(set(value)) != len(value)
    ):
        raise _ApiError("INVCHANNELS")
    return tuple(value)


def _ttl(block: Mapping[str, Any]) -> int:
    # Not required by the document's tables; the sandbox then uses the longest allowed.
    ttl = block.get("ttl", 1440)
    if isinstance(ttl, bool) or not isinstance(ttl, int) or not 1 <= ttl <= 1440:
        raise _ApiError("INVREQUEST", "ttl must be an integer from 1 to 1440")
    return ttl


def _https_url(value: object) -> bool:
    if not isinstance(value, str) or not value or any(c.isspace() for c in value):
        return False
    parts = urllib.parse.urlsplit(value)
    return parts.scheme == "https" and bool(parts.netloc)


def _valid_button(button: object) -> bool:
    if not isinstance(button, dict):
        return False
    caption = button.get("caption")
    return (
        isinstance(caption, str)
        and bool(caption.strip())
        and len(caption) <= 30
        and _web_url(button.get("url"))
    )


def _web_url(value: object) -> bool:
    if not isinstance(value, str) or any(c.isspace() for c in value):
        return False
    parts = urllib.parse.urlsplit(value)
    return parts.scheme in {"http", "https"} and bool(parts.netloc)


# Texts that look like a service message: a one-time code or an order notice.
_TRANSACTION_RE = re.compile(
    r"\b\d{4,8}\b|\b(code|код|kod|otp|pin|order|замовлення|заказ|пароль|password)\b",
    re.IGNORECASE,
)


def viber_label(text: str | None) -> str:
    """The label SMS-fly's template matching would give: ``transaction:1`` for codes and
    order notices (a 4–8 digit number or words such as "code", "order"), else
    ``promotion``."""
    return "transaction:1" if text and _TRANSACTION_RE.search(text) else "promotion"


# ---------------------------------------------------------------------------------------
# Option normalization


def _decimal_option(name: str, value: object) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, Decimal | int | float | str):
        raise TypeError(f"{name} must be a number, not {type(value).__name__}")
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"{name}: {value!r} is not a number") from None
    if not number.is_finite() or number < 0:
        raise ValueError(f"{name} must be a finite number >= 0")
    return number.quantize(_MONEY, rounding=ROUND_HALF_UP)


def _float_option(name: str, value: object, low: float, high: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise TypeError(f"{name} must be a number, not {type(value).__name__}")
    number = float(value)
    if not low <= number <= high:
        raise ValueError(f"{name} must be between {low} and {high}")
    return number


def _normalize(name: str, value: Any, current: Mapping[str, Any]) -> Any:
    if name == "api_key":
        if value is not None and (not isinstance(value, str) or not value):
            raise ValueError("api_key must be a non-empty string or None")
        return value
    if name in {"balance", "viber_balance"}:
        return _decimal_option(name, value)
    if name == "speed":
        return round(_float_option(name, value, 0.01, 10_000.0), 2)
    if name == "latency":
        return _float_option(name, value, 0.0, 60.0)
    if name == "rate_limit":
        return None if value is None else _float_option(name, value, 0.001)
    if name == "burst":
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError("burst must be an integer >= 1 or None")
        return value
    if name == "test_numbers":
        return bool(value)
    if name == "sources":
        sources = dict(current["sources"])
        for channel, names in _channel_map(name, value).items():
            if isinstance(names, str) or not all(isinstance(n, str) for n in names):
                raise TypeError(f"sources[{channel!r}] must be a list of sender names")
            sources[channel] = tuple(names)
        return sources
    # prices
    prices = dict(current["prices"])
    for channel, table in _channel_map(name, value).items():
        prices[channel] = {
            str(mcc): {str(mnc): _decimal_option("price", p) for mnc, p in by_mnc.items()}
            for mcc, by_mnc in table.items()
        }
    return prices


def _channel_map(name: str, value: object) -> Mapping[str, Any]:
    if not isinstance(value, Mapping) or not set(value) <= set(_CHANNELS):
        raise ValueError(f"{name} must map 'sms' and/or 'viber' to values")
    return value


def _defaults() -> dict[str, Any]:
    return {
        "api_key": None,
        "balance": Decimal("1000.000"),
        "viber_balance": Decimal("500.000"),
        "speed": 1.0,
        "latency": 0.0,
        "rate_limit": None,
        "burst": None,
        "sources": dict(_DEFAULT_SOURCES),
        "prices": {
            channel: {
                mcc: {mnc: Decimal(p) for mnc, p in by_mnc.items()}
                for mcc, by_mnc in table.items()
            }
            for channel, table in _DEFAULT_PRICES.items()
        },
        "test_numbers": True,
    }


_OPTION_NAMES = frozenset(_defaults())
_NOT_JSON = object()


# ---------------------------------------------------------------------------------------
# The simulator


class Simulator:
    """A thread-safe simulation of SMS-fly's API: :meth:`handle` answers one request.

    ``clock`` is a callable returning the current aware datetime (default: real time);
    :meth:`freeze` and :meth:`advance` control time in tests. Other keyword arguments are
    the options listed in this module's documentation.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], dt.datetime] | None = None,
        **options: Unpack[SandboxOptions],
    ) -> None:
        self._lock = threading.RLock()
        self._base_clock = clock or _utcnow
        self._config = _defaults()
        self._rules: list[_Rule] = []
        self._faults: collections.deque[_Injected] = collections.deque()
        self._requests: collections.deque[RecordedRequest] = collections.deque(maxlen=MAX_RECORDS)
        self._messages: collections.deque[SentMessage] = collections.deque(maxlen=MAX_RECORDS)
        # Ids are unique within this simulator by this counter, across processes by the
        # random start and the millisecond in the id.
        self._unique = itertools.count(secrets.randbits(_UNIQUE_BITS))
        self._refund_seq = itertools.count()
        self._refunds: list[tuple[dt.datetime, int, str, Decimal]] = []
        self._balance: Decimal = self._config["balance"]
        self._viber_balance: Decimal = self._config["viber_balance"]
        self._frozen: dt.datetime | None = None
        self._offset = dt.timedelta()
        self._tokens = 0.0
        self._tokens_at = time.monotonic()
        self.configure(**options)
        self._refill_bucket()

    # -- configuration -------------------------------------------------------------------

    def configure(self, **options: Unpack[SandboxOptions]) -> None:
        """Set options; each becomes what :meth:`reset` returns to.

        An option set to the value it already has changes nothing, so building many
        backends from the same settings never resets a balance that has been spent.
        """
        unknown = sorted(set(options) - _OPTION_NAMES)
        if unknown:
            raise TypeError(f"unexpected sandbox option(s): {', '.join(unknown)}")
        with self._lock:
            for name, value in options.items():
                normalized = _normalize(name, value, self._config)
                if normalized == self._config[name]:
                    continue
                self._config[name] = normalized
                if name == "balance":
                    self._balance = normalized
                elif name == "viber_balance":
                    self._viber_balance = normalized
                elif name in {"rate_limit", "burst"}:
                    self._refill_bucket()

    @property
    def options(self) -> dict[str, Any]:
        """The configured options (what :meth:`reset` restores)."""
        with self._lock:
            return dict(self._config)

    @property
    def balance(self) -> Decimal:
        """The SMS balance (what GETBALANCE reports)."""
        with self._lock:
            self._settle_refunds(self.now())
            return self._balance

    @balance.setter
    def balance(self, value: Decimal | str | int | float) -> None:
        with self._lock:
            self._balance = _decimal_option("balance", value)

    @property
    def viber_balance(self) -> Decimal:
        """The Viber balance."""
        with self._lock:
            self._settle_refunds(self.now())
            return self._viber_balance

    @viber_balance.setter
    def viber_balance(self, value: Decimal | str | int | float) -> None:
        with self._lock:
            self._viber_balance = _decimal_option("viber_balance", value)

    @property
    def speed(self) -> float:
        """How many times faster than real time statuses move (for messages sent from now)."""
        return float(self._config["speed"])

    @property
    def latency(self) -> float:
        """Seconds every request takes."""
        return float(self._config["latency"])

    def reset(self) -> None:
        """Back to the configured state: balances, no rules, faults or records, real time."""
        with self._lock:
            self._balance = self._config["balance"]
            self._viber_balance = self._config["viber_balance"]
            self._rules.clear()
            self._faults.clear()
            self._requests.clear()
            self._messages.clear()
            self._refunds.clear()
            self._frozen = None
            self._offset = dt.timedelta()
            self._refill_bucket()

    # -- time ----------------------------------------------------------------------------

    def now(self) -> dt.datetime:
        """The simulator's current time (aware)."""
        with self._lock:
            base = self._frozen if self._frozen is not None else self._base_clock()
            return base + self._offset

    def freeze(self, at: dt.datetime | None = None) -> dt.datetime:
        """Stop the clock at ``at`` (default: now) until :meth:`advance` moves it."""
        if at is not None and at.tzinfo is None:
            raise ValueError("freeze() needs an aware datetime")
        with self._lock:
            self._frozen = at if at is not None else self.now()
            self._offset = dt.timedelta()
            return self._frozen

    def unfreeze(self) -> None:
        """Let the clock run again from the constructor's clock."""
        with self._lock:
            self._frozen = None
            self._offset = dt.timedelta()

    def advance(self, seconds: float) -> dt.datetime:
        """Move the clock forward (frozen or not) by real ``seconds``; returns the new now."""
        if seconds < 0:
            raise ValueError("time only moves forward")
        with self._lock:
            self._offset += dt.timedelta(seconds=seconds)
            return self.now()

    # -- outcomes ------------------------------------------------------------------------

    def add_rule(
        self, pattern: str | re.Pattern[str] | Callable[[str], bool], outcome: Outcome | str
    ) -> None:
        """Give recipients matching ``pattern`` (a regex searched in the number, or a
        callable taking it) the ``outcome``. Rules apply in the order added, before the
        built-in test numbers."""
        outcome = Outcome(outcome)
        if isinstance(pattern, str | re.Pattern):
            regex = re.compile(pattern)

            def search(recipient: str) -> bool:
                return regex.search(recipient) is not None

            match: Callable[[str], bool] = search
        else:
            match = pattern
        with self._lock:
            self._rules.append(_Rule(match, outcome))

    def clear_rules(self) -> None:
        """Forget the rules added with :meth:`add_rule`."""
        with self._lock:
            self._rules.clear()

    def outcome_for(self, recipient: str) -> Outcome:
        """What would become of a message to ``recipient``."""
        with self._lock:
            for rule in self._rules:
                if rule.match(recipient):
                    return rule.outcome
            if self._config["test_numbers"] and _UA_NUMBER.fullmatch(recipient):
                return _TEST_SUFFIXES.get(recipient[-4:], Outcome.DELIVERED)
            return Outcome.DELIVERED

    # -- faults --------------------------------------------------------------------------

    def inject(
        self,
        fault: Fault | str,
        *,
        times: int = 1,
        action: str | None = None,
        retry_after: float | str | None = None,
        delay: float | None = None,
        code: str | None = None,
        http_status: int | None = None,
        size: int | None = None,
    ) -> None:
        """Make the next ``times`` requests (of ``action``, or any) fail with ``fault``.

        Faults are used in the order injected. ``retry_after`` adds a ``Retry-After``
        header (RATE_LIMITED, SERVICE_UNAVAILABLE): seconds, or a text sent as it is (an
        HTTP date, or something unreadable). ``delay`` is how long an HTTP server stays
        silent on a TIMEOUT (default :data:`DEFAULT_TIMEOUT_DELAY`). ``code`` and
        ``http_status`` shape an API_ERROR (default ``INVREQUEST``, with that code's
        usual status); ``size`` is the length of a HUGE_BODY reply in bytes.
        """
        fault = Fault(fault)
        if times < 1:
            raise ValueError("times must be >= 1")
        if isinstance(retry_after, str):
            # Sent as a header: one printable line, or it would forge other headers.
            if not retry_after.strip() or not retry_after.isprintable():
                raise ValueError("retry_after text must be one printable line")
        elif retry_after is not None and retry_after < 0:
            raise ValueError("retry_after must be >= 0")
        if (code is not None or http_status is not None) and fault is not Fault.API_ERROR:
            raise ValueError("code and http_status apply to Fault.API_ERROR only")
        if code is not None and (not isinstance(code, str) or not code.strip()):
            raise ValueError("code must be a non-empty string")
        if http_status is not None and (
            isinstance(http_status, bool)
            or not isinstance(http_status, int)
            or not 100 <= http_status <= 599
        ):
            raise ValueError("http_status must be an HTTP status from 100 to 599")
        if size is not None:
            if fault is not Fault.HUGE_BODY:
                raise ValueError("size applies to Fault.HUGE_BODY only")
            if isinstance(size, bool) or not isinstance(size, int) or size < 1:
                raise ValueError("size must be a number of bytes >= 1")
        injected = _Injected(
            fault=fault,
            remaining=times,
            action=action.upper() if action else None,
            retry_after=retry_after,
            delay=DEFAULT_TIMEOUT_DELAY if delay is None else max(0.0, delay),
            code=code or "INVREQUEST",
            http_status=http_status,
            size=size or DEFAULT_HUGE_SIZE,
        )
        with self._lock:
            self._faults.append(injected)

    def clear_faults(self) -> None:
        """Drop every fault not yet used."""
        with self._lock:
            self._faults.clear()

    @property
    def pending_faults(self) -> list[tuple[Fault, int, str | None]]:
        """Faults waiting: ``(fault, times left, action)``."""
        with self._lock:
            return [(f.fault, f.remaining, f.action) for f in self._faults]

    def _take_fault(self, action: str | None) -> _Injected | None:
        for injected in self._faults:
            if injected.action is None or injected.action == action:
                injected.remaining -= 1
                if injected.remaining == 0:
                    self._faults.remove(injected)
                return injected
        return None

    def _refill_bucket(self) -> None:
        self._tokens = float(self._bucket_size())
        self._tokens_at = time.monotonic()

    def _bucket_size(self) -> int:
        burst = self._config["burst"]
        rate = self._config["rate_limit"]
        return int(burst if burst is not None else max(1, math.ceil(rate or 1)))

    def _take_token(self) -> float | None:
        """``None`` if the request may go on, else the seconds until it could."""
        rate: float | None = self._config["rate_limit"]
        if rate is None:
            return None
        moment = time.monotonic()
        self._tokens = min(
            float(self._bucket_size()), self._tokens + (moment - self._tokens_at) * rate
        )
        self._tokens_at = moment
        if self._tokens >= 1:
            self._tokens -= 1
            return None
        return (1 - self._tokens) / rate

    # -- records -------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received, oldest first."""
        with self._lock:
            return list(self._requests)

    def requests_for(self, action: str) -> list[RecordedRequest]:
        """The requests of one action."""
        with self._lock:
            return [r for r in self._requests if r.action == action]

    @property
    def messages(self) -> list[SentMessage]:
        """Every message accepted, oldest first."""
        with self._lock:
            return list(self._messages)

    def status_of(self, message_id: str) -> dict[str, str]:
        """Each channel's status now, e.g. ``{"viber": "DELIVRD", "sms": "REFUND"}``."""
        plan = MessagePlan.decode(message_id)
        if plan is None:
            raise ValueError(f"{message_id!r} is not a sandbox message id")
        return {ch: status for ch, (status, _) in plan.status_at(self.now()).items()}

    # -- the API -------------------------------------------------------------------------

    def handle(self, body: Mapping[str, Any] | bytes | str | None) -> tuple[int, dict[str, Any]]:
        """Answer one request body (a dict, or the raw JSON) as SMS-fly would, with no
        faults or latency: ``(http_status, reply)``."""
        payload, text = _decode(body)
        with self._lock:
            return self._process(payload, text, None)

    def respond(self, body: Mapping[str, Any] | bytes | str | None) -> SimulatedReply:
        """One request the way a transport sees it: latency, rate limit and injected
        faults applied around :meth:`handle`."""
        payload, text = _decode(body)
        action = _action_of(payload)
        latency = self.latency
        if latency:
            time.sleep(latency)  # outside the lock: requests overlap like on a network
        with self._lock:
            wait = self._take_token()
            if wait is not None:
                fault = Fault.RATE_LIMITED
                self._record(action, (payload, text), 429, None, fault=fault, processed=False)
                return _refusal(fault, action, retry_after=wait)
            injected = self._take_fault(action)
            if injected is not None and not injected.fault.processed:
                refused = _refusal(
                    injected.fault,
                    action,
                    retry_after=injected.retry_after,
                    code=injected.code,
                    http_status=injected.http_status,
                    date=_with_offset(self.now()),
                )
                self._record(
                    action,
                    (payload, text),
                    refused.http_status,
                    refused.reply,
                    fault=injected.fault,
                    processed=False,
                )
                return refused
            status, reply = self._process(payload, text, injected.fault if injected else None)
        if injected is None:
            return SimulatedReply(status, _json_bytes(reply), reply=reply, action=action)
        return _spoiled(injected, action, reply=reply, status=status)

    def _process(
        self, payload: Any, text: str | None, fault: Fault | None
    ) -> tuple[int, dict[str, Any]]:
        now = self.now()
        self._settle_refunds(now)
        action = _action_of(payload)
        try:
            data = self._check_envelope(payload)
            handler = _ACTIONS[action or ""]
            reply: dict[str, Any] = {
                "success": 1,
                "date": _with_offset(now),
                "data": handler(self, data, now),
            }
            status = 200
        except _ApiError as error:
            status = error.http_status
            reply = {
                "success": 0,
                "error": {
                    "code": error.code,
                    "date": _with_offset(now),
                    "description": error.description,
                },
            }
        self._record(action, (payload, text), status, reply, fault=fault, at=now)
        return status, json.loads(json.dumps(reply))  # a copy the caller may change

    def _record(
        self,
        action: str | None,
        raw: tuple[Any, str | None],
        status: int,
        reply: dict[str, Any] | None,
        *,
        fault: Fault | None,
        processed: bool = True,
        at: dt.datetime | None = None,
    ) -> None:
        payload, text = raw
        body = payload if payload is not _NOT_JSON else text
        self._requests.append(
            RecordedRequest(action, body, status, reply, at or self.now(), fault, processed)
        )

    def _check_envelope(self, payload: Any) -> dict[str, Any]:
        if payload is _NOT_JSON:
            raise _ApiError("INVREQUEST", "the body is not JSON", 422)
        if not isinstance(payload, dict):
            raise _ApiError("INVREQUEST", "the body is not an object")
        auth = payload.get("auth")
        if not isinstance(auth, dict):
            raise _ApiError("INVREQUEST", "auth is missing")
        key = auth.get("key")
        expected = self._config["api_key"]
        if (
            not isinstance(key, str)
            or not key.strip()
            or (expected is not None and not hmac.compare_digest(key, expected))
        ):
            raise _ApiError("FORBIDDEN", "", 403)
        action = payload.get("action")
        if not isinstance(action, str) or not action:
            raise _ApiError("INVACTION", "action is missing")
        if action not in _ACTIONS:
            raise _ApiError("INVACTION", f"unknown action {action[:40]!r}")
        data = payload.get("data")
        if data == []:
            data = {}  # what PHP clients send for an empty object
        if not isinstance(data, dict):
            raise _ApiError("INVREQUEST", "data is missing")
        return data

    def _settle_refunds(self, now: dt.datetime) -> None:
        while self._refunds and self._refunds[0][0] <= now:
            _, _, channel, amount = heapq.heappop(self._refunds)
            if channel == _SMS:
                self._balance += amount
            else:
                self._viber_balance += amount

    # -- actions -------------------------------------------------------------------------

    def _get_balance(self, data: dict[str, Any], now: dt.datetime) -> dict[str, Any]:
        return {"balance": _money(self._balance)}

    def _get_balance_ext(self, data: dict[str, Any], now: dt.datetime) -> dict[str, Any]:
        return {"balance": {_SMS: _money(self._balance), _VIBER: _money(self._viber_balance)}}

    def _get_sources(self, data: dict[str, Any], now: dt.datetime) -> dict[str, Any]:
        sources = self._config["sources"]
        return {ch: list(sources.get(ch, ())) for ch in _channels(data.get("channels"))}

    def _price_table(self, data: dict[str, Any], with_mnc: bool) -> dict[str, Any]:
        channels = _channels(data.get("channels"))
        mcc = _code(data.get("mcc", "255"), "mcc", 3)
        mnc = _code(data.get("mnc"), "mnc", 2) if with_mnc else None
        table: dict[str, Any] = {}
        for channel in channels:
            by_mnc = self._config["prices"].get(channel, {}).get(mcc)
            rows = {
                code: _money(price)
                for code, price in (by_mnc or {}).items()
                if mnc is None or code == mnc
            }
            table[channel] = {mcc: rows} if rows else {}
        return table

    def _get_price_list(self, data: dict[str, Any], now: dt.datetime) -> dict[str, Any]:
        return {"pricelist": self._price_table(data, with_mnc=False)}

    def _get_price(self, data: dict[str, Any], now: dt.datetime) -> dict[str, Any]:
        return {"price": self._price_table(data, with_mnc=True)}

    def _send_message(self, data: dict[str, Any], now: dt.datetime) -> dict[str, Any]:
        recipient = data.get("recipient")
        if not isinstance(recipient, str) or not re.fullmatch(r"\d{10,15}", recipient):
            raise _ApiError("INVRECIPIENT", "expected 10 to 15 digits")
        channels = _channels(data.get("channels"))
        blocks: dict[str, dict[str, Any]] = {}
        ttl: dict[str, int] = {}
        for channel in channels:
            block = data.get(channel)
            if not isinstance(block, dict):
                raise _ApiError("INVSMSMESSAGE" if channel == _SMS else "INVVIBERMESSAGE")
            check = self._check_sms if channel == _SMS else self._check_viber
            ttl[channel] = check(block)
            blocks[channel] = block
        outcome = self.outcome_for(recipient)
        if outcome is Outcome.REJECTED:
            raise _ApiError("INVRECIPIENT", "the recipient refuses messages (sandbox rule)")
        costs = {ch: self._cost(ch, recipient, blocks[ch]) for ch in channels}
        sms_cost = costs.get(_SMS, Decimal(0))
        viber_cost = costs.get(_VIBER, Decimal(0))
        if sms_cost > self._balance or viber_cost > self._viber_balance:
            raise _ApiError("INSUFFICIENTFUNDS")
        self._balance -= sms_cost
        self._viber_balance -= viber_cost

        plan = MessagePlan(now, channels, outcome, ttl, self.speed)
        message_id = plan.encode(next(self._unique))
        plan = MessagePlan.decode(message_id) or plan  # the id's millisecond precision
        for channel, steps in plan.timeline().items():
            if steps[-1][1] == "REFUND":
                refund_at = plan.moment(steps[-1][0])
                heapq.heappush(
                    self._refunds, (refund_at, next(self._refund_seq), channel, costs[channel])
                )

        label = None
        reply: dict[str, Any] = {"messageID": message_id}
        for channel in channels:
            entry: dict[str, Any] = {"status": "ACCEPTD", "date": _with_offset(now)}
            if channel == _VIBER:
                label = entry["label"] = viber_label(blocks[_VIBER].get("text"))
            entry["cost"] = _money(costs[channel])
            reply[channel] = entry
        self._messages.append(
            SentMessage(
                message_id=message_id,
                recipient=recipient,
                channels=channels,
                sms=blocks.get(_SMS),
                viber=blocks.get(_VIBER),
                cost=sms_cost + viber_cost,
                costs=costs,
                sent_at=now,
                outcome=outcome,
                label=label,
            )
        )
        return reply

    def _check_sms(self, block: dict[str, Any]) -> int:
        text = block.get("text")
        if not isinstance(text, str) or not text.strip():
            raise _ApiError("INVTEXT", "sms text is empty")
        self._check_source(_SMS, block)
        flash = block.get("flash", 0)
        if flash not in (0, 1) or isinstance(flash, float):
            raise _ApiError("INVREQUEST", "flash must be 0 or 1")
        return _ttl(block)

    def _check_viber(self, block: dict[str, Any]) -> int:
        text, button, image = block.get("text"), block.get("button"), block.get("image")
        if text is not None and (not isinstance(text, str) or not 1 <= len(text) <= 1000):
            raise _ApiError("INVTEXT", "viber text must have 1 to 1000 characters")
        if button is not None and not _valid_button(button):
            raise _ApiError("INVBUTTON", "a button needs a caption (1-30) and a url")
        if image is not None and not _https_url(image):
            raise _ApiError("INVIMAGEURL", "image must be an https url")
        shape = (text is not None, button is not None, image is not None)
        if shape not in _VIBER_SHAPES:
            raise _ApiError("INVTEXT", "allowed: text, image, text+button, text+button+image")
        self._check_source(_VIBER, block)
        return _ttl(block)

    def _check_source(self, channel: str, block: dict[str, Any]) -> None:
        source = block.get("source")
        if not isinstance(source, str) or source not in self._config["sources"].get(channel, ()):
            raise _ApiError("INVSOURCE", f"not a {channel} sender name of this account")

    def _cost(self, channel: str, recipient: str, block: dict[str, Any]) -> Decimal:
        mcc, mnc = network_of(recipient)
        by_mnc = self._config["prices"].get(channel, {}).get(mcc) if mcc else None
        if not by_mnc:
            raise _ApiError("INVROUTE", f"no {channel} route to this country")
        # Networks the number does not reveal are charged at the dearest rate.
        price: Decimal = by_mnc.get(mnc) or max(by_mnc.values())
        if channel == _SMS:
            price *= count_segments(block["text"]).parts
        return price

    def _get_message_status(self, data: dict[str, Any], now: dt.datetime) -> dict[str, Any]:
        message_id = data.get("messageID")
        plan = MessagePlan.decode(message_id)
        if plan is None:
            raise _ApiError("INVMSGID")
        reply: dict[str, Any] = {"messageID": message_id}
        for channel, (status, since) in plan.status_at(now).items():
            reply[channel] = {"status": status, "date": _kyiv_local(since)}
        return reply

    def __repr__(self) -> str:
        key = "checked" if self._config["api_key"] else "any"
        return (
            f"<Simulator speed={self.speed:g} balance={self._balance} "
            f"viber_balance={self._viber_balance} key={key}>"
        )


_VIBER_SHAPES = frozenset(
    {(True, False, False), (False, False, True), (True, True, False), (True, True, True)}
)

_ACTIONS: dict[str, Callable[[Simulator, dict[str, Any], dt.datetime], dict[str, Any]]] = {
    "GETBALANCE": Simulator._get_balance,
    "GETBALANCEEXT": Simulator._get_balance_ext,
    "GETSOURCES": Simulator._get_sources,
    # The document's table of actions spells it without the S.
    "GETSOURCE": Simulator._get_sources,
    "GETPRICELIST": Simulator._get_price_list,
    "GETPRICE": Simulator._get_price,
    "SENDMESSAGE": Simulator._send_message,
    "GETMESSAGESTATUS": Simulator._get_message_status,
}

_FAULT_STATUS = {
    Fault.FORBIDDEN: 403,
    Fault.RATE_LIMITED: 429,
    Fault.SERVER_ERROR: 500,
    Fault.BAD_GATEWAY: 502,
    Fault.SERVICE_UNAVAILABLE: 503,
}


def _code(value: object, name: str, length: int) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value).zfill(length)
    if not isinstance(value, str) or not re.fullmatch(rf"\d{{{length},3}}", value):
        raise _ApiError("INVREQUEST", f"{name} must be a string of digits")
    return value


def _decode(body: Mapping[str, Any] | bytes | str | None) -> tuple[Any, str | None]:
    """The JSON value of a body (or ``_NOT_JSON``) and, for a raw body, its text."""
    if body is None:
        return _NOT_JSON, None
    if isinstance(body, Mapping):
        # Through JSON and back, as on the wire: the record cannot change under the
        # caller's feet, and a body HTTP could not carry fails here too.
        return json.loads(json.dumps(body)), None
    if isinstance(body, bytes):
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return _NOT_JSON, body[:500].decode("utf-8", errors="replace")
    else:
        text = body
    if not text.strip():
        return _NOT_JSON, text
    try:
        return json.loads(text), text
    except ValueError:
        return _NOT_JSON, text[:500]


def _action_of(payload: Any) -> str | None:
    action = payload.get("action") if isinstance(payload, dict) else None
    return action if isinstance(action, str) else None


def _json_bytes(reply: Mapping[str, Any]) -> bytes:
    return json.dumps(reply, ensure_ascii=False).encode("utf-8")


def _retry_after_header(value: float | str) -> str:
    if isinstance(value, str):
        return value  # an HTTP date or an unreadable text, sent as given
    return str(max(1, math.ceil(value)))


def _refusal(
    fault: Fault,
    action: str | None,
    *,
    retry_after: float | str | None = None,
    code: str = "INVREQUEST",
    http_status: int | None = None,
    date: str = "",
) -> SimulatedReply:
    """How a fault that refuses a request before it is processed looks to a transport."""
    if fault in {Fault.API_ERROR, Fault.UNPROCESSABLE, Fault.DEEP_JSON}:
        detail = ""
        if fault is Fault.UNPROCESSABLE:
            code, status, detail = "INVREQUEST", 422, "the request body could not be read"
        elif fault is Fault.DEEP_JSON:
            code, status = "INVREQUEST", 400
        else:
            status = http_status or (403 if code == "FORBIDDEN" else 400)
        description = _ERROR_TEXT.get(code, code) + (f": {detail}" if detail else "")
        reply: dict[str, Any] = {
            "success": 0,
            "error": {"code": code, "date": date, "description": description},
        }
        content = _json_bytes(reply)
        if fault is Fault.DEEP_JSON:
            # Written out rather than encoded: the point is a depth the encoder could
            # refuse. The recorded reply leaves the nested value out.
            depth = DEEP_JSON_DEPTH
            content = content[:-1] + b', "trace": ' + b"[" * depth + b"]" * depth + b"}"
        return SimulatedReply(status, content, reply=reply, fault=fault, action=action)
    page_status = _FAULT_STATUS.get(fault)
    if page_status is None:  # CONNECTION_REFUSED: no reply at all
        return SimulatedReply(0, b"", fault=fault, action=action)
    headers = {}
    if retry_after is not None:
        headers["Retry-After"] = _retry_after_header(retry_after)
    page = _nginx_page(page_status)
    return SimulatedReply(page_status, page, "text/html", headers, fault=fault, action=action)


def _spoiled(
    injected: _Injected, action: str | None, *, reply: dict[str, Any], status: int
) -> SimulatedReply:
    """How a fault that strikes after the request was processed looks to a transport.

    ``reply``/``status``: the simulator's own answer, which the fault then spoils.
    """
    fault = injected.fault
    content = b""
    content_type = "application/json"
    if fault is Fault.BROKEN_JSON:
        full = _json_bytes(reply)
        content = full[: max(1, len(full) // 2)]
    elif fault is Fault.HTML_ERROR:
        content, content_type = _MAINTENANCE_PAGE, "text/html; charset=utf-8"
    elif fault in {Fault.MISSING_FIELDS, Fault.WRONG_TYPES, Fault.UNKNOWN_STATUS}:
        content = _json_bytes(_spoil_data(fault, reply))
    elif fault is Fault.HUGE_BODY:
        content = _padded(reply, injected.size)
    if fault in {Fault.BROKEN_JSON, Fault.HTML_ERROR, Fault.EMPTY_BODY}:
        # The server did its work, then the reply was spoiled on the way out.
        status = 200
    return SimulatedReply(
        status,
        content,
        content_type,
        reply=reply,
        fault=fault,
        delay=injected.delay,
        action=action,
        chunked=fault is Fault.HUGE_BODY,
    )


def _spoil_data(fault: Fault, reply: dict[str, Any]) -> dict[str, Any]:
    """A successful reply with its ``data`` emptied, mistyped or given unknown statuses.

    Error replies are left alone: the fault is about answers that claim success.
    """
    data = reply.get("data")
    if reply.get("success") != 1 or not isinstance(data, dict):
        return reply
    spoiled: dict[str, Any]
    if fault is Fault.MISSING_FIELDS:
        spoiled = {}
    elif fault is Fault.WRONG_TYPES:
        spoiled = {key: _wrapped(value) for key, value in data.items()}
    else:
        spoiled = {
            key: {**value, "status": UNLISTED_STATUS}
            if isinstance(value, dict) and "status" in value
            else value
            for key, value in data.items()
        }
    return {**reply, "data": spoiled}


def _wrapped(value: Any) -> Any:
    """Every scalar inside ``value`` put in a one-element list: each field mistyped."""
    if isinstance(value, dict):
        return {key: _wrapped(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_wrapped(item) for item in value]
    return [value]


def _padded(reply: dict[str, Any], size: int) -> bytes:
    """``reply`` as JSON of ``size`` bytes (at least its own length): valid, but huge."""
    base = _json_bytes({**reply, "padding": ""})
    return _json_bytes({**reply, "padding": "x" * max(0, size - len(base))})


class _DefaultHolder:
    lock = threading.Lock()
    simulator: Simulator | None = None


def get_simulator() -> Simulator:
    """The process-wide simulator every :class:`SandboxBackend` without its own uses.

    Tests reach the sandbox's state through it: ``get_simulator().messages``,
    ``.inject(...)``, ``.freeze()``; call ``.reset()`` between tests.
    """
    with _DefaultHolder.lock:
        if _DefaultHolder.simulator is None:
            _DefaultHolder.simulator = Simulator()
        return _DefaultHolder.simulator


class SandboxBackend(BaseBackend):
    """A backend that answers from a :class:`Simulator` in this process; nothing is sent.

    Without ``simulator`` it uses the process-wide one from :func:`get_simulator`, so
    every client in the process sees the same balance and messages. Other keyword
    arguments are simulator options (see this module's documentation) applied to it.
    """

    requires_api_key = False
    reaches_phones = False

    def __init__(
        self,
        *,
        simulator: Simulator | None = None,
        api_url: str = "",
        timeout: tuple[float, float] = (5.0, 30.0),
        user_agent: str = "",
        max_retries: int = 3,
        retry_backoff: float = 0.5,
        max_retry_wait: float = 30.0,
        **options: Unpack[SandboxOptions],
    ) -> None:
        super().__init__(
            api_url=api_url,
            timeout=timeout,
            user_agent=user_agent,
            max_retries=max_retries,
            retry_backoff=retry_backoff,
            max_retry_wait=max_retry_wait,
        )
        #: The simulator that answers this backend's requests.
        if simulator is None:
            # The shared simulator takes the whole configuration each time, so options
            # removed from the settings fall back to their defaults instead of lingering.
            simulator = get_simulator()
            full = _defaults()
            given: Mapping[str, Any] = options
            for name, value in given.items():
                is_table = name in {"sources", "prices"} and isinstance(value, Mapping)
                full[name] = {**full[name], **value} if is_table else value
            options = full  # type: ignore[assignment]
        self.simulator = simulator
        self.simulator.configure(**options)

    def send(self, body: Mapping[str, Any]) -> RawReply:
        """Hand the body to the simulator; raise as a transport would for no-reply faults."""
        reply = self.simulator.respond(body)
        where = f"sandbox: {reply.action or 'request'}"
        if reply.fault is Fault.CONNECTION_REFUSED:
            raise SmsFlyConnectionError(f"{where}: connection refused", action=reply.action)
        if reply.fault is Fault.TIMEOUT:
            raise SmsFlyTimeout(f"{where}: no reply in time", action=reply.action)
        if reply.fault is Fault.CONNECTION_RESET:
            raise SmsFlyTransportError(
                f"{where}: connection reset before the reply",
                verdict=Verdict.UNKNOWN,
                action=reply.action,
            )
        return reply.as_raw_reply()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} in-process {self.simulator!r}>"
