"""System checks (``manage.py check``) for the ``SMSFLY`` setting.

One function per concern; :class:`~django_smsfly.apps.SmsFlyConfig` registers each of
:data:`SMSFLY_CHECKS` when the app is ready, under the tag ``django_smsfly``.

=================  =========================================================
``smsfly.E001``    ``SMSFLY`` is malformed (not a dict, unknown key, bad value)
``smsfly.E002``    no ``API_KEY`` while the backend needs one
``smsfly.E003``    ``API_URL`` is not an https URL
``smsfly.E004``    ``DEFAULT_REGION`` is not a region phone numbers know
``smsfly.E005``    ``BACKEND`` cannot be imported or is not a backend
``smsfly.E006``    ``RATE_LIMIT_CACHE`` names no cache in ``settings.CACHES``
``smsfly.E007``    ``TASK_BACKEND`` names no backend in ``settings.TASKS``
``smsfly.E008``    ``SEND_LEASE`` is not longer than the longest send
``smsfly.E009``    ``VERIFICATION`` lets a code be guessed (over 1 % a day)
``smsfly.W001``    a backend that reaches no phones is used while ``DEBUG`` is off
``smsfly.W002``    ``RATE_LIMIT_CACHE`` is a cache each process keeps for itself
=================  =========================================================

Only ``smsfly.E001`` is reported for a malformed setting: the other checks need valid
values and stay silent until it is fixed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import phonenumbers
from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from django_smsfly.backends.base import BaseBackend
from django_smsfly.conf import (
    API_URL_PL,
    API_URL_UA,
    HTTP_BACKEND,
    SANDBOX_BACKEND,
    longest_send_seconds,
    smsfly_settings,
)

Messages = list[checks.CheckMessage]

#: The tag the checks are registered under: ``manage.py check --tag django_smsfly``.
TAG = "django_smsfly"


def _values() -> dict[str, Any] | None:
    """The validated settings, or None when they are malformed (``smsfly.E001``)."""
    try:
        return smsfly_settings.as_dict()
    except ImproperlyConfigured:
        return None


def _backend() -> type[BaseBackend] | None:
    """The configured backend class, or None when there is none (``smsfly.E005``)."""
    if _values() is None:
        return None
    try:
        return smsfly_settings.backend_class
    except ImproperlyConfigured:
        return None


def check_settings_are_valid(app_configs: Any = None, **kwargs: Any) -> Messages:
    """``smsfly.E001``: ``SMSFLY`` is a dict of known keys with valid values."""
    try:
        smsfly_settings.as_dict()
    except ImproperlyConfigured as exc:
        return [
            checks.Error(
                str(exc),
                hint="See the settings reference in django-smsfly's documentation.",
                id="smsfly.E001",
            )
        ]
    return []


def check_backend(app_configs: Any = None, **kwargs: Any) -> Messages:
    """``smsfly.E005``: ``BACKEND`` names a backend class."""
    if _values() is None:
        return []
    try:
        _ = smsfly_settings.backend_class
    except ImproperlyConfigured as exc:
        return [
            checks.Error(
                str(exc),
                hint=f"Use {HTTP_BACKEND!r} or {SANDBOX_BACKEND!r}, or a subclass of "
                "django_smsfly.backends.base.BaseBackend.",
                id="smsfly.E005",
            )
        ]
    return []


def check_api_key(app_configs: Any = None, **kwargs: Any) -> Messages:
    """``smsfly.E002``: an ``API_KEY`` is set when the backend requires one."""
    backend = _backend()
    if backend is None or not backend.requires_api_key or smsfly_settings.API_KEY:
        return []
    return [
        checks.Error(
            "SMSFLY['API_KEY'] is not set, so no message can be sent.",
            hint="Copy the key from the 'API settings' page of your SMS-fly account, or "
            f"set SMSFLY['BACKEND'] to {SANDBOX_BACKEND!r} for development.",
            id="smsfly.E002",
        )
    ]


def check_api_url(app_configs: Any = None, **kwargs: Any) -> Messages:
    """``smsfly.E003``: ``API_URL`` is an https URL (or plain http to this machine)."""
    conf = _values()
    if conf is None:
        return []
    api_url: str = conf["API_URL"]
    url = urlsplit(api_url)
    if url.scheme == "https" and url.hostname and " " not in api_url:
        return []
    if url.scheme == "http" and url.hostname in {"127.0.0.1", "localhost", "::1"}:
        return []  # a local sandbox server over plain HTTP is fine
    return [
        checks.Error(
            f"SMSFLY['API_URL'] = {api_url!r} is not an https:// URL.",
            hint=f"Use {API_URL_UA!r} (Ukraine) or {API_URL_PL!r} (Poland).",
            id="smsfly.E003",
        )
    ]


def check_region(app_configs: Any = None, **kwargs: Any) -> Messages:
    """``smsfly.E004``: ``DEFAULT_REGION`` is a region phone numbers are known for."""
    conf = _values()
    if conf is None or conf["DEFAULT_REGION"] in phonenumbers.SUPPORTED_REGIONS:
        return []
    return [
        checks.Error(
            f"SMSFLY['DEFAULT_REGION'] = {conf['DEFAULT_REGION']!r} is not a known region.",
            hint="Use a two-letter ISO 3166 country code such as 'UA' or 'PL'.",
            id="smsfly.E004",
        )
    ]


def check_sandbox_in_production(app_configs: Any = None, **kwargs: Any) -> Messages:
    """``smsfly.W001``: with ``DEBUG`` off, the backend reaches phones."""
    backend = _backend()
    if backend is None or backend.reaches_phones or settings.DEBUG:
        return []
    return [
        checks.Warning(
            f"The backend {smsfly_settings.BACKEND!r} reaches no phones (like the SMS-fly "
            "sandbox) while DEBUG is off: no message will reach a phone.",
            hint=f"Set SMSFLY['BACKEND'] to {HTTP_BACKEND!r} (the default) and "
            "SMSFLY['API_KEY'] in production.",
            id="smsfly.W001",
        )
    ]


#: Caches that live in one process: a rate limit kept in them is not shared.
_PROCESS_LOCAL_CACHES = {
    "django.core.cache.backends.locmem.LocMemCache",
    "django.core.cache.backends.dummy.DummyCache",
}


def check_rate_limit_cache(app_configs: Any = None, **kwargs: Any) -> Messages:
    """``smsfly.E006`` / ``smsfly.W002``: ``RATE_LIMIT_CACHE`` is a cache all workers share."""
    conf = _values()
    alias = conf["RATE_LIMIT_CACHE"] if conf else None
    if not alias:
        return []
    configured = getattr(settings, "CACHES", {})
    if alias not in configured:
        return [
            checks.Error(
                f"SMSFLY['RATE_LIMIT_CACHE'] = {alias!r} is not in settings.CACHES.",
                hint="Name a cache every worker reaches, such as Redis.",
                id="smsfly.E006",
            )
        ]
    if configured[alias].get("BACKEND") in _PROCESS_LOCAL_CACHES:
        return [
            checks.Warning(
                f"SMSFLY['RATE_LIMIT_CACHE'] = {alias!r} is kept in each process, so the "
                "rate limit is not shared between workers.",
                hint="Use a shared cache (Redis, Memcached or the database cache).",
                id="smsfly.W002",
            )
        ]
    return []


def check_task_backend(app_configs: Any = None, **kwargs: Any) -> Messages:
    """``smsfly.E007``: ``TASK_BACKEND`` is an alias in ``settings.TASKS``."""
    conf = _values()
    if conf is None:
        return []
    # Without settings.TASKS the frameworks provide an immediate "default" backend.
    tasks = getattr(settings, "TASKS", None)
    alias = conf["TASK_BACKEND"]
    if (tasks is None and alias == "default") or (tasks is not None and alias in tasks):
        return []
    return [
        checks.Error(
            f"SMSFLY['TASK_BACKEND'] = {alias!r} is not in settings.TASKS.",
            hint="Add it to settings.TASKS or set TASK_BACKEND to a configured alias.",
            id="smsfly.E007",
        )
    ]


def check_send_lease(app_configs: Any = None, **kwargs: Any) -> Messages:
    """``smsfly.E008``: ``SEND_LEASE`` is longer than the longest send can take."""
    conf = _values()
    if conf is None:
        return []
    lease: float = conf["SEND_LEASE"]
    longest = longest_send_seconds(conf)
    if lease > longest:
        return []
    minimum = math.floor(longest) + 1  # the first whole second beyond it
    return [
        checks.Error(
            f"SMSFLY['SEND_LEASE'] = {lease:g} s is not longer than the longest a send can "
            f"take with these settings ({longest:g} s): a lease could run out under a "
            "worker that is only slow, and its message would be marked unknown although "
            "SMS-fly accepts it.",
            hint=f"Set SMSFLY['SEND_LEASE'] to at least {minimum} seconds, or shorten "
            "TIMEOUT, MAX_RETRIES or MAX_RETRY_WAIT.",
            id="smsfly.E008",
        )
    ]


#: The most a one-time code may be guessed, as a chance a day for one number and
#: purpose, before ``smsfly.E009`` reports the ``VERIFICATION`` limits.
GUESS_CHANCE_LIMIT = 0.01


def guess_chance_per_day(verification: dict[str, Any]) -> float | None:
    """The chance that someone guesses a code for one number and purpose in a day.

    They try every attempt (``MAX_ATTEMPTS``) of every code the limits let them have
    sent in a day, each a 1 in ``10 ** CODE_LENGTH`` guess. ``None`` when no limit
    bounds the codes a number can get: the chance grows without end.
    """
    bounds: list[int] = []
    if verification["MAX_PER_RECIPIENT_PER_HOUR"]:
        bounds.append(24 * verification["MAX_PER_RECIPIENT_PER_HOUR"])
    if verification["RESEND_COOLDOWN"]:  # per number and purpose: the case guessed
        bounds.append(math.ceil(86400 / verification["RESEND_COOLDOWN"]))
    if verification["MAX_PER_DAY"]:
        bounds.append(verification["MAX_PER_DAY"])
    if not bounds:
        return None
    guesses = min(bounds) * verification["MAX_ATTEMPTS"]
    return min(1.0, float(guesses / 10 ** verification["CODE_LENGTH"]))


def check_verification_guessing(app_configs: Any = None, **kwargs: Any) -> Messages:
    """``smsfly.E009``: the ``VERIFICATION`` limits keep a code from being guessed."""
    conf = _values()
    if conf is None:
        return []
    chance = guess_chance_per_day(conf["VERIFICATION"])
    if chance is not None and chance <= GUESS_CHANCE_LIMIT:
        return []
    how_likely = (
        "as often as one likes (no limit bounds the codes a number can get)"
        if chance is None
        else f"with a {chance:.1%} chance a day for one number"
    )
    return [
        checks.Error(
            f"SMSFLY['VERIFICATION'] lets one-time codes be guessed {how_likely}: every "
            "wrong try (MAX_ATTEMPTS) of every code the limits allow is a guess of 1 in "
            "10 ** CODE_LENGTH.",
            hint="Keep the chance at 1 % a day or below: raise CODE_LENGTH, or lower "
            "MAX_ATTEMPTS or MAX_PER_RECIPIENT_PER_HOUR, or set RESEND_COOLDOWN or "
            "MAX_PER_DAY (see the One-time codes page of django-smsfly's documentation).",
            id="smsfly.E009",
        )
    ]


#: Every check of the app, each registered once by the app's ``ready()``.
SMSFLY_CHECKS: tuple[Callable[..., Messages], ...] = (
    check_settings_are_valid,
    check_backend,
    check_api_key,
    check_api_url,
    check_region,
    check_sandbox_in_production,
    check_rate_limit_cache,
    check_task_backend,
    check_send_lease,
    check_verification_guessing,
)


def register_checks() -> None:
    """Register :data:`SMSFLY_CHECKS` with Django; registering again changes nothing."""
    for check in SMSFLY_CHECKS:
        checks.register(check, TAG)
