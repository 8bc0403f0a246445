"""Outcomes: what a send's reply (or failure) makes of its message.

Each outcome is written compare-and-set on the claim token the sending worker holds
(``... WHERE state = 'sending' AND claim_token = <mine>``), with its channel rows,
history and signal in the same transaction, and through
:func:`~django_smsfly.delivery.records.store_outcome`, which survives a lost database
connection. A worker that lost its claim (it outlived its lease and was given up as
``WORKER_LOST``) still stores the truth it brings, without a second outcome signal.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django.db import DataError, IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from django_smsfly import signals
from django_smsfly.conf import smsfly_settings
from django_smsfly.delivery import records, schedule
from django_smsfly.delivery.records import Transition
from django_smsfly.exceptions import SmsFlyBadReply, SmsFlyError, SmsFlyRateLimited, Verdict
from django_smsfly.models import ChannelStatus, Message, OptOut, StatusChange
from django_smsfly.results import SendResult
from django_smsfly.statuses import DeliveryStatus, advance, overall

logger = logging.getLogger("django_smsfly")

#: The longest a message refused with HTTP 429 waits before it is tried again (seconds).
RATE_LIMITED_MAX_DELAY = 300.0


class SensitiveNotKept(SmsFlyError):
    """A sensitive message cannot be sent later: its text was never stored."""

    default_code = "SENSITIVE_NOT_KEPT"
    verdict = Verdict.NOT_SENT

    def __init__(self, message: str | None = None) -> None:
        super().__init__(
            message
            or _(
                "A sensitive message is sent at once or not at all: its text was not kept "
                "for a later try."
            )
        )


class UnstorableReply(SmsFlyBadReply):
    """SMS-fly's reply holds a value the database cannot store (an unusable message id)."""

    default_code = records.UNSTORABLE_REPLY


def accepted_rows(
    message: Message, result: SendResult | None
) -> tuple[list[ChannelStatus], list[StatusChange], list[Transition]]:
    """The channel rows, history and transitions of a message SMS-fly accepted.

    ``result`` is the reply's channels' first statuses; without one (an id attached by
    an operator) every channel starts ``accepted``.
    """
    rows: list[ChannelStatus] = []
    changes: list[StatusChange] = []
    transitions: list[Transition] = []
    for position, channel in enumerate(message.channel_list):
        reported = result.get(channel) if result is not None else None
        new = DeliveryStatus.ACCEPTED
        if reported is not None:
            new = advance(DeliveryStatus.QUEUED, DeliveryStatus.from_raw(reported.status))
            if new is DeliveryStatus.QUEUED:  # an unknown raw status: SMS-fly has it anyway
                new = DeliveryStatus.ACCEPTED
        rows.append(
            ChannelStatus(
                message=message,
                channel=channel.value,
                position=position,
                status=new.value,
                raw_status=records.db_text(reported.raw_status if reported else "", 32),
                status_date=reported.date if reported else None,
                cost=records.storable_cost(reported.cost) if reported else None,
                label=records.db_text(reported.label or "", 32) if reported else "",
            )
        )
        changes.append(
            records.channel_history(message, channel, DeliveryStatus.QUEUED, new, reported)
        )
        transitions.append((channel, DeliveryStatus.QUEUED, new))
    return rows, changes, transitions


def _acceptance_fields(
    message: Message, message_id: str, cost: object, rows: list[ChannelStatus]
) -> dict[str, Any]:
    """The message's columns once accepted (its overall status from its channels)."""
    now = timezone.now()
    status, via = overall([(row.channel, DeliveryStatus(row.status)) for row in rows])
    return {
        "state": Message.State.ACCEPTED,
        "message_id": message_id,
        "sent_at": now,
        "cost": cost,
        "status": status.value,
        "delivered_via": via or "",
        "error_code": "",
        "error_text": "",
        "claim_token": "",
        "lease_until": None,
        "retry_at": None,
        "next_check_at": None if records.all_final(rows) else schedule.first_check(now),
        "updated_at": now,
    }


def record_acceptance(message: Message, result: SendResult) -> None:
    """Store that SMS-fly accepted the message (guarded by the claim), then signal.

    A reply whose values the database cannot hold (a blank, overlong or duplicate
    message id) is stored as an unknown outcome with the reason: SMS-fly has the
    message, but this app cannot follow it.
    """
    problem = records.message_id_problem(result.message_id)
    if problem is not None:
        _record_unstorable(message, result.message_id, problem)
        return
    token = message.claim_token
    rows, changes, transitions = accepted_rows(message, result)
    fields = _acceptance_fields(
        message, result.message_id, records.storable_cost(result.cost), rows
    )
    changes.append(
        records.history(message, None, message.delivery_status, DeliveryStatus(fields["status"]))
    )

    def write() -> None:
        with transaction.atomic():
            if records.update_claimed(message.pk, token, fields):
                signal: object = signals.message_sent
            elif _settle_worker_lost(message, fields):
                signal = None  # message_failed went out when the worker was given up
            else:
                _report_lost_claim(message, f"accepted as {result.message_id!r}")
                return
            ChannelStatus.objects.bulk_create(rows)
            records.insert_rows(changes)
            _apply(message, fields)
            if signal is not None:
                records.on_commit_signal(signal, message)
            records.signal_transitions(message, transitions)

    try:
        records.store_outcome(
            write, message_pk=message.pk, outcome=f"accepted as message id {result.message_id!r}"
        )
    except IntegrityError:
        problem = records.duplicate_id_problem(result.message_id, message.pk)
        _record_unstorable(message, result.message_id, problem)
    except DataError as exc:
        _record_unstorable(message, result.message_id, " ".join(str(exc).split())[:200])


