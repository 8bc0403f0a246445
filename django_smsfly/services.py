"""The app's public verbs for a Django site: send, resend, sync, account queries.

Thin on purpose: each verb checks what only it knows (``defer`` needs a task backend)
and hands the work to :mod:`django_smsfly.delivery`, the only code that writes
message rows, or to :mod:`django_smsfly.tasks`, which runs it in the background.

Sending never sends twice and never loses a message: the row is written before SMS-fly
is called; one conditional UPDATE lets exactly one caller move it from ``queued`` to
``sending``; and every outcome is stored — ``accepted`` with the message id,
``failed`` when SMS-fly refused (nothing spent), back to ``queued`` with a ``retry_at``
when the request certainly did not arrive (HTTP 429, no connection), and ``unknown``
when it may have arrived (timeout, HTTP 5xx, a broken reply), which is never re-sent
automatically.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypedDict

from django.core.cache import cache
from django.db import transaction
from django.utils.translation import gettext as _

from django_smsfly import taskcompat, templating
from django_smsfly.channels import Channel
from django_smsfly.clients import (
    LOOKUP_TIMEOUT,
    SANDBOX_KEY,
    build_client,
    get_client,
    get_lookup_client,
    reset_client,
)
from django_smsfly.conf import smsfly_settings
from django_smsfly.delivery import repair, sending
from django_smsfly.delivery.outcomes import RATE_LIMITED_MAX_DELAY
from django_smsfly.delivery.records import WORKER_LOST
from django_smsfly.delivery.repair import attach_message_id
from django_smsfly.delivery.retention import count_old_messages, delete_old_messages
from django_smsfly.delivery.schedule import next_check_delay
from django_smsfly.delivery.sending import Draft, dispatch
from django_smsfly.delivery.sweep import (
    RecoveryReport,
    recover_stale_sends,
    run_sync_pass,
    send_due,
)
from django_smsfly.delivery.syncing import SyncReport, sync_claimed, sync_statuses
from django_smsfly.exceptions import SmsFlyValidationError
from django_smsfly.models import Message
from django_smsfly.pricing import CostEstimate, estimate, network_of
from django_smsfly.results import PriceList
from django_smsfly.tasks import SEND_TASK_BATCH, enqueue_due, enqueue_send
from django_smsfly.validation import SmsContent, ViberContent, sms_fallback

if TYPE_CHECKING:  # pragma: no cover
    from typing_extensions import Unpack

__all__ = [
    "LOOKUP_TIMEOUT",
    "RATE_LIMITED_MAX_DELAY",
    "SANDBOX_KEY",
    "SEND_TASK_BATCH",
    "WORKER_LOST",
    "RecoveryReport",
    "SendOptions",
    "SyncReport",
    "attach_message_id",
    "build_client",
    "count_old_messages",
    "delete_old_messages",
    "dispatch",
    "dispatch_many",
    "enqueue_due",
    "enqueue_send",
    "estimate_cost",
    "get_balance",
    "get_balances",
    "get_client",
    "get_lookup_client",
    "get_price_list",
    "next_check_delay",
    "queue_message",
    "recover_stale_sends",
    "resend",
    "reset_client",
    "run_sync_pass",
    "send_due",
    "send_message",
    "send_sms",
    "send_template",
    "send_viber",
    "sync_claimed",
    "sync_statuses",
]


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


class SendOptions(TypedDict, total=False):
    """The options every ``send_*`` verb takes besides its content; each is described
    at :func:`send_message`, which :func:`send_sms` and :func:`send_viber` pass them to."""

    #: The same key never sends twice: the message it made is returned instead.
    idempotency_key: str | None
    #: Stored with the message as given (JSON), for your own references.
    metadata: Mapping[str, Any] | None
    #: The user the message is recorded as written by.
    created_by: Any
    #: Written ``queued`` and sent by a task once the transaction commits.
    defer: bool
    #: The text is kept out of every record, log line and page.
    sensitive: bool
    #: An aware datetime: nothing is sent before it.
    send_at: dt.datetime | None
    #: Sent even to a number on the opt-out list.
    ignore_opt_out: bool


def send_sms(
    recipient: object,
    text: str,
    *,
    source: str | None = None,
    ttl: int | None = None,
    flash: bool = False,
    **options: Unpack[SendOptions],
) -> Message:
    """Send an SMS and return its :class:`~django_smsfly.models.Message`.

    Invalid input raises :class:`~django_smsfly.exceptions.SmsFlyValidationError`
    before anything is written or sent. Failures of the send itself do not raise:
    they are recorded on the returned message (``state``, ``error_code``,
    ``error_text``). With ``defer=True`` the message is written ``queued`` and a
    background task sends it (see :func:`send_message`). With ``send_at`` (an aware
    datetime) nothing is sent before that time. A number on the opt-out list
    (:class:`~django_smsfly.models.OptOut`) gets nothing: the message is recorded
    ``failed`` with ``OPTED_OUT``, unless ``ignore_opt_out=True``. The other
    ``options`` are :class:`SendOptions`.
    """
    return send_message(
        recipient,
        channels=[Channel.SMS],
        sms=SmsContent(text=text, source=source, ttl=ttl, flash=flash),
        **options,
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
    **options: Unpack[SendOptions],
) -> Message:
    """Send a Viber message; ``sms_text`` adds an SMS sent if Viber fails.

    Behaves as :func:`send_sms` for errors, ``defer``, ``send_at``, ``ignore_opt_out``
    and the returned message; the other ``options`` are :class:`SendOptions`.
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
        **options,
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
    sensitive: bool = False,
    send_at: dt.datetime | None = None,
    ignore_opt_out: bool = False,
) -> Message:
    """Send a message over ``channels`` in fallback order and return its record.

    With an ``idempotency_key`` already used, the existing message is returned and
    nothing is sent. ``metadata`` is stored as given (JSON) for your own references.

    With ``defer=True`` the message is validated and written ``queued``, and a task
    that sends it is enqueued on ``SMSFLY["TASK_BACKEND"]`` once the surrounding
    transaction commits (at once outside one). With the frameworks' default immediate
    backend the task runs right then, and the returned message shows its outcome;
    with a worker-based engine it comes back ``queued``.

    With ``sensitive=True`` (a one-time code, a password) the text is kept out of every
    record: the message, its history, the admin, log lines and errors hold it masked
    (``Your code: ••••••``), and only the request to SMS-fly carries it. Such a message
    is sent at once (``defer=True`` is refused) and is never queued for a later try or
    sent again: a send that fails ends ``failed`` or ``unknown``.

    With ``send_at`` (an aware datetime in the future) the message is written
    ``queued`` and nothing is sent before that time: a task is enqueued to run then
    when the task backend can defer (``run_after``), and ``smsfly_sync`` (or its
    ``sync_due`` task) sends it once the time has come in any case.

    A number on the opt-out list is never sent to: the message is written ``failed``
    with ``error_code == "OPTED_OUT"``, no request is made and
    :data:`~django_smsfly.signals.message_failed` is sent. ``ignore_opt_out=True``
    (recorded on the message) sends anyway, for a message the recipient must get.
    """
    draft = Draft(
        recipient=recipient,
        channels=channels,
        sms=sms,
        viber=viber,
        idempotency_key=idempotency_key,
        metadata=metadata,
        created_by=created_by,
        sensitive=sensitive,
        send_at=send_at,
        ignore_opt_out=ignore_opt_out,
    )
    if sensitive and defer:
        raise SmsFlyValidationError(
            _("a sensitive message is sent at once: its text is not stored for a task"),
            field="defer",
        )
    if sending.is_scheduled(draft):
        return _schedule(draft)
    if not defer:
        return sending.send_now(draft)
    taskcompat.get_backend(smsfly_settings.TASK_BACKEND)  # fail before writing
    message, created = sending.write(draft)
    if created and message.state == Message.State.QUEUED:
        enqueue_send([message.pk])
        if not transaction.get_connection().in_atomic_block:
            message.refresh_from_db()  # an immediate backend may have sent it already
    return message


