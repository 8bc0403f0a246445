"""The one place that knows which task framework is installed.

Django 6 ships ``django.tasks``; on Django 5.2 the ``django-tasks`` backport provides
the same API under ``django_tasks``. Their classes and exception names differ (and
engines such as django-tasks-rq subclass the backport's classes even on Django 6), so
nothing else in the app imports either directly, checks a task's class or catches one
of their exceptions by name: it calls the functions below.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from django.core.exceptions import ImproperlyConfigured

logger = logging.getLogger("django_smsfly.tasks")

try:  # Django >= 6.0
    from django.tasks import task, task_backends

    FRAMEWORK: str | None = "django.tasks"
except ImportError:  # pragma: no cover - exercised on the Django 5.2 leg
    try:
        from django_tasks import (  # type: ignore[import-not-found,no-redef,assignment,unused-ignore]
            task,
            task_backends,
        )

        FRAMEWORK = "django_tasks"
    except ImportError:
        task = None  # type: ignore[assignment,unused-ignore]
        task_backends = None  # type: ignore[assignment,unused-ignore]
        FRAMEWORK = None

#: Whether a task framework is importable at all.
AVAILABLE = FRAMEWORK is not None


def define_task(func: Callable[..., Any]) -> Any:
    """``@task`` from whichever framework is installed; the plain function without one."""
    if task is None:
        return func
    return task(func)


def _require() -> None:
    if not AVAILABLE:
        raise ImproperlyConfigured(
            "Background sending needs a task framework: Django 6 has django.tasks; "
            "on Django 5.2 install the backport with `pip install django-smsfly[tasks]`."
        )


def get_backend(alias: str) -> Any:
    """The task backend configured as ``alias`` in ``settings.TASKS``."""
    _require()
    try:
        return task_backends[alias]
    except Exception as exc:  # InvalidTaskBackend / InvalidTaskBackendError
        raise ImproperlyConfigured(
            f"SMSFLY['TASK_BACKEND'] is {alias!r}, which settings.TASKS does not "
            f"configure usably: {exc}"
        ) from exc


def supports_defer(alias: str) -> bool:
    """Whether the backend can run a task later (``run_after``)."""
    return bool(getattr(get_backend(alias), "supports_defer", False))


def enqueue(task_obj: Any, *args: Any, alias: str, run_after: dt.datetime | None = None) -> Any:
    """Enqueue ``task_obj(*args)`` on the backend ``alias``; returns the task result.

    ``run_after`` is dropped (the task runs now) when the backend cannot defer.
    """
    _require()
    options: dict[str, Any] = {"backend": alias}
    if run_after is not None and supports_defer(alias):
        options["run_after"] = run_after
    return task_obj.using(**options).enqueue(*args)
