"""The opt-out list in the admin: see it, search it, add a number, import a file, remove.

- The list shows each number (masked under ``SMSFLY["MASK_RECIPIENTS"]``, as the
  message list does), how it came on the list, its note, when and by whom; a search
  finds a number however it is written; a filter picks by source.
- *Add* takes a number in any usual form and stores it as every send compares it
  (international digits); a number already on the list is a clear form error.
- *Import* (:func:`import_view`) reads a CSV file with a ``recipient`` column or a list
  with one number per line, as a stream (:mod:`~django_smsfly.admin.optout_lists`), and
  reports what it added, what was already there and which lines were invalid.
- *Delete* is the admin's own, with its confirmation, and is recorded in the history.

A number on the list gets no message: every send to it is recorded ``failed`` with
``OPTED_OUT`` and makes no request (unless sent with ``ignore_opt_out=True``).
"""

from __future__ import annotations

from typing import Any, ClassVar

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern
from django.utils import formats, timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from django_smsfly.admin import pages
from django_smsfly.admin.numbers import NumberSearch, typed_number
from django_smsfly.admin.optout_lists import import_numbers
from django_smsfly.models import OptOut
from django_smsfly.privacy import display_recipient

#: Where the opt-out pages' templates are.
TEMPLATES = "admin/django_smsfly/optout/"


class OptOutForm(forms.ModelForm):  # type: ignore[type-arg]
    """A number to put on the list, written any usual way, and a note."""

    recipient = forms.CharField(
        label=_("Number"),
        max_length=40,
        help_text=_("Written any usual way: 050 123 4567, +380 50 123 4567 or 380501234567."),
        widget=forms.TextInput(attrs={"autocomplete": "off", "inputmode": "tel"}),
    )

    class Meta:
        model = OptOut
        fields = ("recipient", "note")

    def clean_recipient(self) -> str:
        """International digits; a number already on the list says so (and when)."""
        number = typed_number(self.cleaned_data["recipient"])
        found = OptOut.objects.filter(recipient=number).first()
        if found is not None:
            raise ValidationError(
                _("%(number)s is already on the opt-out list (since %(date)s)."),
                code="already_opted_out",
                params={
                    "number": display_recipient(number),
                    "date": formats.date_format(timezone.localtime(found.created_at)),
                },
            )
        return number


class ImportForm(forms.Form):
    """A file of numbers to put on the list."""

    file = forms.FileField(
        label=_("File"),
        help_text=_(
            "A CSV file with a “recipient” column (comma, semicolon or tab separated), or "
            "a text file with one number per line. UTF-8."
        ),
    )
    note = forms.CharField(
        label=_("Note"),
        required=False,
        max_length=255,
        help_text=_("Kept with every number added, e.g. where the list came from."),
    )


class OptOutAdmin(NumberSearch, admin.ModelAdmin):  # type: ignore[type-arg]
    """The numbers that get no messages."""

    form = OptOutForm
    list_display = ("recipient_display", "source", "note", "created_at", "created_by")
    list_filter = ("source", "created_at")
    search_fields = ("recipient", "note")
    search_help_text = _("Finds a number however it is written, or words of the note.")
    list_select_related = ("created_by",)
    date_hierarchy = "created_at"
    show_full_result_count = False
    change_list_template = TEMPLATES + "change_list.html"

    class Media:
        css: ClassVar[dict[str, tuple[str, ...]]] = {"all": ("django_smsfly/admin.css",)}

    @admin.display(description=_("number"), ordering="recipient")
    def recipient_display(self, obj: OptOut) -> str:
        """The number, masked in the list when ``SMSFLY["MASK_RECIPIENTS"]`` is on."""
        return display_recipient(obj.recipient)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        if obj is None:
            return ("recipient", "note")
        return ("recipient", "source", "note", "created_at", "created_by")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        # Once on the list a number is a fact: only its note may change.
        if obj is None:
            return []
        return ["recipient", "source", "created_at", "created_by"]

    def save_model(self, request: HttpRequest, obj: OptOut, form: Any, change: bool) -> None:
        if not change:
            obj.source = OptOut.Source.MANUAL
            obj.created_by = request.user  # type: ignore[assignment]
        super().save_model(request, obj, form, change)

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        context = {"smsfly_can_import": self.has_add_permission(request), **(extra_context or {})}
        return super().changelist_view(request, context)

    def get_urls(self) -> list[URLPattern]:
        return pages.own_urls(self, [("import/", "import", self.import_view)]) + super().get_urls()

    def import_view(self, request: HttpRequest) -> HttpResponse:
        """Upload a file of numbers; the page then shows what became of its lines."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        report = None
        if request.method == "POST":
            form = ImportForm(request.POST, request.FILES)
            if form.is_valid():
                report = import_numbers(
                    form.cleaned_data["file"],
                    created_by=request.user,
                    note=form.cleaned_data["note"],
                )
        else:
            form = ImportForm()
        return pages.render(
            self,
            request,
            "import.html",
            title=gettext("Import opt-outs"),
            form=form,
            report=report,
            media=self.media + form.media,
        )
