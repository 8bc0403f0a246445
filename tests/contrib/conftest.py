"""Fixtures of the integration tests: users, the code a message carried, settings."""

from __future__ import annotations

import re
from typing import Any

import pytest

from django_smsfly.backends.sandbox import get_simulator

#: Numbers the sandbox delivers to, refuses (INVRECIPIENT), and one in Poland.
NUMBER = "380501234567"
REFUSED_BY_SMSFLY = "380501230004"
POLISH = "48512345678"


def last_text() -> str:
    """The text of the last message sent to the sandbox (only the request carries it)."""
    request = get_simulator().requests_for("SENDMESSAGE")[-1]
    text: str = request.body["data"]["sms"]["text"]
    return text


def last_code() -> str:
    """The code in the last message sent."""
    found = re.search(r"\b\d{6}\b", last_text())
    assert found is not None, last_text()
    return found.group()


def sent_count() -> int:
    """SENDMESSAGE requests the sandbox received."""
    return len(get_simulator().requests_for("SENDMESSAGE"))


@pytest.fixture
def user(db: None) -> Any:
    """A user who logs in with ``alice`` / ``secret``."""
    from django.contrib.auth.models import User

    return User.objects.create_user("alice", "alice@example.com", "secret")


@pytest.fixture(autouse=True)
def _quick_passwords(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
