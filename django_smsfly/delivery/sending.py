"""Sending: write the message, claim it, make the request, store the outcome.

The pipeline of one send, each step its own function::

    prepared = prepare(draft)                 # validate: nothing is written before
    take_send_slot(rate)                      # the one send limiter (SEND_RATE_LIMIT)
    message = insert(..., claimed=True)       # or claim(pk): queued -> sending
    result = client.send_prepared(...)        # the request
    store_outcome(accepted | failed | ...)    # guarded by the claim token

A message is written before SMS-fly is called. Only the worker whose conditional
UPDATE moved it from ``queued`` to ``sending`` holds its claim token, and every outcome
write names that token: a worker whose claim was taken over (its lease ran out) can
never overwrite what happened since. The claim also marks the request as leaving
(``request_started_at``), so a worker that dies leaves the answer behind: the message
may have been sent, and it is never sent again automatically.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.db import (
    DatabaseError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    connection,
    transaction,
)
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from django_smsfly import signals
from django_smsfly.backends.base import mask_text
from django_smsfly.channels import Channel
from django_smsfly.client import PreparedMessage
from django_smsfly.clients import get_client
from django_smsfly.conf import smsfly_settings
from django_smsfly.delivery import records
from django_smsfly.delivery.outcomes import SensitiveNotKept, record_acceptance, record_failure
from django_smsfly.exceptions import (
    SmsFlyError,
    SmsFlyOptedOut,
    SmsFlyValidationError,
)
from django_smsfly.models import Message, OptOut
from django_smsfly.ratelimit import (
    RateLimiter,
    RateLimiterUnavailable,
    SharedRateLimiter,
    get_rate_limiter,
)
from django_smsfly.statuses import DeliveryStatus
from django_smsfly.validation import SmsContent, ViberContent

logger = logging.getLogger("django_smsfly")

#: How long a message waits when the shared rate limit's cache is down (seconds).
LIMITER_DOWN_DELAY = 60.0


@dataclass(frozen=True)
class Draft:
    """What a caller asked to send, before anything is validated or written."""

    recipient: object
    channels: Iterable[Channel | str] | str
    sms: SmsContent | Mapping[str, Any] | None = None
    viber: ViberContent | Mapping[str, Any] | None = None
    idempotency_key: str | None = None
    metadata: Mapping[str, Any] | None = None
    created_by: Any = None
    #: The text holds a secret: only the request carries it (see :func:`insert`).
    sensitive: bool = False
    #: Not to be sent before this (an aware datetime); ``None``: at once.
    send_at: dt.datetime | None = None
    #: Send even to a number on the opt-out list (recorded on the message).
    ignore_opt_out: bool = False
    #: The campaign the message belongs to (its primary key).
    campaign_id: int | None = None


# -- writing ------------------------------------------------------------------------------


def prepare(draft: Draft) -> PreparedMessage:
    """Validate a draft completely; :class:`SmsFlyValidationError` before anything else."""
    prepared = get_client().prepare(
        draft.recipient, channels=draft.channels, sms=draft.sms, viber=draft.viber
    )
    key = draft.idempotency_key
    if key is not None and (not isinstance(key, str) or not key or len(key) > 255):
        raise SmsFlyValidationError(
            _("must be a non-empty string of at most 255 characters"), field="idempotency_key"
        )
    if draft.metadata is not None and not isinstance(draft.metadata, Mapping):
        raise SmsFlyValidationError(_("must be a dict"), field="metadata")
    send_at = draft.send_at
    if send_at is not None and (
        not isinstance(send_at, dt.datetime) or timezone.is_naive(send_at)
    ):
        raise SmsFlyValidationError(
            _("must be an aware datetime (with a time zone)"), field="send_at"
        )
    if send_at is not None and draft.sensitive:
        raise SmsFlyValidationError(
            _("a sensitive message is sent at once: its text is not stored for later"),
            field="send_at",
        )
    return prepared


def opted_out(recipient: str) -> bool:
    """Whether the number (international digits) is on the opt-out list."""
    return OptOut.objects.filter(recipient=recipient).exists()


def is_scheduled(draft: Draft, now: dt.datetime | None = None) -> bool:
    """Whether the draft is not to be sent yet (its ``send_at`` is still ahead).

    A ``send_at`` that is not an aware datetime counts as ahead: writing the draft
    validates it, and refuses it there.
    """
    send_at = draft.send_at
    if send_at is None:
        return False
    if not isinstance(send_at, dt.datetime) or timezone.is_naive(send_at):
        return True
    return send_at > (now or timezone.now())


def existing(draft: Draft) -> Message | None:
    """The message already written with the draft's idempotency key, if any."""
    if draft.idempotency_key is None:
        return None
    return Message.objects.filter(idempotency_key=draft.idempotency_key).first()


