"""Cancelling the messages of a campaign that were written but not sent yet.

A message still ``queued`` becomes ``failed`` with ``CANCELLED`` (no request was made,
nothing spent). The move is a compare-and-set like every other: one conditional
UPDATE takes only rows that are still queued (a sender's claim needs the same state, so
a message being sent right now finishes and keeps its outcome), marks them with a token
of this call, and only the marked rows get their history and their signal.
"""

from __future__ import annotations

import uuid

from django.db import transaction
from django.utils import timezone

from django_smsfly import signals
from django_smsfly.delivery import records
from django_smsfly.exceptions import SmsFlyCancelled
from django_smsfly.models import Message
from django_smsfly.statuses import DeliveryStatus

#: Messages read back per query after the UPDATE (for their history and signals).
CHUNK = 2000


def cancel_queued(campaign_id: int) -> int:
    """Fail the campaign's queued messages with ``CANCELLED``; returns how many."""
    error = SmsFlyCancelled()
    code = error.error_code
    token = uuid.uuid4().hex
    now = timezone.now()
    with transaction.atomic():
        count = Message.objects.filter(campaign_id=campaign_id, state=Message.State.QUEUED).update(
            state=Message.State.FAILED,
            status=DeliveryStatus.FAILED.value,
            error_code=error.error_code,
            error_text=records.db_text(str(error)),
            retry_at=None,
            claim_token=token,
            updated_at=now,
        )
        if not count:
            return 0
        marked = Message.objects.filter(claim_token=token).order_by("pk")
        rows = []
        for message in marked.iterator(chunk_size=CHUNK):
            # A queued message's status is queued: nothing else moves it before a send.
            rows.append(
                records.history(
                    message, None, DeliveryStatus.QUEUED, DeliveryStatus.FAILED, raw=code
                )
            )
            message.claim_token = ""
            records.on_commit_signal(signals.message_failed, message, error=error)
            if len(rows) >= CHUNK:
                records.insert_rows(rows)
                rows = []
        if rows:
            records.insert_rows(rows)
        marked.update(claim_token="")
    return count
