"""System checks: each problem has its id and a hint, and is reported once."""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import pytest
from django.apps import apps
from django.core import checks
from django.test import override_settings

from django_smsfly.checks import SMSFLY_CHECKS
from django_smsfly.conf import SANDBOX_BACKEND, longest_send_seconds, smsfly_settings

SANDBOX = SANDBOX_BACKEND
#: Backends whose dotted paths say the opposite of what they are (see test_conf).
QUIET = "tests.test_conf.QuietBackend"
SANDBOXED_HTTP = "tests.test_conf.SandboxedHTTPBackend"


def ids(smsfly: Any, debug: bool = True, **settings: Any) -> list[str]:
    """The ids of the app's check messages for these settings, each checked for a hint."""
    with override_settings(SMSFLY=smsfly, DEBUG=debug, **settings):
        found = checks.run_checks(tags=["django_smsfly"])
    for message in found:
        assert message.hint, message
    return sorted(m.id or "" for m in found)


def test_a_good_configuration_passes() -> None:
    assert ids({"API_KEY": "k"}, debug=False) == []
    assert ids({"BACKEND": SANDBOX}, debug=True) == []


def test_missing_key_with_the_http_backend() -> None:
    assert ids({}) == ["smsfly.E002"]


def test_sandbox_while_debug_is_off() -> None:
    assert ids({"BACKEND": SANDBOX}, debug=False) == ["smsfly.W001"]


def test_a_sandbox_under_another_path_needs_no_key_and_warns_in_production() -> None:
    assert ids({"BACKEND": QUIET}, debug=True) == []
    assert ids({"BACKEND": QUIET}, debug=False) == ["smsfly.W001"]


def test_an_http_backend_whose_path_says_sandbox_still_needs_a_key() -> None:
    assert ids({"BACKEND": SANDBOXED_HTTP}, debug=False) == ["smsfly.E002"]
    assert ids({"BACKEND": SANDBOXED_HTTP, "API_KEY": "k"}, debug=False) == []


@pytest.mark.parametrize("url", ["sms-fly.ua/api", "http://sms-fly.ua/api/v2/api.php", "ftp://x"])
def test_malformed_api_url(url: str) -> None:
    assert ids({"API_KEY": "k", "API_URL": url}) == ["smsfly.E003"]


def test_local_sandbox_server_over_http_is_allowed() -> None:
    assert ids({"API_KEY": "k", "API_URL": "http://127.0.0.1:8765/api/v2/api.php"}) == []


def test_unknown_region() -> None:
    assert ids({"API_KEY": "k", "DEFAULT_REGION": "XX"}) == ["smsfly.E004"]


@pytest.mark.parametrize(
    "path", ["nowhere.Backend", "django_smsfly.conf.DEFAULTS", "django_smsfly.client.SmsFlyClient"]
)
def test_a_backend_that_is_not_one(path: str) -> None:
    assert ids({"API_KEY": "k", "BACKEND": path}) == ["smsfly.E005"]


def test_an_unimportable_backend_is_reported_once_not_also_as_a_missing_key() -> None:
    assert ids({"BACKEND": "nowhere.Backend"}, debug=False) == ["smsfly.E005"]


@pytest.mark.parametrize(
    "smsfly",
    [
        {"API_KYE": "k"},
        {"API_KEY": "k", "SEND_LEASE": float("nan")},
        {"API_KEY": "k", "TIMEOUT": float("inf")},
        {"API_KEY": "k", "QUEUED_GRACE": float("inf")},
    ],
)
def test_malformed_setting_is_a_check_error_not_a_crash(smsfly: dict[str, Any]) -> None:
    assert ids(smsfly) == ["smsfly.E001"]


def test_rate_limit_cache_not_in_caches() -> None:
    assert ids({"API_KEY": "k", "RATE_LIMIT_CACHE": "shared"}) == ["smsfly.E006"]


def test_rate_limit_cache_kept_in_each_process() -> None:
    assert ids({"API_KEY": "k", "RATE_LIMIT_CACHE": "default"}) == ["smsfly.W002"]


def test_task_backend_not_in_tasks() -> None:
    assert ids({"API_KEY": "k", "TASK_BACKEND": "elsewhere"}) == ["smsfly.E007"]


# -- the send lease ---------------------------------------------------------------------

#: A configuration whose longest send is easy to follow: 2 attempts of 1 + 2 s, 1 wait
#: of at most 3 s.
SHORT = {"API_KEY": "k", "TIMEOUT": (1, 2), "MAX_RETRIES": 1, "MAX_RETRY_WAIT": 3}


