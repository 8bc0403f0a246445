"""django_smsfly.contrib.two_factor: django-two-factor-auth's SMS gateway and views, with
the real two-factor (its login wizard driven through Django's test client)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import Client
from django.urls import resolve, reverse
from two_factor.plugins.phonenumber.models import PhoneDevice
from two_factor.views import LoginView as TwoFactorLoginView

from django_smsfly.backends.sandbox import get_simulator
from django_smsfly.contrib.codes import CodeNotSent
from django_smsfly.contrib.two_factor import Gateway
from django_smsfly.contrib.two_factor.views import LoginView, PhoneSetupView, SetupView
from django_smsfly.models import Message, Verification
from django_smsfly.verification import send_code
from tests.contrib.conftest import (
    NUMBER,
    POLISH,
    REFUSED_BY_SMSFLY,
    last_code,
    last_text,
    sent_count,
)

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.contrib.urls")]

LOGIN = "/account/login/"


@pytest.fixture(autouse=True)
def _two_factor_settings(settings: Any) -> None:
    settings.TWO_FACTOR_SMS_GATEWAY = "django_smsfly.contrib.two_factor.Gateway"
    settings.LOGIN_URL = "two_factor:login"
    settings.LOGIN_REDIRECT_URL = "/private/"
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, "django_otp.middleware.OTPMiddleware"]


def phone(user: Any, number: str = NUMBER, name: str = "default") -> PhoneDevice:
    """A confirmed SMS device of ``user``: two-factor asks it for a token at login."""
    return PhoneDevice.objects.create(user=user, name=name, number=f"+{number}", method="sms")


def step(page: Any) -> str:
    """The wizard step a page shows."""
    found = re.search(r'name="login_view-current_step" value="(\w+)"', page.content.decode())
    assert found is not None, page.content.decode()
    return found.group(1)


def password_step(browser: Client, url: str = LOGIN) -> Any:
    return browser.post(
        url,
        {
            "login_view-current_step": "auth",
            "auth-username": "alice",
            "auth-password": "secret",
        },
    )


def token_step(browser: Client, token: str, url: str = LOGIN) -> Any:
    return browser.post(url, {"login_view-current_step": "token", "token-otp_token": token})


def errors(page: Any) -> list[str]:
    """The texts of the form's non-field errors on a page."""
    return re.findall(r'<ul class="errorlist nonfield">\s*<li>(.*?)</li>', page.content.decode())


# -- the gateway --------------------------------------------------------------------------


def test_the_gateway_sends_the_token_in_a_sensitive_sms(user: Any) -> None:
    Gateway().send_sms(device=phone(user), token="123456")

    request = get_simulator().requests_for("SENDMESSAGE")[-1]
    assert request.body["data"]["recipient"] == NUMBER
    assert "123456" in last_text()
    message = Message.objects.get()
    assert message.sensitive
    assert "123456" not in str(message.content)
    verification = Verification.objects.get()
    assert (verification.purpose, verification.message) == ("two_factor", message)
    assert "123456" not in verification.code_hash


def test_the_text_has_the_sites_name_in_the_active_language(user: Any, settings: Any) -> None:
    settings.SMSFLY = {
        **settings.SMSFLY,
        "VERIFICATION": {"SITE_NAME": "Shop", "TEXT": "%(site)s: %(code)s", "RESEND_COOLDOWN": 0},
    }
    device = phone(user)
    Gateway().send_sms(device=device, token="123456")
    assert last_text() == "Shop: 123456"


def test_the_gateway_takes_any_object_with_a_number() -> None:
    class Device:
        number = "050 123 4567"

    Gateway().send_sms(device=Device(), token="654321")
    assert "654321" in last_text()


def test_a_number_in_another_country_is_refused_before_any_request(user: Any) -> None:
    with pytest.raises(CodeNotSent) as caught:
        Gateway().send_sms(device=phone(user, POLISH), token="123456")

    assert caught.value.reason == "refused"
    assert sent_count() == 0
    assert Verification.objects.get().refusal == Verification.Refusal.REGION


