"""What an operator can do to messages: refresh their status, send them again, opt their
numbers out, delete them.

Each list action is, like Django's own ``delete_selected``, a function of
``(model_admin, request, queryset)`` that names the permission it needs; the
ModelAdmin lists them and says what each permission means. The message page's buttons
do the same to one message (:func:`refresh_one`, :func:`resend_one`). Each acts on at
most :data:`ACTION_LIMIT` messages, calls only the public verbs of
:mod:`django_smsfly.services`, and reports the outcome in a sentence per kind of result.

A message whose outcome is unknown may already be on its way to the phone: it is sent
again only from a confirmation page that warns it may arrive twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin import ModelAdmin, helpers
from django.contrib.admin.actions import delete_selected as django_delete_selected
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from django_smsfly import services
from django_smsfly.admin import pages
from django_smsfly.admin.optout_lists import add_numbers
from django_smsfly.admin.send_report import report_send
from django_smsfly.admin.story import SENT_AGAIN
from django_smsfly.models import Message, OptOut
from django_smsfly.privacy import display_recipient

#: The most messages one action acts on at once. Each is a request to SMS-fly made
#: while the operator waits; the background sync looks after the rest.
ACTION_LIMIT = 100
#: States a message can be sent again from.
RESENDABLE = (Message.State.FAILED, Message.State.UNKNOWN)
#: States of a message a worker is sending (or about to): not to be deleted.
IN_FLIGHT = (Message.State.QUEUED, Message.State.SENDING)


def _refuse_too_many(model_admin: ModelAdmin[Any], request: HttpRequest) -> None:
    text = ngettext(
        "An action can act on at most %(limit)d message at once.",
        "An action can act on at most %(limit)d messages at once.",
        ACTION_LIMIT,
    ) % {"limit": ACTION_LIMIT}
    text += " " + gettext("Select fewer messages, or narrow the list with its filters.")
    model_admin.message_user(request, text, messages.ERROR)


def _say(
    model_admin: ModelAdmin[Any],
    request: HttpRequest,
    count: int,
    level: int,
    text: Callable[[int], str],
) -> None:
    """Tell the operator ``text(count)`` (an ``ngettext`` with ``%(count)d``) at
    ``level``; nothing when the count is 0 (a sentence per kind of result that happened)."""
    if count:
        model_admin.message_user(request, text(count) % {"count": count}, level)


# -- refresh ------------------------------------------------------------------------------


@admin.action(description=_("Refresh the status now"), permissions=["refresh"])
def refresh_statuses(
    model_admin: ModelAdmin[Any], request: HttpRequest, queryset: QuerySet[Message]
) -> None:
    """Ask SMS-fly now for the status of the selected messages."""
    selected = queryset.count()
    pks = list(
        queryset.filter(state=Message.State.ACCEPTED, message_id__isnull=False)
        .order_by("pk")
        .values_list("pk", flat=True)[: ACTION_LIMIT + 1]
    )
    if len(pks) > ACTION_LIMIT:
        _refuse_too_many(model_admin, request)
        return
    _refresh(model_admin, request, pks, selected=selected)


def refresh_one(
    model_admin: ModelAdmin[Any], request: HttpRequest, message: Message
) -> HttpResponse:
    """The message page's "refresh status now": ask, report, and back to the page."""
    pks = [message.pk] if message.state == Message.State.ACCEPTED and message.message_id else []
    _refresh(model_admin, request, pks, selected=1)
    return redirect(pages.change_url(model_admin, message))


