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

import datetime as dt
import difflib
import math
import re
import threading
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

import phonenumbers
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.functional import Promise
from django.utils.module_loading import import_string

from django_smsfly.backends.base import BaseBackend
from django_smsfly.backends.http.options import check_timeout

SETTING_NAME = "SMSFLY"

HTTP_BACKEND = "django_smsfly.backends.http.HTTPBackend"
SANDBOX_BACKEND = "django_smsfly.backends.sandbox.SandboxBackend"

#: Hosts SMS-fly serves the API from.
API_URL_UA = "https://sms-fly.ua/api/v2/api.php"
API_URL_PL = "https://sms-fly.pl/api/v2/api.php"

#: ``SMSFLY["VERIFICATION"]``: one-time codes (:mod:`django_smsfly.verification`). A
#: site's dict is merged over these key by key. Documented in docs/settings.rst.
VERIFICATION_DEFAULTS: dict[str, Any] = {
    # Digits in a code, and seconds it can be used for.
    "CODE_LENGTH": 6,
    "TTL": 300,
    # Wrong tries that make a code unusable (the right one fails too after them).
    "MAX_ATTEMPTS": 5,
    # Seconds before another code may go to the same number for the same purpose.
    "RESEND_COOLDOWN": 60,
    # Codes in any rolling hour to one number (every purpose), and from one client
    # address (an IPv6 client by its /64 network); None: no limit.
    "MAX_PER_RECIPIENT_PER_HOUR": 5,
    "MAX_PER_IP_PER_HOUR": 20,
    # Codes a day for the whole site, and their estimated cost a day; None: no limit.
    "MAX_PER_DAY": None,
    "DAILY_SPEND_LIMIT": None,
    # Countries (ISO 3166 codes) codes are sent to; None: DEFAULT_REGION only.
    "ALLOWED_REGIONS": None,
    # The text, with %(code)s and optionally %(site)s and %(minutes)s; None: the
    # built-in translated text.
    "TEXT": None,
    # The site's name in the text; None: django.contrib.sites' name, else "our site".
    "SITE_NAME": None,
    # Proxies in front of the site that append to IP_HEADER; 0: REMOTE_ADDR only.
    "TRUSTED_PROXIES": 0,
    "IP_HEADER": "X-Forwarded-For",
}

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
    # Countries (ISO 3166 codes) messages may go to; a number elsewhere is refused
    # before any request (SMS-fly routes Ukrainian and Polish numbers).
    "ALLOWED_REGIONS": ("UA", "PL"),
    # The most parts one SMS may take (a longer text is refused before it is stored).
    "MAX_SMS_PARTS": 10,
    # Campaign messages are not sent in these hours of the recipient's time zone:
    # {"START": "21:00", "END": "09:00"} defers them to the window's end. None: any time.
    "QUIET_HOURS": None,
    # One-time codes: see VERIFICATION_DEFAULTS.
    "VERIFICATION": VERIFICATION_DEFAULTS,
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
    return check_timeout(
        value,
        name=_key(name),
        numbers=(int, float, Decimal),
        seconds=lambda seconds: _finite(name, seconds),
    )


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


# -- SMSFLY["VERIFICATION"] ----------------------------------------------------------------


def _between(minimum: float, maximum: float) -> Validator:
    """A finite number from ``minimum`` to ``maximum``, as a float."""

    def validate(name: str, value: Any) -> float:
        number = _finite(name, value)
        if not minimum <= number <= maximum:
            raise ImproperlyConfigured(
                f"{_key(name)} must be from {minimum:g} to {maximum:g}, not {value!r}."
            )
        return number

    return validate


