"""A message template made in the admin: as the operator types, the preview shows the
texts rendered with the sample values and the SMS counter, in English and Ukrainian."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from django_smsfly.models import MessageTemplate
from tests.browser.helpers import LOCALES, OpenPage

pytestmark = pytest.mark.django_db(transaction=True)

ADD = "admin:django_smsfly_messagetemplate_add"
#: The counter's label and the save button's, as each language writes them.
LABELS = {"en": ("SMS parts", "Save"), "uk": ("Частин SMS", "Зберегти")}


def test_the_preview_follows_the_typing_and_the_template_is_saved(
    operator_page: OpenPage,
    url: Callable[..., str],
    screenshot: Callable[..., object],
    language: str,
) -> None:
    parts_label, save_label = LABELS[language]
    page = operator_page(language)
    page.goto(url(ADD))
    panel = page.locator("#smsfly-template-preview")
    sms_text = page.locator("#smsfly-preview-sms-text")
    counter = page.locator("#smsfly-preview-sms-counter")
    expect(counter).to_contain_text(parts_label)

    page.fill("#id_name", "order-ready")
    page.fill("#id_sms_text", "Hi {{ name }}, order {{ order }} is ready.")
    # One sample input per variable, prefilled with its name.
    expect(page.locator("#smsfly-sample-name")).to_have_value("name")
    expect(page.locator("#smsfly-sample-order")).to_have_value("order")
    page.fill("#smsfly-sample-name", "Olena")
    page.fill("#smsfly-sample-order", "42")
    expect(sms_text).to_have_text("Hi Olena, order 42 is ready.")
    expect(counter).to_have_attribute("data-parts", "1")
    expect(counter).to_have_attribute("data-encoding", "GSM-7")
    expect(counter.locator('[data-field="length"]')).to_have_text("28")

    # Cyrillic makes the SMS UCS-2: 70 characters a part, 67 when split.
    page.fill("#id_sms_text", "Вітаємо, {{ name }}! " + "Замовлення готове. " * 5)
    expect(counter).to_have_attribute("data-encoding", "UCS-2")
    expect(counter).to_have_attribute("data-parts", "2")
    expect(sms_text).to_contain_text("Вітаємо, Olena!")
    expect(page.locator("#smsfly-sample-order")).to_have_count(0)  # no longer used

    # A tag that reaches beyond the text is named at once; the panel keeps working.
    page.fill("#id_sms_text", "Hi {{ name }} {% load static %}")
    expect(page.locator("#smsfly-preview-errors")).to_contain_text("{% load %}")
    page.fill("#id_sms_text", 'Hi {{ name|default:"friend" }}!')
    expect(page.locator("#smsfly-preview-errors")).to_be_hidden()
    page.fill("#smsfly-sample-name", "")
    expect(sms_text).to_have_text("Hi friend!")
    expect(panel).to_have_attribute("data-state", "ready")
    screenshot(page, f"template-preview-{LOCALES[language]}")

    page.locator(f"input[type=submit][value='{save_label}']").click()
    expect(page).to_have_url(re.compile(r"/django_smsfly/messagetemplate/$"))
    template = MessageTemplate.objects.get()
    assert (template.name, template.sms_text) == ("order-ready", 'Hi {{ name|default:"friend" }}!')


def test_the_preview_shows_the_viber_text_and_button(
    logged_in_page: Page, url: Callable[..., str]
) -> None:
    page = logged_in_page
    page.goto(url(ADD))
    page.check("input[name=channels][value='viber,sms']")
    page.fill("#id_viber_text", "Your order {{ order }} is on its way")
    page.fill("#id_button_caption", "Track {{ order }}")
    page.fill("#id_button_url", "https://shop.example/track")
    page.fill("#id_sms_text", "Order {{ order }} shipped")
    page.fill("#smsfly-sample-order", "7")
    expect(page.locator("#smsfly-preview-viber-text")).to_have_text("Your order 7 is on its way")
    expect(page.locator("#smsfly-preview-viber-button")).to_contain_text("Track 7")
    expect(page.locator("#smsfly-preview-sms-text")).to_have_text("Order 7 shipped")
    page.check("input[name=channels][value='viber']")
    expect(page.locator("#smsfly-preview-sms")).to_be_hidden()


def test_typing_in_a_sample_keeps_the_caret_when_the_preview_redraws(
    logged_in_page: Page, url: Callable[..., str]
) -> None:
    # Each answer used to put every sample row back in order, moving the one being
    # typed in: the browser took the focus from it, and the next keys went nowhere.
    page = logged_in_page
    page.goto(url(ADD))
    page.fill("#id_sms_text", "Hi {{ name }}, order {{ order }} is ready.")
    sample = page.locator("#smsfly-sample-name")
    expect(sample).to_have_value("name")
    expect(page.locator("#smsfly-template-preview")).to_have_attribute("data-state", "ready")
    sample.click()
    sample.press("End")
    sample.press_sequentially("-O")
    sms_text = page.locator("#smsfly-preview-sms-text")
    expect(sms_text).to_have_text("Hi name-O, order order is ready.")  # an answer drawn
    assert page.evaluate(
        "document.activeElement && document.activeElement.id"
    ) == sample.get_attribute("id")
    page.keyboard.type("lena")
    expect(sample).to_have_value("name-Olena")
    expect(sms_text).to_have_text("Hi name-Olena, order order is ready.")