def _refresh(
    model_admin: ModelAdmin[Any], request: HttpRequest, pks: list[int], *, selected: int
) -> None:
    report = services.sync_statuses(message_pks=pks) if pks else services.SyncReport()
    # The admin's history (and "Recent actions") says who asked, and what came of it.
    for message in Message.objects.filter(pk__in=pks).order_by("pk"):
        model_admin.log_change(
            request,
            message,
            gettext("Status refreshed: %(status)s") % {"status": message.get_status_display()},
        )
    if report.checked:
        text = ngettext(
            "The status of %(count)d message was checked.",
            "The status of %(count)d messages was checked.",
            report.checked,
        ) % {"count": report.checked}
        text += " " + ngettext(
            "%(count)d has changed.", "%(count)d have changed.", report.changed
        ) % {"count": report.changed}
        model_admin.message_user(request, text, messages.SUCCESS)
    _say(
        model_admin,
        request,
        report.errors,
        messages.WARNING,
        lambda n: ngettext(
            "SMS-fly could not be asked about %(count)d message; it will be asked again later.",
            "SMS-fly could not be asked about %(count)d messages; they will be asked again later.",
            n,
        ),
    )
    _say(
        model_admin,
        request,
        max(selected - report.checked, 0),
        messages.WARNING,
        lambda n: ngettext(
            "%(count)d message has no status to check: SMS-fly has not accepted it.",
            "%(count)d messages have no status to check: SMS-fly has not accepted them.",
            n,
        ),
    )


# -- send again ---------------------------------------------------------------------------


@admin.action(description=_("Send again"), permissions=["resend"])
def resend_messages(
    model_admin: ModelAdmin[Any], request: HttpRequest, queryset: QuerySet[Message]
) -> TemplateResponse | None:
    """Send the selected failed messages again; unknown ones after a confirmation."""
    selected = queryset.count()
    candidates = list(queryset.filter(state__in=RESENDABLE).order_by("pk")[: ACTION_LIMIT + 1])
    if len(candidates) > ACTION_LIMIT:
        _refuse_too_many(model_admin, request)
        return None
    confirmed = request.POST.get("confirm") == "yes"
    if not confirmed and any(m.state == Message.State.UNKNOWN for m in candidates):
        return _confirm_resend(model_admin, request, candidates, bulk=True)
    results = [_resend_logged(model_admin, request, m) for m in candidates]
    _report_resends(model_admin, request, results, skipped=selected - len(candidates))
    return None


def resend_one(
    model_admin: ModelAdmin[Any], request: HttpRequest, message: Message
) -> HttpResponse:
    """The message page's "send again".

    A failed message is sent again on POST. A message whose outcome is unknown is sent
    again only on a POST from the confirmation page, which warns that it may arrive
    twice; a GET only ever shows that page.
    """
    if message.state not in RESENDABLE:
        _report_resends(model_admin, request, [None], skipped=0)
        return redirect(pages.change_url(model_admin, message))
    unknown = message.state == Message.State.UNKNOWN
    confirmed = request.method == "POST" and request.POST.get("confirm") == "yes"
    if request.method != "POST" or (unknown and not confirmed):
        return _confirm_resend(model_admin, request, [message], bulk=False)
    result = _resend_logged(model_admin, request, message)
    if result is None:
        _report_resends(model_admin, request, [None], skipped=0)
    else:
        report_send(model_admin, request, result, again=True)
    return redirect(pages.change_url(model_admin, message))


def _resend_logged(
    model_admin: ModelAdmin[Any], request: HttpRequest, message: Message
) -> Message | None:
    """Send ``message`` again and, if it was, log it in the admin's history (which is
    also how its page's timeline names who sent it again)."""
    result = services.resend(message.pk, allow_unknown=message.state == Message.State.UNKNOWN)
    if result is not None:
        model_admin.log_change(request, result, gettext(SENT_AGAIN))
    return result


def _confirm_resend(
    model_admin: ModelAdmin[Any], request: HttpRequest, candidates: list[Message], *, bulk: bool
) -> TemplateResponse:
    """The page that asks before a message whose outcome is unknown is sent again."""
    unknown = [m for m in candidates if m.state == Message.State.UNKNOWN]
    return pages.render(
        model_admin,
        request,
        "resend_confirmation.html",
        title=gettext("Send again?"),
        candidates=candidates,
        # A list of several messages masks numbers as the message list does.
        rows=[
            {
                "message": m,
                "recipient": display_recipient(m.recipient) if bulk else m.recipient,
            }
            for m in candidates
        ],
        unknown=unknown,
        bulk=bulk,
        action_checkbox_name=helpers.ACTION_CHECKBOX_NAME,
        change_url=None if bulk else pages.change_url(model_admin, candidates[0]),
    )