def insert(
    draft: Draft,
    prepared: PreparedMessage,
    *,
    claimed: bool,
    refusal: SmsFlyError | None = None,
) -> tuple[Message, bool]:
    """Write a validated message; ``(message, created)``.

    ``claimed``: the row is born ``sending`` (attempt 1, request marked) by this caller,
    so no separate claiming UPDATE is needed; the request must leave right after.
    ``refusal``: the row is born ``queued`` with that error and a retry time (nothing
    was sent, no attempt counted) — or ``failed`` for a sensitive message, whose text
    is not kept for a later try, and for a refusal that is not transient (the number
    opted out). With an idempotency key another caller already used, theirs is returned
    with ``created=False``. A draft with ``send_at`` is born queued, not to be sent
    (claimed) before that time.

    A sensitive draft's row holds its texts masked (``Your code: ••••••``): the real
    text is only in ``prepared``, which the caller sends at once.
    """
    now = timezone.now()
    created_by = draft.created_by
    content = {c.value: prepared.data[c.value] for c in prepared.channels}
    if draft.sensitive:
        content = {name: _masked(block) for name, block in content.items()}
    message = Message(
        recipient=prepared.recipient,
        channels=",".join(c.value for c in prepared.channels),
        content=content,
        idempotency_key=draft.idempotency_key,
        metadata=dict(draft.metadata or {}),
        created_by=created_by if getattr(created_by, "pk", None) else None,
        sensitive=draft.sensitive,
        send_at=draft.send_at,
        # The claim honours retry_at: a scheduled message is not due before its time.
        retry_at=draft.send_at,
        ignore_opt_out=draft.ignore_opt_out,
        campaign_id=draft.campaign_id,
    )
    if claimed:
        message.state = Message.State.SENDING
        message.attempts = 1
        message.claim_token = uuid.uuid4().hex
        message.lease_until = now + records.send_lease()
        message.request_started_at = now
    elif refusal is not None:
        message.error_code = records.db_text(refusal.error_code, 64)
        message.error_text = records.db_text(str(refusal))
        if draft.sensitive or not refusal.transient:
            message.retry_at = None
            message.state = Message.State.FAILED
            message.status = DeliveryStatus.FAILED.value
        else:
            message.retry_at = now + dt.timedelta(seconds=LIMITER_DOWN_DELAY)
    if draft.idempotency_key is None:
        # Nothing unique can clash: a plain INSERT, without a savepoint's round trips.
        message.save(force_insert=True)
        return message, True
    try:
        with transaction.atomic():
            message.save(force_insert=True)
    except IntegrityError:
        # Another caller with the same key won the race: theirs is the message.
        return Message.objects.get(idempotency_key=draft.idempotency_key), False
    return message, True


def write(draft: Draft) -> tuple[Message, bool]:
    """Validate and write a draft as ``queued``; ``(message, created)``.

    With an idempotency key already used, the existing message, ``created=False``. To a
    number that opted out (and without ``ignore_opt_out``) it is written ``failed``
    with ``OPTED_OUT`` and :data:`~django_smsfly.signals.message_failed` is sent.
    """
    prepared = prepare(draft)
    found = existing(draft)
    if found is not None:
        return found, False
    refused = _refuse_opted_out(draft, prepared)
    if refused is not None:
        return refused
    return insert(draft, prepared, claimed=False)


