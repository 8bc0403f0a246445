"""Prepare the demo: create an ``admin`` / ``admin`` superuser unless one exists.

Run from this directory after ``python manage.py migrate`` (``make demo`` does both)::

    python bootstrap.py
"""

from __future__ import annotations

import os

import django

USERNAME = "admin"
PASSWORD = "admin"  # a demo on 127.0.0.1 only; never use this on a reachable site


def main() -> None:
    """Create the demo superuser if there is no superuser yet, and say how to log in."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_project.settings")
    django.setup()

    from django.conf import settings  # noqa: PLC0415 - needs django.setup() first
    from django.contrib.auth import get_user_model  # noqa: PLC0415

    from django_smsfly.conf import smsfly_settings  # noqa: PLC0415

    users = get_user_model()
    if users.objects.filter(is_superuser=True).exists():
        print("A superuser already exists; log in with it.")
    else:
        users.objects.create_superuser(USERNAME, email="", password=PASSWORD)
        print(f"Created the superuser {USERNAME!r} with the password {PASSWORD!r}.")
    where = "the sandbox (nothing is sent)" if smsfly_settings.uses_sandbox else "SMS-fly"
    print(
        f"Open http://127.0.0.1:8000/admin/ and log in. Messages go to {where}."
        f" DEBUG is {'on' if settings.DEBUG else 'off'}."
    )


if __name__ == "__main__":
    main()
