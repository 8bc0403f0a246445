"""The compose page in headless Chromium (issue 13 item 8): the counter counts characters
as a person sees them while the parts keep the bill's count; Viber's fields come before
the SMS ones; a long SMS is sent only once its parts and cost are confirmed, in English
and Ukrainian."""

from __future__ import annotations

import re

import pytest
from django.utils import translation
from django.utils.translation import ngettext
from playwright.sync_api import expect

from django_smsfly.backends.sandbox import Simulator
from django_smsfly.models import Message
from django_smsfly.segments import count_segments
from tests.browser.helpers import MESSAGE_PAGE, OpenPage, translated

pytestmark = pytest.mark.django_db(transaction=True)

#: 22 characters of Cyrillic.
CYRILLIC = "Ваше замовлення готове"
LONG_TEXT = "Thank you for your order. " * 20  # 520 GSM-7 characters: 4 parts


def test_the_counter_counts_characters_as_people_see_them(
    compose_page: OpenPage, language: str
) -> None:
    page = compose_page(language)
    counter = page.locator("#id_sms_text_counter")
    characters = translated(language, "Characters")
    left = translated(language, "Left in this part")

    page.fill("#id_sms_text", "Hello 😀")
    expect(counter).to_have_attribute("data-characters", "7")
    expect(counter).to_contain_text(f"{characters}: 7")
    # The emoji takes two places of UCS-2's 70: the part has 62 left, as the bill counts.
    assert count_segments("Hello 😀").remaining == 62
    expect(counter).to_contain_text(f"{left}: 62")
    expect(counter).to_have_attribute("data-parts", "1")

    page.fill("#id_sms_text", CYRILLIC)
    assert len(CYRILLIC) == 22
    expect(counter).to_contain_text(f"{characters}: 22")
    expect(counter).to_contain_text(f"{left}: 48")

    page.fill("#id_sms_text", "Cafe\u0301")  # é as a letter and a combining accent
    expect(counter).to_contain_text(f"{characters}: 4")


def test_viber_fields_come_before_the_sms_ones(compose_page: OpenPage) -> None:
    page = compose_page()
    page.check("input[name=channels][value='viber,sms']")
    viber = page.locator("fieldset.smsfly-channel-viber")
    sms = page.locator("fieldset.smsfly-channel-sms")
    expect(viber).to_be_visible()
    expect(sms).to_be_visible()
    viber_box, sms_box = viber.bounding_box(), sms.bounding_box()
    assert viber_box is not None
    assert sms_box is not None
    assert viber_box["y"] + viber_box["height"] <= sms_box["y"]
    page.check("input[name=channels][value='sms']")
    expect(viber).to_be_hidden()
    expect(sms).to_be_visible()


def test_a_validation_message_starts_with_a_capital_letter(compose_page: OpenPage) -> None:
    page = compose_page()
    page.fill("#id_recipient", "050 123 4567")
    page.fill("#id_sms_text", "x" * 2000)  # more parts than SMSFLY["MAX_SMS_PARTS"]
    page.click("#smsfly-send")
    error = page.locator(".form-row.field-sms_text .errorlist li")
    expect(error).to_have_text(re.compile(r"^Is too long: "))


def test_a_long_sms_asks_for_confirmation_with_its_parts_and_cost(
    compose_page: OpenPage, sandbox: Simulator, language: str
) -> None:
    page = compose_page(language)
    page.fill("#id_recipient", "050 123 4567")
    page.fill("#id_sms_text", LONG_TEXT)
    page.click("#smsfly-send")

    with translation.override(language):
        question = ngettext(
            "Send an SMS of %(parts)s part?", "Send an SMS of %(parts)s parts?", 4
        ) % {"parts": 4}
        button = ngettext("Send %(parts)s part", "Send %(parts)s parts", 4) % {"parts": 4}
    expect(page.locator("#smsfly-estimate-heading")).to_have_text(question)
    expect(page.locator("#smsfly-confirm-parts")).to_be_visible()
    expect(page.locator("#smsfly-estimate table")).to_contain_text(re.compile(r"\d[.,]\d{3}"))
    assert not Message.objects.exists()
    assert sandbox.requests_for("SENDMESSAGE") == []

    expect(page.locator("#smsfly-confirm-send")).to_have_text(button)
    page.dblclick("#smsfly-confirm-send")
    expect(page).to_have_url(MESSAGE_PAGE)
    assert Message.objects.count() == 1
    [request] = sandbox.requests_for("SENDMESSAGE")
    assert request.body["data"]["sms"]["text"] == LONG_TEXT
    expect(page.locator("#smsfly-status")).to_be_visible()
