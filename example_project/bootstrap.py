"""Prepare the demo: create the ``admin`` superuser (password ``admin``) unless it exists,
and name the site (its name is in the codes' texts) unless someone named it already.

``run_demo.py`` calls it after migrating; it can also be run on its own, from this
directory, after ``python manage.py migrate``::

    python bootstrap.py
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import django

USERNAME = "admin"
SITE_NAME = "django-smsfly demo"
#: The name django.contrib.sites gives the site it creates: still unnamed.
UNNAMED_SITE = "example.com"
PASSWORD = "admin"  # a demo on 127.0.0.1 only; never use this on a reachable site


@dataclass(frozen=True)
class Login:
    """How to log in to the demo's admin."""

    username: str
    #: ``None`` when the user existed with another password: whoever set it knows it.
    password: str | None
    #: Whether this run created the user.
    created: bool


def ensure_admin() -> Login:
    """Create the demo superuser unless a user with its name exists; say how to log in.

    Needs Django set up (``django.setup()``) and the database migrated.
    """
    from django.contrib.auth import get_user_model  # noqa: PLC0415 - needs django.setup()

    users = get_user_model()
    user = users.objects.filter(username=USERNAME).first()
    if user is None:
        users.objects.create_superuser(USERNAME, email="", password=PASSWORD)
        return Login(USERNAME, PASSWORD, created=True)
    # Still the demo's password, or one that someone set since (then it is theirs to know).
    return Login(USERNAME, PASSWORD if user.check_password(PASSWORD) else None, created=False)


def ensure_site_name() -> None:
    """Name the current site :data:`SITE_NAME` while it has Django's default name.

    Needs Django set up and the database migrated.
    """
    from django.contrib.sites.models import Site  # noqa: PLC0415 - needs django.setup()

    Site.objects.filter(pk=Site.objects.get_current().pk, name=UNNAMED_SITE).update(
        name=SITE_NAME, domain="127.0.0.1"
    )


def describe(login: Login) -> str:
    """One line on how to log in."""
    if login.password is None:
        return f"Log in as {login.username!r} with the password you gave it."
    return f"Log in as {login.username!r} with the password {login.password!r}."


def main() -> None:
    """Set Django up, create the demo superuser if needed, and say how to log in."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_project.settings")
    django.setup()
    ensure_site_name()
    login = ensure_admin()
    if login.created:
        print(f"Created the superuser {login.username!r}.")
    print(describe(login))


if __name__ == "__main__":
    main()
