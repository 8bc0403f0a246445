"""The HTTP backend: carries request bodies to SMS-fly over HTTPS with :mod:`requests`.

One :class:`requests.Session` per backend instance keeps connections alive and pooled
across threads. Every HTTP status is *returned* as a :class:`~.base.RawReply`; only a
missing reply raises, with a verdict that says whether SMS-fly may have acted:

* :class:`~django_smsfly.exceptions.SmsFlyConnectionError` (``NOT_SENT``) — no
  connection was made: refused, DNS failure, connect timeout, TLS handshake failure.
* :class:`~django_smsfly.exceptions.SmsFlyTimeout` (``UNKNOWN``) — the request went out
  and no reply came in time.
* :class:`~django_smsfly.exceptions.SmsFlyTransportError` (``UNKNOWN``) — the connection
  broke after the request went out (reset, closed, truncated reply).
* :class:`~django_smsfly.exceptions.SmsFlyBadReply` (``UNKNOWN``) — the reply was too
  large or could not be decoded.

Retries happen only where repeating cannot duplicate anything: read-only actions are
retried after any transport failure and after HTTP 429/502/503/504; every other action
(``SENDMESSAGE``) only when the request certainly did not arrive (a failed connection or
an HTTP 429).
"""

from __future__ import annotations

import codecs
import http.client
import http.cookiejar
import ipaddress
import json
import logging
import random
import re
import ssl
import time
from collections.abc import Callable, Iterator, Mapping
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
import requests.adapters
import urllib3.exceptions
from django.core.exceptions import ImproperlyConfigured
from django.views.decorators.debug import sensitive_variables

from django_smsfly import __version__
from django_smsfly.backends.base import (
    READ_ONLY_ACTIONS,
    TEXT_LIMIT,
    BaseBackend,
    RawReply,
    conceal_body,
    mask_body,
    parse_retry_after,
    redact_and_cut,
    redact_body,
    redact_text,
)
from django_smsfly.exceptions import (
    SmsFlyBadReply,
    SmsFlyConnectionError,
    SmsFlyTimeout,
    SmsFlyTransportError,
    Verdict,
)

logger = logging.getLogger("django_smsfly.http")

#: Default cap on a reply body; SMS-fly's largest replies (price lists) are a few KiB.
DEFAULT_MAX_REPLY_BYTES = 4 * 1024 * 1024

#: HTTP statuses after which a read-only request is repeated (the server or a proxy
#: in front of it was busy or briefly unavailable).
RETRY_STATUSES_READ_ONLY = frozenset({429, 502, 503, 504})
#: HTTP statuses after which any request is repeated: a 429 is a refusal, nothing was done.
RETRY_STATUSES_ANY = frozenset({429})

_CHUNK_SIZE = 64 * 1024
_CHARSET_RE = re.compile(r"charset\s*=\s*[\"']?([\w.:-]+)", re.IGNORECASE)

