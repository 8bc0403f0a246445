"""django_smsfly.contrib.otp: an SMS device for django-otp, tested with the real django-otp."""

from __future__ import annotations

import datetime as dt
from io import StringIO
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.test import Client
from django_otp import devices_for_user, match_token, user_has_device
from django_otp import verify_token as otp_verify_token
from django_otp.forms import OTPAuthenticationForm

from django_smsfly.backends.sandbox import get_simulator
from django_smsfly.contrib.codes import CodeNotSent
from django_smsfly.contrib.otp.models import SmsFlyDevice
from django_smsfly.models import Message, Verification
from tests.contrib.conftest import (
    NUMBER,
    POLISH,
    REFUSED_BY_SMSFLY,
    last_code,
    sent_count,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def device(user: Any) -> SmsFlyDevice:
    created: SmsFlyDevice = SmsFlyDevice.objects.create(user=user, name="phone", number=NUMBER)
    return created


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


# -- the device protocol ------------------------------------------------------------------


def test_a_challenge_sends_a_code_by_sms_and_says_where(device: SmsFlyDevice) -> None:
    said = device.generate_challenge()

    assert said == "sent by SMS to +380501****67"
    assert sent_count() == 1
    assert get_simulator().requests_for("SENDMESSAGE")[-1].body["data"]["recipient"] == NUMBER
    assert len(last_code()) == 6


def test_the_code_is_kept_in_no_record(device: SmsFlyDevice) -> None:
    device.generate_challenge()
    code = last_code()

    message = Message.objects.get()
    assert message.sensitive
    assert code not in str(message.content)
    verification = Verification.objects.get()
    assert verification.message == message
    assert code not in str(SmsFlyDevice.objects.filter(pk=device.pk).values().get())
    assert code not in verification.code_hash


def test_the_right_token_verifies_once(device: SmsFlyDevice) -> None:
    device.generate_challenge()
    code = last_code()

    assert device.verify_token(code) is True
    assert device.verify_token(code) is False


def test_a_wrong_token_fails_and_django_otps_throttling_makes_the_next_wait(
    device: SmsFlyDevice,
) -> None:
    device.generate_challenge()
    code = last_code()

    assert device.verify_token(wrong(code)) is False
    device.refresh_from_db()
    assert device.throttling_failure_count == 1
    allowed, details = device.verify_is_allowed()
    assert allowed is False
    assert details is not None
    assert details["failure_count"] == 1
    # Even the right code is not checked while the device waits...
    assert device.verify_token(code) is False
    # ...and is good once the wait is over.
    SmsFlyDevice.objects.filter(pk=device.pk).update(
        throttling_failure_timestamp=device.throttling_failure_timestamp - dt.timedelta(seconds=5)
    )
    device.refresh_from_db()
    assert device.verify_token(code) is True
    device.refresh_from_db()
    assert device.throttling_failure_count == 0
    assert device.last_used_at is not None


def test_throttling_can_be_turned_off(device: SmsFlyDevice, settings: Any) -> None:
    settings.OTP_SMSFLY_THROTTLE_FACTOR = 0
    device = SmsFlyDevice.objects.get(pk=device.pk)  # the factor is read once per instance
    device.generate_challenge()
    code = last_code()

    assert device.verify_token(wrong(code)) is False
    assert device.verify_is_allowed() == (True, None)
    assert device.verify_token(code) is True


def test_a_code_for_one_device_does_not_pass_for_another_with_the_same_number(
    device: SmsFlyDevice, user: Any
) -> None:
    other = SmsFlyDevice.objects.create(user=user, name="same phone", number=NUMBER)
    device.generate_challenge()
    code = last_code()

    assert other.verify_token(code) is False
    assert device.verify_token(code) is True


def test_an_expired_code_fails(device: SmsFlyDevice, settings: Any) -> None:
    device.generate_challenge()
    code = last_code()
    Verification.objects.update(expires_at=Verification.objects.get().created_at)

    assert device.verify_token(code) is False


def test_an_unsaved_device_refuses_to_send(user: Any) -> None:
    with pytest.raises(ValueError, match="save the device"):
        SmsFlyDevice(user=user, name="phone", number=NUMBER).generate_challenge()
    assert sent_count() == 0


# -- when no code goes out ----------------------------------------------------------------


def test_asking_again_at_once_is_throttled_with_the_wait(device: SmsFlyDevice) -> None:
    device.generate_challenge()

    with pytest.raises(CodeNotSent) as caught:
        device.generate_challenge()

    assert caught.value.reason == "throttled"
    assert caught.value.retry_after is not None
    assert 0 < caught.value.retry_after <= 60
    assert f"Try again in {caught.value.retry_after} seconds" in str(caught.value)
    assert sent_count() == 1


def test_a_number_in_another_country_is_refused_before_any_request(user: Any) -> None:
    device = SmsFlyDevice.objects.create(user=user, name="abroad", number=POLISH)

    with pytest.raises(CodeNotSent) as caught:
        device.generate_challenge()

    assert caught.value.reason == "refused"
    assert str(caught.value).startswith("This number cannot receive a code: ")
    assert sent_count() == 0


def test_a_message_smsfly_refuses_is_reported(user: Any) -> None:
    device = SmsFlyDevice.objects.create(user=user, name="phone", number=REFUSED_BY_SMSFLY)

    with pytest.raises(CodeNotSent) as caught:
        device.generate_challenge()

    assert caught.value.reason == "failed"
    assert str(caught.value) == (
        "The text message with your code could not be sent. Try again later."
    )


# -- the model ----------------------------------------------------------------------------


def test_clean_stores_the_number_as_international_digits(user: Any) -> None:
    device = SmsFlyDevice(user=user, name="phone", number="050 123 45 67")
    device.full_clean()
    assert device.number == NUMBER


def test_clean_refuses_what_is_not_one_mobile_number(user: Any) -> None:
    device = SmsFlyDevice(user=user, name="phone", number="050 123 4567 or 067 123 4567")
    with pytest.raises(ValidationError) as caught:
        device.full_clean()
    assert "number" in caught.value.message_dict


def test_the_device_model_has_its_migration() -> None:
    out = StringIO()
    try:
        call_command("makemigrations", "smsfly_otp", check=True, dry_run=True, stdout=out)
    except SystemExit:  # pragma: no cover - the failure this test exists for
        pytest.fail(f"Model changes without a migration:\n{out.getvalue()}")


# -- with django-otp's own API and forms --------------------------------------------------


def test_django_otp_lists_the_device_and_matches_its_token(
    device: SmsFlyDevice, user: Any
) -> None:
    assert user_has_device(user)
    assert list(devices_for_user(user)) == [device]
    assert device.persistent_id == f"smsfly_otp.smsflydevice/{device.pk}"

    device.generate_challenge()
    code = last_code()
    assert otp_verify_token(user, device.persistent_id, wrong(code)) is None
    SmsFlyDevice.objects.update(throttling_failure_timestamp=None)  # no wait for the test
    assert match_token(user, code) == device


def test_django_otps_login_form_asks_for_a_challenge_then_accepts_the_code(
    device: SmsFlyDevice, user: Any
) -> None:
    credentials = {"username": "alice", "password": "secret", "otp_device": device.persistent_id}

    challenge = OTPAuthenticationForm(data={**credentials, "otp_challenge": "1"})
    assert not challenge.is_valid()
    assert challenge.non_field_errors() == ["OTP Challenge: sent by SMS to +380501****67"]

    again = OTPAuthenticationForm(data={**credentials, "otp_challenge": "1"})
    assert not again.is_valid()
    (error,) = again.non_field_errors()
    assert error.startswith("Error generating challenge: Too many codes were asked for.")

    login = OTPAuthenticationForm(data={**credentials, "otp_token": last_code()})
    assert login.is_valid(), login.errors
    assert login.get_user().otp_device == device


def test_logging_in_to_django_otps_admin_site_with_a_code_by_sms(
    device: SmsFlyDevice, user: Any, settings: Any
) -> None:
    settings.ROOT_URLCONF = "tests.contrib.urls"
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, "django_otp.middleware.OTPMiddleware"]
    user.is_staff = True
    user.save()
    browser = Client()
    credentials = {"username": "alice", "password": "secret", "otp_device": device.persistent_id}

    assert browser.get("/private/").status_code == 302
    page = browser.post("/otp-admin/login/", {**credentials, "otp_challenge": "1"})
    assert "OTP Challenge: sent by SMS to +380501****67" in page.content.decode()
    done = browser.post(
        "/otp-admin/login/?next=/private/", {**credentials, "otp_token": last_code()}
    )

    assert done.status_code == 302
    assert done["Location"] == "/private/"
    assert browser.get("/private/").content.decode() == f"verified with {device.persistent_id}"
    assert browser.get("/otp-admin/").status_code == 200


def test_the_admin_lists_devices_with_their_numbers_masked(
    device: SmsFlyDevice, operator: Client
) -> None:
    page = operator.get("/admin/smsfly_otp/smsflydevice/")

    assert page.status_code == 200
    assert "+380501****67" in page.content.decode()
    assert operator.get(f"/admin/smsfly_otp/smsflydevice/{device.pk}/change/").status_code == 200
