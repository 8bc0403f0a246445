"""The delivery overview: what operators ask first, for the last days.

- :func:`delivery_overview`: the messages of each local day (of the site's time zone)
  by outcome, delivered over Viber and over SMS, and the day's spend, in one grouped
  query; days without messages are filled in with zeros (the chart draws them; the
  page's table leaves them out).
- :func:`channel_spend`: the spend per channel, in one query.
- :func:`top_errors`: why messages failed, the most frequent reasons first, in one
  query.
- :func:`render_chart`: an SVG bar chart of the days, built here on the server, with
  no script.

Spend is what SMS-fly charged: :attr:`Message.cost
<django_smsfly.models.Message.cost>`, which leaves out a channel that was refunded
(a Viber-then-SMS message delivered over Viber costs the Viber price). Per channel it
is the channels' prices less the refunded ones, so the channels add up to the total.
All are plain functions, so they can be tested and reused outside the admin;
:func:`overview_page` is the admin's page of them, a constant number of queries
whatever the number of messages.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.contrib.admin import ModelAdmin
from django.db.models import Case, CharField, Count, F, Q, QuerySet, Sum, Value, When
from django.db.models.functions import TruncDate
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils import formats, timezone
from django.utils.html import escape
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _

from django_smsfly.admin import pages
from django_smsfly.channels import Channel
from django_smsfly.models import ChannelStatus, Message, StatusChoices
from django_smsfly.statuses import DELIVERED_VALUES, FAILED_VALUES, DeliveryStatus

#: Message statuses counted as delivered, and as failed.
DELIVERED, FAILED = DELIVERED_VALUES, FAILED_VALUES
#: The days the admin's overview page covers, today included.
DAYS = 30
#: How many reasons for failure the page lists.
TOP_ERRORS = 5
#: The outcomes, bottom to top in the chart, with their bar colours. The colours are
#: mid-tones that read on the admin's light and dark themes alike.
OUTCOME_COLOURS = {"delivered": "#3f9a4f", "failed": "#d1493f", "pending": "#d59a1c"}
_ZERO = Decimal(0)


@dataclass(frozen=True)
class DayCount:
    """The messages created on one local day, by outcome, and what they cost."""

    day: dt.date
    delivered: int = 0
    failed: int = 0
    #: Not final yet: queued, being sent, accepted, on their way (and unknown outcomes).
    pending: int = 0
    #: Delivered messages whose delivering channel was Viber, and SMS.
    via_viber: int = 0
    via_sms: int = 0
    #: What SMS-fly charged for the day's messages (the sum of their costs).
    spend: Decimal = _ZERO

    @property
    def total(self) -> int:
        """Every message of the day."""
        return self.delivered + self.failed + self.pending

    @property
    def rate(self) -> Decimal | None:
        """Delivered as a share of the messages with a final outcome; ``None`` if none."""
        return _rate(self.delivered, self.failed)


@dataclass(frozen=True)
class ErrorCount:
    """A reason messages failed, and how many failed for it."""

    #: SMS-fly's (or the app's) error code, or the status when there is no code.
    code: str
    count: int
    #: True when :attr:`code` is a status (``undelivered``...) rather than an error code.
    is_status: bool = False

    @property
    def label(self) -> str:
        """The code as the page shows it: a status is named in the active language."""
        if self.is_status:
            return _("%(status)s (no error code)") % {
                "status": StatusChoices(self.code).label
                if self.code in StatusChoices
                else self.code
            }
        return self.code


@dataclass(frozen=True)
class Overview:
    """Messages per day over a period, oldest day first."""

    days: tuple[DayCount, ...]
    #: Spend per channel (``"viber"``, ``"sms"``), filled in by the page.
    channels: dict[str, Decimal] = field(default_factory=dict)
    #: The most frequent reasons for failure, filled in by the page.
    errors: tuple[ErrorCount, ...] = ()

    @property
    def delivered(self) -> int:
        """Delivered messages in the period."""
        return sum(day.delivered for day in self.days)

    @property
    def failed(self) -> int:
        """Failed messages in the period."""
        return sum(day.failed for day in self.days)

    @property
    def pending(self) -> int:
        """Messages of the period still without a final outcome."""
        return sum(day.pending for day in self.days)

    @property
    def total(self) -> int:
        """Every message of the period."""
        return self.delivered + self.failed + self.pending

    @property
    def rate(self) -> Decimal | None:
        """The delivery rate of the period (see :attr:`DayCount.rate`)."""
        return _rate(self.delivered, self.failed)

    @property
    def via_viber(self) -> int:
        """Messages of the period delivered over Viber."""
        return sum(day.via_viber for day in self.days)

    @property
    def via_sms(self) -> int:
        """Messages of the period delivered over SMS."""
        return sum(day.via_sms for day in self.days)

    @property
    def spend(self) -> Decimal:
        """What SMS-fly charged for the period's messages."""
        return sum((day.spend for day in self.days), _ZERO)

    @property
    def busy_days(self) -> tuple[DayCount, ...]:
        """The days with messages, newest first (empty days collapsed)."""
        return tuple(day for day in reversed(self.days) if day.total)


