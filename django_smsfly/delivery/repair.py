"""What an operator does to a message that ended badly: send it again, or tell the app
the SMS-fly message id of one whose outcome is unknown.

Both are guarded transitions like every other: the UPDATE names the state it expects,
and only a row it changed gets its history and signals.
"""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from django_smsfly.delivery import records
from django_smsfly.delivery.outcomes import accepted_rows
from django_smsfly.exceptions import SmsFlyValidationError
from django_smsfly.models import ChannelStatus, Message, StatusChange
from django_smsfly.statuses import DeliveryStatus

#: What the history says of a message an operator sent again.
RESEND = "RESEND"
#: What the history says of a message whose id an operator attached.
ATTACHED = "ATTACHED"


def requeue(message_pk: int, *, allow_unknown: bool = False) -> Message | None:
    """Put a failed (or, with ``allow_unknown``, unknown) message back in the queue.

    The same row goes back to ``queued`` and its history keeps the failure. Returns
    ``None`` when the message is not in a state that allows it (accepted, being sent,
    already queued again by someone else, or unknown without ``allow_unknown``), or is
    sensitive (its text was not kept).
    """
    states = [Message.State.FAILED]
    if allow_unknown:
        states.append(Message.State.UNKNOWN)
    # A sensitive message kept only its masked text: sending it again would send that.
    message = Message.objects.filter(pk=message_pk, state__in=states, sensitive=False).first()
    if message is None:
        return None
    now = timezone.now()
    old = message.delivery_status
    with transaction.atomic():
        # Compare-and-set on the state read: a second operator's click finds it changed.
        if not Message.objects.filter(pk=message.pk, state=message.state).update(
            state=Message.State.QUEUED,
            status=DeliveryStatus.QUEUED.value,
            retry_at=None,
            error_code="",
            error_text="",
            updated_at=now,
        ):
            return None
        records.unsettle([message.campaign_id])
        if old is not DeliveryStatus.QUEUED:
            records.history(message, None, old, DeliveryStatus.QUEUED, raw=RESEND).save()
    message.refresh_from_db()
    return message


def attach_message_id(message_pk: int, message_id: str) -> Message:
    """Record the SMS-fly message id of a message whose outcome is unknown.

    For an operator who found the message in SMS-fly's cabinet (or in the ERROR log
    line of an outcome that could not be stored): the message becomes ``accepted``
    with that id and its status is polled from then on. Its channels start
    ``accepted`` and signal ``status_changed`` as they move; ``message_sent`` is not
    sent, since ``message_failed`` already went out when its outcome became unknown.

    Raises :class:`~django_smsfly.exceptions.SmsFlyValidationError` for an unusable id
    (blank, too long, another message's) or a message that is not unknown.
    """
    message_id = message_id.strip() if isinstance(message_id, str) else ""
    problem = records.message_id_problem(message_id)
    if problem is not None:
        raise SmsFlyValidationError(problem, field="message_id")
    message = Message.objects.filter(pk=message_pk).first()
    if message is None or message.state != Message.State.UNKNOWN or message.message_id:
        raise SmsFlyValidationError(
            _("Only a message whose outcome is unknown and that has no message id can get one."),
            field="message_id",
        )
    now = timezone.now()
    rows, changes, transitions = accepted_rows(message, None)
    changes.append(
        records.history(
            message, None, message.delivery_status, DeliveryStatus.ACCEPTED, raw=ATTACHED
        )
    )
    fields = {
        "state": Message.State.ACCEPTED,
        "message_id": message_id,
        "sent_at": message.request_started_at or message.updated_at or now,
        "status": DeliveryStatus.ACCEPTED.value,
        "error_code": "",
        "error_text": "",
        "next_check_at": now,
        "retry_at": None,
        "updated_at": now,
    }
    try:
        with transaction.atomic():
            if not Message.objects.filter(
                pk=message.pk, state=Message.State.UNKNOWN, message_id__isnull=True
            ).update(**fields):
                raise SmsFlyValidationError(
                    _("The message changed meanwhile; reload it."), field="message_id"
                )
            records.unsettle([message.campaign_id])
            ChannelStatus.objects.bulk_create(rows)
            StatusChange.objects.bulk_create(changes)
            records.signal_transitions(message, transitions)
    except IntegrityError as exc:
        raise SmsFlyValidationError(
            records.duplicate_id_problem(message_id, message.pk), field="message_id"
        ) from exc
    message.refresh_from_db()
    return message
