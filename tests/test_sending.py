"""Sending through the app: the row comes first, one send per message, every outcome kept."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import transaction

from django_smsfly import services
from django_smsfly.backends.sandbox import TEST_NUMBERS, Fault, Outcome, Simulator
from django_smsfly.exceptions import SmsFlyError, SmsFlyValidationError
from django_smsfly.models import ChannelStatus, Message, StatusChange
from django_smsfly.signals import message_failed, message_sent, status_changed
from django_smsfly.statuses import DeliveryStatus
from tests.recorders import Recorder, recording

pytestmark = [pytest.mark.django_db, pytest.mark.frozen_sandbox]

Capture = Callable[..., Any]


@pytest.fixture
def sent() -> Iterator[Recorder]:
    with recording(message_sent) as recorder:
        yield recorder


@pytest.fixture
def failed() -> Iterator[Recorder]:
    with recording(message_failed) as recorder:
        yield recorder


@pytest.fixture
def changed() -> Iterator[Recorder]:
    with recording(status_changed) as recorder:
        yield recorder


def test_send_sms_stores_the_accepted_message(
    sandbox: Simulator,
    sent: Recorder,
    changed: Recorder,
    django_capture_on_commit_callbacks: Capture,
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        message = services.send_sms("050 123 4567", "Your code: 1234", metadata={"order": 7})
    message.refresh_from_db()
    [record] = sandbox.messages
    assert message.state == Message.State.ACCEPTED
    assert message.message_id == record.message_id
    assert message.recipient == "380501234567"
    assert message.channels == "sms"
    assert message.content == {"sms": {"source": "InfoCenter", "text": "Your code: 1234"}}
    assert message.status == DeliveryStatus.ACCEPTED
    assert message.cost == record.cost
    assert message.metadata == {"order": 7}
    assert message.attempts == 1
    assert message.sent_at is not None
    assert message.next_check_at is not None
    [channel] = message.channel_statuses.all()
    assert (channel.channel, channel.status, channel.raw_status) == ("sms", "accepted", "ACCEPTD")
    assert channel.cost == record.cost
    assert [(c.channel, c.old_status, c.new_status) for c in message.history.all()] == [
        ("sms", "queued", "accepted"),
        ("", "queued", "accepted"),  # the message's own status, derived from its channel
    ]
    assert [c["message"].pk for c in sent.calls] == [message.pk]
    assert [(c["channel"], c["old_status"], c["new_status"]) for c in changed.calls] == [
        ("sms", DeliveryStatus.QUEUED, DeliveryStatus.ACCEPTED)
    ]


def test_the_row_is_written_before_the_api_is_called(
    sandbox: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[str, int]] = []
    original = sandbox.respond

    def spy(body: Any) -> Any:
        [row] = Message.objects.all()
        seen.append((row.state, row.attempts))
        return original(body)

    monkeypatch.setattr(sandbox, "respond", spy)
    services.send_sms("380501234567", "Hi")
    assert seen == [("sending", 1)]


def test_viber_with_sms_fallback_stores_both_channels_in_order(sandbox: Simulator) -> None:
    message = services.send_viber("380671234567", text="Order 55 shipped", sms_text="Order 55")
    assert message.channels == "viber,sms"
    assert [c.channel for c in message.channel_statuses.all()] == ["viber", "sms"]
    viber = message.channel_statuses.get(channel="viber")
    assert viber.label.startswith("transaction")
    assert message.cost == sum(r.cost for r in message.channel_statuses.all() if r.cost)


def test_signals_wait_for_the_callers_transaction(
    sandbox: Simulator, sent: Recorder, django_capture_on_commit_callbacks: Capture
) -> None:
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        services.send_sms("380501234567", "Hi")
        assert sent.calls == []
    assert len(sent.calls) == 1


def test_invalid_input_writes_nothing_and_sends_nothing(sandbox: Simulator) -> None:
    with pytest.raises(SmsFlyValidationError) as info:
        services.send_sms("not a number", "Hi")
    assert info.value.field == "recipient"
    assert Message.objects.count() == 0
    assert sandbox.requests == []


def test_the_same_idempotency_key_never_sends_twice(sandbox: Simulator) -> None:
    first = services.send_sms("380501234567", "Hi", idempotency_key="order-7-confirmation")
    second = services.send_sms("380501234567", "Hi", idempotency_key="order-7-confirmation")
    assert second.pk == first.pk
    assert len(sandbox.requests_for("SENDMESSAGE")) == 1
    assert Message.objects.count() == 1


def test_created_by_is_stored() -> None:
    user = User.objects.create(username="operator")
    message = services.send_sms("380501234567", "Hi", created_by=user)
    assert Message.objects.get(pk=message.pk).created_by == user


def test_api_refusal_is_failed_with_code_and_text(
    sandbox: Simulator, failed: Recorder, django_capture_on_commit_callbacks: Capture
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        message = services.send_sms(TEST_NUMBERS[Outcome.REJECTED], "Hi")
    message.refresh_from_db()
    assert message.state == Message.State.FAILED
    assert message.status == DeliveryStatus.FAILED
    assert message.error_code == "INVRECIPIENT"
    assert "INVRECIPIENT" in message.error_text
    assert message.message_id is None
    assert message.next_check_at is None
    [call] = failed.calls
    assert call["message"].pk == message.pk
    assert isinstance(call["error"], SmsFlyError)
    assert [(c.old_status, c.new_status) for c in message.history.all()] == [("queued", "failed")]


def test_rate_limited_send_is_queued_for_a_retry(sandbox: Simulator, failed: Recorder) -> None:
    sandbox.inject(Fault.RATE_LIMITED)
    message = services.send_sms("380501234567", "Hi")
    message.refresh_from_db()
    assert message.state == Message.State.QUEUED
    assert message.error_code == "RATE_LIMITED"
    assert message.retry_at is not None
    assert failed.calls == []
    assert sandbox.messages == []


def test_connection_refused_is_queued_for_a_retry(sandbox: Simulator) -> None:
    sandbox.inject(Fault.CONNECTION_REFUSED)
    message = services.send_sms("380501234567", "Hi")
    assert message.state == Message.State.QUEUED
    assert message.error_code == "CONNECTION_FAILED"


def test_a_queued_retry_is_sent_once_due(sandbox: Simulator) -> None:
    sandbox.inject(Fault.RATE_LIMITED)  # the in-process sandbox does not retry by itself
    message = services.send_sms("380501234567", "Hi")
    assert message.state == Message.State.QUEUED
    # Not due yet: nothing happens.
    assert services.dispatch(message.pk).state == Message.State.QUEUED
    Message.objects.filter(pk=message.pk).update(retry_at=None)
    message = services.dispatch(message.pk)
    assert message.state == Message.State.ACCEPTED
    assert message.attempts == 2
    assert message.error_code == ""
    assert len(sandbox.messages) == 1


def test_retries_stop_after_the_configured_attempts(sandbox: Simulator, settings: Any) -> None:
    settings.SMSFLY = {**settings.SMSFLY, "SEND_MAX_ATTEMPTS": 2, "MAX_RETRIES": 0}
    sandbox.inject(Fault.CONNECTION_REFUSED, times=2)
    message = services.send_sms("380501234567", "Hi")
    assert message.state == Message.State.QUEUED
    Message.objects.filter(pk=message.pk).update(retry_at=None)
    message = services.dispatch(message.pk)
    assert message.state == Message.State.FAILED
    assert message.attempts == 2


def test_rate_limited_is_never_failed_only_pushed_back(
    sandbox: Simulator, settings: Any, failed: Recorder
) -> None:
    settings.SMSFLY = {**settings.SMSFLY, "SEND_MAX_ATTEMPTS": 2, "MAX_RETRIES": 0}
    sandbox.inject(Fault.RATE_LIMITED, times=4)
    message = services.send_sms("380501234567", "Hi")
    delays = []
    for attempt in range(2, 5):
        assert message.state == Message.State.QUEUED
        assert message.retry_at is not None
        delays.append(message.retry_at - message.updated_at)
        Message.objects.filter(pk=message.pk).update(retry_at=None)
        message = services.dispatch(message.pk)
        assert message.attempts == attempt
    # Past SEND_MAX_ATTEMPTS, still queued with a wait that grows (30 s, 60 s, 120 s).
    assert message.state == Message.State.QUEUED
    assert [d.total_seconds() for d in delays] == pytest.approx([30, 60, 120], abs=1)
    assert failed.calls == []
    Message.objects.filter(pk=message.pk).update(retry_at=None)
    assert services.dispatch(message.pk).state == Message.State.ACCEPTED
    assert len(sandbox.messages) == 1


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        (Fault.TIMEOUT, "TIMEOUT"),
        (Fault.SERVER_ERROR, "HTTP_500"),
        (Fault.CONNECTION_RESET, "CONNECTION_LOST"),
        (Fault.BROKEN_JSON, "BAD_REPLY"),
    ],
)
def test_unknown_outcome_is_never_resent_automatically(
    sandbox: Simulator,
    failed: Recorder,
    fault: Fault,
    code: str,
    django_capture_on_commit_callbacks: Capture,
) -> None:
    sandbox.inject(fault)
    with django_capture_on_commit_callbacks(execute=True):
        message = services.send_sms("380501234567", "Hi")
    message.refresh_from_db()
    assert message.state == Message.State.UNKNOWN
    assert message.error_code == code
    assert message.status == DeliveryStatus.QUEUED  # we do not know it failed
    assert len(failed.calls) == 1
    # Neither dispatching again nor a sync sends it.
    services.dispatch(message.pk)
    services.sync_statuses()
    assert len(sandbox.requests_for("SENDMESSAGE")) == 1


def test_dispatching_a_sent_message_again_sends_nothing(sandbox: Simulator) -> None:
    message = services.send_sms("380501234567", "Hi")
    again = services.dispatch(message.pk)
    assert again.message_id == message.message_id
    assert len(sandbox.requests_for("SENDMESSAGE")) == 1


def test_queue_then_dispatch(sandbox: Simulator) -> None:
    message = services.queue_message(
        "380501234567", channels=["sms"], sms={"text": "Later", "source": "InfoCenter"}
    )
    assert message.state == Message.State.QUEUED
    assert sandbox.requests == []
    assert services.dispatch(message.pk).state == Message.State.ACCEPTED


def test_an_unexpected_error_leaves_the_message_unknown_not_sending(
    sandbox: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(body: Any) -> Any:
        raise RuntimeError("bug")

    monkeypatch.setattr(sandbox, "respond", broken)
    with pytest.raises(RuntimeError):
        services.send_sms("380501234567", "Hi")
    message = Message.objects.get()
    assert message.state == Message.State.UNKNOWN
    assert message.error_code == "INTERNAL"


def test_money_is_decimal_in_the_database(sandbox: Simulator) -> None:
    message = services.send_sms("380501234567", "Hi")
    stored = Message.objects.get(pk=message.pk)
    assert isinstance(stored.cost, Decimal)
    assert stored.cost > 0
    assert ChannelStatus.objects.filter(message=stored).count() == 1
    assert StatusChange.objects.filter(message=stored, channel="sms").count() == 1
