"""The campaign pages in the admin, as an operator uses them (Django's test client).

The list (columns, filters, a constant query count), a new campaign (upload, the check
report with every problem at its line, the engine's errors as form errors), the start
(now, at a time, once however often its form is posted), the progress page and its JSON
(constant query counts), Pause / Resume / Cancel and their permissions, the results file
(streamed, formula-safe) and the link to the campaign's messages. The campaigns are made
by the real engine (:mod:`django_smsfly.campaigns`) on the sandbox.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import re
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.db.models import Sum
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from django_smsfly import campaigns, sync_statuses
from django_smsfly.admin.campaign_pages import csv_lines, duration, safe_cell
from django_smsfly.backends.sandbox import Simulator
from django_smsfly.models import Campaign, Message, MessageTemplate, OptOut
from tests.task_backends import DUMMY

# The engine enqueues its runner when the transaction commits.
pytestmark = pytest.mark.django_db(transaction=True)

LIST = "admin:django_smsfly_campaign_changelist"
ADD = "admin:django_smsfly_campaign_add"
CHANGE = "admin:django_smsfly_campaign_change"

#: Line 2 and 6 valid, 3 invalid, 4 opted out, 5 the same number as line 2.
MIXED_CSV = (
    "recipient,name\n"
    "380501234567,Anna\n"
    "not-a-number,Bob\n"
    "380501234568,Carl\n"
    "380501234567,Anna again\n"
    "380501234569,Dana\n"
)


def url(name: str, *args: Any) -> str:
    return reverse(name, args=args)


def view(campaign: Campaign, name: str) -> str:
    return reverse(f"admin:django_smsfly_campaign_{name}", args=[campaign.pk])


def upload(text: str, name: str = "people.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, text.encode("utf-8"), content_type="text/csv")


def numbers(count: int, start: int = 1_000) -> str:
    return "recipient,name\n" + "".join(
        f"3805012{start + i:05d},Person {i}\n" for i in range(count)
    )


def new_campaign(text: str = MIXED_CSV, **options: Any) -> Campaign:
    """A draft made by the engine, as the admin's form would make it."""
    options.setdefault("name", "Spring sale")
    options.setdefault("channels", ["sms"])
    options.setdefault("sms_text", "Hello, {name}!")
    return campaigns.create(upload(text), **options)


def sends(sandbox: Simulator) -> list[Any]:
    return [request for request in sandbox.requests if request.action == "SENDMESSAGE"]


def notices(response: Any) -> list[str]:
    return [str(message) for message in response.context["messages"]]


@pytest.fixture(autouse=True)
def _media(settings: Any, tmp_path: Any) -> None:
    # Uploaded campaign files go to a folder of the test's own.
    settings.MEDIA_ROOT = str(tmp_path / "media")


def user_with(*codenames: str) -> Client:
    """A logged-in staff user with only the given campaign permissions."""
    user = User.objects.create_user("clerk", password="pw", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="django_smsfly", codename__in=codenames)
    )
    browser = Client()
    browser.force_login(user)
    return browser


# -- a new campaign and its check report ------------------------------------------------


def post_new(operator: Client, text: str = MIXED_CSV, **fields: Any) -> Any:
    data = {
        "name": "Spring sale",
        "file": upload(text),
        "channels": "sms",
        "sms_text": "Hello, {name}!",
        **fields,
    }
    return operator.post(url(ADD), data)


def test_the_new_campaign_page_offers_the_form(operator: Client) -> None:
    response = operator.get(url(ADD))
    assert response.status_code == 200
    page = response.content.decode()
    assert 'enctype="multipart/form-data"' in page
    for field in ("name", "file", "template", "sms_text", "viber_text", "channels"):
        assert f'name="{field}"' in page


def test_the_template_languages_offered_are_those_the_templates_have(operator: Client) -> None:
    MessageTemplate.objects.create(name="welcome", sms_text="Hi {{ name }}")
    MessageTemplate.objects.create(name="welcome", language="uk", sms_text="Привіт {{ name }}")
    page = operator.get(url(ADD)).content.decode()
    select = re.search(r'<select name="language".*?</select>', page, re.S)
    assert select
    assert re.findall(r'<option value="([^"]*)"', select.group(0)) == ["", "uk"]


