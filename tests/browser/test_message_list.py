"""The message list at 1280×800: every column, "Created by" and the dates included,
is in view without scrolling the results sideways."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse
from playwright.sync_api import Page, expect
from pytest_django.live_server_helper import LiveServer

from django_smsfly.models import Message

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("locale", ["en-US", "uk-UA"])
def test_no_column_is_cut_off_at_1280(
    new_page: Any, log_in: Any, admin_user: Any, live_server: LiveServer, locale: str
) -> None:
    Message.objects.create(
        recipient="380671234567",
        channels="viber,sms",
        content={
            "viber": {"source": "Shop", "text": "Hi"},
            "sms": {"source": "Shop", "text": "Hi"},
        },
        state="accepted",
        status="in_progress",
        created_by=admin_user,
    )
    page: Page = new_page(locale=locale)
    log_in(page)
    page.goto(live_server.url + reverse("admin:django_smsfly_message_changelist"))
    expect(page.locator("#result_list td.field-created_by")).to_have_text("admin")
    sizes = page.evaluate(
        """() => {
            const box = document.querySelector('#result_list').parentElement;
            return [box.scrollWidth, box.clientWidth,
                    document.documentElement.scrollWidth, window.innerWidth];
        }"""
    )
    assert sizes[0] <= sizes[1], f"the results scroll sideways: {sizes}"
    assert sizes[2] <= sizes[3], f"the page scrolls sideways: {sizes}"
