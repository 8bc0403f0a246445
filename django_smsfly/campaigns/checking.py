"""Making a campaign from a file, and checking every row before anything is sent.

:func:`create` stores the file (an upload is streamed to storage chunk by chunk) and
:func:`check` reads it once, one row in memory at a time: each row is rendered and
validated exactly as the run will send it, and counted as valid, invalid, opted out or
a duplicate; the valid rows' SMS parts and cost are added up. What an operator needs to
see before starting (the first problems by line, the first messages as they will go
out) is kept in ``Campaign.report``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils.translation import gettext as _

from django_smsfly import services
from django_smsfly.campaigns.errors import CampaignError
from django_smsfly.campaigns.setup import (
    RUN,
    content_for,
    delimiter_of,
    encoding_of,
    open_file,
    run_options,
)
from django_smsfly.channels import Channel
from django_smsfly.client import PreparedMessage
from django_smsfly.exceptions import SmsFlyError, SmsFlyValidationError
from django_smsfly.mailing import MailingContent, MailingError
from django_smsfly.mailing.run import check_content, row_content
from django_smsfly.mailing.source import Header, RowError, open_rows
from django_smsfly.models import Campaign, OptOut
from django_smsfly.pricing import estimate, network_of
from django_smsfly.results import PriceList
from django_smsfly.segments import count_segments

#: Problems kept in the report (the rest are only counted).
MAX_PROBLEMS = 500
#: Messages shown as they will go out.
PREVIEW_ROWS = 5
#: Rows whose numbers are looked up on the opt-out list in one query.
OPT_OUT_BATCH = 1000


def create(
    file: UploadedFile[Any] | str | os.PathLike[str],
    *,
    name: str,
    template: Any = None,
    language: str = "",
    channels: Iterable[Channel | str] | None = None,
    sms_text: str = "",
    viber_text: str = "",
    image: str = "",
    button_caption: str = "",
    button_url: str = "",
    sms_source: str = "",
    viber_source: str = "",
    created_by: Any = None,
    origin: str = Campaign.Origin.ADMIN,
    encoding: str = "utf-8-sig",
    delimiter: str = ",",
    ttl: int | None = None,
    flash: bool = False,
    key: str | None = None,
) -> Campaign:
    """Make a draft campaign from a CSV file and check it (see :func:`check`).

    ``file`` is an upload (stored in the default storage, streamed) or a path (a
    command-line run: read where it is). Texts take ``{column}`` placeholders; a
    ``template`` (a :class:`~django_smsfly.models.MessageTemplate`) replaces them.
    Raises :class:`CampaignError` for a file or options that cannot be used; nothing
    is kept then.
    """
    campaign = Campaign(
        name=name,
        origin=origin,
        template=template,
        language=language,
        channels=",".join(Channel(c).value for c in channels) if channels else "",
        sms_text=sms_text,
        viber_text=viber_text,
        image=image,
        button_caption=button_caption,
        button_url=button_url,
        sms_source=sms_source,
        viber_source=viber_source,
        created_by=created_by if getattr(created_by, "pk", None) else None,
    )
    options: dict[str, Any] = {"encoding": encoding, "delimiter": delimiter}
    if ttl is not None:
        options["ttl"] = ttl
    if flash:
        options["flash"] = True
    if key is not None:
        options["key"] = key
    campaign.report = {RUN: options}
    content_for(campaign)  # options that cannot work are refused before the file is kept
    if isinstance(file, str | os.PathLike):
        path = Path(file)
        if not path.is_file():
            raise CampaignError(_("Cannot read %(path)s: no such file.") % {"path": path})
        campaign.source_name = str(path)
    else:
        campaign.source_name = os.path.basename(file.name or "campaign.csv")
        # FieldFile.save streams the upload's chunks to storage.
        campaign.file.save(campaign.source_name, file, save=False)
    campaign.save()
    try:
        return check(campaign)
    except CampaignError:
        _discard(campaign)
        raise


def _discard(campaign: Campaign) -> None:
    if campaign.file:
        campaign.file.delete(save=False)
    campaign.delete()


@dataclass
class _Tally:
    """The counts and the report of one check, row by row."""

    content: MailingContent
    header: Header
    channels: tuple[Channel, ...]
    total: int = 0
    valid: int = 0
    invalid: int = 0
    opted_out: int = 0
    duplicate: int = 0
    parts: int = 0
    cost: Decimal = Decimal(0)
    priced: int = 0
    price_error: str | None = None
    problems: list[dict[str, Any]] = field(default_factory=list)
    problems_more: int = 0
    preview: list[dict[str, Any]] = field(default_factory=list)
    seen: set[int] = field(default_factory=set)
    #: Rows that passed validation, waiting for their opt-out lookup.
    pending: list[tuple[int, PreparedMessage]] = field(default_factory=list)
    prices: dict[str, PriceList] = field(default_factory=dict)

    def row(self, line: int, cells: list[str]) -> None:
        self.total += 1
        try:
            values = self.header.values(cells)
            sms, viber = row_content(self.header, self.content, self.channels, values)
            recipient = values[self.header.special["recipient"]]
            prepared = services.get_client().prepare(
                recipient, channels=self.channels, sms=sms, viber=viber
            )
        except (RowError, SmsFlyValidationError) as exc:
            self.invalid += 1
            self.problem(line, "invalid", "", str(exc))
            return
        number = int(prepared.recipient)
        if number in self.seen:
            self.duplicate += 1
            self.problem(line, "duplicate", prepared.recipient, _("the number of an earlier row"))
            return
        self.seen.add(number)
        self.pending.append((line, prepared))
        if len(self.pending) >= OPT_OUT_BATCH:
            self.flush()

    def flush(self) -> None:
        """Sort the pending rows into opted out and valid (one query for them all)."""
        numbers = {prepared.recipient for _line, prepared in self.pending}
        listed = set(
            OptOut.objects.filter(recipient__in=numbers).values_list("recipient", flat=True)
        )
        for line, prepared in self.pending:
            if prepared.recipient in listed:
                self.opted_out += 1
                self.problem(
                    line, "opted_out", prepared.recipient, _("the number is on the opt-out list")
                )
            else:
                self.add_valid(line, prepared)
        self.pending = []

    def add_valid(self, line: int, prepared: PreparedMessage) -> None:
        self.valid += 1
        sms_block = prepared.data.get(Channel.SMS.value)
        viber_block = prepared.data.get(Channel.VIBER.value)
        sms_text = sms_block["text"] if sms_block else None
        parts = count_segments(sms_text).parts if sms_text is not None else 0
        self.parts += parts
        self.price(line, prepared, sms_text)
        if len(self.preview) < PREVIEW_ROWS:
            self.preview.append(
                {
                    "line": line,
                    "recipient": prepared.recipient,
                    "channels": ",".join(c.value for c in prepared.channels),
                    "sms_text": sms_text,
                    "viber_text": viber_block.get("text") if viber_block else None,
                    "parts": parts,
                }
            )

    def price(self, line: int, prepared: PreparedMessage, sms_text: str | None) -> None:
        mcc, _mnc = network_of(prepared.recipient)
        prices = self.prices_of(mcc) if mcc else PriceList()
        cost = estimate(prices, prepared.recipient, prepared.channels, sms_text=sms_text).first
        if cost is None:
            self.problem(
                line, "no_price", prepared.recipient, _("no price is known for this network")
            )
            return
        self.priced += 1
        self.cost += cost

    def prices_of(self, mcc: str) -> PriceList:
        """The country's price list, asked once per check; one that cannot be had is
        an empty list (its rows have no price) and the error is kept for the report."""
        if mcc not in self.prices:
            try:
                self.prices[mcc] = services.get_price_list(mcc)
            except SmsFlyError as exc:
                self.price_error = str(exc)
                self.prices[mcc] = PriceList()
        return self.prices[mcc]

    def problem(self, line: int, kind: str, recipient: str, reason: str) -> None:
        if len(self.problems) >= MAX_PROBLEMS:
            self.problems_more += 1
            return
        self.problems.append(
            {"line": line, "kind": kind, "recipient": recipient, "reason": reason}
        )


def check(campaign: Campaign) -> Campaign:
    """Read the campaign's file once and store what its rows come to.

    Fills ``rows_total``, ``rows_valid``, ``rows_invalid``, ``rows_opted_out``,
    ``rows_duplicate`` (a number already in an earlier row), ``parts_total``,
    ``cost_estimate`` (``None`` when no row's price is known) and ``report``
    (``problems`` by line, first :data:`MAX_PROBLEMS`, and ``problems_more``;
    ``preview``: the first messages as they will go out). Raises
    :class:`CampaignError` when the file cannot be used (no ``recipient`` column, a
    template naming a missing column, a malformed row: the message names the line).
    """
    content = content_for(campaign)
    try:
        with (
            open_file(campaign) as file,
            open_rows(
                file, encoding=encoding_of(campaign), delimiter=delimiter_of(campaign)
            ) as rows,
        ):
            first = next(rows, None)
            if first is None:
                raise CampaignError(
                    _("The file is empty: expected a header row with a 'recipient' column.")
                )
            header = Header.parse(first[1], source=campaign.source_name or _("the file"))
            tally = _Tally(content, header, check_content(header, content))
            for line, cells in rows:
                tally.row(line, cells)
            tally.flush()
    except MailingError as exc:
        raise CampaignError(str(exc)) from None
    _store(campaign, tally)
    return campaign


def _store(campaign: Campaign, tally: _Tally) -> None:
    campaign.rows_total = tally.total
    campaign.rows_valid = tally.valid
    campaign.rows_invalid = tally.invalid
    campaign.rows_opted_out = tally.opted_out
    campaign.rows_duplicate = tally.duplicate
    campaign.parts_total = tally.parts
    campaign.cost_estimate = tally.cost if tally.priced else None
    report: dict[str, Any] = {
        RUN: run_options(campaign),
        "problems": sorted(tally.problems, key=lambda problem: problem["line"]),
        "problems_more": tally.problems_more,
        "preview": tally.preview,
    }
    if tally.price_error is not None:
        report["price_error"] = tally.price_error
    campaign.report = report
    with transaction.atomic():
        campaign.save(
            update_fields=[
                "rows_total",
                "rows_valid",
                "rows_invalid",
                "rows_opted_out",
                "rows_duplicate",
                "parts_total",
                "cost_estimate",
                "report",
                "updated_at",
            ]
        )