def send_template(
    name: str,
    recipient: object,
    context: Mapping[str, object],
    *,
    language: str | None = None,
    sms_source: str | None = None,
    viber_source: str | None = None,
    **send_options: Any,
) -> Message:
    """Send the :class:`~django_smsfly.models.MessageTemplate` called ``name``, rendered
    with ``context``, and return its message.

    The variant is the one for ``language`` (default: the active language), falling
    back from ``uk-ua`` to ``uk`` to the default variant (see
    :func:`django_smsfly.templating.find`). ``context`` holds plain values only (text,
    numbers, dates, true/false, None); a placeholder whose value is missing or empty
    raises :class:`~django_smsfly.templating.TemplateError` naming it, before anything
    is written or sent. ``sms_source`` and ``viber_source`` choose the sender names;
    every other option (``defer``, ``send_at``, ``idempotency_key``, ``metadata``,
    ``ignore_opt_out``, ``created_by``, ``sensitive``) is :func:`send_message`'s.
    """
    rendered = templating.render(templating.find(name, language), context)
    sms, viber = rendered.sms, rendered.viber
    if sms is not None and sms_source is not None:
        sms = dataclasses.replace(sms, source=sms_source)
    if viber is not None and viber_source is not None:
        viber = dataclasses.replace(viber, source=viber_source)
    return send_message(
        recipient, channels=rendered.channels, sms=sms, viber=viber, **send_options
    )


