"""The compose page in headless Chromium: sent once on a double click, scheduled, and
sent to an opted-out number only when asked, in English and Ukrainian."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import formats, timezone, translation
from playwright.sync_api import expect

from django_smsfly.backends.sandbox import Simulator
from django_smsfly.models import Message, OptOut
from tests.browser.helpers import MESSAGE_PAGE, OpenPage, translated

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_double_click_on_send_sends_one_message(
    compose_page: OpenPage, sandbox: Simulator, language: str
) -> None:
    page = compose_page(language)
    page.fill("#id_recipient", "050 123 4567")
    page.fill("#id_sms_text", "Your order has shipped")
    page.dblclick("#smsfly-send")
    expect(page).to_have_url(MESSAGE_PAGE)
    expect(page.locator(".messagelist")).to_contain_text("380501234567")
    assert Message.objects.count() == 1
    assert len(sandbox.requests_for("SENDMESSAGE")) == 1


def test_the_buttons_are_disabled_once_the_form_is_submitted(
    compose_page: OpenPage, sandbox: Simulator
) -> None:
    page = compose_page()
    page.fill("#id_recipient", "050 123 4567")
    page.fill("#id_sms_text", "Hello")
    # Stop the form from leaving, to see the page as it is at the moment of submitting.
    page.evaluate(
        "document.getElementById('smsfly-compose-form').addEventListener("
        "'submit', e => e.preventDefault())"
    )
    page.click("#smsfly-send")
    expect(page.locator("#smsfly-send")).to_be_disabled()
    expect(page.locator("#smsfly-estimate-button")).to_be_disabled()
    # The clicked button's name still goes with the form (a disabled one would not).
    expect(page.locator("#smsfly-compose-form input[type=hidden][name=_send]")).to_have_count(1)
    assert not Message.objects.exists()


def test_a_message_is_scheduled_and_the_page_says_when(
    compose_page: OpenPage, sandbox: Simulator, language: str
) -> None:
    page = compose_page(language)
    expect(page.locator("label[for=id_send_at]")).to_have_text(
        translated(language, "Send at") + ":"
    )
    at = (timezone.localtime() + dt.timedelta(days=1)).replace(second=0, microsecond=0)
    page.fill("#id_recipient", "050 123 4567")
    page.fill("#id_sms_text", "Tomorrow's reminder")
    page.fill("#id_send_at", at.strftime("%Y-%m-%dT%H:%M"))
    page.click("#smsfly-send")
    expect(page).to_have_url(MESSAGE_PAGE)
    message = Message.objects.get()
    assert message.send_at == at
    assert message.state == Message.State.QUEUED
    assert sandbox.requests_for("SENDMESSAGE") == []
    with translation.override(language):
        shown = formats.date_format(at, "DATETIME_FORMAT")
    expect(page.locator(".messagelist .success")).to_contain_text(f"{shown} ({at.tzname()})")


def test_a_time_in_the_past_is_refused_at_its_field(
    compose_page: OpenPage, sandbox: Simulator, language: str
) -> None:
    page = compose_page(language)
    past = timezone.localtime() - dt.timedelta(hours=1)
    page.fill("#id_recipient", "050 123 4567")
    page.fill("#id_sms_text", "Too late")
    page.fill("#id_send_at", past.strftime("%Y-%m-%dT%H:%M"))
    page.click("#smsfly-send")
    expect(page.locator(".form-row.field-send_at .errorlist")).to_have_text(
        translated(language, "Pick a time in the future, or leave it empty to send now.")
    )
    assert not Message.objects.exists()


def test_an_opted_out_number_is_sent_to_only_when_asked(
    compose_page: OpenPage, sandbox: Simulator, language: str
) -> None:
    OptOut.objects.create(recipient="380501234567")
    page = compose_page(language)
    page.fill("#id_recipient", "050 123 4567")
    page.fill("#id_sms_text", "Sale!")
    page.click("#smsfly-send")
    expect(page).to_have_url(MESSAGE_PAGE)
    expect(page.locator(".messagelist .warning")).to_have_text(
        translated(
            language,
            "The message to %(recipient)s was not sent: the number is on the opt-out list.",
        )
        % {"recipient": "380501234567"}
    )
    expect(page.locator(".field-error_code")).to_contain_text("OPTED_OUT")
    assert sandbox.requests_for("SENDMESSAGE") == []

    page.go_back()
    page.reload()  # a fresh form (a new one-time token)
    page.fill("#id_recipient", "050 123 4567")
    page.fill("#id_sms_text", "Your order has shipped")
    label = translated(language, "Ignore the opt-out list (transactional)")
    page.get_by_label(label).check()
    page.click("#smsfly-send")
    expect(page).to_have_url(MESSAGE_PAGE)
    assert len(sandbox.requests_for("SENDMESSAGE")) == 1
    assert Message.objects.filter(ignore_opt_out=True).count() == 1
    expect(page.locator(".field-ignore_opt_out img")).to_have_attribute("alt", "True")
