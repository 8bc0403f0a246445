"""Settings: defaults, validation, override_settings, the backend's capabilities."""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import pytest
import responses
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from django_smsfly.backends.http import HTTPBackend
from django_smsfly.backends.sandbox import SandboxBackend
from django_smsfly.conf import (
    API_URL_UA,
    DEFAULTS,
    HTTP_BACKEND,
    SANDBOX_BACKEND,
    SLOT_WAIT_MARGIN,
    VALIDATORS,
    longest_send_seconds,
    smsfly_settings,
)


class QuietBackend(SandboxBackend):
    """A sandbox under a dotted path that does not say "sandbox"."""


class SandboxedHTTPBackend(HTTPBackend):
    """A real HTTP backend whose dotted path happens to say "sandbox"."""


QUIET = f"{__name__}.QuietBackend"
SANDBOXED_HTTP = f"{__name__}.SandboxedHTTPBackend"


def test_defaults() -> None:
    with override_settings(SMSFLY={}):
        assert smsfly_settings.API_URL == API_URL_UA
        assert smsfly_settings.BACKEND == HTTP_BACKEND
        assert smsfly_settings.DEFAULT_REGION == "UA"
        assert smsfly_settings.TIMEOUT == (5.0, 30.0)
        assert smsfly_settings.API_KEY is None


def test_every_setting_has_exactly_one_validator() -> None:
    assert list(VALIDATORS) == list(DEFAULTS)


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


def test_numbers_of_seconds_are_floats_and_balance_warning_a_decimal() -> None:
    smsfly = {"SEND_LEASE": Decimal("120"), "QUEUED_GRACE": 5, "BALANCE_WARNING": 12.5}
    with override_settings(SMSFLY=smsfly):
        assert smsfly_settings.SEND_LEASE == 120.0
        assert isinstance(smsfly_settings.SEND_LEASE, float)
        assert smsfly_settings.QUEUED_GRACE == 5.0
        assert Decimal("12.5") == smsfly_settings.BALANCE_WARNING


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"API_KYE": "x"}, "did you mean 'API_KEY'"),
        ({"TIMEOUT": "soon"}, "TIMEOUT"),
        ({"TIMEOUT": 0}, "greater than 0"),
        ({"TIMEOUT": (5, 0)}, "greater than 0"),
        ({"TIMEOUT": (1, 2, 3)}, "pair"),
        ({"MAX_RETRIES": -1}, "MAX_RETRIES"),
        ({"MAX_RETRIES": 2.0}, "MAX_RETRIES"),
        ({"SYNC_CONCURRENCY": True}, "SYNC_CONCURRENCY"),
        ({"RETRY_BACKOFF": -0.5}, "RETRY_BACKOFF"),
        ({"SEND_LEASE": 0.5}, "at least 1 second"),
        ({"SEND_RATE_LIMIT": "10"}, "SEND_RATE_LIMIT"),
        ({"BALANCE_WARNING": -1}, "BALANCE_WARNING"),
        ({"API_KEY": 123}, "API_KEY"),
        ({"BACKEND": None}, "BACKEND"),
        ({"BACKEND_OPTIONS": []}, "BACKEND_OPTIONS"),
        ({"MASK_RECIPIENTS": "yes"}, "MASK_RECIPIENTS"),
        ({"IDENTIFY": 1}, "IDENTIFY"),
        ({"TASK_BACKEND": ""}, "task alias"),
        ({"DEFAULT_REGION": 380}, "DEFAULT_REGION"),
        ("key", "must be a dict"),
    ],
)
def test_bad_settings_are_improperly_configured(value: object, message: str) -> None:
    with override_settings(SMSFLY=value), pytest.raises(ImproperlyConfigured, match=message):
        smsfly_settings.as_dict()


