"""The app's operations for a Django site: sending, status sync, account queries.

This is the only module that changes :class:`~django_smsfly.models.Message` and
:class:`~django_smsfly.models.ChannelStatus` rows. Everything here reads
``settings.SMSFLY`` through :mod:`django_smsfly.conf`.

Sending never sends twice and never loses a message: the row is written before SMS-fly
is called; a conditional UPDATE lets exactly one caller move it from ``queued`` to
``sending``; and every outcome is stored — ``accepted`` with the message id,
``failed`` when SMS-fly refused (nothing spent), back to ``queued`` with a ``retry_at``
when the request certainly did not arrive (HTTP 429, no connection), and ``unknown``
when it may have arrived (timeout, HTTP 5xx, a broken reply), which is never re-sent
automatically.
"""

from __future__ import annotations

import datetime as dt
import functools
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.db import IntegrityError, connection, transaction
from django.db.models import F, OuterRef, Q, Subquery, prefetch_related_objects
from django.dispatch import receiver
from django.utils import timezone
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _

from django_smsfly import signals
from django_smsfly.backends.base import BaseBackend
from django_smsfly.channels import Channel
from django_smsfly.client import APP_VERSION, PreparedMessage, SmsFlyClient
from django_smsfly.conf import smsfly_settings
from django_smsfly.exceptions import SmsFlyError, SmsFlyValidationError, Verdict
from django_smsfly.models import ChannelStatus, Message, MessageQuerySet, StatusChange
from django_smsfly.pricing import CostEstimate, estimate, network_of
from django_smsfly.ratelimit import RateLimiter
from django_smsfly.results import ChannelResult, PriceList, SendResult, StatusResult
from django_smsfly.statuses import DeliveryStatus, advance, overall
from django_smsfly.validation import SmsContent, ViberContent, sms_fallback

#: The key the sandbox accepts when no API_KEY is set: it never leaves the process.
SANDBOX_KEY = "sandbox"

_client_lock = threading.Lock()
_client: SmsFlyClient | None = None


def build_client() -> SmsFlyClient:
    """A new client configured from ``settings.SMSFLY`` (see :func:`get_client`)."""
    conf = smsfly_settings
    try:
        backend_cls = import_string(conf.BACKEND)
    except ImportError as exc:
        raise ImproperlyConfigured(
            f"SMSFLY['BACKEND']: cannot import {conf.BACKEND!r}: {exc}"
        ) from exc
    if not (isinstance(backend_cls, type) and issubclass(backend_cls, BaseBackend)):
        raise ImproperlyConfigured(
            f"SMSFLY['BACKEND']: {conf.BACKEND!r} is not a django_smsfly backend class."
        )
    api_key = conf.API_KEY
    if not api_key:
        if not conf.uses_sandbox:
            raise ImproperlyConfigured(
                "SMSFLY['API_KEY'] is not set. Copy the key from SMS-fly's 'API settings' "
                "page, or use the sandbox backend for development."
            )
        api_key = SANDBOX_KEY
    options: dict[str, Any] = dict(conf.BACKEND_OPTIONS)
    try:
        backend = backend_cls(
            api_url=conf.API_URL,
            timeout=conf.TIMEOUT,
            user_agent=APP_VERSION,
            max_retries=conf.MAX_RETRIES,
            retry_backoff=conf.RETRY_BACKOFF,
            max_retry_wait=conf.MAX_RETRY_WAIT,
            **options,
        )
    except TypeError as exc:
        raise ImproperlyConfigured(f"SMSFLY['BACKEND_OPTIONS']: {exc}") from exc
    return SmsFlyClient(
        api_key,
        backend=backend,
        default_region=conf.DEFAULT_REGION,
        sms_source=conf.SMS_SOURCE,
        viber_source=conf.VIBER_SOURCE,
        appversion=APP_VERSION if conf.IDENTIFY else None,
    )


def get_client() -> SmsFlyClient:
    """The process-wide client built from ``settings.SMSFLY``.

    One client (and so one connection pool) serves the whole process; it is rebuilt
    when ``SMSFLY`` changes. Usable without a database.
    """
    global _client  # noqa: PLW0603 - a process-wide singleton is the point
    with _client_lock:
        if _client is None:
            _client = build_client()
        return _client


