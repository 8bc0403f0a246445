"""The admin of message templates: the list, a form checked on save, and a live preview.

- :class:`MessageTemplateForm` checks each text's syntax
  (:func:`~django_smsfly.templating.check_syntax`), that the chosen channels have their
  texts, and — rendered with sample values — every rule a send would apply: the SMS
  within ``SMSFLY["MAX_SMS_PARTS"]`` parts, the Viber text's length, a button with both
  caption and URL, an allowed Viber combination.
- The change page shows a preview (``django_smsfly/template_preview.js``): one input per
  variable the texts use, and the rendered SMS and Viber texts with the SMS counter
  (characters, parts, encoding), redrawn as the operator types. The rendering is done
  here, by :meth:`MessageTemplateAdmin.preview_view` (POST, CSRF-protected, for staff
  who may add or change templates), with the same code as a real send.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, cast

from django import forms
from django.conf import settings
from django.contrib import admin
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.urls import URLPattern
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from django_smsfly import templating
from django_smsfly.admin.pages import own_urls
from django_smsfly.admin.texts import CHANNEL_CHOICES, one_line_break
from django_smsfly.channels import Channel
from django_smsfly.conf import smsfly_settings
from django_smsfly.exceptions import SmsFlyValidationError
from django_smsfly.models import MessageTemplate
from django_smsfly.segments import count_segments
from django_smsfly.validation import (
    VIBER_TEXT_MAX,
    SmsContent,
    ViberContent,
    sms_block,
    validate_channels,
    viber_block,
)

#: The prefix of a sample value's field in the posted form: ``sample-name``.
SAMPLE_PREFIX = "sample-"
#: The template's texts, and the channel each belongs to.
TEXT_FIELDS = {
    "sms_text": Channel.SMS,
    "viber_text": Channel.VIBER,
    "button_caption": Channel.VIBER,
}
#: Where an error of :mod:`django_smsfly.validation` (by its ``field``) is shown.
ERROR_FIELDS = {
    "channels": "channels",
    "sms": "sms_text",
    "sms.text": "sms_text",
    "viber": "viber_text",
    "viber.text": "viber_text",
    "viber.image": "image",
    "viber.button": "button_caption",
    "viber.button_caption": "button_caption",
    "viber.button_url": "button_url",
}
_LANGUAGE_CODE = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{2,8})*$")
#: A stand-in sender name: the sample render checks content, not senders.
_ANY_SOURCE = "-"


def samples_from(data: Mapping[str, Any]) -> dict[str, str]:
    """The sample values in posted form data (``sample-<name>`` fields)."""
    return {
        key.removeprefix(SAMPLE_PREFIX): str(value)
        for key, value in data.items()
        if key.startswith(SAMPLE_PREFIX)
    }


@dataclass
class SampleRender:
    """A template's texts rendered with sample values, and what is wrong with them."""

    channels: tuple[Channel, ...] = ()
    #: The names the texts use, sorted.
    variables: list[str] = field(default_factory=list)
    #: Rendered texts by form field (``sms_text``...), for the channels chosen.
    texts: dict[str, str] = field(default_factory=dict)
    #: Problems by form field.
    errors: dict[str, list[str]] = field(default_factory=dict)

    def add_error(self, name: str, message: str) -> None:
        self.errors.setdefault(name, []).append(message)

    def as_json(self) -> dict[str, Any]:
        """The preview's answer to the page."""
        data: dict[str, Any] = {
            "channels": [channel.value for channel in self.channels],
            "variables": self.variables,
            "errors": self.errors,
            "sms": None,
            "viber": None,
        }
        if "sms_text" in self.texts:
            text = self.texts["sms_text"]
            counted = count_segments(text)
            data["sms"] = {
                "text": text,
                "length": counted.length,
                "parts": counted.parts,
                "encoding": counted.encoding.value,
                "remaining": counted.remaining,
                "max_parts": smsfly_settings.MAX_SMS_PARTS,
            }
        if "viber_text" in self.texts or "button_caption" in self.texts:
            text = self.texts.get("viber_text", "")
            data["viber"] = {
                "text": text,
                "length": len(text),
                "max": VIBER_TEXT_MAX,
                "button_caption": self.texts.get("button_caption", ""),
            }
        return data


