"""The CSV run as a service (``django_smsfly.mailing.run_csv``): what it sends, the report it
returns, the callbacks it makes, its pace, and how it shares a file with other runs."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.test import override_settings
from django.utils import timezone

from django_smsfly import services
from django_smsfly.backends.sandbox import TEST_NUMBERS, get_simulator
from django_smsfly.backends.sandbox import Outcome as SandboxOutcome
from django_smsfly.mailing import (
    MailingContent,
    MailingError,
    MailingInterrupted,
    MailingReport,
    Outcome,
    RowResult,
    run_csv,
)
from django_smsfly.models import Message
from django_smsfly.ratelimit import RateLimiter, reset_rate_limiters

pytestmark = pytest.mark.django_db

HI = MailingContent(text="Hi {name}")
REJECTED = TEST_NUMBERS[SandboxOutcome.REJECTED]


def write_csv(path: Path, *rows: str, header: str = "recipient,name") -> Path:
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def people(count: int) -> list[str]:
    return [f"38050{i:07d},Person {i}" for i in range(100, 100 + count)]


def sends() -> list[str]:
    """The recipients of every SENDMESSAGE the sandbox received, in order."""
    return [r.body["data"]["recipient"] for r in get_simulator().requests_for("SENDMESSAGE")]


@pytest.fixture
def mailing_list(tmp_path: Path) -> Path:
    """Four rows: two good ones, a row SMS-fly refuses, and one that is not a number."""
    return write_csv(
        tmp_path / "list.csv",
        "380500000100,Olena",
        f"{REJECTED},Refused",
        "12345,Nobody",
        "380500000101,Taras",
    )


# -- the report ----------------------------------------------------------------------------


def test_the_report_counts_each_outcome_and_names_problem_rows_by_line(
    mailing_list: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = run_csv(mailing_list, HI, rate=0)
    assert (report.rows, report.sent, report.failed, report.invalid) == (4, 2, 1, 1)
    assert report.errors == 2
    assert report.cost == Decimal("0.958")  # what SMS-fly charged for the two accepted
    assert [problem.line for problem in report.problems] == [3, 4]
    assert report.problems[0].text.startswith(f"{REJECTED}: ")
    assert "INVRECIPIENT" in report.problems[0].text
    assert "'12345' is not a valid phone number" in report.problems[1].text
    assert report.stopped is None
    assert capsys.readouterr() == ("", "")  # the run tells its caller, never a stream


def test_on_row_hears_every_row_in_order_and_progress_sees_the_report_grow(
    mailing_list: Path,
) -> None:
    rows: list[RowResult] = []
    seen: list[int] = []

    def progress(report: MailingReport) -> None:
        seen.append(report.rows)

    run_csv(mailing_list, HI, rate=0, on_row=rows.append, progress=progress)
    assert [(r.line, r.outcome) for r in rows] == [
        (2, Outcome.SENT),
        (3, Outcome.FAILED),
        (4, Outcome.INVALID),
        (5, Outcome.SENT),
    ]
    assert rows[0].message is not None
    assert rows[0].message.state == Message.State.ACCEPTED
    assert seen == [1, 2, 3, 4]


def test_every_message_records_the_file_line_campaign_and_run(mailing_list: Path) -> None:
    report = run_csv(mailing_list, HI, rate=0, campaign="june")
    first = Message.objects.get(recipient="380500000100")
    assert first.metadata == {
        "csv": "list.csv",
        "line": 2,
        "campaign": "june",
        "run": report.run_id,
    }
    assert report.run_id


def test_a_stream_is_read_as_it_is_under_the_name_given() -> None:
    upload = io.StringIO("recipient,name\n380500000100,Olena\n")
    report = run_csv(upload, HI, rate=0, name="upload.csv", run_id="campaign-7")
    assert report.sent == 1
    assert Message.objects.get().metadata["csv"] == "upload.csv"
    assert Message.objects.get().metadata["run"] == "campaign-7"
    assert not upload.closed  # the caller's stream is the caller's to close


def test_unusable_input_is_refused_before_anything_is_sent(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "list.csv", "380500000100,Olena", header="phone,name")
    with pytest.raises(MailingError, match="no 'recipient' column"):
        run_csv(path, HI)
    with pytest.raises(MailingError, match="uses \\{surname\\}"):
        run_csv(write_csv(tmp_path / "ok.csv", *people(1)), MailingContent(text="{surname}"))
    assert sends() == []


def test_a_run_that_cannot_go_on_says_why_in_the_report(tmp_path: Path) -> None:
    get_simulator().balance = "0.5"
    report = run_csv(write_csv(tmp_path / "list.csv", *people(5)), HI, rate=0)
    assert report.stopped is not None
    assert report.stopped.startswith("Stopped at line 3")
    assert (report.rows, report.sent, report.failed) == (2, 1, 1)


def test_ctrl_c_hands_over_the_report_so_far(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_dispatch = services.dispatch

    def dispatch(pk: int, **kwargs: Any) -> Message:
        if Message.objects.count() == 3:
            raise KeyboardInterrupt
        return real_dispatch(pk, **kwargs)

    monkeypatch.setattr(services, "dispatch", dispatch)
    with pytest.raises(MailingInterrupted) as caught:
        run_csv(write_csv(tmp_path / "list.csv", *people(5)), HI, rate=0)
    assert (caught.value.report.rows, caught.value.report.sent) == (2, 2)
    assert caught.value.report.line == 4  # the row it was on


def test_a_dry_run_checks_and_prices_without_writing(mailing_list: Path) -> None:
    report = run_csv(mailing_list, HI, dry_run=True)
    assert (report.rows, report.checked, report.invalid) == (4, 3, 1)
    assert report.parts == 3
    assert report.encodings == {"GSM-7": 3}
    assert report.first > 0
    assert [problem.line for problem in report.problems] == [4]
    assert sends() == []
    assert not Message.objects.exists()


# -- the pace: one send limiter, at the run's rate -------------------------------------------


@pytest.fixture
def limiter_waits(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[float]]:
    """The rate of every send-slot wait the process makes (without waiting)."""
    reset_rate_limiters()
    rates: list[float] = []

    def acquire(self: RateLimiter) -> float:
        rates.append(self.rate)
        return 0.0

    monkeypatch.setattr(RateLimiter, "acquire", acquire)
    yield rates
    reset_rate_limiters()


@pytest.mark.parametrize(
    ("rate", "configured", "expected"),
    [
        (20.0, 2.0, 20.0),  # the run's rate, not SEND_RATE_LIMIT as well
        (None, 2.0, 2.0),  # SEND_RATE_LIMIT by default
        (None, None, 5.0),  # and 5 per second when that is not set
    ],
)
def test_each_send_waits_once_for_the_one_send_limiter_at_the_runs_rate(
    tmp_path: Path,
    limiter_waits: list[float],
    rate: float | None,
    configured: float | None,
    expected: float,
) -> None:
    with override_settings(SMSFLY={**settings.SMSFLY, "SEND_RATE_LIMIT": configured}):
        report = run_csv(write_csv(tmp_path / "list.csv", *people(4)), HI, rate=rate)
    assert report.sent == 4
    assert limiter_waits == [expected] * 4


def test_a_deferred_run_waits_for_no_send_slot(tmp_path: Path, limiter_waits: list[float]) -> None:
    report = run_csv(write_csv(tmp_path / "list.csv", *people(3)), HI, rate=1, defer=True)
    assert report.enqueued == 3
    assert 1.0 not in limiter_waits  # the workers' sends pace themselves


# -- rows another run has in hand ------------------------------------------------------------


def written_by_another_run(path: Path, monkeypatch: pytest.MonkeyPatch, **changes: Any) -> Message:
    """Write the file's first row queued as another run does before its send slot comes
    (that run never sends it here), then change the message."""
    with monkeypatch.context() as patch:
        patch.setattr(services, "dispatch", lambda pk, **kwargs: Message.objects.get(pk=pk))
        run_csv(path, HI, rate=0, limit=1, run_id="other-run")
    message = Message.objects.get()
    Message.objects.filter(pk=message.pk).update(**changes)
    message.refresh_from_db()
    return message


@pytest.mark.parametrize(
    "changes",
    [
        {"state": Message.State.SENDING},
        {},  # written, not yet sent: its run may be waiting for a send slot
    ],
)
def test_a_row_another_run_has_in_hand_is_elsewhere_and_not_sent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, changes: dict[str, Any]
) -> None:
    path = write_csv(tmp_path / "list.csv", *people(2))
    theirs = written_by_another_run(path, monkeypatch, **changes)
    rows: list[RowResult] = []
    report = run_csv(path, HI, rate=0, on_row=rows.append)
    assert (report.elsewhere, report.sent, report.errors) == (1, 1, 0)
    assert rows[0].outcome is Outcome.ELSEWHERE
    assert rows[0].message is not None
    assert rows[0].message.pk == theirs.pk
    assert sends() == ["380500000101"]


@pytest.mark.parametrize(
    ("changes", "sent", "skipped"),
    [
        pytest.param(
            lambda now: {"created_at": now - dt.timedelta(seconds=61)},
            ["380500000100"],
            0,
            id="left-unsent-past-the-queued-grace-is-sent",
        ),
        pytest.param(
            lambda now: {"attempts": 1, "retry_at": now - dt.timedelta(seconds=1)},
            [],
            1,
            id="queued-for-a-retry-is-left-to-smsfly-sync",
        ),
    ],
)
def test_a_row_another_run_wrote_and_no_run_has_in_hand(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    changes: Callable[[dt.datetime], dict[str, Any]],
    sent: list[str],
    skipped: int,
) -> None:
    path = write_csv(tmp_path / "list.csv", *people(1))
    written_by_another_run(path, monkeypatch, **changes(timezone.now()))
    report = run_csv(path, HI, rate=0)
    assert (report.sent, report.skipped, report.elsewhere) == (len(sent), skipped, 0)
    assert sends() == sent


def test_a_row_claimed_by_someone_else_while_waiting_for_a_slot_is_elsewhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def claimed_elsewhere(pk: int, **kwargs: Any) -> Message:
        Message.objects.filter(pk=pk).update(state=Message.State.SENDING)
        return Message.objects.get(pk=pk)

    monkeypatch.setattr(services, "dispatch", claimed_elsewhere)
    report = run_csv(write_csv(tmp_path / "list.csv", *people(1)), HI, rate=0)
    assert (report.elsewhere, report.sent, report.failed, report.errors) == (1, 0, 0, 0)
    assert report.problems == []
