"""The campaign pages in headless Chromium, in English and in Ukrainian.

An operator uploads a CSV file with valid, invalid, opted-out and duplicate rows and
reads the check report (each problem at its line); schedules a campaign a minute or two
ahead; starts another with a double click (it starts once), pauses and resumes it, and
watches its progress page reach "finished" by itself (no reload) while the runner
works; then reads its delivery stats and downloads its results.

The task backend is Django's dummy one, so a start records the runner's task instead of
running it inside the request; the test then runs the runner itself (in the test's
thread, which shares the live server's database), as a worker would.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Callable
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import FilePayload, Page, expect
from pytest_django.live_server_helper import LiveServer

from django_smsfly import campaigns, taskcompat
from django_smsfly.backends.sandbox import Simulator
from django_smsfly.models import Campaign, OptOut
from tests.browser.helpers import OpenPage

pytestmark = pytest.mark.django_db(transaction=True)

_PREFIX = "django.tasks" if taskcompat.FRAMEWORK == "django.tasks" else "django_tasks"
DUMMY = f"{_PREFIX}.backends.dummy.DummyBackend"

#: Lines 2 and 6 valid, 3 invalid, 4 opted out, 5 the same number as line 2.
MIXED_CSV = (
    "recipient,name\n"
    "380501234567,Anna\n"
    "not-a-number,Bob\n"
    "380501234568,Carl\n"
    "380501234567,Anna again\n"
    "380501234569,Dana\n"
)
#: What the pages say, in each language.
TEXTS = {
    "en": {
        "heading": "What the file holds",
        "send_now": "Send now",
        "invalid": "invalid",
        "opted_out": "opted out",
        "duplicate": "duplicate",
        "scheduled": "scheduled",
        "running": "running",
        "paused": "paused",
        "finished": "finished",
    },
    "uk": {
        "heading": "Що містить файл",
        "send_now": "Надіслати зараз",
        "invalid": "некоректний",
        "opted_out": "у списку відмов",
        "duplicate": "повтор",
        "scheduled": "заплановано",
        "running": "триває",
        "paused": "призупинено",
        "finished": "завершено",
    },
}
CAMPAIGN_PAGE = re.compile(r"/admin/django_smsfly/campaign/(\d+)/change/$")


@pytest.fixture(autouse=True)
def _dummy_tasks(settings: Any) -> None:
    """Starting records the runner's task (in the server thread's backend); the test
    runs the runner itself."""
    settings.TASKS = {"default": {"BACKEND": DUMMY}}


@pytest.fixture(autouse=True)
def _media(settings: Any, tmp_path: Any) -> None:
    settings.MEDIA_ROOT = str(tmp_path / "media")


def upload(
    page: Page,
    url: Callable[..., str],
    name: str,
    text: str = MIXED_CSV,
    *,
    before_submit: Callable[[Page], object] = lambda page: None,
) -> Campaign:
    """Fill the new-campaign form and submit it; the check report follows."""
    page.goto(url("admin:django_smsfly_campaign_add"))
    page.fill("#id_name", name)
    csv_file: FilePayload = {"name": "people.csv", "mimeType": "text/csv", "buffer": text.encode()}
    page.set_input_files("#id_file", files=csv_file)
    page.check("input[name=channels][value=sms]")
    page.fill("#id_sms_text", "Hello, {name}!")
    before_submit(page)
    page.click("#smsfly-campaign-check")
    expect(page).to_have_url(CAMPAIGN_PAGE)
    match = CAMPAIGN_PAGE.search(page.url)
    assert match
    return Campaign.objects.get(pk=int(match.group(1)))


def test_upload_report_and_schedule(
    operator_page: OpenPage,
    language: str,
    url: Callable[..., str],
    sandbox: Simulator,
    screenshot: Callable[..., object],
) -> None:
    page = operator_page(language)
    OptOut.objects.create(recipient="380501234568")
    campaign = upload(
        page,
        url,
        "Spring sale",
        before_submit=lambda page: (
            language == "en" and screenshot(page, "campaign-new", full_page=True)
        ),
    )

    # The report: the counts, and each problem at its line.
    expect(page.locator("#smsfly-rows-total")).to_have_text("5")
    expect(page.locator("#smsfly-rows-valid")).to_have_text("2")
    expect(page.locator("#smsfly-rows-invalid")).to_have_text("1")
    expect(page.locator("#smsfly-rows-opted-out")).to_have_text("1")
    expect(page.locator("#smsfly-rows-duplicate")).to_have_text("1")
    texts = TEXTS[language]
    expect(page.locator("#smsfly-report-heading")).to_have_text(texts["heading"])
    expect(page.locator("#smsfly-send-now")).to_have_text(texts["send_now"])
    for line, kind in ((3, "invalid"), (4, "opted_out"), (5, "duplicate")):
        row = page.locator(f"#smsfly-problems tr[data-line='{line}']")
        expect(row).to_have_class(f"smsfly-problem-{kind}")
        expect(row.locator("td").nth(0)).to_have_text(str(line))
        expect(row.locator("td").nth(1)).to_have_text(texts[kind])
    expect(page.locator("#smsfly-preview")).to_contain_text("Hello, Anna!")
    expect(page.locator("#smsfly-preview")).to_contain_text("Hello, Dana!")
    if language == "en":
        screenshot(page, "campaign-report", full_page=True)

    # Send at a time a minute or two ahead, in the admin's time zone (Europe/Kyiv).
    at = timezone.localtime() + dt.timedelta(minutes=2)
    page.fill("#id_send_date", at.strftime("%Y-%m-%d"))
    page.fill("#id_send_time", at.strftime("%H:%M"))
    page.click("#smsfly-send-at")
    expect(page.locator("#smsfly-progress")).to_have_attribute("data-smsfly-status", "scheduled")
    expect(page.locator("#smsfly-campaign-status")).to_have_text(texts["scheduled"])
    expect(page.locator(".messagelist .success")).to_be_visible()
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SCHEDULED
    assert campaign.starts_at is not None
    starts = timezone.localtime(campaign.starts_at)
    assert (starts.date(), starts.hour, starts.minute) == (at.date(), at.hour, at.minute)
    assert not sandbox.requests_for("SENDMESSAGE")


def test_start_once_pause_resume_and_live_progress(
    operator_page: OpenPage,
    language: str,
    url: Callable[..., str],
    live_server: LiveServer,
    sandbox: Simulator,
    screenshot: Callable[..., object],
) -> None:
    page = operator_page(language)
    texts = TEXTS[language]
    OptOut.objects.create(recipient="380501234568")
    campaign = upload(page, url, "June news")

    # A double click on "Send now" posts the start form once (the button is disabled
    # as the form goes), and the campaign starts once.
    starts: list[str] = []
    page.on(
        "request",
        lambda request: (
            starts.append(request.url)
            if request.method == "POST" and request.url.endswith("/start/")
            else None
        ),
    )
    page.dblclick("#smsfly-send-now")
    expect(page.locator("#smsfly-progress")).to_have_attribute("data-smsfly-status", "running")
    assert len(starts) == 1
    expect(page.locator("#smsfly-campaign-status")).to_have_text(texts["running"])
    expect(page.locator(".messagelist .info")).to_have_count(0)  # no "already started"
    expect(page.locator("#smsfly-pause")).to_be_visible()
    expect(page.locator("#smsfly-resume")).to_be_hidden()

    # Pause, then resume.
    page.click("#smsfly-pause")
    expect(page.locator("#smsfly-progress")).to_have_attribute("data-smsfly-status", "paused")
    expect(page.locator("#smsfly-campaign-status")).to_have_text(texts["paused"])
    expect(page.locator("#smsfly-resume")).to_be_visible()
    expect(page.locator("#smsfly-pause")).to_be_hidden()
    page.click("#smsfly-resume")
    expect(page.locator("#smsfly-progress")).to_have_attribute("data-smsfly-status", "running")
    expect(page.locator("[data-smsfly-field=accepted]")).to_have_text("0")

    # The runner works while the page is open: it follows by itself, without a reload.
    page.evaluate("window.smsflyNotReloaded = true")
    campaigns.run(campaign.pk)
    expect(page.locator("#smsfly-progress")).to_have_attribute("data-smsfly-status", "finished")
    assert page.evaluate("window.smsflyNotReloaded") is True
    # The figures the page put in place came formatted in the page's language.
    expect(page.locator("#smsfly-campaign-status")).to_have_text(texts["finished"])
    expect(page.locator("[data-smsfly-field=accepted]")).to_have_text("2")
    expect(page.locator("[data-smsfly-field=opted_out]")).to_have_text("1")
    expect(page.locator("[data-smsfly-field=percent]")).to_have_text("100 %")
    expect(page.locator("#smsfly-progress-bar")).to_have_js_property("value", 100)
    expect(page.locator("#smsfly-campaign-status")).to_have_class(
        re.compile("smsfly-badge-success")
    )
    expect(page.locator("#smsfly-pause")).to_be_hidden()
    expect(page.locator("#smsfly-cancel")).to_be_hidden()
    sent = sorted(r.body["data"]["recipient"] for r in sandbox.requests_for("SENDMESSAGE"))
    assert sent == ["380501234567", "380501234569"]

    # The delivery stats, in the page's language's number format.
    spend = page.locator("#smsfly-spend").inner_text()
    decimal = "," if language == "uk" else "."
    assert re.fullmatch(rf"\d+\{decimal}\d+", spend), spend
    expect(page.locator("[data-smsfly-field=via_sms]")).to_have_text(re.compile(r"^\d+$"))
    if language == "en":
        screenshot(page, "campaign-progress", full_page=True)

    # The results file, and the campaign's messages.
    export = page.locator("#smsfly-export").get_attribute("href") or ""
    response = page.request.get(f"{live_server.url}{export}")
    assert response.ok
    rows = list(csv.reader(io.StringIO(response.text().lstrip("\ufeff"))))
    assert rows[0][:2] == ["line", "recipient"]
    assert len(rows) == 1 + 3  # two sent, one opted out
    page.click("#smsfly-campaign-messages")
    expect(page.locator("#result_list tbody tr")).to_have_count(3)


def test_cancel_asks_first_and_fits_a_phone(logged_in_page: Page, url: Callable[..., str]) -> None:
    page = logged_in_page
    page.set_viewport_size({"width": 390, "height": 844})
    campaign = upload(page, url, "Phone check")
    # Nothing sticks out sideways at a phone's width: not the report's tables either.
    page.wait_for_load_state("load")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.click("#smsfly-send-now")
    expect(page.locator("#smsfly-cancel")).to_be_visible()
    # Nothing sticks out sideways at a phone's width.
    page.wait_for_load_state("load")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390

    page.once("dialog", lambda dialog: dialog.dismiss())
    page.click("#smsfly-cancel")
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.RUNNING

    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#smsfly-cancel")
    expect(page.locator("#smsfly-progress")).to_have_attribute("data-smsfly-status", "cancelled")
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.CANCELLED
