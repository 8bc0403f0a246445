"""What every message of a mailing carries: its texts (templates for a CSV run), the
Viber extras, sender names, lifetime, and the channels chosen from what was given."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from django.utils.translation import gettext as _

from django_smsfly.channels import Channel
from django_smsfly.mailing.report import MailingError
from django_smsfly.validation import SmsContent, ViberContent, validate_channels

#: Makes a row's content from its values: ``(sms, viber)``, ``None`` for a channel not
#: used. Raises :class:`ValueError` (or an :class:`~django_smsfly.exceptions.SmsFlyError`)
#: whose text says why the row cannot be rendered (a missing or empty value, say).
RowRenderer = Callable[[Mapping[str, str]], tuple[SmsContent | None, ViberContent | None]]


@dataclass(frozen=True)
class RowTemplate:
    """Texts rendered for each row by something other than ``{column}`` templates (a
    :class:`~django_smsfly.models.MessageTemplate`, for a campaign)."""

    render: RowRenderer
    #: The columns the texts read; each must be in the file's header.
    variables: frozenset[str]
    #: Whether it makes an SMS text / a Viber text.
    sms: bool
    viber: bool
    #: How errors name it (``template 'welcome'``).
    label: str = ""


@dataclass(frozen=True)
class MailingContent:
    """The content and options shared by every message of a run.

    For a CSV run ``text`` and ``viber_text`` are templates filled from each row's
    columns (``"Hi {name}"``); without them the ``text`` and ``viber_text`` columns are
    sent as written.
    """

    #: The SMS text, or template.
    text: str | None = None
    #: The Viber text, or template.
    viber_text: str | None = None
    image: str | None = None
    button_caption: str | None = None
    button_url: str | None = None
    #: Channel names in fallback order; ``None``: chosen by the content given.
    channels: Sequence[Channel | str] | None = None
    #: Sender names (default: ``SMSFLY["SMS_SOURCE"]`` / ``SMSFLY["VIBER_SOURCE"]``).
    sms_source: str | None = None
    viber_source: str | None = None
    #: Lifetime on every channel, in minutes.
    ttl: int | None = None
    flash: bool = False
    #: Texts rendered per row (instead of ``text``/``viber_text``).
    template: RowTemplate | None = None

    @property
    def has_viber(self) -> bool:
        """Whether any Viber content was given."""
        given = (self.viber_text, self.image, self.button_caption, self.button_url)
        if self.template is not None and self.template.viber:
            return True
        return any(value is not None for value in given)

    def choose_channels(self, *, sms: bool, viber: bool) -> tuple[Channel, ...]:
        """The channels: those asked for, or by what can be sent; checked against it.

        ``sms``/``viber``: whether an SMS text / Viber content is available at all (given
        here, or in the file's columns).
        """
        if self.channels is not None:
            channels = validate_channels(self.channels)
        elif sms and viber:
            channels = (Channel.VIBER, Channel.SMS)
        elif viber:
            channels = (Channel.VIBER,)
        elif sms:
            channels = (Channel.SMS,)
        else:
            raise MailingError(
                _("Nothing to send: give --text (SMS) and/or --viber-text or --image (Viber).")
            )
        if Channel.SMS in channels and not sms:
            raise MailingError(
                _("The sms channel needs a text: --text, or a 'text' column in the CSV.")
            )
        if Channel.VIBER in channels and not viber:
            raise MailingError(
                _(
                    "The viber channel needs --viber-text or --image (or a 'viber_text' "
                    "column in the CSV)."
                )
            )
        if self.text is not None and Channel.SMS not in channels:
            raise MailingError(_("--text is given, but sms is not in --channels."))
        if self.has_viber and Channel.VIBER not in channels:
            raise MailingError(_("Viber options are given, but viber is not in --channels."))
        return channels

    def with_options(
        self, sms: SmsContent | None, viber: ViberContent | None
    ) -> tuple[SmsContent | None, ViberContent | None]:
        """Rendered content with the run's sender names and lifetime (where set)."""
        if sms is not None:
            sms = replace(
                sms,
                source=self.sms_source or sms.source,
                ttl=self.ttl if self.ttl is not None else sms.ttl,
                flash=self.flash or sms.flash,
            )
        if viber is not None:
            viber = replace(
                viber,
                source=self.viber_source or viber.source,
                ttl=self.ttl if self.ttl is not None else viber.ttl,
            )
        return sms, viber

    def blocks(
        self, channels: tuple[Channel, ...], sms_text: str | None, viber_text: str | None
    ) -> tuple[SmsContent | None, ViberContent | None]:
        """The SMS and Viber content for these texts (``None`` for a channel not used)."""
        sms = viber = None
        if Channel.SMS in channels:
            sms = SmsContent(
                text=sms_text or "", source=self.sms_source, ttl=self.ttl, flash=self.flash
            )
        if Channel.VIBER in channels:
            viber = ViberContent(
                # An empty cell means no text (an image-only message), not an empty text.
                text=viber_text or None,
                image=self.image,
                button_caption=self.button_caption,
                button_url=self.button_url,
                source=self.viber_source,
                ttl=self.ttl,
            )
        return sms, viber
