"""The task framework's own backends, by dotted path, for whichever framework is installed
(``django.tasks`` on Django 6, the ``django_tasks`` backport on 5.2)."""

from __future__ import annotations

from django_smsfly import taskcompat

_PREFIX = "django.tasks" if taskcompat.FRAMEWORK == "django.tasks" else "django_tasks"

#: Records each task without running it: the test (or its threads) plays the worker.
DUMMY = f"{_PREFIX}.backends.dummy.DummyBackend"
