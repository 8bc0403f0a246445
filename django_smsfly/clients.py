"""The process-wide clients, configured from ``settings.SMSFLY``.

:func:`get_client` is what everything that talks to SMS-fly uses: one client, and so one
connection pool, per process, rebuilt when ``SMSFLY`` changes. :func:`get_lookup_client`
is its impatient sibling for lookups a page waits on. Neither needs a database, so a
site may call ``get_client().get_balance()`` from anywhere.
"""

from __future__ import annotations

import threading
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.views.decorators.debug import sensitive_variables

from django_smsfly.client import APP_VERSION, SmsFlyClient
from django_smsfly.conf import smsfly_settings

#: The key a backend that needs none (the sandbox) is given when no API_KEY is set: it
#: never leaves the process. It is scrubbed from error texts like a real key, so it
#: must not be a word they contain.
SANDBOX_KEY = "sandbox-key-not-secret"

#: The most a lookup made while a page renders may wait: (connect, read) seconds.
LOOKUP_TIMEOUT = (2.0, 5.0)

_lock = threading.Lock()
_client: SmsFlyClient | None = None
_lookup_client: SmsFlyClient | None = None


@sensitive_variables("api_key")
def build_client(
    *, timeout: tuple[float, float] | None = None, max_retries: int | None = None
) -> SmsFlyClient:
    """A new client configured from ``settings.SMSFLY`` (see :func:`get_client`).

    ``timeout`` and ``max_retries`` override the settings (see :func:`get_lookup_client`).
    """
    conf = smsfly_settings
    backend_cls = conf.backend_class
    api_key = conf.API_KEY
    if not api_key:
        if backend_cls.requires_api_key:
            raise ImproperlyConfigured(
                "SMSFLY['API_KEY'] is not set. Copy the key from SMS-fly's 'API settings' "
                "page, or use the sandbox backend for development."
            )
        api_key = SANDBOX_KEY
    options: dict[str, Any] = dict(conf.BACKEND_OPTIONS)
    try:
        backend = backend_cls(
            api_url=conf.API_URL,
            timeout=conf.TIMEOUT if timeout is None else timeout,
            user_agent=APP_VERSION,
            max_retries=conf.MAX_RETRIES if max_retries is None else max_retries,
            retry_backoff=conf.RETRY_BACKOFF,
            max_retry_wait=conf.MAX_RETRY_WAIT,
            mask_recipients=conf.MASK_RECIPIENTS,
            **options,
        )
    except TypeError as exc:
        raise ImproperlyConfigured(f"SMSFLY['BACKEND_OPTIONS']: {exc}") from exc
    return SmsFlyClient(
        api_key,
        backend=backend,
        default_region=conf.DEFAULT_REGION,
        sms_source=conf.SMS_SOURCE,
        viber_source=conf.VIBER_SOURCE,
        appversion=APP_VERSION if conf.IDENTIFY else None,
        allowed_regions=conf.ALLOWED_REGIONS,
        max_sms_parts=conf.MAX_SMS_PARTS,
    )


def get_client() -> SmsFlyClient:
    """The process-wide client built from ``settings.SMSFLY``.

    One client (and so one connection pool) serves the whole process; it is rebuilt
    when ``SMSFLY`` changes. Usable without a database.
    """
    global _client  # noqa: PLW0603 - a process-wide singleton is the point
    client = _client
    if client is not None:  # the common case, without the lock
        return client
    with _lock:
        if _client is None:
            _client = build_client()
        return _client


def get_lookup_client() -> SmsFlyClient:
    """A client for lookups a page waits on (balances, sender names in the admin).

    Same settings as :func:`get_client`, but it gives up quickly and never retries: a
    page should say "SMS-fly could not be reached" in seconds, not hang while SMS-fly
    does. Only read-only actions belong here.
    """
    global _lookup_client  # noqa: PLW0603
    with _lock:
        if _lookup_client is None:
            connect, read = smsfly_settings.TIMEOUT
            _lookup_client = build_client(
                timeout=(min(connect, LOOKUP_TIMEOUT[0]), min(read, LOOKUP_TIMEOUT[1])),
                max_retries=0,
            )
        return _lookup_client


def reset_client() -> None:
    """Close and forget the shared clients; the next use builds new ones."""
    global _client, _lookup_client  # noqa: PLW0603
    with _lock:
        for shared in (_client, _lookup_client):
            if shared is not None:
                shared.close()
        _client = _lookup_client = None


@receiver(setting_changed)
def _reset_on_change(*, setting: str, **kwargs: Any) -> None:
    if setting == "SMSFLY":
        reset_client()