def reset_client() -> None:
    """Close and forget the shared client; the next :func:`get_client` builds a new one."""
    global _client  # noqa: PLW0603
    with _client_lock:
        if _client is not None:
            _client.close()
        _client = None


@receiver(setting_changed)
def _reset_on_change(*, setting: str, **kwargs: Any) -> None:
    if setting == "SMSFLY":
        reset_client()


def get_balance() -> Decimal:
    """The account balance (GETBALANCE)."""
    return get_client().get_balance()


def get_balances() -> dict[str, Decimal]:
    """The SMS and Viber balances: ``{"sms": Decimal(...), "viber": Decimal(...)}``."""
    return get_client().get_balance_ext().as_dict()


# -- sending ---------------------------------------------------------------------------


def send_sms(
    recipient: object,
    text: str,
    *,
    source: str | None = None,
    ttl: int | None = None,
    flash: bool = False,
    idempotency_key: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    created_by: Any = None,
) -> Message:
    """Send an SMS and return its :class:`~django_smsfly.models.Message`.

    Invalid input raises :class:`~django_smsfly.exceptions.SmsFlyValidationError`
    before anything is written or sent. Failures of the send itself do not raise:
    they are recorded on the returned message (``state``, ``error_code``,
    ``error_text``).
    """
    return send_message(
        recipient,
        channels=[Channel.SMS],
        sms=SmsContent(text=text, source=source, ttl=ttl, flash=flash),
        idempotency_key=idempotency_key,
        metadata=metadata,
        created_by=created_by,
    )


def send_viber(
    recipient: object,
    *,
    text: str | None = None,
    image: str | None = None,
    button_caption: str | None = None,
    button_url: str | None = None,
    source: str | None = None,
    ttl: int | None = None,
    sms_text: str | None = None,
    sms_source: str | None = None,
    sms_ttl: int | None = None,
    idempotency_key: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    created_by: Any = None,
) -> Message:
    """Send a Viber message; ``sms_text`` adds an SMS sent if Viber fails.

    Behaves as :func:`send_sms` for errors and the returned message.
    """
    viber = ViberContent(
        text=text,
        image=image,
        button_caption=button_caption,
        button_url=button_url,
        source=source,
        ttl=ttl,
    )
    sms = sms_fallback(sms_text, sms_source, sms_ttl)
    return send_message(
        recipient,
        channels=[Channel.VIBER, Channel.SMS] if sms else [Channel.VIBER],
        viber=viber,
        sms=sms,
        idempotency_key=idempotency_key,
        metadata=metadata,
        created_by=created_by,
    )


def send_message(
    recipient: object,
    *,
    channels: Iterable[Channel | str] | str,
    sms: SmsContent | Mapping[str, Any] | None = None,
    viber: ViberContent | Mapping[str, Any] | None = None,
    idempotency_key: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    created_by: Any = None,
) -> Message:
    """Send a message over ``channels`` in fallback order and return its record.

    With an ``idempotency_key`` already used, the existing message is returned and
    nothing is sent. ``metadata`` is stored as given (JSON) for your own references.
    """
    message, created = _write_message(
        recipient,
        channels=channels,
        sms=sms,
        viber=viber,
        idempotency_key=idempotency_key,
        metadata=metadata,
        created_by=created_by,
        sending=True,
    )
    if created:
        _send(message)
    return message


def queue_message(
    recipient: object,
    *,
    channels: Iterable[Channel | str] | str,
    sms: SmsContent | Mapping[str, Any] | None = None,
    viber: ViberContent | Mapping[str, Any] | None = None,
    idempotency_key: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    created_by: Any = None,
) -> Message:
    """Validate a message and write it as ``queued`` without sending it.

    :func:`dispatch` (or ``smsfly_sync``) sends it later. With an ``idempotency_key``
    already used, the existing message is returned.
    """
    message, _created = _write_message(
        recipient,
        channels=channels,
        sms=sms,
        viber=viber,
        idempotency_key=idempotency_key,
        metadata=metadata,
        created_by=created_by,
        sending=False,
    )
    return message


