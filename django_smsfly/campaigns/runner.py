"""The runner: one process sends a campaign's rows, holding it by a lease.

The runner claims the campaign with a conditional UPDATE of its ``claim_token`` and
``lease_until``, so one runner at a time has it; the lease is renewed as the rows go
by, and a runner that died is replaced once its lease has run out (by the next sync
pass, or a resume). The rows are sent by :func:`django_smsfly.mailing.run_csv`, the
same code as ``smsfly_send --csv``, with the campaign's key in every row's
idempotency key, so a resumed campaign never sends a row twice. About once a second
the runner stores how far it got and reads the campaign's status: paused or
cancelled, it stops after the message in hand.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from django_smsfly import taskcompat
from django_smsfly.campaigns.errors import CampaignError
from django_smsfly.campaigns.setup import (
    RUN,
    content_for,
    delimiter_of,
    encoding_of,
    open_file,
    run_key,
)
from django_smsfly.conf import smsfly_settings
from django_smsfly.mailing import MailingError, MailingReport, RowResult, run_csv
from django_smsfly.models import Campaign, Message
from django_smsfly.taskcompat import define_task

logger = logging.getLogger("django_smsfly")

#: How long a runner's claim holds without renewal (seconds); renewed about every second.
LEASE_SECONDS = 120.0
#: The runner stores its progress and reads the status this often (seconds) ...
TICK_SECONDS = 1.0
#: ... or after this many rows, whichever comes first.
TICK_ROWS = 500


def lease_until(now: dt.datetime) -> dt.datetime:
    """When a claim taken or renewed at ``now`` runs out."""
    return now + dt.timedelta(seconds=LEASE_SECONDS)


def claim(campaign_pk: int) -> str | None:
    """Take the running campaign for this runner: its token, or ``None`` when another
    runner holds it (its lease not run out) or the campaign is not running."""
    now = timezone.now()
    token = uuid.uuid4().hex
    taken = (
        Campaign.objects.filter(pk=campaign_pk, status=Campaign.Status.RUNNING)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .update(claim_token=token, lease_until=lease_until(now), updated_at=now)
    )
    return token if taken else None


def release(campaign_pk: int, token: str, **fields: Any) -> bool:
    """Give the claim up, writing ``fields`` with it; False if it was no longer ours."""
    now = timezone.now()
    return bool(
        Campaign.objects.filter(pk=campaign_pk, claim_token=token).update(
            claim_token="", lease_until=None, updated_at=now, **fields
        )
    )


@dataclass
class _Cursor:
    """Stores the run's progress and renews the lease, about once a second; tells the
    run to stop when the campaign is no longer running (or no longer this runner's)."""

    campaign_pk: int
    #: The runner's claim; ``None``: a command-line run beside the one holding it.
    token: str | None
    on_row: Callable[[RowResult], None] | None = None
    last: float = field(default_factory=time.monotonic)
    rows_since: int = 0
    #: Why the run was told to stop: the status found, or ``"lost"``.
    halted: str | None = None

    def row(self, result: RowResult) -> None:
        self.rows_since += 1
        if self.on_row is not None:
            self.on_row(result)

    def keep_going(self, report: MailingReport) -> bool:
        # The status is read after every row (one indexed read), so a pause or a cancel
        # stops the run before the next message: at most the one in hand goes out. The
        # progress and the lease are written about once a second.
        due = self.rows_since >= TICK_ROWS or time.monotonic() - self.last >= TICK_SECONDS
        if not due and self._status() == Campaign.Status.RUNNING:
            return True
        return self.tick(report.rows)

    def _status(self) -> str | None:
        return (
            Campaign.objects.filter(pk=self.campaign_pk).values_list("status", flat=True).first()
        )

    def tick(self, rows_done: int) -> bool:
        """Store ``rows_done`` and renew the lease while the campaign runs (one UPDATE)."""
        self.last, self.rows_since = time.monotonic(), 0
        now = timezone.now()
        if self.token is None:
            return self._look(rows_done, now)
        held = Campaign.objects.filter(pk=self.campaign_pk, claim_token=self.token)
        if held.filter(status=Campaign.Status.RUNNING).update(
            rows_done=rows_done, lease_until=lease_until(now), updated_at=now
        ):
            return True
        status = held.values_list("status", flat=True).first()
        self.halted = status or "lost"
        if status is not None:
            held.update(rows_done=rows_done, updated_at=now)
        return False

    def _look(self, rows_done: int, now: dt.datetime) -> bool:
        """Without the claim: store progress only ahead of the holder's, and stop when
        the campaign stops running."""
        mine = Campaign.objects.filter(pk=self.campaign_pk)
        mine.filter(rows_done__lt=rows_done).update(rows_done=rows_done, updated_at=now)
        status = mine.values_list("status", flat=True).first()
        if status == Campaign.Status.RUNNING:
            return True
        self.halted = status or "lost"
        return False


def run(campaign_pk: int) -> None:
    """Run the campaign in this process, if it is running (or scheduled for a time that
    has come) and no other runner has it."""
    now = timezone.now()
    Campaign.objects.filter(
        pk=campaign_pk, status=Campaign.Status.SCHEDULED, starts_at__lte=now
    ).update(status=Campaign.Status.RUNNING, started_at=now, updated_at=now)
    token = claim(campaign_pk)
    if token is None:
        return
    execute(Campaign.objects.get(pk=campaign_pk), token)


def execute(
    campaign: Campaign,
    token: str | None,
    *,
    rate: float | None = None,
    limit: int | None = None,
    defer: bool = False,
    progress: Callable[[MailingReport], None] | None = None,
    on_row: Callable[[RowResult], None] | None = None,
    interrupt_pauses: bool = False,
) -> MailingReport | None:
    """Go through the campaign's file with the claim ``token``; settle the campaign.

    The command line passes its own ``rate``, ``limit``, ``defer`` and callbacks; the
    task runner none (the shared send rate). ``interrupt_pauses``: Ctrl-C pauses the
    campaign (the command line's run is resumed by running it again), where a task
    runner's stop only leaves it to the next runner. Returns the run's report, or
    ``None`` when the file could not be read (the campaign is then stopped, with the
    error). A run without the claim (``token`` ``None``: a second command line beside
    the first) leaves settling the campaign to the run that holds it.
    """
    cursor = _Cursor(campaign.pk, token, on_row=on_row)
    try:
        with open_file(campaign) as file:
            report = run_csv(
                file,
                content_for(campaign),
                campaign=run_key(campaign),
                rate=rate,
                limit=limit,
                encoding=encoding_of(campaign),
                delimiter=delimiter_of(campaign),
                defer=defer,
                name=campaign.source_name,
                progress=progress,
                on_row=cursor.row,
                campaign_id=campaign.pk,
                quiet_hours=True,
                unique=True,
                keep_going=cursor.keep_going,
            )
    except (CampaignError, MailingError) as exc:
        _stop(campaign, token, str(exc))
        return None
    except KeyboardInterrupt:
        if interrupt_pauses:
            Campaign.objects.filter(pk=campaign.pk, status=Campaign.Status.RUNNING).update(
                status=Campaign.Status.PAUSED, updated_at=timezone.now()
            )
        _release(campaign.pk, token)
        raise
    except BaseException:
        # A crash: what was done is kept; the lease runs out for the next runner.
        _release(campaign.pk, token)
        raise
    if token is not None:
        settle(campaign, token, report, cursor, complete=limit is None)
    return report


def _release(campaign_pk: int, token: str | None) -> None:
    if token is not None:
        release(campaign_pk, token)


def settle(
    campaign: Campaign, token: str, report: MailingReport, cursor: _Cursor, *, complete: bool
) -> None:
    """After the run: stopped for good, paused, or through the file (then finished
    once none of its messages is left queued)."""
    if cursor.halted is not None:
        release(campaign.pk, token)  # paused or cancelled: already stored by then
        return
    if report.stopped is not None:
        _stop(campaign, token, report.stopped, rows_done=report.rows)
        return
    if not complete:
        # A command-line run with --limit: the rest waits for the next run.
        release(campaign.pk, token, rows_done=report.rows, status=Campaign.Status.PAUSED)
        return
    options = {**(campaign.report.get(RUN) or {}), "file_done": True}
    campaign.refresh_from_db(fields=["report"])
    report_json = {**campaign.report, RUN: options}
    release(campaign.pk, token, rows_done=report.rows, report=report_json)
    finish_if_done(campaign.pk)


def finish_if_done(campaign_pk: int) -> bool:
    """Mark a running campaign that went through its file finished when none of its
    messages waits any more (quiet hours, a retry); True if it was."""
    now = timezone.now()
    with transaction.atomic():
        if Message.objects.filter(campaign_id=campaign_pk, state=Message.State.QUEUED).exists():
            return False
        return bool(
            Campaign.objects.filter(pk=campaign_pk, status=Campaign.Status.RUNNING).update(
                status=Campaign.Status.FINISHED, finished_at=now, updated_at=now
            )
        )


def _stop(campaign: Campaign, token: str | None, error: str, **fields: Any) -> None:
    now = timezone.now()
    logger.warning("Campaign %s stopped: %s", campaign.pk, error)
    Campaign.objects.filter(pk=campaign.pk, status=Campaign.Status.RUNNING).update(
        status=Campaign.Status.STOPPED, error=error, finished_at=now, updated_at=now, **fields
    )
    _release(campaign.pk, token)


@define_task
def run_campaign(campaign_pk: int) -> None:
    """Run the campaign in this worker (nothing if another runner holds it)."""
    run(campaign_pk)


def enqueue_run(campaign_pk: int, *, run_after: dt.datetime | None = None) -> None:
    """Enqueue the campaign's runner once the transaction commits. If that fails, the
    campaign stays as it is and the next sync pass (``start_due``) enqueues it."""
    transaction.on_commit(functools.partial(_enqueue, campaign_pk, run_after))


def _enqueue(campaign_pk: int, run_after: dt.datetime | None) -> None:
    alias = smsfly_settings.TASK_BACKEND
    try:
        taskcompat.enqueue(run_campaign, campaign_pk, alias=alias, run_after=run_after)
    except Exception:
        logger.exception(
            "Could not enqueue the runner of campaign %s on the task backend %r; the next "
            "sync pass will.",
            campaign_pk,
            alias,
        )
