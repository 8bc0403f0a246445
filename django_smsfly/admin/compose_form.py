"""The compose form: a message to send from the admin, checked by the app's rules.

:class:`ComposeForm` collects the recipient, the channels in fallback order and each
channel's content; :meth:`ComposeForm.clean` hands them to the client's validation (the
rules of :mod:`django_smsfly.validation`, the same that guard every send) and attaches
each :class:`~django_smsfly.exceptions.SmsFlyValidationError` to the field it names. A
valid form is a :class:`Composed` message: it can estimate its cost (:class:`Estimate`)
and send it, once under the drawn form's one-time token. The page that draws it is
:mod:`~django_smsfly.admin.compose`; the live counter under the texts is in
:mod:`~django_smsfly.admin.widgets`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar, cast

from django import forms
from django.core.exceptions import ValidationError
from django.http import QueryDict
from django.utils import timezone
from django.utils.text import capfirst
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from django_smsfly import services, taskcompat
from django_smsfly.admin import formtokens
from django_smsfly.admin.lookups import SenderNames
from django_smsfly.admin.numbers import typed_number
from django_smsfly.admin.texts import CHANNEL_CHOICES, TypedTexts
from django_smsfly.admin.widgets import CountedTextarea
from django_smsfly.channels import Channel
from django_smsfly.conf import smsfly_settings
from django_smsfly.exceptions import SmsFlyError, SmsFlyValidationError
from django_smsfly.models import ChannelChoices, Message
from django_smsfly.segments import Segments, count_segments
from django_smsfly.validation import (
    BUTTON_CAPTION_MAX,
    VIBER_TEXT_MAX,
    SmsContent,
    ViberContent,
    sms_block,
    viber_block,
)

SEND_NOW = "now"
SEND_IN_BACKGROUND = "background"
SEND_MODE_CHOICES = (
    (SEND_NOW, _("Send now and wait for SMS-fly's answer")),
    (SEND_IN_BACKGROUND, _("Send in the background")),
)
#: How far ahead a message may be scheduled from the compose page (days).
SEND_AT_MAX_DAYS = 30
#: An SMS of more parts than this is sent only once the operator confirmed its parts
#: and cost (``MessageAdmin.compose_confirm_parts`` overrides it; 0: never asked).
CONFIRM_PARTS_ABOVE = 3
#: The POST field of the confirmation's button.
CONFIRM_PARTS = "confirm_parts"
#: The page the compose form's one-time tokens belong to (:mod:`.formtokens`).
FORM_PAGE = "compose"

_T = TypeVar("_T")

_SMS_FIELDS = ("sms_source", "sms_text")
_VIBER_FIELDS = (
    "viber_source",
    "viber_text",
    "viber_image",
    "viber_button_caption",
    "viber_button_url",
)

#: Where an error of :mod:`django_smsfly.validation` (by its ``field``) is shown.
ERROR_FIELDS = {
    "recipient": "recipient",
    "channels": "channels",
    "sms": "sms_text",
    "sms.text": "sms_text",
    "sms.source": "sms_source",
    "viber": "viber_text",
    "viber.text": "viber_text",
    "viber.image": "viber_image",
    "viber.button": "viber_button_caption",
    "viber.button_caption": "viber_button_caption",
    "viber.button_url": "viber_button_url",
    "viber.source": "viber_source",
}


@dataclass(frozen=True)
class Composed:
    """A valid message from the form, as :func:`~django_smsfly.services.send_message`
    takes it."""

    recipient: str
    channels: tuple[Channel, ...]
    sms: SmsContent | None
    viber: ViberContent | None
    background: bool
    #: Not to be sent before this (an aware datetime); ``None``: now.
    send_at: dt.datetime | None = None
    #: Sent even if the number opted out (a transactional message).
    ignore_opt_out: bool = False
    #: The drawn form's one-time key: every POST of the form sends under it.
    idempotency_key: str | None = None


@dataclass(frozen=True)
class EstimateRow:
    """One channel's line of a cost estimate."""

    label: str
    #: ``None`` when the price list has no price for the recipient's network.
    cost: Decimal | None


@dataclass(frozen=True)
class Estimate:
    """A cost estimate as the compose page shows it."""

    rows: tuple[EstimateRow, ...] = ()
    #: The cost when the first channel delivers (the usual case).
    first: Decimal | None = None
    #: The cost if every channel is paid for.
    most: Decimal | None = None
    #: The SMS text's parts and encoding, when an SMS is part of the message.
    segments: Segments | None = None
    #: Set instead of the figures when the price list could not be had.
    error: str = ""


