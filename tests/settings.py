"""Django settings for the test suite.

SQLite in memory by default; set ``DATABASE_URL`` (e.g.
``postgres://postgres@127.0.0.1:5432/smsfly_test``) to run against PostgreSQL.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from typing import Any

SECRET_KEY = "tests-only-not-secret"
DEBUG = False
USE_TZ = True
TIME_ZONE = "Europe/Kyiv"
LANGUAGE_CODE = "en"
# The languages the app is translated into, as a site using it would list them (the
# admin's switch then offers EN / UK, as in the example project).
LANGUAGES = [("en", "English"), ("uk", "Ukrainian")]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django_smsfly",
    # The integrations (django_smsfly.contrib), tested with the real apps.
    "django_otp",
    "django_otp.plugins.otp_static",
    "django_otp.plugins.otp_totp",
    "two_factor",
    "two_factor.plugins.phonenumber",
    "django_smsfly.contrib.otp",
]
# Two-factor would otherwise send the admin's login to its own (LOGIN_URL).
TWO_FACTOR_PATCH_ADMIN = False

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

ROOT_URLCONF = "tests.urls"

# Files a test uploads (campaign lists) go to a folder of the run's own, removed when it
# ends, never into the checkout; tests that look at the files set their own.
MEDIA_ROOT = tempfile.mkdtemp(prefix="smsfly-tests-media-")
atexit.register(shutil.rmtree, MEDIA_ROOT, ignore_errors=True)

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

DATABASES: dict[str, Any]
if os.environ.get("DATABASE_URL"):
    import dj_database_url

    DATABASES = {"default": dj_database_url.parse(os.environ["DATABASE_URL"])}
else:
    DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}

CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# The suite talks to the sandbox unless a test says otherwise; no test needs a network.
SMSFLY = {
    "BACKEND": "django_smsfly.backends.sandbox.SandboxBackend",
    "SMS_SOURCE": "InfoCenter",
    "VIBER_SOURCE": "Promo",
}