#: Every setting that is a number.
NUMERIC_KEYS = [
    "TIMEOUT",
    "MAX_RETRIES",
    "RETRY_BACKOFF",
    "MAX_RETRY_WAIT",
    "SYNC_BATCH_SIZE",
    "SYNC_CONCURRENCY",
    "SYNC_RATE_LIMIT",
    "SEND_MAX_ATTEMPTS",
    "SEND_RATE_LIMIT",
    "SEND_LEASE",
    "QUEUED_GRACE",
    "BALANCE_WARNING",
]
NON_FINITE = [
    float("nan"),
    float("inf"),
    float("-inf"),
    Decimal("NaN"),
    Decimal("sNaN"),
    Decimal("Infinity"),
    Decimal("-Infinity"),
]


@pytest.mark.parametrize("value", NON_FINITE, ids=repr)
@pytest.mark.parametrize("key", NUMERIC_KEYS)
def test_a_numeric_setting_refuses_what_is_not_a_finite_number(key: str, value: object) -> None:
    with (
        override_settings(SMSFLY={key: value}),
        pytest.raises(ImproperlyConfigured, match=re.escape(f"SMSFLY['{key}']")),
    ):
        smsfly_settings.as_dict()


@pytest.mark.parametrize("value", NON_FINITE, ids=repr)
@pytest.mark.parametrize("pair", ["connect", "read"])
def test_either_timeout_of_a_pair_refuses_what_is_not_a_finite_number(
    pair: str, value: object
) -> None:
    timeout = (value, 30) if pair == "connect" else (5, value)
    with (
        override_settings(SMSFLY={"TIMEOUT": timeout}),
        pytest.raises(ImproperlyConfigured, match=re.escape("SMSFLY['TIMEOUT']")),
    ):
        smsfly_settings.as_dict()


def test_a_number_too_large_for_a_float_is_refused_not_a_crash() -> None:
    with (
        override_settings(SMSFLY={"SEND_LEASE": 10**400}),
        pytest.raises(ImproperlyConfigured, match=re.escape("SMSFLY['SEND_LEASE']")),
    ):
        smsfly_settings.as_dict()


def test_repr_hides_the_key() -> None:
    with override_settings(SMSFLY={"API_KEY": "very-secret-key"}):
        assert "very-secret-key" not in repr(smsfly_settings)
        assert "***" in repr(smsfly_settings)


def test_configuration_errors_are_not_smsfly_errors() -> None:
    from django_smsfly.exceptions import SmsFlyError

    assert not issubclass(ImproperlyConfigured, SmsFlyError)


# -- the backend's capabilities ---------------------------------------------------------


@pytest.mark.parametrize(
    ("smsfly", "backend"),
    [
        ({}, HTTPBackend),
        ({"BACKEND": SANDBOX_BACKEND}, SandboxBackend),
        ({"BACKEND": QUIET}, QuietBackend),
    ],
)
def test_backend_class_is_the_configured_class(smsfly: dict[str, str], backend: type) -> None:
    with override_settings(SMSFLY=smsfly):
        assert smsfly_settings.backend_class is backend


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("nowhere.Backend", "cannot import 'nowhere.Backend'"),
        ("django_smsfly.conf.DEFAULTS", "not a django_smsfly backend class"),
        ("django_smsfly.client.SmsFlyClient", "not a django_smsfly backend class"),
    ],
)
def test_backend_class_refuses_what_is_not_a_backend(path: str, message: str) -> None:
    with (
        override_settings(SMSFLY={"BACKEND": path}),
        pytest.raises(ImproperlyConfigured, match=re.escape(message)),
    ):
        _ = smsfly_settings.backend_class


@pytest.mark.parametrize(
    ("path", "sandbox"),
    [
        (SANDBOX_BACKEND, True),
        (HTTP_BACKEND, False),
        (QUIET, True),  # a sandbox by what it is, whatever its path says
        (SANDBOXED_HTTP, False),  # reaches phones, whatever its path says
    ],
)
def test_the_sandbox_is_told_by_the_backends_capabilities_not_its_path(
    path: str, sandbox: bool
) -> None:
    with override_settings(SMSFLY={"BACKEND": path}):
        assert smsfly_settings.uses_sandbox is sandbox
        assert smsfly_settings.requires_api_key is not sandbox