def sample_render(fields: Mapping[str, str], samples: Mapping[str, str]) -> SampleRender:
    """Render the texts in ``fields`` (the form's names) with ``samples``.

    A variable without a sample is given its own name, so that a new template can be
    checked before anyone typed a sample; a sample left empty stays empty, and is
    reported as a real send would report it.
    """
    result = SampleRender()
    try:
        result.channels = validate_channels(fields.get("channels", "").split(","))
    except SmsFlyValidationError as exc:
        result.add_error("channels", exc.reason)
        return result
    used = [name for name, channel in TEXT_FIELDS.items() if channel in result.channels]
    compiled: list[str] = []
    names: set[str] = set()
    for name in used:
        text = one_line_break(fields.get(name, ""))
        try:
            names |= templating.variables(text)
        except templating.TemplateError as exc:
            result.add_error(name, exc.reason)
            continue
        compiled.append(name)
    result.variables = sorted(names)
    values = {name: samples.get(name, name) for name in names}
    for name in compiled:
        text = one_line_break(fields.get(name, ""))
        try:
            result.texts[name] = templating.render_text(text, values) if text else ""
        except templating.TemplateError as exc:
            result.add_error(exc.field or name, exc.reason)
    if not result.errors:
        _check_content(fields, result)
    return result


def _check_content(fields: Mapping[str, str], result: SampleRender) -> None:
    """Apply a send's rules to the rendered texts (one error per channel at most)."""
    texts = result.texts
    if Channel.SMS in result.channels:
        try:
            sms_block(
                SmsContent(text=texts.get("sms_text", "")),
                _ANY_SOURCE,
                smsfly_settings.MAX_SMS_PARTS,
            )
        except SmsFlyValidationError as exc:
            result.add_error(ERROR_FIELDS.get(exc.field or "", "sms_text"), exc.reason)
    if Channel.VIBER in result.channels:
        content = ViberContent(
            text=texts.get("viber_text") or None,
            image=fields.get("image") or None,
            button_caption=texts.get("button_caption") or None,
            button_url=fields.get("button_url") or None,
        )
        try:
            viber_block(content, _ANY_SOURCE)
        except SmsFlyValidationError as exc:
            result.add_error(ERROR_FIELDS.get(exc.field or "", "viber_text"), exc.reason)


