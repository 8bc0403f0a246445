"""The compose page, the admin's *add* page for messages: **Estimate cost** and **Send**.

:func:`compose_page` draws the form (:mod:`~django_smsfly.admin.compose_form`) in the
admin's frame and acts on its buttons: an estimate, a confirmation before a long SMS,
or the send itself, after which :func:`~django_smsfly.admin.send_report.report_send`
tells the operator what became of the message. The form's names are importable from
here too.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.admin import ModelAdmin
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.translation import gettext

from django_smsfly.admin import lookups, pages
from django_smsfly.admin.compose_form import (
    CONFIRM_PARTS,
    CONFIRM_PARTS_ABOVE,
    ERROR_FIELDS,
    FORM_PAGE,
    SEND_AT_MAX_DAYS,
    SEND_IN_BACKGROUND,
    SEND_MODE_CHOICES,
    SEND_NOW,
    Composed,
    ComposeForm,
    Estimate,
    EstimateRow,
)
from django_smsfly.admin.send_report import OPTED_OUT, report_send
from django_smsfly.admin.story import SENT_FROM_ADMIN
from django_smsfly.admin.texts import CHANNEL_CHOICES
from django_smsfly.admin.widgets import segment_rules
from django_smsfly.conf import smsfly_settings


def compose_page(
    model_admin: ModelAdmin[Any],
    request: HttpRequest,
    extra_context: dict[str, Any] | None = None,
) -> HttpResponse:
    """The compose page: **Estimate cost** shows the estimate, **Send** sends and goes on
    to the message's page; a form with errors comes back with them at their fields."""
    names = lookups.sender_names()
    estimate = None
    confirm_parts = 0
    threshold = int(getattr(model_admin, "compose_confirm_parts", CONFIRM_PARTS_ABOVE))
    if request.method == "POST":
        form = ComposeForm(request.POST, sender_names=names, user=request.user)
        if form.is_valid():
            if "_estimate" in request.POST:
                estimate = form.estimate()
            elif form.needs_confirmation(threshold) and form.already_sent() is None:
                # A long SMS is billed per part: show its parts and cost, send on confirm.
                estimate = form.estimate()
                confirm_parts = form.sms_parts()
            else:
                return _send(model_admin, request, form)
        elif form.token_refused:
            form.renew_token()
    else:
        form = ComposeForm(sender_names=names, user=request.user)
    return pages.render(
        model_admin,
        request,
        "compose.html",
        title=gettext("Send a message"),
        **pages.form_context(model_admin, form),
        media=model_admin.media + form.media,
        sender_names=names,
        estimate=estimate,
        confirm_parts=confirm_parts,
        segment_rules=segment_rules(),
        max_sms_parts=smsfly_settings.MAX_SMS_PARTS,
        **(extra_context or {}),
    )


def _send(model_admin: ModelAdmin[Any], request: HttpRequest, form: ComposeForm) -> HttpResponse:
    """Send a valid form once, and go on to the message's page.

    A form posted again (a double click, a browser's re-POST, *back* and *send*) finds
    the message its first POST made: that one is shown, nothing more is sent.
    """
    message = form.already_sent()
    if message is not None:
        text = gettext(
            "This form was already sent: this is its message to %(recipient)s. Nothing "
            "more was sent; to send another message, open the compose page again."
        ) % {"recipient": message.recipient}
        model_admin.message_user(request, text, messages.WARNING)
    else:
        message = form.send(created_by=request.user)
        model_admin.log_addition(request, message, gettext(SENT_FROM_ADMIN))
        report_send(model_admin, request, message)
    return redirect(pages.change_url(model_admin, message))


__all__ = [
    "CHANNEL_CHOICES",
    "CONFIRM_PARTS",
    "CONFIRM_PARTS_ABOVE",
    "ERROR_FIELDS",
    "FORM_PAGE",
    "OPTED_OUT",
    "SEND_AT_MAX_DAYS",
    "SEND_IN_BACKGROUND",
    "SEND_MODE_CHOICES",
    "SEND_NOW",
    "ComposeForm",
    "Composed",
    "Estimate",
    "EstimateRow",
    "compose_page",
    "report_send",
]
