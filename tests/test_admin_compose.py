"""The admin's compose page: sending SMS and Viber messages from a form."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import Permission, User
from django.contrib.messages import get_messages
from django.test import Client, override_settings
from django.urls import resolve, reverse
from django.utils import formats, timezone

from django_smsfly.admin.widgets import segment_rules
from django_smsfly.backends.sandbox import Fault, Simulator
from django_smsfly.models import Message, OptOut
from django_smsfly.segments import count_segments

pytestmark = pytest.mark.django_db

ADD_URL = "admin:django_smsfly_message_add"
HOSTILE = '<script>alert("x")</script>'
COMPOSE_JS = (
    Path(__file__).resolve().parent.parent / "django_smsfly/static/django_smsfly/compose.js"
)


def drawn_token(browser: Client) -> str:
    """The one-time token of a compose form as the page draws it."""
    form = browser.get(reverse(ADD_URL)).context["form"]
    token: str = form["token"].value()
    return token


def compose(browser: Client, button: str = "_send", **fields: Any) -> Any:
    data = {"channels": "sms", "send_mode": "now", "sms_source": "InfoCenter", **fields}
    if "token" not in data:
        data["token"] = drawn_token(browser)
    data[button] = "1"
    return browser.post(reverse(ADD_URL), data)


def sent_data(sandbox: Simulator) -> list[dict[str, Any]]:
    return [r.body["data"] for r in sandbox.requests_for("SENDMESSAGE")]


def errors(response: Any) -> dict[str, list[str]]:
    assert response.status_code == 200, "an invalid form is shown again, not redirected"
    form_errors: dict[str, list[str]] = response.context["form"].errors
    return form_errors


def flash(response: Any) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


# -- the page ----------------------------------------------------------------------------


def test_the_page_offers_the_accounts_sender_names(operator: Client) -> None:
    smsfly = {
        "BACKEND": "django_smsfly.backends.sandbox.SandboxBackend",
        "BACKEND_OPTIONS": {"sources": {"sms": ["InfoCenter", "MyShop"], "viber": ["Promo"]}},
        "SMS_SOURCE": "InfoCenter",
    }
    with override_settings(SMSFLY=smsfly):
        page = operator.get(reverse(ADD_URL)).content.decode()
    assert '<option value="MyShop">MyShop</option>' in page
    assert '<option value="InfoCenter" selected>InfoCenter</option>' in page
    assert 'id="smsfly-sources-fallback"' not in page
    assert "django_smsfly/compose.js" in page
    assert 'id="smsfly-segment-rules"' in page
    assert 'id="id_sms_text_counter"' in page


def test_sender_names_fall_back_to_the_settings_when_smsfly_fails(
    operator: Client, sandbox: Simulator
) -> None:
    sandbox.inject(Fault.SERVICE_UNAVAILABLE, times=10, action="GETSOURCES")
    response = operator.get(reverse(ADD_URL))
    assert response.status_code == 200
    page = response.content.decode()
    assert 'id="smsfly-sources-fallback"' in page
    assert "could not be fetched from SMS-fly" in page
    # The defaults of tests/settings.py, and nothing else.
    assert '<option value="InfoCenter" selected>InfoCenter</option>' in page
    assert '<option value="Promo" selected>Promo</option>' in page
    assert "SMS-fly</option>" not in page


def test_sender_names_are_cached(operator: Client, sandbox: Simulator) -> None:
    operator.get(reverse(ADD_URL))
    operator.get(reverse(ADD_URL))
    assert len(sandbox.requests_for("GETSOURCES")) == 1


# -- sending -----------------------------------------------------------------------------


def test_sends_an_sms(operator: Client, operator_user: User, sandbox: Simulator) -> None:
    response = compose(operator, recipient="050 123 45 67", sms_text="Your code: 1234")
    message = Message.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:django_smsfly_message_change", args=[message.pk])
    assert message.recipient == "380501234567"
    assert message.channels == "sms"
    assert message.state == Message.State.ACCEPTED
    assert message.created_by == operator_user
    assert sent_data(sandbox) == [
        {
            "recipient": "380501234567",
            "channels": ["sms"],
            "sms": {"source": "InfoCenter", "text": "Your code: 1234"},
        }
    ]
    assert flash(response) == ["The message to 380501234567 was accepted by SMS-fly."]


def test_sends_viber_with_an_sms_fallback(operator: Client, sandbox: Simulator) -> None:
    response = compose(
        operator,
        recipient="+380 67 123 4567",
        channels="viber,sms",
        viber_source="Promo",
        viber_text="Your order has shipped",
        viber_image="https://shop.example/parcel.png",
        viber_button_caption="Track it",
        viber_button_url="https://shop.example/track/1042",
        sms_text="Your order has shipped: https://shop.example/t/1042",
    )
    assert response.status_code == 302
    message = Message.objects.get()
    assert message.channels == "viber,sms"
    assert list(message.channel_statuses.values_list("channel", flat=True)) == ["viber", "sms"]
    assert sent_data(sandbox) == [
        {
            "recipient": "380671234567",
            "channels": ["viber", "sms"],
            "viber": {
                "source": "Promo",
                "text": "Your order has shipped",
                "button": {"caption": "Track it", "url": "https://shop.example/track/1042"},
                "image": "https://shop.example/parcel.png",
            },
            "sms": {
                "source": "InfoCenter",
                "text": "Your order has shipped: https://shop.example/t/1042",
            },
        }
    ]


def test_content_of_a_channel_not_chosen_is_left_out(operator: Client, sandbox: Simulator) -> None:
    compose(operator, recipient="0501234567", sms_text="Hello", viber_text="Not this")
    assert "viber" not in sent_data(sandbox)[0]


def test_line_breaks_are_sent_as_one_character(operator: Client, sandbox: Simulator) -> None:
    compose(operator, recipient="0501234567", sms_text="Line one\r\nLine two")
    assert sent_data(sandbox)[0]["sms"]["text"] == "Line one\nLine two"


def test_a_refused_message_is_reported_on_its_page(operator: Client, sandbox: Simulator) -> None:
    response = compose(operator, recipient="380500000004", sms_text="Hello")  # refused
    message = Message.objects.get()
    assert response.status_code == 302
    assert message.state == Message.State.FAILED
    assert message.error_text.startswith("SENDMESSAGE: INVRECIPIENT: ")  # as stored
    # The code once, then SMS-fly's words: not "INVRECIPIENT: SENDMESSAGE: INVRECIPIENT: …".
    assert flash(response) == [
        "SMS-fly refused the message to 380500000004: INVRECIPIENT: wrong recipient: "
        "the recipient refuses messages (sandbox rule)"
    ]


# -- invalid input -----------------------------------------------------------------------


def test_a_bad_number_is_a_field_error_and_nothing_is_written(
    operator: Client, sandbox: Simulator
) -> None:
    response = compose(operator, recipient="12345", sms_text="Hello")
    assert list(errors(response)) == ["recipient"]
    assert "is not a mobile number" in errors(response)["recipient"][0]
    assert not Message.objects.exists()
    assert sent_data(sandbox) == []


def test_a_landline_is_refused_too(operator: Client) -> None:
    response = compose(operator, recipient="044 123 4567", sms_text="Hello")  # Kyiv landline
    assert list(errors(response)) == ["recipient"]


def test_an_empty_sms_text_is_a_field_error(operator: Client) -> None:
    response = compose(operator, recipient="0501234567", sms_text="")
    assert list(errors(response)) == ["sms_text"]
    assert not Message.objects.exists()


def test_a_too_long_button_caption_is_a_field_error(operator: Client, sandbox: Simulator) -> None:
    response = compose(
        operator,
        recipient="0501234567",
        channels="viber",
        viber_source="Promo",
        viber_text="Hi",
        viber_button_caption="x" * 31,
        viber_button_url="https://shop.example/",
    )
    assert list(errors(response)) == ["viber_button_caption"]
    assert "at most 30 characters" in errors(response)["viber_button_caption"][0]
    assert not Message.objects.exists()
    assert sent_data(sandbox) == []


def test_text_and_image_without_a_button_is_refused(operator: Client, sandbox: Simulator) -> None:
    response = compose(
        operator,
        recipient="0501234567",
        channels="viber",
        viber_source="Promo",
        viber_text="Look",
        viber_image="https://shop.example/a.png",
    )
    assert list(errors(response)) == ["viber_image"]
    assert "needs a button" in errors(response)["viber_image"][0]
    assert not Message.objects.exists()
    assert sent_data(sandbox) == []


VIBER = {"channels": "viber", "viber_source": "Promo"}


@pytest.mark.parametrize(
    ("fields", "refused"),
    [
        pytest.param(
            {**VIBER, "viber_text": "Hi", "viber_button_caption": "Open"},
            "viber_button_url",
            id="a-button-without-a-url",
        ),
        pytest.param(
            {**VIBER, "viber_image": "http://shop.example/a.png"},
            "viber_image",
            id="an-image-not-on-https",
        ),
        pytest.param(
            {**VIBER, "channels": "viber,sms", "viber_text": "Hi"},
            "sms_text",
            id="a-fallback-without-its-sms-text",
        ),
        pytest.param(
            {"sms_text": "Hi", "sms_source": "Other"},
            "sms_source",
            id="a-sender-name-not-of-the-account",
        ),
    ],
)
def test_a_form_that_cannot_be_sent_names_the_one_field_at_fault(
    operator: Client, fields: dict[str, str], refused: str
) -> None:
    response = compose(operator, recipient="0501234567", **fields)
    assert list(errors(response)) == [refused]


def test_hostile_input_is_shown_escaped(operator: Client) -> None:
    response = compose(operator, recipient=HOSTILE, sms_text=HOSTILE)
    page = response.content.decode()
    assert HOSTILE not in page
    assert "&lt;script&gt;" in page


# -- estimate ----------------------------------------------------------------------------


def test_estimate_shows_the_cost_and_sends_nothing(operator: Client, sandbox: Simulator) -> None:
    response = compose(
        operator, button="_estimate", recipient="0501234567", sms_text="Привіт! " * 10
    )
    assert response.status_code == 200
    estimate = response.context["estimate"]
    # 80 Cyrillic characters: UCS-2, two parts at Vodafone's 0.479 each.
    assert estimate.segments.parts == 2
    assert [(row.label, str(row.cost)) for row in estimate.rows] == [("SMS", "0.958")]
    page = response.content.decode()
    assert 'id="smsfly-estimate"' in page
    assert "0.958" in page
    assert "UCS-2" in page
    assert not Message.objects.exists()
    assert sent_data(sandbox) == []


def test_estimate_of_viber_with_fallback(operator: Client) -> None:
    response = compose(
        operator,
        button="_estimate",
        recipient="0671234567",
        channels="viber,sms",
        viber_source="Promo",
        viber_text="Hi",
        sms_text="Hi",
    )
    estimate = response.context["estimate"]
    assert (str(estimate.first), str(estimate.most)) == ("0.750", "1.228")


def test_estimate_says_so_when_prices_cannot_be_had(operator: Client, sandbox: Simulator) -> None:
    sandbox.inject(Fault.CONNECTION_REFUSED, times=10, action="GETPRICELIST")
    response = compose(operator, button="_estimate", recipient="0501234567", sms_text="Hi")
    assert response.status_code == 200
    assert "price list could not be fetched" in response.content.decode()


# -- permissions -------------------------------------------------------------------------


def test_without_the_add_permission_the_page_is_refused(sandbox: Simulator) -> None:
    user = User.objects.create_user("viewer", "v@example.com", "pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename="view_message"))
    browser = Client()
    browser.force_login(user)
    assert browser.get(reverse(ADD_URL)).status_code == 403
    # (The page is refused, so no token is drawn: a made-up one stands in for it.)
    response = compose(browser, recipient="0501234567", sms_text="Hi", token="made-up")
    assert response.status_code == 403
    assert not Message.objects.exists()
    assert sent_data(sandbox) == []


def test_the_form_needs_a_csrf_token(operator_user: User, sandbox: Simulator) -> None:
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(operator_user)
    token = drawn_token(browser)
    assert compose(browser, recipient="0501234567", sms_text="Hi", token=token).status_code == 403
    assert sent_data(sandbox) == []


# -- in the background -------------------------------------------------------------------


def test_send_in_the_background(
    operator: Client, sandbox: Simulator, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = compose(
            operator, recipient="0501234567", sms_text="Later", send_mode="background"
        )
    message = Message.objects.get()
    assert response.status_code == 302
    assert message.state == Message.State.QUEUED
    assert sent_data(sandbox) == []
    assert flash(response) == [
        "The message to 380501234567 is queued and will be sent in the background."
    ]
    for callback in callbacks:  # the transaction commits: the task runs
        callback()
    message.refresh_from_db()
    assert message.state == Message.State.ACCEPTED
    assert len(sent_data(sandbox)) == 1


# -- the counter's rules -----------------------------------------------------------------


COUNTER_TEXTS = [
    "",
    "Hello",
    "a" * 160,
    "a" * 161,
    "a" * 306,
    "a" * 307,
    "{" * 80,
    "a" * 152 + "€",
    "a" * 153 + "€",
    "Привіт",
    "П" * 70,
    "П" * 71,
    "😀" * 35,
    "😀" * 36,
    "a" * 66 + "😀",
    "Line\nbreak ^ [ ] ~ | \\ € @£$¥èé",
]


@pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js to run the page's script")
def test_the_pages_counter_counts_as_the_server_does() -> None:
    program = (
        "require(process.argv[1]);"
        "const input = JSON.parse(require('fs').readFileSync(0, 'utf8'));"
        "const out = input.texts.map(t => globalThis.djangoSmsflyCountSegments(t, input.rules));"
        "process.stdout.write(JSON.stringify(out));"
    )
    result = subprocess.run(  # noqa: S603 - our own script, our own input
        ["node", "-e", program, str(COMPOSE_JS)],  # noqa: S607
        input=json.dumps({"texts": COUNTER_TEXTS, "rules": segment_rules()}),
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    counted = json.loads(result.stdout)
    for text, browser in zip(COUNTER_TEXTS, counted, strict=True):
        server = count_segments(text)
        assert (
            browser["encoding"],
            browser["length"],
            browser["parts"],
            browser["perPart"],
            browser["remaining"],
        ) == (
            server.encoding.value,
            server.length,
            server.parts,
            server.per_part,
            server.remaining,
        )


def test_sending_pages_commit_as_they_go_even_with_atomic_requests() -> None:
    # With ATOMIC_REQUESTS a view runs in one transaction; a message sent inside it
    # would lose its record if the request then failed. Django reads this attribute
    # of the resolved view to leave it out.
    for name, args in (("add", []), ("changelist", []), ("refresh", [1]), ("resend", [1])):
        view = resolve(reverse(f"admin:django_smsfly_message_{name}", args=args)).func
        assert "default" in getattr(view, "_non_atomic_requests", set()), name


def test_without_a_task_framework_only_send_now_is_offered(
    operator: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("django_smsfly.taskcompat.AVAILABLE", False)
    page = operator.get(reverse(ADD_URL)).content.decode()
    assert 'value="now"' in page
    assert 'value="background"' not in page
    response = compose(operator, recipient="0501234567", sms_text="Hi", send_mode="background")
    assert list(errors(response)) == ["send_mode"]
    assert not Message.objects.exists()


def test_every_error_is_reported_at_once(operator: Client) -> None:
    response = compose(
        operator,
        recipient="12345",
        channels="viber",
        viber_source="Promo",
        viber_text="Look",
        viber_image="https://shop.example/a.png",
    )
    assert sorted(errors(response)) == ["recipient", "viber_image"]


def test_with_no_sender_names_at_all_one_can_be_typed(
    operator: Client, sandbox: Simulator
) -> None:
    sandbox.inject(Fault.CONNECTION_REFUSED, times=10, action="GETSOURCES")
    with override_settings(SMSFLY={"BACKEND": "django_smsfly.backends.sandbox.SandboxBackend"}):
        page = operator.get(reverse(ADD_URL)).content.decode()
        assert '<input type="text" name="sms_source"' in page
        response = compose(operator, recipient="0501234567", sms_text="Hi", sms_source="")
        assert list(errors(response)) == ["sms_source"]  # SMS-fly needs a sender name
        response = compose(
            operator, recipient="0501234567", sms_text="Hi", sms_source="InfoCenter"
        )
    assert response.status_code == 302
    assert sent_data(sandbox)[0]["sms"]["source"] == "InfoCenter"


# -- sent once: the one-time form token ----------------------------------------------------


def test_the_same_form_posted_twice_sends_one_message(
    operator: Client, sandbox: Simulator
) -> None:
    token = drawn_token(operator)
    first = compose(operator, recipient="050 123 45 67", sms_text="Hello", token=token)
    second = compose(operator, recipient="050 123 45 67", sms_text="Hello", token=token)
    message = Message.objects.get()
    assert len(sandbox.requests_for("SENDMESSAGE")) == 1
    assert message.idempotency_key is not None
    assert message.idempotency_key.startswith("compose:")
    change = reverse("admin:django_smsfly_message_change", args=[message.pk])
    assert first["Location"] == second["Location"] == change
    # (The first POST's message is still in the cookie: its redirect was not followed.)
    assert flash(second)[-1:] == [
        "This form was already sent: this is its message to 380501234567. Nothing more "
        "was sent; to send another message, open the compose page again."
    ]


def test_back_and_send_with_another_text_still_sends_once(
    operator: Client, sandbox: Simulator
) -> None:
    token = drawn_token(operator)
    compose(operator, recipient="0501234567", sms_text="Hello", token=token)
    compose(operator, recipient="0501234567", sms_text="Hello again", token=token)
    assert [d["sms"]["text"] for d in sent_data(sandbox)] == ["Hello"]


def test_each_drawn_form_sends_its_own_message(operator: Client, sandbox: Simulator) -> None:
    compose(operator, recipient="0501234567", sms_text="One")
    compose(operator, recipient="0501234567", sms_text="Two")
    assert [d["sms"]["text"] for d in sent_data(sandbox)] == ["One", "Two"]
    assert len({m.idempotency_key for m in Message.objects.all()}) == 2


def test_each_drawn_form_has_a_token_of_its_own(operator: Client) -> None:
    tokens = {drawn_token(operator) for _ in range(3)}
    assert len(tokens) == 3
    page = operator.get(reverse(ADD_URL)).content.decode()
    assert '<input type="hidden" name="token"' in page


def test_an_estimate_does_not_use_up_the_token(operator: Client, sandbox: Simulator) -> None:
    token = drawn_token(operator)
    estimate = compose(operator, "_estimate", recipient="0501234567", sms_text="Hi", token=token)
    assert estimate.context["form"]["token"].value() == token
    compose(operator, recipient="0501234567", sms_text="Hi", token=token)
    assert len(sent_data(sandbox)) == 1


@pytest.mark.parametrize(
    ("token", "problem"),
    [
        ("", "The form has no one-time token."),
        ("made-up", "The form's one-time token is not one this site issued."),
    ],
)
def test_a_missing_or_forged_token_is_refused_and_nothing_sent(
    operator: Client, sandbox: Simulator, token: str, problem: str
) -> None:
    response = compose(operator, recipient="0501234567", sms_text="Hello", token=token)
    assert response.status_code == 200
    assert errors(response)["__all__"] == [
        f"{problem} Nothing was sent. Check the form below and send it again."
    ]
    assert not Message.objects.exists()
    assert sent_data(sandbox) == []
    # The form comes back with a fresh token that does send.
    fresh = response.context["form"]["token"].value()
    assert fresh != token
    compose(operator, recipient="0501234567", sms_text="Hello", token=fresh)
    assert len(sent_data(sandbox)) == 1


def test_a_token_drawn_for_another_user_is_refused(operator: Client, sandbox: Simulator) -> None:
    other = User.objects.create_superuser("other", "other@example.com", "pw")
    browser = Client()
    browser.force_login(other)
    theirs = drawn_token(browser)
    response = compose(operator, recipient="0501234567", sms_text="Hello", token=theirs)
    assert (
        "The form was opened by another user or on another page."
        in (errors(response)["__all__"][0])
    )
    assert sent_data(sandbox) == []


def test_an_expired_token_is_refused(
    operator: Client, sandbox: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django_smsfly.admin import formtokens

    token = drawn_token(operator)
    monkeypatch.setattr(formtokens, "MAX_AGE", -1)  # every token is past its age
    response = compose(operator, recipient="0501234567", sms_text="Hello", token=token)
    assert errors(response)["__all__"][0].startswith("The form was opened too long ago.")
    assert sent_data(sandbox) == []


# -- scheduling and opt-outs ---------------------------------------------------------------


def local_input(moment: dt.datetime) -> str:
    """A time as a datetime-local field submits it, in the site's time zone."""
    return timezone.localtime(moment).strftime("%Y-%m-%dT%H:%M")


