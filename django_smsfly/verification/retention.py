"""Retention: delete old verifications (``smsfly_cleanup`` calls these)."""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from django_smsfly.models import Verification


def old_verifications(older_than: dt.timedelta) -> QuerySet[Verification]:
    """Verifications (codes and refused requests) created more than ``older_than`` ago,
    except a code still usable (a ``TTL`` longer than ``older_than``)."""
    now = timezone.now()
    return Verification.objects.filter(created_at__lt=now - older_than).exclude(expires_at__gt=now)


def delete_old_verifications(older_than: dt.timedelta, *, batch_size: int = 1000) -> int:
    """Delete what :func:`old_verifications` finds, in batches; returns how many.

    Their messages stay: :func:`~django_smsfly.services.delete_old_messages` keeps those.
    """
    old = old_verifications(older_than)
    deleted = 0
    while True:
        pks = list(old.order_by("pk").values_list("pk", flat=True)[:batch_size])
        if not pks:
            return deleted
        with transaction.atomic():
            Verification.objects.filter(pk__in=pks).delete()
        deleted += len(pks)


def count_old_verifications(older_than: dt.timedelta) -> int:
    """How many verifications :func:`delete_old_verifications` would delete now."""
    return old_verifications(older_than).count()
