"""The message texts an operator types into the admin's forms (compose, a new campaign, a
template): the channels they are for, and their line breaks as the message holds them.

- :data:`CHANNEL_CHOICES`: the channels an operator picks from, in fallback order.
- :func:`one_line_break`: a typed line break as the one character it is.
- :class:`TypedTexts`: a form mixin that cleans ``sms_text`` and ``viber_text`` so.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _

#: The channel choices an operator picks from: value -> channels in fallback order.
CHANNEL_CHOICES = (
    ("sms", _("SMS")),
    ("viber", _("Viber")),
    ("viber,sms", _("Viber, with an SMS if Viber fails")),
)


def one_line_break(text: str) -> str:
    """``text`` with each CR LF as one LF."""
    # Browsers submit a textarea's line breaks as CR LF; the operator typed one break,
    # and counting it as two would put the SMS counter and the bill at odds.
    return text.replace("\r\n", "\n")


class TypedTexts:
    """A form mixin: its ``sms_text`` and ``viber_text`` fields, line breaks as typed."""

    cleaned_data: dict[str, Any]

    def clean_sms_text(self) -> str:
        """The SMS text with browser line breaks (CR LF) as the one character they are."""
        return one_line_break(self.cleaned_data["sms_text"])

    def clean_viber_text(self) -> str:
        """The Viber text, line breaks as for the SMS text."""
        return one_line_break(self.cleaned_data["viber_text"])
