"""Settings: defaults, validation, override_settings."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from django_smsfly.conf import API_URL_UA, HTTP_BACKEND, smsfly_settings


def test_defaults() -> None:
    with override_settings(SMSFLY={}):
        assert smsfly_settings.API_URL == API_URL_UA
        assert smsfly_settings.BACKEND == HTTP_BACKEND
        assert smsfly_settings.DEFAULT_REGION == "UA"
        assert smsfly_settings.TIMEOUT == (5.0, 30.0)
        assert smsfly_settings.API_KEY is None


def test_override_settings_is_seen_at_once() -> None:
    with override_settings(SMSFLY={"SMS_SOURCE": "First"}):
        assert smsfly_settings.SMS_SOURCE == "First"
        with override_settings(SMSFLY={"SMS_SOURCE": "Second"}):
            assert smsfly_settings.SMS_SOURCE == "Second"
        assert smsfly_settings.SMS_SOURCE == "First"


def test_one_number_timeout_is_used_for_connect_and_read() -> None:
    with override_settings(SMSFLY={"TIMEOUT": 3}):
        assert smsfly_settings.TIMEOUT == (3.0, 3.0)


def test_region_is_upper_cased() -> None:
    with override_settings(SMSFLY={"DEFAULT_REGION": "pl"}):
        assert smsfly_settings.DEFAULT_REGION == "PL"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"API_KYE": "x"}, "did you mean 'API_KEY'"),
        ({"TIMEOUT": "soon"}, "TIMEOUT"),
        ({"TIMEOUT": 0}, "greater than 0"),
        ({"MAX_RETRIES": -1}, "MAX_RETRIES"),
        ({"API_KEY": 123}, "API_KEY"),
        ({"BACKEND_OPTIONS": []}, "BACKEND_OPTIONS"),
        ("key", "must be a dict"),
    ],
)
def test_bad_settings_are_improperly_configured(value: object, message: str) -> None:
    with override_settings(SMSFLY=value), pytest.raises(ImproperlyConfigured, match=message):
        smsfly_settings.as_dict()


def test_repr_hides_the_key() -> None:
    with override_settings(SMSFLY={"API_KEY": "very-secret-key"}):
        assert "very-secret-key" not in repr(smsfly_settings)
        assert "***" in repr(smsfly_settings)


def test_configuration_errors_are_not_smsfly_errors() -> None:
    from django_smsfly.exceptions import SmsFlyError

    assert not issubclass(ImproperlyConfigured, SmsFlyError)
