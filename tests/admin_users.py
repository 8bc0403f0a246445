"""People who use the admin, for tests of what each may do."""

from __future__ import annotations

from django.contrib.auth.models import Permission, User
from django.test import Client


def staff_with(*codenames: str) -> Client:
    """Django's test client logged in as a staff user (not a superuser) who holds just the
    permissions named by ``codenames``."""
    user = User.objects.create_user("staff", "staff@example.com", "pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    browser = Client()
    browser.force_login(user)
    return browser
