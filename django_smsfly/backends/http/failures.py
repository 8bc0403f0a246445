"""What went wrong when no reply came: a :mod:`requests`/urllib3/socket error, classified.

:func:`transport_error` turns whatever a request raised into one of our
:class:`~django_smsfly.exceptions.SmsFlyTransportError` subclasses, with a short reason
and the verdict that matters to the sender: did the request certainly not arrive
(``NOT_SENT``, safe to repeat), or may SMS-fly have acted on it (``UNKNOWN``)?
"""

from __future__ import annotations

import http.client
import ssl
from collections.abc import Iterator
from types import TracebackType

import requests
import urllib3.exceptions

from django_smsfly.backends.base import redact_text
from django_smsfly.exceptions import (
    SmsFlyBadReply,
    SmsFlyConnectionError,
    SmsFlyTimeout,
    SmsFlyTransportError,
    Verdict,
)

# Errors that can escape a request or the reading of its reply. requests wraps most of
# urllib3's; the rest are listed so that nothing network-related escapes unclassified.
NETWORK_ERRORS = (
    requests.RequestException,
    urllib3.exceptions.HTTPError,
    http.client.HTTPException,
    OSError,
)

# Exceptions that only happen before a single byte of the request was written.
_NOT_SENT_ERRORS = (
    urllib3.exceptions.NewConnectionError,  # refused, unreachable, DNS (NameResolutionError)
    urllib3.exceptions.ConnectTimeoutError,
    urllib3.exceptions.ProxyError,  # urllib3 raises it only before reaching the proxy
    urllib3.exceptions.ClosedPoolError,
    urllib3.exceptions.EmptyPoolError,
    requests.ConnectTimeout,
    ssl.SSLCertVerificationError,  # certificates are checked only during the handshake
)

# Code that runs while a connection (TCP, then TLS) is being set up. An exception raised
# inside one of these frames happened before the request was written, whatever its type:
# urllib3 reports a TLS handshake that times out as a *read* timeout, for example.
_CONNECT_FRAMES = frozenset(
    {
        ("ssl", "do_handshake"),
        ("socket", "create_connection"),
        ("http.client", "connect"),
        ("urllib3.util.connection", "create_connection"),
        ("urllib3.connection", "connect"),
        ("urllib3.connection", "_new_conn"),
        ("urllib3.connectionpool", "_validate_conn"),
    }
)

#: A reason and the exceptions that show it, in the order they are looked for.
_Reasons = tuple[tuple[tuple[type[BaseException], ...], str], ...]

# Why a connection could not be made, where the exception alone tells (``{host}`` is
# filled in); the cases that need a closer look follow in _connect_failure().
_CONNECT_REASONS: _Reasons = (
    ((urllib3.exceptions.NameResolutionError,), "could not resolve {host}"),
    ((ConnectionRefusedError,), "connection refused by {host}"),
    (
        (urllib3.exceptions.ProxyError, requests.exceptions.ProxyError),
        "could not connect to {host} through the proxy",
    ),
)

# Why a connection broke after the request went out, the most telling first.
_BROKEN_REASONS: _Reasons = (
    ((http.client.RemoteDisconnected,), "{host} closed the connection without replying"),
    ((ConnectionResetError,), "the connection to {host} was reset"),
    (
        (http.client.IncompleteRead, urllib3.exceptions.IncompleteRead),
        "the reply from {host} was cut short",
    ),
    ((requests.exceptions.ChunkedEncodingError,), "the reply from {host} was broken off"),
    ((ssl.SSLError, urllib3.exceptions.SSLError), "the TLS connection to {host} failed"),
)


def transport_error(
    exc: BaseException,
    *,
    action: str,
    host: str,
    read_timeout: float,
    key: str | None,
    http_status: int | None,
) -> SmsFlyTransportError:
    """Turn a requests/urllib3/socket error into one of ours, with a fitting verdict.

    ``http_status`` is the reply's status when the error came while reading its body
    (``None`` when no status line arrived); ``key`` is scrubbed from the message.
    """
    chain = list(_exception_chain(exc))
    error: SmsFlyTransportError
    # Once a status line arrived the request certainly reached the server.
    if http_status is None and _failed_before_sending(chain):
        message = f"{action}: {_connect_failure(chain, host)}"
        error = SmsFlyConnectionError(redact_text(message, key), action=action)
    elif _find(chain, requests.exceptions.ContentDecodingError, urllib3.exceptions.DecodeError):
        message = f"{action}: the reply from {host} could not be decoded"
        error = SmsFlyBadReply(redact_text(message, key), http_status=http_status, action=action)
    elif _find(chain, requests.Timeout, urllib3.exceptions.ReadTimeoutError, TimeoutError):
        message = (
            f"{action}: no reply from {host} within {read_timeout:g} s; "
            "the request may have been processed"
        )
        error = SmsFlyTimeout(redact_text(message, key), action=action)
    else:
        message = (
            f"{action}: {_broken_connection(chain, host)}; the request may have been processed"
        )
        error = SmsFlyTransportError(
            redact_text(message, key), verdict=Verdict.UNKNOWN, action=action
        )
    error.http_status = http_status
    return error