def _write_message(
    recipient: object,
    *,
    channels: Iterable[Channel | str] | str,
    sms: SmsContent | Mapping[str, Any] | None,
    viber: ViberContent | Mapping[str, Any] | None,
    idempotency_key: str | None,
    metadata: Mapping[str, Any] | None,
    created_by: Any,
    sending: bool,
) -> tuple[Message, bool]:
    """Validate and write a message; ``(message, created)``.

    With ``sending`` the row is born claimed (``sending``, attempt 1) by this caller,
    so no other worker can take it and no separate claiming UPDATE is needed. An
    existing message with the same idempotency key is returned with ``created=False``.
    """
    prepared = get_client().prepare(recipient, channels=channels, sms=sms, viber=viber)
    if idempotency_key is not None:
        if (
            not isinstance(idempotency_key, str)
            or not idempotency_key
            or len(idempotency_key) > 255
        ):
            raise SmsFlyValidationError(
                "must be a non-empty string of at most 255 characters", field="idempotency_key"
            )
        existing = Message.objects.filter(idempotency_key=idempotency_key).first()
        if existing is not None:
            return existing, False
    if metadata is not None and not isinstance(metadata, Mapping):
        raise SmsFlyValidationError("must be a dict", field="metadata")
    now = timezone.now()
    message = Message(
        recipient=prepared.recipient,
        channels=",".join(c.value for c in prepared.channels),
        content={c.value: prepared.data[c.value] for c in prepared.channels},
        idempotency_key=idempotency_key,
        metadata=dict(metadata or {}),
        created_by=created_by if getattr(created_by, "pk", None) else None,
    )
    if sending:
        message.state = Message.State.SENDING
        message.attempts = 1
        message.claim_token = uuid.uuid4().hex
        message.lease_until = now + SEND_LEASE
    if idempotency_key is None:
        # Nothing unique can clash: a plain INSERT, without a savepoint's round trips.
        message.save(force_insert=True)
        return message, True
    try:
        with transaction.atomic():
            message.save(force_insert=True)
    except IntegrityError:
        # Another caller with the same key won the race: theirs is the message.
        return Message.objects.get(idempotency_key=idempotency_key), False
    return message, True


