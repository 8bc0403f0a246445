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
import logging
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
from django.views.decorators.debug import sensitive_variables

from django_smsfly import signals, taskcompat
from django_smsfly.backends.base import BaseBackend
from django_smsfly.channels import Channel
from django_smsfly.client import APP_VERSION, MAX_RETRY_AFTER, PreparedMessage, SmsFlyClient
from django_smsfly.conf import smsfly_settings
from django_smsfly.exceptions import (
    SmsFlyError,
    SmsFlyRateLimited,
    SmsFlyValidationError,
    SmsFlyWorkerLost,
    Verdict,
)
from django_smsfly.models import ChannelStatus, Message, MessageQuerySet, StatusChange
from django_smsfly.pricing import CostEstimate, estimate, network_of
from django_smsfly.ratelimit import RateLimiter, SharedRateLimiter, get_rate_limiter
from django_smsfly.results import ChannelResult, PriceList, SendResult, StatusResult
from django_smsfly.statuses import DeliveryStatus, advance, overall
from django_smsfly.validation import SmsContent, ViberContent, sms_fallback

logger = logging.getLogger("django_smsfly")

#: The key the sandbox accepts when no API_KEY is set: it never leaves the process. It is
#: scrubbed from error texts like a real key, so it must not be a word they contain.
SANDBOX_KEY = "sandbox-key-not-secret"

_client_lock = threading.Lock()
_client: SmsFlyClient | None = None


@sensitive_variables("api_key")
def build_client(
    *, timeout: tuple[float, float] | None = None, max_retries: int | None = None
) -> SmsFlyClient:
    """A new client configured from ``settings.SMSFLY`` (see :func:`get_client`).

    ``timeout`` and ``max_retries`` override the settings (see :func:`get_lookup_client`).
    """
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
            timeout=conf.TIMEOUT if timeout is None else timeout,
            user_agent=APP_VERSION,
            max_retries=conf.MAX_RETRIES if max_retries is None else max_retries,
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


#: The most a lookup made while a page renders may wait: (connect, read) seconds.
LOOKUP_TIMEOUT = (2.0, 5.0)
_lookup_client: SmsFlyClient | None = None


def get_lookup_client() -> SmsFlyClient:
    """A client for lookups a page waits on (balances, sender names in the admin).

    Same settings as :func:`get_client`, but it gives up quickly and never retries: a
    page should say "SMS-fly could not be reached" in seconds, not hang while SMS-fly
    does. Only read-only actions belong here.
    """
    global _lookup_client  # noqa: PLW0603
    with _client_lock:
        if _lookup_client is None:
            connect, read = smsfly_settings.TIMEOUT
            _lookup_client = build_client(
                timeout=(min(connect, LOOKUP_TIMEOUT[0]), min(read, LOOKUP_TIMEOUT[1])),
                max_retries=0,
            )
        return _lookup_client


def reset_client() -> None:
    """Close and forget the shared clients; the next use builds new ones."""
    global _client, _lookup_client  # noqa: PLW0603
    with _client_lock:
        for shared in (_client, _lookup_client):
            if shared is not None:
                shared.close()
        _client = _lookup_client = None


@receiver(setting_changed)
def _reset_on_change(*, setting: str, **kwargs: Any) -> None:
    if setting == "SMSFLY":
        reset_client()


def get_balance() -> Decimal:
    """The account balance (GETBALANCE)."""
    return get_client().get_balance()


