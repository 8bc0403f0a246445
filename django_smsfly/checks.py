"""System checks (``manage.py check``) for the ``SMSFLY`` setting.

=================  =========================================================
``smsfly.E001``    ``SMSFLY`` is malformed (not a dict, unknown key, bad value)
``smsfly.E002``    no ``API_KEY`` while the HTTP backend is used
``smsfly.E003``    ``API_URL`` is not an https URL
``smsfly.E004``    ``DEFAULT_REGION`` is not a region phone numbers know
``smsfly.E005``    ``BACKEND`` cannot be imported or is not a backend
``smsfly.W001``    the sandbox backend is used while ``DEBUG`` is off
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
    return errors
