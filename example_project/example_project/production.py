"""Production settings of the example site: ``DJANGO_SETTINGS_MODULE=example_project.production``.

Everything in :mod:`example_project.settings`, hardened for a site behind HTTPS, and
refusing to start without what production needs: ``DJANGO_SECRET_KEY``,
``DJANGO_ALLOWED_HOSTS`` and ``SMSFLY_API_KEY`` (a production site sends for real).
``manage.py check --deploy`` passes with these settings (the test suite checks it).
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

from example_project.settings import *  # noqa: F403
from example_project.settings import SMSFLY_API_KEY, env

DEBUG = False

SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="")
if len(SECRET_KEY) < 50:
    raise ImproperlyConfigured("Set DJANGO_SECRET_KEY to a random value of 50+ characters.")

ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=[])
if not ALLOWED_HOSTS:
    raise ImproperlyConfigured("Set DJANGO_ALLOWED_HOSTS to the site's host names.")

if not SMSFLY_API_KEY:
    raise ImproperlyConfigured("Set SMSFLY_API_KEY: a production site sends real messages.")

# HTTPS only: cookies never travel in clear text, browsers remember to use HTTPS.
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True

# Operators see numbers masked in lists and log lines (the message page shows them).
SMSFLY = {**SMSFLY, "MASK_RECIPIENTS": env.bool("SMSFLY_MASK_RECIPIENTS", default=True)}  # noqa: F405

STATIC_ROOT = env.str("DJANGO_STATIC_ROOT", default=str(BASE_DIR / "staticfiles"))  # noqa: F405