def _rate(delivered: int, failed: int) -> Decimal | None:
    finished = delivered + failed
    if not finished:
        return None
    return (Decimal(delivered) / finished).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Window:
    """The local days a count covers: ``first`` to ``last``, ``[start, end)`` in time."""

    first: dt.date
    last: dt.date
    zone: dt.tzinfo

    @classmethod
    def of(cls, days: int, today: dt.date | None, tz: dt.tzinfo | None) -> Window:
        """The last ``days`` days ending ``today`` (default: today) in ``tz``."""
        if days < 1:
            raise ValueError("days must be at least 1")
        zone = tz or timezone.get_current_timezone()
        last = today or timezone.localdate(timezone=zone)
        return cls(first=last - dt.timedelta(days=days - 1), last=last, zone=zone)

    @property
    def start(self) -> dt.datetime:
        """The first day's midnight."""
        return _midnight(self.first, self.zone)

    @property
    def end(self) -> dt.datetime:
        """The midnight after the last day."""
        return _midnight(self.last + dt.timedelta(days=1), self.zone)

    @property
    def dates(self) -> list[dt.date]:
        """Every day of the window, oldest first."""
        return [
            self.first + dt.timedelta(days=n) for n in range((self.last - self.first).days + 1)
        ]

    def messages(self, queryset: QuerySet[Message] | None) -> QuerySet[Message]:
        """``queryset`` (default: every message) created in the window."""
        rows = queryset if queryset is not None else Message.objects.all()
        return rows.filter(created_at__gte=self.start, created_at__lt=self.end)


def delivery_overview(
    days: int = DAYS,
    *,
    today: dt.date | None = None,
    tz: dt.tzinfo | None = None,
    queryset: QuerySet[Message] | None = None,
) -> Overview:
    """Count the messages created on each of the last ``days`` days, by outcome.

    Days are local days in ``tz`` (default: the current time zone), ending with
    ``today`` (default: today there). The counting (outcomes, the delivering channel,
    the spend) is one grouped query in the database; days without messages are
    returned with zeros.
    """
    window = Window.of(days, today, tz)
    delivered = Q(status__in=DELIVERED)
    rows = (
        window.messages(queryset)
        .annotate(day=TruncDate("created_at", tzinfo=window.zone))
        .values("day")
        .annotate(
            total=Count("pk"),
            delivered=Count("pk", filter=delivered),
            failed=Count("pk", filter=Q(status__in=FAILED)),
            via_viber=Count("pk", filter=delivered & Q(delivered_via=Channel.VIBER.value)),
            via_sms=Count("pk", filter=delivered & Q(delivered_via=Channel.SMS.value)),
            spend=Sum("cost"),
        )
        .order_by("day")
    )
    counted = {
        row["day"]: DayCount(
            day=row["day"],
            delivered=row["delivered"],
            failed=row["failed"],
            pending=row["total"] - row["delivered"] - row["failed"],
            via_viber=row["via_viber"],
            via_sms=row["via_sms"],
            spend=row["spend"] or _ZERO,
        )
        for row in rows
    }
    return Overview(days=tuple(counted.get(day, DayCount(day=day)) for day in window.dates))