def test_a_campaign_from_a_template_renders_the_chosen_language(operator: Client) -> None:
    default = MessageTemplate.objects.create(name="welcome", sms_text="Hi {{ name }}")
    MessageTemplate.objects.create(name="welcome", language="uk", sms_text="Привіт, {{ name }}")
    response = post_new(operator, sms_text="", channels="", template=default.pk, language="uk")
    assert response.status_code == 302
    campaign = Campaign.objects.get()
    assert (campaign.template, campaign.language) == (default, "uk")
    page = operator.get(response["Location"]).content.decode()
    assert "Привіт, Anna" in page


def test_the_report_warns_when_no_worker_will_run_the_campaign(
    operator: Client, settings: Any
) -> None:
    campaign = new_campaign()
    page = operator.get(view(campaign, "change")).content.decode()
    # The tests' default task backend runs tasks at once: "Send now" would block.
    assert "No task worker runs this site" in page
    settings.TASKS = {"default": {"BACKEND": DUMMY}}
    page = operator.get(view(campaign, "change")).content.decode()
    assert "No task worker runs this site" not in page


def test_a_template_and_texts_together_are_refused(operator: Client) -> None:
    default = MessageTemplate.objects.create(name="welcome", sms_text="Hi {{ name }}")
    response = post_new(operator, template=default.pk)
    assert response.status_code == 200
    assert "Choose a template or write the texts, not both." in response.content.decode()
    assert not Campaign.objects.exists()


def test_an_upload_is_checked_and_its_report_shows_every_row_at_its_line(
    operator: Client, sandbox: Simulator
) -> None:
    OptOut.objects.create(recipient="380501234568")
    response = post_new(operator)
    campaign = Campaign.objects.get()
    assert response.status_code == 302
    assert response["Location"] == view(campaign, "change")
    assert campaign.status == Campaign.Status.DRAFT
    assert campaign.origin == Campaign.Origin.ADMIN
    assert (campaign.rows_valid, campaign.rows_invalid) == (2, 1)
    assert (campaign.rows_opted_out, campaign.rows_duplicate) == (1, 1)

    page = operator.get(response["Location"]).content.decode()
    assert re.search(r'id="smsfly-rows-valid">\s*2\s*<', page)
    assert re.search(r'id="smsfly-rows-invalid">\s*1\s*<', page)
    assert re.search(r'id="smsfly-rows-opted-out">\s*1\s*<', page)
    assert re.search(r'id="smsfly-rows-duplicate">\s*1\s*<', page)
    for line, kind in ((3, "invalid"), (4, "opted_out"), (5, "duplicate")):
        assert re.search(rf'class="smsfly-problem-{kind}" data-line="{line}"', page), kind
    assert "Hello, Anna!" in page
    assert "Hello, Dana!" in page
    assert 'id="smsfly-send-now"' in page
    assert not sends(sandbox), "nothing is sent before the operator starts it"


def test_an_unusable_file_is_a_form_error_not_a_traceback(operator: Client) -> None:
    response = post_new(operator, text="name,city\nAnna,Kyiv\n")
    assert response.status_code == 200
    page = response.content.decode()
    assert 'class="errornote"' in page
    assert "recipient" in page
    assert not Campaign.objects.exists()


def test_a_malformed_csv_names_its_line(operator: Client) -> None:
    text = 'recipient,name\n380501234567,Anna\n380501234569,"Dana\n380501234570,Eve\n'
    response = post_new(operator, text=text)
    assert response.status_code == 200
    assert 'class="errornote"' in response.content.decode()
    assert not Campaign.objects.filter(status=Campaign.Status.RUNNING).exists()


def test_a_campaign_needs_a_template_or_texts(operator: Client) -> None:
    response = post_new(operator, sms_text="")
    assert response.status_code == 200
    assert "Choose a message template or write the texts" in response.content.decode()
    assert not Campaign.objects.exists()


def test_the_report_notes_the_problems_beyond_those_listed(operator: Client) -> None:
    campaign = new_campaign("recipient,name\n" + "nope,X\n" * 503 + "380501234567,Anna\n")
    page = operator.get(view(campaign, "change")).content.decode()
    assert page.count('class="smsfly-problem-invalid"') == 500
    assert 'id="smsfly-problems-more"' in page
    assert "3 more rows" in page