def _refuse_opted_out(draft: Draft, prepared: PreparedMessage) -> tuple[Message, bool] | None:
    """Write the draft ``failed`` (``OPTED_OUT``, no request) if its number opted out."""
    if draft.ignore_opt_out or not opted_out(prepared.recipient):
        return None
    error = SmsFlyOptedOut()
    message, created = insert(draft, prepared, claimed=False, refusal=error)
    if created:
        records.on_commit_signal(signals.message_failed, message, error=error)
    return message, created


# -- sending ------------------------------------------------------------------------------


def send_limiter(rate: float | None = None) -> RateLimiter | SharedRateLimiter:
    """The one limiter every send goes through: ``rate`` per second, ``SEND_RATE_LIMIT``
    unless a caller (a CSV run's ``--rate``) gives its own; shared through
    ``RATE_LIMIT_CACHE`` when that is set."""
    return get_rate_limiter("send", smsfly_settings.SEND_RATE_LIMIT if rate is None else rate)


def limiter_down(exc: RateLimiterUnavailable, what: str) -> None:
    """The one log line for a send refused because the rate limit's cache is down."""
    logger.error("%s not sent: %s It is sent again later.", what, exc)


def send_now(draft: Draft, *, rate_limit: float | None = None) -> Message:
    """Validate, write and send a message in this process; returns its record.

    The send slot is taken after validation and before the row is written: a row born
    claimed must be sent at once. If the rate limit's cache is down, the message is
    written ``queued`` with that error and sent later; nothing is counted as an attempt.
    """
    prepared = prepare(draft)
    found = existing(draft)
    if found is not None:
        return found
    refused = _refuse_opted_out(draft, prepared)
    if refused is not None:
        return refused[0]
    if is_scheduled(draft):
        return insert(draft, prepared, claimed=False)[0]  # sent when its time comes
    try:
        send_limiter(rate_limit).acquire()
    except RateLimiterUnavailable as exc:
        limiter_down(exc, "A new message")
        message, created = insert(draft, prepared, claimed=False, refusal=exc)
        if created and message.state == Message.State.FAILED:
            records.on_commit_signal(signals.message_failed, message, error=exc)
        return message
    message, created = insert(draft, prepared, claimed=True)
    if created:
        request(message, prepared)
    return message


def _masked(block: Any) -> Any:
    """A channel block with its text masked, for the record of a sensitive message."""
    if isinstance(block, Mapping) and isinstance(block.get("text"), str):
        return {**block, "text": mask_text(block["text"])}
    return block


def claim(message_pk: int) -> Message | None:
    """Move one due queued message to ``sending`` for this caller; ``None`` if another
    worker has it, or it is not (or not yet) queued.

    One conditional UPDATE claims it, counts the attempt and marks the request as
    leaving: the caller sends right after it.
    """
    now = timezone.now()
    token = uuid.uuid4().hex
    claimed = (
        Message.objects.filter(pk=message_pk, state=Message.State.QUEUED)
        .filter(Q(retry_at__isnull=True) | Q(retry_at__lte=now))
        .update(
            state=Message.State.SENDING,
            attempts=F("attempts") + 1,
            claim_token=token,
            lease_until=now + records.send_lease(),
            request_started_at=now,
            updated_at=now,
        )
    )
    if not claimed:
        return None
    try:
        return Message.objects.get(pk=message_pk)
    except (OperationalError, InterfaceError):
        # The claim (and its request mark) committed but the connection broke before
        # the row was read: no request has left, so give the message back rather than
        # leave it to be given up as possibly sent.
        records.store_outcome(
            lambda: _release(message_pk, token), message_pk=message_pk, outcome="not sent"
        )
        raise


def _release(message_pk: int, token: str) -> None:
    """Undo a claim whose request never left: back to the queue, the attempt uncounted."""
    Message.objects.filter(pk=message_pk, state=Message.State.SENDING, claim_token=token).update(
        state=Message.State.QUEUED,
        attempts=F("attempts") - 1,
        claim_token="",
        lease_until=None,
        request_started_at=None,
        updated_at=timezone.now(),
    )


