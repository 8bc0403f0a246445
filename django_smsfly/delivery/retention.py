"""Retention: delete old messages whose story is over."""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from django_smsfly.delivery import records
from django_smsfly.models import Message, MessageQuerySet


def delete_old_messages(older_than: dt.timedelta, *, batch_size: int = 1000) -> int:
    """Delete messages created more than ``older_than`` ago whose story is over.

    Messages still queued, being sent or waiting for a status are kept whatever their
    age. Deletes in batches (their channel statuses and history go with them) and
    returns how many messages were deleted.
    """
    finished = old_messages(older_than)
    deleted = 0
    while True:
        pks = list(finished.order_by("pk").values_list("pk", flat=True)[:batch_size])
        if not pks:
            return deleted
        delete_messages(Message.objects.filter(pk__in=pks))
        deleted += len(pks)


def delete_messages(messages: QuerySet[Message]) -> None:
    """Delete these messages (their channel statuses and history go with them), and
    have their campaigns counted from what is left: a campaign's kept counts
    (``settled_*``) would otherwise go on counting them."""
    with transaction.atomic():
        records.unsettle(messages.order_by().values_list("campaign_id", flat=True).distinct())
        messages.delete()


def count_old_messages(older_than: dt.timedelta) -> int:
    """How many messages :func:`delete_old_messages` would delete now."""
    return old_messages(older_than).count()


def old_messages(older_than: dt.timedelta) -> MessageQuerySet:
    """Messages created more than ``older_than`` ago whose story is over.

    Shared by :func:`delete_old_messages` and :func:`count_old_messages`, so a dry run
    counts exactly what a real one deletes.
    """
    cutoff = timezone.now() - older_than
    return (
        Message.objects.filter(created_at__lt=cutoff)
        .exclude(state__in=[Message.State.QUEUED, Message.State.SENDING])
        .exclude(state=Message.State.ACCEPTED, next_check_at__isnull=False)
    )
