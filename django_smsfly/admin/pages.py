"""The app's own admin pages: drawn in the admin's frame, about one message.

The compose page, the confirmation before sending again and the delivery overview are
pages of their own rather than the ModelAdmin's forms. :func:`render` gives them the
admin's context (site header, breadcrumbs, the ModelAdmin's media);
:func:`get_message` and :func:`change_url` find the message a page or button is about
and the way back to it.
"""

from __future__ import annotations

from typing import Any

import django
from django.contrib.admin import ModelAdmin
from django.contrib.admin.utils import unquote
from django.http import Http404, HttpRequest
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext

from django_smsfly.models import Message

#: Where the message pages' templates are (each model's pages are in its own folder).
TEMPLATES = "admin/django_smsfly/message/"


def render(
    model_admin: ModelAdmin[Any], request: HttpRequest, template: str, **context: Any
) -> TemplateResponse:
    """The model's page ``admin/<app>/<model>/<template>`` in the admin's frame (its
    context, the ModelAdmin's media), then ``context`` (which may add to ``media``)."""
    opts = model_admin.opts
    return TemplateResponse(
        request,
        f"admin/{opts.app_label}/{opts.model_name}/{template}",
        {
            **model_admin.admin_site.each_context(request),
            "opts": opts,
            "app_label": opts.app_label,
            "media": model_admin.media,
            # Django 6 draws breadcrumbs as an ordered list; earlier versions as a line.
            "smsfly_breadcrumbs_list": django.VERSION >= (6, 0),
            **context,
        },
    )


def get_message(model_admin: ModelAdmin[Any], request: HttpRequest, object_id: str) -> Message:
    """The message of an admin URL, if the user may see it; else 404."""
    message: Message | None = model_admin.get_object(request, unquote(object_id))
    if message is None or not model_admin.has_view_permission(request, message):
        raise Http404(gettext("No such message."))
    return message


def change_url(model_admin: ModelAdmin[Any], message: Message) -> str:
    """The address of a message's own page."""
    opts = model_admin.opts
    return reverse(
        f"{model_admin.admin_site.name}:{opts.app_label}_{opts.model_name}_change",
        args=[message.pk],
    )