def test_discard_deletes_the_draft_and_its_file(operator: Client) -> None:
    campaign = new_campaign()
    stored = campaign.file.path
    response = operator.post(view(campaign, "discard"))
    assert response.status_code == 302
    assert not Campaign.objects.exists()
    assert not os.path.exists(stored)


# -- starting: now, at a time, once -------------------------------------------------------


def start_form(operator: Client, campaign: Campaign) -> dict[str, str]:
    """The start form's fields as the report page draws them."""
    page = operator.get(view(campaign, "change")).content.decode()
    token = re.search(r'name="token" value="([^"]+)"', page)
    assert token, "the start form carries a one-time token"
    return {"token": token.group(1)}


def schedule_form(operator: Client, campaign: Campaign, day: dt.date) -> dict[str, str]:
    """The start form filled in to schedule the campaign for 09:30 on ``day``."""
    return {
        **start_form(operator, campaign),
        "_schedule": "",
        "send_date": day.isoformat(),
        "send_time": "09:30",
    }


def test_send_now_starts_the_campaign_and_sends_each_valid_row_once(
    operator: Client, sandbox: Simulator
) -> None:
    OptOut.objects.create(recipient="380501234568")
    campaign = new_campaign()
    response = operator.post(
        view(campaign, "start"), {**start_form(operator, campaign), "_now": ""}
    )
    assert response.status_code == 302
    assert response["Location"] == view(campaign, "change")
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.FINISHED  # the immediate task backend
    recipients = sorted(str(r.body["data"]["recipient"]) for r in sends(sandbox))
    assert recipients == ["380501234567", "380501234569"]


def test_the_same_start_form_posted_twice_starts_once(operator: Client, dummy_tasks: Any) -> None:
    campaign = new_campaign()
    form = {**start_form(operator, campaign), "_now": ""}
    first = operator.post(view(campaign, "start"), form)
    second = operator.post(view(campaign, "start"), form, follow=True)
    assert first.status_code == 302
    assert len(dummy_tasks.results) == 1, "one runner enqueued"
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.RUNNING
    assert second.redirect_chain == [(view(campaign, "change"), 302)]
    assert any("already started" in notice for notice in notices(second))
    assert 'id="smsfly-progress"' in second.content.decode()


def test_send_at_schedules_in_the_admins_time_zone(operator: Client, dummy_tasks: Any) -> None:
    campaign = new_campaign()
    tomorrow = timezone.localdate() + dt.timedelta(days=1)
    response = operator.post(view(campaign, "start"), schedule_form(operator, campaign, tomorrow))
    assert response.status_code == 302
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SCHEDULED
    kyiv = timezone.localtime(campaign.starts_at)  # TIME_ZONE is Europe/Kyiv
    assert (kyiv.date(), kyiv.time()) == (tomorrow, dt.time(9, 30))


def test_send_at_a_past_time_is_refused_and_nothing_starts(
    operator: Client, sandbox: Simulator
) -> None:
    campaign = new_campaign()
    yesterday = timezone.localdate() - dt.timedelta(days=1)
    response = operator.post(view(campaign, "start"), schedule_form(operator, campaign, yesterday))
    assert response.status_code == 200
    assert "That time has passed" in response.content.decode()
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.DRAFT
    assert not sends(sandbox)


def test_a_start_form_of_another_campaign_is_refused(operator: Client, sandbox: Simulator) -> None:
    first, second = new_campaign(), new_campaign(name="Other")
    response = operator.post(view(second, "start"), {**start_form(operator, first), "_now": ""})
    assert response.status_code == 200
    assert "another user or on another page" in response.content.decode()
    second.refresh_from_db()
    assert second.status == Campaign.Status.DRAFT
    assert not sends(sandbox)


def test_starting_needs_the_change_permission(dummy_tasks: Any) -> None:
    campaign = new_campaign()
    clerk = user_with("view_campaign")
    page = clerk.get(view(campaign, "change")).content.decode()
    assert 'id="smsfly-send-now"' not in page
    response = clerk.post(view(campaign, "start"), {"_now": ""})
    assert response.status_code == 403
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.DRAFT


