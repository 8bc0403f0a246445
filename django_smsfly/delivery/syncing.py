"""Status sync: claim messages due for a check, poll them, merge the replies forward.

Claims keep pollers apart (two syncs never ask about one message at once), but they
are not what keeps statuses right: a poll's reply is merged under a lock on the rows it
changes, against what is stored *then*, whatever was read before. So a slow reply that
arrives after a fast one, the admin's "refresh now" beside the sync loop, or a sync
whose claim ran out and was taken over, can only move a channel forward, and each move
is written to the history and signalled exactly once.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from django.db import DataError, IntegrityError, connection, transaction
from django.db.models import OuterRef, Subquery
from django.utils import timezone
from django.utils.translation import gettext as _

from django_smsfly.channels import Channel
from django_smsfly.client import MAX_RETRY_AFTER, SmsFlyClient
from django_smsfly.clients import get_client
from django_smsfly.conf import smsfly_settings
from django_smsfly.delivery import records, schedule
from django_smsfly.delivery.records import Transition
from django_smsfly.exceptions import SmsFlyBadReply, SmsFlyError
from django_smsfly.models import ChannelStatus, Message, StatusChange
from django_smsfly.ratelimit import RateLimiter, SharedRateLimiter, get_rate_limiter
from django_smsfly.results import StatusResult
from django_smsfly.statuses import DeliveryStatus, advance, overall

logger = logging.getLogger("django_smsfly")

Limiter = RateLimiter | SharedRateLimiter


@dataclass
class SyncReport:
    """What one status pass (:func:`sync_statuses`, a sync pass) did."""

    #: Messages whose status was asked for.
    checked: int = 0
    #: Messages whose status changed.
    changed: int = 0
    #: Messages that reached a final status (polling for them stopped).
    final: int = 0
    #: Messages whose polling stopped because their lifetime ran out long ago.
    timed_out: int = 0
    #: Status requests that failed (they are asked again later).
    errors: int = 0
    #: Queued messages that were sent (retries of passing refusals).
    sent: int = 0
    #: Error code -> count, for the failed status requests.
    error_codes: dict[str, int] = field(default_factory=dict)

    def __str__(self) -> str:
        parts = [
            _("checked %(count)d") % {"count": self.checked},
            _("changed %(count)d") % {"count": self.changed},
            _("final %(count)d") % {"count": self.final},
            _("errors %(count)d") % {"count": self.errors},
        ]
        if self.timed_out:
            parts.append(_("timed out %(count)d") % {"count": self.timed_out})
        if self.sent:
            parts.append(_("sent %(count)d") % {"count": self.sent})
        return ", ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        """The counts as plain JSON-ready data (a task's return value)."""
        return {
            "checked": self.checked,
            "changed": self.changed,
            "final": self.final,
            "timed_out": self.timed_out,
            "errors": self.errors,
            "sent": self.sent,
            "error_codes": dict(self.error_codes),
        }

    def add(self, other: SyncReport) -> None:
        """Add another report's counts to this one."""
        for name in ("checked", "changed", "final", "timed_out", "errors", "sent"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for code, count in other.error_codes.items():
            self.error_codes[code] = self.error_codes.get(code, 0) + count

    def count_error(self, code: str) -> None:
        """Count one failed status request."""
        self.errors += 1
        self.error_codes[code] = self.error_codes.get(code, 0) + 1


class MismatchedReply(SmsFlyBadReply):
    """A status reply about another message than the one asked for; it is not applied."""

    default_code = "MESSAGE_ID_MISMATCH"


# -- claiming -----------------------------------------------------------------------------


def claim_due(size: int) -> list[Message]:
    """Claim up to ``size`` messages due for a check, for this caller alone.

    Claiming stamps a token and pushes ``next_check_at`` a lease ahead, so a sync that
    dies frees its messages after the lease. Where the database can (PostgreSQL), due
    rows are locked with ``SELECT ... FOR UPDATE SKIP LOCKED``: a second sync skips
    the rows the first is claiming instead of waiting for them. SQLite serializes
    writers: there one UPDATE takes the due rows (its subquery picks them under the
    write lock) and the claimed rows are read back by their token.
    """
    now = timezone.now()
    token = uuid.uuid4().hex
    due = Message.objects.due_for_sync(now).order_by("next_check_at")
    claim = {"claim_token": token, "next_check_at": now + schedule.SYNC_LEASE}
    if connection.features.has_select_for_update_skip_locked:
        with transaction.atomic():
            batch = list(due.select_for_update(skip_locked=True, of=("self",))[:size])
            if batch:
                Message.objects.filter(pk__in=[m.pk for m in batch]).update(**claim)
    else:
        picked = due.values("pk")[:size]
        claimed = Message.objects.filter(pk__in=picked).update(**claim)
        batch = list(Message.objects.filter(claim_token=token)) if claimed else []
    for message in batch:
        message.claim_token = token
    return batch


def targeted(message_pks: list[int]) -> list[Message]:
    """The given messages that have a status to ask for, due or not (no claim taken:
    an operator's "refresh now" polls even a message a sync holds)."""
    return list(
        Message.objects.filter(
            pk__in=message_pks, state=Message.State.ACCEPTED, message_id__isnull=False
        ).order_by("pk")
    )


def claimed_by(claim_token: str) -> list[Message]:
    """The messages one claim holds (a batch a sync task was handed)."""
    return list(
        Message.objects.filter(claim_token=claim_token, state=Message.State.ACCEPTED).order_by(
            "pk"
        )
    )


# -- polling ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Poll:
    """One status request's outcome: the reply, or the error it ended with."""

    result: StatusResult | None = None
    error: SmsFlyError | None = None


def poll(client: SmsFlyClient, limiter: Limiter, message: Message) -> Poll:
    """Ask SMS-fly for one message's status; never raises."""
    asked = message.message_id or ""
    try:
        limiter.acquire()
        result = client.get_message_status(asked)
    except SmsFlyError as exc:
        return Poll(error=exc)
    except Exception as exc:
        # A bug in one poll must not abort the batch and leave it claimed: record it on
        # that message (asked again later) and go on with the others.
        logger.exception("Status poll of message %s failed", message.pk)
        return Poll(error=SmsFlyError(f"{type(exc).__name__}: {exc}"))
    if result.message_id != asked:
        return Poll(
            error=MismatchedReply(
                f"GETMESSAGESTATUS for {records.shown_id(asked)} answered about "
                f"{records.shown_id(result.message_id)}; the reply was not applied.",
                action="GETMESSAGESTATUS",
            )
        )
    return Poll(result=result)


# -- merging ------------------------------------------------------------------------------


@dataclass
class _Writes:
    """What a batch's replies change, gathered for a few bulk statements."""

    now: dt.datetime
    token: str | None
    channels: list[ChannelStatus] = field(default_factory=list)
    changes: list[StatusChange] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    signalled: list[tuple[Message, list[Transition]]] = field(default_factory=list)


def apply(batch: list[Message], polls: list[Poll], *, token: str | None) -> SyncReport:
    """Merge a batch's replies into what is stored, and schedule the signals.

    The batch's rows are locked (in primary-key order, so two appliers never deadlock)
    and read again inside the transaction; each reply moves a channel only forward from
    what is stored then. The claim ``token`` is cleared only where it still holds. A
    reply the database cannot store is recorded as that message's poll error; it never
    stops the others.
    """
    report = SyncReport(checked=len(batch))
    if not batch:
        return report
    replies = {message.pk: p for message, p in zip(batch, polls, strict=True)}
    try:
        with transaction.atomic():
            writes = _Writes(now=timezone.now(), token=token)
            for current, rows in _lock(sorted(replies)):
                _merge(current, rows, replies[current.pk], writes, report)
            _write(writes)
    except (DataError, IntegrityError) as exc:
        if len(batch) > 1:  # find the one reply that cannot be stored; keep the others
            report = SyncReport()
            for message, p in zip(batch, polls, strict=True):
                report.add(apply([message], [p], token=token))
            return report
        logger.error("Status of message %s cannot be stored: %s", batch[0].pk, exc)
        text = " ".join(str(exc).split())[:200]
        bad = SmsFlyBadReply(text, action="GETMESSAGESTATUS")
        return apply(batch, [Poll(error=bad)], token=token)
    for message, transitions in writes.signalled:
        records.signal_transitions(message, transitions)
    return report


def _lock(pks: list[int]) -> list[tuple[Message, list[ChannelStatus]]]:
    """The messages with their channel rows, locked for this transaction and read fresh.

    Where the database locks rows (PostgreSQL), the messages are locked first, in
    primary-key order (so two appliers never wait for each other in a circle), and
    their channel rows are read after the locks are held, so they are the latest.
    SQLite serializes writers: a first write takes the database's write lock, and then
    one query reads the channel rows joined to their message. A message with no channel
    rows was never accepted and has nothing to merge.
    """
    channels = ChannelStatus.objects.filter(message_id__in=pks).order_by("message_id", "position")
    if connection.features.has_select_for_update:
        messages = {
            m.pk: m
            for m in Message.objects.filter(pk__in=pks)
            .order_by("pk")
            .select_for_update(of=("self",))
        }
        rows = [row for row in channels if row.message_id in messages]
        for row in rows:
            row.message = messages[row.message_id]
    else:
        Message.objects.filter(pk__in=pks).update(last_checked_at=timezone.now())
        rows = list(channels.select_related("message"))
    locked: dict[int, tuple[Message, list[ChannelStatus]]] = {}
    for row in rows:
        locked.setdefault(row.message_id, (row.message, []))[1].append(row)
    return list(locked.values())


def _merge(
    current: Message, rows: list[ChannelStatus], reply: Poll, writes: _Writes, report: SyncReport
) -> None:
    now = writes.now
    if current.state != Message.State.ACCEPTED or not current.message_id:
        return  # sent again or repaired meanwhile: this reply is about the past
    age = now - (current.sent_at or current.created_at)
    if writes.token and current.claim_token == writes.token:
        current.claim_token = ""
    current.last_checked_at = now
    if reply.error is not None or reply.result is None:
        error = reply.error or SmsFlyError("no reply")
        report.count_error(error.error_code)
        retry_after = records.finite_seconds(getattr(error, "retry_after", None), MAX_RETRY_AFTER)
        delay = max(schedule.next_check_delay(age), dt.timedelta(seconds=retry_after))
        current.next_check_at = now + delay
        current.error_code = records.db_text(error.error_code, 64)
        current.error_text = records.db_text(str(error))
        _maybe_time_out(current, now, report)
        writes.messages.append(current)
        return
    start = len(writes.changes)
    transitions = _merge_channels(current, rows, reply.result, writes)
    dates = [c.status_date for c in writes.changes[start:] if c.status_date is not None]
    old = current.delivery_status
    computed, via = overall([(r.channel, DeliveryStatus(r.status)) for r in rows])
    # The message's own status follows the same forward-only rule as its channels.
    new = advance(old, computed)
    if new is not old:
        current.status = new.value
        # Dated like the channel move that caused it.
        writes.changes.append(
            records.history(current, None, old, new, date=max(dates) if dates else None)
        )
    if new.is_success:
        current.delivered_via = via or current.delivered_via
    if transitions:
        # What was charged: a refunded channel's price came back to the balance.
        current.cost = records.charged_cost(rows, current.cost)
    current.error_code = current.error_text = ""
    if transitions or new is not old:
        report.changed += 1
        writes.signalled.append((current, transitions))
    if records.all_final(rows):
        current.next_check_at = None
        report.final += 1
    else:
        current.next_check_at = now + schedule.next_check_delay(age)
        _maybe_time_out(current, now, report)
    writes.messages.append(current)


def _merge_channels(
    current: Message, rows: list[ChannelStatus], result: StatusResult, writes: _Writes
) -> list[Transition]:
    """Move each channel forward by the reply; collect rows to write and transitions."""
    transitions: list[Transition] = []
    for row in rows:
        reported = result.get(row.channel)
        if reported is None:
            continue
        old = DeliveryStatus(row.status)
        new = advance(old, DeliveryStatus.from_raw(reported.status))
        raw = records.db_text(reported.raw_status, 32)
        if new is old and raw == row.raw_status:
            continue
        row.raw_status = raw
        if new is not old:
            row.status = new.value
            channel = Channel(row.channel)
            writes.changes.append(records.channel_history(current, channel, old, new, reported))
            transitions.append((channel, old, new))
        writes.channels.append(row)
    return transitions


def _maybe_time_out(message: Message, now: dt.datetime, report: SyncReport) -> None:
    """Stop polling a message whose lifetime ran out long ago, and say so on it."""
    if now < schedule.polling_deadline(message):
        return
    message.next_check_at = None
    message.error_code = "STATUS_TIMEOUT"
    message.error_text = _(
        "No final status %(grace)s after the message's lifetime (%(ttl)s) ended; polling stopped."
    ) % {"grace": schedule.POLL_GRACE, "ttl": schedule.lifetime(message)}
    report.timed_out += 1


def _write(writes: _Writes) -> None:
    """Write a merged batch in a few statements (inside the caller's transaction).

    Rows that end up with the same values are updated together (one ``UPDATE ...
    WHERE id IN (...)`` per distinct set of values; in a batch most share them), which
    is far cheaper for Django to build than a ``bulk_update`` CASE per row and field.
    """
    now = writes.now
    channel_groups: dict[tuple[str, str], list[int]] = {}
    for row in writes.channels:
        channel_groups.setdefault((row.status, row.raw_status), []).append(row.pk)
    for (status, raw_status), pks in channel_groups.items():
        ChannelStatus.objects.filter(pk__in=pks).update(
            status=status, raw_status=raw_status, updated_at=now
        )
    if writes.changes:
        StatusChange.objects.bulk_create(writes.changes)
        dated = {(c.message_id, c.channel) for c in writes.changes if c.status_date and c.channel}
        moved = [row.pk for row in writes.channels if (row.message_id, row.channel) in dated]
        if moved:
            # Each moved channel's date is on the history row just written: copy it over
            # in one statement instead of a per-row CASE.
            latest = StatusChange.objects.filter(
                message=OuterRef("message"), channel=OuterRef("channel")
            ).order_by("-pk")
            ChannelStatus.objects.filter(pk__in=moved).update(
                status_date=Subquery(latest.values("status_date")[:1])
            )
    message_groups: dict[tuple[Any, ...], list[int]] = {}
    for message in writes.messages:
        key = (
            message.status,
            message.delivered_via,
            message.error_code,
            message.error_text,
            message.next_check_at,
            message.claim_token,
            message.cost,
        )
        message_groups.setdefault(key, []).append(message.pk)
    for (status, via, code, text, next_check_at, claim_token, cost), pks in message_groups.items():
        Message.objects.filter(pk__in=pks).update(
            status=status,
            delivered_via=via,
            cost=cost,
            error_code=code,
            error_text=text,
            next_check_at=next_check_at,
            claim_token=claim_token,
            last_checked_at=now,
            updated_at=now,
        )


# -- passes -------------------------------------------------------------------------------


def sync_limiter(rate: float | None = None) -> Limiter:
    """The one limiter every status request goes through (``SYNC_RATE_LIMIT`` unless a
    caller gives its own rate; shared through ``RATE_LIMIT_CACHE`` when set)."""
    return get_rate_limiter("sync", smsfly_settings.SYNC_RATE_LIMIT if rate is None else rate)


def sync_statuses(
    *,
    limit: int | None = None,
    batch_size: int | None = None,
    concurrency: int | None = None,
    rate_limit: float | None = None,
    message_pks: Iterable[int] | None = None,
    progress: Callable[[SyncReport], None] | None = None,
) -> SyncReport:
    """Ask SMS-fly for the status of messages that are due, and store what changed.

    Messages are claimed in batches (``SYNC_BATCH_SIZE``), so any number of syncs may
    run at once without asking about one message twice; each batch is polled with up
    to ``SYNC_CONCURRENCY`` parallel requests, at most ``SYNC_RATE_LIMIT`` per second,
    and merged in a few bulk queries. With ``message_pks`` only those messages are
    checked, due or not. ``progress`` is called with the running report after each
    batch.
    """
    conf = smsfly_settings
    batch_size = batch_size or conf.SYNC_BATCH_SIZE
    concurrency = concurrency or conf.SYNC_CONCURRENCY
    limiter = sync_limiter(rate_limit)
    client = get_client()
    report = SyncReport()
    wanted = list(message_pks) if message_pks is not None else None
    taken = 0
    exhausted = False

    def next_batch() -> tuple[list[Message], str | None]:
        nonlocal taken, exhausted, wanted
        size = batch_size if limit is None else min(batch_size, limit - taken)
        if exhausted or size <= 0:
            return [], None
        if wanted is not None:
            chunk, wanted = wanted[:size], wanted[size:]
            batch, token = (targeted(chunk) if chunk else []), None
            exhausted = not wanted
        else:
            batch = claim_due(size)
            token = batch[0].claim_token if batch else None
            exhausted = len(batch) < size  # fewer due than asked for: none are left
        taken += len(batch)
        return batch, token

    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="smsfly-sync") as pool:

        def submit(batch: list[Message]) -> list[Future[Poll]]:
            return [pool.submit(poll, client, limiter, message) for message in batch]

        # Two batches in flight: while this thread waits for one batch's replies and
        # writes them, the pool already polls the next, so the database work and the
        # network wait overlap instead of adding up.
        batch, token = next_batch()
        polls = submit(batch)
        while batch:
            following, following_token = next_batch()
            following_polls = submit(following)
            report.add(apply(batch, [f.result() for f in polls], token=token))
            if progress is not None:
                progress(report)
            batch, token, polls = following, following_token, following_polls
    return report


def sync_claimed(claim_token: str, *, concurrency: int | None = None) -> SyncReport:
    """Poll the messages held by one claim (a batch handed to a task)."""
    batch = claimed_by(claim_token)
    if not batch:
        return SyncReport()
    client = get_client()
    limiter = sync_limiter()
    workers = min(concurrency or smsfly_settings.SYNC_CONCURRENCY, len(batch))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="smsfly-sync") as pool:
        polls = list(pool.map(lambda m: poll(client, limiter, m), batch))
    return apply(batch, polls, token=claim_token)
