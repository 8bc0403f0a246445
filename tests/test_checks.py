"""System checks: each problem has its id and a hint."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import checks
from django.test import override_settings

from django_smsfly.checks import check_settings

SANDBOX = "django_smsfly.backends.sandbox.SandboxBackend"


def ids(smsfly: Any, debug: bool = True) -> list[str]:
    with override_settings(SMSFLY=smsfly, DEBUG=debug):
        found = check_settings()
    for message in found:
        assert message.hint, message
    return [m.id or "" for m in found]


def test_a_good_configuration_passes() -> None:
    assert ids({"API_KEY": "k"}, debug=False) == []
    assert ids({"BACKEND": SANDBOX}, debug=True) == []


def test_missing_key_with_the_http_backend() -> None:
    assert ids({}) == ["smsfly.E002"]


def test_sandbox_while_debug_is_off() -> None:
    assert ids({"BACKEND": SANDBOX}, debug=False) == ["smsfly.W001"]


@pytest.mark.parametrize("url", ["sms-fly.ua/api", "http://sms-fly.ua/api/v2/api.php", "ftp://x"])
def test_malformed_api_url(url: str) -> None:
    assert ids({"API_KEY": "k", "API_URL": url}) == ["smsfly.E003"]


def test_local_sandbox_server_over_http_is_allowed() -> None:
    assert ids({"API_KEY": "k", "API_URL": "http://127.0.0.1:8765/api/v2/api.php"}) == []


def test_unknown_region() -> None:
    assert ids({"API_KEY": "k", "DEFAULT_REGION": "XX"}) == ["smsfly.E004"]


def test_unimportable_backend() -> None:
    assert ids({"API_KEY": "k", "BACKEND": "nowhere.Backend"}) == ["smsfly.E005"]


def test_malformed_setting_is_a_check_error_not_a_crash() -> None:
    assert ids({"API_KYE": "k"}) == ["smsfly.E001"]


def test_checks_are_registered_with_django() -> None:
    with override_settings(SMSFLY={}, DEBUG=True):
        found = checks.run_checks(tags=["django_smsfly"])
    assert "smsfly.E002" in [m.id for m in found]
