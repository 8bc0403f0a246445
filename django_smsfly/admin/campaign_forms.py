"""The campaign pages' forms: a new campaign, and its start.

:class:`NewCampaignForm` collects what :func:`django_smsfly.campaigns.create` takes: a
name, the CSV file, and either a :class:`~django_smsfly.models.MessageTemplate` or the
texts (with ``{column}`` placeholders), the channels and the sender names. The file's
own checks (its columns, its rows) are the engine's; the form checks only what it can
see by itself.

:class:`StartForm` is the check report's "Send now" / "Send at" form. It carries a
one-time token (:mod:`~django_smsfly.admin.formtokens`) bound to the user and the
campaign, so a form drawn for one campaign cannot start another; that a campaign starts
once however often its form is posted is the engine's promise (``campaigns.start`` moves
a draft on with a conditional update and returns False the second time).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, cast

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from django_smsfly.admin import formtokens
from django_smsfly.admin.lookups import SenderNames
from django_smsfly.admin.texts import CHANNEL_CHOICES, TypedTexts
from django_smsfly.channels import Channel
from django_smsfly.models import Campaign, MessageTemplate

if TYPE_CHECKING:  # pragma: no cover
    # A label: a string, or one translated when the form is drawn (django-stubs' name).
    from django.utils.functional import _StrOrPromise

#: The submit button names of the start form.
SEND_NOW = "_now"
SEND_AT = "_schedule"

_PLACEHOLDER_HELP = _(
    "Write {column} where a value of the file's column goes, e.g. “Hello, {name}!”. "
    "A row whose value is missing or empty is reported, not sent."
)


def _text_field(label: _StrOrPromise) -> forms.CharField:
    """A channel's text with ``{column}`` placeholders, as typed (not stripped)."""
    return forms.CharField(
        label=label,
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_PLACEHOLDER_HELP,
    )


def template_languages() -> list[tuple[str, str]]:
    """The languages the templates have variants in (not every language Django knows),
    each named as the site's ``LANGUAGES`` names it."""
    names = dict(settings.LANGUAGES)
    codes = (
        MessageTemplate.objects.exclude(language="")
        .order_by("language")
        .values_list("language", flat=True)
        .distinct()
    )
    return [(code, str(names.get(code, code))) for code in codes]


class TemplateChoiceField(forms.ModelChoiceField):  # type: ignore[type-arg]
    """A message template, named with its language variant."""

    def label_from_instance(self, obj: Any) -> str:
        template: MessageTemplate = obj
        if template.description:
            return f"{template} — {template.description}"
        return str(template)