def _integer_between(minimum: int, maximum: int) -> Validator:
    """An int (not a bool) from ``minimum`` to ``maximum``."""

    def validate(name: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ImproperlyConfigured(f"{_key(name)} must be an integer, not {value!r}.")
        if not minimum <= value <= maximum:
            raise ImproperlyConfigured(
                f"{_key(name)} must be from {minimum} to {maximum}, not {value!r}."
            )
        return value

    return validate


def _regions(name: str, value: Any) -> tuple[str, ...] | None:
    """None, or a non-empty list of regions phone numbers are known for, upper-cased."""
    if value is None:
        return None
    if isinstance(value, str) or not isinstance(value, list | tuple | set | frozenset):
        raise ImproperlyConfigured(f"{_key(name)} must be a list of country codes.")
    regions = tuple(dict.fromkeys(_region(name, region) for region in sorted(value, key=str)))
    if not regions:
        raise ImproperlyConfigured(
            f"{_key(name)} must name at least one country (None: DEFAULT_REGION only)."
        )
    unknown = [region for region in regions if region not in phonenumbers.SUPPORTED_REGIONS]
    if unknown:
        raise ImproperlyConfigured(
            f"{_key(name)}: {', '.join(map(repr, unknown))} is not a region phone numbers "
            "are known for; use two-letter ISO 3166 codes such as 'UA' or 'PL'."
        )
    return regions


def _send_regions(name: str, value: Any) -> tuple[str, ...]:
    """A non-empty list of regions (``None`` is not allowed here: list them)."""
    regions = _regions(name, value)
    if regions is None:
        raise ImproperlyConfigured(f"{_key(name)} must be a list of country codes.")
    return regions


_CLOCK = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


def _clock(name: str, value: Any) -> dt.time:
    if isinstance(value, dt.time):
        return value.replace(tzinfo=None)
    match = _CLOCK.match(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise ImproperlyConfigured(f"{_key(name)} must be a time of day such as '21:00'.")
    return dt.time(int(match.group(1)), int(match.group(2)))


def _quiet_hours(name: str, value: Any) -> dict[str, dt.time]:
    """``{"START": "21:00", "END": "09:00"}``: a window that may span midnight."""
    hours = _mapping(name, value)
    _refuse_unknown(hours, {"START": None, "END": None}, where=_key(name))
    missing = [key for key in ("START", "END") if key not in hours]
    if missing:
        raise ImproperlyConfigured(f"{_key(name)} needs START and END ('21:00', '09:00').")
    start = _clock(f"{name}']['START", hours["START"])
    end = _clock(f"{name}']['END", hours["END"])
    if start == end:
        raise ImproperlyConfigured(f"{_key(name)}: START and END must differ.")
    return {"START": start, "END": end}


#: What a code's text may hold: its values, and %% for a percent sign.
_PLACEHOLDER = re.compile(r"%%|%\((?:code|site|minutes)\)s")
#: A code, a site's name and a lifetime to try a text with.
_SAMPLE_CODE = "\x00CODE\x00"
_SAMPLE = {"code": _SAMPLE_CODE, "site": "example.com", "minutes": 5}


def _code_text(name: str, value: Any) -> str | Promise | None:
    """None, or a text (a lazy translation too: kept lazy) that shows ``%(code)s``."""
    if value is None:
        return None
    if not isinstance(value, str | Promise):
        raise ImproperlyConfigured(f"{_key(name)} must be a string.")
    template = str(value)
    # A lone "%" would format the whole dict of values ("100% sure" reads "% s").
    if "%" in _PLACEHOLDER.sub("", template):
        raise ImproperlyConfigured(
            f"{_key(name)} can use only %(code)s, %(site)s and %(minutes)s, "
            "with %% for a percent sign."
        )
    text = template % _SAMPLE
    if _SAMPLE_CODE not in text:
        raise ImproperlyConfigured(f"{_key(name)} must contain %(code)s.")
    return value


def _header(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or not value.isascii():
        raise ImproperlyConfigured(f"{_key(name)} must be an HTTP header name.")
    return value.strip()


#: How every key of ``SMSFLY["VERIFICATION"]`` is checked, in the order of
#: :data:`VERIFICATION_DEFAULTS`.
VERIFICATION_VALIDATORS: dict[str, Validator] = {
    "CODE_LENGTH": _integer_between(4, 10),
    "TTL": _between(10, 86400),
    "MAX_ATTEMPTS": _integer_between(1, 100),
    "RESEND_COOLDOWN": _between(0, 86400),
    "MAX_PER_RECIPIENT_PER_HOUR": _optional(_integer(1)),
    "MAX_PER_IP_PER_HOUR": _optional(_integer(1)),
    "MAX_PER_DAY": _optional(_integer(1)),
    "DAILY_SPEND_LIMIT": _optional(_decimal),
    "ALLOWED_REGIONS": _regions,
    "TEXT": _code_text,
    "SITE_NAME": _optional(_string),
    "TRUSTED_PROXIES": _integer_between(0, 20),
    "IP_HEADER": _header,
}


def _verification(name: str, value: Any) -> dict[str, Any]:
    """A dict of known keys merged over :data:`VERIFICATION_DEFAULTS`, each validated."""
    user = _mapping(name, value)
    _refuse_unknown(user, VERIFICATION_DEFAULTS, where=_key(name))
    values = {**VERIFICATION_DEFAULTS, **user}
    # "VERIFICATION']['TTL" makes _key() name the inner key: SMSFLY['VERIFICATION']['TTL'].
    return {
        key: validate(f"{name}']['{key}", values[key])
        for key, validate in VERIFICATION_VALIDATORS.items()
    }


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
    "ALLOWED_REGIONS": _send_regions,
    "MAX_SMS_PARTS": _integer_between(1, 255),
    "QUIET_HOURS": _optional(_quiet_hours),
    "VERIFICATION": _verification,
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


def _refuse_unknown(
    user: Mapping[Any, Any],
    known: Mapping[str, Any] = DEFAULTS,
    *,
    where: str = f"settings.{SETTING_NAME}",
) -> None:
    unknown = sorted(set(user) - set(known), key=str)
    if not unknown:
        return
    hints = []
    for name in unknown:
        close = difflib.get_close_matches(str(name).upper(), known, n=1)
        hints.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    raise ImproperlyConfigured(
        f"Unknown key(s) in {where}: {', '.join(hints)}. Known keys: {', '.join(known)}."
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
