"""The opt-out list in headless Chromium: add, search, import, remove; English and Ukrainian."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import FilePayload, expect

from django_smsfly.models import OptOut
from tests.browser.helpers import OpenPage, translated

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_number_is_added_found_and_removed(
    operator_page: OpenPage, url: Callable[..., str], language: str
) -> None:
    page = operator_page(language)
    page.goto(url("admin:django_smsfly_optout_add"))
    page.fill("#id_recipient", "+380 (50) 123-45-67")
    page.fill("#id_note", "asked by phone")
    page.click("input[name=_save]")
    expect(page).to_have_url(url("admin:django_smsfly_optout_changelist"))
    row = page.locator("#result_list tbody tr", has_text="380501234567")
    expect(row).to_contain_text("asked by phone")
    expect(row).to_contain_text(translated(language, "added by hand"))

    # The same number again: the form says it is on the list already.
    page.goto(url("admin:django_smsfly_optout_add"))
    page.fill("#id_recipient", "050 123 4567")
    page.click("input[name=_save]")
    expect(page.locator(".form-row.field-recipient .errorlist")).to_contain_text("380501234567")
    assert OptOut.objects.count() == 1

    # Found however the number is written.
    page.goto(url("admin:django_smsfly_optout_changelist"))
    page.fill("#searchbar", "050 123 45 67")
    page.press("#searchbar", "Enter")
    expect(page.locator("#result_list tbody tr")).to_have_count(1)

    # Removed after the admin's confirmation.
    entry = OptOut.objects.get()
    page.goto(url("admin:django_smsfly_optout_delete", entry.pk))
    page.click("#content form input[type=submit]")
    expect(page).to_have_url(url("admin:django_smsfly_optout_changelist"))
    assert not OptOut.objects.exists()


def test_a_file_is_imported_and_its_invalid_lines_named(
    operator_page: OpenPage, url: Callable[..., str], language: str
) -> None:
    OptOut.objects.create(recipient="380671234567")
    page = operator_page(language)
    page.goto(url("admin:django_smsfly_optout_changelist"))
    page.click("#smsfly-optout-import-link")
    expect(page.locator("h1")).to_have_text(translated(language, "Import opt-outs"))
    content = "recipient,name\n050 123 4567,Ann\n+380671234567,Bob\nnot a number,Carl\n"
    file: FilePayload = {"name": "stop.csv", "mimeType": "text/csv", "buffer": content.encode()}
    page.set_input_files("#id_file", files=[file])
    page.click("#smsfly-optout-import-button")
    report = page.locator("#smsfly-import-report")
    expect(report.locator("[data-count=added] td")).to_have_text("1")
    expect(report.locator("[data-count=existing] td")).to_have_text("1")
    expect(report.locator("[data-count=invalid] td")).to_have_text("1")
    problem = page.locator("#smsfly-import-problems tbody tr")
    expect(problem).to_have_count(1)
    expect(problem.locator("td").first).to_have_text("4")
    expect(problem).to_contain_text("not a number")
    expect(report.locator("h2")).to_have_text(translated(language, "What the file added"))
    assert set(OptOut.objects.values_list("recipient", flat=True)) == {
        "380501234567",
        "380671234567",
    }