def _settle_worker_lost(message: Message, fields: dict[str, Any]) -> bool:
    """Store a late outcome over a message already given up as ``WORKER_LOST``.

    Its worker was slower than its lease, not dead: the truth it brings is stored, but
    no second outcome signal is sent (``message_failed`` already was).
    """
    settled = Message.objects.filter(
        pk=message.pk,
        state=Message.State.UNKNOWN,
        error_code=records.WORKER_LOST,
        message_id__isnull=True,
    ).update(**fields)
    if settled:
        logger.warning(
            "Message %s: its worker outlived its lease (SEND_LEASE); the late outcome "
            "(%s) is stored.",
            message.pk,
            fields["state"],
        )
    return bool(settled)


def _report_lost_claim(message: Message, outcome: str) -> None:
    current = Message.objects.filter(pk=message.pk).values("state", "message_id").first()
    if (
        current is not None
        and current["state"] == Message.State.ACCEPTED
        and (outcome == f"accepted as {current['message_id']!r}")
    ):
        return  # an earlier try of this very write committed after all
    logger.error(
        "Message %s: %s, but another worker changed the message meanwhile (now %s); "
        "this outcome was not stored.",
        message.pk,
        outcome,
        current["state"] if current else "deleted",
    )


def _record_unstorable(message: Message, message_id: str, problem: str) -> None:
    text = _(
        "SMS-fly accepted the message, but its reply cannot be stored (%(problem)s; "
        "message id %(id)s): its status cannot be followed."
    ) % {"problem": problem, "id": records.shown_id(message_id)}
    logger.error("Message %s: %s", message.pk, text)
    record_failure(message, UnstorableReply(text, action="SENDMESSAGE"))


def record_failure(message: Message, exc: BaseException) -> None:
    """Store that the send failed (guarded by the claim), then signal.

    Refused for a passing reason with nothing sent (HTTP 429, no connection): back to
    the queue with a retry time, no signal. Refused for good: ``failed``. The request
    may have arrived: ``unknown``, never resent automatically.
    """
    now = timezone.now()
    if isinstance(exc, SmsFlyError):
        code, text = exc.error_code, str(exc)
        not_sent = exc.verdict is Verdict.NOT_SENT
        transient = exc.transient
    else:
        code, text = "INTERNAL", f"{type(exc).__name__}: {exc}"
        not_sent = transient = False
    fields: dict[str, Any] = {
        "error_code": records.db_text(code, 64),
        "error_text": records.db_text(text),
        "claim_token": "",
        "lease_until": None,
        "request_started_at": None,
        "updated_at": now,
    }
    rate_limited = isinstance(exc, SmsFlyRateLimited)
    if not message.sensitive and (
        rate_limited
        or (not_sent and transient and message.attempts < smsfly_settings.SEND_MAX_ATTEMPTS)
    ):
        # Nothing arrived: try again later (after the wait the server asked for). A 429
        # only asks to slow down, so it never fails a message.
        delay = getattr(exc, "retry_after", None) or retry_delay(message.attempts)
        if rate_limited:
            delay = min(delay, RATE_LIMITED_MAX_DELAY)
        fields.update(state=Message.State.QUEUED, retry_at=now + dt.timedelta(seconds=delay))
    else:
        fields.update(
            state=Message.State.FAILED if not_sent else Message.State.UNKNOWN, retry_at=None
        )
        if not_sent:  # refused: the delivery failed too. Unknown: the status says queued.
            fields["status"] = DeliveryStatus.FAILED.value
    late = {**fields, "state": Message.State.FAILED, "status": DeliveryStatus.FAILED.value}
    late["retry_at"] = None
    old = message.delivery_status
    token = message.claim_token

    def write() -> None:
        with transaction.atomic():
            if records.update_claimed(message.pk, token, fields):
                signal: object = signals.message_failed
            elif not_sent and _settle_worker_lost(message, late):
                # Given up as possibly sent, but SMS-fly refused it: it failed.
                fields.update(late)
                signal = None
            else:
                _report_lost_claim(message, f"failed ({code})")
                return
            new = DeliveryStatus(fields.get("status", old.value))
            if new is not old:
                records.insert_rows([records.history(message, None, old, new, raw=code)])
            _apply(message, fields)
            if signal is not None and fields["state"] != Message.State.QUEUED:
                records.on_commit_signal(signal, message, error=exc)

    records.store_outcome(write, message_pk=message.pk, outcome=f"{fields['state']} ({code})")
    if code == STOP_LIST_CODE:
        add_stop_listed(message.recipient)


#: SMS-fly's error for a number on the account's stop list.
STOP_LIST_CODE = "ERRPHONES"


def add_stop_listed(recipient: str) -> None:
    """Put a number SMS-fly refused as stop-listed (``ERRPHONES``) on the opt-out list,
    so no further message is spent on it. Never raises for a database hiccup: the
    message's outcome is already stored, and the next refusal adds it again."""
    try:
        OptOut.objects.get_or_create(
            recipient=recipient,
            defaults={
                "source": OptOut.Source.ERRPHONES,
                "note": _("SMS-fly refused a message: the number is on its stop list."),
            },
        )
    except (IntegrityError, DataError):  # added by another worker meanwhile
        pass
    except Exception:
        logger.exception("Could not add a stop-listed number to the opt-out list.")


def _apply(message: Message, fields: dict[str, Any]) -> None:
    """Copy what was written onto the caller's instance."""
    for name, value in fields.items():
        setattr(message, name, value)


def retry_delay(attempts: int) -> float:
    """Seconds before sending again after the ``attempts``-th refusal: 30 s, 1, 2, 4... min."""
    return float(min(30 * 2 ** max(attempts - 1, 0), 3600))