def dispatch(message_pk: int) -> Message:
    """Send one queued message, if this caller is the one that claims it.

    Returns the message as stored afterwards. A message that is not queued (already
    sent, being sent by another worker, failed or unknown) is returned untouched, so
    calling this twice, or from two workers at once, sends at most once.
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
            lease_until=now + SEND_LEASE,
            updated_at=now,
        )
    )
    message = Message.objects.get(pk=message_pk)
    if claimed:
        _send(message)
    return message


def _send(message: Message) -> None:
    """Call SMS-fly for a message this caller has claimed, and store the outcome."""
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
        result = get_client().send_prepared(prepared)
    except SmsFlyError as exc:
        _record_send_failure(message, exc)
    except Exception as exc:
        # A bug or an unexpected library error after the request may have left: the
        # outcome is unknown. Record it so the row does not stay "sending", then raise.
        _record_send_failure(message, exc)
        raise
    else:
        _record_acceptance(message, result)


#: What storing a send's outcome changes on the message row.
_SENT_FIELDS = [
    "state",
    "message_id",
    "sent_at",
    "cost",
    "status",
    "delivered_via",
    "error_code",
    "error_text",
    "claim_token",
    "lease_until",
    "retry_at",
    "next_check_at",
    "updated_at",
]


def _record_acceptance(message: Message, result: SendResult) -> None:
    now = timezone.now()
    order = message.channel_list
    rows: list[ChannelStatus] = []
    changes: list[StatusChange] = []
    transitions: list[tuple[Channel, DeliveryStatus, DeliveryStatus]] = []
    for position, channel in enumerate(order):
        reported = result.get(channel)
        new = DeliveryStatus.ACCEPTED
        raw = ""
        if reported is not None:
            raw = reported.raw_status
            new = advance(DeliveryStatus.QUEUED, DeliveryStatus.from_raw(reported.status))
            if new is DeliveryStatus.QUEUED:  # an unknown raw status: SMS-fly has it anyway
                new = DeliveryStatus.ACCEPTED
        rows.append(
            ChannelStatus(
                message=message,
                channel=channel.value,
                position=position,
                status=new.value,
                raw_status=_db_text(raw, 32),
                status_date=reported.date if reported else None,
                cost=reported.cost if reported else None,
                label=_db_text(reported.label or "", 32) if reported else "",
            )
        )
        changes.append(
            _change(
                message, channel, old=DeliveryStatus.QUEUED, new=new, raw=raw, reported=reported
            )
        )
        transitions.append((channel, DeliveryStatus.QUEUED, new))
    overall_status, via = overall(
        [(c.value, DeliveryStatus(r.status)) for c, r in zip(order, rows, strict=True)]
    )
    message.state = Message.State.ACCEPTED
    message.message_id = result.message_id
    message.sent_at = now
    message.cost = result.cost
    message.status = overall_status.value
    message.delivered_via = via or ""
    message.error_code = ""
    message.error_text = ""
    message.claim_token = ""
    message.lease_until = None
    message.retry_at = None
    message.next_check_at = None if _all_final(rows) else now + next_check_delay(dt.timedelta(0))
    message.updated_at = now
    with transaction.atomic():
        ChannelStatus.objects.bulk_create(rows)
        StatusChange.objects.bulk_create(changes)
        message.save(update_fields=_SENT_FIELDS)
        transaction.on_commit(lambda: signals.message_sent.send_robust(Message, message=message))
        _signal_transitions(message, transitions)


def _record_send_failure(message: Message, exc: BaseException) -> None:
    now = timezone.now()
    if isinstance(exc, SmsFlyError):
        code, text = exc.error_code, str(exc)
        not_sent = exc.verdict is Verdict.NOT_SENT
        transient = exc.transient
    else:
        code, text = "INTERNAL", f"{type(exc).__name__}: {exc}"
        not_sent = transient = False
    message.error_code = _db_text(code, 64)
    message.error_text = _db_text(text)
    message.claim_token = ""
    message.lease_until = None
    if not_sent and transient and message.attempts < smsfly_settings.SEND_MAX_ATTEMPTS:
        # Nothing arrived; try again later (sooner if the server said when).
        delay = getattr(exc, "retry_after", None) or _retry_delay(message.attempts)
        message.state = Message.State.QUEUED
        message.retry_at = now + dt.timedelta(seconds=delay)
        message.save()
        return
    message.state = Message.State.FAILED if not_sent else Message.State.UNKNOWN
    message.retry_at = None
    old = message.delivery_status
    if not_sent:  # refused: the delivery failed too. Unknown: the status says queued.
        message.status = DeliveryStatus.FAILED.value
    with transaction.atomic():
        message.save()
        if message.delivery_status is not old:
            StatusChange.objects.create(
                message=message,
                old_status=old.value,
                new_status=message.status,
                raw_status=_db_text(code, 32),
            )
        transaction.on_commit(
            lambda: signals.message_failed.send_robust(Message, message=message, error=exc)
        )


def _db_text(text: str, limit: int | None = None) -> str:
    """Server-provided text made storable: no NUL characters (PostgreSQL refuses them),
    cut to the column's length."""
    text = text.replace("\x00", "")
    return text[:limit] if limit is not None else text


def _retry_delay(attempts: int) -> float:
    """Seconds before sending again after the ``attempts``-th refusal: 30 s, 1, 2, 4... min."""
    return float(min(30 * 2 ** max(attempts - 1, 0), 3600))


def _change(
    message: Message,
    channel: Channel,
    *,
    old: DeliveryStatus,
    new: DeliveryStatus,
    raw: str,
    reported: ChannelResult | None,
) -> StatusChange:
    return StatusChange(
        message=message,
        channel=channel.value,
        old_status=old.value,
        new_status=new.value,
        raw_status=_db_text(raw, 32),
        status_date=reported.date if reported else None,
    )


def _signal_transitions(
    message: Message, transitions: list[tuple[Channel, DeliveryStatus, DeliveryStatus]]
) -> None:
    """Schedule ``status_changed`` for each transition, after the transaction commits."""
    for channel, old, new in transitions:
        transaction.on_commit(
            functools.partial(
                signals.status_changed.send_robust,
                Message,
                message=message,
                channel=channel,
                old_status=old,
                new_status=new,
            )
        )


