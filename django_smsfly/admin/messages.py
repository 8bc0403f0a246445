"""The Message admin: the list's columns and search, each message's record, permissions, URLs.

- The list shows every message with a coloured status badge, filters, a search that
  finds a number however it is written, the balances and a link to the delivery
  overview. What keeps it fast on a large table is in
  :mod:`~django_smsfly.admin.changelist`.
- A message's page is a read-only record (a sent message is not a draft) with its
  channels, history, cost, error and metadata, and buttons to refresh its status or
  send it again.
- The "add" page is the compose page (:mod:`~django_smsfly.admin.compose`); the
  delivery overview is :mod:`~django_smsfly.admin.overview`.
- Actions (:mod:`~django_smsfly.admin.actions`) are POST-only, CSRF-protected and
  checked against permissions: refreshing a status needs the *change* permission,
  sending (and sending again) the *add* permission, the overview the *view* permission.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

import django
from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.contrib.auth import get_permission_codename
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.urls import URLPattern
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from django_smsfly.admin import compose, lookups, overview, pages, repair, story
from django_smsfly.admin.actions import (
    IN_FLIGHT,
    delete_selected,
    opt_out_recipients,
    refresh_one,
    refresh_statuses,
    resend_messages,
    resend_one,
)
from django_smsfly.admin.campaigns import CampaignFilter
from django_smsfly.admin.changelist import ChannelsFilter, MessageChangeList, MessagePaginator
from django_smsfly.admin.display import money
from django_smsfly.admin.numbers import NumberSearch
from django_smsfly.admin.story import status_kind
from django_smsfly.delivery import retention
from django_smsfly.models import ChannelChoices, Message
from django_smsfly.privacy import display_recipient
from django_smsfly.statuses import DeliveryStatus


def _badge(status: DeliveryStatus, label: str) -> str:
    # format_html escapes the label; the kind is one of four fixed words.
    return format_html(
        '<span class="smsfly-badge smsfly-badge-{}">{}</span>', status_kind(status), label
    )


def _json_block(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True, default=str)
    return format_html('<pre class="smsfly-json">{}</pre>', text)


# -- the admin ----------------------------------------------------------------------------


class MessageAdmin(NumberSearch, admin.ModelAdmin):  # type: ignore[type-arg]
    """Messages: list, search, compose, a read-only page per message, and actions."""

    list_display = (
        "recipient_display",
        "channels_display",
        "status_badge",
        "state",
        "cost_display",
        "created_at",
        "created_by",
    )
    list_filter = ("status", ChannelsFilter, "state", "created_at", CampaignFilter)
    # The text lookups ignore case in every alphabet on SQLite too (changelist.FoldedContains).
    search_fields = (
        "recipient",
        "=message_id",
        "content__sms__text__smsfly_icontains",
        "content__viber__text__smsfly_icontains",
    )
    search_help_text = _(
        "Finds a recipient however the number is written, an SMS-fly message id, or words "
        "of the text."
    )
    date_hierarchy = "created_at"
    list_select_related = ("created_by",)
    paginator = MessagePaginator
    # Counting a large table on every page load is the slow part of a changelist; so are
    # facet counts.
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    actions = (refresh_statuses, resend_messages, opt_out_recipients, delete_selected)
    # Where the message stands, its channels and its delivery timeline are drawn above
    # the record as its story (story.html, refreshed by message.js); the record below
    # is what does not change.
    fieldsets = (
        (
            None,
            {"fields": ("recipient", "channels_display", "send_at", "ignore_opt_out")},
        ),
        (_("SMS-fly"), {"fields": ("message_id", "attempts", "sent_at")}),
        (_("Content"), {"fields": ("content_display", "metadata_display", "idempotency_key")}),
        (
            _("Timing"),
            {
                "fields": (
                    "created_at",
                    "created_by",
                    "updated_at",
                    "last_checked_at",
                    "next_check_at",
                    "retry_at",
                ),
                "classes": ("collapse",),
            },
        ),
    )

    #: How often (milliseconds) a message's page asks whether the message moved on.
    status_poll_interval = 3000
    #: The compose page asks before sending an SMS of more parts than this (0: never).
    compose_confirm_parts = compose.CONFIRM_PARTS_ABOVE

    class Media:
        css: ClassVar[dict[str, tuple[str, ...]]] = {"all": ("django_smsfly/admin.css",)}

    # -- permissions ------------------------------------------------------------------

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # A message is a record: nothing on its page can be edited. (The real change
        # permission lets an operator refresh statuses: has_refresh_permission.)
        return False

    def has_refresh_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """May ask SMS-fly for statuses now: the model's *change* permission."""
        codename = get_permission_codename("change", self.opts)
        return bool(request.user.has_perm(f"{self.opts.app_label}.{codename}"))

    def has_resend_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """May send a message again: the same *add* permission that sending needs."""
        return self.has_add_permission(request)

    def has_opt_out_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """May put numbers on the opt-out list: the *add* permission of opt-outs."""
        return bool(request.user.has_perm(f"{self.opts.app_label}.add_optout"))

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # A message on its way is a worker's to finish: deleting it would leave a send
        # with no record of its outcome.
        if obj is not None and obj.state in IN_FLIGHT:
            return False
        return super().has_delete_permission(request, obj)

    def delete_model(self, request: HttpRequest, obj: Message) -> None:
        retention.delete_messages(Message.objects.filter(pk=obj.pk))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Message]) -> None:
        retention.delete_messages(queryset)

    # -- the list ---------------------------------------------------------------------

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return MessageChangeList

    @transaction.non_atomic_requests
    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        context = {
            # A callable: the template asks SMS-fly (through the cache) only when the
            # page is drawn, not when an action's POST is answered with a redirect.
            "smsfly_balance": lookups.balance_panel,
            **(extra_context or {}),
        }
        return super().changelist_view(request, context)

    @admin.display(description=_("status"), ordering="status")
    def status_badge(self, obj: Message) -> str:
        """The delivery status as a coloured badge."""
        return _badge(obj.delivery_status, obj.get_status_display())

    @admin.display(description=_("recipient"), ordering="recipient")
    def recipient_display(self, obj: Message) -> str:
        """The number, masked in lists when ``SMSFLY["MASK_RECIPIENTS"]`` is on."""
        return display_recipient(obj.recipient)

    @admin.display(description=_("channels"), ordering="channels")
    def channels_display(self, obj: Message) -> str:
        """The channels in fallback order: ``Viber → SMS``."""
        return " → ".join(str(ChannelChoices(c.value).label) for c in obj.channel_list)

    @admin.display(description=_("cost"), ordering="cost")
    def cost_display(self, obj: Message) -> str:
        """What SMS-fly charged, as the admin writes money (``0.750``)."""
        return money(obj.cost)

    # -- the record -------------------------------------------------------------------

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        """Every field: a message is a record."""
        return [
            str(name) for _title, options in self.fieldsets or () for name in options["fields"]
        ]

    @admin.display(description=_("content"))
    def content_display(self, obj: Message) -> str:
        """The ``sms``/``viber`` blocks as sent, readable (and escaped)."""
        return _json_block(obj.content)

    @admin.display(description=_("metadata"))
    def metadata_display(self, obj: Message) -> str:
        """The sender's own metadata, readable (and escaped)."""
        return _json_block(obj.metadata)

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        context = {
            "smsfly_can_refresh": self.has_refresh_permission(request),
            "smsfly_can_resend": self.has_resend_permission(request),
            "smsfly_can_attach": self.has_resend_permission(request),
            **(extra_context or {}),
        }
        return super().change_view(request, object_id, form_url, context)

    def render_change_form(  # noqa: PLR0917 (Django's signature)
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Any = None,
    ) -> HttpResponse:
        """The message's page, headed by its story (:mod:`~django_smsfly.admin.story`)."""
        if isinstance(obj, Message):
            told = story.tell(obj)
            # The page is headed by what the message is, in words, not by its str().
            context = {
                **context,
                "smsfly_story": told,
                "subtitle": told.title,
                "smsfly_poll_interval": self.status_poll_interval,
                "smsfly_breadcrumbs_list": django.VERSION >= (6, 0),
            }
        return super().render_change_form(request, context, add, change, form_url, obj)

    # -- the pages of its own ---------------------------------------------------------
    # Each checks the permission it needs here and leaves the work to its module.

    def get_urls(self) -> list[URLPattern]:
        ours = pages.own_urls(
            self,
            [
                ("overview/", "overview", self.overview_view),
                ("<path:object_id>/refresh/", "refresh", self.refresh_view),
                ("<path:object_id>/resend/", "resend", self.resend_view),
                ("<path:object_id>/status/", "status", self.status_view),
                ("<path:object_id>/attach-id/", "attach_id", self.attach_view),
            ],
        )
        return ours + super().get_urls()

    @transaction.non_atomic_requests
    def add_view(
        self,
        request: HttpRequest,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        """The compose page: a message to send, not a raw model form."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        return compose.compose_page(self, request, extra_context)

    def status_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Where the message stands, as JSON for its page's script (``message.js``)."""
        message = pages.get_message(self, request, object_id)
        return JsonResponse(story.status_payload(message, request=request))

    @transaction.non_atomic_requests
    def refresh_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The message page's "refresh status now" button (POST only)."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        message = pages.get_message(self, request, object_id)
        if not self.has_refresh_permission(request, message):
            raise PermissionDenied
        return refresh_one(self, request, message)

    @transaction.non_atomic_requests
    def resend_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The message page's "send again" button (see :func:`.actions.resend_one`)."""
        message = pages.get_message(self, request, object_id)
        if not self.has_resend_permission(request, message):
            raise PermissionDenied
        return resend_one(self, request, message)

    @transaction.non_atomic_requests
    def attach_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The message page's "attach the SMS-fly message id" (see :mod:`.repair`)."""
        message = pages.get_message(self, request, object_id)
        if not self.has_resend_permission(request, message):
            raise PermissionDenied
        return repair.attach_one(self, request, message)

    def overview_view(self, request: HttpRequest) -> HttpResponse:
        """Messages per day for the last 30 days by outcome, as a chart and a table."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        return overview.overview_page(self, request)