def longest(smsfly: dict[str, Any]) -> float:
    with override_settings(SMSFLY=smsfly):
        return longest_send_seconds(smsfly_settings.as_dict())


def test_a_send_lease_equal_to_the_longest_send_is_an_error() -> None:
    lease = longest(SHORT)
    assert ids({**SHORT, "SEND_LEASE": lease}) == ["smsfly.E008"]


def test_a_send_lease_below_the_longest_send_is_an_error() -> None:
    assert ids({**SHORT, "SEND_LEASE": 1}) == ["smsfly.E008"]


def test_a_send_lease_above_the_longest_send_passes() -> None:
    lease = longest(SHORT)
    assert ids({**SHORT, "SEND_LEASE": lease + 0.01}) == []


def test_the_lease_hint_gives_the_minimum() -> None:
    lease = longest(SHORT)
    with override_settings(SMSFLY={**SHORT, "SEND_LEASE": 1}):
        (found,) = checks.run_checks(tags=["django_smsfly"])
    minimum = math.floor(lease) + 1
    assert f"at least {minimum} seconds" in (found.hint or "")
    with override_settings(SMSFLY={**SHORT, "SEND_LEASE": minimum}):
        assert checks.run_checks(tags=["django_smsfly"]) == []


def test_a_longer_timeout_makes_the_default_lease_too_short() -> None:
    assert ids({"API_KEY": "k", "TIMEOUT": (10, 120)}) == ["smsfly.E008"]


def test_a_slow_send_rate_counts_against_the_lease() -> None:
    smsfly = {**SHORT, "SEND_LEASE": longest(SHORT) + 1}
    assert ids(smsfly) == []
    assert ids({**smsfly, "SEND_RATE_LIMIT": 0.5}) == ["smsfly.E008"]


# -- one-time codes ------------------------------------------------------------------------


def test_the_default_verification_limits_keep_codes_from_being_guessed() -> None:
    assert ids({"API_KEY": "k", "VERIFICATION": {}}) == []


@pytest.mark.parametrize(
    ("verification", "expected"),
    [
        ({"CODE_LENGTH": 4}, ["smsfly.E009"]),  # 5 tries x 120 codes a day: 6 % a day
        ({"CODE_LENGTH": 5}, []),  # 0.6 % a day
        ({"MAX_PER_RECIPIENT_PER_HOUR": None, "RESEND_COOLDOWN": 0}, ["smsfly.E009"]),
        ({"MAX_PER_RECIPIENT_PER_HOUR": None, "RESEND_COOLDOWN": 0, "MAX_PER_DAY": 500}, []),
    ],
)
def test_verification_limits_that_let_codes_be_guessed(
    verification: dict[str, Any], expected: list[str]
) -> None:
    assert ids({"API_KEY": "k", "VERIFICATION": verification}) == expected


def test_a_short_code_passes_with_limits_tight_enough() -> None:
    tight = {"CODE_LENGTH": 4, "MAX_ATTEMPTS": 3, "MAX_PER_RECIPIENT_PER_HOUR": 1}
    assert ids({"API_KEY": "k", "VERIFICATION": tight}) == []  # 3 x 24 / 10**4 = 0.72 %
    assert ids({"API_KEY": "k", "VERIFICATION": {**tight, "MAX_ATTEMPTS": 5}}) == ["smsfly.E009"]


def test_the_guessing_hint_names_the_settings_to_change() -> None:
    with override_settings(SMSFLY={"API_KEY": "k", "VERIFICATION": {"CODE_LENGTH": 4}}):
        [error] = checks.run_checks(tags=["django_smsfly"])
    assert "6.0% chance a day" in error.msg
    assert "CODE_LENGTH" in (error.hint or "")


# -- registration -----------------------------------------------------------------------


def test_checks_are_registered_with_django() -> None:
    registered: list[Any] = list(checks.registry.registry.get_checks())
    for check in SMSFLY_CHECKS:
        assert check in registered
        assert "django_smsfly" in getattr(check, "tags", ())


@pytest.mark.django_db  # run_checks() also runs the models' checks, which ask the database
def test_run_checks_reports_each_problem_once() -> None:
    # Readying the app again (as some test runners do) must not register anything twice.
    apps.get_app_config("django_smsfly").ready()
    smsfly = {"BACKEND": QUIET, "RATE_LIMIT_CACHE": "default", "SEND_LEASE": 1}
    with override_settings(SMSFLY=smsfly, DEBUG=False):
        found = [m.id for m in checks.run_checks() if (m.id or "").startswith("smsfly.")]
    assert Counter(found) == {"smsfly.W001": 1, "smsfly.W002": 1, "smsfly.E008": 1}