def channel_spend(
    days: int = DAYS,
    *,
    today: dt.date | None = None,
    tz: dt.tzinfo | None = None,
    queryset: QuerySet[Message] | None = None,
) -> dict[str, Decimal]:
    """What SMS-fly charged per channel (``{"viber": ..., "sms": ...}``) for the messages
    created in the last ``days`` days, in one query.

    A channel's price counts unless it was refunded, as in :attr:`Message.cost
    <django_smsfly.models.Message.cost>`; every channel is in the result, at zero
    when nothing was spent on it.
    """
    window = Window.of(days, today, tz)
    rows = (
        ChannelStatus.objects.filter(message__in=window.messages(queryset))
        .exclude(status=DeliveryStatus.REFUNDED.value)
        .values("channel")
        .annotate(spend=Sum("cost"))
        .order_by()
    )
    spent = {channel.value: _ZERO for channel in (Channel.VIBER, Channel.SMS)}
    for row in rows:
        spent[row["channel"]] = row["spend"] or _ZERO
    return spent


def top_errors(
    days: int = DAYS,
    *,
    limit: int = TOP_ERRORS,
    today: dt.date | None = None,
    tz: dt.tzinfo | None = None,
    queryset: QuerySet[Message] | None = None,
) -> tuple[ErrorCount, ...]:
    """Why the failed messages of the last ``days`` days failed: their error codes (or
    their status, for those without a code) with counts, the most frequent first, at
    most ``limit`` of them, in one query."""
    reason = Case(When(error_code="", then=F("status")), default=F("error_code"))
    rows = (
        _failed(Window.of(days, today, tz), queryset)
        .annotate(
            reason=reason,
            is_status=Case(
                When(error_code="", then=Value("1")), default=Value(""), output_field=CharField()
            ),
        )
        .values("reason", "is_status")
        .annotate(count=Count("pk"))
        .order_by("-count", "reason")[:limit]
    )
    return tuple(
        ErrorCount(code=row["reason"], count=row["count"], is_status=bool(row["is_status"]))
        for row in rows
    )


def _failed(window: Window, queryset: QuerySet[Message] | None) -> QuerySet[Message]:
    """The failed messages created in ``window``."""
    return window.messages(queryset).filter(status__in=FAILED)


def _midnight(day: dt.date, zone: dt.tzinfo) -> dt.datetime:
    return timezone.make_aware(dt.datetime(day.year, day.month, day.day), zone)


# -- the chart ------------------------------------------------------------------------------

_WIDTH, _HEIGHT = 760, 280
_LEFT, _RIGHT, _TOP, _BOTTOM = 72, 12, 16, 48
_SVG_NS = "http://www.w3.org/2000/svg"


def _nice_ceiling(value: int) -> int:
    """The smallest of 1, 2, 5, 10, 20, 50... that is at least ``value`` (at least 1)."""
    step = 1
    while True:
        for factor in (1, 2, 5):
            if step * factor >= value:
                return step * factor
        step *= 10


