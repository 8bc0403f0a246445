"""``smsfly_send --csv`` as a campaign: the command's run is found again by its file and
``--campaign`` name (so running it again resumes it) and goes through the same runner
as the admin's campaigns, in the command's own process."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext as _

from django_smsfly.campaigns import runner
from django_smsfly.campaigns.checking import check, create
from django_smsfly.campaigns.errors import CampaignError
from django_smsfly.campaigns.setup import row_template, run_key
from django_smsfly.mailing import MailingContent, MailingReport, RowResult
from django_smsfly.models import Campaign, MessageTemplate

Status = Campaign.Status


def open_campaign(
    path: str | os.PathLike[str],
    content: MailingContent,
    *,
    key: str = "",
    template: MessageTemplate | None = None,
    language: str = "",
    encoding: str = "utf-8-sig",
    delimiter: str = ",",
) -> Campaign:
    """The command line's campaign for this file and ``--campaign`` name, running.

    One made earlier for the same file and name is checked again and resumed (its rows
    already sent are skipped by their keys); otherwise a new one is made and checked.
    Raises :class:`CampaignError` for a file or options that cannot be used (nothing
    is sent), or when that campaign was cancelled.
    """
    source = os.path.abspath(path)
    found = _earlier(source, key)
    if found is not None:
        if found.status == Status.CANCELLED:
            raise CampaignError(
                _(
                    "The campaign %(name)r of this file was cancelled; give another "
                    "--campaign name to send the file again."
                )
                % {"name": found.name}
            )
        campaign = check(found)
    else:
        campaign = create(
            Path(source),
            name=key or Path(source).name,
            origin=Campaign.Origin.CLI,
            key=key,
            template=template,
            language=language,
            channels=list(content.channels) if content.channels is not None else None,
            sms_text=content.text or "",
            viber_text=content.viber_text or "",
            image=content.image or "",
            button_caption=content.button_caption or "",
            button_url=content.button_url or "",
            sms_source=content.sms_source or "",
            viber_source=content.viber_source or "",
            ttl=content.ttl,
            flash=content.flash,
            encoding=encoding,
            delimiter=delimiter,
        )
    now = timezone.now()
    Campaign.objects.filter(pk=campaign.pk).exclude(status=Status.CANCELLED).update(
        status=Status.RUNNING,
        started_at=campaign.started_at or now,
        finished_at=None,
        error="",
        updated_at=now,
    )
    campaign.refresh_from_db()
    return campaign


def with_template(content: MailingContent, template: MessageTemplate) -> MailingContent:
    """The command line's content with its texts rendered by ``template`` (a dry run)."""
    return replace(content, channels=template.channel_list, template=row_template(template))


def _earlier(source: str, key: str) -> Campaign | None:
    candidates = Campaign.objects.filter(origin=Campaign.Origin.CLI, source_name=source)
    for campaign in candidates.order_by("-pk")[:20]:
        if run_key(campaign) == key:
            return campaign
    return None


def run_campaign(
    campaign: Campaign,
    *,
    rate: float | None,
    limit: int | None,
    defer: bool,
    progress: Callable[[MailingReport], None] | None,
    on_row: Callable[[RowResult], None] | None,
) -> MailingReport | None:
    """Run the command line's campaign here, with the command's own options.

    It holds the campaign's lease while it runs when it can; a second command running
    the same file at once runs beside it (each row is still sent once: the rows'
    keys and claims see to that, and each reports the other's rows as elsewhere).
    """
    token = runner.claim(campaign.pk)
    options: dict[str, Any] = {
        "rate": rate,
        "limit": limit,
        "defer": defer,
        "progress": progress,
        "on_row": on_row,
        "interrupt_pauses": True,
    }
    return runner.execute(campaign, token, **options)
