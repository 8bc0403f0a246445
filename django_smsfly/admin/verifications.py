"""The Verification admin: a read-only record of one-time codes and refused requests, and
the fraud guard page.

- The list shows each code sent or request refused: when, the number (masked when
  ``SMSFLY["MASK_RECIPIENTS"]`` is on), the purpose, what became of it, the country,
  the client's address and the tries. No code is anywhere: the rows hold only a keyed
  hash of it, and the admin does not show even that.
- A row's page is read-only, with a link to the message that carried the code (its
  text masked there).
- The "Fraud guard" page (:func:`fraud_guard_page`, the *view* permission) counts the
  last 30 days: codes sent and verified, refusals by reason, and by country, and the
  client networks refused most often.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, reverse
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from django_smsfly.admin import pages
from django_smsfly.conf import smsfly_settings
from django_smsfly.exceptions import SmsFlyValidationError
from django_smsfly.models import Verification
from django_smsfly.privacy import display_recipient
from django_smsfly.validation import normalize_recipient
from django_smsfly.verification.clientip import network_of, parse_address
from django_smsfly.verification.report import fraud_report

#: Where the pages' templates are.
TEMPLATES = "admin/django_smsfly/verification/"
#: The days the fraud guard page covers, today included.
DAYS = 30

#: How each outcome reads: the badge colours of the message list.
OUTCOME_KINDS = {
    "verified": "success",
    "waiting": "pending",
    "expired": "neutral",
    "locked": "failure",
    "not_sent": "failure",
    "refused": "failure",
}


class OutcomeFilter(admin.SimpleListFilter):
    """Codes sent, codes verified, or requests refused."""

    title = _("outcome")
    parameter_name = "outcome"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [
            ("sent", _("code sent")),
            ("verified", _("verified")),
            ("refused", _("refused")),
        ]

    def queryset(
        self, request: HttpRequest, queryset: QuerySet[Verification]
    ) -> QuerySet[Verification]:
        if self.value() == "sent":
            return queryset.filter(refusal="")
        if self.value() == "verified":
            return queryset.filter(verified_at__isnull=False)
        if self.value() == "refused":
            return queryset.exclude(refusal="")
        return queryset


class VerificationAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """One-time codes: a read-only list and record, and the fraud guard page."""

    list_display = (
        "created_at",
        "recipient_display",
        "purpose",
        "outcome_badge",
        "country",
        "client_ip",
        "attempts",
        "message_link",
    )
    list_filter = (OutcomeFilter, "refusal", "country", "purpose", "created_at")
    search_fields = ("=recipient", "=purpose", "=client_network")
    search_help_text = _("Finds a number however it is written, a purpose, or a client address.")
    list_select_related = ("message",)
    show_full_result_count = False
    change_list_template = TEMPLATES + "change_list.html"
    # Never the code's hash: it is of no use to anyone reading the page.
    fields = (
        "recipient",
        "purpose",
        "outcome_badge",
        "country",
        "created_at",
        "expires_at",
        "attempts",
        "verified_at",
        "message_link",
        "client_ip",
        "client_network",
        "refusal",
        "cost",
    )
    readonly_fields = fields

    class Media:
        css: ClassVar[dict[str, tuple[str, ...]]] = {"all": ("django_smsfly/admin.css",)}

    # -- a record: nothing to add or change -------------------------------------------

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    # -- the list ---------------------------------------------------------------------

    @admin.display(description=_("recipient"), ordering="recipient")
    def recipient_display(self, obj: Verification) -> str:
        """The number, masked when ``SMSFLY["MASK_RECIPIENTS"]`` is on."""
        return display_recipient(obj.recipient)

    @admin.display(description=_("outcome"))
    def outcome_badge(self, obj: Verification) -> str:
        """What became of the code (or why none was sent), as a coloured badge."""
        return format_html(
            '<span class="smsfly-badge smsfly-badge-{}">{}</span>',
            OUTCOME_KINDS[obj.outcome],
            obj.outcome_label,
        )

    @admin.display(description=_("message"))
    def message_link(self, obj: Verification) -> str:
        """The message that carried the code, with its state."""
        if obj.message is None:
            return "—"
        url = reverse(
            f"{self.admin_site.name}:django_smsfly_message_change", args=[obj.message.pk]
        )
        return format_html('<a href="{}">#{} · {}</a>', url, obj.message.pk, obj.message.state)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Verification], search_term: str
    ) -> tuple[QuerySet[Verification], bool]:
        """Also find a number however it is written, and an address by its network."""
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        try:
            number = normalize_recipient(search_term, smsfly_settings.DEFAULT_REGION)
        except SmsFlyValidationError:
            pass
        else:
            results |= queryset.filter(recipient=number)
        address = parse_address(search_term)
        if address is not None:
            results |= queryset.filter(client_network=network_of(address))
        return results, may_have_duplicates

    # -- the fraud guard page -----------------------------------------------------------

    def get_urls(self) -> list[URLPattern]:
        ours = pages.own_urls(self, [("fraud-guard/", "fraud_guard", self.fraud_guard_view)])
        return ours + super().get_urls()

    def fraud_guard_view(self, request: HttpRequest) -> HttpResponse:
        """Codes and refusals per day for the last :data:`DAYS` days."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        return fraud_guard_page(self, request)


def fraud_guard_page(model_admin: VerificationAdmin, request: HttpRequest) -> TemplateResponse:
    """The fraud guard page: :func:`~django_smsfly.verification.report.fraud_report`
    of the last :data:`DAYS` days, as tables."""
    return pages.render(
        model_admin,
        request,
        "fraud_guard.html",
        title=gettext("Fraud guard"),
        report=fraud_report(DAYS),
        reasons=[label for _value, label in Verification.Refusal.choices],
        days=DAYS,
    )
