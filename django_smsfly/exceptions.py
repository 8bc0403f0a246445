"""Exceptions raised by django-smsfly.

Every error answers the question a sender must ask before trying again: *did SMS-fly
act on the request?* That answer is :attr:`SmsFlyError.verdict`:

* :attr:`Verdict.NOT_SENT` — the request certainly did not reach SMS-fly, or SMS-fly
  refused it before doing anything (a validation error, a refused connection, an HTTP
  429, an error code such as ``INVRECIPIENT``). Nothing was spent; sending again cannot
  produce a duplicate.
* :attr:`Verdict.UNKNOWN` — the request may have been acted on (a read timeout after the
  request went out, a connection dropped mid-reply, an HTTP 5xx, a reply that cannot be
  read). Sending again may deliver the message twice; a person should decide.

:attr:`SmsFlyError.transient` says whether the same request may succeed later without
changes (a 429 or a refused connection may; ``INVRECIPIENT`` never will).

Configuration mistakes are raised as Django's
:class:`~django.core.exceptions.ImproperlyConfigured`, deliberately *not* as an
:class:`SmsFlyError`, so code that catches send failures cannot swallow them.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

from django.core.exceptions import AppRegistryNotReady, ImproperlyConfigured
from django.utils.translation import gettext as django_gettext


def _(message: str) -> str:
    """Django's ``gettext``, except that it also works where Django is not set up.

    The client and its validation may be used from a plain script; there an error's
    text stays in English instead of the translation failing and hiding the error.
    Texts are translated when the error is raised, with ``%(name)s`` placeholders that
    translators may reorder. Named ``_`` so that ``makemessages`` extracts the texts.
    """
    try:
        return django_gettext(message)
    except (ImproperlyConfigured, AppRegistryNotReady):
        return message


class Verdict(str, enum.Enum):
    """Whether SMS-fly may have acted on a request that failed."""

    #: The request certainly had no effect; repeating it cannot duplicate anything.
    NOT_SENT = "not_sent"
    #: The request may have had its effect; repeating it may duplicate a message.
    UNKNOWN = "unknown"


class SmsFlyError(Exception):
    """Base class of every error django-smsfly raises for a request that failed."""

    #: Whether SMS-fly may have acted on the request (see :class:`Verdict`).
    verdict: Verdict = Verdict.UNKNOWN
    #: Whether the same request may succeed if tried again later.
    transient: bool = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    #: A short code for this kind of failure, stored on the message when no API code exists.
    default_code = "ERROR"

    @property
    def error_code(self) -> str:
        """The API's error code when there is one, else a short code for the failure."""
        code = getattr(self, "code", None)
        if code:
            return str(code)
        http_status = getattr(self, "http_status", None)
        if http_status and self.default_code in {"ERROR", "API_ERROR", "SERVER_ERROR"}:
            return f"HTTP_{http_status}"
        return self.default_code

    @property
    def safe_to_retry(self) -> bool:
        """True when repeating the request later can neither duplicate nor be pointless."""
        return self.verdict is Verdict.NOT_SENT and self.transient

    def __str__(self) -> str:
        return self.message


class SmsFlyValidationError(SmsFlyError, ValueError):
    """The input was refused before any request was made; nothing was sent or spent.

    :attr:`field` names the offending argument (``"recipient"``, ``"viber.button"``...).
    """

    default_code = "VALIDATION"

    verdict = Verdict.NOT_SENT

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.reason = message


class SmsFlyTransportError(SmsFlyError):
    """No usable reply came back: the connection failed, timed out or the reply was broken.

    :attr:`verdict` tells whether the request certainly did not reach SMS-fly
    (connection refused, connect timeout) or whether the outcome is unknown (read
    timeout, connection reset after sending, a reply that is not the API's JSON).
    """

    default_code = "CONNECTION_LOST"

    transient = True

    def __init__(
        self,
        message: str,
        *,
        verdict: Verdict,
        http_status: int | None = None,
        action: str | None = None,
    ) -> None:
        super().__init__(message)
        self.verdict = verdict
        self.http_status = http_status
        self.action = action

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.message!r}, verdict={self.verdict.value}, "
            f"http_status={self.http_status!r}, action={self.action!r})"
        )


class SmsFlyConnectionError(SmsFlyTransportError):
    """The connection could not be made (refused, DNS failure, connect timeout).

    The request never left, so the verdict is :attr:`Verdict.NOT_SENT`.
    """

    default_code = "CONNECTION_FAILED"

    def __init__(self, message: str, *, action: str | None = None) -> None:
        super().__init__(message, verdict=Verdict.NOT_SENT, action=action)


class SmsFlyTimeout(SmsFlyTransportError):
    """The request was sent but no reply arrived in time: the outcome is unknown."""

    default_code = "TIMEOUT"

    def __init__(self, message: str, *, action: str | None = None) -> None:
        super().__init__(message, verdict=Verdict.UNKNOWN, action=action)


