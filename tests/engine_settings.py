"""Django settings for the processes the engine tests and the bulk benchmark start.

The test process cannot share pytest-django's test database with workers it starts, so
those processes run with these settings instead: a PostgreSQL database of their own,
the SMS-fly sandbox reached over real HTTP, and one real task engine. Everything that
differs between runs comes from the environment:

``SMSFLY_ENGINE``
    ``db`` (django-tasks-db workers), ``rq`` (RQ through django-tasks-rq) or ``celery``
    (Celery through django-tasks-celery).
``SMSFLY_ENGINE_DB``
    The PostgreSQL database, on ``SMSFLY_ENGINE_PG`` (default
    ``postgres://postgres@127.0.0.1:5432``).
``SMSFLY_ENGINE_API_URL``
    The URL of the sandbox server the test process serves.
``SMSFLY_ENGINE_REDIS``
    The Redis server (default ``redis://127.0.0.1:6379``); ``SMSFLY_ENGINE_RQ_DB`` and
    ``SMSFLY_ENGINE_CACHE_DB`` are the database numbers of RQ's queue and of the shared
    rate limit, and ``SMSFLY_ENGINE_CACHE_PREFIX`` keeps one run's keys apart.
``SMSFLY_ENGINE_AMQP`` / ``SMSFLY_ENGINE_CELERY_QUEUE``
    Celery's broker (default RabbitMQ as guest on 127.0.0.1) and a queue for this run.
``SMSFLY_ENGINE_PROCESS``
    The name the process gives its PostgreSQL connections (``application_name``): each
    worker's own.
``SMSFLY_ENGINE_RATE``, ``SMSFLY_ENGINE_LEASE``, ``SMSFLY_ENGINE_GRACE``
    ``SMSFLY["SEND_RATE_LIMIT"]`` (per second, for every worker together through the
    Redis cache; unset: no limit), ``SEND_LEASE`` and ``QUEUED_GRACE`` (seconds). With
    a lease, ``TIMEOUT`` is (0.5, 2) seconds and ``MAX_RETRIES`` 0, so that a send fits
    in a lease of 4 seconds.
"""

from __future__ import annotations

import os
from typing import Any

import dj_database_url

_env = os.environ.get

ENGINE = _env("SMSFLY_ENGINE", "db")
_PG = _env("SMSFLY_ENGINE_PG", "postgres://postgres@127.0.0.1:5432").rstrip("/")
_REDIS = _env("SMSFLY_ENGINE_REDIS", "redis://127.0.0.1:6379").rstrip("/")

SECRET_KEY = "engine-tests-only-not-secret"
DEBUG = False
USE_TZ = True
TIME_ZONE = "Europe/Kyiv"
LANGUAGE_CODE = "en"

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django_smsfly",
    # Both engines' apps are always installed, so that one migrated database serves as
    # the template of every run's database.
    "django_tasks_db",
    "django_rq",
]

DATABASES: dict[str, Any] = {
    "default": dj_database_url.parse(f"{_PG}/{_env('SMSFLY_ENGINE_DB', 'smsfly_engines')}")
}
# Each process names its connections, so that a test can tell a worker's apart (and
# cut them) in pg_stat_activity.
DATABASES["default"].setdefault("OPTIONS", {})["application_name"] = _env(
    "SMSFLY_ENGINE_PROCESS", "smsfly-engines"
)

CACHES: dict[str, Any] = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    # Where every worker takes its send slots (SMSFLY["RATE_LIMIT_CACHE"]).
    "ratelimit": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": f"{_REDIS}/{_env('SMSFLY_ENGINE_CACHE_DB', '14')}",
        "KEY_PREFIX": _env("SMSFLY_ENGINE_CACHE_PREFIX", "smsfly-engines"),
    },
}

RQ_QUEUES = {
    "default": {
        "URL": f"{_REDIS}/{_env('SMSFLY_ENGINE_RQ_DB', '13')}",
        "DEFAULT_TIMEOUT": 600,
    }
}

TASKS: dict[str, Any]
if ENGINE == "db":
    TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
elif ENGINE == "rq":
    TASKS = {"default": {"BACKEND": "django_tasks_rq.RQBackend", "QUEUES": ["default"]}}
elif ENGINE == "celery":
    from celery import Celery  # type: ignore[import-untyped,import-not-found,unused-ignore]

    #: The Celery application of the Celery runs; workers start with
    #: ``celery -A tests.engine_settings:celery_app worker``.
    celery_app = Celery("smsfly_engines", set_as_current=True)
    celery_app.conf.update(
        broker_url=_env("SMSFLY_ENGINE_AMQP", "amqp://guest:guest@127.0.0.1:5672//"),
        broker_connection_retry_on_startup=True,
        task_default_queue=_env("SMSFLY_ENGINE_CELERY_QUEUE", "smsfly-engines"),
        # One task at a time per worker, and acknowledged once it is done: a worker that
        # dies hands its task back to the broker (a redelivered send task is harmless,
        # every send claims its message first).
        worker_prefetch_multiplier=1,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_ignore_result=True,
        worker_hijack_root_logger=False,
    )
    # Celery's Django fix-up sets Django up in the worker; this then imports each
    # installed app's ``tasks`` module, which registers django_smsfly's tasks.
    celery_app.autodiscover_tasks()
    TASKS = {
        "default": {
            "BACKEND": "django_tasks_celery.CeleryBackend",
            "OPTIONS": {"CELERY_APP": "tests.engine_settings.celery_app"},
        }
    }
    # No result backend is needed: the outcome of every send is in the database.
    SILENCED_SYSTEM_CHECKS = ["django_tasks_celery.W001", "django_tasks_celery.W002"]
else:  # pragma: no cover - a mistake in the caller
    raise RuntimeError(f"SMSFLY_ENGINE must be db, rq or celery, not {ENGINE!r}")


def _seconds(name: str) -> float | None:
    value = _env(name)
    return float(value) if value else None


_smsfly: dict[str, Any] = {
    "API_URL": _env("SMSFLY_ENGINE_API_URL", "http://127.0.0.1:8765/api/v2/api.php"),
    # The sandbox takes any non-empty key.
    "API_KEY": "engine-tests-key",
    "SMS_SOURCE": "InfoCenter",
    # smsfly_sync's own pacing of the sends it makes; the shared limit below still applies.
    "SYNC_RATE_LIMIT": 0,
}
_rate = _seconds("SMSFLY_ENGINE_RATE")
if _rate is not None:
    _smsfly["SEND_RATE_LIMIT"] = _rate
    _smsfly["RATE_LIMIT_CACHE"] = "ratelimit"
_lease = _seconds("SMSFLY_ENGINE_LEASE")
if _lease is not None:
    _smsfly["SEND_LEASE"] = _lease
    # A lease of seconds needs a send that surely ends within it (smsfly.E008): the
    # sandbox on 127.0.0.1 answers in milliseconds, and nothing is repeated.
    _smsfly["TIMEOUT"] = (0.5, 2.0)
    _smsfly["MAX_RETRIES"] = 0
_grace = _seconds("SMSFLY_ENGINE_GRACE")
if _grace is not None:
    _smsfly["QUEUED_GRACE"] = _grace
SMSFLY = _smsfly

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    # Warnings of the app (recovered messages, lost claims) end up in the worker logs.
    "loggers": {"django_smsfly": {"handlers": ["stderr"], "level": "INFO"}},
}
