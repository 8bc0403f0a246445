"""Settings of the example site, read from the environment with django-environ.

Besides the admin, the site has a "verify your phone" page (``/verify/``, on
:mod:`django_smsfly.verification`) and two-factor login with django-two-factor-auth
(``/account/login/``, codes sent through ``django_smsfly.contrib.two_factor``); the
``demo`` app holds their pages.

Out of the box it needs nothing: SQLite next to ``manage.py`` and django-smsfly's
sandbox backend, so no API key is needed and no message leaves this machine. Variables
come from the environment or from a ``.env`` file next to ``manage.py`` (variables
already in the environment win); ``.env.example`` lists every one with its default:

``SMSFLY_API_KEY``
    A key from SMS-fly's "API settings" page: messages go to the real API and cost
    money. Without it (or empty) the sandbox answers.
``SMSFLY_API_URL``
    The API address (default ``https://sms-fly.ua/api/v2/api.php``; the Polish host is
    ``https://sms-fly.pl/api/v2/api.php``).
``SMSFLY_SMS_SOURCE`` / ``SMSFLY_VIBER_SOURCE``
    Sender names (default ``InfoCenter`` / ``Promo``).
``SMSFLY_SANDBOX_SPEED``
    How much faster than real time the sandbox moves statuses (default ``0.5``: an SMS
    is delivered 12 seconds after it is sent, so each step can be watched).
``DEMO_SYNC_INTERVAL``
    Seconds between the status checks of ``run_demo.py`` (default ``5``).
``DJANGO_DEBUG``
    ``0`` turns debug mode off (it is on by default: this is a demo).
``DJANGO_SECRET_KEY``, ``DJANGO_ALLOWED_HOSTS``, ``DJANGO_LANGUAGE_CODE``, ``DJANGO_TIME_ZONE``
    As their names say; ``DJANGO_ALLOWED_HOSTS`` is comma-separated.
``DATABASE_URL``
    The database as a URL (default: ``db.sqlite3`` next to ``manage.py``), e.g.
    ``postgres://user:password@127.0.0.1:5432/smsfly_demo``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import environ
from django.utils.translation import gettext_lazy as _

#: The directory holding manage.py (and the optional .env file).
BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# A missing file is fine: everything has a default.
environ.Env.read_env(BASE_DIR / ".env")

DEBUG = env.bool("DJANGO_DEBUG", default=True)

# The fallback is for the demo only; a deployed site must set DJANGO_SECRET_KEY.
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="") or "example-project-insecure-dev-key"

ALLOWED_HOSTS: list[str] = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    # The site's name is in the codes' texts and two-factor's QR codes (bootstrap.py
    # names the demo's site).
    "django.contrib.sites",
    # Before two_factor: its templates replace two-factor's base (no CDN, the sandbox box).
    "demo",
    "django_otp",
    "django_otp.plugins.otp_static",
    "django_otp.plugins.otp_totp",
    "two_factor",
    "two_factor.plugins.phonenumber",
    # The demo's task worker keeps its queue in the site's database (run_demo.py starts
    # `manage.py db_worker` beside the site): background sends and campaigns run there.
    "django_tasks_db",
    "django_smsfly",
]

SITE_ID = 1

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The admin in the browser's language: English or Ukrainian.
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # request.user.is_verified(): logged in with a second factor.
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "example_project.urls"
WSGI_APPLICATION = "example_project.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # The language switch on every admin page (templates/admin/base_site.html).
        "DIRS": [BASE_DIR / "templates"],
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

DATABASES: dict[str, dict[str, Any]] = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The site and the status sync are two processes writing one file: take the write
    # lock when a transaction starts and wait for it (rather than fail with "database is
    # locked"), and let readers go on while the other process writes (WAL).
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL;",
        }
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

USE_I18N = True
USE_TZ = True
TIME_ZONE = env.str("DJANGO_TIME_ZONE", default="Europe/Kyiv")
LANGUAGE_CODE = env.str("DJANGO_LANGUAGE_CODE", default="en")
LANGUAGES = [
    ("en", _("English")),
    ("uk", _("Ukrainian")),
]

STATIC_URL = "static/"

# -- django-smsfly ----------------------------------------------------------------------

SMSFLY_API_KEY = env.str("SMSFLY_API_KEY", default="").strip()

SMSFLY: dict[str, Any] = {
    "SMS_SOURCE": env.str("SMSFLY_SMS_SOURCE", default="InfoCenter"),
    "VIBER_SOURCE": env.str("SMSFLY_VIBER_SOURCE", default="Promo"),
}
if SMSFLY_API_KEY:
    # The real API: messages reach phones and cost money.
    SMSFLY["BACKEND"] = "django_smsfly.backends.http.HTTPBackend"
    SMSFLY["API_KEY"] = SMSFLY_API_KEY
    if env.str("SMSFLY_API_URL", default=""):
        SMSFLY["API_URL"] = env.str("SMSFLY_API_URL")
else:
    # The in-process simulator: no key, no network, nothing is spent. Each process has
    # its own; a status depends only on the message id and the time, and the account
    # (balances, refunds) is shared through a file beside manage.py, so the site, the
    # sync loop and smsfly_balance all see the same balance.
    SMSFLY["BACKEND"] = "django_smsfly.backends.sandbox.SandboxBackend"
    SMSFLY["BACKEND_OPTIONS"] = {
        "speed": env.float("SMSFLY_SANDBOX_SPEED", default=0.5),
        "state_file": str(BASE_DIR / "sandbox-account.json"),
    }

# Background work (send_*(..., defer=True), campaigns) goes to a real worker.
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}

# Uploaded campaign files are kept here.
MEDIA_ROOT = BASE_DIR / "media"
MEDIA_URL = "media/"

# -- two-factor login (django-two-factor-auth) ------------------------------------------

# Its tokens go out through django-smsfly: sensitive messages, in the visitor's language,
# under the limits of SMSFLY["VERIFICATION"]. SMS-fly makes no calls: no call gateway.
TWO_FACTOR_SMS_GATEWAY = "django_smsfly.contrib.two_factor.Gateway"
LOGIN_URL = "two_factor:login"
LOGIN_REDIRECT_URL = "demo:private"
# The admin keeps its own password login in the demo (log in as admin / admin); a real
# site would send its staff through two-factor (see docs/two_factor.rst).
TWO_FACTOR_PATCH_ADMIN = False
# Numbers written without a country code are Ukrainian, as for django-smsfly.
PHONENUMBER_DEFAULT_REGION = "UA"

#: Seconds between the runs of ``smsfly_sync --loop`` that ``run_demo.py`` starts.
DEMO_SYNC_INTERVAL = env.float("DEMO_SYNC_INTERVAL", default=5.0)

LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"django_smsfly": {"handlers": ["console"], "level": "INFO"}},
}
