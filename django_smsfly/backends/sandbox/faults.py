"""Failures the sandbox can be told to produce: the faults, the queue of faults injected
for coming requests, and the token bucket that refuses bursts with HTTP 429.

How each fault then looks to a transport is decided in
:mod:`~django_smsfly.backends.sandbox.replies`.
"""

from __future__ import annotations

import collections
import enum
import math
import time
from dataclasses import dataclass

__all__ = [
    "DEEP_JSON_DEPTH",
    "DEFAULT_HUGE_SIZE",
    "DEFAULT_TIMEOUT_DELAY",
    "UNLISTED_STATUS",
    "Fault",
    "FaultQueue",
    "InjectedFault",
    "TokenBucket",
]

#: Seconds a TIMEOUT fault keeps an HTTP client waiting: past the default 30 s read timeout.
DEFAULT_TIMEOUT_DELAY = 35.0

#: Bytes of a HUGE_BODY reply: past the HTTP backend's default 4 MiB cap.
DEFAULT_HUGE_SIZE = 6 * 1024 * 1024

#: How deep a DEEP_JSON reply nests (Python's default recursion limit is 1000).
DEEP_JSON_DEPTH = 600

#: The status an UNKNOWN_STATUS fault reports: one the API document does not list.
UNLISTED_STATUS = "RESCHEDULED"


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
    #: Processed; every channel's ``status`` is :data:`.UNLISTED_STATUS`, a value the
    #: document does not list (replies without statuses are unchanged).
    UNKNOWN_STATUS = "unknown_status"
    #: HTTP 400 with the API's JSON error ``INVREQUEST`` whose body also holds a value
    #: nested :data:`.DEEP_JSON_DEPTH` levels deep: more than any reply needs, and too
    #: deep for code that walks it recursively. Not processed.
    DEEP_JSON = "deep_json"
    #: Processed; HTTP 200 with the reply padded to ``size`` bytes (default
    #: :data:`.DEFAULT_HUGE_SIZE`). Over HTTP it is streamed in chunks without a
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


@dataclass
class InjectedFault:
    """A fault staged for the next ``remaining`` requests (of ``action``, or any)."""

    fault: Fault
    remaining: int
    action: str | None
    retry_after: float | str | None
    delay: float
    code: str = "INVREQUEST"
    http_status: int | None = None
    size: int = DEFAULT_HUGE_SIZE

    @classmethod
    def create(
        cls,
        fault: Fault | str,
        *,
        times: int,
        action: str | None,
        retry_after: float | str | None,
        delay: float | None,
        code: str | None,
        http_status: int | None,
        size: int | None,
    ) -> InjectedFault:
        """Check the arguments of :meth:`Simulator.inject` and stage what they ask for."""
        fault = Fault(fault)
        if times < 1:
            raise ValueError("times must be >= 1")
        _check_retry_after(retry_after)
        _check_api_error(fault, code, http_status)
        _check_size(fault, size)
        return cls(
            fault=fault,
            remaining=times,
            action=action.upper() if action else None,
            retry_after=retry_after,
            delay=DEFAULT_TIMEOUT_DELAY if delay is None else max(0.0, delay),
            code=code or "INVREQUEST",
            http_status=http_status,
            size=size or DEFAULT_HUGE_SIZE,
        )


def _check_retry_after(retry_after: float | str | None) -> None:
    if isinstance(retry_after, str):
        # Sent as a header: one printable line, or it would forge other headers.
        if not retry_after.strip() or not retry_after.isprintable():
            raise ValueError("retry_after text must be one printable line")
    elif retry_after is not None and retry_after < 0:
        raise ValueError("retry_after must be >= 0")


def _check_api_error(fault: Fault, code: str | None, http_status: int | None) -> None:
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


def _check_size(fault: Fault, size: int | None) -> None:
    if size is not None:
        if fault is not Fault.HUGE_BODY:
            raise ValueError("size applies to Fault.HUGE_BODY only")
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError("size must be a number of bytes >= 1")


class FaultQueue:
    """Injected faults waiting for their requests, used in the order injected.

    Not locked: the simulator that owns the queue holds its lock around every use.
    """

    def __init__(self) -> None:
        self._staged: collections.deque[InjectedFault] = collections.deque()

    def add(self, injected: InjectedFault) -> None:
        """Stage ``injected`` after the faults already waiting."""
        self._staged.append(injected)

    def take(self, action: str | None) -> InjectedFault | None:
        """The first fault waiting for a request of ``action``, used up once more."""
        for injected in self._staged:
            if injected.action is None or injected.action == action:
                injected.remaining -= 1
                if injected.remaining == 0:
                    self._staged.remove(injected)
                return injected
        return None

    def clear(self) -> None:
        """Drop every fault waiting."""
        self._staged.clear()

    def pending(self) -> list[tuple[Fault, int, str | None]]:
        """Faults waiting: ``(fault, times left, action)``."""
        return [(f.fault, f.remaining, f.action) for f in self._staged]


class TokenBucket:
    """The request rate limit: ``rate`` requests a second, in bursts of up to ``burst``
    (by default the rate, at least one). No rate: no limit.

    Not locked: the simulator that owns the bucket holds its lock around every use.
    """

    def __init__(self) -> None:
        self._rate: float | None = None
        self._burst: int | None = None
        self._tokens = 0.0
        self._tokens_at = time.monotonic()

    def configure(self, rate: float | None, burst: int | None) -> None:
        """Set the limit, and fill the bucket to it."""
        self._rate, self._burst = rate, burst
        self.refill()

    def refill(self) -> None:
        """Fill the bucket: a full burst may go through at once."""
        self._tokens = float(self._size())
        self._tokens_at = time.monotonic()

    def _size(self) -> int:
        burst, rate = self._burst, self._rate
        return int(burst if burst is not None else max(1, math.ceil(rate or 1)))

    def take(self) -> float | None:
        """``None`` if the request may go on, else the seconds until it could."""
        rate = self._rate
        if rate is None:
            return None
        moment = time.monotonic()
        self._tokens = min(float(self._size()), self._tokens + (moment - self._tokens_at) * rate)
        self._tokens_at = moment
        if self._tokens >= 1:
            self._tokens -= 1
            return None
        return (1 - self._tokens) / rate
