"""Property: whatever SMS-fly replies, in whatever order, a channel only moves forward and
``status_changed`` fires exactly once per stored transition."""

from __future__ import annotations

import itertools
from typing import Any
from unittest import mock

from django.test import TestCase
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase as HypothesisTestCase

from django_smsfly import services
from django_smsfly.channels import Channel
from django_smsfly.delivery import syncing
from django_smsfly.results import ChannelResult, StatusResult
from django_smsfly.signals import status_changed
from django_smsfly.statuses import STATUS_ALIASES, DeliveryStatus, Status, overall

RAW_STATUSES = [s.value for s in Status if s is not Status.UNKNOWN] + list(STATUS_ALIASES)
raw_status = st.one_of(st.sampled_from(RAW_STATUSES), st.text(min_size=1, max_size=12))


class ScriptedClient:
    """Answers GETMESSAGESTATUS with the next raw status of a script."""

    def __init__(self, script: list[str]) -> None:
        self.script = list(script)

    def get_message_status(self, message_id: str) -> StatusResult:
        raw = self.script.pop(0)
        channel = ChannelResult(Channel.SMS, Status.parse(raw), raw)
        return StatusResult(message_id, None, {Channel.SMS: channel})


class StatusesOnlyMoveForward(HypothesisTestCase):
    @settings(max_examples=150, deadline=None)
    @given(script=st.lists(raw_status, min_size=1, max_size=12))
    def test_forward_only_and_one_signal_per_transition(self, script: list[str]) -> None:
        message = services.send_sms("380501234567", "Hi")
        signals: list[tuple[DeliveryStatus, DeliveryStatus]] = []

        def receiver(sender: Any, old_status: Any, new_status: Any, **kwargs: Any) -> None:
            signals.append((old_status, new_status))

        status_changed.connect(receiver)
        stored = [DeliveryStatus.ACCEPTED]
        try:
            with mock.patch.object(syncing, "get_client", return_value=ScriptedClient(script)):
                for raw in script:
                    with self.captureOnCommitCallbacks(execute=True):
                        services.sync_statuses(message_pks=[message.pk], rate_limit=0)
                    row = message.channel_statuses.get()
                    stored.append(DeliveryStatus(row.status))
                    assert row.raw_status == raw.replace("\x00", "")[:32]  # kept, storable
                    reported = DeliveryStatus.from_raw(raw)
                    before = stored[-2]
                    if reported and reported.rank > before.rank and not before.is_final:
                        assert stored[-1] is reported  # real progress is stored
        finally:
            status_changed.disconnect(receiver)

        for before, after in itertools.pairwise(stored):
            assert after.rank >= before.rank
            if before.is_final and after is not before:
                assert (before, after) == (DeliveryStatus.DELIVERED, DeliveryStatus.VIEWED)
        transitions = [(b, a) for b, a in itertools.pairwise(stored) if a is not b]
        assert signals == transitions
        message.refresh_from_db()
        assert message.status == overall([("sms", stored[-1])])[0].value


class OverallStatus(TestCase):
    def test_examples_from_the_design(self) -> None:
        d = DeliveryStatus
        assert overall([("viber", d.DELIVERED), ("sms", d.REFUNDED)]) == (d.DELIVERED, "viber")
        assert overall([("viber", d.UNDELIVERED), ("sms", d.DELIVERED)]) == (d.DELIVERED, "sms")
        assert overall([("viber", d.UNDELIVERED), ("sms", d.EXPIRED)]) == (d.EXPIRED, None)
        assert overall([("viber", d.UNDELIVERED), ("sms", d.SENT)]) == (d.SENT, None)
        assert overall([("viber", d.SENT), ("sms", d.ACCEPTED)]) == (d.SENT, None)
        assert overall([]) == (d.QUEUED, None)

    def test_every_raw_status_has_a_normalized_one(self) -> None:
        for status in Status:
            if status is not Status.UNKNOWN:
                assert DeliveryStatus.from_raw(status) is not None, status
        assert DeliveryStatus.from_raw("SOMETHINGNEW") is None
