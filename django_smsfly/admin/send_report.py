"""What became of a message just sent from the admin, told to the operator.

:func:`report_send` writes the one sentence the compose page (after **Send**) and the
message page (after **Send again**) show: scheduled, accepted, queued, refused, opted
out, or unknown, with the recipient and SMS-fly's words.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib import messages
from django.contrib.admin import ModelAdmin
from django.http import HttpRequest
from django.utils import formats, timezone
from django.utils.translation import gettext

from django_smsfly.admin.story import error_line
from django_smsfly.exceptions import SmsFlyOptedOut
from django_smsfly.models import Message

#: The error code of a message not sent because its number opted out.
OPTED_OUT = SmsFlyOptedOut.default_code


def report_send(
    model_admin: ModelAdmin[Any], request: HttpRequest, message: Message, *, again: bool = False
) -> None:
    """Tell the operator what became of one message just sent (or sent again)."""
    values = {"recipient": message.recipient, "error": _error_of(message)}
    state = message.state
    if state == Message.State.QUEUED and _scheduled(message):
        text = gettext("The message to %(recipient)s will be sent at %(time)s.") % {
            **values,
            "time": _when(message.send_at),
        }
        model_admin.message_user(request, text, messages.SUCCESS)
    elif state == Message.State.FAILED and message.error_code == OPTED_OUT:
        text = gettext(
            "The message to %(recipient)s was not sent: the number is on the opt-out list."
        )
        model_admin.message_user(request, text % values, messages.WARNING)
    elif state == Message.State.ACCEPTED:
        text = (
            gettext("The message to %(recipient)s was sent again and SMS-fly accepted it.")
            if again
            else gettext("The message to %(recipient)s was accepted by SMS-fly.")
        )
        model_admin.message_user(request, text % values, messages.SUCCESS)
    elif state == Message.State.QUEUED and message.retry_at is not None:
        text = gettext(
            "SMS-fly could not take the message to %(recipient)s just now (%(error)s); "
            "it will be tried again automatically."
        )
        model_admin.message_user(request, text % values, messages.WARNING)
    elif state in (Message.State.QUEUED, Message.State.SENDING):
        text = gettext(
            "The message to %(recipient)s is queued and will be sent in the background."
        )
        model_admin.message_user(request, text % values, messages.SUCCESS)
    elif state == Message.State.FAILED:
        text = gettext("SMS-fly refused the message to %(recipient)s: %(error)s")
        model_admin.message_user(request, text % values, messages.ERROR)
    else:
        text = gettext(
            "It is not known whether SMS-fly received the message to %(recipient)s "
            "(%(error)s). Check its status before sending it again."
        )
        model_admin.message_user(request, text % values, messages.WARNING)


def _scheduled(message: Message) -> bool:
    return message.send_at is not None and message.send_at > timezone.now()


def _when(moment: dt.datetime | None) -> str:
    """A time as the admin shows times: local, in the site's format, with its zone."""
    if moment is None:
        return ""
    local = timezone.localtime(moment)
    return f"{formats.date_format(local, 'DATETIME_FORMAT')} ({local.tzname()})"


def _error_of(message: Message) -> str:
    # The code once, then SMS-fly's words (the stored text repeats the code).
    return error_line(message.error_code, message.error_text) or gettext("no details")
