"""Settings: the ``SMSFLY`` dict in the site's settings, with defaults.

Read through :data:`smsfly_settings`, which reads ``settings.SMSFLY`` on first use,
validates it, caches it and forgets it when ``SMSFLY`` changes (so
``override_settings(SMSFLY=...)`` works in tests)::

    from django_smsfly.conf import smsfly_settings
    smsfly_settings.API_URL

Every key is declared once: its default in :data:`DEFAULTS` and the validator that
checks (and normalizes) a site's value in :data:`VALIDATORS`. Every number must be
finite: NaN and infinities are refused whatever their type.
"""

from __future__ import annotations

import difflib
import math
import threading
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string

from django_smsfly.backends.base import BaseBackend

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
    # started) or marks it unknown (one had). It must exceed longest_send_seconds(),
    # which the smsfly.E008 check enforces.
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


# -- validators: one per kind of value ---------------------------------------------------

#: Checks a site's value for the key it is given and returns it normalized; raises
#: :class:`~django.core.exceptions.ImproperlyConfigured` naming the key otherwise.
Validator = Callable[[str, Any], Any]


def _key(name: str) -> str:
    return f"{SETTING_NAME}['{name}']"


def _finite(name: str, value: object) -> float:
    """``value`` as a float, if it is a finite int, float or Decimal (never a bool)."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise ImproperlyConfigured(f"{_key(name)} must be a number, not {value!r}.")
    try:
        number = float(value)
    except (OverflowError, ValueError):  # an int beyond floats; Decimal("sNaN")
        number = math.nan
    if not math.isfinite(number):
        raise ImproperlyConfigured(f"{_key(name)} must be a finite number, not {value!r}.")
    return number


def _at_least(minimum: float, requirement: str = "") -> Validator:
    """A finite number, at least ``minimum``, as a float."""
    requirement = requirement or f"must be a number >= {minimum:g}"

    def validate(name: str, value: Any) -> float:
        number = _finite(name, value)
        if number < minimum:
            raise ImproperlyConfigured(f"{_key(name)} {requirement}, not {value!r}.")
        return number

    return validate


def _integer(minimum: int) -> Validator:
    """An int (not a bool), at least ``minimum``."""

    def validate(name: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ImproperlyConfigured(f"{_key(name)} must be an integer >= {minimum}.")
        return value

    return validate


def _optional(validator: Validator) -> Validator:
    """``None``, or what ``validator`` accepts."""

    def validate(name: str, value: Any) -> Any:
        return None if value is None else validator(name, value)

    return validate


def _decimal(name: str, value: Any) -> Decimal:
    """A finite number >= 0, or a string of one, as a Decimal: money."""
    amount: Decimal | None = None
    if isinstance(value, int | Decimal) and not isinstance(value, bool):
        amount = Decimal(value)
    elif isinstance(value, float | str):
        try:
            amount = Decimal(str(value).strip())
        except ArithmeticError:  # decimal.InvalidOperation: not a number
            amount = None
    if amount is None or not amount.is_finite() or amount < 0:
        raise ImproperlyConfigured(f"{_key(name)} must be a finite number >= 0, not {value!r}.")
    return amount


def _timeout(name: str, value: Any) -> tuple[float, float]:
    """Seconds greater than 0: one number for both, or a (connect, read) pair."""
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        pair: tuple[Any, ...] = (value, value)
    elif isinstance(value, list | tuple) and len(value) == 2:
        pair = tuple(value)
    else:
        raise ImproperlyConfigured(
            f"{_key(name)} must be seconds or a (connect, read) pair, not {value!r}."
        )
    connect, read = (_finite(name, seconds) for seconds in pair)
    if connect <= 0 or read <= 0:
        raise ImproperlyConfigured(f"{_key(name)} must be greater than 0.")
    return (connect, read)


def _string(name: str, value: Any) -> str:
    if not isinstance(value, str):
        # The value is not shown: it may be the API key.
        raise ImproperlyConfigured(f"{_key(name)} must be a string.")
    return value


def _alias(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ImproperlyConfigured(f"{_key(name)} must be a task alias.")
    return value


def _region(name: str, value: Any) -> str:
    return _string(name, value).upper()


def _bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ImproperlyConfigured(f"{_key(name)} must be True or False.")
    return value


def _mapping(name: str, value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ImproperlyConfigured(f"{_key(name)} must be a dict.")
    return value


#: How every setting is checked, in the order of :data:`DEFAULTS`.
VALIDATORS: dict[str, Validator] = {
    "API_KEY": _optional(_string),
    "API_URL": _string,
    "BACKEND": _string,
    "BACKEND_OPTIONS": _mapping,
    "TIMEOUT": _timeout,
    "MAX_RETRIES": _integer(0),
    "RETRY_BACKOFF": _at_least(0),
    "MAX_RETRY_WAIT": _at_least(0),
    "SMS_SOURCE": _optional(_string),
    "VIBER_SOURCE": _optional(_string),
    "DEFAULT_REGION": _region,
    "IDENTIFY": _bool,
    "SYNC_BATCH_SIZE": _integer(1),
    "SYNC_CONCURRENCY": _integer(1),
    "SYNC_RATE_LIMIT": _at_least(0),
    "SEND_MAX_ATTEMPTS": _integer(1),
    "SEND_RATE_LIMIT": _optional(_at_least(0)),
    "RATE_LIMIT_CACHE": _optional(_string),
    "SEND_LEASE": _at_least(1, "must be at least 1 second"),
    "QUEUED_GRACE": _at_least(0),
    "TASK_BACKEND": _alias,
    "MASK_RECIPIENTS": _bool,
    "BALANCE_WARNING": _optional(_decimal),
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
        _refuse_unknown(user)
        values = {**DEFAULTS, **user}
        return {name: validate(name, values[name]) for name, validate in VALIDATORS.items()}

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
    def backend_class(self) -> type[BaseBackend]:
        """The backend class ``BACKEND`` names.

        Raises :class:`~django.core.exceptions.ImproperlyConfigured` when it cannot be
        imported or is not a :class:`~django_smsfly.backends.base.BaseBackend` subclass.
        """
        path: str = self.BACKEND
        try:
            backend = import_string(path)
        except ImportError as exc:
            raise ImproperlyConfigured(
                f"{_key('BACKEND')}: cannot import {path!r}: {exc}"
            ) from exc
        if not (isinstance(backend, type) and issubclass(backend, BaseBackend)):
            raise ImproperlyConfigured(
                f"{_key('BACKEND')}: {path!r} is not a django_smsfly backend class."
            )
        return backend

    @property
    def requires_api_key(self) -> bool:
        """Whether the configured backend needs ``API_KEY`` (the sandbox does not)."""
        return self.backend_class.requires_api_key

    @property
    def uses_sandbox(self) -> bool:
        """True when the configured backend reaches no phones (the sandbox or its like).

        Told by the backend's :attr:`~django_smsfly.backends.base.BaseBackend.reaches_phones`
        flag, never by its dotted path.
        """
        return not self.backend_class.reaches_phones

    def __repr__(self) -> str:
        # Never show the key, even partially.
        try:
            values = dict(self.as_dict())
        except ImproperlyConfigured as exc:
            return f"<SmsFlySettings invalid: {exc}>"
        if values.get("API_KEY"):
            values["API_KEY"] = "***"
        return f"<SmsFlySettings {values!r}>"


def _refuse_unknown(user: Mapping[Any, Any]) -> None:
    unknown = sorted(set(user) - set(DEFAULTS), key=str)
    if not unknown:
        return
    hints = []
    for name in unknown:
        close = difflib.get_close_matches(str(name).upper(), DEFAULTS, n=1)
        hints.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    raise ImproperlyConfigured(
        f"Unknown key(s) in settings.{SETTING_NAME}: {', '.join(hints)}. "
        f"Known keys: {', '.join(DEFAULTS)}."
    )


#: Seconds :func:`longest_send_seconds` adds for what surrounds the request: the
#: database writes that claim the message and mark the request as leaving, and a wait
#: for a send-rate slot longer than one slot (other workers took the next ones).
SLOT_WAIT_MARGIN = 1.0


def longest_send_seconds(values: Mapping[str, Any] | None = None) -> float:
    """The longest, in seconds, one send of one message can take under its claim.

    ``values`` are validated settings, as :meth:`SmsFlySettings.as_dict` returns them
    (by default the current ones). ``SEND_LEASE`` must be longer than this, or a lease
    could run out under a worker that is only slow: its message would be marked
    unknown while the request it made is accepted (the ``smsfly.E008`` check).

    It follows what the HTTP backend does with a ``SENDMESSAGE``, which it repeats only
    where nothing can have been sent (a failed connection, HTTP 429):

    * ``MAX_RETRIES + 1`` attempts, each waiting at most the connect timeout plus the
      read timeout (``TIMEOUT``);
    * between two attempts, one wait of at most ``MAX_RETRY_WAIT``. The backoff
      (``RETRY_BACKOFF``, doubled each time) is capped there, and an HTTP 429 with a
      ``Retry-After`` of up to ``MAX_RETRY_WAIT`` is waited out in full, so every wait
      can reach the cap whatever ``RETRY_BACKOFF`` is; a longer ``Retry-After`` ends the
      send at once instead;
    * the wait for a send-rate slot: one slot (``1 / SEND_RATE_LIMIT``) when a limit is
      set, plus :data:`SLOT_WAIT_MARGIN`.

    The read timeout bounds each wait for data rather than the whole reply, so a server
    that trickles its reply byte by byte could take longer still; a lease well above
    this minimum leaves room for that.
    """
    conf = smsfly_settings.as_dict() if values is None else values
    connect, read = conf["TIMEOUT"]
    retries: int = conf["MAX_RETRIES"]
    requests = (retries + 1) * (connect + read)
    waits = retries * conf["MAX_RETRY_WAIT"]
    rate = conf["SEND_RATE_LIMIT"]
    slot = 1.0 / rate if rate else 0.0
    return float(requests + waits + slot + SLOT_WAIT_MARGIN)


#: The one settings object of the app.
smsfly_settings = SmsFlySettings()


@receiver(setting_changed)
def _reload_on_change(*, setting: str, **kwargs: Any) -> None:
    if setting == SETTING_NAME:
        smsfly_settings.reload()