def dispatch(message_pk: int, *, rate_limit: float | None = None) -> Message:
    """Send one queued message, if this caller is the one that claims it.

    Returns the message as stored afterwards. A message that is not queued (already
    sent, being sent by another worker, failed or unknown) is returned untouched, so
    calling this twice, or from two workers at once, sends at most once.
    """
    try:
        send_limiter(rate_limit).acquire()
    except RateLimiterUnavailable as exc:
        limiter_down(exc, f"Message {message_pk}")
        _postpone(message_pk, exc)
        return Message.objects.get(pk=message_pk)
    message = claim(message_pk)
    if message is None:
        return Message.objects.get(pk=message_pk)
    request(message)
    return message


def _postpone(message_pk: int, exc: SmsFlyError) -> None:
    """Push a queued message's next try back, recording why (it was not claimed)."""
    now = timezone.now()
    Message.objects.filter(pk=message_pk, state=Message.State.QUEUED).update(
        retry_at=now + dt.timedelta(seconds=LIMITER_DOWN_DELAY),
        error_code=records.db_text(exc.error_code, 64),
        error_text=records.db_text(str(exc)),
        updated_at=now,
    )


@dataclass
class DispatchReport:
    """What :func:`dispatch_many` did: states reached, and retries to schedule."""

    counts: dict[str, int] = field(default_factory=dict)
    #: Messages pushed back for a passing reason, by the time they may be sent again.
    retry: dict[dt.datetime, list[int]] = field(default_factory=dict)


def dispatch_many(message_pks: Iterable[int]) -> DispatchReport:
    """:func:`dispatch` each message; a missing one is counted, not raised.

    A database error on one message is logged and counted (``"error"``) and the others
    are still sent, on a new connection: the one that failed stays queued or is settled
    by ``smsfly_sync``, and need not take the rest of the task with it.
    """
    report = DispatchReport()
    for pk in message_pks:
        try:
            message = dispatch(pk)
        except Message.DoesNotExist:
            report.counts["missing"] = report.counts.get("missing", 0) + 1
            continue
        except DatabaseError:
            logger.exception("Message %s: a database error stopped its send.", pk)
            report.counts["error"] = report.counts.get("error", 0) + 1
            if not connection.in_atomic_block:
                connection.close()  # a broken connection is opened afresh for the next
            continue
        report.counts[message.state] = report.counts.get(message.state, 0) + 1
        if message.state == Message.State.QUEUED and message.retry_at is not None:
            report.retry.setdefault(message.retry_at, []).append(pk)
    return report


def request(message: Message, prepared: PreparedMessage | None = None) -> None:
    """Call SMS-fly for a message this caller has claimed, and store the outcome.

    The request is ``prepared`` when the caller has it (a message sent at once), else
    built from the row. Something SMS-fly did never raises here: every reply and every
    failure becomes the message's outcome. Only a bug of ours (recorded as an unknown
    outcome first) or a database that stays unreachable is raised.
    """
    if prepared is None:
        if message.sensitive:
            # Only its masked text was kept: there is nothing right to send.
            record_failure(message, SensitiveNotKept())
            return
        if not message.ignore_opt_out and opted_out(message.recipient):
            # The number opted out after the message was queued: it never leaves.
            record_failure(message, SmsFlyOptedOut())
            return
        prepared = PreparedMessage(
            recipient=message.recipient,
            channels=tuple(message.channel_list),
            data={
                "recipient": message.recipient,
                "channels": [c.value for c in message.channel_list],
                **message.content,
            },
        )
    try:
        result = get_client().send_prepared(prepared, sensitive=message.sensitive)
    except SmsFlyError as exc:
        record_failure(message, exc)
    except Exception as exc:
        # A bug or an unexpected library error after the request may have left: the
        # outcome is unknown. Record it so the row does not stay "sending", then raise.
        record_failure(message, exc)
        raise
    else:
        record_acceptance(message, result)