def _tick_step(top: int) -> int:
    """A whole, round step between grid lines for a scale topping at ``top`` (1, 2, 5...)."""
    magnitude: int = 10 ** (len(str(top)) - 1)
    lead = top // magnitude  # 1, 2 or 5
    step = {1: magnitude // 5, 2: magnitude // 2, 5: magnitude}[lead]
    return max(step, 1)


def outcome_labels() -> dict[str, str]:
    """The outcomes' names in the active language, as the chart's legend shows them."""
    return {"delivered": _("delivered"), "failed": _("failed"), "pending": _("pending")}


def _label(x: float, y: float, text: str, *, anchor: str, baseline: str) -> str:
    # The class lets the page's CSS enlarge the labels when the chart is drawn small
    # (on a phone), so that they stay readable; font-size="11" is for everywhere else.
    return (
        f'<text class="smsfly-chart-label" x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" '
        f'dominant-baseline="{baseline}" font-size="11" fill="currentColor">'
        f"{escape(text)}</text>"
    )


def render_chart(overview: Overview) -> str:
    """An SVG stacked bar chart of ``overview``: one bar per day, split by outcome.

    Every text in it is escaped; each bar has a tooltip with the day's numbers and
    ``data-*`` attributes carrying them. Text and grid lines take the page's text
    colour (``currentColor``), so the chart suits light and dark themes. The legend is
    the page's (:func:`outcome_labels`), in HTML, where it reflows on a narrow screen.
    """
    count = max(len(overview.days), 1)
    top = _nice_ceiling(max((day.total for day in overview.days), default=0))
    plot_w = _WIDTH - _LEFT - _RIGHT
    plot_h = _HEIGHT - _TOP - _BOTTOM
    slot = plot_w / count
    bar_w = max(slot * 0.7, 1.0)
    title = _("Messages per day by outcome")
    parts = [
        f'<svg xmlns="{_SVG_NS}" class="smsfly-chart" viewBox="0 0 {_WIDTH} {_HEIGHT}" '
        f'width="100%" role="img" aria-labelledby="smsfly-chart-title">',
        f'<title id="smsfly-chart-title">{escape(title)}</title>',
    ]
    # Grid lines at whole, round values (messages come whole).
    step = _tick_step(top)
    for value in range(0, top + 1, step):
        y = _TOP + plot_h - plot_h * value / top
        parts.append(
            f'<line x1="{_LEFT}" y1="{y:.1f}" x2="{_WIDTH - _RIGHT}" y2="{y:.1f}" '
            f'stroke="currentColor" stroke-opacity="{0.45 if value == 0 else 0.15}"/>'
        )
        shown = formats.number_format(value, 0)
        parts.append(_label(_LEFT - 6, y, shown, anchor="end", baseline="middle"))
    for index, day in enumerate(overview.days):
        x = _LEFT + slot * index + (slot - bar_w) / 2
        day_text = formats.date_format(day.day, "DATE_FORMAT")
        tooltip = _("%(day)s: %(delivered)s delivered, %(failed)s failed, %(pending)s pending") % {
            "day": day_text,
            "delivered": day.delivered,
            "failed": day.failed,
            "pending": day.pending,
        }
        parts.append(
            f'<g class="smsfly-chart-day" data-day="{day.day.isoformat()}" '
            f'data-delivered="{day.delivered}" data-failed="{day.failed}" '
            f'data-pending="{day.pending}"><title>{escape(tooltip)}</title>'
        )
        base = float(_TOP + plot_h)
        for outcome, colour in OUTCOME_COLOURS.items():
            amount: int = getattr(day, outcome)
            if not amount:
                continue
            height = plot_h * amount / top
            base -= height
            parts.append(
                f'<rect class="smsfly-chart-{outcome}" x="{x:.1f}" y="{base:.1f}" '
                f'width="{bar_w:.1f}" height="{height:.1f}" '
                f'fill="{colour}"/>'
            )
        parts.append("</g>")
        # A date under every fifth bar, and under the last one (today) unless the one
        # before it is too close.
        if index % 5 == 0 or (index == count - 1 and index % 5 >= 3):
            label = formats.date_format(day.day, "j M")
            parts.append(
                _label(
                    x + bar_w / 2, _TOP + plot_h + 8, label, anchor="middle", baseline="hanging"
                )
            )
    parts.append("</svg>")
    return "".join(parts)


# -- the page -------------------------------------------------------------------------------


def overview_page(model_admin: ModelAdmin[Any], request: HttpRequest) -> TemplateResponse:
    """The last :data:`DAYS` days: outcomes, delivering channels, spend (per day and per
    channel) and the top reasons for failure, as a chart and tables; three queries."""
    counted = delivery_overview(DAYS)
    data = Overview(days=counted.days, channels=channel_spend(DAYS), errors=top_errors(DAYS))
    return pages.render(
        model_admin,
        request,
        "overview.html",
        title=_("Delivery overview"),
        overview=data,
        # Built by render_chart from numbers, dates and translated labels, every one
        # escaped there; no stored text goes into it.
        chart=mark_safe(render_chart(data)),  # noqa: S308
        legend=list(outcome_labels().items()),
        days=data.busy_days,
    )