def get_balances(*, quick: bool = False) -> dict[str, Decimal]:
    """The SMS and Viber balances: ``{"sms": Decimal(...), "viber": Decimal(...)}``.

    ``quick=True`` asks through :func:`get_lookup_client` (short timeout, no retry).
    """
    client = get_lookup_client() if quick else get_client()
    return client.get_balance_ext().as_dict()


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
    defer: bool = False,
) -> Message:
    """Send an SMS and return its :class:`~django_smsfly.models.Message`.

    Invalid input raises :class:`~django_smsfly.exceptions.SmsFlyValidationError`
    before anything is written or sent. Failures of the send itself do not raise:
    they are recorded on the returned message (``state``, ``error_code``,
    ``error_text``). With ``defer=True`` the message is written ``queued`` and a
    background task sends it (see :func:`send_message`).
    """
    return send_message(
        recipient,
        channels=[Channel.SMS],
        sms=SmsContent(text=text, source=source, ttl=ttl, flash=flash),
        idempotency_key=idempotency_key,
        metadata=metadata,
        created_by=created_by,
        defer=defer,
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
    defer: bool = False,
) -> Message:
    """Send a Viber message; ``sms_text`` adds an SMS sent if Viber fails.

    Behaves as :func:`send_sms` for errors, ``defer`` and the returned message.
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
        defer=defer,
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
    defer: bool = False,
) -> Message:
    """Send a message over ``channels`` in fallback order and return its record.

    With an ``idempotency_key`` already used, the existing message is returned and
    nothing is sent. ``metadata`` is stored as given (JSON) for your own references.

    With ``defer=True`` the message is validated and written ``queued``, and a task
    that sends it is enqueued on ``SMSFLY["TASK_BACKEND"]`` once the surrounding
    transaction commits (at once outside one). With the frameworks' default immediate
    backend the task runs right then, and the returned message shows its outcome;
    with a worker-based engine it comes back ``queued``.
    """
    if defer:
        taskcompat.get_backend(smsfly_settings.TASK_BACKEND)  # fail before writing
    else:
        _send_limiter().acquire()
    message, created = _write_message(
        recipient,
        channels=channels,
        sms=sms,
        viber=viber,
        idempotency_key=idempotency_key,
        metadata=metadata,
        created_by=created_by,
        sending=not defer,
    )
    if created and defer:
        enqueue_send([message.pk])
        if not transaction.get_connection().in_atomic_block:
            message.refresh_from_db()  # an immediate backend may have sent it already
    elif created:
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
                _("must be a non-empty string of at most 255 characters"),
                field="idempotency_key",
            )
        existing = Message.objects.filter(idempotency_key=idempotency_key).first()
        if existing is not None:
            return existing, False
    if metadata is not None and not isinstance(metadata, Mapping):
        raise SmsFlyValidationError(_("must be a dict"), field="metadata")
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
        # Born claimed, and the request leaves right after the INSERT: should this
        # process die in between, the message counts as possibly sent (never resent).
        message.state = Message.State.SENDING
        message.attempts = 1
        message.claim_token = uuid.uuid4().hex
        message.lease_until = now + _send_lease()
        message.request_started_at = now
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


def dispatch(message_pk: int, *, rate_limit: float | None = None) -> Message:
    """Send one queued message, if this caller is the one that claims it.

    Returns the message as stored afterwards. A message that is not queued (already
    sent, being sent by another worker, failed or unknown) is returned untouched, so
    calling this twice, or from two workers at once, sends at most once. The request
    waits for a slot of the one send limiter, at ``rate_limit`` sends per second
    (default ``SEND_RATE_LIMIT``).
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
            lease_until=now + _send_lease(),
            updated_at=now,
        )
    )
    message = Message.objects.get(pk=message_pk)
    if claimed and _start_request(message, token, rate_limit):
        _send(message)
    return message


def _start_request(message: Message, token: str, rate_limit: float | None = None) -> bool:
    """Wait for a send slot, then mark the request as leaving; False if the claim was lost.

    The mark is committed before the request is made, so a worker that dies with the
    message claimed leaves the answer behind: no mark, nothing left (queue it again);
    a mark, the request may have arrived (unknown). Marking only while the claim is
    still this worker's means a worker that stalled past its lease, whose message was
    recovered and handed to another, sends nothing.
    """
    _send_limiter(rate_limit).acquire()
    now = timezone.now()
    marked = Message.objects.filter(
        pk=message.pk, state=Message.State.SENDING, claim_token=token
    ).update(request_started_at=now, lease_until=now + _send_lease(), updated_at=now)
    if not marked:
        logger.warning(
            "Message %s: claim lost before sending; not sent by this worker.", message.pk
        )
        message.refresh_from_db()
        return False
    message.request_started_at = now
    return True