# -- progress, its JSON, and the buttons ---------------------------------------------------


def started(text: str = MIXED_CSV) -> Campaign:
    campaign = new_campaign(text)
    assert campaigns.start(campaign)
    campaign.refresh_from_db()
    return campaign


def test_the_progress_page_shows_the_outcome(operator: Client) -> None:
    campaign = started()
    page = operator.get(view(campaign, "change")).content.decode()
    assert 'id="smsfly-progress"' in page
    assert 'data-smsfly-final="true"' in page
    assert re.search(r'data-smsfly-field="total">\s*3\s*<', page)
    assert re.search(r'data-smsfly-field="accepted">\s*3\s*<', page)
    assert 'id="smsfly-export"' in page
    assert 'id="smsfly-pause"' in page  # drawn, hidden: the page's script may show it
    assert re.search(r'data-smsfly-action="pause"[^>]* hidden', page)


def test_the_progress_json_has_the_engines_figures_and_their_display(operator: Client) -> None:
    campaign = started()
    response = operator.get(view(campaign, "progress"))
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    data = response.json()
    expected = campaigns.progress(campaign).as_dict()
    assert data["progress"] == expected
    assert data["status"] == "finished"
    assert data["final"] is True
    assert data["actions"] == []
    assert data["display"]["total"] == "3"
    assert data["display"]["status"] == "finished"


def queries_of(operator: Client, path: str) -> int:
    """How many queries a page takes once the session and the user are loaded."""
    operator.get(path)
    with CaptureQueriesContext(connection) as queries:
        assert operator.get(path).status_code == 200
    return len(queries)


def test_the_progress_page_and_json_keep_a_constant_query_count(operator: Client) -> None:
    small, large = started(numbers(10)), started(numbers(200, start=5_000))
    assert large.messages.count() == 200
    for name in ("change", "progress"):
        assert queries_of(operator, view(small, name)) == queries_of(operator, view(large, name))


def test_pause_resume_and_cancel(operator: Client, dummy_tasks: Any) -> None:
    campaign = started()
    assert campaign.status == Campaign.Status.RUNNING
    payload = operator.get(view(campaign, "progress")).json()
    assert payload["actions"] == ["pause", "cancel"]

    assert operator.post(view(campaign, "pause")).status_code == 302
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.PAUSED
    assert operator.get(view(campaign, "progress")).json()["actions"] == ["resume", "cancel"]

    assert operator.post(view(campaign, "resume")).status_code == 302
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.RUNNING

    response = operator.post(view(campaign, "cancel"), follow=True)
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.CANCELLED
    assert any("cancelled" in notice for notice in notices(response))
    again = operator.post(view(campaign, "pause"), follow=True)
    assert any("Nothing was changed" in notice for notice in notices(again))


def test_the_buttons_are_posts_with_the_change_permission(dummy_tasks: Any) -> None:
    campaign = started()
    clerk = user_with("view_campaign")
    page = clerk.get(view(campaign, "change")).content.decode()
    assert 'id="smsfly-pause"' not in page
    for name in ("pause", "resume", "cancel"):
        assert clerk.post(view(campaign, name)).status_code == 403
    assert clerk.get(view(campaign, "progress")).status_code == 200
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.RUNNING


def test_the_buttons_refuse_a_get(operator: Client, dummy_tasks: Any) -> None:
    campaign = started()
    for name in ("start", "pause", "resume", "cancel", "discard"):
        assert operator.get(view(campaign, name)).status_code == 405
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.RUNNING


def test_the_progress_json_needs_the_view_permission(dummy_tasks: Any) -> None:
    campaign = started()
    nobody = user_with()
    assert nobody.get(view(campaign, "progress")).status_code in (403, 404)
    assert nobody.get(view(campaign, "export")).status_code in (403, 404)


# -- the results file and the messages -----------------------------------------------------


