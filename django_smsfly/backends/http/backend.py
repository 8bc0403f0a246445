"""The HTTP backend itself: a pooled :class:`requests.Session` and one POST per attempt.

:meth:`HTTPBackend.send` is the pipeline: serialise the body once, let the
:class:`~.retrying.RetryPolicy` repeat :meth:`HTTPBackend._attempt` where that is safe;
each attempt posts, reads the reply (:mod:`.replies`) or classifies why none came
(:mod:`.failures`).
"""

from __future__ import annotations

import http.cookiejar
import json
import logging
import random
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import requests
import requests.adapters
from django.views.decorators.debug import sensitive_variables

from django_smsfly import __version__
from django_smsfly.backends.base import (
    READ_ONLY_ACTIONS,
    BaseBackend,
    RawReply,
    conceal_body,
    mask_body,
    redact_body,
    redact_text,
)
from django_smsfly.backends.http.failures import NETWORK_ERRORS, transport_error
from django_smsfly.backends.http.options import (
    check_int,
    check_seconds,
    check_timeout,
    check_url,
    url_without_userinfo,
)
from django_smsfly.backends.http.replies import DEFAULT_MAX_REPLY_BYTES, make_reply, read_body
from django_smsfly.backends.http.retrying import RetryPolicy
from django_smsfly.exceptions import SmsFlyTransportError

logger = logging.getLogger("django_smsfly.http")


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
            api_url=check_url(api_url),
            timeout=check_timeout(timeout),
            user_agent=user_agent or f"django-smsfly/{__version__}",
            max_retries=check_int("max_retries", max_retries, minimum=0),
            retry_backoff=check_seconds("retry_backoff", retry_backoff),
            max_retry_wait=check_seconds("max_retry_wait", max_retry_wait),
            mask_recipients=bool(mask_recipients),
        )
        #: Keep-alive connections kept per host.
        self.pool_size = check_int("pool_size", pool_size, minimum=1)
        #: Replies larger than this many bytes are refused.
        self.max_reply_bytes = check_int("max_reply_bytes", max_reply_bytes, minimum=1)
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
        return f"<{type(self).__name__} {url_without_userinfo(self.api_url)}>"

    # Hides every local of send() and of everything it calls (the body with the key,
    # the encoded payload) from Django's error reports.
    @sensitive_variables()
    def send(self, body: Mapping[str, Any]) -> RawReply:
        """POST ``body`` as JSON and return the reply, repeating only where that is safe.

        Returns a :class:`~.base.RawReply` for every HTTP status. Raises a
        :class:`~django_smsfly.exceptions.SmsFlyTransportError` subclass when no reply
        arrived (see :mod:`django_smsfly.backends.http` for which one and its verdict).
        """
        action = str(body.get("action") or "?")
        key = _api_key(body)
        # Serialised once: every attempt sends the very same bytes. ASCII escapes, as the
        # vendor's own PHP clients send (json_encode's default).
        payload = json.dumps(body, allow_nan=False, separators=(",", ":")).encode("ascii")
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "SMS-fly %s: POST %s %s",
                action,
                url_without_userinfo(self.api_url),
                _loggable(body, key, mask=self.mask_recipients),
            )
        # Built per request from the attributes, so a change to them counts at once.
        policy = RetryPolicy(
            max_retries=self.max_retries,
            backoff=self.retry_backoff,
            max_wait=self.max_retry_wait,
            sleep=self._sleep,
            random=self._random.random,
        )
        return policy.run(
            lambda attempt: self._attempt(payload, action, key, attempt),
            action=action,
            read_only=action.upper() in READ_ONLY_ACTIONS,
        )

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
            except NETWORK_ERRORS as exc:
                raise self._transport_error(exc, action, key, http_status=None) from exc
            try:
                with response:
                    raw = read_body(
                        response,
                        limit=self.max_reply_bytes,
                        action=action,
                        host=self._host,
                        key=key,
                    )
            except NETWORK_ERRORS as exc:
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

        reply = make_reply(response.status_code, response.headers, raw, key)
        logger.debug(
            "SMS-fly %s: attempt %d: HTTP %d in %.0f ms, %d bytes",
            action,
            attempt,
            reply.http_status,
            _elapsed_ms(started),
            len(raw),
        )
        return reply

    def _transport_error(
        self, exc: BaseException, action: str, key: str | None, *, http_status: int | None
    ) -> SmsFlyTransportError:
        return transport_error(
            exc,
            action=action,
            host=self._host,
            read_timeout=self.timeout[1],
            key=key,
            http_status=http_status,
        )


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
