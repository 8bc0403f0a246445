"""Settings: the ``SMSFLY`` dict in the site's settings, with defaults.

Read through :data:`smsfly_settings`, which reads ``settings.SMSFLY`` on first use,
validates it, caches it and forgets it when ``SMSFLY`` changes (so
``override_settings(SMSFLY=...)`` works in tests)::

    from django_smsfly.conf import smsfly_settings
    smsfly_settings.API_URL
"""

from __future__ import annotations

import difflib
import threading
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver

SETTING_NAME = "SMSFLY"

HTTP_BACKEND = "django_smsfly.backends.http.HTTPBackend"
SANDBOX_BACKEND = "django_smsfly.backends.sandbox.SandboxBackend"

#: Hosts SMS-fly serves the API from.
API_URL_UA = "https://sms-fly.ua/api/v2/api.php"
API_URL_PL = "https://sms-fly.pl/api/v2/api.php"

#: Every setting and its default. Documented in docs/settings.rst.
DEFAULTS: dict[str, Any] = {
    # The key from SMS-fly's "API settings" page. Required unless the sandbox is used.
    "API_KEY": None,
    "API_URL": API_URL_UA,
    "BACKEND": HTTP_BACKEND,
    # Extra keyword arguments for the backend's constructor.
    "BACKEND_OPTIONS": {},
    # Seconds: one number for both, or (connect, read).
    "TIMEOUT": (5.0, 30.0),
    # Retries of requests that are safe to repeat (see docs/errors.rst).
    "MAX_RETRIES": 3,
    # Seconds before the first retry; doubled for each further one.
    "RETRY_BACKOFF": 0.5,
    # The longest a single wait may be, including a server's Retry-After.
    "MAX_RETRY_WAIT": 30.0,
    "SMS_SOURCE": None,
    "VIBER_SOURCE": None,
    "DEFAULT_REGION": "UA",
    # Send "appversion" in the request's auth block so SMS-fly can tell the client.
    "IDENTIFY": True,
    # Status sync: messages claimed per batch, parallel status requests, and the most
    # status requests per second (SMS-fly answers bursts with HTTP 429).
    "SYNC_BATCH_SIZE": 100,
    "SYNC_CONCURRENCY": 4,
    "SYNC_RATE_LIMIT": 10.0,
    # How many times a message refused for a passing reason (HTTP 429, no connection)
    # is tried before it is marked failed.
    "SEND_MAX_ATTEMPTS": 5,
    # The most SENDMESSAGE requests per second, for every worker together when
    # RATE_LIMIT_CACHE is set (None: no limit of the app's own).
    "SEND_RATE_LIMIT": None,
    # A cache alias (Redis, Memcached or the database cache) through which every
    # process shares the send and sync rate limits. None: each process paces itself.
    "RATE_LIMIT_CACHE": None,
    # Seconds a worker's claim on a message it sends holds. A worker that dies leaves the
    # message "sending" this long; then smsfly_sync queues it again (no request had
    # started) or marks it unknown (one had). Keep it well above the longest send,
    # including TIMEOUT, retries and the wait for a rate-limit slot.
    "SEND_LEASE": 300,
    # Seconds a message queued for a background send is left to its task before
    # smsfly_sync sends it itself (the task was lost, or no worker runs).
    "QUEUED_GRACE": 60,
    # The alias in settings.TASKS that background sends and syncs are enqueued on.
    "TASK_BACKEND": "default",
    # Show recipients' numbers as 380501****67 in the admin's lists and in log lines.
    "MASK_RECIPIENTS": False,
    # The admin's balance panel warns when a balance is below this (None: never).
    "BALANCE_WARNING": Decimal("100"),
}


