"""The shared client built from settings, and the account queries."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

import django_smsfly
from django_smsfly import get_balance, get_balances, get_client, services
from django_smsfly.backends.http import HTTPBackend
from django_smsfly.backends.sandbox import SandboxBackend, get_simulator
from django_smsfly.client import APP_VERSION

SANDBOX = "django_smsfly.backends.sandbox.SandboxBackend"


def test_the_client_is_shared_and_rebuilt_when_settings_change() -> None:
    first = get_client()
    assert get_client() is first
    with override_settings(SMSFLY={"BACKEND": SANDBOX, "SMS_SOURCE": "Other"}):
        second = get_client()
        assert second is not first
        assert second.sms_source == "Other"
    assert get_client() is not second


def test_client_is_configured_from_settings() -> None:
    smsfly = {
        "API_KEY": "k" * 36,
        "API_URL": "https://sms-fly.pl/api/v2/api.php",
        "TIMEOUT": (3, 9),
        "MAX_RETRIES": 1,
        "DEFAULT_REGION": "pl",
        "SMS_SOURCE": "Sklep",
        "BACKEND_OPTIONS": {"pool_size": 4},
    }
    with override_settings(SMSFLY=smsfly):
        client = get_client()
    backend = client.backend
    assert isinstance(backend, HTTPBackend)
    assert backend.api_url == "https://sms-fly.pl/api/v2/api.php"
    assert backend.timeout == (3.0, 9.0)
    assert backend.max_retries == 1
    assert backend.pool_size == 4
    assert backend.user_agent == APP_VERSION
    assert client.default_region == "PL"
    assert client.sms_source == "Sklep"
    assert "k" * 36 not in repr(client)


def test_sandbox_needs_no_key() -> None:
    client = get_client()
    assert isinstance(client.backend, SandboxBackend)
    assert get_balance() == Decimal("1000.000")


def test_balances_as_a_dict() -> None:
    assert get_balances() == {"sms": Decimal("1000.000"), "viber": Decimal("500.000")}


def test_sandbox_options_from_settings() -> None:
    smsfly = {"BACKEND": SANDBOX, "BACKEND_OPTIONS": {"balance": "12.5"}}
    with override_settings(SMSFLY=smsfly):
        assert get_balance() == Decimal("12.500")


def test_a_send_through_the_shared_client_reaches_the_sandbox() -> None:
    result = get_client().send_sms("+380 67 123 45 67", "Hello")
    [message] = get_simulator().messages
    assert message.message_id == result.message_id
    assert message.recipient == "380671234567"


def test_missing_key_with_the_http_backend_is_a_configuration_error() -> None:
    with override_settings(SMSFLY={}), pytest.raises(ImproperlyConfigured, match="API_KEY"):
        get_client()


def test_unknown_backend_option_is_a_configuration_error() -> None:
    smsfly = {"API_KEY": "k", "BACKEND_OPTIONS": {"pool": 4}}
    with override_settings(SMSFLY=smsfly), pytest.raises(ImproperlyConfigured, match="pool"):
        get_client()


def test_unimportable_backend_is_a_configuration_error() -> None:
    smsfly = {"API_KEY": "k", "BACKEND": "nowhere.Backend"}
    with override_settings(SMSFLY=smsfly), pytest.raises(ImproperlyConfigured, match="nowhere"):
        get_client()


def test_public_names_are_importable_from_the_package() -> None:
    for name in django_smsfly.__all__:
        assert getattr(django_smsfly, name) is not None
    with pytest.raises(AttributeError):
        django_smsfly.nothing_here  # noqa: B018


def test_sandbox_options_do_not_outlive_the_settings() -> None:
    with override_settings(SMSFLY={"BACKEND": SANDBOX, "BACKEND_OPTIONS": {"balance": "7"}}):
        assert get_balance() == Decimal("7.000")
    get_simulator().reset()
    assert get_balance() == Decimal("1000.000")


def test_the_lookup_client_gives_up_quickly_and_never_retries(settings: Any) -> None:
    settings.SMSFLY = {
        **settings.SMSFLY,
        "BACKEND": "django_smsfly.backends.http.HTTPBackend",
        "API_KEY": "k" * 36,
        "TIMEOUT": (5, 30),
        "MAX_RETRIES": 3,
    }
    lookup = services.get_lookup_client()
    assert lookup.backend.timeout == services.LOOKUP_TIMEOUT
    assert lookup.backend.max_retries == 0
    assert services.get_client().backend.max_retries == 3
    assert services.get_lookup_client() is lookup
    settings.SMSFLY = {**settings.SMSFLY, "TIMEOUT": 1}
    assert services.get_lookup_client().backend.timeout == (1.0, 1.0)  # never longer
