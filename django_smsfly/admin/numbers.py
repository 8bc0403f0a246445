"""Phone numbers as operators type them: a form field's cleaning, and list search that
finds a number however it is written (``050 123 4567``, ``+380 50 123 45 67``)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from django_smsfly.conf import smsfly_settings
from django_smsfly.exceptions import SmsFlyValidationError
from django_smsfly.validation import normalize_recipient


def typed_number(value: str) -> str:
    """A number typed into a form, as international digits (``380501234567``); a form
    error that shows how to write it when it is not a mobile number."""
    try:
        return normalize_recipient(value, smsfly_settings.DEFAULT_REGION)
    except SmsFlyValidationError:
        raise ValidationError(
            _(
                "“%(value)s” is not a mobile number. Write it as 050 123 4567, "
                "+380 50 123 4567 or 380501234567."
            ),
            code="invalid_recipient",
            params={"value": value},
        ) from None


class NumberSearch:
    """A ModelAdmin mixin: the search also finds the model's ``recipient`` by any
    written form of the number."""

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Any], search_term: str
    ) -> tuple[QuerySet[Any], bool]:
        """The admin's own search, or'ed with the number the term is, if it is one."""
        results: QuerySet[Model]
        results, may_have_duplicates = super().get_search_results(  # type: ignore[misc]
            request, queryset, search_term
        )
        try:
            number = normalize_recipient(search_term, smsfly_settings.DEFAULT_REGION)
        except SmsFlyValidationError:
            return results, may_have_duplicates
        return results | queryset.filter(recipient=number), may_have_duplicates
