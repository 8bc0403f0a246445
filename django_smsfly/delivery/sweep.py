"""One pass of the background work: the single definition ``smsfly_sync`` and the
``sync_due`` task both run.

A pass settles the messages of workers that died (:func:`recover_stale_sends`), sends
the queued messages that are due (:func:`send_due`), then asks for the statuses that
are due (:func:`~django_smsfly.delivery.syncing.sync_statuses`). One bad message never
stops a pass: its failure is recorded on it and the pass goes on.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.db import InterfaceError, OperationalError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from django_smsfly import signals
from django_smsfly.delivery import records, sending, syncing
from django_smsfly.delivery.syncing import SyncReport
from django_smsfly.exceptions import SmsFlyWorkerLost
from django_smsfly.models import Campaign, Message, MessageQuerySet
from django_smsfly.ratelimit import RateLimiterUnavailable

logger = logging.getLogger("django_smsfly")


@dataclass
class RecoveryReport:
    """What :func:`recover_stale_sends` did with messages whose sender vanished."""

    #: Claimed but never sent (no request had started): queued again.
    requeued: int = 0
    #: The request may have left: marked unknown, never resent automatically.
    unknown: int = 0


def recover_stale_sends(*, now: dt.datetime | None = None) -> RecoveryReport:
    """Settle messages left ``sending`` by a worker that died (its lease ran out).

    One whose request had not started goes back to the queue and is sent again; one
    whose request had started may have reached SMS-fly, so it becomes ``unknown`` with
    the error ``WORKER_LOST`` and :data:`~django_smsfly.signals.message_failed` is sent.
    Each row is changed with a conditional UPDATE on its claim, so a worker that is
    merely slow and still holds it is never overtaken by two recoveries at once.
    """
    now = now or timezone.now()
    report = RecoveryReport()
    stale = Message.objects.filter(state=Message.State.SENDING, lease_until__lt=now).values_list(
        "pk", "claim_token", "request_started_at"
    )
    for pk, token, started in list(stale):
        held = Message.objects.filter(
            pk=pk, state=Message.State.SENDING, claim_token=token, lease_until__lt=now
        )
        if started is None:
            # The mark is checked again in the UPDATE itself: the worker may have marked
            # its request since the list was read.
            if held.filter(request_started_at__isnull=True).update(
                state=Message.State.QUEUED,
                claim_token="",
                lease_until=None,
                retry_at=now,
                error_code=records.WORKER_LOST,
                error_text=_(
                    "The worker sending it stopped before the request left; it is sent again."
                ),
                updated_at=now,
            ):
                report.requeued += 1
            continue
        error = SmsFlyWorkerLost()
        with transaction.atomic():
            if not held.update(
                state=Message.State.UNKNOWN,
                claim_token="",
                lease_until=None,
                retry_at=None,
                error_code=records.WORKER_LOST,
                error_text=str(error),
                updated_at=now,
            ):
                continue
            records.on_commit_signal(
                signals.message_failed, Message.objects.get(pk=pk), error=error
            )
        report.unknown += 1
    if report.requeued or report.unknown:
        logger.warning(
            "Recovered messages of vanished workers: %d queued again, %d unknown.",
            report.requeued,
            report.unknown,
        )
    return report


#: Campaign states whose queued messages wait: an operator paused the campaign (its
#: runner sends them on resume), or it has not started yet.
HELD_CAMPAIGNS = (Campaign.Status.PAUSED, Campaign.Status.DRAFT, Campaign.Status.SCHEDULED)


def due_to_send(now: dt.datetime) -> MessageQuerySet:
    """Queued messages nobody is about to send: their retry time (or ``send_at``) came,
    or their task (if any) has had ``QUEUED_GRACE`` to run and did not. Messages of a
    campaign that is paused or not started wait for it."""
    return (
        Message.objects.filter(state=Message.State.QUEUED)
        .filter(
            Q(retry_at__lte=now)
            | Q(retry_at__isnull=True, attempts__gt=0)
            | Q(retry_at__isnull=True, created_at__lte=now - records.queued_grace())
        )
        .filter(
            Q(campaign__isnull=True)
            | ~Q(campaign_id__in=Campaign.objects.filter(status__in=HELD_CAMPAIGNS).values("pk"))
        )
    )


def due_pks(limit: int | None = None) -> list[int]:
    """The primary keys of the queued messages due to be sent, oldest first."""
    due = due_to_send(timezone.now()).order_by("created_at", "pk").values_list("pk", flat=True)
    return list(due if limit is None else due[:limit])


def send_due(limit: int | None = None, *, rate_limit: float | None = None) -> int:
    """Send the queued messages whose time has come; returns how many were attempted.

    Due are messages refused earlier for a passing reason whose ``retry_at`` has come,
    and messages queued for their first send more than ``QUEUED_GRACE`` ago: their
    task was lost or no worker ran it, and nothing queued may be left behind. Each goes
    through :func:`~django_smsfly.delivery.sending.dispatch`, which claims it
    atomically, so this may run beside task workers (or twice at once) without sending
    anything twice. Sends are paced by the one send limiter only, at ``rate_limit`` per
    second (default ``SEND_RATE_LIMIT``). A message whose send breaks in a way of ours
    is logged and skipped; when the rate limit's cache is down, the pass stops sending.
    """
    attempted = 0
    due = due_to_send(timezone.now()).order_by("created_at", "pk")
    for pk, attempts in list(
        (due if limit is None else due[:limit]).values_list("pk", "attempts")
    ):
        try:
            message = sending.dispatch(pk, rate_limit=rate_limit)
        except (OperationalError, InterfaceError):
            raise  # the database is gone: the pass cannot go on
        except Message.DoesNotExist:
            continue
        except Exception:
            logger.exception("Sending message %s failed; the pass goes on.", pk)
            continue
        # dispatch() returns the row untouched when another worker claimed it first;
        # only a raised attempt count says this call sent it.
        if message.attempts > attempts:
            attempted += 1
        elif message.error_code == RateLimiterUnavailable.default_code:
            break  # the limiter's cache is down: the next pass tries again
    return attempted


def run_sync_pass(
    *,
    limit: int | None = None,
    batch_size: int | None = None,
    concurrency: int | None = None,
    rate_limit: float | None = None,
    message_pks: Iterable[int] | None = None,
    send: bool = True,
    progress: Callable[[SyncReport], None] | None = None,
) -> SyncReport:
    """One pass of ``smsfly_sync``, in this process.

    Settles messages of vanished workers and sends the queued messages that are due
    (unless ``send`` is false, or ``message_pks`` names messages to check), then polls
    the statuses that are due (or those of ``message_pks``, due or not).
    ``rate_limit`` paces the sends and the status requests alike.
    """
    sent = 0
    if send and message_pks is None:
        recover_stale_sends()
        sent = send_due(limit, rate_limit=rate_limit)
    report = syncing.sync_statuses(
        limit=limit,
        batch_size=batch_size,
        concurrency=concurrency,
        rate_limit=rate_limit,
        message_pks=message_pks,
        progress=progress,
    )
    report.sent = sent
    return report
