"""A message's page as its story: what it is, where it stands, why, and what it cost.

:func:`tell` turns a message (with its channels, its status history and the admin's log
of who sent it again) into a :class:`Story`: a title in words
(``SMS to +380 50 123 4567 — delivered``), one status line with what it means for the
operator, the reason a message was not delivered or not sent, the cost that was charged,
the channels and the delivery timeline. The page draws it with
``message/story.html``; :func:`status_payload` is the same story as the JSON the page's
script polls until the message is final (a fixed number of queries, however long the
history).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import phonenumbers
from django.conf import settings
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.translation import gettext, gettext_noop

from django_smsfly.admin.display import money
from django_smsfly.delivery.repair import RESEND
from django_smsfly.models import ChannelChoices, ChannelStatus, Message, StatusChange
from django_smsfly.statuses import DeliveryStatus

#: The change message the admin logs when an operator sends a message again (also how
#: the timeline finds who did it: the text in any of the site's languages).
SENT_AGAIN = gettext_noop("Sent again.")
#: The change message the admin logs for a message sent from the compose page.
SENT_FROM_ADMIN = gettext_noop("Sent from the admin.")
#: How long after a message was put back in the queue its "sent again" log may come:
#: the send ran while the operator waited, up to the client's timeouts.
_RESEND_LOG_WINDOW = dt.timedelta(minutes=10)
#: Leading ``ACTION: `` / ``CODE: `` words of a stored error text (``SENDMESSAGE: ``).
_LEADING_CODE = re.compile(r"^([A-Z][A-Z0-9_]{3,}): ")


def error_line(code: str, text: str) -> str:
    """An error as one line: the code once, then SMS-fly's words.

    A refusal is stored as its code (``INVRECIPIENT``) and the exception's text, which
    starts with the action and the code again (``SENDMESSAGE: INVRECIPIENT: wrong
    recipient``); written together they would repeat the code. Leading upper-case words
    (the action, the code) are dropped from the text and the code is written once:
    ``INVRECIPIENT: wrong recipient``.
    """
    rest = text.strip()
    while match := _LEADING_CODE.match(rest):
        rest = rest[match.end() :].lstrip()
    if code and rest:
        return f"{code}: {rest}"
    return code or rest


def international(number: str) -> str:
    """``380501234567`` as people write it: ``+380 50 123 4567`` (as is if not a number)."""
    try:
        parsed = phonenumbers.parse(f"+{number}")
    except phonenumbers.NumberParseException:
        return number
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def status_kind(status: DeliveryStatus) -> str:
    """How a status reads to an operator: success, failure, neutral or pending."""
    if status.is_success:
        return "success"
    if status.is_failure:
        return "failure"
    if status is DeliveryStatus.REFUNDED:
        return "neutral"
    return "pending"


def channels_in_words(channels: str) -> str:
    """``viber,sms`` as ``Viber, then SMS if Viber fails``; ``sms`` as ``SMS``."""
    labels = [str(ChannelChoices(name).label) for name in channels.split(",") if name]
    if len(labels) == 2:
        return gettext("%(first)s, then %(second)s if %(first)s fails") % {
            "first": labels[0],
            "second": labels[1],
        }
    return ", ".join(labels)


# -- the parts of the story -----------------------------------------------------------------


@dataclass(frozen=True)
class ChannelLine:
    """One channel of the message, as its table row and in the reason line."""

    label: str
    status: str
    status_label: str
    kind: str
    #: Its price, or "refunded" for a channel whose cost came back.
    cost: str
    raw_status: str
    status_date: dt.datetime | None
    message_label: str


@dataclass(frozen=True)
class TimelineRow:
    """One line of the delivery timeline."""

    recorded: dt.datetime
    text: str
    #: SMS-fly's own word for the status (empty for what this site did).
    raw_status: str
    status_date: dt.datetime | None
    #: What the site did (sent again), rather than what SMS-fly reported.
    ours: bool


@dataclass(frozen=True)
class Story:
    """Everything the message page says about where the message stands."""

    title: str
    status: str
    status_label: str
    kind: str
    #: The status in one sentence: what it means for the operator.
    explanation: str
    #: Why it was not delivered (each channel's outcome), or why it was not sent.
    reason: str
    error: str
    cost: str
    channels: tuple[ChannelLine, ...]
    timeline: tuple[TimelineRow, ...]
    final: bool


def _status_phrase(status: DeliveryStatus) -> str:
    phrases = {
        DeliveryStatus.QUEUED: gettext("waiting"),
        DeliveryStatus.ACCEPTED: gettext("waiting its turn"),
        DeliveryStatus.IN_PROGRESS: gettext("on its way"),
        DeliveryStatus.SENT: gettext("sent, not yet delivered"),
        DeliveryStatus.DELIVERED: gettext("delivered"),
        DeliveryStatus.VIEWED: gettext("delivered and read"),
        DeliveryStatus.UNDELIVERED: gettext("not delivered"),
        DeliveryStatus.EXPIRED: gettext("not delivered in time (expired)"),
        DeliveryStatus.STOPPED: gettext("stopped by SMS-fly"),
        DeliveryStatus.FAILED: gettext("failed"),
        DeliveryStatus.REFUNDED: gettext("not needed, refunded"),
    }
    return phrases[status]


def _channel_line(row: ChannelStatus) -> ChannelLine:
    status = row.delivery_status
    label = str(ChannelChoices(row.channel).label)
    return ChannelLine(
        label=label,
        status=status.value,
        status_label=str(row.get_status_display()),
        kind=status_kind(status),
        cost=gettext("refunded") if status is DeliveryStatus.REFUNDED else money(row.cost),
        raw_status=row.raw_status,
        status_date=row.status_date,
        message_label=row.label,
    )


def _title(message: Message) -> str:
    values = {
        "channels": channels_in_words(message.channels),
        "recipient": international(message.recipient),
    }
    what = gettext("%(channels)s to %(recipient)s") % values
    outcome = _outcome(message)
    return f"{what} — {outcome}" if outcome else what


def _outcome(message: Message) -> str:
    state = message.state
    if state == Message.State.QUEUED:
        return gettext("scheduled") if message.send_at else gettext("queued")
    if state == Message.State.SENDING:
        return gettext("being sent")
    if state == Message.State.FAILED:
        return gettext("not sent")
    if state == Message.State.UNKNOWN:
        return gettext("outcome unknown")
    status = message.delivery_status
    if status.is_success and message.delivered_via:
        via = str(ChannelChoices(message.delivered_via).label)
        if status is DeliveryStatus.VIEWED:
            return gettext("delivered via %(channel)s and read") % {"channel": via}
        return gettext("delivered via %(channel)s") % {"channel": via}
    return _status_phrase(status)


def _explanation(message: Message) -> str:
    state = message.state
    if state == Message.State.QUEUED:
        if message.error_code:
            return gettext(
                "Queued: SMS-fly could not take it just now; it will be tried again automatically."
            )
        if message.send_at:
            return gettext("Scheduled: it will be sent at the time set, not before.")
        return gettext("Queued: it is waiting to be sent.")
    if state == Message.State.SENDING:
        return gettext("Being sent: the request to SMS-fly is on its way.")
    if state == Message.State.FAILED:
        return gettext("Not sent: nothing reached the recipient and nothing was charged.")
    if state == Message.State.UNKNOWN:
        return gettext(
            "Outcome unknown: the request may have reached SMS-fly, but its answer was "
            "lost. Check SMS-fly's records before sending it again; it may arrive twice."
        )
    status = message.delivery_status
    if status.is_success:
        return gettext("Accepted by SMS-fly and delivered to the phone.")
    if status.is_failure:
        return gettext("Accepted by SMS-fly, but it did not reach the phone.")
    return gettext(
        "Accepted by SMS-fly and on its way; this page follows it until it is delivered or fails."
    )


def _reason(message: Message, channels: Sequence[ChannelLine]) -> str:
    if message.state == Message.State.FAILED:
        if message.error_code == "OPTED_OUT":
            return gettext("The number is on the opt-out list.")
        if message.error_code == "CANCELLED":
            return gettext("Its campaign was cancelled before it was sent.")
        return gettext("SMS-fly refused it: %(error)s") % {
            "error": error_line(message.error_code, message.error_text)
        }
    status = message.delivery_status
    if message.state != Message.State.ACCEPTED or not (status.is_failure or len(channels) > 1):
        return ""
    if not status.is_final:
        return ""
    return "; ".join(
        f"{line.label}: {_status_phrase(DeliveryStatus(line.status))}" for line in channels
    )


def _cost(message: Message) -> str:
    if message.cost is not None:
        return money(message.cost)
    if message.state == Message.State.FAILED:
        return gettext("nothing")
    return gettext("not known yet")


def _timeline(
    rows: Iterable[StatusChange], resenders: Sequence[tuple[dt.datetime, str]]
) -> tuple[TimelineRow, ...]:
    unused = list(resenders)
    lines = []
    for row in rows:
        if row.raw_status == RESEND and not row.channel:
            who = _take_resender(unused, row.created_at)
            text = (
                gettext("Sent again by %(user)s") % {"user": who} if who else gettext("Sent again")
            )
            lines.append(TimelineRow(row.created_at, text, "", None, ours=True))
            continue
        where = str(ChannelChoices(row.channel).label) if row.channel else gettext("Message")
        text = f"{where}: {row.get_old_status_display()} → {row.get_new_status_display()}"
        lines.append(TimelineRow(row.created_at, text, row.raw_status, row.status_date, False))
    return tuple(lines)


def _take_resender(unused: list[tuple[dt.datetime, str]], moment: dt.datetime) -> str:
    """The user of the first "sent again" log entry written just after ``moment``."""
    for index, (when, user) in enumerate(unused):
        if moment <= when <= moment + _RESEND_LOG_WINDOW:
            del unused[index]
            return user
    return ""


def _resenders(message: Message) -> list[tuple[dt.datetime, str]]:
    """When, and by whom, the admin sent this message again (one query)."""
    texts = set()
    for code, _name in settings.LANGUAGES:
        with translation.override(code):
            texts.add(gettext(SENT_AGAIN))
    entries = (
        LogEntry.objects.filter(
            content_type=ContentType.objects.get_for_model(Message),
            object_id=str(message.pk),
            action_flag=CHANGE,
            change_message__in=sorted(texts),
        )
        .select_related("user")
        .order_by("action_time", "pk")
    )
    return [(entry.action_time, entry.user.get_username()) for entry in entries]


def tell(message: Message) -> Story:
    """The story of ``message`` (its channels, history and resends in three queries)."""
    channels = tuple(_channel_line(row) for row in message.channel_statuses.order_by("position"))
    history = message.history.order_by("created_at", "id")
    status = message.delivery_status
    show_error = message.state != Message.State.ACCEPTED and bool(message.error_code)
    return Story(
        title=_title(message),
        status=status.value,
        status_label=str(message.get_status_display()),
        kind=status_kind(status),
        explanation=_explanation(message),
        reason=_reason(message, channels),
        error=error_line(message.error_code, message.error_text) if show_error else "",
        cost=_cost(message),
        channels=channels,
        timeline=_timeline(history, _resenders(message)),
        final=message.is_final,
    )


#: The fragment of the message page that changes as the message travels.
STORY_TEMPLATE = "admin/django_smsfly/message/story.html"


def status_payload(message: Message, **context: Any) -> dict[str, Any]:
    """The JSON the message page polls: whether it is final, its title and the fragment."""
    story = tell(message)
    html = render_to_string(STORY_TEMPLATE, {"story": story, "original": message, **context})
    return {"final": story.final, "title": story.title, "status": story.status, "html": html}
