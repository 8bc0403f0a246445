"""The message page's "Attach the SMS-fly message id": repair a message whose outcome
is unknown.

When the reply to a send was lost (a timeout, a broken reply, a worker that died, an
outcome the database could not store), the app cannot tell whether SMS-fly has the
message. An operator who finds it in SMS-fly's own pages, or in the ERROR log line of
an outcome that could not be stored, enters its id here: the message becomes
``accepted`` and its status is followed from then on
(:func:`~django_smsfly.services.attach_message_id`).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.admin import ModelAdmin
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from django_smsfly import services
from django_smsfly.admin import pages
from django_smsfly.exceptions import SmsFlyValidationError
from django_smsfly.models import Message


class AttachForm(forms.Form):
    """The SMS-fly message id to attach."""

    message_id = forms.CharField(
        label=_("SMS-fly message id"),
        max_length=200,  # longer ids are refused with a clear reason, not cut
        help_text=_("As SMS-fly shows it, e.g. FAPI1A230D7B0B022D0000000642D8298BF5."),
    )


def can_attach(message: Message) -> bool:
    """Whether a message is one an id can be attached to."""
    return message.state == Message.State.UNKNOWN and not message.message_id


def attach_one(
    model_admin: ModelAdmin[Any], request: HttpRequest, message: Message
) -> HttpResponse:
    """GET: the form. POST: attach the id, report, and back to the message's page."""
    if not can_attach(message):
        model_admin.message_user(
            request,
            gettext(
                "Only a message whose outcome is unknown and that has no message id can get one."
            ),
            messages.WARNING,
        )
        return redirect(pages.change_url(model_admin, message))
    form = AttachForm(request.POST if request.method == "POST" else None)
    if form.is_valid():
        try:
            attached = services.attach_message_id(message.pk, form.cleaned_data["message_id"])
        except SmsFlyValidationError as exc:
            form.add_error("message_id", exc.reason)
        else:
            model_admin.log_change(
                request,
                attached,
                gettext("Attached the SMS-fly message id %(id)s.") % {"id": attached.message_id},
            )
            services.sync_statuses(message_pks=[attached.pk])
            model_admin.message_user(
                request,
                gettext(
                    "The message now has the SMS-fly message id %(id)s; its status is followed "
                    "from now on."
                )
                % {"id": attached.message_id},
                messages.SUCCESS,
            )
            return redirect(pages.change_url(model_admin, message))
    return pages.render(
        model_admin,
        request,
        "attach_id.html",
        title=gettext("Attach the SMS-fly message id"),
        form=form,
        message=message,
        change_url=pages.change_url(model_admin, message),
    )
