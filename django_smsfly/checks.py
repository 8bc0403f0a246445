"""System checks (``manage.py check``) for the ``SMSFLY`` setting.

=================  =========================================================
``smsfly.E001``    ``SMSFLY`` is malformed (not a dict, unknown key, bad value)
``smsfly.E002``    no ``API_KEY`` while the HTTP backend is used
``smsfly.E003``    ``API_URL`` is not an https URL
``smsfly.E004``    ``DEFAULT_REGION`` is not a region phone numbers know
``smsfly.E005``    ``BACKEND`` cannot be imported or is not a backend
``smsfly.E006``    ``RATE_LIMIT_CACHE`` names no cache in ``settings.CACHES``
``smsfly.E007``    ``TASK_BACKEND`` names no backend in ``settings.TASKS``
``smsfly.W001``    the sandbox backend is used while ``DEBUG`` is off
``smsfly.W002``    ``RATE_LIMIT_CACHE`` is a cache each process keeps for itself
=================  =========================================================
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import phonenumbers
from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from django_smsfly.backends.base import BaseBackend
from django_smsfly.conf import API_URL_PL, API_URL_UA, HTTP_BACKEND, smsfly_settings


@checks.register("django_smsfly")
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Check ``settings.SMSFLY``; each problem comes with a hint on how to fix it."""
    try:
        conf = smsfly_settings.as_dict()
    except ImproperlyConfigured as exc:
        return [
            checks.Error(
                str(exc),
                hint="See the settings reference in django-smsfly's documentation.",
                id="smsfly.E001",
            )
        ]
    errors: list[checks.CheckMessage] = []
    backend_path: str = conf["BACKEND"]
    try:
        backend = import_string(backend_path)
    except ImportError:
        backend = None
    if not (isinstance(backend, type) and issubclass(backend, BaseBackend)):
        errors.append(
            checks.Error(
                f"SMSFLY['BACKEND'] = {backend_path!r} is not a django_smsfly backend.",
                hint=f"Use {HTTP_BACKEND!r} or 'django_smsfly.backends.sandbox.SandboxBackend'.",
                id="smsfly.E005",
            )
        )
    if not conf["API_KEY"] and not smsfly_settings.uses_sandbox:
        errors.append(
            checks.Error(
                "SMSFLY['API_KEY'] is not set, so no message can be sent.",
                hint="Copy the key from the 'API settings' page of your SMS-fly account, or "
                "set SMSFLY['BACKEND'] to 'django_smsfly.backends.sandbox.SandboxBackend' "
                "for development.",
                id="smsfly.E002",
            )
        )
    url = urlsplit(conf["API_URL"] or "")
    if url.scheme != "https" or not url.hostname or " " in (conf["API_URL"] or ""):
        local = url.scheme == "http" and url.hostname in {"127.0.0.1", "localhost", "::1"}
        if not local:  # a local sandbox server over plain HTTP is fine
            errors.append(
                checks.Error(
                    f"SMSFLY['API_URL'] = {conf['API_URL']!r} is not an https:// URL.",
                    hint=f"Use {API_URL_UA!r} (Ukraine) or {API_URL_PL!r} (Poland).",
                    id="smsfly.E003",
                )
            )
    region = conf["DEFAULT_REGION"]
    if region not in phonenumbers.SUPPORTED_REGIONS:
        errors.append(
            checks.Error(
                f"SMSFLY['DEFAULT_REGION'] = {region!r} is not a known region.",
                hint="Use a two-letter ISO 3166 country code such as 'UA' or 'PL'.",
                id="smsfly.E004",
            )
        )
    if smsfly_settings.uses_sandbox and not settings.DEBUG:
        errors.append(
            checks.Warning(
                "The SMS-fly sandbox backend is in use while DEBUG is off: "
                "no message will reach a phone.",
                hint="Set SMSFLY['BACKEND'] to 'django_smsfly.backends.http.HTTPBackend' "
                "(the default) and SMSFLY['API_KEY'] in production.",
                id="smsfly.W001",
            )
        )
    errors.extend(_check_shared_rate_limit(conf))
    errors.extend(_check_task_backend(conf))
    return errors


#: Caches that live in one process: a rate limit kept in them is not shared.
_PROCESS_LOCAL_CACHES = {
    "django.core.cache.backends.locmem.LocMemCache",
    "django.core.cache.backends.dummy.DummyCache",
}


def _check_shared_rate_limit(conf: dict[str, Any]) -> list[checks.CheckMessage]:
    alias = conf["RATE_LIMIT_CACHE"]
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


def _check_task_backend(conf: dict[str, Any]) -> list[checks.CheckMessage]:
    # Without settings.TASKS the frameworks provide an immediate "default" backend.
    tasks = getattr(settings, "TASKS", None)
    alias = conf["TASK_BACKEND"]
    if tasks is None and alias == "default":
        return []
    if tasks is None or alias not in tasks:
        return [
            checks.Error(
                f"SMSFLY['TASK_BACKEND'] = {alias!r} is not in settings.TASKS.",
                hint="Add it to settings.TASKS or set TASK_BACKEND to a configured alias.",
                id="smsfly.E007",
            )
        ]
    return []
