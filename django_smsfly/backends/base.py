"""What every backend provides: carry one API request body and bring back the reply.

A backend knows nothing of actions' meaning beyond what transport needs (which actions
are safe to repeat). It receives the complete request body the client built — the same
dict whichever backend is used — and returns the HTTP status with the decoded JSON
reply, or raises a :class:`~django_smsfly.exceptions.SmsFlyTransportError`
whose verdict says whether the request may have reached SMS-fly.

HTTP error statuses are *returned*, not raised: the client turns every reply into a
result or an exception in one place. A backend only raises when there is no reply at all.
"""

from __future__ import annotations

import abc
import datetime as dt
import email.utils
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

#: Actions that only read: repeating one can never change anything on the server.
READ_ONLY_ACTIONS = frozenset(
    {
        "GETBALANCE",
        "GETBALANCEEXT",
        "GETSOURCES",
        "GETPRICELIST",
        "GETPRICE",
        "GETMESSAGESTATUS",
    }
)


@dataclass(frozen=True)
class RawReply:
    """One reply as a backend received it."""

    http_status: int
    #: The decoded JSON body (normally a dict with ``success``); ``None`` when the body
    #: was empty or not JSON.
    body: Any
    #: When :attr:`body` is ``None``: the start of the raw body (at most 500 characters),
    #: for error messages. Empty otherwise.
    text: str = ""
    #: Response headers that matter to callers (e.g. ``Retry-After``), lower-case keys.
    headers: Mapping[str, str] = field(default_factory=dict)


class BaseBackend(abc.ABC):
    """Base class for backends. Subclasses implement :meth:`send`.

    Backends are thread-safe and long-lived: one instance serves every request of a
    client, so connection pools and simulated state are shared.

    A backend declares what it is through class attributes, so callers ask it instead
    of guessing from its dotted path.
    """

    #: Whether requests need a real API key (the sandbox accepts any, or none).
    requires_api_key: ClassVar[bool] = True
    #: Whether messages sent through this backend reach real phones.
    reaches_phones: ClassVar[bool] = True

    def __init__(
        self,
        *,
        api_url: str = "",
        timeout: tuple[float, float] = (5.0, 30.0),
        user_agent: str = "",
        max_retries: int = 3,
        retry_backoff: float = 0.5,
        max_retry_wait: float = 30.0,
    ) -> None:
        #: Where requests go (the HTTP backend) or what the sandbox pretends to be.
        self.api_url = api_url
        #: (connect, read) timeouts in seconds.
        self.timeout = timeout
        self.user_agent = user_agent
        #: How many times a request that is safe to repeat may be repeated.
        self.max_retries = max_retries
        #: Seconds before the first retry, doubled for each further one.
        self.retry_backoff = retry_backoff
        #: Cap on a single wait, including a server's ``Retry-After``.
        self.max_retry_wait = max_retry_wait

    @abc.abstractmethod
    def send(self, body: Mapping[str, Any]) -> RawReply:
        """Carry one request body (``{"auth": ..., "action": ..., "data": ...}``)."""

    def close(self) -> None:  # noqa: B027 - optional hook, most backends hold nothing
        """Release pooled connections or other resources."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.api_url or 'in-process'}>"


REDACTED = "***"


def redact_body(body: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a request body safe to log: the API key replaced by ``***``."""
    safe = dict(body)
    auth = safe.get("auth")
    if isinstance(auth, Mapping):
        safe["auth"] = {k: (REDACTED if k == "key" else v) for k, v in auth.items()}
    return safe


def redact_text(text: str, secret: str | None) -> str:
    """``text`` with every occurrence of ``secret`` replaced by ``***``."""
    if secret:
        text = text.replace(secret, REDACTED)
    return text


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return max(0.0, (when - dt.datetime.now(dt.timezone.utc)).total_seconds())
