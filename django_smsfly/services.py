"""The app's operations for a Django site: the shared client and account queries.

Everything here reads ``settings.SMSFLY`` through :mod:`django_smsfly.conf`.
"""

from __future__ import annotations

import threading
from decimal import Decimal
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string

from django_smsfly.backends.base import BaseBackend
from django_smsfly.client import APP_VERSION, SmsFlyClient
from django_smsfly.conf import smsfly_settings

#: The key the sandbox accepts when no API_KEY is set: it never leaves the process.
SANDBOX_KEY = "sandbox"

_client_lock = threading.Lock()
_client: SmsFlyClient | None = None


def build_client() -> SmsFlyClient:
    """A new client configured from ``settings.SMSFLY`` (see :func:`get_client`)."""
    conf = smsfly_settings
    try:
        backend_cls = import_string(conf.BACKEND)
    except ImportError as exc:
        raise ImproperlyConfigured(
            f"SMSFLY['BACKEND']: cannot import {conf.BACKEND!r}: {exc}"
        ) from exc
    if not (isinstance(backend_cls, type) and issubclass(backend_cls, BaseBackend)):
        raise ImproperlyConfigured(
            f"SMSFLY['BACKEND']: {conf.BACKEND!r} is not a django_smsfly backend class."
        )
    api_key = conf.API_KEY
    if not api_key:
        if not conf.uses_sandbox:
            raise ImproperlyConfigured(
                "SMSFLY['API_KEY'] is not set. Copy the key from SMS-fly's 'API settings' "
                "page, or use the sandbox backend for development."
            )
        api_key = SANDBOX_KEY
    options: dict[str, Any] = dict(conf.BACKEND_OPTIONS)
    try:
        backend = backend_cls(
            api_url=conf.API_URL,
            timeout=conf.TIMEOUT,
            user_agent=APP_VERSION,
            max_retries=conf.MAX_RETRIES,
            retry_backoff=conf.RETRY_BACKOFF,
            max_retry_wait=conf.MAX_RETRY_WAIT,
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
    )


def get_client() -> SmsFlyClient:
    """The process-wide client built from ``settings.SMSFLY``.

    One client (and so one connection pool) serves the whole process; it is rebuilt
    when ``SMSFLY`` changes. Usable without a database.
    """
    global _client  # noqa: PLW0603 - a process-wide singleton is the point
    with _client_lock:
        if _client is None:
            _client = build_client()
        return _client


def reset_client() -> None:
    """Close and forget the shared client; the next :func:`get_client` builds a new one."""
    global _client  # noqa: PLW0603
    with _client_lock:
        if _client is not None:
            _client.close()
        _client = None


@receiver(setting_changed)
def _reset_on_change(*, setting: str, **kwargs: Any) -> None:
    if setting == "SMSFLY":
        reset_client()


def get_balance() -> Decimal:
    """The account balance (GETBALANCE)."""
    return get_client().get_balance()


def get_balances() -> dict[str, Decimal]:
    """The SMS and Viber balances: ``{"sms": Decimal(...), "viber": Decimal(...)}``."""
    return get_client().get_balance_ext().as_dict()