def _exception_chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and every exception it wraps.

    requests wraps urllib3's errors in ``args``; urllib3 keeps causes in ``reason``
    (MaxRetryError), ``original_error`` (ProxyError), ``args`` and ``__cause__``.
    ``__context__`` is not followed: it can hold an exception that was merely being
    handled at the time and says nothing about this failure.
    """
    seen: set[int] = set()
    stack = [exc]
    while stack and len(seen) < 64:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        linked = [
            current.__cause__,
            getattr(current, "reason", None),
            getattr(current, "original_error", None),
            *current.args,
        ]
        stack.extend(item for item in linked if isinstance(item, BaseException))


def _find(chain: list[BaseException], *types: type[BaseException]) -> BaseException | None:
    for item in chain:
        if isinstance(item, types):
            return item
    return None


def _first_reason(chain: list[BaseException], reasons: _Reasons, host: str) -> str | None:
    """The first of ``reasons`` whose exceptions are in ``chain``, for ``host``."""
    for types, reason in reasons:
        if _find(chain, *types):
            return reason.format(host=host)
    return None


def _raised_while_connecting(exc: BaseException) -> bool:
    tb: TracebackType | None = exc.__traceback__
    while tb is not None:
        frame = tb.tb_frame
        if (frame.f_globals.get("__name__"), frame.f_code.co_name) in _CONNECT_FRAMES:
            return True
        tb = tb.tb_next
    return False


def _failed_before_sending(chain: list[BaseException]) -> bool:
    """True when the failure certainly happened before the request was written."""
    return any(
        isinstance(item, _NOT_SENT_ERRORS) or _raised_while_connecting(item) for item in chain
    )


def _connect_failure(chain: list[BaseException], host: str) -> str:
    """A short reason for a failed connection, without the library's long texts."""
    reason = _first_reason(chain, _CONNECT_REASONS, host)
    if reason is not None:
        return reason
    cert_error = _find(chain, ssl.SSLCertVerificationError)
    if isinstance(cert_error, ssl.SSLCertVerificationError):
        # Set by OpenSSL; absent on an SSL error built by hand.
        detail = (
            getattr(cert_error, "verify_message", None)
            or getattr(cert_error, "reason", None)
            or "verification failed"
        )
        return f"TLS certificate of {host} rejected ({detail})"
    # NewConnectionError subclasses ConnectTimeoutError for historical reasons only.
    connect_timeout = any(
        isinstance(item, urllib3.exceptions.ConnectTimeoutError | requests.ConnectTimeout)
        and not isinstance(item, urllib3.exceptions.NewConnectionError)
        for item in chain
    )
    # A bare TimeoutError here is e.g. a TLS handshake that never completed.
    if connect_timeout or _find(chain, TimeoutError):
        return f"timed out connecting to {host}"
    ssl_error = _find(chain, ssl.SSLError)
    if isinstance(ssl_error, ssl.SSLError):
        detail = getattr(ssl_error, "reason", None) or "SSL error"
        return f"TLS handshake with {host} failed ({detail})"
    if _find(chain, urllib3.exceptions.ClosedPoolError, urllib3.exceptions.EmptyPoolError):
        return "the connection pool was closed"
    os_error = _find(chain, OSError)
    if isinstance(os_error, OSError) and os_error.strerror:
        return f"could not connect to {host} ({os_error.strerror})"
    return f"could not connect to {host}"


def _broken_connection(chain: list[BaseException], host: str) -> str:
    """A short reason for a connection that broke after the request went out."""
    reason = _first_reason(chain, _BROKEN_REASONS, host)
    if reason is not None:
        return reason
    return f"the connection to {host} failed ({type(chain[-1]).__name__})"
