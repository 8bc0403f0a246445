"""What an operator does with a campaign: start (now or at a time), pause, resume,
cancel; and :func:`start_due`, which the sync pass runs to start scheduled campaigns
whose time has come and to revive those whose runner died.

Every change of status is one conditional UPDATE naming the statuses it may leave, so a
double click, two operators or a runner finishing at the same moment change it once.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from django_smsfly.campaigns.runner import enqueue_run, finish_if_done
from django_smsfly.campaigns.setup import run_options
from django_smsfly.delivery.cancelling import cancel_queued
from django_smsfly.models import Campaign
from django_smsfly.taskcompat import define_task

Status = Campaign.Status

#: Statuses a campaign never leaves.
FINAL = (Status.FINISHED, Status.CANCELLED, Status.STOPPED)
#: Statuses a campaign can still be cancelled from.
NOT_FINAL = (Status.DRAFT, Status.SCHEDULED, Status.RUNNING, Status.PAUSED)


def _move(campaign: Campaign, from_: tuple[str, ...], **fields: Any) -> bool:
    """Change the campaign's row if its status is one of ``from_``; refresh the instance."""
    now = timezone.now()
    moved = Campaign.objects.filter(pk=campaign.pk, status__in=from_).update(
        updated_at=now, **fields
    )
    campaign.refresh_from_db()
    return bool(moved)


def start(campaign: Campaign, *, at: dt.datetime | None = None, by: Any = None) -> bool:
    """Start a draft: ``running`` now (``at`` ``None`` or past) or ``scheduled`` for
    ``at``. Only once: a second call (a double click) returns ``False`` and does nothing.

    The runner is enqueued on ``SMSFLY["TASK_BACKEND"]`` (to run at ``at`` where the
    engine can defer; else the sync pass starts it when the time comes). ``by`` is kept
    for the record (the user who started it, where none created it).
    """
    now = timezone.now()
    fields: dict[str, Any] = {"starts_at": at}
    if by is not None and getattr(by, "pk", None) and campaign.created_by_id is None:
        fields["created_by"] = by
    if at is not None and at > now:
        if not _move(campaign, (Status.DRAFT,), status=Status.SCHEDULED, **fields):
            return False
        enqueue_run(campaign.pk, run_after=at)  # dropped run_after: claims nothing before
        return True
    if not _move(campaign, (Status.DRAFT,), status=Status.RUNNING, started_at=now, **fields):
        return False
    enqueue_run(campaign.pk)
    return True


def pause(campaign: Campaign) -> bool:
    """Running or scheduled -> paused. The runner stops after the message in hand; the
    campaign's messages waiting for their time wait for the resume."""
    return _move(campaign, (Status.RUNNING, Status.SCHEDULED), status=Status.PAUSED)


def resume(campaign: Campaign) -> bool:
    """Paused -> running (or scheduled while its start is still ahead); the runner is
    enqueued again and goes on where it stopped."""
    now = timezone.now()
    if campaign.starts_at is not None and campaign.starts_at > now:
        if not _move(campaign, (Status.PAUSED,), status=Status.SCHEDULED):
            return False
        enqueue_run(campaign.pk, run_after=campaign.starts_at)
        return True
    fields: dict[str, Any] = {"status": Status.RUNNING}
    if campaign.started_at is None:
        fields["started_at"] = now
    if not _move(campaign, (Status.PAUSED,), **fields):
        return False
    enqueue_run(campaign.pk)
    return True


def cancel(campaign: Campaign) -> bool:
    """Any status not final -> cancelled. Its messages still queued become ``failed``
    with ``CANCELLED``; rows not written yet are never sent; a message being sent right
    now finishes."""
    now = timezone.now()
    with transaction.atomic():
        if not _move(campaign, NOT_FINAL, status=Status.CANCELLED, finished_at=now):
            return False
        cancel_queued(campaign.pk)
    return True


def start_due(now: dt.datetime | None = None) -> int:
    """Start the scheduled campaigns whose time has come, revive running ones whose
    runner's lease ran out, and finish those that went through their file and have no
    message left waiting. Returns how many runners were enqueued."""
    now = now or timezone.now()
    started: list[int] = []
    due = Campaign.objects.filter(status=Status.SCHEDULED, starts_at__lte=now)
    for pk in list(due.values_list("pk", flat=True)):
        if Campaign.objects.filter(pk=pk, status=Status.SCHEDULED).update(
            status=Status.RUNNING, started_at=now, updated_at=now
        ):
            enqueue_run(pk)
            started.append(pk)
    enqueued = len(started)
    idle = (
        Campaign.objects.filter(status=Status.RUNNING)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .exclude(pk__in=started)
    )
    for campaign in list(idle.only("pk", "report")):
        if run_options(campaign).get("file_done"):
            finish_if_done(campaign.pk)  # what waits is sent by the sync pass
        else:
            enqueue_run(campaign.pk)
            enqueued += 1
    return enqueued


@define_task
def start_due_campaigns() -> int:
    """:func:`start_due` as a task (for an engine's periodic scheduler)."""
    return start_due()
