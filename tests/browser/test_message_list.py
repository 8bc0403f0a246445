"""The message list at 1280×800: every column, "Created by" and the dates included,
is in view without scrolling the results sideways."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.helpers import OpenPage, viber_then_sms

pytestmark = pytest.mark.django_db(transaction=True)


def test_no_column_is_cut_off_at_1280(
    operator_page: OpenPage, admin_user: Any, url: Callable[..., str], language: str
) -> None:
    viber_then_sms(recipient="380671234567", status="in_progress", created_by=admin_user).save()
    page = operator_page(language)
    page.goto(url("admin:django_smsfly_message_changelist"))
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
