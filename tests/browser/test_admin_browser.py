"""The messages admin in headless Chromium: logging in, the list, statuses, Ukrainian."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Error, Page, expect

from django_smsfly import send_sms, send_viber
from django_smsfly.backends.sandbox import TEST_NUMBERS, Outcome, Simulator
from django_smsfly.services import sync_statuses
from tests.browser.helpers import OpenPage

pytestmark = pytest.mark.django_db(transaction=True)

MESSAGES = "admin:django_smsfly_message_changelist"


def test_a_superuser_logs_in_through_the_login_form(
    logged_in_page: Page, screenshot: Callable[..., object]
) -> None:
    page = logged_in_page
    expect(page).to_have_title(re.compile("Site administration"))
    expect(page.locator("#content-main")).to_contain_text("SMS-fly")
    expect(page.locator("#content-main")).to_contain_text("Messages")
    # The admin's CSS came from the live server (the header has its colour).
    background = page.locator("#header").evaluate("e => getComputedStyle(e).backgroundColor")
    assert background not in {"", "rgba(0, 0, 0, 0)", "transparent"}
    screenshot(page, "admin-index")


def test_a_wrong_password_is_refused(
    page: Page, admin_user: object, log_in: Callable[..., None], url: Callable[..., str]
) -> None:
    with pytest.raises(AssertionError, match="login failed"):
        log_in(page, "admin", "not-the-password")
    expect(page.locator(".errornote")).to_be_visible()
    page.goto(url(MESSAGES))
    expect(page).to_have_url(re.compile(r"/admin/login/\?next="))


def test_the_list_shows_messages_sent_through_the_services(
    logged_in_page: Page,
    url: Callable[..., str],
    sandbox: Simulator,
    screenshot: Callable[..., object],
) -> None:
    send_sms("050 123 4567", "Your code: 1234")
    send_viber(
        "+380 67 123 45 67",
        text="Your order #42 has shipped.",
        sms_text="Your order #42 has shipped: example.com/orders/42",
    )
    page = logged_in_page
    page.goto(url(MESSAGES))
    expect(page.locator("#result_list tbody tr")).to_have_count(2)
    sms = page.locator("#result_list tbody tr", has_text="380501234567")
    viber = page.locator("#result_list tbody tr", has_text="380671234567")
    expect(sms).to_contain_text(re.compile("sms", re.IGNORECASE))
    expect(sms).not_to_contain_text(re.compile("viber", re.IGNORECASE))
    # Viber first, the SMS fallback second.
    expect(viber).to_contain_text(re.compile(r"viber.*sms", re.IGNORECASE))
    for line in (sms, viber):
        expect(line).to_contain_text("accepted")
        expect(line).not_to_contain_text("delivered")


def test_a_status_advances_after_a_sync(
    logged_in_page: Page, url: Callable[..., str], sandbox: Simulator
) -> None:
    delivered = send_sms("380501234567", "Hello")
    fallback = send_viber(
        TEST_NUMBERS[Outcome.NO_VIBER], text="Viber cannot deliver this", sms_text="SMS can"
    )
    page = logged_in_page
    page.goto(url(MESSAGES))
    expect(page.locator("#result_list tbody tr", has_text="380501234567")).not_to_contain_text(
        "delivered"
    )

    # Viber fails at 5 s, then the fallback SMS takes its 6 s.
    sandbox.advance(30)
    report = sync_statuses(message_pks=[delivered.pk, fallback.pk])
    assert (report.checked, report.final) == (2, 2)

    page.reload()
    for recipient in ("380501234567", fallback.recipient):
        expect(page.locator("#result_list tbody tr", has_text=recipient)).to_contain_text(
            "delivered"
        )
    page.click(f"#result_list a:text('{fallback.recipient}')")
    # The message's own page: the Viber channel failed, the SMS delivered it.
    expect(page.locator("body")).to_contain_text("undelivered")
    expect(page.locator("body")).to_contain_text("delivered")


def test_the_admin_speaks_ukrainian_to_a_ukrainian_browser(
    operator_page: OpenPage,
    url: Callable[..., str],
    sandbox: Simulator,
    screenshot: Callable[..., object],
) -> None:
    message = send_sms("380501234567", "Привіт")
    sandbox.advance(10)
    sync_statuses(message_pks=[message.pk])

    ukrainian = operator_page("uk")
    expect(ukrainian.locator("#content-main")).to_contain_text("Повідомлення")
    ukrainian.goto(url(MESSAGES))
    expect(ukrainian.locator("#result_list thead")).to_contain_text("Одержувач")
    line = ukrainian.locator("#result_list tbody tr", has_text="380501234567")
    expect(line).to_contain_text("доставлено")

    # The same admin, the same moment, for an English browser.
    english = operator_page("en")
    english.goto(url(MESSAGES))
    expect(english.locator("#result_list thead")).to_contain_text("Recipient")
    expect(english.locator("#result_list tbody tr")).to_contain_text("delivered")
    expect(english.locator("body")).not_to_contain_text("доставлено")


def test_the_browser_cannot_reach_other_hosts(page: Page, blocked_requests: list[str]) -> None:
    with pytest.raises(Error, match="ERR_BLOCKED_BY_CLIENT"):
        page.goto("http://example.com/")
    assert blocked_requests == ["http://example.com/"]
    blocked_requests.clear()  # seen and expected: the fixture's own check would fail the test