class SmsFlyBadReply(SmsFlyTransportError):
    """A reply arrived that is not the API's JSON (an HTML page, an empty or broken body,
    a missing or mistyped field). The server may have acted on the request."""

    default_code = "BAD_REPLY"

    def __init__(
        self,
        message: str,
        *,
        http_status: int | None = None,
        action: str | None = None,
        body: str | None = None,
    ) -> None:
        super().__init__(message, verdict=Verdict.UNKNOWN, http_status=http_status, action=action)
        #: The start of the reply body (at most 500 characters), for diagnosis; the
        #: client scrubs the API key out of it before cutting it.
        self.body = body


class SmsFlyAPIError(SmsFlyError):
    """SMS-fly answered with an error.

    :attr:`code` is the API's error code (``"INVRECIPIENT"``...) when the reply carried
    one, :attr:`description` its text, :attr:`http_status` the HTTP status and
    :attr:`reply` the decoded reply body (``None`` when there was none). The client
    scrubs the API key out of all of them; a description taken from a page that is not
    JSON is its first 200 characters, cut after scrubbing.
    """

    default_code = "API_ERROR"

    verdict = Verdict.NOT_SENT

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        description: str = "",
        http_status: int | None = None,
        reply: Mapping[str, Any] | None = None,
        action: str | None = None,
    ) -> None:
        if message is None:
            parts = [code or f"HTTP {http_status}"]
            if description:
                parts.append(description)
            message = ": ".join(parts)
        super().__init__(message)
        self.code = code
        self.description = description
        self.http_status = http_status
        self.reply = reply
        self.action = action
        # A server error may come after the server did its work.
        if http_status is not None and http_status >= 500:
            self.verdict = Verdict.UNKNOWN

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(code={self.code!r}, description={self.description!r}, "
            f"http_status={self.http_status!r}, action={self.action!r})"
        )


class SmsFlyAuthError(SmsFlyAPIError):
    """The API key was refused (HTTP 403 or the ``FORBIDDEN`` code)."""


class SmsFlyRateLimited(SmsFlyAPIError):
    """SMS-fly refused a burst of requests (HTTP 429). Nothing was done; retry later.

    :attr:`retry_after` is the server's ``Retry-After`` in seconds, when it sent one.
    """

    default_code = "RATE_LIMITED"

    transient = True

    def __init__(
        self, message: str | None = None, *, retry_after: float | None = None, **kwargs: Any
    ) -> None:
        super().__init__(message, **kwargs)
        self.verdict = Verdict.NOT_SENT  # a 429 is a refusal, whatever else it says
        self.retry_after = retry_after


class SmsFlyInsufficientFunds(SmsFlyAPIError):
    """The balance does not cover the message (``INSUFFICIENTFUND`` / ``INSUFFICIENTFUNDS``)."""


class SmsFlyInvalidRequest(SmsFlyAPIError):
    """SMS-fly refused the request's content (an ``INV*`` code, HTTP 400 or 422)."""


class SmsFlyMessageNotFound(SmsFlyInvalidRequest):
    """The message id is unknown to SMS-fly (``INVMSGID``)."""


class SmsFlyServerError(SmsFlyAPIError):
    """SMS-fly failed with a server error (HTTP 5xx). The outcome is unknown."""

    default_code = "SERVER_ERROR"

    transient = True


class SmsFlyWorkerLost(SmsFlyError):
    """The worker sending a message stopped after its request may have left.

    Raised by nobody: it is what :data:`~django_smsfly.signals.message_failed` carries
    and what the message records (``WORKER_LOST``) when a send's lease ran out after
    the request had started. The outcome is unknown, so the message is not resent.
    """

    default_code = "WORKER_LOST"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(
            message
            or _(
                "The worker sending this message stopped after the request may have left; "
                "the outcome is unknown."
            )
        )


class SmsFlyOptedOut(SmsFlyError):
    """The number is on the opt-out list (:class:`~django_smsfly.models.OptOut`): no
    request was made. Pass ``ignore_opt_out=True`` for a message the recipient must get
    regardless (an order confirmation, say)."""

    default_code = "OPTED_OUT"
    verdict = Verdict.NOT_SENT

    def __init__(self, message: str | None = None) -> None:
        super().__init__(
            message
            or _(
                "The number opted out of messages: nothing was sent. Remove it from the "
                "opt-out list, or send with ignore_opt_out=True if it must get this one."
            )
        )


class SmsFlyCancelled(SmsFlyError):
    """The message's campaign was cancelled before it was sent: no request was made."""

    default_code = "CANCELLED"
    verdict = Verdict.NOT_SENT

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or _("Its campaign was cancelled before it was sent."))