def dispatch_many(message_pks: Iterable[int]) -> dict[str, int]:
    """:func:`dispatch` each message; returns how many ended in each state.

    Messages pushed back for a passing reason (HTTP 429, no connection) are enqueued
    again to run at their ``retry_at`` when the task backend can defer; otherwise
    ``smsfly_sync`` sends them when they are due.
    """
    counts: dict[str, int] = {}
    retry: dict[dt.datetime, list[int]] = {}
    for pk in message_pks:
        try:
            message = dispatch(pk)
        except Message.DoesNotExist:
            counts["missing"] = counts.get("missing", 0) + 1
            continue
        counts[message.state] = counts.get(message.state, 0) + 1
        if message.state == Message.State.QUEUED and message.retry_at is not None:
            retry.setdefault(message.retry_at, []).append(pk)
    alias = smsfly_settings.TASK_BACKEND
    if retry and taskcompat.AVAILABLE and taskcompat.supports_defer(alias):
        for run_after, pks in retry.items():
            enqueue_send(pks, run_after=run_after)
    return counts


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
    message.request_started_at = None
    # HTTP 429 says nothing was sent and only asks to slow down: the message always
    # goes back to the queue (never failed for it), after the wait the server asked for.
    rate_limited = isinstance(exc, SmsFlyRateLimited)
    if rate_limited or (
        not_sent and transient and message.attempts < smsfly_settings.SEND_MAX_ATTEMPTS
    ):
        # Nothing arrived; try again later (sooner if the server said when).
        delay = getattr(exc, "retry_after", None) or _retry_delay(message.attempts)
        if rate_limited:
            delay = min(delay, RATE_LIMITED_MAX_DELAY)
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


#: The longest a message refused with HTTP 429 waits before it is tried again (seconds).
RATE_LIMITED_MAX_DELAY = 300.0


def _send_limiter(rate: float | None = None) -> RateLimiter | SharedRateLimiter:
    """The limiter every send goes through (``SEND_RATE_LIMIT`` unless a caller gives
    its own rate; shared through the cache when configured)."""
    return get_rate_limiter("send", smsfly_settings.SEND_RATE_LIMIT if rate is None else rate)


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


def _send_lease() -> dt.timedelta:
    """How long a send's claim holds (``SEND_LEASE``); a dead worker's message waits that long."""
    return dt.timedelta(seconds=smsfly_settings.SEND_LEASE)


def _queued_grace() -> dt.timedelta:
    """How long a freshly queued message is left to its task (``QUEUED_GRACE``)."""
    return dt.timedelta(seconds=smsfly_settings.QUEUED_GRACE)


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
    limiter = get_rate_limiter("sync", conf.SYNC_RATE_LIMIT if rate_limit is None else rate_limit)
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


def _poll(
    client: SmsFlyClient, limiter: RateLimiter | SharedRateLimiter, message: Message
) -> _Poll:
    limiter.acquire()
    try:
        return _Poll(result=client.get_message_status(message.message_id or ""))
    except SmsFlyError as exc:
        return _Poll(error=exc)
    except Exception as exc:
        # A bug in one poll must not abort the batch and leave it claimed: record it on
        # that message (asked again later) and go on with the others.
        logger.exception("Status poll of message %s failed", message.pk)
        return _Poll(error=SmsFlyError(f"{type(exc).__name__}: {exc}"))


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
            wait = min(retry_after or 0, MAX_RETRY_AFTER)  # a server's absurd value is capped
            delay = max(next_check_delay(age), dt.timedelta(seconds=wait))
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
        message.error_text = _(
            "No final status %(grace)s after the message's lifetime (%(ttl)s) ended; "
            "polling stopped."
        ) % {"grace": POLL_GRACE, "ttl": ttl}
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


def send_due(limit: int | None = None, *, rate_limit: float | None = None) -> int:
    """Send the queued messages whose time has come; returns how many were attempted.

    Due are messages refused earlier for a passing reason whose ``retry_at`` has come,
    and messages queued for their first send more than ``QUEUED_GRACE`` ago: their
    task was lost or no worker ran it, and nothing queued may be left behind. Each goes
    through :func:`dispatch`, which claims it atomically, so this may run beside task
    workers (or twice at once) without sending anything twice. Sends are paced by the
    one send limiter only, at ``rate_limit`` per second (default ``SEND_RATE_LIMIT``);
    the outcome of each is on its row.
    """
    now = timezone.now()
    due = _due_to_send(now).order_by("created_at", "pk").values_list("pk", "attempts")
    candidates = list(due if limit is None else due[:limit])
    attempted = 0
    for pk, attempts in candidates:
        # dispatch() returns the row untouched when another worker claimed it first;
        # only a raised attempt count says this call sent it.
        if dispatch(pk, rate_limit=rate_limit).attempts > attempts:
            attempted += 1
    return attempted


