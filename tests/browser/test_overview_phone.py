"""The delivery overview on a 390 px phone: no horizontal page scroll, chart labels of
11 px or more, spend per day and channel, and days without messages left out."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal

import pytest
from django.utils import formats, timezone, translation
from playwright.sync_api import Page, ViewportSize, expect

from django_smsfly.admin.display import money
from django_smsfly.models import Message
from tests.browser.helpers import viber_then_sms

pytestmark = pytest.mark.django_db(transaction=True)

PHONE: ViewportSize = {"width": 390, "height": 844}


def messages(days_ago: int, *rows: tuple[str, str, str, str]) -> None:
    """Messages created ``days_ago``: (status, delivered_via, cost, error_code) each."""
    made = Message.objects.bulk_create(
        viber_then_sms(
            status=status,
            delivered_via=via,
            cost=Decimal(cost) if cost else None,
            error_code=code,
        )
        for status, via, cost, code in rows
    )
    Message.objects.filter(pk__in=[m.pk for m in made]).update(
        created_at=timezone.now() - dt.timedelta(days=days_ago)
    )


def test_the_overview_fits_a_phone_and_answers_the_first_questions(
    logged_in_page: Page, url: Callable[..., str], screenshot: Callable[..., object]
) -> None:
    messages(
        0,
        ("viewed", "viber", "0.75", ""),
        ("delivered", "sms", "0.479", ""),
        ("failed", "", "", "INVRECIPIENT"),
    )
    messages(3, ("undelivered", "", "1.229", ""), ("failed", "", "", "INVRECIPIENT"))
    page = logged_in_page
    page.set_viewport_size(PHONE)
    page.goto(url("admin:django_smsfly_message_overview"))

    width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], f"the page scrolls sideways: {width}"
    sizes = page.evaluate(
        """() => [...document.querySelectorAll('svg.smsfly-chart text')].map(t => {
            return t.getScreenCTM().a * parseFloat(getComputedStyle(t).fontSize);
        })"""
    )
    assert sizes, "the chart has no labels"
    assert min(sizes) >= 11, f"chart labels drawn at {min(sizes):.1f} px"

    expect(page.locator("#smsfly-spend")).to_have_text(money(Decimal("2.458")))
    viber = page.locator("#smsfly-channels tr[data-channel='viber'] td")
    sms = page.locator("#smsfly-channels tr[data-channel='sms'] td")
    expect(viber.first).to_have_text("1")  # delivered over Viber
    expect(sms.first).to_have_text("1")
    errors = page.locator("#smsfly-errors tbody tr")
    expect(errors.first).to_contain_text("INVRECIPIENT")
    expect(errors.first.locator("td")).to_have_text("2")
    expect(errors.nth(1)).to_contain_text("undelivered (no error code)")
    # Two days had messages: two rows, no rows of zeros, dates as the language writes them.
    rows = page.locator("#smsfly-overview-table tbody tr")
    expect(rows).to_have_count(2)
    today = timezone.localdate()
    with translation.override("en"):
        written = formats.date_format(today, "DATE_FORMAT")  # "Dec. 1, 2026", not 12/01/2026
    expect(rows.first.locator("th")).to_have_text(written)
    expect(rows.first.locator("td").last).to_have_text(money(Decimal("1.229")))
    screenshot(page, "overview-phone", full_page=True)