def test_the_results_export_streams_one_row_per_message(operator: Client) -> None:
    campaign = started()
    response = operator.get(view(campaign, "export"))
    assert response.streaming
    assert response["Content-Type"].startswith("text/csv")
    assert f'filename="campaign-{campaign.pk}.csv"' in response["Content-Disposition"]
    text = response.getvalue().decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][:3] == ["line", "recipient", "state"]
    assert sorted((row[0], row[1]) for row in rows[1:]) == [
        ("2", "380501234567"),
        ("4", "380501234568"),
        ("6", "380501234569"),
    ]


def test_export_cells_that_look_like_formulas_are_quoted() -> None:
    assert [safe_cell(v) for v in ("=1+1", "+380", "-5", "@SUM(A1)", "ok", None, 7)] == [
        "'=1+1",
        "'+380",
        "'-5",
        "'@SUM(A1)",
        "ok",
        "",
        "7",
    ]
    line = next(csv_lines([['=HYPERLINK("http://x")', "fine"]]))
    assert line.startswith("\"'=HYPERLINK(")


def test_the_messages_link_lists_the_campaigns_messages_only(operator: Client) -> None:
    campaign = started()
    other = started(numbers(3))
    page = operator.get(view(campaign, "change")).content.decode()
    link = re.search(r'id="smsfly-campaign-messages" href="([^"]+)"', page)
    assert link
    listing = operator.get(link.group(1).replace("&amp;", "&"))
    assert listing.status_code == 200
    # The list says which campaign it shows (its filter, with the campaign's name).
    sidebar = re.search(r'id="changelist-filter".*?</nav>', listing.content.decode(), re.S)
    assert sidebar
    assert "Spring sale" in sidebar.group(0)
    shown = {message.pk for message in listing.context["cl"].result_list}
    assert shown == set(Message.objects.filter(campaign=campaign).values_list("pk", flat=True))
    assert not shown & set(other.messages.values_list("pk", flat=True))


# -- the list ----------------------------------------------------------------------------


def test_the_list_shows_status_origin_and_outcomes(operator: Client, sandbox: Simulator) -> None:
    sandbox.freeze()
    campaign = started()
    sandbox.advance(600)  # SMS-fly has delivered them by now
    sync_statuses(message_pks=list(campaign.messages.values_list("pk", flat=True)))
    new_campaign(name="Draft one")
    page = operator.get(url(LIST)).content.decode()
    assert "Spring sale" in page
    assert "Draft one" in page
    assert "smsfly-badge-success" in page
    row = re.search(r"<tr>((?:(?!</tr>).)*Spring sale(?:(?!</tr>).)*)</tr>", page, re.S)
    assert row
    cells = dict(re.findall(r'class="field-(\w+)">([^<]*)<', row.group(1)))
    assert cells["origin"] == "admin"
    assert cells["rows_valid_display"] == "3"
    assert cells["progress_display"] == "100 %"
    assert cells["delivered_display"] == "3"
    assert cells["failed_display"] == "0"
    spend = campaign.messages.aggregate(total=Sum("cost"))["total"]
    assert spend == Decimal("1.437")  # three SMS at the sandbox's 0.479
    assert cells["spend_display"] == "1.437"


def test_the_list_filters_by_status_and_origin(operator: Client) -> None:
    started()
    new_campaign(name="Draft one")
    page = operator.get(url(LIST), {"status__exact": "draft"}).content.decode()
    assert "Draft one" in page
    assert "Spring sale" not in page
    page = operator.get(url(LIST), {"origin__exact": "cli"}).content.decode()
    assert "Draft one" not in page


def test_the_list_keeps_a_constant_query_count(operator: Client) -> None:
    def add(first: int, last: int) -> None:
        for index in range(first, last):
            campaign = new_campaign(numbers(2, start=index * 10), name=f"Campaign {index}")
            if index % 2:
                campaigns.start(campaign)

    add(0, 3)
    with_three = queries_of(operator, url(LIST))
    add(3, 30)
    response = operator.get(url(LIST))
    assert len(response.context["cl"].result_list) == 30
    assert queries_of(operator, url(LIST)) == with_three


# -- how figures read --------------------------------------------------------------------


def test_the_time_left_reads_in_hours_minutes_or_seconds() -> None:
    assert duration(3725) == "1 h 2 min"
    assert duration(250) == "4 min 10 s"
    assert duration(12) == "12 s"
    assert duration(None) == "—"