def _due_to_send(now: dt.datetime) -> MessageQuerySet:
    """Queued messages nobody is about to send: their retry time came, or their task
    (if any) has had ``QUEUED_GRACE`` to run and did not."""
    return Message.objects.filter(state=Message.State.QUEUED).filter(
        Q(retry_at__lte=now)
        | Q(retry_at__isnull=True, attempts__gt=0)
        | Q(retry_at__isnull=True, created_at__lte=now - _queued_grace())
    )


# -- resending ---------------------------------------------------------------------------


def resend(message_pk: int, *, allow_unknown: bool = False, defer: bool = False) -> Message | None:
    """Send a message again that failed (or, with ``allow_unknown``, whose outcome is unknown).

    The same row goes back to ``queued`` — its history keeps the failure — and is sent
    (or, with ``defer``, handed to a task). Returns ``None`` when the message is not in
    a state that allows it: accepted, being sent, already queued again by someone else,
    or unknown without ``allow_unknown``. A message whose outcome is unknown may have
    reached the recipient: sending it again may deliver it twice, which is why that
    takes an explicit ``allow_unknown=True``.
    """
    states = [Message.State.FAILED]
    if allow_unknown:
        states.append(Message.State.UNKNOWN)
    if defer:
        taskcompat.get_backend(smsfly_settings.TASK_BACKEND)
    now = timezone.now()
    with transaction.atomic():
        message = (
            Message.objects.select_for_update().filter(pk=message_pk, state__in=states).first()
        )
        if message is None:
            return None
        old = message.delivery_status
        Message.objects.filter(pk=message.pk).update(
            state=Message.State.QUEUED,
            status=DeliveryStatus.QUEUED.value,
            retry_at=None,
            error_code="",
            error_text="",
            updated_at=now,
        )
        if old is not DeliveryStatus.QUEUED:
            StatusChange.objects.create(
                message=message,
                old_status=old.value,
                new_status=DeliveryStatus.QUEUED.value,
                raw_status="RESEND",
            )
    if defer:
        enqueue_send([message.pk])
        message.refresh_from_db()
        return message
    return dispatch(message.pk)


# -- background work ---------------------------------------------------------------------

#: Messages per send task when many are enqueued at once (smsfly_send --defer, --enqueue).
SEND_TASK_BATCH = 100


def enqueue_send(message_pks: list[int], *, run_after: dt.datetime | None = None) -> None:
    """Enqueue tasks that send these queued messages, once the transaction commits.

    If enqueuing fails (the broker is down, say), the messages stay ``queued`` and
    ``smsfly_sync`` sends them after ``QUEUED_GRACE``: nothing is lost.
    """
    from django_smsfly import tasks  # noqa: PLC0415 - tasks imports this module

    alias = smsfly_settings.TASK_BACKEND
    for start in range(0, len(message_pks), SEND_TASK_BATCH):
        chunk = list(message_pks[start : start + SEND_TASK_BATCH])
        transaction.on_commit(
            functools.partial(_enqueue_safely, tasks.send_messages, chunk, alias, run_after)
        )


def _enqueue_safely(
    task_obj: Any, argument: Any, alias: str, run_after: dt.datetime | None
) -> None:
    try:
        taskcompat.enqueue(task_obj, argument, alias=alias, run_after=run_after)
    except Exception:
        # The rows hold the truth: smsfly_sync will pick up what was not enqueued.
        logger.exception(
            "Could not enqueue %s on the task backend %r; smsfly_sync will take over.",
            getattr(task_obj, "name", task_obj),
            alias,
        )


@dataclass
class RecoveryReport:
    """What :func:`recover_stale_sends` did with messages whose sender vanished."""

    #: Claimed but never sent (no request had started): queued again.
    requeued: int = 0
    #: The request may have left: marked unknown, never resent automatically.
    unknown: int = 0