class SmsFlySettings:
    """Attribute access to the ``SMSFLY`` setting merged over :data:`DEFAULTS`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cache: dict[str, Any] | None = None

    def _load(self) -> dict[str, Any]:
        user = getattr(settings, SETTING_NAME, None) or {}
        if not isinstance(user, Mapping):
            raise ImproperlyConfigured(
                f"settings.{SETTING_NAME} must be a dict, not {type(user).__name__}."
            )
        unknown = sorted(set(user) - set(DEFAULTS))
        if unknown:
            hints = []
            for name in unknown:
                close = difflib.get_close_matches(str(name).upper(), DEFAULTS, n=1)
                hints.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
            raise ImproperlyConfigured(
                f"Unknown key(s) in settings.{SETTING_NAME}: {', '.join(hints)}. "
                f"Known keys: {', '.join(DEFAULTS)}."
            )
        values = {**DEFAULTS, **user}
        values["TIMEOUT"] = _timeout(values["TIMEOUT"])
        for name, minimum in (
            ("MAX_RETRIES", 0),
            ("SYNC_BATCH_SIZE", 1),
            ("SYNC_CONCURRENCY", 1),
            ("SEND_MAX_ATTEMPTS", 1),
        ):
            value = values[name]
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ImproperlyConfigured(
                    f"{SETTING_NAME}['{name}'] must be an integer >= {minimum}."
                )
        for name in ("RETRY_BACKOFF", "MAX_RETRY_WAIT", "SYNC_RATE_LIMIT", "QUEUED_GRACE"):
            values[name] = _non_negative(name, values[name])
        values["SEND_LEASE"] = _non_negative("SEND_LEASE", values["SEND_LEASE"])
        if values["SEND_LEASE"] < 1:
            raise ImproperlyConfigured(f"{SETTING_NAME}['SEND_LEASE'] must be at least 1 second.")
        if values["SEND_RATE_LIMIT"] is not None:
            values["SEND_RATE_LIMIT"] = _non_negative("SEND_RATE_LIMIT", values["SEND_RATE_LIMIT"])
        if values["BALANCE_WARNING"] is not None:
            warning = values["BALANCE_WARNING"]
            _non_negative("BALANCE_WARNING", warning)
            values["BALANCE_WARNING"] = Decimal(str(warning))
        for name in (
            "API_KEY",
            "SMS_SOURCE",
            "VIBER_SOURCE",
            "API_URL",
            "BACKEND",
            "RATE_LIMIT_CACHE",
        ):
            if values[name] is not None and not isinstance(values[name], str):
                raise ImproperlyConfigured(f"{SETTING_NAME}['{name}'] must be a string.")
        if not isinstance(values["MASK_RECIPIENTS"], bool):
            raise ImproperlyConfigured(f"{SETTING_NAME}['MASK_RECIPIENTS'] must be True or False.")
        if not isinstance(values["TASK_BACKEND"], str) or not values["TASK_BACKEND"]:
            raise ImproperlyConfigured(f"{SETTING_NAME}['TASK_BACKEND'] must be a task alias.")
        if not isinstance(values["BACKEND_OPTIONS"], Mapping):
            raise ImproperlyConfigured(f"{SETTING_NAME}['BACKEND_OPTIONS'] must be a dict.")
        region = values["DEFAULT_REGION"]
        if not isinstance(region, str):
            raise ImproperlyConfigured(f"{SETTING_NAME}['DEFAULT_REGION'] must be a string.")
        values["DEFAULT_REGION"] = region.upper()
        return values

    def as_dict(self) -> dict[str, Any]:
        """All settings, validated, with defaults filled in."""
        with self._lock:
            if self._cache is None:
                self._cache = self._load()
            return self._cache

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name not in DEFAULTS:
            raise AttributeError(name)
        return self.as_dict()[name]

    def reload(self) -> None:
        """Forget the cached values; the next access reads ``settings.SMSFLY`` again."""
        with self._lock:
            self._cache = None

    @property
    def uses_sandbox(self) -> bool:
        """True when the configured backend is the sandbox (or a subclass path of it)."""
        return bool(self.BACKEND == SANDBOX_BACKEND or "sandbox" in self.BACKEND.lower())

    def __repr__(self) -> str:
        # Never show the key, even partially.
        try:
            values = dict(self.as_dict())
        except ImproperlyConfigured as exc:
            return f"<SmsFlySettings invalid: {exc}>"
        if values.get("API_KEY"):
            values["API_KEY"] = "***"
        return f"<SmsFlySettings {values!r}>"


def _timeout(value: object) -> tuple[float, float]:
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        seconds = _non_negative("TIMEOUT", value)
        return (seconds, seconds)
    if isinstance(value, list | tuple) and len(value) == 2:
        return (_non_negative("TIMEOUT", value[0]), _non_negative("TIMEOUT", value[1]))
    raise ImproperlyConfigured(
        f"{SETTING_NAME}['TIMEOUT'] must be seconds or a (connect, read) pair, not {value!r}."
    )


def _non_negative(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal) or value < 0:
        raise ImproperlyConfigured(f"{SETTING_NAME}['{name}'] must be a number >= 0.")
    if name == "TIMEOUT" and value == 0:
        raise ImproperlyConfigured(f"{SETTING_NAME}['TIMEOUT'] must be greater than 0.")
    return float(value)


#: The one settings object of the app.
smsfly_settings = SmsFlySettings()


@receiver(setting_changed)
def _reload_on_change(*, setting: str, **kwargs: Any) -> None:
    if setting == SETTING_NAME:
        smsfly_settings.reload()
