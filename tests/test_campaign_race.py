"""Two campaign runners at once: the lease lets one of them send, and every row once.

Threads stand in for the task engine's workers, each with its own database connection,
as separate processes would have. On PostgreSQL (``DATABASE_URL``) only: the suite's
SQLite test database is an in-memory shared-cache one, whose table locks fail at once
("database table is locked") instead of waiting as a file database's locks do, so two
threads writing it at once test the test database, not the runners.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from django_smsfly import campaigns
from django_smsfly.backends.sandbox import Simulator, get_simulator
from django_smsfly.campaigns import runner
from django_smsfly.models import Campaign, Message, OptOut
from django_smsfly.ratelimit import reset_rate_limiters
from django_smsfly.services import reset_client
from tests.task_backends import DUMMY
from tests.workers import run_together

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="needs PostgreSQL (set DATABASE_URL)"
    ),
]

#: Rows of the campaign's file: 40, of which 36 valid.
VALID = [f"38050{i:07d}" for i in range(200, 236)]
OPTED_OUT = ["380500000300", "380500000301"]


def file_rows() -> list[str]:
    rows = [f"{number},Person {i}" for i, number in enumerate(VALID)]
    rows[10:10] = [f"{OPTED_OUT[0]},Gone"]  # on the opt-out list
    rows[20:20] = ["not-a-number,Nobody"]  # invalid
    rows[25:25] = [f"+{VALID[3]},Again"]  # the number of an earlier row
    rows[30:30] = [f"{OPTED_OUT[1]},Gone too"]
    return rows


@pytest.fixture(autouse=True)
def _setup(tmp_path: Path, settings: Any) -> Iterator[None]:
    settings.MEDIA_ROOT = str(tmp_path / "media")
    # start() only marks the campaign running; the test's threads are the runners.
    settings.TASKS = {"default": {"BACKEND": DUMMY}}
    # Each request takes a little while, so the runners' work overlaps.
    settings.SMSFLY = {
        **settings.SMSFLY,
        "SEND_RATE_LIMIT": 0,
        "BACKEND_OPTIONS": {"latency": 0.01},
    }
    reset_client()
    reset_rate_limiters()
    yield
    reset_rate_limiters()


@pytest.fixture
def senders(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """(thread name, recipient) of every SENDMESSAGE the sandbox answers."""
    simulator: Simulator = get_simulator()
    seen: list[tuple[str, str]] = []
    respond = simulator.respond

    def recording(body: Any) -> Any:
        if isinstance(body, dict) and body.get("action") == "SENDMESSAGE":
            seen.append((threading.current_thread().name, body["data"]["recipient"]))
        return respond(body)

    monkeypatch.setattr(simulator, "respond", recording)
    return seen


def started_campaign() -> Campaign:
    OptOut.objects.bulk_create([OptOut(recipient=number) for number in OPTED_OUT])
    text = "\n".join(["recipient,name", *file_rows()]) + "\n"
    upload = SimpleUploadedFile("list.csv", text.encode(), content_type="text/csv")
    campaign = campaigns.create(upload, name="Race", sms_text="Hi {name}")
    assert (campaign.rows_total, campaign.rows_valid) == (40, 36)
    assert campaigns.start(campaign) is True
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.RUNNING
    return campaign


def in_threads(*work: tuple[str, Callable[[], None]], together: bool = True) -> None:
    """Run each ``(name, work)`` in its own thread of that name (started at once through a
    barrier when ``together``); join them and re-raise what any of them raised."""
    run_together(
        len(work),
        lambda index: work[index][1](),
        timeout=60,
        together=together,
        names=[name for name, _ in work],
    )


def assert_each_valid_row_sent_once(campaign: Campaign, sent: list[str]) -> None:
    assert Counter(sent) == Counter(VALID)  # one SENDMESSAGE per valid row, no other
    messages = Counter(
        Message.objects.filter(campaign=campaign).values_list("recipient", flat=True)
    )
    assert set(messages.values()) == {1}  # each row's message once
    accepted = Message.objects.filter(campaign=campaign, state=Message.State.ACCEPTED)
    assert sorted(accepted.values_list("recipient", flat=True)) == VALID
    opted = Message.objects.filter(campaign=campaign, recipient__in=OPTED_OUT)
    assert sorted(opted.values_list("error_code", flat=True)) == ["OPTED_OUT", "OPTED_OUT"]
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.FINISHED
    assert (campaign.claim_token, campaign.lease_until) == ("", None)


def test_two_runners_at_once_send_each_valid_row_once(senders: list[tuple[str, str]]) -> None:
    campaign = started_campaign()
    in_threads(
        ("runner-a", lambda: campaigns.run(campaign.pk)),
        ("runner-b", lambda: campaigns.run(campaign.pk)),
    )
    assert_each_valid_row_sent_once(campaign, [number for _, number in senders])
    assert len({name for name, _ in senders}) == 1  # one runner had the campaign


def test_a_runner_started_while_another_holds_the_lease_sends_nothing(
    senders: list[tuple[str, str]],
) -> None:
    campaign = started_campaign()
    second_done = threading.Event()
    first_was_sending: list[bool] = []

    def first() -> None:
        campaigns.run(campaign.pk)

    def second() -> None:
        # Wait until the first runner holds the lease and has sent a message.
        deadline = time.monotonic() + 30
        while not senders and time.monotonic() < deadline:
            time.sleep(0.005)
        token = Campaign.objects.values_list("claim_token", flat=True).get(pk=campaign.pk)
        campaigns.run(campaign.pk)
        # Still the first runner's claim, and it had not finished yet.
        after = Campaign.objects.values_list("claim_token", "status").get(pk=campaign.pk)
        first_was_sending.append(bool(token) and after == (token, Campaign.Status.RUNNING))
        second_done.set()

    in_threads(("runner-a", first), ("runner-b", second), together=False)
    assert second_done.is_set()
    assert first_was_sending == [True]
    assert {name for name, _ in senders} == {"runner-a"}
    assert_each_valid_row_sent_once(campaign, [number for _, number in senders])


def test_a_claim_held_by_another_runner_is_not_taken_until_it_is_released() -> None:
    campaign = started_campaign()
    token = runner.claim(campaign.pk)
    assert token is not None
    campaigns.run(campaign.pk)  # another runner holds it: returns at once
    assert not get_simulator().requests_for("SENDMESSAGE")
    assert not Message.objects.filter(campaign=campaign).exists()
    assert runner.release(campaign.pk, token) is True
    campaigns.run(campaign.pk)
    sent = [r.body["data"]["recipient"] for r in get_simulator().requests_for("SENDMESSAGE")]
    assert_each_valid_row_sent_once(campaign, sent)