#: The error recorded on a message whose worker died while sending it.
WORKER_LOST = "WORKER_LOST"


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
        claimed = Message.objects.filter(
            pk=pk, state=Message.State.SENDING, claim_token=token, lease_until__lt=now
        )
        if started is None:
            # The mark is checked again in the UPDATE itself: the worker may have marked
            # its request since the list was read, and with its clock behind this one's
            # by more than the lease, its renewed lease would not protect it.
            if claimed.filter(request_started_at__isnull=True).update(
                state=Message.State.QUEUED,
                claim_token="",
                lease_until=None,
                retry_at=now,
                error_code=WORKER_LOST,
                error_text=_(
                    "The worker sending it stopped before the request left; it is sent again."
                ),
                updated_at=now,
            ):
                report.requeued += 1
            continue
        error = SmsFlyWorkerLost()
        with transaction.atomic():
            if not claimed.update(
                state=Message.State.UNKNOWN,
                claim_token="",
                lease_until=None,
                retry_at=None,
                error_code=WORKER_LOST,
                error_text=str(error),
                updated_at=now,
            ):
                continue
            message = Message.objects.get(pk=pk)
            transaction.on_commit(
                functools.partial(
                    signals.message_failed.send_robust, Message, message=message, error=error
                )
            )
        report.unknown += 1
    if report.requeued or report.unknown:
        logger.warning(
            "Recovered messages of vanished workers: %d queued again, %d unknown.",
            report.requeued,
            report.unknown,
        )
    return report


def enqueue_due(
    *, batch_size: int | None = None, limit: int | None = None, send: bool = True
) -> tuple[int, int]:
    """Fan the due work out to task workers: ``(messages to send, messages to poll)``.

    Queued messages that are due are enqueued in send tasks (each send claims its
    message, so enqueuing one twice is harmless). Messages due for a status check are
    claimed here in batches — the claim makes them this run's alone — and each batch is
    enqueued as one :func:`~django_smsfly.tasks.sync_claimed` task. A batch whose task
    is lost is freed when its claim's lease runs out and is claimed again later.
    """
    from django_smsfly import tasks  # noqa: PLC0415 - tasks imports this module

    alias = smsfly_settings.TASK_BACKEND
    taskcompat.get_backend(alias)
    batch_size = batch_size or smsfly_settings.SYNC_BATCH_SIZE
    now = timezone.now()
    to_send: list[int] = []
    if send:
        recover_stale_sends(now=now)
        due = _due_to_send(now).order_by("created_at", "pk").values_list("pk", flat=True)
        to_send = list(due if limit is None else due[:limit])
        enqueue_send(to_send)
    polled = 0
    while limit is None or polled < limit:
        size = batch_size if limit is None else min(batch_size, limit - polled)
        batch = _claim(chunk_pks=None, size=size)
        if not batch:
            break
        polled += len(batch)
        transaction.on_commit(
            functools.partial(
                _enqueue_safely, tasks.sync_claimed, batch[0].claim_token, alias, None
            )
        )
        if len(batch) < size:
            break
    return len(to_send), polled


def sync_claimed(claim_token: str, *, concurrency: int | None = None) -> SyncReport:
    """Poll the messages held by one claim (a batch from :func:`enqueue_due`)."""
    batch = list(
        Message.objects.filter(claim_token=claim_token, state=Message.State.ACCEPTED).order_by(
            "pk"
        )
    )
    if not batch:
        return SyncReport()
    prefetch_related_objects(batch, "channel_statuses")
    client = get_client()
    limiter = get_rate_limiter("sync", smsfly_settings.SYNC_RATE_LIMIT)
    workers = min(concurrency or smsfly_settings.SYNC_CONCURRENCY, len(batch))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="smsfly-sync") as pool:
        polls = list(pool.map(lambda m: _poll(client, limiter, m), batch))
    return _apply_batch(batch, polls)


def run_sync_pass(
    *,
    limit: int | None = None,
    batch_size: int | None = None,
    concurrency: int | None = None,
    rate_limit: float | None = None,
    progress: Callable[[SyncReport], None] | None = None,
) -> SyncReport:
    """One full pass of the work ``smsfly_sync`` does, in this process.

    Settles messages of vanished workers, sends the queued messages that are due, then
    polls the statuses that are due.
    """
    recover_stale_sends()
    sent = send_due(limit, rate_limit=rate_limit)
    report = sync_statuses(
        limit=limit,
        batch_size=batch_size,
        concurrency=concurrency,
        rate_limit=rate_limit,
        progress=progress,
    )
    report.sent = sent
    return report
