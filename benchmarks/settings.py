"""Django settings for the benchmarks (see benchmarks/run.py and benchmarks/legs.py).

One process runs on one database, chosen by ``SMSFLY_BENCH_LEG``:

- ``sqlite-wal`` (the default): SQLite tuned as a production SQLite site would be (WAL
  journal, ``synchronous=NORMAL``, immediate transactions);
- ``sqlite-default``: SQLite with Django's default settings (rollback journal,
  ``synchronous=FULL``, deferred transactions);
- ``postgresql``: the database in ``SMSFLY_BENCH_PG_URL``
  (``postgres://postgres@127.0.0.1:5432/smsfly_bench`` by default) with Django's default
  settings (no ``OPTIONS``, ``CONN_MAX_AGE=0``);
- ``url``: the database in ``DATABASE_URL``, as it is given (the status sync benchmark
  runs there when ``DATABASE_URL`` is set).

The SQLite files live in ``SMSFLY_BENCH_DIR`` (``/tmp`` by default), one per leg. The API
URL comes in ``SMSFLY_BENCH_URL`` (the harness starts the sandbox server and passes it).
"""

from __future__ import annotations

import os
from typing import Any

import dj_database_url

from benchmarks.legs import leg_from_environment, pg_url, sqlite_path

SECRET_KEY = "benchmarks-only"
DEBUG = False
USE_TZ = True
TIME_ZONE = "Europe/Kyiv"
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django_smsfly",
]

LEG = leg_from_environment()
DATABASES: dict[str, Any]
if LEG == "postgresql":
    DATABASES = {"default": dj_database_url.parse(pg_url())}
elif LEG == "url":
    DATABASES = {"default": dj_database_url.parse(os.environ["DATABASE_URL"])}
elif LEG == "sqlite-default":
    DATABASES = {
        "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(sqlite_path(LEG))}
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(sqlite_path(LEG)),
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