# -- the longest send -------------------------------------------------------------------


def values(**smsfly: Any) -> Mapping[str, Any]:
    with override_settings(SMSFLY=smsfly):
        return smsfly_settings.as_dict()


def test_longest_send_is_every_attempt_timing_out_and_every_wait_at_its_cap() -> None:
    # Three attempts of 2 s connect + 3 s read, two waits of at most 4 s each.
    conf = values(TIMEOUT=(2, 3), MAX_RETRIES=2, RETRY_BACKOFF=0.5, MAX_RETRY_WAIT=4)
    assert longest_send_seconds(conf) == 3 * 5 + 2 * 4 + SLOT_WAIT_MARGIN


def test_longest_send_without_retries_is_one_attempt() -> None:
    conf = values(TIMEOUT=(2, 3), MAX_RETRIES=0, MAX_RETRY_WAIT=4)
    assert longest_send_seconds(conf) == 5 + SLOT_WAIT_MARGIN


def test_longest_send_includes_a_send_rate_slot() -> None:
    conf = values(TIMEOUT=(2, 3), MAX_RETRIES=0, SEND_RATE_LIMIT=0.5)
    assert longest_send_seconds(conf) == 5 + 2 + SLOT_WAIT_MARGIN


def test_longest_send_reads_the_current_settings_by_default() -> None:
    with override_settings(SMSFLY={"TIMEOUT": 1, "MAX_RETRIES": 0}):
        assert longest_send_seconds() == 2 + SLOT_WAIT_MARGIN


def test_default_send_lease_covers_the_default_longest_send() -> None:
    conf = values()
    assert conf["SEND_LEASE"] > longest_send_seconds(conf)


@responses.activate
def test_longest_send_covers_what_the_http_backend_really_waits_on_http_429() -> None:
    # Each 429 asks for exactly the most the backend agrees to wait: the worst case of
    # the waits between attempts, whatever RETRY_BACKOFF is.
    conf = values(TIMEOUT=(2, 3), MAX_RETRIES=3, RETRY_BACKOFF=0.1, MAX_RETRY_WAIT=7)
    url = "https://sms-fly.ua/api/v2/api.php"
    responses.post(url, status=429, headers={"Retry-After": "7"})
    waits: list[float] = []
    backend = HTTPBackend(
        api_url=url,
        timeout=conf["TIMEOUT"],
        max_retries=conf["MAX_RETRIES"],
        retry_backoff=conf["RETRY_BACKOFF"],
        max_retry_wait=conf["MAX_RETRY_WAIT"],
        sleep=waits.append,
    )
    reply = backend.send({"auth": {"key": "k"}, "action": "SENDMESSAGE", "data": {}})
    assert reply.http_status == 429
    attempts = len(responses.calls)
    assert attempts == conf["MAX_RETRIES"] + 1
    request_time = attempts * sum(conf["TIMEOUT"])
    assert sum(waits) == 3 * 7
    assert request_time + sum(waits) + SLOT_WAIT_MARGIN == longest_send_seconds(conf)


# -- SMSFLY["VERIFICATION"] ---------------------------------------------------------------------


def test_verification_defaults() -> None:
    with override_settings(SMSFLY={}):
        values = smsfly_settings.VERIFICATION
    assert values["CODE_LENGTH"] == 6
    assert values["TTL"] == 300
    assert values["MAX_ATTEMPTS"] == 5
    assert values["RESEND_COOLDOWN"] == 60
    assert values["MAX_PER_RECIPIENT_PER_HOUR"] == 5
    assert values["MAX_PER_IP_PER_HOUR"] == 20
    assert values["MAX_PER_DAY"] is None
    assert values["DAILY_SPEND_LIMIT"] is None
    assert values["ALLOWED_REGIONS"] is None  # DEFAULT_REGION only
    assert values["TEXT"] is None  # the built-in, translated text
    assert values["TRUSTED_PROXIES"] == 0  # X-Forwarded-For is not believed


