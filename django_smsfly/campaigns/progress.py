"""How far a campaign is, in a constant number of queries, and its results as rows.

:func:`progress` reads the campaign and one aggregate over its messages (counts by
state and outcome, spend, the sends of the last minute), whatever the campaign's size.
:func:`export_rows` streams one row per message for a CSV download.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

from django.db.models import Count, Q, Sum
from django.utils import timezone

from django_smsfly.exceptions import SmsFlyCancelled, SmsFlyOptedOut
from django_smsfly.models import Campaign, Message
from django_smsfly.statuses import DELIVERED_VALUES

#: The cost columns' precision.
CENT = Decimal("0.0001")
#: The window the send rate is measured over (seconds).
RATE_WINDOW = 60

State = Message.State
OPTED_OUT = SmsFlyOptedOut.default_code
CANCELLED = SmsFlyCancelled.default_code
DELIVERED = DELIVERED_VALUES


@dataclass(frozen=True)
class Progress:
    """A campaign's progress, as its page shows it."""

    status: str
    #: Valid rows (to be sent).
    total: int
    #: Rows handled: sent, or settled otherwise (failed, opted out, cancelled, unknown).
    done: int
    #: Valid rows not sent yet, including rows not written yet.
    queued: int
    sending: int
    accepted: int
    delivered: int
    failed: int
    opted_out: int
    cancelled: int
    unknown: int
    #: What SMS-fly charged for the accepted messages.
    spend: Decimal
    #: Messages sent per second over the last minute.
    rate: float
    eta_seconds: int | None
    percent: int
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    delivered_via: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe: Decimals as strings, datetimes in ISO 8601."""
        data = asdict(self)
        data["spend"] = str(self.spend)
        for name in ("started_at", "finished_at"):
            value = data[name]
            data[name] = value.isoformat() if value is not None else None
        return data


def progress(campaign: Campaign) -> Progress:
    """The campaign's progress: two queries (the campaign, and one aggregate)."""
    campaign.refresh_from_db(
        fields=["status", "rows_valid", "rows_opted_out", "started_at", "finished_at"]
    )
    since = timezone.now() - dt.timedelta(seconds=RATE_WINDOW)
    failed = Q(state=State.FAILED)
    counts = Message.objects.filter(campaign=campaign).aggregate(
        sending=Count("pk", filter=Q(state=State.SENDING)),
        accepted=Count("pk", filter=Q(state=State.ACCEPTED)),
        delivered=Count("pk", filter=Q(state=State.ACCEPTED, status__in=DELIVERED)),
        failed=Count("pk", filter=failed & ~Q(error_code__in=(OPTED_OUT, CANCELLED))),
        opted_out=Count("pk", filter=failed & Q(error_code=OPTED_OUT)),
        cancelled=Count("pk", filter=failed & Q(error_code=CANCELLED)),
        unknown=Count("pk", filter=Q(state=State.UNKNOWN)),
        recent=Count("pk", filter=Q(sent_at__gte=since)),
        spend=Sum("cost", filter=Q(state=State.ACCEPTED)),
        via_viber=Count("pk", filter=Q(delivered_via="viber")),
        via_sms=Count("pk", filter=Q(delivered_via="sms")),
    )
    settled = sum(
        counts[name] for name in ("accepted", "failed", "opted_out", "cancelled", "unknown")
    )
    # The opted-out rows are written too (failed, no request): they are rows to handle.
    total = campaign.rows_valid
    to_handle = total + campaign.rows_opted_out
    queued = max(to_handle - settled - counts["sending"], 0)
    if campaign.status == Campaign.Status.CANCELLED:
        queued = 0  # the rows not written are never sent
    rate = counts["recent"] / RATE_WINDOW
    return Progress(
        status=campaign.status,
        total=total,
        done=settled,
        queued=queued,
        sending=counts["sending"],
        accepted=counts["accepted"],
        delivered=counts["delivered"],
        failed=counts["failed"],
        opted_out=counts["opted_out"],
        cancelled=counts["cancelled"],
        unknown=counts["unknown"],
        # SQLite sums decimals as floats: back to the column's four places.
        spend=Decimal(counts["spend"] or 0).quantize(CENT),
        rate=round(rate, 2),
        eta_seconds=round(queued / rate) if rate > 0 and queued else None,
        percent=min(100, settled * 100 // to_handle) if to_handle else 100,
        started_at=campaign.started_at,
        finished_at=campaign.finished_at,
        delivered_via={"viber": counts["via_viber"], "sms": counts["via_sms"]},
    )


#: The columns of :func:`export_rows`.
EXPORT_HEADER = [
    "line",
    "recipient",
    "state",
    "status",
    "delivered_via",
    "cost",
    "error_code",
    "error_text",
    "message_id",
    "created_at",
    "sent_at",
]


def export_rows(campaign: Campaign) -> Iterator[list[str]]:
    """The header, then one row per message of the campaign, in the file's order;
    read in chunks, never all at once."""
    yield list(EXPORT_HEADER)
    # Every column but the line is a field of the message, by the same name; the line
    # is in the message's metadata.
    messages = (
        Message.objects.filter(campaign=campaign)
        .order_by("pk")
        .values_list("metadata", *EXPORT_HEADER[1:])
    )
    for metadata, *rest in messages.iterator(chunk_size=2000):
        line = metadata.get("line", "") if isinstance(metadata, dict) else ""
        yield [str(line), *(_cell(value) for value in rest)]


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return str(value)