def test_a_second_token_at_once_is_throttled(user: Any) -> None:
    device = phone(user)
    Gateway().send_sms(device=device, token="123456")

    with pytest.raises(CodeNotSent) as caught:
        Gateway().send_sms(device=device, token="654321")

    assert caught.value.reason == "throttled"
    assert caught.value.retry_after is not None
    assert "Try again in" in str(caught.value)
    assert sent_count() == 1


def test_the_daily_cap_counts_tokens_with_every_other_code(user: Any, settings: Any) -> None:
    settings.SMSFLY = {**settings.SMSFLY, "VERIFICATION": {"MAX_PER_DAY": 1}}
    send_code("050 765 4321")

    with pytest.raises(CodeNotSent) as caught:
        Gateway().send_sms(device=phone(user), token="123456")

    assert caught.value.reason == "throttled"
    assert Verification.objects.get(purpose="two_factor").refusal == "daily"
    assert sent_count() == 1


def test_the_daily_spend_limit_applies_to_tokens(user: Any, settings: Any) -> None:
    settings.SMSFLY = {**settings.SMSFLY, "VERIFICATION": {"DAILY_SPEND_LIMIT": "0.01"}}

    with pytest.raises(CodeNotSent):
        Gateway().send_sms(device=phone(user), token="123456")

    assert Verification.objects.get().refusal == "spend"
    assert sent_count() == 0


def test_a_message_smsfly_refuses_is_reported(user: Any) -> None:
    with pytest.raises(CodeNotSent) as caught:
        Gateway().send_sms(device=phone(user, REFUSED_BY_SMSFLY), token="123456")
    assert caught.value.reason == "failed"


def test_calls_are_refused_as_a_configuration_mistake(user: Any) -> None:
    with pytest.raises(ImproperlyConfigured, match="TWO_FACTOR_CALL_GATEWAY"):
        Gateway().make_call(device=phone(user), token="123456")
    assert sent_count() == 0


# -- the login wizard ---------------------------------------------------------------------


def test_logging_in_with_a_token_read_from_the_sms(user: Any) -> None:
    device = phone(user)
    browser = Client()

    page = password_step(browser)
    assert page.status_code == 200
    assert step(page) == "token"
    assert sent_count() == 1
    done = token_step(browser, last_code())

    assert done.status_code == 302
    assert done["Location"] == "/private/"
    assert browser.get("/private/").content.decode() == f"verified with {device.persistent_id}"


def test_a_wrong_token_is_a_form_error_and_sends_nothing_more(user: Any, settings: Any) -> None:
    settings.TWO_FACTOR_PHONE_THROTTLE_FACTOR = 0  # no wait after the wrong token
    phone(user)
    browser = Client()
    password_step(browser)
    code = last_code()

    page = token_step(browser, f"{(int(code) + 1) % 1_000_000:06d}")

    assert page.status_code == 200
    assert step(page) == "token"
    assert sent_count() == 1
    assert token_step(browser, code).status_code == 302


@pytest.mark.parametrize(
    ("number", "error"),
    [
        (
            POLISH,
            "This number cannot receive a code: one-time codes are not sent to numbers in PL.",
        ),
        (
            REFUSED_BY_SMSFLY,
            "The text message with your code could not be sent. Try again later.",
        ),
    ],
    ids=["refused-number", "failed-message"],
)
def test_a_token_that_cannot_be_sent_is_a_form_error_not_a_500(
    user: Any, number: str, error: str
) -> None:
    phone(user, number)

    page = password_step(Client())

    assert page.status_code == 200
    assert step(page) == "token"
    assert errors(page) == [error]