# Errors that can escape a request or the reading of its reply. requests wraps most of
# urllib3's; the rest are listed so that nothing network-related escapes unclassified.
_NETWORK_ERRORS = (
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


class HTTPBackend(BaseBackend):
    """Sends request bodies to SMS-fly's JSON API over HTTPS.

    :param api_url: the API endpoint, e.g. ``https://sms-fly.ua/api/v2/api.php``. Plain
        ``http://`` is accepted only for loopback hosts (local test servers), because the
        API key travels in the body.
    :param timeout: ``(connect, read)`` seconds, or one number for both.
    :param user_agent: the ``User-Agent`` header; ``django-smsfly/<version>`` when empty.
    :param max_retries: how many times a request that is safe to repeat may be repeated.
    :param retry_backoff: seconds before the first retry, doubled for each further one
        (plus up to 10 % random jitter so that parallel workers spread out).
    :param max_retry_wait: cap on a single wait. A server's ``Retry-After`` beyond it is
        not waited for: the reply is returned at once so the caller can reschedule.
    :param pool_size: keep-alive connections kept per host; set it to the number of
        threads that send at the same time.
    :param max_reply_bytes: replies larger than this raise
        :class:`~django_smsfly.exceptions.SmsFlyBadReply` without being read further.
    :param sleep: called with the number of seconds to wait between attempts
        (injectable so tests do not wait).

    TLS certificates are always verified; there is deliberately no option to turn that
    off. Proxies and CA bundles from the environment (``HTTPS_PROXY``,
    ``REQUESTS_CA_BUNDLE``) are honoured. Redirects are never followed: a redirect
    would carry the API key to another address.

    Instances are thread-safe; one instance is meant to serve a whole process.
    """

    def __init__(
        self,
        *,
        api_url: str,
        timeout: tuple[float, float] | float = (5.0, 30.0),
        user_agent: str = "",
        max_retries: int = 3,
        retry_backoff: float = 0.5,
        max_retry_wait: float = 30.0,
        pool_size: int = 16,
        max_reply_bytes: int = DEFAULT_MAX_REPLY_BYTES,
        sleep: Callable[[float], None] = time.sleep,
        mask_recipients: bool = False,
    ) -> None:
        super().__init__(
            api_url=_check_url(api_url),
            timeout=_check_timeout(timeout),
            user_agent=user_agent or f"django-smsfly/{__version__}",
            max_retries=_check_int("max_retries", max_retries, minimum=0),
            retry_backoff=_check_seconds("retry_backoff", retry_backoff),
            max_retry_wait=_check_seconds("max_retry_wait", max_retry_wait),
            mask_recipients=bool(mask_recipients),
        )
        #: Keep-alive connections kept per host.
        self.pool_size = _check_int("pool_size", pool_size, minimum=1)
        #: Replies larger than this many bytes are refused.
        self.max_reply_bytes = _check_int("max_reply_bytes", max_reply_bytes, minimum=1)
        self._sleep = sleep
        self._host = urlsplit(self.api_url).hostname or "?"
        # random.Random is thread-safe for single calls; the jitter needs no secrecy.
        self._random = random.Random()  # noqa: S311
        self._session = self._make_session()

    def _make_session(self) -> requests.Session:
        session = requests.Session()
        # Retries are decided here, per action; urllib3 retrying on its own could repeat
        # a SENDMESSAGE that already arrived.
        adapter = requests.adapters.HTTPAdapter(
            pool_connections=self.pool_size, pool_maxsize=self.pool_size, max_retries=0
        )
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        session.headers.clear()
        session.headers.update(
            {
                "User-Agent": self.user_agent,
                "Content-Type": "application/json",
                "Accept": "application/json",
                "Accept-Encoding": "gzip, deflate",
                "Connection": "keep-alive",
            }
        )
        # The API is stateless. Keeping cookies would make concurrent threads share a
        # server-side session (which PHP serialises) and share mutable jar state.
        session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
        # Proxies and a CA bundle from the environment (HTTPS_PROXY, REQUESTS_CA_BUNDLE)
        # are read once here: requests would otherwise re-read the environment and stat
        # ~/.netrc on every request, a large share of a status poll's CPU time.
        environment = session.merge_environment_settings(self.api_url, {}, None, True, None)
        self._proxies: dict[str, str] = dict(environment.get("proxies") or {})
        bundle = environment.get("verify")
        # Verification stays on: the environment may name a CA bundle, never turn it off.
        self._verify: bool | str = bundle if isinstance(bundle, str) and bundle else True
        session.trust_env = False
        return session

    @property
    def session(self) -> requests.Session:
        """The pooled :class:`requests.Session` every request of this backend goes through."""
        return self._session

    def close(self) -> None:
        """Close pooled connections. A later :meth:`send` opens new ones."""
        self._session.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {_url_without_userinfo(self.api_url)}>"

    # Hides every local of send() and of everything it calls (the body with the key,
    # the encoded payload) from Django's error reports.
    @sensitive_variables()
    def send(self, body: Mapping[str, Any]) -> RawReply:
        """POST ``body`` as JSON and return the reply, repeating only where that is safe.

        Returns a :class:`~.base.RawReply` for every HTTP status. Raises a
        :class:`~django_smsfly.exceptions.SmsFlyTransportError` subclass when no reply
        arrived (see the module documentation for which one and its verdict).
        """
        action = str(body.get("action") or "?")
        key = _api_key(body)
        read_only = action.upper() in READ_ONLY_ACTIONS
        retry_statuses = RETRY_STATUSES_READ_ONLY if read_only else RETRY_STATUSES_ANY
        # Serialised once: every attempt sends the very same bytes. ASCII escapes, as the
        # vendor's own PHP clients send (json_encode's default).
        payload = json.dumps(body, allow_nan=False, separators=(",", ":")).encode("ascii")
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "SMS-fly %s: POST %s %s",
                action,
                _url_without_userinfo(self.api_url),
                _loggable(body, key, mask=self.mask_recipients),
            )

        attempts = self.max_retries + 1
        for attempt in range(1, attempts + 1):
            try:
                reply = self._attempt(payload, action, key, attempt)
            except SmsFlyTransportError as exc:
                # Messages of our errors start with the action already.
                if not _may_repeat_after(exc, read_only) or self._give_up(attempt, str(exc)):
                    raise
                self._wait_before_retry(str(exc), attempt, self._backoff(attempt - 1))
                continue

            if reply.http_status not in retry_statuses:
                return reply
            reason = f"{action}: HTTP {reply.http_status}"
            if self._give_up(attempt, reason):
                return reply
            retry_after = parse_retry_after(reply.headers.get("retry-after"))
            if retry_after is None:
                wait = self._backoff(attempt - 1)
            elif retry_after > self.max_retry_wait:
                # Waiting that long would hold a worker; the caller can reschedule.
                logger.warning(
                    "SMS-fly %s with Retry-After %.0f s (over the %.0f s limit); not retrying",
                    reason,
                    retry_after,
                    self.max_retry_wait,
                )
                return reply
            else:
                wait = retry_after
            self._wait_before_retry(reason, attempt, wait)

        raise AssertionError("unreachable")  # pragma: no cover - the loop always exits

    def _give_up(self, attempt: int, reason: str) -> bool:
        """True (after logging why) when ``attempt`` was the last one allowed."""
        if attempt <= self.max_retries:
            return False
        if self.max_retries:
            logger.warning("SMS-fly %s; giving up after %d attempts", reason, attempt)
        return True

    def _wait_before_retry(self, reason: str, attempt: int, wait: float) -> None:
        logger.warning(
            "SMS-fly %s; retry %d of %d in %.2f s", reason, attempt, self.max_retries, wait
        )
        self._sleep(wait)

    def _backoff(self, retry_index: int) -> float:
        """Seconds before retry number ``retry_index`` (0-based), capped."""
        base = self.retry_backoff * 2.0**retry_index
        return min(base * (1 + 0.1 * self._random.random()), self.max_retry_wait)

    def _attempt(self, payload: bytes, action: str, key: str | None, attempt: int) -> RawReply:
        """One POST. Returns the reply or raises a classified transport error."""
        started = time.monotonic()
        try:
            try:
                response = self._session.post(
                    self.api_url,
                    data=payload,
                    timeout=self.timeout,
                    verify=self._verify,
                    proxies=self._proxies,
                    allow_redirects=False,
                    stream=True,
                )
            except _NETWORK_ERRORS as exc:
                raise self._transport_error(exc, action, key, http_status=None) from exc
            try:
                with response:
                    raw = self._read_body(response, action, key)
            except _NETWORK_ERRORS as exc:
                raise self._transport_error(
                    exc, action, key, http_status=response.status_code
                ) from exc
        except SmsFlyTransportError as exc:
            logger.debug(
                "SMS-fly attempt %d failed after %.0f ms: %s",
                attempt,
                _elapsed_ms(started),
                exc,
            )
            raise

        reply = _make_reply(response.status_code, response.headers, raw, key)
        logger.debug(
            "SMS-fly %s: attempt %d: HTTP %d in %.0f ms, %d bytes",
            action,
            attempt,
            reply.http_status,
            _elapsed_ms(started),
            len(raw),
        )
        return reply

    def _read_body(self, response: requests.Response, action: str, key: str | None) -> bytes:
        """The whole (decompressed) body, refusing to hold more than the cap."""
        limit = self.max_reply_bytes
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise self._too_large(action, key, response.status_code)
        buffer = bytearray()
        for chunk in response.iter_content(chunk_size=_CHUNK_SIZE):
            buffer += chunk
            if len(buffer) > limit:
                raise self._too_large(action, key, response.status_code)
        return bytes(buffer)

    def _too_large(self, action: str, key: str | None, http_status: int) -> SmsFlyBadReply:
        message = (
            f"{action}: the reply from {self._host} is larger than {self.max_reply_bytes} bytes"
        )
        return SmsFlyBadReply(redact_text(message, key), http_status=http_status, action=action)

    def _transport_error(
        self,
        exc: BaseException,
        action: str,
        key: str | None,
        *,
        http_status: int | None,
    ) -> SmsFlyTransportError:
        """Turn a requests/urllib3/socket error into one of ours, with a fitting verdict."""
        chain = list(_exception_chain(exc))
        host = self._host
        error: SmsFlyTransportError
        # Once a status line arrived the request certainly reached the server.
        if http_status is None and _failed_before_sending(chain):
            message = f"{action}: {_connect_failure(chain, host)}"
            error = SmsFlyConnectionError(redact_text(message, key), action=action)
        elif _find(
            chain, requests.exceptions.ContentDecodingError, urllib3.exceptions.DecodeError
        ):
            message = f"{action}: the reply from {host} could not be decoded"
            error = SmsFlyBadReply(
                redact_text(message, key), http_status=http_status, action=action
            )
        elif _find(chain, requests.Timeout, urllib3.exceptions.ReadTimeoutError, TimeoutError):
            message = (
                f"{action}: no reply from {host} within {self.timeout[1]:g} s; "
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


def _may_repeat_after(exc: SmsFlyTransportError, read_only: bool) -> bool:
    if isinstance(exc, SmsFlyBadReply):
        # A reply arrived; asking again would most likely bring the same one.
        return False
    if read_only:
        return True
    # Only a request that certainly did not arrive can be repeated without a duplicate.
    return exc.verdict is Verdict.NOT_SENT


def _make_reply(status: int, headers: Mapping[str, str], raw: bytes, key: str | None) -> RawReply:
    lower_headers = {name.lower(): value for name, value in headers.items()}
    body: Any = None
    text = ""
    if raw.strip():
        try:
            # JSON is decoded whatever the Content-Type says: PHP servers often label it
            # text/html. json.loads on bytes detects UTF-8/16/32 and a UTF-8 BOM.
            body = json.loads(raw)
        except (ValueError, RecursionError):  # JSONDecodeError, UnicodeDecodeError, [[[[...
            body = None
    if body is None and raw:
        encoding = _charset(lower_headers.get("content-type", ""))
        # The whole body (at most max_reply_bytes) is decoded and scrubbed before it is
        # cut: a key echoed across the cut would otherwise leave its start behind.
        text = redact_and_cut(raw.decode(encoding, errors="replace"), key, TEXT_LIMIT)
    return RawReply(http_status=status, body=body, text=text, headers=lower_headers)


def _charset(content_type: str) -> str:
    match = _CHARSET_RE.search(content_type)
    if match:
        try:
            return codecs.lookup(match.group(1)).name
        except LookupError:
            pass
    return "utf-8"


def _api_key(body: Mapping[str, Any]) -> str | None:
    auth = body.get("auth")
    if isinstance(auth, Mapping):
        key = auth.get("key")
        if isinstance(key, str) and key:
            return key
    return None


def _loggable(body: Mapping[str, Any], key: str | None, *, mask: bool) -> str:
    safe = conceal_body(redact_body(body))
    text = json.dumps(mask_body(safe) if mask else safe, ensure_ascii=False, default=str)
    # redact_body() removes auth.key; this also catches the key pasted anywhere else.
    return redact_text(text, key)


def _elapsed_ms(started: float) -> float:
    return (time.monotonic() - started) * 1000


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
    if _find(chain, urllib3.exceptions.NameResolutionError):
        return f"could not resolve {host}"
    if _find(chain, ConnectionRefusedError):
        return f"connection refused by {host}"
    if _find(chain, urllib3.exceptions.ProxyError, requests.exceptions.ProxyError):
        return f"could not connect to {host} through the proxy"
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
    if _find(chain, http.client.RemoteDisconnected):
        return f"{host} closed the connection without replying"
    if _find(chain, ConnectionResetError):
        return f"the connection to {host} was reset"
    if _find(chain, http.client.IncompleteRead, urllib3.exceptions.IncompleteRead):
        return f"the reply from {host} was cut short"
    if _find(chain, requests.exceptions.ChunkedEncodingError):
        return f"the reply from {host} was broken off"
    if _find(chain, ssl.SSLError, urllib3.exceptions.SSLError):
        return f"the TLS connection to {host} failed"
    return f"the connection to {host} failed ({type(chain[-1]).__name__})"


def _check_url(url: str) -> str:
    if not isinstance(url, str) or not url:
        raise ImproperlyConfigured("The SMS-fly API URL is missing.")
    parts = urlsplit(url)
    if parts.scheme not in {"https", "http"} or not parts.hostname:
        raise ImproperlyConfigured(
            f"The SMS-fly API URL must be an https:// address, not {_url_without_userinfo(url)!r}."
        )
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ImproperlyConfigured(
            "The SMS-fly API URL must use https://: the API key would travel unencrypted "
            f"to {parts.hostname}. (Plain http:// is allowed only for loopback test servers.)"
        )
    return url


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _url_without_userinfo(url: str) -> str:
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    netloc = parts.hostname or ""
    if parts.port is not None:
        netloc = f"{netloc}:{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def _check_timeout(value: tuple[float, float] | float) -> tuple[float, float]:
    if isinstance(value, int | float) and not isinstance(value, bool):
        pair: tuple[Any, ...] = (value, value)
    elif isinstance(value, tuple | list) and len(value) == 2:
        pair = tuple(value)
    else:
        raise ImproperlyConfigured(
            f"timeout must be seconds or a (connect, read) pair, not {value!r}."
        )
    connect, read = (_check_seconds("timeout", item) for item in pair)
    if connect <= 0 or read <= 0:
        raise ImproperlyConfigured("timeout must be greater than 0.")
    return (connect, read)


def _check_seconds(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise ImproperlyConfigured(f"{name} must be a number of seconds >= 0, not {value!r}.")
    return float(value)


def _check_int(name: str, value: object, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ImproperlyConfigured(f"{name} must be an integer >= {minimum}, not {value!r}.")
    return value
