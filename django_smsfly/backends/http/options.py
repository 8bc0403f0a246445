"""Checking the HTTP backend's constructor arguments, so a bad setting fails at start-up.

Each check returns the value normalized or raises
:class:`~django.core.exceptions.ImproperlyConfigured` naming what is wrong.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from django.core.exceptions import ImproperlyConfigured


def check_url(url: str) -> str:
    """``url`` if it is an ``https://`` address (``http://`` only for a loopback host)."""
    if not isinstance(url, str) or not url:
        raise ImproperlyConfigured("The SMS-fly API URL is missing.")
    parts = urlsplit(url)
    if parts.scheme not in {"https", "http"} or not parts.hostname:
        raise ImproperlyConfigured(
            f"The SMS-fly API URL must be an https:// address, not {url_without_userinfo(url)!r}."
        )
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ImproperlyConfigured(
            "The SMS-fly API URL must use https://: the API key would travel unencrypted "
            f"to {parts.hostname}. (Plain http:// is allowed only for loopback test servers.)"
        )
    return url


def url_without_userinfo(url: str) -> str:
    """``url`` without a user name or password, fit for log lines and messages."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    netloc = parts.hostname or ""
    if parts.port is not None:
        netloc = f"{netloc}:{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def check_timeout(
    value: object,
    *,
    name: str = "timeout",
    numbers: tuple[type, ...] = (int, float),
    seconds: Callable[[object], float] | None = None,
) -> tuple[float, float]:
    """``(connect, read)`` seconds from one number for both or a pair, each above 0.

    The one rule for a timeout, also for the ``TIMEOUT`` setting, which names itself
    (``name``), takes more kinds of ``numbers`` and checks each with its own ``seconds``
    (default: :func:`check_seconds`).
    """
    if isinstance(value, numbers) and not isinstance(value, bool):
        pair: tuple[Any, ...] = (value, value)
    elif isinstance(value, tuple | list) and len(value) == 2:
        pair = tuple(value)
    else:
        raise ImproperlyConfigured(
            f"{name} must be seconds or a (connect, read) pair, not {value!r}."
        )
    check = seconds or (lambda item: check_seconds(name, item))
    connect, read = (check(item) for item in pair)
    if connect <= 0 or read <= 0:
        raise ImproperlyConfigured(f"{name} must be greater than 0.")
    return (connect, read)


def check_seconds(name: str, value: object) -> float:
    """``value`` as a float number of seconds, 0 or more."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise ImproperlyConfigured(f"{name} must be a number of seconds >= 0, not {value!r}.")
    return float(value)


def check_int(name: str, value: object, *, minimum: int) -> int:
    """``value`` if it is an integer of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ImproperlyConfigured(f"{name} must be an integer >= {minimum}, not {value!r}.")
    return value


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
