"""The compose page's widgets: a textarea with a live counter, and the rules it counts by.

The counter is drawn by ``django_smsfly/compose.js`` as the operator types. It reads
the SMS alphabets and part limits from :func:`segment_rules` (put on the page), so the
browser counts by the same rules as :mod:`django_smsfly.segments`, the server and the bill.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from django_smsfly.segments import GSM7_BASIC, GSM7_EXTENSION, LIMITS, Encoding
from django_smsfly.validation import VIBER_TEXT_MAX


class CountedTextarea(forms.Textarea):
    """A textarea followed by a live counter (filled in by ``django_smsfly/compose.js``)."""

    template_name = "admin/django_smsfly/widgets/counted_textarea.html"

    def __init__(self, counter: str, attrs: dict[str, Any] | None = None) -> None:
        super().__init__({"rows": 4, "cols": 60, "data-smsfly-counter": counter, **(attrs or {})})

    def get_context(self, name: str, value: Any, attrs: dict[str, Any] | None) -> dict[str, Any]:
        context = super().get_context(name, value, attrs)
        # No maxlength: a browser counts it in UTF-16 units, so it would silently cut a
        # text with an emoji short of the limit. The counter shows the limit in
        # characters, as the form and SMS-fly count them, and the form enforces it.
        context["widget"]["attrs"].pop("maxlength", None)
        return context


def segment_rules() -> dict[str, Any]:
    """The SMS segment rules of :mod:`django_smsfly.segments`, for the page's counter.

    The script that counts as the operator types reads its alphabets and limits from
    here, so the browser and the server count by the same rules.
    """
    return {
        "gsm7": "".join(sorted(GSM7_BASIC)),
        "extension": "".join(sorted(GSM7_EXTENSION)),
        "limits": {encoding.value: list(limits) for encoding, limits in LIMITS.items()},
        "encodings": {"gsm7": Encoding.GSM7.value, "ucs2": Encoding.UCS2.value},
        "viberMax": VIBER_TEXT_MAX,
        "labels": {
            "length": str(_("Characters")),
            "parts": str(_("SMS parts")),
            "encoding": str(_("Encoding")),
            "remaining": str(_("Left in this part")),
        },
    }