def test_a_message_is_scheduled_for_the_time_given(operator: Client, sandbox: Simulator) -> None:
    at = (timezone.now() + dt.timedelta(days=2)).replace(second=0, microsecond=0)
    response = compose(operator, recipient="0501234567", sms_text="Later", send_at=local_input(at))
    message = Message.objects.get()
    assert response.status_code == 302
    assert message.state == Message.State.QUEUED
    assert message.send_at == at
    assert sent_data(sandbox) == []
    local = timezone.localtime(at)
    assert flash(response) == [
        f"The message to 380501234567 will be sent at "
        f"{formats.date_format(local, 'DATETIME_FORMAT')} ({local.tzname()})."
    ]
    page = operator.get(response["Location"]).content.decode()
    assert "Send at" in page


@pytest.mark.parametrize(
    ("offset", "error"),
    [
        (dt.timedelta(minutes=-5), "Pick a time in the future, or leave it empty to send now."),
        (dt.timedelta(days=31), "A message can be scheduled at most 30 days ahead."),
    ],
)
def test_a_send_time_in_the_past_or_too_far_ahead_is_a_field_error(
    operator: Client, sandbox: Simulator, offset: dt.timedelta, error: str
) -> None:
    at = local_input(timezone.now() + offset)
    response = compose(operator, recipient="0501234567", sms_text="Hi", send_at=at)
    assert errors(response) == {"send_at": [error]}
    assert not Message.objects.exists()


