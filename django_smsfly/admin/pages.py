"""The app's own admin pages: drawn in the admin's frame, about one message.

The compose page, the confirmation before sending again and the delivery overview are
pages of their own rather than the ModelAdmin's forms. :func:`own_urls` gives each
ModelAdmin's pages and buttons their addresses, :func:`render` gives them the admin's
context (site header, breadcrumbs, the ModelAdmin's media) and :func:`form_context` a
form drawn as the admin draws its own; :func:`get_message` and :func:`change_url` find
the message a page or button is about and the way back to it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, cast

import django
from django import forms
from django.contrib.admin import ModelAdmin, helpers
from django.contrib.admin.utils import unquote
from django.http import Http404, HttpRequest
from django.http.response import HttpResponseBase
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.translation import gettext

from django_smsfly.models import Message

#: Where the message pages' templates are (each model's pages are in its own folder).
TEMPLATES = "admin/django_smsfly/message/"


def own_urls(
    model_admin: ModelAdmin[Any],
    views: Iterable[tuple[str, str, Callable[..., HttpResponseBase]]],
) -> list[URLPattern]:
    """The URLs of a ModelAdmin's own views, from ``(route, name, view)``.

    Each is behind the admin's login, staff check and CSRF protection, as the admin's
    own views are, and named ``<app>_<model>_<name>``. They go before the ModelAdmin's
    own URLs (``own_urls(...) + super().get_urls()``): its ``<path:object_id>/`` would
    catch them.
    """
    prefix = f"{model_admin.opts.app_label}_{model_admin.opts.model_name}"
    return [
        path(route, model_admin.admin_site.admin_view(view), name=f"{prefix}_{name}")
        for route, name, view in views
    ]


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


def form_context(model_admin: ModelAdmin[Any], form: forms.Form) -> dict[str, Any]:
    """What ``form_fieldsets.html`` draws a page's form with, as the admin draws its own
    forms: the form, its ``fieldsets`` as the admin's helpers take them, its errors."""
    # The admin's form helpers take any form with fieldsets; their stubs say ModelForm.
    any_form = cast(Any, form)
    return {
        "adminform": helpers.AdminForm(any_form, any_form.fieldsets, {}, model_admin=model_admin),
        "form": form,
        "errors": helpers.AdminErrorList(any_form, []),
    }


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
