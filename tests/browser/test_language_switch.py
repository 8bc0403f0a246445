"""The admin's language switch: EN/UK among the user links, the active one marked;
choosing Ukrainian turns the page Ukrainian, and back."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _two_languages(settings: object) -> None:
    settings.LANGUAGES = [("en", "English"), ("uk", "Ukrainian")]  # type: ignore[attr-defined]


def test_switching_to_ukrainian_and_back(logged_in_page: Page, url: Callable[..., str]) -> None:
    page = logged_in_page
    for path in ("admin:django_smsfly_message_changelist", "admin:django_smsfly_message_overview"):
        page.goto(url(path))
        switch = page.locator("#user-tools #smsfly-language")
        expect(switch.locator("button")).to_have_text(["EN", "UK"])
        expect(switch.locator("button[aria-pressed='true']")).to_have_text("EN")

    page.goto(url("admin:django_smsfly_message_changelist"))
    expect(page.locator("#smsfly-overview-link")).to_have_text("Delivery overview")
    page.click("#smsfly-language button[value='uk']")
    # Back on the same page, now in Ukrainian, Ukrainian marked.
    expect(page).to_have_url(url("admin:django_smsfly_message_changelist"))
    expect(page.locator("#smsfly-overview-link")).to_have_text("Огляд доставки")
    expect(page.locator("html")).to_have_attribute("lang", "uk")
    expect(page.locator("#smsfly-language button[aria-pressed='true']")).to_have_text("UK")

    # It stays Ukrainian on the next page, and switches back.
    page.goto(url("admin:django_smsfly_message_overview"))
    expect(page.locator("h1")).to_have_text("Огляд доставки")
    page.click("#smsfly-language button[value='en']")
    expect(page.locator("h1")).to_have_text("Delivery overview")
    expect(page.locator("#smsfly-language button[aria-pressed='true']")).to_have_text("EN")


def test_no_switch_for_a_site_of_one_language(
    logged_in_page: Page, url: Callable[..., str], settings: object
) -> None:
    settings.LANGUAGES = [("en", "English")]  # type: ignore[attr-defined]
    logged_in_page.goto(url("admin:django_smsfly_message_changelist"))
    expect(logged_in_page.locator("#smsfly-overview-link")).to_be_visible()
    expect(logged_in_page.locator("#smsfly-language")).to_have_count(0)