def test_a_send_time_that_is_not_a_time_is_a_field_error(operator: Client) -> None:
    response = compose(operator, recipient="0501234567", sms_text="Hi", send_at="tomorrow")
    assert list(errors(response)) == ["send_at"]


def test_the_send_time_is_read_in_the_sites_time_zone(operator: Client) -> None:
    response = compose(operator, recipient="0501234567", sms_text="Hi", send_at="2999-01-01T10:00")
    # Far too far ahead, but parsed: the error is about the time, not its form.
    assert errors(response) == {"send_at": ["A message can be scheduled at most 30 days ahead."]}
    help_text = str(response.context["form"].fields["send_at"].help_text)
    assert "In Europe/Kyiv time, at most 30 days ahead." in help_text


def test_an_opted_out_number_gets_nothing_and_the_page_says_why(
    operator: Client, sandbox: Simulator
) -> None:
    OptOut.objects.create(recipient="380501234567")
    response = compose(operator, recipient="050 123 4567", sms_text="Sale!")
    message = Message.objects.get()
    assert message.state == Message.State.FAILED
    assert message.error_code == "OPTED_OUT"
    assert sent_data(sandbox) == []
    assert flash(response) == [
        "The message to 380501234567 was not sent: the number is on the opt-out list."
    ]
    page = operator.get(response["Location"]).content.decode()
    assert "OPTED_OUT" in page
    assert "The number opted out of messages: nothing was sent." in page


