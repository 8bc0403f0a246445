"""Issue 13's "wrong money", in the browser: a Viber-then-SMS message delivered over
Viber costs the Viber price only, on the list, on its page and in the overview, and the
overview's spend is what the balance lost."""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from django_smsfly import send_viber, services
from django_smsfly.admin.display import money
from django_smsfly.backends.sandbox import Simulator
from tests.browser.helpers import sync_pass

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_message_delivered_over_viber_costs_the_viber_price(
    logged_in_page: Page, url: Callable[..., str], sandbox: Simulator
) -> None:
    before = sum(services.get_balances().values())
    message = send_viber("380671234567", text="Ваше замовлення", sms_text="Ваше замовлення")
    prices = {row.channel: row.cost or Decimal(0) for row in message.channel_statuses.all()}
    # The sandbox's Viber delivers; a sync pass then brings the SMS channel's refund.
    sandbox.advance(60)
    sync_pass()
    message.refresh_from_db()
    assert message.delivered_via == "viber"
    charged = before - sum(services.get_balances().values())
    assert charged == prices["viber"] == message.cost
    viber, both = money(prices["viber"]), money(prices["viber"] + prices["sms"])
    assert viber != both

    page = logged_in_page
    page.goto(url("admin:django_smsfly_message_changelist"))
    cost = page.locator("#result_list td.field-cost_display")
    expect(cost).to_have_text(viber)  # 0.750: three decimals, Viber only

    page.goto(url("admin:django_smsfly_message_change", message.pk))
    expect(page.locator(".field-cost_display .readonly").first).to_have_text(viber)
    expect(page.locator("body")).not_to_contain_text(both)

    page.goto(url("admin:django_smsfly_message_overview"))
    expect(page.locator("#smsfly-spend")).to_have_text(money(charged))
    expect(page.locator("#smsfly-channels tr[data-channel='viber'] td").nth(1)).to_have_text(viber)
    expect(page.locator("#smsfly-channels tr[data-channel='sms'] td").nth(1)).to_have_text(
        money(0)
    )
    expect(page.locator("#smsfly-channels tr[data-channel='viber'] td").first).to_have_text("1")
    today = timezone.localdate().isoformat()
    expect(page.locator(f"#smsfly-overview-table tr[data-day='{today}'] td").last).to_have_text(
        viber
    )
    assert not re.search(r"\d\.\d{4}\b", page.inner_text("#content-main"))  # no 4 decimals
