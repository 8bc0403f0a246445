"""One-time codes: ``send_code`` / ``check_code``, their limits, and where the code is.

The code is read as a user would read it: from the SMS the sandbox received. Limits are
checked on both of their counters: the database (the suite's default cache is kept in
each process) and a shared cache (Redis on 127.0.0.1, when one runs there). The
concurrency tests need PostgreSQL (``DATABASE_URL``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
import uuid
from decimal import Decimal
from io import StringIO
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import connection
from django.http import HttpRequest
from django.test import Client, RequestFactory, override_settings
from django.urls import reverse
from django.utils import timezone, translation

from django_smsfly.backends.sandbox import Outcome, Simulator
from django_smsfly.exceptions import SmsFlyValidationError
from django_smsfly.models import ChannelStatus, Message, StatusChange, Verification
from django_smsfly.verification import Throttled, check_code, send_code
from tests.admin_users import staff_with
from tests.workers import run_together

NUMBER = "380501234567"
OTHER = "380671234567"
POLISH = "+48 512 345 678"
#: A code as the default text carries it: six digits standing alone.
CODE = re.compile(r"(?<!\d)\d{6}(?!\d)")


def texts_sent(sandbox: Simulator) -> list[str]:
    """The SMS texts of every SENDMESSAGE the sandbox received, oldest first."""
    return [r.body["data"]["sms"]["text"] for r in sandbox.requests_for("SENDMESSAGE")]


def code_sent(sandbox: Simulator) -> str:
    """The code of the last SMS: what the user reads on the phone."""
    [code] = CODE.findall(texts_sent(sandbox)[-1])
    return str(code)


def verification_settings(settings: Any, **values: Any) -> None:
    """Set ``SMSFLY["VERIFICATION"]`` for the test (the other keys as they are)."""
    settings.SMSFLY = {**settings.SMSFLY, "VERIFICATION": values}


def contains(text: str, code: str) -> bool:
    """Whether ``code`` stands in ``text`` as a number of its own."""
    return re.search(rf"(?<!\d){code}(?!\d)", text) is not None


def every_row() -> str:
    """Every row the app wrote, as text."""
    rows: list[Any] = []
    for model in (Message, ChannelStatus, StatusChange, Verification):
        rows += list(model.objects.values())
    return repr(rows)


def from_address(remote: str, forwarded: str | None = None) -> HttpRequest:
    """A request from ``remote`` (the connection), with an X-Forwarded-For if given."""
    headers = {"X-Forwarded-For": forwarded} if forwarded is not None else {}
    return RequestFactory().post("/verify/", REMOTE_ADDR=remote, headers=headers)


# -- the shared cache the counters may use ----------------------------------------------------


def _redis_runs() -> bool:
    try:
        import redis
    except ImportError:
        return False
    try:
        return bool(redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=0.5).ping())
    except redis.RedisError:
        return False


REDIS = _redis_runs()


def shared_cache_settings(settings: Any, location: str = "redis://127.0.0.1:6379/9") -> None:
    """A Redis cache every process would share, as ``RATE_LIMIT_CACHE``; keys of this
    test's own (another run's counts never reach it)."""
    settings.CACHES = {
        **settings.CACHES,
        "otp": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": location,
            "KEY_PREFIX": f"smsfly-verify-test-{uuid.uuid4().hex}",
            "TIMEOUT": 600,
        },
    }
    settings.SMSFLY = {**settings.SMSFLY, "RATE_LIMIT_CACHE": "otp"}


@pytest.fixture(params=["database", "shared cache"])
def counters(request: pytest.FixtureRequest, settings: Any) -> str:
    """Each limit test runs on both counters (``verification_settings`` keeps the
    cache this sets)."""
    if request.param == "shared cache":
        if not REDIS:
            pytest.skip("needs Redis on 127.0.0.1:6379")
        shared_cache_settings(settings)
    return str(request.param)


# -- checking a code --------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_right_code_is_true_once_then_false(sandbox: Simulator) -> None:
    verification = send_code("050 123 4567")
    code = code_sent(sandbox)
    assert check_code("050 123 4567", code) is True
    assert check_code("050 123 4567", code) is False  # used up: no replay
    verification.refresh_from_db()
    assert verification.verified_at is not None


@pytest.mark.django_db
def test_a_wrong_code_is_false_and_the_right_one_still_works(sandbox: Simulator) -> None:
    send_code(NUMBER)
    code = code_sent(sandbox)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    assert check_code(NUMBER, wrong) is False
    assert check_code(NUMBER, code) is True
    assert Verification.objects.get().attempts == 2


@pytest.mark.django_db
def test_after_max_attempts_wrong_tries_even_the_right_code_fails(
    sandbox: Simulator, settings: Any
) -> None:
    verification_settings(settings, MAX_ATTEMPTS=3)
    send_code(NUMBER)
    code = code_sent(sandbox)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for _ in range(3):
        assert check_code(NUMBER, wrong) is False
    assert check_code(NUMBER, code) is False
    assert Verification.objects.get().attempts == 3  # dead tries are not even counted


@pytest.mark.django_db
def test_the_last_allowed_try_may_be_the_right_code(sandbox: Simulator, settings: Any) -> None:
    verification_settings(settings, MAX_ATTEMPTS=3)
    send_code(NUMBER)
    code = code_sent(sandbox)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    assert check_code(NUMBER, wrong) is False
    assert check_code(NUMBER, wrong) is False
    assert check_code(NUMBER, code) is True


@pytest.mark.django_db
def test_an_expired_code_fails(sandbox: Simulator) -> None:
    verification = send_code(NUMBER)
    code = code_sent(sandbox)
    assert verification.expires_at == verification.created_at + dt.timedelta(seconds=300)
    Verification.objects.update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    assert check_code(NUMBER, code) is False


@pytest.mark.django_db
def test_the_ttl_setting_sets_the_expiry(settings: Any) -> None:
    verification_settings(settings, TTL=90)
    verification = send_code(NUMBER)
    assert verification.expires_at == verification.created_at + dt.timedelta(seconds=90)


@pytest.mark.django_db
def test_a_code_is_good_for_its_own_number_and_purpose_only(
    sandbox: Simulator, settings: Any
) -> None:
    send_code(NUMBER, purpose="login")
    code = code_sent(sandbox)
    assert check_code(OTHER, code, purpose="login") is False
    assert check_code(NUMBER, code) is False  # purpose "verify"
    assert check_code(NUMBER, code, purpose="reset") is False
    assert check_code("+380 50 123 45 67", code, purpose="login") is True


@pytest.mark.django_db
def test_a_new_code_replaces_the_one_before(sandbox: Simulator, settings: Any) -> None:
    verification_settings(settings, RESEND_COOLDOWN=0)
    send_code(NUMBER)
    first = code_sent(sandbox)
    send_code(NUMBER)
    second = code_sent(sandbox)
    if first != second:
        assert check_code(NUMBER, first) is False
    assert check_code(NUMBER, second) is True


@pytest.mark.django_db
@pytest.mark.parametrize("typed", ["{code}", " {code} ", "{a} {b}", "{a}-{b}", "\t{code}\n"])
def test_a_code_is_read_as_people_type_it(sandbox: Simulator, typed: str) -> None:
    send_code(NUMBER)
    code = code_sent(sandbox)
    assert check_code(NUMBER, typed.format(code=code, a=code[:3], b=code[3:])) is True


@pytest.mark.django_db
@pytest.mark.parametrize(
    "typed",
    [
        None,
        123456,
        12.5,
        b"123456",
        ["123456"],
        "",
        "   ",
        "abcdef",
        "12345a",
        "１２３４５６",
        "9" * 500,
    ],
    ids=repr,
)
def test_what_is_not_a_code_is_false_never_an_error(sandbox: Simulator, typed: object) -> None:
    send_code(NUMBER)
    assert check_code(NUMBER, typed) is False
    assert check_code(NUMBER, code_sent(sandbox)) is True  # nothing above cost a try


@pytest.mark.django_db
@pytest.mark.parametrize("recipient", [None, "", "not a number", 12, "0501234567;0671234567"])
def test_a_number_that_is_none_is_false_never_an_error(recipient: object) -> None:
    assert check_code(recipient, "123456") is False


@pytest.mark.django_db
def test_checking_without_any_code_sent_is_false() -> None:
    assert check_code(NUMBER, "123456") is False
    assert check_code(NUMBER, "123456", purpose=None) is False  # type: ignore[arg-type]


# -- sending a code ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_code_is_sent_as_a_sensitive_sms_and_linked_to_its_message(sandbox: Simulator) -> None:
    verification = send_code("050 123 4567", purpose="login")
    code = code_sent(sandbox)
    assert verification.recipient == NUMBER
    assert verification.purpose == "login"
    assert verification.country == "UA"
    assert verification.refusal == ""
    message = Message.objects.get()
    assert verification.message == message
    assert Verification.objects.get().message_id == message.pk
    assert message.sensitive
    assert message.state == Message.State.ACCEPTED
    assert message.channels == "sms"
    assert not contains(repr(message.content), code)
    assert len(code) == 6


@pytest.mark.django_db
def test_the_code_length_setting(sandbox: Simulator, settings: Any) -> None:
    verification_settings(settings, CODE_LENGTH=8)
    send_code(NUMBER)
    [code] = re.findall(r"(?<!\d)\d{8}(?!\d)", texts_sent(sandbox)[-1])
    assert check_code(NUMBER, code) is True


@pytest.mark.django_db
def test_viber_with_an_sms_fallback(sandbox: Simulator) -> None:
    verification = send_code(NUMBER, channels=["viber", "sms"])
    [sent] = sandbox.requests_for("SENDMESSAGE")
    assert sent.body["data"]["channels"] == ["viber", "sms"]
    [code] = CODE.findall(sent.body["data"]["viber"]["text"])
    assert CODE.findall(sent.body["data"]["sms"]["text"]) == [code]
    assert verification.message is not None
    assert verification.message.channels == "viber,sms"
    assert check_code(NUMBER, code) is True


@pytest.mark.django_db
def test_a_failed_send_is_still_linked_and_its_code_does_not_work(sandbox: Simulator) -> None:
    sandbox.add_rule(NUMBER, Outcome.REJECTED)  # SMS-fly refuses the recipient
    verification = send_code(NUMBER)
    assert verification.message is not None
    assert verification.message.state == Message.State.FAILED
    stored = Verification.objects.get()
    assert stored.message_id == verification.message.pk
    assert stored.outcome == "not_sent"
    assert check_code(NUMBER, code_sent(sandbox)) is False


@pytest.mark.django_db
def test_a_failed_send_leaves_the_code_before_it_working(
    sandbox: Simulator, settings: Any
) -> None:
    verification_settings(settings, RESEND_COOLDOWN=0)
    send_code(NUMBER)
    first = code_sent(sandbox)
    sandbox.add_rule(NUMBER, Outcome.REJECTED)
    send_code(NUMBER)
    assert check_code(NUMBER, first) is True


@pytest.mark.django_db
def test_a_send_refused_by_validation_leaves_no_row_and_no_count(settings: Any) -> None:
    settings.SMSFLY = {**settings.SMSFLY, "SMS_SOURCE": None}  # no sender name
    with pytest.raises(SmsFlyValidationError, match="source"):
        send_code(NUMBER)
    assert not Verification.objects.exists()
    settings.SMSFLY = {**settings.SMSFLY, "SMS_SOURCE": "InfoCenter"}
    send_code(NUMBER)  # no cooldown was started by the refused one


@pytest.mark.django_db
@pytest.mark.parametrize("purpose", ["", "x" * 65, None, 7])
def test_a_purpose_must_be_a_short_string(purpose: object) -> None:
    with pytest.raises(SmsFlyValidationError, match="purpose"):
        send_code(NUMBER, purpose=purpose)  # type: ignore[arg-type]


@pytest.mark.django_db
def test_the_text_names_the_site(sandbox: Simulator, settings: Any) -> None:
    verification_settings(settings, SITE_NAME="Shop.ua")
    send_code(NUMBER)
    assert "Shop.ua" in texts_sent(sandbox)[-1]


@pytest.mark.django_db
def test_the_text_setting_is_used(sandbox: Simulator, settings: Any) -> None:
    verification_settings(
        settings, TEXT="%(code)s: код %(site)s, %(minutes)s хв", SITE_NAME="Shop", TTL=600
    )
    send_code(NUMBER)
    text = texts_sent(sandbox)[-1]
    code = code_sent(sandbox)
    assert text == f"{code}: код Shop, 10 хв"


@pytest.mark.django_db
def test_the_text_is_in_the_language_asked_for(sandbox: Simulator) -> None:
    send_code(NUMBER, language="uk")
    with translation.override("uk"):
        expected = translation.gettext(
            "Your code for %(site)s: %(code)s. Do not share it with anyone."
        ) % {"site": translation.gettext("our site"), "code": code_sent(sandbox)}
    assert texts_sent(sandbox)[-1] == expected
    assert translation.get_language() == "en"  # the language is switched back


@pytest.mark.django_db
def test_the_default_text_is_ukrainian_with_language_uk(sandbox: Simulator) -> None:
    send_code(NUMBER, language="uk")
    text = texts_sent(sandbox)[-1]
    assert re.search("[а-яіїєґ]", text, re.IGNORECASE), text


# -- the limits -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_asking_again_within_the_cooldown_is_throttled(
    sandbox: Simulator, settings: Any, counters: str
) -> None:
    send_code(NUMBER)
    with pytest.raises(Throttled) as refused:
        send_code(NUMBER)
    assert refused.value.reason == "cooldown"
    assert 1 <= refused.value.retry_after <= 60
    assert "second" in str(refused.value)
    assert len(sandbox.requests_for("SENDMESSAGE")) == 1


@pytest.mark.django_db
def test_the_cooldown_is_per_number_and_purpose(
    sandbox: Simulator, settings: Any, counters: str
) -> None:
    send_code(NUMBER, purpose="login")
    send_code(NUMBER, purpose="reset")
    send_code(OTHER, purpose="login")
    assert len(sandbox.requests_for("SENDMESSAGE")) == 3


@pytest.mark.django_db
def test_a_code_may_be_sent_again_once_the_cooldown_is_over(
    sandbox: Simulator, settings: Any
) -> None:
    send_code(NUMBER)
    Verification.objects.update(created_at=timezone.now() - dt.timedelta(seconds=61))
    send_code(NUMBER)
    assert len(sandbox.requests_for("SENDMESSAGE")) == 2


@pytest.mark.django_db
def test_the_hourly_limit_per_number_counts_every_purpose(
    sandbox: Simulator, settings: Any, counters: str
) -> None:
    verification_settings(settings, MAX_PER_RECIPIENT_PER_HOUR=3)
    for purpose in ("login", "reset", "email"):
        send_code(NUMBER, purpose=purpose)
    with pytest.raises(Throttled) as refused:
        send_code(NUMBER, purpose="yet-another")  # varying the purpose does not help
    assert refused.value.reason == "recipient"
    assert 3500 <= refused.value.retry_after <= 3600
    send_code(OTHER, purpose="login")  # another number has its own count
    assert len(sandbox.requests_for("SENDMESSAGE")) == 4


@pytest.mark.django_db
def test_the_hourly_limit_per_number_frees_a_place_when_the_oldest_leaves_the_hour(
    sandbox: Simulator, settings: Any
) -> None:
    verification_settings(settings, MAX_PER_RECIPIENT_PER_HOUR=2, RESEND_COOLDOWN=0)
    send_code(NUMBER)
    send_code(NUMBER)
    oldest = Verification.objects.order_by("pk").first()
    assert oldest is not None
    Verification.objects.filter(pk=oldest.pk).update(
        created_at=timezone.now() - dt.timedelta(minutes=50)
    )
    with pytest.raises(Throttled) as refused:
        send_code(NUMBER)
    assert 590 <= refused.value.retry_after <= 600  # when the oldest is an hour old
    Verification.objects.filter(pk=oldest.pk).update(
        created_at=timezone.now() - dt.timedelta(minutes=61)
    )
    send_code(NUMBER)


@pytest.mark.django_db
def test_the_hourly_limit_per_address(sandbox: Simulator, settings: Any, counters: str) -> None:
    verification_settings(settings, MAX_PER_IP_PER_HOUR=2)
    send_code("380501111111", request=from_address("203.0.113.7"))
    send_code("380502222222", request=from_address("203.0.113.7"))
    with pytest.raises(Throttled) as refused:
        send_code("380503333333", request=from_address("203.0.113.7"))
    assert refused.value.reason == "ip"
    send_code("380503333333", request=from_address("203.0.113.8"))
    send_code("380504444444")  # without a request there is no address to count
    assert len(sandbox.requests_for("SENDMESSAGE")) == 4


@pytest.mark.django_db
def test_x_forwarded_for_is_not_believed_by_default(
    sandbox: Simulator, settings: Any, counters: str
) -> None:
    verification_settings(settings, MAX_PER_IP_PER_HOUR=1)
    send_code("380501111111", request=from_address("203.0.113.7", "198.51.100.1"))
    with pytest.raises(Throttled):  # a made-up header changes nothing
        send_code("380502222222", request=from_address("203.0.113.7", "198.51.100.2"))
    assert Verification.objects.filter(refusal="").get().client_ip == "203.0.113.7"


@pytest.mark.django_db
def test_behind_a_trusted_proxy_the_address_it_saw_counts(
    sandbox: Simulator, settings: Any, counters: str
) -> None:
    verification_settings(settings, MAX_PER_IP_PER_HOUR=1, TRUSTED_PROXIES=1)
    proxy = "10.0.0.2"
    send_code("380501111111", request=from_address(proxy, "198.51.100.1"))
    send_code("380502222222", request=from_address(proxy, "198.51.100.2"))  # another client
    # The client writes a header of its own: the proxy appends the address it saw.
    with pytest.raises(Throttled) as refused:
        send_code("380503333333", request=from_address(proxy, "192.0.2.99, 198.51.100.1"))
    assert refused.value.reason == "ip"
    assert set(Verification.objects.values_list("client_ip", flat=True)) == {
        "198.51.100.1",
        "198.51.100.2",
    }


@pytest.mark.django_db
def test_two_trusted_proxies_read_the_second_address_from_the_right(settings: Any) -> None:
    verification_settings(settings, TRUSTED_PROXIES=2)
    request = from_address("10.0.0.3", "192.0.2.99, 198.51.100.1, 10.0.0.2")
    verification = send_code(NUMBER, request=request)
    assert verification.client_ip == "198.51.100.1"


@pytest.mark.django_db
def test_ipv6_clients_are_counted_by_their_64_network(
    sandbox: Simulator, settings: Any, counters: str
) -> None:
    verification_settings(settings, MAX_PER_IP_PER_HOUR=1)
    send_code("380501111111", request=from_address("2001:db8:1:2::1"))
    with pytest.raises(Throttled):
        send_code("380502222222", request=from_address("2001:db8:1:2:ffff::9"))
    send_code("380502222222", request=from_address("2001:db8:1:3::1"))
    assert Verification.objects.filter(refusal="ip").get().client_network == "2001:db8:1:2::/64"


@pytest.mark.django_db
def test_the_daily_limit_for_the_site(sandbox: Simulator, settings: Any, counters: str) -> None:
    verification_settings(settings, MAX_PER_DAY=2)
    send_code("380501111111")
    send_code("380502222222")
    with pytest.raises(Throttled) as refused:
        send_code("380503333333")
    assert refused.value.reason == "daily"
    assert 1 <= refused.value.retry_after <= 86400  # at midnight, the site's time
    assert len(sandbox.requests_for("SENDMESSAGE")) == 2


@pytest.mark.django_db
def test_the_daily_spend_limit(sandbox: Simulator, settings: Any, counters: str) -> None:
    # An SMS to a Vodafone number costs 0.479 in the sandbox's price list.
    verification_settings(settings, DAILY_SPEND_LIMIT="1.00")
    first = send_code("380501111111")
    send_code("380502222222")
    with pytest.raises(Throttled) as refused:
        send_code("380503333333")
    assert refused.value.reason == "spend"
    assert first.cost == Decimal("0.479")
    assert len(sandbox.requests_for("SENDMESSAGE")) == 2


@pytest.mark.django_db
def test_every_refusal_is_recorded_for_the_operator(sandbox: Simulator) -> None:
    send_code(NUMBER, request=from_address("203.0.113.7"))
    with pytest.raises(Throttled):
        send_code(NUMBER, request=from_address("203.0.113.7"))
    refusal = Verification.objects.exclude(refusal="").get()
    assert refusal.refusal == "cooldown"
    assert refusal.country == "UA"
    assert refusal.client_ip == "203.0.113.7"
    assert refusal.code_hash == ""
    assert refusal.message is None
    assert refusal.outcome == "refused"


@pytest.mark.django_db
def test_refused_requests_count_against_no_limit(sandbox: Simulator, settings: Any) -> None:
    verification_settings(settings, MAX_PER_RECIPIENT_PER_HOUR=2)
    send_code(NUMBER)
    for _ in range(5):
        with pytest.raises(Throttled):
            send_code(NUMBER)
    Verification.objects.filter(refusal="").update(
        created_at=timezone.now() - dt.timedelta(seconds=61)
    )
    send_code(NUMBER)  # the second of two: the five refusals took no place


@pytest.mark.django_db
def test_without_a_shared_cache_the_rows_are_the_count(sandbox: Simulator) -> None:
    send_code(NUMBER)
    Verification.objects.all().delete()
    send_code(NUMBER)


@pytest.mark.django_db
def test_a_shared_cache_keeps_the_count_itself(sandbox: Simulator, settings: Any) -> None:
    if not REDIS:
        pytest.skip("needs Redis on 127.0.0.1:6379")
    shared_cache_settings(settings)
    send_code(NUMBER)
    Verification.objects.all().delete()
    with pytest.raises(Throttled):  # the cache still holds the cooldown
        send_code(NUMBER)


@pytest.mark.django_db
def test_when_the_shared_cache_fails_the_database_counts(
    sandbox: Simulator, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    if not REDIS:
        pytest.skip("needs the redis library")
    shared_cache_settings(settings, location="redis://127.0.0.1:1/0")  # nobody listens
    send_code(NUMBER)
    with pytest.raises(Throttled):
        send_code(NUMBER)
    assert "counting rows instead" in caplog.text
    assert len(sandbox.requests_for("SENDMESSAGE")) == 1


# -- countries --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_number_in_another_country_is_refused_before_any_request(sandbox: Simulator) -> None:
    with pytest.raises(SmsFlyValidationError) as refused:
        send_code(POLISH, request=from_address("198.51.100.5"))
    assert refused.value.field == "recipient"
    assert sandbox.requests_for("SENDMESSAGE") == []
    assert sandbox.requests == []  # not even a price asked
    refusal = Verification.objects.get()
    assert (refusal.refusal, refusal.country) == ("region", "PL")
    assert refusal.client_ip == "198.51.100.5"
    assert not Message.objects.exists()


@pytest.mark.django_db
def test_allowed_regions_let_the_countries_named_through(
    sandbox: Simulator, settings: Any
) -> None:
    verification_settings(settings, ALLOWED_REGIONS=["UA", "pl"])
    verification = send_code(POLISH)
    assert verification.country == "PL"
    assert len(sandbox.requests_for("SENDMESSAGE")) == 1


@pytest.mark.django_db
def test_allowed_regions_follow_the_default_region(sandbox: Simulator, settings: Any) -> None:
    settings.SMSFLY = {**settings.SMSFLY, "DEFAULT_REGION": "PL"}
    send_code("512 345 678")
    with pytest.raises(SmsFlyValidationError):
        send_code(NUMBER)


@pytest.mark.django_db
@pytest.mark.parametrize("recipient", ["not a number", "0501234567;0671234567", "044 123 4567"])
def test_what_is_not_a_mobile_number_is_refused_and_not_recorded(
    sandbox: Simulator, recipient: str
) -> None:
    with pytest.raises(SmsFlyValidationError):
        send_code(recipient)
    assert not Verification.objects.exists()
    assert sandbox.requests == []


# -- where the code is (the request body, nowhere else) ---------------------------------------


@pytest.mark.django_db
def test_the_code_is_only_in_the_request_body(
    sandbox: Simulator, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        verification = send_code(NUMBER, request=from_address("203.0.113.7"))
        code = code_sent(sandbox)
        with pytest.raises(Throttled) as refused:
            send_code(NUMBER)
        assert check_code(NUMBER, code)
    assert contains(texts_sent(sandbox)[-1], code)
    stored = Verification.objects.get(pk=verification.pk)
    for text in (
        every_row(),
        caplog.text,
        repr(verification) + str(verification) + repr(stored) + str(stored),
        repr(verification.message) + str(verification.message),
        repr(refused.value) + str(refused.value),
    ):
        assert not contains(text, code)


@pytest.mark.django_db
def test_only_a_keyed_hash_of_the_code_is_stored(sandbox: Simulator, settings: Any) -> None:
    send_code(NUMBER)
    code = code_sent(sandbox)
    stored = Verification.objects.get().code_hash
    assert len(stored) == 64
    assert stored not in {hashlib.sha256(code.encode()).hexdigest(), code}
    with override_settings(SECRET_KEY="another-key", SECRET_KEY_FALLBACKS=[]):
        assert check_code(NUMBER, code) is False  # the hash needs the site's key


@pytest.mark.django_db
def test_a_code_survives_a_key_rotation_through_the_fallbacks(
    sandbox: Simulator, settings: Any
) -> None:
    send_code(NUMBER)
    code = code_sent(sandbox)
    old_key = settings.SECRET_KEY
    with override_settings(SECRET_KEY="the-new-key", SECRET_KEY_FALLBACKS=[old_key]):
        assert check_code(NUMBER, code) is True


@pytest.mark.django_db
def test_the_debug_log_of_a_real_request_never_shows_the_code(
    http_site: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        send_code(NUMBER)
    code = code_sent(http_site)  # the body SMS-fly received carries it
    assert "SENDMESSAGE" in caplog.text  # the request was logged, its text masked
    assert "••••••" in caplog.text
    assert not contains(caplog.text, code)
    assert not contains(every_row(), code)


@pytest.fixture
def operator(db: None) -> Client:
    browser = Client()
    browser.force_login(User.objects.create_superuser("op", "op@example.com", "pw"))
    return browser


@pytest.mark.django_db
def test_the_admin_never_shows_the_code(
    sandbox: Simulator, operator: Client, settings: Any
) -> None:
    verification = send_code(NUMBER, request=from_address("203.0.113.7"))
    code = code_sent(sandbox)
    assert verification.message is not None
    pages = [
        reverse("admin:django_smsfly_verification_changelist"),
        reverse("admin:django_smsfly_verification_change", args=[verification.pk]),
        reverse("admin:django_smsfly_verification_fraud_guard"),
        reverse("admin:django_smsfly_message_changelist"),
        reverse("admin:django_smsfly_message_change", args=[verification.message.pk]),
    ]
    for page in pages:
        response = operator.get(page)
        assert response.status_code == 200, page
        html = response.content.decode()
        assert not contains(html, code), page
        assert verification.code_hash not in html, page


@pytest.mark.django_db
def test_the_admin_list_masks_numbers_when_asked(operator: Client, settings: Any) -> None:
    settings.SMSFLY = {**settings.SMSFLY, "MASK_RECIPIENTS": True}
    send_code(NUMBER)
    html = operator.get(reverse("admin:django_smsfly_verification_changelist")).content.decode()
    assert "380501****67" in html
    assert NUMBER not in html


@pytest.mark.django_db
def test_the_admin_is_read_only(operator: Client) -> None:
    verification = send_code(NUMBER)
    add = operator.get(reverse("admin:django_smsfly_verification_add"))
    assert add.status_code == 403
    change = reverse("admin:django_smsfly_verification_change", args=[verification.pk])
    operator.post(change, {"purpose": "changed", "attempts": "0"})
    assert Verification.objects.get().purpose == "verify"


@pytest.mark.django_db
def test_the_admin_finds_a_number_however_it_is_written(operator: Client) -> None:
    send_code(NUMBER)
    send_code(OTHER)
    url = reverse("admin:django_smsfly_verification_changelist")
    response = operator.get(url, {"q": "050 123 45 67"})
    assert list(response.context["cl"].result_list.values_list("recipient", flat=True)) == [NUMBER]


# -- the fraud guard page ---------------------------------------------------------------------


@pytest.mark.django_db
def test_the_fraud_guard_counts_codes_and_refusals_by_reason_and_country(
    sandbox: Simulator, operator: Client
) -> None:
    send_code(NUMBER, request=from_address("203.0.113.7"))
    assert check_code(NUMBER, code_sent(sandbox))
    send_code(OTHER, request=from_address("203.0.113.7"))
    for _ in range(2):
        with pytest.raises(Throttled):
            send_code(OTHER, request=from_address("203.0.113.7"))
    for _ in range(3):
        with pytest.raises(SmsFlyValidationError):
            send_code(POLISH, request=from_address("198.51.100.5"))

    response = operator.get(reverse("admin:django_smsfly_verification_fraud_guard"))
    assert response.status_code == 200
    report = response.context["report"]
    [today] = [day for day in report.days if day.day == timezone.localdate()]
    assert (today.sent, today.verified) == (2, 1)
    assert today.refused == {"cooldown": 2, "region": 3}
    assert today.conversion == Decimal("0.5")
    by_country = {row.country: (row.sent, row.refused) for row in report.countries}
    assert by_country == {"UA": (2, 2), "PL": (0, 3)}
    assert [(row.network, row.refused) for row in report.networks] == [
        ("198.51.100.5", 3),
        ("203.0.113.7", 2),
    ]
    html = response.content.decode()
    assert "Fraud guard" in html
    assert 'data-country="PL"' in html
    assert len(report.days) == 30


@pytest.mark.django_db
def test_the_fraud_guard_needs_the_view_permission(operator: Client) -> None:
    browser = staff_with()
    url = reverse("admin:django_smsfly_verification_fraud_guard")
    assert browser.get(url).status_code == 403
    assert operator.get(url).status_code == 200


@pytest.mark.django_db
def test_the_list_links_to_the_fraud_guard(operator: Client) -> None:
    html = operator.get(reverse("admin:django_smsfly_verification_changelist")).content.decode()
    assert reverse("admin:django_smsfly_verification_fraud_guard") in html


# -- smsfly_cleanup ---------------------------------------------------------------------------


def cleanup(*args: str) -> str:
    out = StringIO()
    call_command("smsfly_cleanup", *args, stdout=out)
    return out.getvalue()


def age(days: int, **filters: Any) -> None:
    past = timezone.now() - dt.timedelta(days=days)
    Verification.objects.filter(**filters).update(created_at=past, expires_at=past)


@pytest.mark.django_db
def test_cleanup_deletes_old_verifications_with_the_messages_age() -> None:
    send_code(NUMBER)
    send_code(OTHER)
    with pytest.raises(Throttled):
        send_code(OTHER)
    age(40, recipient=NUMBER)
    age(40, refusal="cooldown")

    assert cleanup("--older-than", "30", "--dry-run") == (
        "0 messages would be deleted.\n2 verifications would be deleted.\n"
    )
    assert Verification.objects.count() == 3
    assert cleanup("--older-than", "30") == "0 messages deleted.\n2 verifications deleted.\n"
    assert list(Verification.objects.values_list("recipient", "refusal")) == [(OTHER, "")]


@pytest.mark.django_db
def test_cleanup_may_keep_verifications_for_a_time_of_their_own() -> None:
    send_code(NUMBER)
    age(10)
    assert cleanup("--older-than", "30") == "0 messages deleted.\n"  # as before codes
    assert cleanup("--older-than", "30", "--verifications-older-than", "7") == (
        "0 messages deleted.\n1 verification deleted.\n"
    )
    assert not Verification.objects.exists()


@pytest.mark.django_db
def test_cleanup_keeps_a_code_that_can_still_be_used(settings: Any, sandbox: Simulator) -> None:
    verification_settings(settings, TTL=86400)
    send_code(NUMBER)
    Verification.objects.update(created_at=timezone.now() - dt.timedelta(days=2))
    cleanup("--older-than", "1")
    assert Verification.objects.count() == 1
    assert check_code(NUMBER, code_sent(sandbox)) is True


# -- at the same time (PostgreSQL) ------------------------------------------------------------

needs_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="needs PostgreSQL (set DATABASE_URL)"
)


@needs_postgresql
@pytest.mark.django_db(transaction=True)
def test_eight_concurrent_checks_of_the_right_code_succeed_once(sandbox: Simulator) -> None:
    send_code(NUMBER)
    code = code_sent(sandbox)
    results = run_together(8, lambda _index: check_code(NUMBER, code), timeout=60)
    assert results.count(True) == 1
    assert results.count(False) == 7


@needs_postgresql
@pytest.mark.django_db(transaction=True)
def test_concurrent_guesses_are_compared_no_more_than_max_attempts_times(
    sandbox: Simulator,
) -> None:
    send_code(NUMBER)
    code = code_sent(sandbox)
    guesses = [f"{(int(code) + n) % 1_000_000:06d}" for n in range(1, 33)]
    results = run_together(32, lambda index: check_code(NUMBER, guesses[index]), timeout=60)
    assert results.count(True) == 0
    assert Verification.objects.get().attempts == 5  # MAX_ATTEMPTS, not 32
    assert check_code(NUMBER, code) is False


@needs_postgresql
@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_for_one_number_send_one_code_with_a_shared_cache(
    sandbox: Simulator, settings: Any
) -> None:
    if not REDIS:
        pytest.skip("needs Redis on 127.0.0.1:6379")
    shared_cache_settings(settings)

    def ask(_index: int) -> str:
        try:
            send_code(NUMBER)
        except Throttled as exc:
            return exc.reason
        return "sent"

    results = run_together(8, ask, timeout=60)
    assert sorted(results) == ["cooldown"] * 7 + ["sent"]
    assert len(sandbox.requests_for("SENDMESSAGE")) == 1