def test_verification_keys_a_site_leaves_out_keep_their_defaults() -> None:
    smsfly = {"VERIFICATION": {"TTL": 600, "DAILY_SPEND_LIMIT": "25.50"}}
    with override_settings(SMSFLY=smsfly):
        values = smsfly_settings.VERIFICATION
    assert values["TTL"] == 600.0
    assert values["DAILY_SPEND_LIMIT"] == Decimal("25.50")
    assert values["CODE_LENGTH"] == 6


def test_verification_regions_are_upper_cased() -> None:
    with override_settings(SMSFLY={"VERIFICATION": {"ALLOWED_REGIONS": ["ua", "PL"]}}):
        assert smsfly_settings.VERIFICATION["ALLOWED_REGIONS"] == ("PL", "UA")


def test_a_lazy_verification_text_stays_lazy() -> None:
    from django.utils.functional import Promise
    from django.utils.translation import gettext_lazy

    text = gettext_lazy("Code %(code)s for %(site)s")
    with override_settings(SMSFLY={"VERIFICATION": {"TEXT": text}}):
        assert isinstance(smsfly_settings.VERIFICATION["TEXT"], Promise)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"TTLL": 5}, r"did you mean 'TTL'"),
        ({"CODE_LENGTH": 3}, r"\['CODE_LENGTH'\] must be from 4 to 10"),
        ({"CODE_LENGTH": 6.0}, r"\['CODE_LENGTH'\] must be an integer"),
        ({"TTL": 5}, r"\['TTL'\] must be from 10"),
        ({"TTL": float("nan")}, r"\['TTL'\] must be a finite number"),
        ({"RESEND_COOLDOWN": Decimal("Infinity")}, r"\['RESEND_COOLDOWN'\]"),
        ({"MAX_ATTEMPTS": 0}, r"\['MAX_ATTEMPTS'\]"),
        ({"MAX_PER_RECIPIENT_PER_HOUR": 0}, r"\['MAX_PER_RECIPIENT_PER_HOUR'\]"),
        ({"MAX_PER_IP_PER_HOUR": True}, r"\['MAX_PER_IP_PER_HOUR'\]"),
        ({"MAX_PER_DAY": "100"}, r"\['MAX_PER_DAY'\]"),
        ({"DAILY_SPEND_LIMIT": "a lot"}, r"\['DAILY_SPEND_LIMIT'\]"),
        ({"DAILY_SPEND_LIMIT": float("inf")}, r"\['DAILY_SPEND_LIMIT'\]"),
        ({"ALLOWED_REGIONS": "UA"}, r"list of country codes"),
        ({"ALLOWED_REGIONS": []}, r"at least one country"),
        ({"ALLOWED_REGIONS": ["UA", "XX"]}, r"'XX' is not a region"),
        ({"TEXT": "Your code"}, r"must contain %\(code\)s"),
        ({"TEXT": "Code %(code)s, %(user)s"}, r"only %\(code\)s, %\(site\)s and %\(minutes\)s"),
        ({"TEXT": "100% sure: %(code)s"}, r"\['TEXT'\]"),
        ({"TEXT": 42}, r"\['TEXT'\] must be a string"),
        ({"SITE_NAME": 42}, r"\['SITE_NAME'\]"),
        ({"TRUSTED_PROXIES": -1}, r"\['TRUSTED_PROXIES'\]"),
        ({"IP_HEADER": ""}, r"\['IP_HEADER'\]"),
        ("strict", r"SMSFLY\['VERIFICATION'\] must be a dict"),
    ],
)
def test_bad_verification_settings_are_improperly_configured(value: object, message: str) -> None:
    with (
        override_settings(SMSFLY={"VERIFICATION": value}),
        pytest.raises(ImproperlyConfigured, match=message) as refused,
    ):
        smsfly_settings.as_dict()
    assert "SMSFLY['VERIFICATION']" in str(refused.value)  # the message names the key