def _report_resends(
    model_admin: ModelAdmin[Any],
    request: HttpRequest,
    results: Iterable[Message | None],
    *,
    skipped: int,
) -> None:
    """Tell the operator what became of the messages sent again, by outcome."""
    by_state: dict[str, int] = {}
    for result in results:
        key = result.state if result is not None else "not_resent"
        by_state[key] = by_state.get(key, 0) + 1

    _say(
        model_admin,
        request,
        by_state.get(Message.State.ACCEPTED, 0),
        messages.SUCCESS,
        lambda n: ngettext(
            "%(count)d message was sent again.", "%(count)d messages were sent again.", n
        ),
    )
    _say(
        model_admin,
        request,
        by_state.get(Message.State.QUEUED, 0) + by_state.get(Message.State.SENDING, 0),
        messages.WARNING,
        lambda n: ngettext(
            "%(count)d message is queued to be sent again.",
            "%(count)d messages are queued to be sent again.",
            n,
        ),
    )
    _say(
        model_admin,
        request,
        by_state.get(Message.State.FAILED, 0),
        messages.ERROR,
        lambda n: ngettext(
            "SMS-fly refused %(count)d message again; its page shows why.",
            "SMS-fly refused %(count)d messages again; their pages show why.",
            n,
        ),
    )
    _say(
        model_admin,
        request,
        by_state.get(Message.State.UNKNOWN, 0),
        messages.WARNING,
        lambda n: ngettext(
            "The outcome of %(count)d message is unknown again; check it before another try.",
            "The outcome of %(count)d messages is unknown again; check them before another try.",
            n,
        ),
    )
    _say(
        model_admin,
        request,
        by_state.get("not_resent", 0) + skipped,
        messages.WARNING,
        lambda n: ngettext(
            "%(count)d message was not sent again: only a failed message, or one whose "
            "outcome is unknown, can be.",
            "%(count)d messages were not sent again: only failed messages, or ones whose "
            "outcome is unknown, can be.",
            n,
        ),
    )


# -- opt out ------------------------------------------------------------------------------


@admin.action(description=_("Opt out: no more messages to these numbers"), permissions=["opt_out"])
def opt_out_recipients(
    model_admin: ModelAdmin[Any], request: HttpRequest, queryset: QuerySet[Message]
) -> None:
    """Put the selected messages' numbers on the opt-out list (no request is made)."""
    numbers = queryset.order_by().values_list("recipient", flat=True).distinct().iterator()
    added, existing = add_numbers(
        numbers,
        source=OptOut.Source.MANUAL,
        created_by=request.user,
        note=gettext("From the message list"),
    )
    _say(
        model_admin,
        request,
        added,
        messages.SUCCESS,
        lambda n: ngettext(
            "%(count)d number was added to the opt-out list: it gets no more messages.",
            "%(count)d numbers were added to the opt-out list: they get no more messages.",
            n,
        ),
    )
    _say(
        model_admin,
        request,
        existing,
        messages.INFO,
        lambda n: ngettext(
            "%(count)d number was already on the opt-out list.",
            "%(count)d numbers were already on the opt-out list.",
            n,
        ),
    )


# -- delete -------------------------------------------------------------------------------


@admin.action(description=_("Delete selected %(verbose_name_plural)s"), permissions=["delete"])
def delete_selected(
    model_admin: ModelAdmin[Any], request: HttpRequest, queryset: QuerySet[Message]
) -> TemplateResponse | None:
    """Django's "delete selected", leaving out messages still on their way.

    Named as Django's own so that it takes its place, confirmation page included.
    """
    _say(
        model_admin,
        request,
        queryset.filter(state__in=IN_FLIGHT).count(),
        messages.WARNING,
        lambda n: ngettext(
            "%(count)d message is on its way to SMS-fly and was left out; it can be "
            "deleted once it is sent.",
            "%(count)d messages are on their way to SMS-fly and were left out; they can "
            "be deleted once they are sent.",
            n,
        ),
    )
    finished = queryset.exclude(state__in=IN_FLIGHT)
    if not finished.exists():
        return None
    response: TemplateResponse | None = django_delete_selected(model_admin, request, finished)
    return response
