"""The admin's compose page: sending SMS and Viber messages from a form."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.contrib.messages import get_messages
from django.test import Client, override_settings
from django.urls import resolve, reverse

from django_smsfly.admin.widgets import segment_rules
from django_smsfly.backends.sandbox import Fault, Simulator, get_simulator
from django_smsfly.models import Message
from django_smsfly.segments import count_segments

pytestmark = pytest.mark.django_db

ADD_URL = "admin:django_smsfly_message_add"
HOSTILE = '<script>alert("x")</script>'
COMPOSE_JS = (
    Path(__file__).resolve().parent.parent / "django_smsfly/static/django_smsfly/compose.js"
)


@pytest.fixture
def sandbox() -> Simulator:
    return get_simulator()


def compose(browser: Client, button: str = "_send", **fields: Any) -> Any:
    data = {"channels": "sms", "send_mode": "now", "sms_source": "InfoCenter", **fields}
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
    assert flash(response) == [
        f"SMS-fly refused the message to 380500000004: {message.error_code}: {message.error_text}"
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


def test_a_button_without_a_url_is_refused(operator: Client) -> None:
    response = compose(
        operator,
        recipient="0501234567",
        channels="viber",
        viber_source="Promo",
        viber_text="Hi",
        viber_button_caption="Open",
    )
    assert list(errors(response)) == ["viber_button_url"]


def test_an_image_must_be_https(operator: Client) -> None:
    response = compose(
        operator,
        recipient="0501234567",
        channels="viber",
        viber_source="Promo",
        viber_image="http://shop.example/a.png",
    )
    assert list(errors(response)) == ["viber_image"]


def test_the_fallback_needs_its_sms_text(operator: Client) -> None:
    response = compose(
        operator,
        recipient="0501234567",
        channels="viber,sms",
        viber_source="Promo",
        viber_text="Hi",
    )
    assert list(errors(response)) == ["sms_text"]


def test_a_sender_name_not_of_the_account_is_refused(operator: Client) -> None:
    response = compose(operator, recipient="0501234567", sms_text="Hi", sms_source="Other")
    assert list(errors(response)) == ["sms_source"]


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
    assert compose(browser, recipient="0501234567", sms_text="Hi").status_code == 403
    assert not Message.objects.exists()
    assert sent_data(sandbox) == []


def test_the_form_needs_a_csrf_token(operator_user: User, sandbox: Simulator) -> None:
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(operator_user)
    assert compose(browser, recipient="0501234567", sms_text="Hi").status_code == 403
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
