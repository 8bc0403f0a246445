"""Concurrency on PostgreSQL: many workers, one send per message, one poll per message.

Threads stand in for workers: each has its own database connection, exactly as separate
processes would. These tests need row locking that SQLite does not have; they run when
the suite runs on PostgreSQL (``DATABASE_URL``), as CI does.
"""

from __future__ import annotations

import random
from collections import Counter

import pytest
from django.db import connection
from django.utils import timezone

from django_smsfly import services
from django_smsfly.backends.sandbox import Simulator, get_simulator
from django_smsfly.models import Message
from tests.workers import run_together

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="needs PostgreSQL (set DATABASE_URL)"
    ),
]


@pytest.fixture
def sandbox() -> Simulator:
    simulator = get_simulator()
    simulator.configure(latency=0.001)  # let workers overlap inside requests
    return simulator


def test_four_workers_send_each_of_1000_queued_messages_exactly_once(
    sandbox: Simulator,
) -> None:
    pks = [
        services.queue_message("380501234567", channels=["sms"], sms={"text": f"Message {i}"}).pk
        for i in range(1000)
    ]

    def work(index: int) -> None:
        order = list(pks)
        random.Random(index).shuffle(order)  # every worker tries every message
        for pk in order:
            services.dispatch(pk)

    run_together(4, work, timeout=300)
    sends = sandbox.requests_for("SENDMESSAGE")
    assert len(sends) == 1000
    texts = Counter(r.body["data"]["sms"]["text"] for r in sends)
    assert set(texts.values()) == {1}
    assert Message.objects.filter(state=Message.State.ACCEPTED).count() == 1000
    assert Message.objects.exclude(attempts=1).count() == 0
    assert Message.objects.values("message_id").distinct().count() == 1000


def test_two_syncs_at_once_never_poll_one_message_twice(sandbox: Simulator) -> None:
    for i in range(400):
        services.send_sms("380501234567", f"Message {i}")
    Message.objects.update(next_check_at=timezone.now())
    reports: list[services.SyncReport] = []

    def work(index: int) -> None:
        reports.append(services.sync_statuses(batch_size=25, concurrency=4, rate_limit=0))

    run_together(2, work, timeout=300)
    polled = Counter(r.body["data"]["messageID"] for r in sandbox.requests_for("GETMESSAGESTATUS"))
    assert len(polled) == 400
    assert set(polled.values()) == {1}
    assert sum(r.checked for r in reports) == 400
    assert all(r.checked for r in reports)  # both really worked side by side