class ComposeForm(TypedTexts, forms.Form):
    """A message to send from the admin."""

    recipient = forms.CharField(
        label=_("Recipient"),
        max_length=40,
        help_text=_(
            "A mobile number written any usual way: 050 123 4567, +380 50 123 4567 "
            "or 380501234567."
        ),
        widget=forms.TextInput(attrs={"autocomplete": "off", "inputmode": "tel"}),
    )
    channels = forms.ChoiceField(
        label=_("Channels"),
        choices=CHANNEL_CHOICES,
        initial="sms",
        widget=forms.RadioSelect,
    )
    sms_source = forms.ChoiceField(label=_("SMS sender"), required=False)
    sms_text = forms.CharField(
        label=_("SMS text"),
        required=False,
        strip=False,
        widget=CountedTextarea("sms"),
        help_text=_(
            "160 characters make one SMS (70 when the text has characters outside the "
            "GSM alphabet, such as Cyrillic); longer texts are sent and billed in parts."
        ),
    )
    viber_source = forms.ChoiceField(label=_("Viber sender"), required=False)
    viber_text = forms.CharField(
        label=_("Viber text"),
        required=False,
        strip=False,
        max_length=VIBER_TEXT_MAX,
        widget=CountedTextarea("viber"),
    )
    viber_image = forms.URLField(
        label=_("Image URL"),
        required=False,
        assume_scheme="https",
        help_text=_(
            "An https:// address of the picture. SMS-fly fetches it; this site never does."
        ),
    )
    viber_button_caption = forms.CharField(
        label=_("Button caption"), required=False, max_length=BUTTON_CAPTION_MAX
    )
    viber_button_url = forms.URLField(label=_("Button URL"), required=False, assume_scheme="https")
    send_mode = forms.ChoiceField(
        label=_("When"),
        choices=SEND_MODE_CHOICES,
        initial=SEND_NOW,
        widget=forms.RadioSelect,
    )
    send_at = forms.DateTimeField(
        label=_("Send at"),
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    ignore_opt_out = forms.BooleanField(
        label=_("Ignore the opt-out list (transactional)"),
        required=False,
        help_text=_(
            "Only for a message the recipient must get even after opting out of messages, "
            "such as an order confirmation or a security notice."
        ),
    )
    token = formtokens.TokenField()

    #: The admin's fieldsets for this form (rendered with the admin's own templates).
    fieldsets = (
        (None, {"fields": ("recipient", "channels")}),
        # Viber first: with "Viber, then SMS" the SMS is the fallback, so it comes second.
        (
            _("Viber"),
            {
                "fields": (
                    "viber_source",
                    "viber_text",
                    "viber_image",
                    ("viber_button_caption", "viber_button_url"),
                ),
                "classes": ("smsfly-channel-viber",),
                "description": _(
                    "Allowed: a text; an image; a text with a button; a text with a button "
                    "and an image."
                ),
            },
        ),
        (_("SMS"), {"fields": ("sms_source", "sms_text"), "classes": ("smsfly-channel-sms",)}),
        (_("Sending"), {"fields": ("send_mode", "send_at", "ignore_opt_out")}),
    )

    class Media:
        js = ("django_smsfly/compose.js",)

    def __init__(
        self, *args: Any, sender_names: SenderNames, user: Any = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.sender_names = sender_names
        self.user = user
        self.composed: Composed | None = None
        #: The posted one-time token was refused (see :meth:`renew_token`).
        self.token_refused = False
        if not self.is_bound:
            self.initial["token"] = formtokens.issue(user, FORM_PAGE)
        self.fields["send_at"].help_text = _(
            "Leave empty to send now. In %(zone)s time, at most %(days)d days ahead."
        ) % {"zone": timezone.get_current_timezone_name(), "days": SEND_AT_MAX_DAYS}
        defaults = {
            Channel.SMS: smsfly_settings.SMS_SOURCE,
            Channel.VIBER: smsfly_settings.VIBER_SOURCE,
        }
        if not taskcompat.AVAILABLE:
            # No task framework installed: there is no background to send in.
            self.fields["send_mode"] = forms.ChoiceField(
                label=self.fields["send_mode"].label,
                choices=SEND_MODE_CHOICES[:1],
                initial=SEND_NOW,
                widget=forms.RadioSelect,
            )
        for channel in (Channel.SMS, Channel.VIBER):
            name = f"{channel.value}_source"
            label = self.fields[name].label
            names = sender_names.for_channel(channel)
            if names:
                self.fields[name] = forms.ChoiceField(
                    label=label, required=False, choices=[(n, n) for n in names]
                )
                default = defaults[channel]
                self.fields[name].initial = default if default in names else names[0]
            else:
                # No names known at all: let the operator type the one to use.
                self.fields[name] = forms.CharField(label=label, required=False, max_length=64)

    def clean_recipient(self) -> str:
        """The number as international digits (``380501234567``)."""
        return typed_number(self.cleaned_data["recipient"])

    def clean_send_at(self) -> dt.datetime | None:
        """A time in the future, and not too far in it."""
        value: dt.datetime | None = self.cleaned_data.get("send_at")
        if value is None:
            return None
        now = timezone.now()
        if value <= now:
            raise ValidationError(
                _("Pick a time in the future, or leave it empty to send now."),
                code="send_at_past",
            )
        if value > now + dt.timedelta(days=SEND_AT_MAX_DAYS):
            raise ValidationError(
                _("A message can be scheduled at most %(days)d days ahead."),
                code="send_at_too_far",
                params={"days": SEND_AT_MAX_DAYS},
            )
        return value

    def clean(self) -> dict[str, Any]:
        """Check the whole message with the app's validation rules.

        Each chosen channel's content is checked on its own first, so that a bad number
        and a bad Viber combination are both reported at once; then the whole message,
        exactly as it would be sent.
        """
        super().clean()
        data = self.cleaned_data
        key = self._redeem_token()
        if "channels" not in data:
            return data
        channels = tuple(Channel(name) for name in data["channels"].split(","))
        client = services.get_client()
        sms = viber = None
        if Channel.SMS in channels and not self._has_errors(*_SMS_FIELDS):
            sms = SmsContent(text=data["sms_text"], source=data["sms_source"] or None)
            self._check(lambda: sms_block(sms, client.sms_source, client.max_sms_parts))
        if Channel.VIBER in channels and not self._has_errors(*_VIBER_FIELDS):
            viber = ViberContent(
                text=data["viber_text"] or None,
                image=data["viber_image"] or None,
                button_caption=data["viber_button_caption"] or None,
                button_url=data["viber_button_url"] or None,
                source=data["viber_source"] or None,
            )
            self._check(lambda: viber_block(viber, client.viber_source))
        if self.errors:
            return data
        prepared = self._check(
            lambda: client.prepare(data["recipient"], channels=channels, sms=sms, viber=viber)
        )
        if prepared is not None:
            self.composed = Composed(
                recipient=prepared.recipient,
                channels=prepared.channels,
                sms=sms,
                viber=viber,
                background=data["send_mode"] == SEND_IN_BACKGROUND,
                send_at=data.get("send_at"),
                ignore_opt_out=bool(data.get("ignore_opt_out")),
                idempotency_key=key,
            )
        return data

    def _redeem_token(self) -> str | None:
        """The one-time key of the posted form, or ``None`` with a form error."""
        try:
            return formtokens.redeem(self.data.get("token", ""), self.user, FORM_PAGE)
        except formtokens.FormTokenError as exc:
            self.token_refused = True
            self.add_error(
                None,
                gettext("%(problem)s Nothing was sent. Check the form below and send it again.")
                % {"problem": exc},
            )
            return None

    def renew_token(self) -> None:
        """Draw the form again with a fresh token, after the posted one was refused."""
        # The page binds the form to request.POST: an immutable QueryDict.
        data = cast(QueryDict, self.data).copy()
        data["token"] = formtokens.issue(self.user, FORM_PAGE)
        self.data = data

    def _has_errors(self, *names: str) -> bool:
        return any(name in self.errors for name in names)

    def _check(self, rule: Callable[[], _T]) -> _T | None:
        """Run a rule of :mod:`~django_smsfly.validation`; its error goes to its field."""
        try:
            return rule()
        except SmsFlyValidationError as exc:
            # Capitalised as Django's own messages beside it; the exception's text, which
            # other code may match, stays as it is.
            self.add_error(ERROR_FIELDS.get(exc.field or ""), capfirst(exc.reason))
            return None

    def _valid(self) -> Composed:
        if not self.is_valid() or self.composed is None:
            raise ValueError("the form is not valid")
        return self.composed

    def estimate(self) -> Estimate:
        """What the message will cost, from SMS-fly's price list (cached for an hour)."""
        composed = self._valid()
        try:
            estimate = services.estimate_cost(
                composed.recipient,
                channels=composed.channels,
                sms=composed.sms,
                viber=composed.viber,
            )
        except SmsFlyError:
            return Estimate(
                error=str(
                    _(
                        "SMS-fly's price list could not be fetched just now, so there is no "
                        "estimate."
                    )
                )
            )
        return Estimate(
            rows=tuple(
                EstimateRow(label=str(ChannelChoices(channel.value).label), cost=cost)
                for channel, cost in estimate.channels.items()
            ),
            first=estimate.first,
            most=estimate.most,
            segments=estimate.segments,
        )

    def sms_parts(self) -> int:
        """How many parts the SMS takes (0 without an SMS), as SMS-fly bills them."""
        sms = self._valid().sms
        return count_segments(sms.text).parts if sms is not None else 0

    def needs_confirmation(self, threshold: int) -> bool:
        """An SMS of more than ``threshold`` parts, not yet confirmed by the operator."""
        confirmed = self.data.get(CONFIRM_PARTS) == "1"
        return threshold > 0 and not confirmed and self.sms_parts() > threshold

    def already_sent(self) -> Message | None:
        """The message an earlier POST of this same drawn form made, if any."""
        key = self._valid().idempotency_key
        return Message.objects.filter(idempotency_key=key).first() if key else None

    def send(self, *, created_by: Any) -> Message:
        """Send the message (or queue it for the background, or schedule it) and return
        its record. Under the form's one-time key: posted twice, it is sent once."""
        composed = self._valid()
        return services.send_message(
            composed.recipient,
            channels=composed.channels,
            sms=composed.sms,
            viber=composed.viber,
            created_by=created_by,
            defer=composed.background,
            send_at=composed.send_at,
            ignore_opt_out=composed.ignore_opt_out,
            idempotency_key=composed.idempotency_key,
        )
