"""Settings of the example site.

Out of the box it needs nothing: SQLite next to ``manage.py`` and django-smsfly's
sandbox backend, so no API key is needed and no message leaves this machine. The
environment changes that:

``SMSFLY_API_KEY``
    A key from SMS-fly's "API settings" page: messages go to the real API.
``SMSFLY_API_URL``
    The API address (default ``https://sms-fly.ua/api/v2/api.php``; the Polish host is
    ``https://sms-fly.pl/api/v2/api.php``).
``SMSFLY_SMS_SOURCE`` / ``SMSFLY_VIBER_SOURCE``
    Sender names (default ``InfoCenter`` / ``Promo``).
``DJANGO_DEBUG``
    ``0`` turns debug mode off (it is on by default: this is a demo).
``DJANGO_SECRET_KEY``, ``DJANGO_ALLOWED_HOSTS``, ``DJANGO_LANGUAGE_CODE``
    As their names say; ``DJANGO_ALLOWED_HOSTS`` is comma-separated.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from django.utils.translation import gettext_lazy as _

#: The directory holding manage.py.
BASE_DIR = Path(__file__).resolve().parent.parent


def _env_flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or not value.strip():
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


DEBUG = _env_flag("DJANGO_DEBUG", default=True)

# The fallback is for the demo only; a deployed site must set DJANGO_SECRET_KEY.
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY") or "example-project-insecure-dev-key"

ALLOWED_HOSTS = [
    host.strip()
    for host in os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost").split(",")
    if host.strip()
]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_smsfly",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "example_project.urls"
WSGI_APPLICATION = "example_project.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": BASE_DIR / "db.sqlite3",
    }
}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

USE_I18N = True
USE_TZ = True
TIME_ZONE = "Europe/Kyiv"
LANGUAGE_CODE = os.environ.get("DJANGO_LANGUAGE_CODE") or "en"
LANGUAGES = [
    ("en", _("English")),
    ("uk", _("Ukrainian")),
]

STATIC_URL = "static/"

# -- django-smsfly ----------------------------------------------------------------------

SMSFLY_API_KEY = os.environ.get("SMSFLY_API_KEY", "").strip()

SMSFLY: dict[str, Any] = {
    "SMS_SOURCE": os.environ.get("SMSFLY_SMS_SOURCE") or "InfoCenter",
    "VIBER_SOURCE": os.environ.get("SMSFLY_VIBER_SOURCE") or "Promo",
}
if SMSFLY_API_KEY:
    # The real API: messages reach phones and cost money.
    SMSFLY["BACKEND"] = "django_smsfly.backends.http.HTTPBackend"
    SMSFLY["API_KEY"] = SMSFLY_API_KEY
    if os.environ.get("SMSFLY_API_URL"):
        SMSFLY["API_URL"] = os.environ["SMSFLY_API_URL"]
else:
    # The in-process simulator: no key, no network, nothing is spent.
    SMSFLY["BACKEND"] = "django_smsfly.backends.sandbox.SandboxBackend"

LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"django_smsfly": {"handlers": ["console"], "level": "INFO"}},
}
