"""The two forms of "verify your phone": the number, then the code."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _


class PhoneForm(forms.Form):
    """The number to send a code to (checked by ``send_code`` itself)."""

    number = forms.CharField(
        label=_("Phone number"),
        max_length=40,
        help_text=_("A Ukrainian mobile number, such as 050 123 4567."),
        widget=forms.TextInput(attrs={"autocomplete": "tel", "inputmode": "tel"}),
    )


class CodeForm(forms.Form):
    """The code that came by SMS."""

    code = forms.CharField(
        label=_("Code"),
        max_length=12,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}
        ),
    )
