"""Campaigns (``django_smsfly.campaigns``): the check of a file, start once, the runner at
the shared rate, pause/resume/cancel, scheduling, quiet hours, progress and export."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from django_smsfly import campaigns, tasks
from django_smsfly.backends.sandbox import get_simulator
from django_smsfly.campaigns import runner
from django_smsfly.mailing import RowResult
from django_smsfly.models import Campaign, Message, MessageTemplate, OptOut
from django_smsfly.ratelimit import reset_rate_limiters

pytestmark = pytest.mark.django_db

Status = Campaign.Status


@pytest.fixture(autouse=True)
def _media(tmp_path: Path, settings: Any) -> Iterator[None]:
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.SMSFLY = {**settings.SMSFLY, "SEND_RATE_LIMIT": 0}
    reset_rate_limiters()
    yield
    reset_rate_limiters()


def upload(*rows: str, header: str = "recipient,name") -> SimpleUploadedFile:
    text = "\n".join([header, *rows]) + "\n"
    return SimpleUploadedFile("list.csv", text.encode("utf-8"), content_type="text/csv")


def people(count: int, start: int = 100) -> list[str]:
    return [f"38050{i:07d},Person {i}" for i in range(start, start + count)]


def sent_to() -> list[str]:
    return [r.body["data"]["recipient"] for r in get_simulator().requests_for("SENDMESSAGE")]


def make(*rows: str, header: str = "recipient,name", **options: Any) -> Campaign:
    options.setdefault("sms_text", "Hi {name}")
    return campaigns.create(upload(*rows, header=header), name="June", **options)


@pytest.fixture(autouse=True)
def _tasks_after_commit(django_capture_on_commit_callbacks: Any) -> None:
    """The runner is enqueued once the transaction commits; the test's transaction
    never does, so each verb that enqueues runs its callbacks as a commit would."""
    CALLBACKS[0] = django_capture_on_commit_callbacks


CALLBACKS: list[Any] = [None]


def committed(verb: Any, *args: Any, **kwargs: Any) -> Any:
    """Call ``verb`` and run what it left for the commit (the immediate task backend
    then runs the campaign's runner right here)."""
    with CALLBACKS[0](execute=True):
        return verb(*args, **kwargs)


def start(campaign: Campaign, **kwargs: Any) -> bool:
    return bool(committed(campaigns.start, campaign, **kwargs))


def resume(campaign: Campaign) -> bool:
    return bool(committed(campaigns.resume, campaign))


def start_due() -> int:
    return int(committed(campaigns.start_due))


# -- create and check ------------------------------------------------------------------


def test_check_counts_every_kind_of_row_and_names_the_problems_by_line() -> None:
    OptOut.objects.create(recipient="380500000102")
    campaign = make(
        "380500000100,Olena",  # line 2: valid
        "12345,Nobody",  # 3: not a number
        "380500000102,Gone",  # 4: opted out
        "+380 50 000 0100,Again",  # 5: the number of line 2
        "+12025550123,Far",  # 6: outside ALLOWED_REGIONS
        "380500000101,",  # 7: the template's value is empty: never sent as "Hi "
        "48501234567,Jan",  # 8: Poland: valid
    )
    assert campaign.status == Status.DRAFT
    assert (campaign.rows_total, campaign.rows_valid, campaign.rows_invalid) == (7, 2, 3)
    assert (campaign.rows_opted_out, campaign.rows_duplicate) == (1, 1)
    problems = [(p["line"], p["kind"]) for p in campaign.report["problems"]]
    assert problems == [
        (3, "invalid"),
        (4, "opted_out"),
        (5, "duplicate"),
        (6, "invalid"),
        (7, "invalid"),
    ]
    reasons = {p["line"]: p["reason"] for p in campaign.report["problems"]}
    assert "'12345' is not a valid phone number" in reasons[3]
    assert "ALLOWED_REGIONS" in reasons[6]
    assert campaign.report["problems_more"] == 0
    assert campaign.report["preview"][0] == {
        "line": 2,
        "recipient": "380500000100",
        "channels": "sms",
        "sms_text": "Hi Olena",
        "viber_text": None,
        "parts": 1,
    }
    assert campaign.parts_total == 2
    assert str(campaign.file.name).endswith(".csv")  # the upload is stored
    assert not get_simulator().requests_for("SENDMESSAGE")


def test_a_row_without_a_price_is_reported_and_left_out_of_the_estimate(settings: Any) -> None:
    # Moldova is allowed here, but the sandbox's price list has no prices for it.
    settings.SMSFLY = {**settings.SMSFLY, "ALLOWED_REGIONS": ("UA", "PL", "MD")}
    campaign = make("380500000100,Olena", "37369123456,Ion")
    kinds = [(p["line"], p["kind"]) for p in campaign.report["problems"]]
    assert (3, "no_price") in kinds
    assert campaign.cost_estimate == Decimal("0.479")


@pytest.mark.parametrize(
    ("header", "rows", "options", "expected"),
    [
        ("phone,name", ["380500000100,A"], {}, "no 'recipient' column"),
        ("recipient,name", ["380500000100,A"], {"sms_text": "Hi {surname}"}, "{surname}"),
        ("recipient,name", ['380500000100,"A', "380500000101,B"], {}, "Line 2"),
    ],
)
def test_an_unusable_file_is_a_clear_error_and_nothing_is_kept(
    header: str, rows: list[str], options: dict[str, Any], expected: str
) -> None:
    with pytest.raises(campaigns.CampaignError) as caught:
        make(*rows, header=header, **options)
    assert expected in str(caught.value)
    assert not Campaign.objects.exists()


# -- start and run ---------------------------------------------------------------------


def test_start_runs_once_a_second_start_does_nothing() -> None:
    campaign = make(*people(3))
    assert start(campaign) is True
    assert start(campaign) is False
    campaign.refresh_from_db()
    assert campaign.status == Status.FINISHED
    assert sent_to() == ["380500000100", "380500000101", "380500000102"]
    assert campaign.rows_done == 3
    assert campaign.messages.count() == 3


def test_a_template_campaign_sends_one_exact_request_per_valid_row() -> None:
    template = MessageTemplate.objects.create(
        name="sale", channels="sms", sms_text="Hi {{ name }}, -20% today"
    )
    OptOut.objects.create(recipient="380500000101")
    campaign = make("380500000100,Olena", "380500000101,Taras", "380500000102,", template=template)
    assert (campaign.rows_valid, campaign.rows_opted_out, campaign.rows_invalid) == (1, 1, 1)
    start(campaign)
    requests = get_simulator().requests_for("SENDMESSAGE")
    assert [r.body["data"] for r in requests] == [
        {
            "recipient": "380500000100",
            "channels": ["sms"],
            "sms": {"source": "InfoCenter", "text": "Hi Olena, -20% today"},
        }
    ]
    opted = Message.objects.get(recipient="380500000101")
    assert (opted.state, opted.error_code, opted.campaign_id) == (
        "failed",
        "OPTED_OUT",
        campaign.pk,
    )


def after_rows(
    monkeypatch: pytest.MonkeyPatch,
    campaign: Campaign,
    rows: int,
    act: Callable[[Campaign], object],
) -> Callable[[], None]:
    """Have the runner ``act`` on ``campaign`` (read afresh, as an operator's click would)
    as soon as it has handled ``rows`` rows; returns what puts the runner back."""
    real_row = runner._Cursor.row
    handled: list[int] = []

    def row(self: runner._Cursor, result: RowResult) -> None:
        real_row(self, result)
        handled.append(result.line)
        if len(handled) == rows:
            act(Campaign.objects.get(pk=campaign.pk))

    monkeypatch.setattr(runner._Cursor, "row", row)
    return lambda: monkeypatch.setattr(runner._Cursor, "row", real_row)


def test_pause_stops_after_the_row_in_hand_and_resume_sends_the_rest_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The status is read after every row by default, however fast the rows go.
    campaign = make(*people(8))
    put_back = after_rows(monkeypatch, campaign, 3, campaigns.pause)
    start(campaign)
    campaign.refresh_from_db()
    assert campaign.status == Status.PAUSED
    assert len(sent_to()) == 3
    assert campaign.claim_token == ""
    put_back()
    assert resume(campaign) is True
    campaign.refresh_from_db()
    assert campaign.status == Status.FINISHED
    assert sorted(sent_to()) == [p.split(",")[0] for p in people(8)]
    assert Message.objects.filter(campaign=campaign).count() == 8


def test_a_cancel_during_the_run_sends_nothing_after_the_row_in_hand(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    campaign = make(*people(8))
    after_rows(monkeypatch, campaign, 2, campaigns.cancel)
    start(campaign)
    campaign.refresh_from_db()
    assert campaign.status == Status.CANCELLED
    assert len(sent_to()) == 2
    assert campaign.messages.count() == 2  # the other rows were never written
    assert campaign.claim_token == ""


def test_cancel_leaves_the_rest_unsent_and_queued_messages_cancelled(settings: Any) -> None:
    settings.SMSFLY = {**settings.SMSFLY, "QUIET_HOURS": _quiet_now()}
    campaign = make(*people(4))
    start(campaign)  # every row waits for the quiet hours' end
    assert not sent_to()
    assert campaign.messages.filter(state="queued").count() == 4
    assert campaigns.cancel(campaign) is True
    assert campaigns.cancel(campaign) is False
    assert set(campaign.messages.values_list("state", "error_code")) == {("failed", "CANCELLED")}
    assert campaigns.progress(campaign).cancelled == 4
    assert resume(campaign) is False
    assert not sent_to()


def _quiet_now() -> dict[str, dt.time]:
    """A quiet window (Kyiv time) that holds now and ends in about two hours."""
    kyiv = timezone.localtime(timezone.now())  # TIME_ZONE is Europe/Kyiv in the tests
    start = (kyiv - dt.timedelta(hours=1)).time().replace(second=0, microsecond=0)
    end = (kyiv + dt.timedelta(hours=2)).time().replace(second=0, microsecond=0)
    return {"START": start, "END": end}


def test_quiet_hours_defer_rows_to_the_window_end(settings: Any) -> None:
    settings.SMSFLY = {**settings.SMSFLY, "QUIET_HOURS": _quiet_now()}
    campaign = make(*people(2))
    start(campaign)
    campaign.refresh_from_db()
    assert not sent_to()
    end = _quiet_now()["END"]
    for message in campaign.messages.all():
        assert message.state == "queued"
        assert message.send_at is not None
        assert timezone.localtime(message.send_at).time() == end
    assert campaign.status == Status.RUNNING  # finished once nothing is left queued
    # The window ends: the sync pass sends them, start_due finishes the campaign.
    campaign.messages.update(send_at=timezone.now(), retry_at=timezone.now())
    from django_smsfly import services

    services.run_sync_pass()
    start_due()
    campaign.refresh_from_db()
    assert sorted(sent_to()) == ["380500000100", "380500000101"]
    assert campaign.status == Status.FINISHED


def test_a_scheduled_campaign_starts_only_when_its_time_has_come() -> None:
    campaign = make(*people(2))
    at = timezone.now() + dt.timedelta(hours=1)
    assert start(campaign, at=at) is True
    campaign.refresh_from_db()
    assert campaign.status == Status.SCHEDULED
    assert start_due() == 0
    assert not sent_to()
    Campaign.objects.filter(pk=campaign.pk).update(starts_at=timezone.now() - dt.timedelta(1))
    assert start_due() == 1
    campaign.refresh_from_db()
    assert campaign.status == Status.FINISHED
    assert len(sent_to()) == 2


def test_a_dead_runner_is_replaced_once_its_lease_ran_out() -> None:
    campaign = make(*people(3))
    Campaign.objects.filter(pk=campaign.pk).update(
        status=Status.RUNNING, claim_token="dead", lease_until=timezone.now() + dt.timedelta(60)
    )
    assert start_due() == 0  # its lease still holds
    runner.run(campaign.pk)
    assert not sent_to()
    Campaign.objects.filter(pk=campaign.pk).update(lease_until=timezone.now())
    assert start_due() == 1
    campaign.refresh_from_db()
    assert campaign.status == Status.FINISHED
    assert len(sent_to()) == 3


def test_a_runner_holding_its_lease_gets_no_second_one_from_the_sync_passes(
    dummy_tasks: Any,
) -> None:
    """Every smsfly_sync pass and every sync_due task starts what is due: a runner whose
    lease holds is left alone pass after pass, while one whose lease ran out is revived."""
    alive, dead = make(*people(2)), make(*people(2, start=200))
    now = timezone.now()
    Campaign.objects.filter(pk=alive.pk).update(
        status=Status.RUNNING, claim_token="alive", lease_until=runner.lease_until(now)
    )
    Campaign.objects.filter(pk=dead.pk).update(
        status=Status.RUNNING, claim_token="dead", lease_until=now - dt.timedelta(seconds=1)
    )
    passes = [
        lambda: call_command("smsfly_sync", stdout=io.StringIO()),
        tasks.sync_due.call,
    ]
    for sync_pass in passes * 2:
        dummy_tasks.clear()
        committed(sync_pass)
        runners = [r.args for r in dummy_tasks.results if r.task.name == "run_campaign"]
        assert runners == [[dead.pk]]


# -- progress and export ---------------------------------------------------------------


@pytest.mark.parametrize("rows", [10, 200])
def test_progress_takes_the_same_few_queries_whatever_the_size(rows: int) -> None:
    campaign = make(*people(rows))
    start(campaign)
    with CaptureQueriesContext(connection) as queries:
        progress = campaigns.progress(campaign)
    assert len(queries) == 2
    assert (progress.total, progress.done, progress.accepted, progress.queued) == (
        rows,
        rows,
        rows,
        0,
    )
    assert progress.percent == 100
    assert progress.spend == Decimal("0.479") * rows
    assert progress.rate > 0
    data = progress.as_dict()
    assert data["spend"] == str(progress.spend)
    assert data["status"] == "finished"


def test_progress_of_a_draft_counts_every_valid_row_as_queued() -> None:
    progress = campaigns.progress(make(*people(5)))
    assert (progress.total, progress.queued, progress.done, progress.percent) == (5, 5, 0, 0)
    assert progress.eta_seconds is None


def test_export_has_a_row_per_message_in_the_files_order() -> None:
    OptOut.objects.create(recipient="380500000101")
    campaign = make(*people(3))
    start(campaign)
    rows = list(campaigns.export_rows(campaign))
    assert rows[0][:4] == ["line", "recipient", "state", "status"]
    assert [(r[0], r[1], r[2], r[6]) for r in rows[1:]] == [
        ("2", "380500000100", "accepted", ""),
        ("3", "380500000101", "failed", "OPTED_OUT"),
        ("4", "380500000102", "accepted", ""),
    ]
    assert rows[1][5] == "0.4790"