def test_logging_in_again_at_once_is_throttled_on_the_token_step(user: Any) -> None:
    phone(user)
    password_step(Client())
    code = last_code()

    browser = Client()
    page = password_step(browser)

    assert page.status_code == 200
    assert step(page) == "token"
    (error,) = errors(page)
    assert re.fullmatch(r"Too many codes were asked for\. Try again in \d+ seconds?\.", error)
    assert sent_count() == 1
    # The code sent a moment ago is still good.
    assert token_step(browser, code).status_code == 302


def test_two_factors_own_login_view_lets_the_error_through(user: Any) -> None:
    """Why django-smsfly's URLs are needed: two-factor's own view answers a 500."""
    phone(user, POLISH)
    browser = Client(raise_request_exception=True)

    with pytest.raises(CodeNotSent):
        password_step(browser, "/stock/account/login/")


# -- the setup wizards --------------------------------------------------------------------


def setup_step(browser: Client, current: str, **data: str) -> Any:
    fields = {f"{current}-{name}": value for name, value in data.items()}
    return browser.post(
        "/account/two_factor/setup/", {"setup_view-current_step": current, **fields}
    )


def setup_current(page: Any) -> str:
    found = re.search(r'name="setup_view-current_step" value="(\w+)"', page.content.decode())
    assert found is not None, page.content.decode()
    return found.group(1)


def test_setting_up_two_factor_with_a_number_that_gets_codes(user: Any) -> None:
    browser = Client()
    browser.force_login(user)
    setup_step(browser, "welcome")
    setup_step(browser, "method", method="sms")

    page = setup_step(browser, "sms", number="+380 50 123 4567")

    assert setup_current(page) == "validation"
    assert sent_count() == 1
    done = setup_step(browser, "validation", token=last_code())
    assert done.status_code == 302
    device = PhoneDevice.objects.get(user=user)
    assert (device.name, device.method, str(device.number)) == ("default", "sms", f"+{NUMBER}")


def test_a_number_refused_in_setup_stays_on_its_step_with_the_reason(user: Any) -> None:
    browser = Client()
    browser.force_login(user)
    setup_step(browser, "welcome")
    setup_step(browser, "method", method="sms")

    page = setup_step(browser, "sms", number=f"+{POLISH}")

    assert page.status_code == 200
    assert setup_current(page) == "sms"
    assert errors(page) == [
        "This number cannot receive a code: one-time codes are not sent to numbers in PL."
    ]
    assert not PhoneDevice.objects.exists()


def test_a_backup_phone_that_cannot_get_a_code_stays_on_its_step(user: Any) -> None:
    device = phone(user)
    browser = Client()
    password_step(browser)
    token_step(browser, last_code())

    page = browser.post(
        "/account/two_factor/phone/register/",
        {
            "phone_setup_view-current_step": "setup",
            "setup-number": f"+{POLISH}",
            "setup-method": "sms",
        },
    )

    assert page.status_code == 200
    assert errors(page) == [
        "This number cannot receive a code: one-time codes are not sent to numbers in PL."
    ]
    assert list(PhoneDevice.objects.all()) == [device]


# -- the URLs -----------------------------------------------------------------------------


def test_the_urls_keep_two_factors_paths_and_names_with_these_views() -> None:
    assert reverse("two_factor:login") == LOGIN
    assert resolve(LOGIN).func.view_class is LoginView  # type: ignore[attr-defined]
    assert resolve("/account/two_factor/setup/").func.view_class is SetupView  # type: ignore[attr-defined]
    assert reverse("two_factor:phone_create") == "/account/two_factor/phone/register/"
    assert resolve(reverse("two_factor:phone_create")).func.view_class is PhoneSetupView  # type: ignore[attr-defined]
    for name in ("setup_complete", "backup_tokens", "profile", "disable", "qr"):
        assert reverse(f"two_factor:{name}") == reverse(f"stock_two_factor:{name}").removeprefix(
            "/stock"
        )
    assert issubclass(LoginView, TwoFactorLoginView)
