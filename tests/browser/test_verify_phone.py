"""The example site in Chromium: verify a phone, and log in with two factors, each with the
code the sandbox would have texted (shown on the page in DEBUG mode on the sandbox only).

The site runs as ``make demo`` runs it, in a subprocess (see tests/contrib/example_site.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pytest

from tests.contrib.example_site import ExampleSite, running_example_site

if TYPE_CHECKING:  # pragma: no cover
    from playwright.sync_api import Page

pytest.importorskip("environ", reason="the example project needs django-environ (the demo extra)")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExampleSite]:
    with running_example_site(tmp_path_factory.mktemp("example")) as running:
        running.add_user_with_phone("bob", "bob-password", "+380671234567")
        yield running


def code_in_sandbox_box(page: Page) -> str:
    """The code in the page's "Sandbox only" box: the text SMS-fly would have delivered."""
    box = page.locator("#sandbox-box")
    box.wait_for()
    found = re.search(r"\b\d{6}\b", page.inner_text("#sandbox-text"))
    assert found is not None, page.inner_text("#sandbox-box")
    return found.group()


def test_verifying_a_phone(
    site: ExampleSite, page: Page, screenshot: Callable[..., object]
) -> None:
    from playwright.sync_api import expect

    page.goto(f"{site.url}/verify/")
    page.fill("#id_number", "050 123 4567")
    page.click("button[value=send]")

    expect(page.locator(".messages")).to_contain_text("We sent a code to +380 50 123 4567.")
    expect(page.locator("#sandbox-box")).to_contain_text("Sandbox only")
    screenshot(page, "verify-phone-code-sent")
    page.fill("#id_code", code_in_sandbox_box(page))
    page.click("button[value=check]")

    expect(page.locator("#verified")).to_contain_text("Verified: +380 50 123 4567")
    expect(page.locator(".messages")).to_contain_text("+380 50 123 4567 is verified.")


def test_verifying_a_phone_in_ukrainian(site: ExampleSite, new_page: Callable[..., Page]) -> None:
    from playwright.sync_api import expect

    page = new_page(locale="uk-UA")
    page.goto(f"{site.url}/verify/")
    expect(page.locator("h1")).to_have_text("Підтвердіть свій телефон")
    page.fill("#id_number", "050 765 4321")
    page.click("button[value=send]")
    page.fill("#id_code", "000000" if code_in_sandbox_box(page) != "000000" else "111111")
    page.click("button[value=check]")

    expect(page.locator(".errorlist")).to_contain_text("Код неправильний")


def test_logging_in_with_a_code_by_sms(
    site: ExampleSite, page: Page, screenshot: Callable[..., object]
) -> None:
    from playwright.sync_api import expect

    page.goto(f"{site.url}/private/")
    page.fill("#id_auth-username", "bob")
    page.fill("#id_auth-password", "bob-password")
    page.click("button.btn-primary")

    expect(page.locator("#sandbox-box")).to_contain_text("Sandbox only")
    screenshot(page, "two-factor-login-token")
    page.fill("#id_token-otp_token", code_in_sandbox_box(page))
    page.click("button.btn-primary")

    page.wait_for_url(f"{site.url}/private/")
    expect(page.locator("#otp-verified")).to_have_text(
        "bob, you logged in with a password and a code."
    )
