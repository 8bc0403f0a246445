"""Status sync: due messages are polled, statuses only move forward, signals fire once."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from django_smsfly import services
from django_smsfly.backends.sandbox import TEST_NUMBERS, Outcome, Simulator
from django_smsfly.models import Message
from django_smsfly.signals import status_changed
from django_smsfly.statuses import DeliveryStatus

pytestmark = [pytest.mark.django_db, pytest.mark.frozen_sandbox]

Capture = Callable[..., Any]


@pytest.fixture
def changes() -> Iterator[list[tuple[int, str, DeliveryStatus, DeliveryStatus]]]:
    seen: list[tuple[int, str, DeliveryStatus, DeliveryStatus]] = []

    def receiver(
        sender: Any,
        message: Message,
        channel: Any,
        old_status: Any,
        new_status: Any,
        **kwargs: Any,
    ) -> None:
        seen.append((message.pk, str(channel), old_status, new_status))

    status_changed.connect(receiver)
    yield seen
    status_changed.disconnect(receiver)


def make_due() -> None:
    Message.objects.exclude(next_check_at=None).update(
        next_check_at=timezone.now() - dt.timedelta(seconds=1)
    )


def sync(capture: Capture) -> services.SyncReport:
    make_due()
    with capture(execute=True):
        return services.sync_statuses()


def statuses(message: Message) -> dict[str, str]:
    return dict(message.channel_statuses.values_list("channel", "status"))


def test_an_sms_is_followed_to_delivered(
    sandbox: Simulator, changes: list[Any], django_capture_on_commit_callbacks: Capture
) -> None:
    message = services.send_sms("380501234567", "Hi")
    changes.clear()
    sandbox.advance(1.5)
    report = sync(django_capture_on_commit_callbacks)
    assert (report.checked, report.changed, report.final) == (1, 1, 0)
    message.refresh_from_db()
    assert message.status == "in_progress"
    sandbox.advance(10)
    report = sync(django_capture_on_commit_callbacks)
    assert (report.checked, report.changed, report.final) == (1, 1, 1)
    message.refresh_from_db()
    assert message.status == "delivered"
    assert message.delivered_via == "sms"
    assert message.next_check_at is None
    assert message.last_checked_at is not None
    assert [(c[2], c[3]) for c in changes] == [
        (DeliveryStatus.ACCEPTED, DeliveryStatus.IN_PROGRESS),
        (DeliveryStatus.IN_PROGRESS, DeliveryStatus.DELIVERED),
    ]
    history = list(message.history.values_list("channel", "old_status", "new_status"))
    assert history == [
        ("sms", "queued", "accepted"),
        ("", "queued", "accepted"),
        ("sms", "accepted", "in_progress"),
        ("", "accepted", "in_progress"),
        ("sms", "in_progress", "delivered"),
        ("", "in_progress", "delivered"),
    ]
    # The channel's status date is the one SMS-fly reported for the last change.
    [channel] = message.channel_statuses.all()
    assert channel.status_date == message.history.last().status_date  # type: ignore[union-attr]
    assert channel.status_date is not None
    # Final: nothing is due any more, and nothing is asked.
    before = len(sandbox.requests_for("GETMESSAGESTATUS"))
    assert services.sync_statuses().checked == 0
    assert len(sandbox.requests_for("GETMESSAGESTATUS")) == before


def test_a_repeated_reply_changes_nothing_and_signals_nothing(
    sandbox: Simulator, changes: list[Any], django_capture_on_commit_callbacks: Capture
) -> None:
    message = services.send_sms("380501234567", "Hi")
    sandbox.advance(4)
    sync(django_capture_on_commit_callbacks)
    count = len(changes)
    history = message.history.count()
    report = sync(django_capture_on_commit_callbacks)
    assert (report.checked, report.changed) == (1, 0)
    assert len(changes) == count
    assert message.history.count() == history


def test_a_late_reply_never_moves_a_channel_back(
    sandbox: Simulator, changes: list[Any], django_capture_on_commit_callbacks: Capture
) -> None:
    sent_at = sandbox.now()
    message = services.send_sms("380501234567", "Hi")
    sandbox.advance(4)  # SENT
    sync(django_capture_on_commit_callbacks)
    assert statuses(message) == {"sms": "sent"}
    sandbox.freeze(sent_at + dt.timedelta(seconds=1.5))  # the server "says" INPROGRESS
    changes.clear()
    report = sync(django_capture_on_commit_callbacks)
    assert report.changed == 0
    assert statuses(message) == {"sms": "sent"}
    assert changes == []


def test_viber_delivered_and_sms_refunded_is_delivered_by_viber(
    sandbox: Simulator, django_capture_on_commit_callbacks: Capture
) -> None:
    message = services.send_viber("380671234567", text="Hello", sms_text="Hello")
    sandbox.advance(60)
    sync(django_capture_on_commit_callbacks)
    message.refresh_from_db()
    assert statuses(message) == {"viber": "viewed", "sms": "refunded"}
    assert message.delivery_status.is_success
    assert message.delivered_via == "viber"
    assert message.next_check_at is None


def test_a_refunded_channel_is_not_in_the_messages_cost(
    sandbox: Simulator, django_capture_on_commit_callbacks: Capture
) -> None:
    """Issue 13's "wrong money": a Viber-then-SMS message delivered over Viber showed the
    Viber price plus the refunded SMS price, while the balance was charged Viber only."""
    before = sum(services.get_balances().values())
    message = services.send_viber("380671234567", text="Hello", sms_text="Hello")
    prices = {row.channel: row.cost for row in message.channel_statuses.all()}
    assert prices["viber"] is not None
    assert prices["sms"] is not None
    assert message.cost == prices["viber"] + prices["sms"]  # reserved at acceptance
    sandbox.advance(60)
    sync(django_capture_on_commit_callbacks)
    message.refresh_from_db()
    assert statuses(message) == {"viber": "viewed", "sms": "refunded"}
    charged = before - sum(services.get_balances().values())
    assert message.cost == charged == prices["viber"]
    # The channel keeps its price, shown as refunded.
    assert message.channel_statuses.get(channel="sms").cost == prices["sms"]


def test_viber_undelivered_and_sms_delivered_is_delivered_by_sms(
    sandbox: Simulator, django_capture_on_commit_callbacks: Capture
) -> None:
    message = services.send_viber(TEST_NUMBERS[Outcome.NO_VIBER], text="Hi", sms_text="Hi")
    sandbox.advance(60)
    sync(django_capture_on_commit_callbacks)
    message.refresh_from_db()
    assert statuses(message) == {"viber": "undelivered", "sms": "delivered"}
    assert message.status == "delivered"
    assert message.delivered_via == "sms"


def test_both_channels_failing_fails_the_message(
    sandbox: Simulator, django_capture_on_commit_callbacks: Capture
) -> None:
    message = services.send_viber(TEST_NUMBERS[Outcome.UNDELIVERED], text="Hi", sms_text="Hi")
    sandbox.advance(120)
    sync(django_capture_on_commit_callbacks)
    message.refresh_from_db()
    assert statuses(message) == {"viber": "undelivered", "sms": "undelivered"}
    assert message.status == "undelivered"
    assert message.delivery_status.is_failure
    assert message.next_check_at is None


def test_a_failed_status_request_is_counted_and_asked_again_later(
    sandbox: Simulator, django_capture_on_commit_callbacks: Capture
) -> None:
    message = services.send_sms("380501234567", "Hi")
    Message.objects.filter(pk=message.pk).update(message_id="FAPI-NOT-A-REAL-ID")
    report = sync(django_capture_on_commit_callbacks)
    assert (report.checked, report.errors, report.error_codes) == (1, 1, {"INVMSGID": 1})
    message.refresh_from_db()
    assert message.error_code == "INVMSGID"
    assert message.next_check_at is not None
    assert message.next_check_at > timezone.now()
    assert message.state == Message.State.ACCEPTED  # the send itself stands


def test_polling_stops_well_after_the_lifetime_and_says_so(
    sandbox: Simulator, django_capture_on_commit_callbacks: Capture
) -> None:
    message = services.send_sms(TEST_NUMBERS[Outcome.EXPIRED], "Hi", ttl=60)
    Message.objects.filter(pk=message.pk).update(sent_at=timezone.now() - dt.timedelta(hours=8))
    report = sync(django_capture_on_commit_callbacks)
    assert report.timed_out == 1
    message.refresh_from_db()
    assert message.next_check_at is None
    assert message.error_code == "STATUS_TIMEOUT"
    assert message.status != "delivered"


def test_checks_back_off_as_a_message_ages() -> None:
    delays = [
        services.next_check_delay(dt.timedelta(seconds=s))
        for s in (0, 5 * 60, 30 * 60, 3 * 3600, 20 * 3600)
    ]
    assert delays == sorted(delays)
    assert delays[0] < delays[-1]


def test_only_due_messages_are_polled(
    sandbox: Simulator, django_capture_on_commit_callbacks: Capture
) -> None:
    due = services.send_sms("380501234567", "Due")
    later = services.send_sms("380671234567", "Later")
    Message.objects.filter(pk=due.pk).update(next_check_at=timezone.now())
    Message.objects.filter(pk=later.pk).update(
        next_check_at=timezone.now() + dt.timedelta(minutes=5)
    )
    assert services.sync_statuses().checked == 1
    [request] = sandbox.requests_for("GETMESSAGESTATUS")
    assert request.body["data"]["messageID"] == due.message_id


def test_one_message_by_pk_even_when_not_due(sandbox: Simulator) -> None:
    message = services.send_sms("380501234567", "Hi")
    report = services.sync_statuses(message_pks=[message.pk])
    assert report.checked == 1


def test_limit_caps_the_run(sandbox: Simulator) -> None:
    for _ in range(5):
        services.send_sms("380501234567", "Hi")
    make_due()
    assert services.sync_statuses(limit=3, batch_size=2).checked == 3


_TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE SAVEPOINT")


@pytest.mark.django_db(transaction=True)  # no test transaction around the sync
def test_queries_per_message_stay_below_a_tenth(sandbox: Simulator) -> None:
    for _ in range(300):
        services.send_sms("380501234567", "Hi")
    sandbox.advance(10)
    make_due()
    with CaptureQueriesContext(connection) as captured:
        report = services.sync_statuses(batch_size=100, rate_limit=0)
    assert (report.checked, report.changed) == (300, 300)
    # Statements that read or write rows; BEGIN/COMMIT are not queries.
    queries = [q["sql"] for q in captured if not q["sql"].startswith(_TRANSACTION_CONTROL)]
    assert len(queries) / report.checked <= 0.1, "\n".join(q[:70] for q in queries)


def test_a_receiver_that_raises_stops_nothing(
    sandbox: Simulator, django_capture_on_commit_callbacks: Capture
) -> None:
    def broken(**kwargs: Any) -> None:
        raise RuntimeError("receiver bug")

    status_changed.connect(broken)
    try:
        first = services.send_sms("380501234567", "One")
        second = services.send_sms("380671234567", "Two")
        sandbox.advance(10)
        report = sync(django_capture_on_commit_callbacks)
    finally:
        status_changed.disconnect(broken)
    assert report.final == 2
    assert Message.objects.get(pk=first.pk).status == "delivered"
    assert Message.objects.get(pk=second.pk).status == "delivered"


def test_a_bug_in_one_poll_is_recorded_and_the_batch_goes_on(
    sandbox: Simulator,
    django_capture_on_commit_callbacks: Capture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    broken = services.send_sms("380501234567", "Hi")
    fine = services.send_sms("380501234568", "Hi")
    sandbox.advance(10)
    client = services.get_client()
    real = client.get_message_status

    def flaky(message_id: str) -> Any:
        if message_id == broken.message_id:
            raise RuntimeError("a bug in a backend")
        return real(message_id)

    monkeypatch.setattr(client, "get_message_status", flaky)
    report = sync(django_capture_on_commit_callbacks)
    assert (report.checked, report.errors) == (2, 1)
    broken.refresh_from_db()
    fine.refresh_from_db()
    assert "RuntimeError: a bug in a backend" in broken.error_text
    assert broken.next_check_at is not None  # asked again later
    assert fine.status == DeliveryStatus.DELIVERED  # SMS delivered 6 s after sending
    assert not Message.objects.exclude(claim_token="").exists()