def _schedule(draft: Draft) -> Message:
    """Write a message to be sent at ``draft.send_at``; enqueue its task for then where
    the task backend can defer (else ``smsfly_sync`` sends it when it is due)."""
    message, created = sending.write(draft)
    alias = smsfly_settings.TASK_BACKEND
    if created and message.state == Message.State.QUEUED and taskcompat.supports_defer(alias):
        enqueue_send([message.pk], run_after=draft.send_at)
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
    send_at: dt.datetime | None = None,
    ignore_opt_out: bool = False,
    campaign_id: int | None = None,
) -> Message:
    """Validate a message and write it as ``queued`` without sending it.

    :func:`dispatch` (or ``smsfly_sync``) sends it later, not before ``send_at``. With
    an ``idempotency_key`` already used, the existing message is returned. To a number
    that opted out it is written ``failed`` (``OPTED_OUT``) unless ``ignore_opt_out``.
    """
    draft = Draft(
        recipient=recipient,
        channels=channels,
        sms=sms,
        viber=viber,
        idempotency_key=idempotency_key,
        metadata=metadata,
        created_by=created_by,
        send_at=send_at,
        ignore_opt_out=ignore_opt_out,
        campaign_id=campaign_id,
    )
    message, _created = sending.write(draft)
    return message


def dispatch_many(message_pks: Iterable[int]) -> dict[str, int]:
    """:func:`dispatch` each message here; returns how many ended in each state."""
    return sending.dispatch_many(message_pks).counts


def resend(message_pk: int, *, allow_unknown: bool = False, defer: bool = False) -> Message | None:
    """Send a message again that failed (or, with ``allow_unknown``, whose outcome is unknown).

    The same row goes back to ``queued`` — its history keeps the failure — and is sent
    (or, with ``defer``, handed to a task). Returns ``None`` when the message is not in
    a state that allows it: accepted, being sent, already queued again by someone else,
    or unknown without ``allow_unknown``. A message whose outcome is unknown may have
    reached the recipient: sending it again may deliver it twice, which is why that
    takes an explicit ``allow_unknown=True``.
    """
    if defer:
        taskcompat.get_backend(smsfly_settings.TASK_BACKEND)
    message = repair.requeue(message_pk, allow_unknown=allow_unknown)
    if message is None:
        return None
    if defer:
        enqueue_send([message.pk])
        message.refresh_from_db()
        return message
    return dispatch(message.pk)


# -- prices ------------------------------------------------------------------------------

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
