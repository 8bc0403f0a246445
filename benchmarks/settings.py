"""Django settings for the benchmarks (see benchmarks/README.rst).

SQLite in a temporary file, tuned as a production SQLite site would be (WAL journal,
``synchronous=NORMAL``); or the database in ``DATABASE_URL``. The API URL of the
sandbox server the harness started comes in ``SMSFLY_BENCH_URL``.
"""

from __future__ import annotations

import os
from typing import Any

SECRET_KEY = "benchmarks-only"
DEBUG = False
USE_TZ = True
TIME_ZONE = "Europe/Kyiv"
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django_smsfly",
]
DATABASES: dict[str, Any]
if os.environ.get("DATABASE_URL"):
    import dj_database_url

    DATABASES = {"default": dj_database_url.parse(os.environ["DATABASE_URL"])}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get("SMSFLY_BENCH_DB", "/tmp/smsfly-bench.sqlite3"),
            "OPTIONS": {
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "transaction_mode": "IMMEDIATE",
            },
        }
    }
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
SMSFLY = {
    "API_KEY": "benchmark-key",
    "API_URL": os.environ.get("SMSFLY_BENCH_URL", "http://127.0.0.1:8765/api/v2/api.php"),
    "SMS_SOURCE": "InfoCenter",
    "VIBER_SOURCE": "Promo",
    "SYNC_RATE_LIMIT": 0,  # the benchmarks measure throughput, not pacing
    "BACKEND_OPTIONS": {"pool_size": 32},
}
