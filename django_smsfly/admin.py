"""The admin: messages as a read-only record, with their channels and history.

A sent message is a record, not a draft, so nothing here edits one. Sending from the
admin (a compose page) and actions come with the admin work that follows.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from django_smsfly.conf import smsfly_settings
from django_smsfly.exceptions import SmsFlyValidationError
from django_smsfly.models import ChannelStatus, Message, StatusChange
from django_smsfly.statuses import DeliveryStatus
from django_smsfly.validation import normalize_recipient

#: Badge colours by how a status reads to an operator.
_BADGE_COLOURS = {
    "success": "#1b7f3b",
    "failure": "#b42318",
    "pending": "#8a6d00",
    "neutral": "#555",
}


def _badge_kind(status: DeliveryStatus) -> str:
    if status.is_success:
        return "success"
    if status.is_failure:
        return "failure"
    if status is DeliveryStatus.REFUNDED:
        return "neutral"
    return "pending"


class ReadOnlyInline(admin.TabularInline):  # type: ignore[type-arg]
    """An inline that shows rows and changes nothing."""

    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ChannelStatusInline(ReadOnlyInline):
    """The message's channels, in fallback order."""

    model = ChannelStatus
    fields = ("channel", "status", "raw_status", "status_date", "cost", "label")
    readonly_fields = fields
    ordering = ("position",)


class StatusChangeInline(ReadOnlyInline):
    """Every recorded transition."""

    model = StatusChange
    fields = ("created_at", "channel", "old_status", "new_status", "raw_status", "status_date")
    readonly_fields = fields
    ordering = ("created_at", "id")
    verbose_name_plural = _("history")


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Messages: list, filter, search, and a read-only page per message."""

    list_display = (
        "recipient",
        "channels",
        "status_badge",
        "state",
        "cost",
        "created_at",
        "created_by",
    )
    list_filter = ("status", "state", "channels", "created_at")
    search_fields = ("recipient", "=message_id", "content")
    date_hierarchy = "created_at"
    list_select_related = ("created_by",)
    # Counting a large table on every page load is the slow part of a changelist.
    show_full_result_count = False
    inlines = (ChannelStatusInline, StatusChangeInline)
    fieldsets = (
        (None, {"fields": ("recipient", "channels", "status_badge", "state", "delivered_via")}),
        (_("SMS-fly"), {"fields": ("message_id", "cost", "attempts", "sent_at")}),
        (_("Error"), {"fields": ("error_code", "error_text")}),
        (_("Content"), {"fields": ("content", "metadata", "idempotency_key")}),
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

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        """Every field: a message is a record."""
        return [
            str(name) for _title, options in self.fieldsets or () for name in options["fields"]
        ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Viewing needs the view permission; nothing on the page can be changed.
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Message]:
        return super().get_queryset(request).select_related("created_by")

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Message], search_term: str
    ) -> tuple[QuerySet[Message], bool]:
        """Also find a recipient by any written form of the number (``050 123 4567``)."""
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        try:
            number = normalize_recipient(search_term, smsfly_settings.DEFAULT_REGION)
        except SmsFlyValidationError:
            return results, may_have_duplicates
        return results | queryset.filter(recipient=number), may_have_duplicates

    @admin.display(description=_("status"), ordering="status")
    def status_badge(self, obj: Message) -> str:
        """The delivery status as a coloured badge (text escaped by format_html)."""
        status = obj.delivery_status
        return format_html(
            '<span class="smsfly-badge" style="background:{};color:#fff;padding:1px 6px;'
            'border-radius:8px;white-space:nowrap">{}</span>',
            _BADGE_COLOURS[_badge_kind(status)],
            obj.get_status_display(),
        )
