"""The delivery overview: messages per day by outcome, and a chart of them.

:func:`delivery_overview` counts the messages of the last days in one grouped query
(local days of the site's time zone, one count per outcome) and fills in the days
without messages; :func:`render_chart` draws the result as an SVG bar chart built
here on the server, with no script. Both are plain functions, so they can be tested
and reused outside the admin; :func:`overview_page` is the admin's page of them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.contrib.admin import ModelAdmin
from django.db.models import Count, Q, QuerySet
from django.db.models.functions import TruncDate
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils import formats, timezone
from django.utils.html import escape
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _

from django_smsfly.admin import pages
from django_smsfly.models import Message
from django_smsfly.statuses import DeliveryStatus

#: Message statuses counted as delivered.
DELIVERED = tuple(status.value for status in DeliveryStatus if status.is_success)
#: Message statuses counted as failed: final, and not delivered (a message whose every
#: channel was refunded was not delivered either).
FAILED = tuple(
    status.value for status in DeliveryStatus if status.is_final and not status.is_success
)
#: The days the admin's overview page covers, today included.
DAYS = 30
#: The outcomes, bottom to top in the chart, with their bar colours. The colours are
#: mid-tones that read on the admin's light and dark themes alike.
OUTCOME_COLOURS = {"delivered": "#3f9a4f", "failed": "#d1493f", "pending": "#d59a1c"}


@dataclass(frozen=True)
class DayCount:
    """The messages created on one local day, by outcome."""

    day: dt.date
    delivered: int = 0
    failed: int = 0
    #: Not final yet: queued, being sent, accepted, on their way (and unknown outcomes).
    pending: int = 0

    @property
    def total(self) -> int:
        """Every message of the day."""
        return self.delivered + self.failed + self.pending

    @property
    def rate(self) -> Decimal | None:
        """Delivered as a share of the messages with a final outcome; ``None`` if none."""
        return _rate(self.delivered, self.failed)


@dataclass(frozen=True)
class Overview:
    """Messages per day over a period, oldest day first."""

    days: tuple[DayCount, ...]

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


def _rate(delivered: int, failed: int) -> Decimal | None:
    finished = delivered + failed
    if not finished:
        return None
    return (Decimal(delivered) / finished).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)


def delivery_overview(
    days: int = 30,
    *,
    today: dt.date | None = None,
    tz: dt.tzinfo | None = None,
    queryset: QuerySet[Message] | None = None,
) -> Overview:
    """Count the messages created on each of the last ``days`` days, by outcome.

    Days are local days in ``tz`` (default: the current time zone), ending with
    ``today`` (default: today there). The counting is one grouped query in the
    database; days without messages are returned with zeros.
    """
    if days < 1:
        raise ValueError("days must be at least 1")
    zone = tz or timezone.get_current_timezone()
    last = today or timezone.localdate(timezone=zone)
    first = last - dt.timedelta(days=days - 1)
    start = _midnight(first, zone)
    end = _midnight(last + dt.timedelta(days=1), zone)
    rows = (
        (queryset if queryset is not None else Message.objects.all())
        .filter(created_at__gte=start, created_at__lt=end)
        .annotate(day=TruncDate("created_at", tzinfo=zone))
        .values("day")
        .annotate(
            total=Count("pk"),
            delivered=Count("pk", filter=Q(status__in=DELIVERED)),
            failed=Count("pk", filter=Q(status__in=FAILED)),
        )
        .order_by("day")
    )
    counted = {
        row["day"]: DayCount(
            day=row["day"],
            delivered=row["delivered"],
            failed=row["failed"],
            pending=row["total"] - row["delivered"] - row["failed"],
        )
        for row in rows
    }
    return Overview(
        days=tuple(
            counted.get(day, DayCount(day=day))
            for day in (first + dt.timedelta(days=n) for n in range(days))
        )
    )


def _midnight(day: dt.date, zone: dt.tzinfo) -> dt.datetime:
    return timezone.make_aware(dt.datetime(day.year, day.month, day.day), zone)


# -- the chart ------------------------------------------------------------------------------

_WIDTH, _HEIGHT = 760, 300
_LEFT, _RIGHT, _TOP, _BOTTOM = 48, 12, 16, 64
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


def _outcome_labels() -> dict[str, str]:
    return {"delivered": _("delivered"), "failed": _("failed"), "pending": _("pending")}


def render_chart(overview: Overview) -> str:
    """An SVG stacked bar chart of ``overview``: one bar per day, split by outcome.

    Every text in it is escaped; each bar has a tooltip with the day's numbers and
    ``data-*`` attributes carrying them. Text and grid lines take the page's text
    colour (``currentColor``), so the chart suits light and dark themes.
    """
    labels = _outcome_labels()
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
        parts.append(
            f'<text x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" '
            f'fill="currentColor">{escape(shown)}</text>'
        )
    for index, day in enumerate(overview.days):
        x = _LEFT + slot * index + (slot - bar_w) / 2
        day_text = formats.date_format(day.day, "SHORT_DATE_FORMAT")
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
        # A date under every fifth bar, and under the last one (today).
        if index % 5 == 0 or index == count - 1:
            label = formats.date_format(day.day, "j M")
            parts.append(
                f'<text x="{x + bar_w / 2:.1f}" y="{_TOP + plot_h + 16}" '
                f'text-anchor="middle" font-size="11" fill="currentColor">'
                f"{escape(label)}</text>"
            )
    # The legend, under the dates.
    legend_y = _HEIGHT - 18
    legend_x = float(_LEFT)
    for outcome, colour in OUTCOME_COLOURS.items():
        parts.append(
            f'<rect x="{legend_x:.1f}" y="{legend_y - 10}" width="12" height="12" '
            f'fill="{colour}"/>'
            f'<text x="{legend_x + 18:.1f}" y="{legend_y}" font-size="12" '
            f'fill="currentColor">{escape(labels[outcome])}</text>'
        )
        legend_x += 30 + 8 * len(labels[outcome])
    parts.append("</svg>")
    return "".join(parts)


# -- the page -------------------------------------------------------------------------------


def overview_page(model_admin: ModelAdmin[Any], request: HttpRequest) -> TemplateResponse:
    """Messages per day for the last :data:`DAYS` days by outcome, as a chart and a table."""
    data = delivery_overview(DAYS)
    return pages.render(
        model_admin,
        request,
        "overview.html",
        title=_("Delivery overview"),
        overview=data,
        # Built by render_chart from numbers, dates and translated labels, every one
        # escaped there; no stored text goes into it.
        chart=mark_safe(render_chart(data)),  # noqa: S308
        days=list(reversed(data.days)),
    )
