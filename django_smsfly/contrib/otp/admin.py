"""The admin of :class:`~django_smsfly.contrib.otp.models.SmsFlyDevice`."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from django_smsfly.contrib.otp.models import SmsFlyDevice


@admin.register(SmsFlyDevice)
class SmsFlyDeviceAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Devices by user; the number masked in the list. No code is stored to show."""

    list_display = ("name", "user", "masked_number", "confirmed", "last_used_at")
    list_filter = ("confirmed",)
    list_select_related = ("user",)
    raw_id_fields = ("user",)
    readonly_fields = (
        "created_at",
        "last_used_at",
        "throttling_failure_timestamp",
        "throttling_failure_count",
    )
    fieldsets = (
        (None, {"fields": ("user", "name", "number", "confirmed")}),
        (
            _("Use"),
            {
                "fields": (
                    "created_at",
                    "last_used_at",
                    "throttling_failure_timestamp",
                    "throttling_failure_count",
                )
            },
        ),
    )

    def get_search_fields(self, request: HttpRequest) -> tuple[str, ...]:
        """The device's name and number, and its user by their user name."""
        return ("name", "number", f"user__{get_user_model().USERNAME_FIELD}")

    @admin.display(description=_("phone number"))
    def masked_number(self, device: SmsFlyDevice) -> str:
        """The number with its middle digits hidden."""
        return device.masked_number