def test_ignoring_the_opt_out_list_sends_and_is_recorded(
    operator: Client, sandbox: Simulator
) -> None:
    OptOut.objects.create(recipient="380501234567")
    response = compose(
        operator, recipient="050 123 4567", sms_text="Your order shipped", ignore_opt_out="on"
    )
    message = Message.objects.get()
    assert message.ignore_opt_out is True
    assert message.state == Message.State.ACCEPTED
    assert len(sent_data(sandbox)) == 1
    page = operator.get(response["Location"]).content.decode()
    assert 'class="form-row field-ignore_opt_out"' in page
    assert "icon-yes.svg" in page.split("field-ignore_opt_out", 1)[1][:1000]


# -- long texts --------------------------------------------------------------------------


@override_settings(SMSFLY={**settings.SMSFLY, "MAX_SMS_PARTS": 2})
def test_an_sms_over_the_parts_limit_is_a_field_error(
    operator: Client, sandbox: Simulator
) -> None:
    three_parts = "x" * (153 * 2 + 1)
    response = compose(operator, recipient="0501234567", sms_text=three_parts)
    assert list(errors(response)) == ["sms_text"]
    assert "3 SMS parts, at most 2 are allowed" in errors(response)["sms_text"][0]
    assert not Message.objects.exists()
    assert sent_data(sandbox) == []
    assert compose(operator, recipient="0501234567", sms_text="x" * 306).status_code == 302


def test_a_huge_sms_text_is_a_field_error(operator: Client, sandbox: Simulator) -> None:
    response = compose(operator, recipient="0501234567", sms_text="x" * 1_000_000)
    assert list(errors(response)) == ["sms_text"]
    assert (
        "1000000 characters, more than the 10 SMS parts allowed"
        in (errors(response)["sms_text"][0])
    )
    assert sent_data(sandbox) == []


def test_a_long_text_for_a_channel_not_chosen_is_no_error(
    operator: Client, sandbox: Simulator
) -> None:
    response = compose(
        operator, channels="viber", recipient="0501234567", viber_text="Hi", sms_text="x" * 5000
    )
    assert response.status_code == 302