def _all_final(rows: Iterable[ChannelStatus]) -> bool:
    return all(DeliveryStatus(row.status).is_final for row in rows)


# -- status sync -----------------------------------------------------------------------

#: How long a sync's claim on a message lasts; a sync that dies frees it after this.
SYNC_LEASE = dt.timedelta(minutes=5)
#: How long a send's claim lasts (issue-level recovery of dead workers uses it).
SEND_LEASE = dt.timedelta(minutes=5)
#: Polling stops this long after a message's lifetime ran out without a final status.
POLL_GRACE = dt.timedelta(hours=6)
#: The longest lifetime SMS-fly allows, assumed when a message did not set one.
MAX_TTL = dt.timedelta(minutes=1440)

# (age below which, delay between checks): young messages change fast, old ones rarely.
_CHECK_SCHEDULE: tuple[tuple[dt.timedelta, dt.timedelta], ...] = (
    (dt.timedelta(minutes=2), dt.timedelta(seconds=10)),
    (dt.timedelta(minutes=10), dt.timedelta(seconds=30)),
    (dt.timedelta(hours=1), dt.timedelta(minutes=2)),
    (dt.timedelta(hours=6), dt.timedelta(minutes=10)),
)
_CHECK_SLOWEST = dt.timedelta(minutes=30)


def next_check_delay(age: dt.timedelta) -> dt.timedelta:
    """How long to wait before asking again about a message sent ``age`` ago."""
    for below, delay in _CHECK_SCHEDULE:
        if age < below:
            return delay
    return _CHECK_SLOWEST