class NewCampaignForm(TypedTexts, forms.Form):
    """A new campaign: a name, a CSV file, and a template or texts."""

    name = forms.CharField(label=_("Name"), max_length=200)
    file = forms.FileField(
        label=_("CSV file"),
        help_text=_(
            "One row per recipient, with a header row. The number is in the column named "
            "recipient; the other columns can be used in the texts."
        ),
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv"}),
    )
    template = TemplateChoiceField(
        label=_("Message template"),
        queryset=MessageTemplate.objects.all(),
        required=False,
        empty_label=_("— none: write the texts below —"),
    )
    language = forms.ChoiceField(label=_("Template language"), required=False)
    channels = forms.ChoiceField(
        label=_("Channels"),
        choices=CHANNEL_CHOICES,
        required=False,
        initial="sms",
        widget=forms.RadioSelect,
        help_text=_("With a template, its own channels are used."),
    )
    sms_source = forms.CharField(label=_("SMS sender"), required=False, max_length=32)
    sms_text = _text_field(_("SMS text"))
    viber_source = forms.CharField(label=_("Viber sender"), required=False, max_length=32)
    viber_text = _text_field(_("Viber text"))
    image = forms.URLField(
        label=_("Image URL"), required=False, assume_scheme="https", max_length=500
    )
    button_caption = forms.CharField(label=_("Button caption"), required=False, max_length=30)
    button_url = forms.URLField(
        label=_("Button URL"), required=False, assume_scheme="https", max_length=500
    )

    #: The admin's fieldsets for this form (drawn with the admin's own templates).
    fieldsets = (
        (None, {"fields": ("name", "file")}),
        (
            _("From a template"),
            {
                "fields": ("template", "language"),
                "description": _("Choose a template, or leave it empty and write the texts."),
            },
        ),
        (
            _("Or the texts"),
            {"fields": ("channels", "sms_source", "sms_text", "viber_source", "viber_text")},
        ),
        (_("Viber extras"), {"fields": ("image", ("button_caption", "button_url"))}),
    )

    def __init__(self, *args: Any, sender_names: SenderNames, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["language"]).choices = [
            ("", _("the template's default")),
            *template_languages(),
        ]
        for channel in (Channel.SMS, Channel.VIBER):
            names = sender_names.for_channel(channel)
            if names:
                field = f"{channel.value}_source"
                self.fields[field] = forms.ChoiceField(
                    label=self.fields[field].label,
                    required=False,
                    choices=[("", _("the default sender")), *((n, n) for n in names)],
                )

    def clean(self) -> dict[str, Any]:
        """A template, or texts for the chosen channels; never both."""
        data = super().clean()
        assert data is not None  # noqa: S101 - Form.clean returns cleaned_data
        texts = [name for name in ("sms_text", "viber_text") if data.get(name)]
        if data.get("template") is not None:
            if texts:
                raise ValidationError(
                    _("Choose a template or write the texts, not both."), code="both"
                )
            return data
        if not texts:
            raise ValidationError(
                _("Choose a message template or write the texts to send."), code="nothing"
            )
        channels = data.get("channels") or ""
        if not channels:
            self.add_error("channels", _("Choose the channels to send over."))
            return data
        if Channel.SMS.value in channels.split(",") and not data.get("sms_text"):
            self.add_error("sms_text", _("The SMS text is needed for the chosen channels."))
        if Channel.VIBER.value in channels.split(",") and not (
            data.get("viber_text") or data.get("image")
        ):
            self.add_error("viber_text", _("The Viber text is needed for the chosen channels."))
        return data

    def create_options(self) -> dict[str, Any]:
        """The keyword arguments of ``campaigns.create`` (all but the file and the user)."""
        data = self.cleaned_data
        options: dict[str, Any] = {
            "name": data["name"],
            "template": data["template"],
            "language": data["language"] or "",
            "sms_source": data["sms_source"] or "",
            "viber_source": data["viber_source"] or "",
            "image": data["image"] or "",
            "button_caption": data["button_caption"] or "",
            "button_url": data["button_url"] or "",
            "origin": Campaign.Origin.ADMIN,
        }
        if data["template"] is None:
            options.update(
                channels=data["channels"].split(","),
                sms_text=data["sms_text"],
                viber_text=data["viber_text"],
            )
        return options


class StartForm(forms.Form):
    """Start a checked campaign: now, or at a date and time in the admin's time zone."""

    token = formtokens.TokenField()
    send_date = forms.DateField(
        label=_("Date"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    send_time = forms.TimeField(
        label=_("Time"),
        required=False,
        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
    )

    def __init__(self, *args: Any, campaign: Campaign, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.campaign = campaign
        self.user = user
        if not self.is_bound:
            self.fields["token"].initial = formtokens.issue(user, self.purpose)
        #: Set by :meth:`clean`: the time to start at, or ``None`` for now.
        self.starts_at: dt.datetime | None = None

    @property
    def purpose(self) -> str:
        """What the form's token is good for: starting this campaign."""
        return f"campaign-start:{self.campaign.pk}"

    def clean_token(self) -> str:
        """The token, checked: drawn by this site, for this user and this campaign."""
        token: str = self.cleaned_data["token"]
        try:
            formtokens.redeem(token, self.user, self.purpose)
        except formtokens.FormTokenError as exc:
            raise ValidationError(str(exc), code="token") from None
        return token

    def clean(self) -> dict[str, Any]:
        """With "Send at": a date and a time, later than now, as an aware datetime."""
        data = super().clean()
        assert data is not None  # noqa: S101 - Form.clean returns cleaned_data
        if SEND_AT not in self.data:
            return data
        day, time = data.get("send_date"), data.get("send_time")
        if day is None:
            self.add_error("send_date", _("Give the date to send at."))
        if time is None:
            self.add_error("send_time", _("Give the time to send at."))
        if day is None or time is None:
            return data
        zone = timezone.get_current_timezone()
        at = dt.datetime.combine(day, time).replace(tzinfo=zone)
        if at <= timezone.now():
            raise ValidationError(
                _("That time has passed: choose a later one, or send now."), code="past"
            )
        self.starts_at = at
        return data
