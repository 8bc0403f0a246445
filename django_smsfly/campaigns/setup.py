"""What a campaign's rows are sent with: its content (a template or its own texts),
the file and how to read it, and the key that makes its rows resumable."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from django.utils.translation import gettext as _

from django_smsfly import templating
from django_smsfly.campaigns.errors import CampaignError
from django_smsfly.channels import Channel
from django_smsfly.exceptions import SmsFlyValidationError
from django_smsfly.mailing import CsvFile, MailingContent
from django_smsfly.mailing.content import RowTemplate
from django_smsfly.models import Campaign, MessageTemplate
from django_smsfly.validation import SmsContent, ViberContent

#: The campaign's own options in ``Campaign.report["run"]``: how its file is read and
#: the key its rows' idempotency keys are made from. Kept by every check.
RUN = "run"
DEFAULT_ENCODING = "utf-8-sig"
DEFAULT_DELIMITER = ","


def run_options(campaign: Campaign) -> dict[str, Any]:
    """The campaign's run options (see :data:`RUN`)."""
    report = campaign.report if isinstance(campaign.report, dict) else {}
    options = report.get(RUN)
    return options if isinstance(options, dict) else {}


def run_key(campaign: Campaign) -> str:
    """The campaign part of its rows' idempotency keys: resuming never sends a row twice.

    A command-line run keeps its ``--campaign`` name (so runs before campaigns existed
    resume too); an admin campaign is keyed by its primary key.
    """
    key = run_options(campaign).get("key")
    return key if isinstance(key, str) else f"campaign:{campaign.pk}"


def template_of(campaign: Campaign) -> MessageTemplate | None:
    """The template variant the campaign renders: its language's, else the one chosen."""
    template = campaign.template
    if template is None:
        return None
    if campaign.language and campaign.language != template.language:
        try:
            return templating.find(template.name, campaign.language)
        except templating.TemplateNotFound as exc:
            raise CampaignError(str(exc)) from exc
    return template


def content_for(campaign: Campaign) -> MailingContent:
    """Every message's content and options, as :func:`~django_smsfly.mailing.run_csv`
    takes them. Raises :class:`CampaignError` for options that cannot be used."""
    options = run_options(campaign)
    ttl = options.get("ttl")
    try:
        template = template_of(campaign)
        if template is not None:
            return MailingContent(
                channels=template.channel_list,
                sms_source=campaign.sms_source or None,
                viber_source=campaign.viber_source or None,
                ttl=ttl,
                template=row_template(template),
            )
        names = [part.strip() for part in campaign.channels.split(",") if part.strip()]
        return MailingContent(
            text=campaign.sms_text or None,
            viber_text=campaign.viber_text or None,
            image=campaign.image or None,
            button_caption=campaign.button_caption or None,
            button_url=campaign.button_url or None,
            channels=names or None,
            sms_source=campaign.sms_source or None,
            viber_source=campaign.viber_source or None,
            ttl=ttl,
            flash=bool(options.get("flash", False)),
        )
    except (SmsFlyValidationError, ValueError) as exc:
        raise CampaignError(str(exc)) from exc


def row_template(template: MessageTemplate) -> RowTemplate:
    """A template as a CSV run renders it: each row's columns are its values."""

    def render(values: Any) -> tuple[SmsContent | None, ViberContent | None]:
        rendered = templating.render(template, values)
        return rendered.sms, rendered.viber

    channels = template.channel_list
    return RowTemplate(
        render=render,
        variables=frozenset(templating.variables(template)),
        sms=Channel.SMS in channels,
        viber=Channel.VIBER in channels,
        label=_("template %(name)r") % {"name": str(template)},
    )


@contextmanager
def open_file(campaign: Campaign) -> Iterator[CsvFile]:
    """The campaign's file to read: its stored upload as text, or a command-line run's
    path. Raises :class:`CampaignError` when it cannot be opened."""
    encoding = run_options(campaign).get("encoding") or DEFAULT_ENCODING
    if not campaign.file:
        yield Path(campaign.source_name)
        return
    try:
        raw = campaign.file.open("rb")
    except OSError as exc:
        raise CampaignError(
            _("Cannot read the campaign's file: %(error)s.") % {"error": exc.strerror or exc}
        ) from None
    try:
        try:
            text = io.TextIOWrapper(raw, encoding=encoding, newline="")
        except LookupError:
            raise CampaignError(
                _("Unknown encoding %(encoding)r.") % {"encoding": encoding}
            ) from None
        yield text
    finally:
        campaign.file.close()


def delimiter_of(campaign: Campaign) -> str:
    """The field separator of the campaign's file."""
    return str(run_options(campaign).get("delimiter") or DEFAULT_DELIMITER)


def encoding_of(campaign: Campaign) -> str:
    """The encoding of the campaign's file."""
    return str(run_options(campaign).get("encoding") or DEFAULT_ENCODING)