@dataclass
class SyncReport:
    """What one :func:`sync_statuses` run did."""

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

    def add(self, other: SyncReport) -> None:
        """Add another report's counts to this one."""
        for name in ("checked", "changed", "final", "timed_out", "errors", "sent"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for code, count in other.error_codes.items():
            self.error_codes[code] = self.error_codes.get(code, 0) + count


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
    and written back in a few bulk queries. With ``message_pks`` only those messages
    are checked, due or not. ``progress`` is called with the running report after each
    batch.
    """
    conf = smsfly_settings
    batch_size = batch_size or conf.SYNC_BATCH_SIZE
    concurrency = concurrency or conf.SYNC_CONCURRENCY
    limiter = RateLimiter(conf.SYNC_RATE_LIMIT if rate_limit is None else rate_limit)
    client = get_client()
    report = SyncReport()
    wanted = list(message_pks) if message_pks is not None else None
    claimed = 0
    exhausted = False

    def claim_next() -> list[Message]:
        nonlocal claimed, exhausted, wanted
        size = batch_size if limit is None else min(batch_size, limit - claimed)
        if exhausted or size <= 0:
            return []
        if wanted is not None:
            chunk, wanted = wanted[:size], wanted[size:]
            batch = _claim(chunk_pks=chunk, size=size) if chunk else []
            exhausted = not wanted
        else:
            batch = _claim(chunk_pks=None, size=size)
            exhausted = len(batch) < size  # fewer due than asked for: none are left
        claimed += len(batch)
        return batch

    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="smsfly-sync") as pool:

        def submit(batch: list[Message]) -> list[Future[_Poll]]:
            return [pool.submit(_poll, client, limiter, message) for message in batch]

        # Two batches in flight: while this thread waits for one batch's replies and
        # writes them, the pool already polls the next, so the database work and the
        # network wait overlap instead of adding up.
        batch = claim_next()
        polls = submit(batch)
        while batch:
            next_batch = claim_next()
            next_polls = submit(next_batch)
            report.add(_apply_batch(batch, [future.result() for future in polls]))
            if progress is not None:
                progress(report)
            batch, polls = next_batch, next_polls
    return report


def _claim(*, chunk_pks: list[int] | None, size: int) -> list[Message]:
    """Claim up to ``size`` due messages (or the given ones) for this sync.

    Claiming stamps a token and pushes ``next_check_at`` a lease ahead, so a sync that
    dies frees its messages after the lease. Where the database can (PostgreSQL,
    MySQL, MariaDB, Oracle), due rows are locked with ``SELECT ... FOR UPDATE SKIP
    LOCKED``: a second sync skips the rows the first is claiming instead of waiting
    for them. SQLite serializes writers, and there the claim is a conditional UPDATE
    (only rows still due are taken) followed by reading back the rows with the token.
    """
    now = timezone.now()
    token = uuid.uuid4().hex
    if chunk_pks is None:
        candidates = Message.objects.due_for_sync(now).order_by("next_check_at")
    else:
        candidates = Message.objects.filter(
            pk__in=chunk_pks, state=Message.State.ACCEPTED, message_id__isnull=False
        ).order_by("pk")
    claim = {"claim_token": token, "next_check_at": now + SYNC_LEASE}
    if connection.features.has_select_for_update_skip_locked:
        with transaction.atomic():
            batch = list(candidates.select_for_update(skip_locked=True, of=("self",))[:size])
            if batch:
                Message.objects.filter(pk__in=[m.pk for m in batch]).update(**claim)
    else:
        with transaction.atomic():
            pks = list(candidates.values_list("pk", flat=True)[:size])
            claimable = Message.objects.filter(pk__in=pks)
            if chunk_pks is None:
                claimable = claimable.filter(next_check_at__lte=now)
            claimed = claimable.update(**claim) if pks else 0
        batch = list(Message.objects.filter(claim_token=token)) if claimed else []
    for message in batch:
        message.claim_token = token
    prefetch_related_objects(batch, "channel_statuses")
    return batch


@dataclass(frozen=True)
class _Poll:
    result: StatusResult | None = None
    error: SmsFlyError | None = None


def _poll(client: SmsFlyClient, limiter: RateLimiter, message: Message) -> _Poll:
    limiter.acquire()
    try:
        return _Poll(result=client.get_message_status(message.message_id or ""))
    except SmsFlyError as exc:
        return _Poll(error=exc)


def _apply_batch(batch: list[Message], polls: list[_Poll]) -> SyncReport:
    """Store a batch's replies in bulk and schedule signals for after the commit."""
    now = timezone.now()
    report = SyncReport(checked=len(batch))
    channel_rows: list[ChannelStatus] = []
    changes: list[StatusChange] = []
    signalled: list[tuple[Message, list[tuple[Channel, DeliveryStatus, DeliveryStatus]]]] = []
    for message, poll in zip(batch, polls, strict=True):
        message.claim_token = ""
        message.last_checked_at = now
        age = now - (message.sent_at or message.created_at)
        if poll.error is not None:
            report.errors += 1
            code = poll.error.error_code
            report.error_codes[code] = report.error_codes.get(code, 0) + 1
            retry_after = getattr(poll.error, "retry_after", None)
            delay = max(next_check_delay(age), dt.timedelta(seconds=retry_after or 0))
            message.next_check_at = now + delay
            message.error_code = _db_text(code, 64)
            message.error_text = _db_text(str(poll.error))
            _maybe_time_out(message, now, report)
            continue
        assert poll.result is not None  # noqa: S101 - _poll returns one or the other
        transitions = _merge_channels(message, poll.result, now, channel_rows, changes)
        rows = list(message.channel_statuses.all())
        old_overall = message.delivery_status
        new_overall, via = overall([(r.channel, DeliveryStatus(r.status)) for r in rows])
        # The message's own status is derived from its channels; their history
        # rows record every step, so the derived one needs none of its own.
        if new_overall is not old_overall:
            message.status = new_overall.value
        message.delivered_via = via or ""
        message.error_code = ""
        message.error_text = ""
        if transitions or new_overall is not old_overall:
            report.changed += 1
            signalled.append((message, transitions))
        if _all_final(rows):
            message.next_check_at = None
            report.final += 1
        else:
            message.next_check_at = now + next_check_delay(age)
            _maybe_time_out(message, now, report)
    _write_batch(batch, channel_rows, changes, now)
    # Signals go out after the commit, in the order the messages were claimed.
    for message, transitions in signalled:
        _signal_transitions(message, transitions)
    for message in batch:
        # Prefetching links each message and its channel rows both ways; break the
        # cycle so a finished batch is freed at once, not at the next full collection
        # (that keeps a long sync's memory flat).
        message._prefetched_objects_cache = {}  # type: ignore[attr-defined]
    return report


def _write_batch(
    batch: list[Message],
    channel_rows: list[ChannelStatus],
    changes: list[StatusChange],
    now: dt.datetime,
) -> None:
    """Write a polled batch in a few statements.

    Rows that end up with the same values are updated together (one ``UPDATE ...
    WHERE id IN (...)`` per distinct set of values; in a batch most messages share
    them), which is far cheaper for Django to build than a ``bulk_update`` CASE per
    row and field.
    """
    channel_groups: dict[tuple[str, str], list[int]] = {}
    for row in channel_rows:
        channel_groups.setdefault((row.status, row.raw_status), []).append(row.pk)
    with_dates = {(c.message_id, c.channel) for c in changes if c.status_date is not None}
    dated = [row.pk for row in channel_rows if (row.message_id, row.channel) in with_dates]
    message_groups: dict[tuple[Any, ...], list[int]] = {}
    for message in batch:
        key = (
            message.status,
            message.delivered_via,
            message.error_code,
            message.error_text,
            message.next_check_at,
        )
        message_groups.setdefault(key, []).append(message.pk)
    with transaction.atomic():
        for (status, raw_status), pks in channel_groups.items():
            ChannelStatus.objects.filter(pk__in=pks).update(
                status=status, raw_status=raw_status, updated_at=now
            )
        if changes:
            StatusChange.objects.bulk_create(changes)
        if dated:
            # Each changed channel's date is on the history row just written: copy it
            # over in one statement instead of a per-row CASE.
            latest = StatusChange.objects.filter(
                message=OuterRef("message"), channel=OuterRef("channel")
            ).order_by("-pk")
            ChannelStatus.objects.filter(pk__in=dated).update(
                status_date=Subquery(latest.values("status_date")[:1])
            )
        for (status, via, code, text, next_check_at), pks in message_groups.items():
            Message.objects.filter(pk__in=pks).update(
                status=status,
                delivered_via=via,
                error_code=code,
                error_text=text,
                next_check_at=next_check_at,
                claim_token="",
                last_checked_at=now,
                updated_at=now,
            )


def _merge_channels(
    message: Message,
    result: StatusResult,
    now: dt.datetime,
    channel_rows: list[ChannelStatus],
    changes: list[StatusChange],
) -> list[tuple[Channel, DeliveryStatus, DeliveryStatus]]:
    """Move each channel forward by the reply; collect rows to write and transitions."""
    transitions = []
    message.updated_at = now
    for row in message.channel_statuses.all():
        reported = result.get(row.channel)
        if reported is None:
            continue
        old = DeliveryStatus(row.status)
        new = advance(old, DeliveryStatus.from_raw(reported.status))
        raw = _db_text(reported.raw_status, 32)
        raw_changed = raw != row.raw_status
        if new is old and not raw_changed:
            continue
        row.raw_status = raw
        row.updated_at = now
        if new is not old:
            row.status = new.value
            row.status_date = reported.date or row.status_date
            changes.append(
                _change(
                    message,
                    Channel(row.channel),
                    old=old,
                    new=new,
                    raw=row.raw_status,
                    reported=reported,
                )
            )
            transitions.append((Channel(row.channel), old, new))
        channel_rows.append(row)
    return transitions


def _maybe_time_out(message: Message, now: dt.datetime, report: SyncReport) -> None:
    """Stop polling a message whose lifetime ran out long ago, and say so on it."""
    ttl = max(
        (dt.timedelta(minutes=block.get("ttl") or 1440) for block in message.content.values()),
        default=MAX_TTL,
    )
    deadline = (message.sent_at or message.created_at) + ttl + POLL_GRACE
    if now >= deadline:
        message.next_check_at = None
        message.error_code = "STATUS_TIMEOUT"
        message.error_text = (
            f"No final status {POLL_GRACE} after the message's lifetime ({ttl}) ended; "
            "polling stopped."
        )
        report.timed_out += 1


# -- prices, estimates, retention --------------------------------------------------------

#: How long a price list is cached (prices change rarely; a stale estimate is harmless).
PRICE_CACHE_SECONDS = 3600


def get_price_list(mcc: str = "255") -> PriceList:
    """The price list of one country (GETPRICELIST), cached for an hour in Django's cache."""
    key = f"django_smsfly:pricelist:{mcc}"
    cached = cache.get(key)
    if isinstance(cached, PriceList):
        return cached
    prices = get_client().get_price_list(mcc)
    cache.set(key, prices, PRICE_CACHE_SECONDS)
    return prices


def estimate_cost(
    recipient: object,
    *,
    channels: Iterable[Channel | str] | str,
    sms: SmsContent | Mapping[str, Any] | None = None,
    viber: ViberContent | Mapping[str, Any] | None = None,
) -> CostEstimate:
    """Validate a message and estimate what it will cost, without sending anything.

    Raises :class:`~django_smsfly.exceptions.SmsFlyValidationError` for invalid input,
    and an :class:`~django_smsfly.exceptions.SmsFlyError` if the price list cannot be had.
    """
    prepared = get_client().prepare(recipient, channels=channels, sms=sms, viber=viber)
    mcc, _mnc = network_of(prepared.recipient)
    prices = get_price_list(mcc) if mcc else PriceList()
    sms_block = prepared.data.get("sms")
    return estimate(
        prices,
        prepared.recipient,
        prepared.channels,
        sms_text=sms_block["text"] if sms_block else None,
    )


def delete_old_messages(older_than: dt.timedelta, *, batch_size: int = 1000) -> int:
    """Delete messages created more than ``older_than`` ago whose story is over.

    Messages still queued, being sent or waiting for a status are kept whatever their
    age. Deletes in batches (their channel statuses and history go with them) and
    returns how many messages were deleted.
    """
    finished = _old_messages(older_than)
    deleted = 0
    while True:
        pks = list(finished.order_by("pk").values_list("pk", flat=True)[:batch_size])
        if not pks:
            return deleted
        with transaction.atomic():
            Message.objects.filter(pk__in=pks).delete()
        deleted += len(pks)


def count_old_messages(older_than: dt.timedelta) -> int:
    """How many messages :func:`delete_old_messages` would delete now."""
    return _old_messages(older_than).count()


def _old_messages(older_than: dt.timedelta) -> MessageQuerySet:
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


# -- sending what is queued --------------------------------------------------------------

#: How long a message queued for its first send is left to whoever queued it (usually a
#: task on its way) before :func:`send_due` sends it itself.
QUEUED_GRACE = dt.timedelta(minutes=1)


def send_due(limit: int | None = None, *, rate_limit: float | None = None) -> int:
    """Send the queued messages whose time has come; returns how many were attempted.

    Due are messages refused earlier for a passing reason whose ``retry_at`` has come,
    and messages queued for their first send more than :data:`QUEUED_GRACE` ago: their
    task was lost or no worker ran it, and nothing queued may be left behind. Each goes
    through :func:`dispatch`, which claims it atomically, so this may run beside task
    workers (or twice at once) without sending anything twice. At most ``rate_limit``
    sends per second (default ``SYNC_RATE_LIMIT``); the outcome of each is on its row.
    """
    now = timezone.now()
    due = (
        Message.objects.filter(state=Message.State.QUEUED)
        .filter(
            Q(retry_at__lte=now)
            | Q(retry_at__isnull=True, attempts__gt=0)
            | Q(retry_at__isnull=True, created_at__lte=now - QUEUED_GRACE)
        )
        .order_by("created_at", "pk")
        .values_list("pk", "attempts")
    )
    candidates = list(due if limit is None else due[:limit])
    limiter = RateLimiter(smsfly_settings.SYNC_RATE_LIMIT if rate_limit is None else rate_limit)
    attempted = 0
    for pk, attempts in candidates:
        limiter.acquire()
        # dispatch() returns the row untouched when another worker claimed it first;
        # only a raised attempt count says this call sent it.
        if dispatch(pk).attempts > attempts:
            attempted += 1
    return attempted