class MessageTemplateForm(forms.ModelForm):  # type: ignore[type-arg]
    """A template's texts, checked as a send would check them."""

    channels = forms.ChoiceField(
        label=_("Channels"), choices=CHANNEL_CHOICES, initial="sms", widget=forms.RadioSelect
    )
    image = forms.URLField(
        label=_("Image URL"),
        required=False,
        max_length=500,
        assume_scheme="https",
        help_text=_(
            "An https:// address of the picture. SMS-fly fetches it; this site never does."
        ),
    )
    button_url = forms.URLField(
        label=_("Button URL"), required=False, max_length=500, assume_scheme="https"
    )
    language = forms.ChoiceField(
        label=_("Language"),
        required=False,
        help_text=_(
            "The variant for this language; the default variant (no language) is used "
            "when there is none for the recipient's language."
        ),
    )

    class Meta:
        model = MessageTemplate
        fields = (
            "name",
            "language",
            "channels",
            "description",
            "sms_text",
            "viber_text",
            "image",
            "button_caption",
            "button_url",
        )
        widgets: ClassVar[dict[str, forms.Widget]] = {
            "sms_text": forms.Textarea(attrs={"rows": 4, "cols": 60}),
            "viber_text": forms.Textarea(attrs={"rows": 4, "cols": 60}),
        }
        help_texts: ClassVar[dict[str, Any]] = {
            "sms_text": _(
                "In Django's template language: {{ name }} is a value given at send time, "
                'and is required; {{ name|default:"friend" }} allows it to be empty.'
            ),
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choices = [("", gettext("Default (any language)"))]
        choices += [(code, f"{label} ({code})") for code, label in settings.LANGUAGES]
        current = self.instance.language
        if current and current not in {code for code, _label in choices}:
            choices.append((current, current))  # written by code: keep it selectable
        language = cast(forms.ChoiceField, self.fields["language"])
        language.choices = choices

    def clean_language(self) -> str:
        """A lower-case language code (``uk``, ``pt-br``), or empty."""
        value: str = self.cleaned_data.get("language", "").strip().lower().replace("_", "-")
        if value and not _LANGUAGE_CODE.match(value):
            raise ValidationError(_("Not a language code."), code="invalid_language")
        return value

    def _clean_text(self, name: str) -> str:
        text = one_line_break(self.cleaned_data.get(name, ""))
        if text:
            templating.check_syntax(text)
        return text

    def clean_sms_text(self) -> str:
        """The SMS text, its syntax checked."""
        return self._clean_text("sms_text")

    def clean_viber_text(self) -> str:
        """The Viber text, its syntax checked."""
        return self._clean_text("viber_text")

    def clean_button_caption(self) -> str:
        """The button caption, its syntax checked."""
        return self._clean_text("button_caption")

    def clean(self) -> dict[str, Any]:
        """Render the texts with the page's sample values and check them as a send would."""
        cleaned = super().clean() or {}
        if self.errors:
            return cleaned
        fields = {name: str(cleaned.get(name) or "") for name in self.Meta.fields}
        # A sample the operator emptied is for the preview; saving checks with the name.
        samples = {key: value for key, value in samples_from(self.data).items() if value.strip()}
        checked = sample_render(fields, samples)
        for name, messages in checked.errors.items():
            for message in messages:
                self.add_error(name if name in self.fields else None, message)
        return cleaned


class MessageTemplateAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Message templates: list, search, and a change page with a live preview."""

    form = MessageTemplateForm
    change_form_template = "admin/django_smsfly/template/change_form.html"
    list_display = ("name", "language_shown", "channels", "description", "updated_at")
    list_filter = ("language", "channels")
    search_fields = ("name", "description", "sms_text", "viber_text")
    ordering = ("name", "language")
    fieldsets = (
        (None, {"fields": ("name", "language", "channels", "description")}),
        (_("SMS"), {"fields": ("sms_text",), "classes": ("smsfly-channel-sms",)}),
        (
            _("Viber"),
            {
                "fields": ("viber_text", "image", ("button_caption", "button_url")),
                "classes": ("smsfly-channel-viber",),
                "description": _(
                    "Allowed: a text; an image; a text with a button; a text with a button "
                    "and an image."
                ),
            },
        ),
    )

    class Media:
        js = ("django_smsfly/template_preview.js",)
        css: ClassVar[dict[str, tuple[str, ...]]] = {
            "all": ("django_smsfly/admin.css", "django_smsfly/template_preview.css")
        }

    @admin.display(description=_("language"), ordering="language")
    def language_shown(self, obj: MessageTemplate) -> str:
        """The language, or that this is the default variant."""
        return obj.language or gettext("default")

    def get_urls(self) -> list[URLPattern]:
        return own_urls(self, [("preview/", "preview", self.preview_view)]) + super().get_urls()

    def preview_view(self, request: HttpRequest) -> HttpResponse:
        """The preview of the texts being edited (POST; JSON: texts, counter, errors)."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not (self.has_add_permission(request) or self.has_change_permission(request)):
            raise PermissionDenied
        fields = {
            name: str(request.POST.get(name, "")) for name in MessageTemplateForm.Meta.fields
        }
        checked = sample_render(fields, samples_from(request.POST))
        return JsonResponse(checked.as_json())
