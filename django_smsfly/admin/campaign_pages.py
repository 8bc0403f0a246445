"""The campaign pages: new campaign, check report, progress, and the results file.

What each page shows is built here; :class:`~django_smsfly.admin.campaigns.CampaignAdmin`
checks permissions and routes to these functions. Every number a page shows comes from
:mod:`django_smsfly.campaigns` (the engine): the check report from the campaign's
``report``, the progress from :func:`~django_smsfly.campaigns.progress`.

- :func:`progress_display` formats a progress for people, in the active language's
  number and date formats. The progress page draws it, and its JSON endpoint sends it
  (:func:`progress_payload`), so the page's script only puts the strings in place.
- :func:`export_response` streams the campaign's results as CSV, row by row, with every
  cell a spreadsheet could take for a formula made harmless.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterable, Iterator
from decimal import Decimal
from itertools import chain
from typing import Any

from django.contrib.admin import ModelAdmin
from django.db.models import Count
from django.http import StreamingHttpResponse
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.translation import gettext

from django_smsfly import campaigns
from django_smsfly.admin.display import money
from django_smsfly.models import Campaign, Message
from django_smsfly.privacy import display_recipient

#: Where the pages' templates are.
TEMPLATES = "admin/django_smsfly/campaign/"
#: Statuses after which nothing about a campaign changes on its own.
FINAL = frozenset({Campaign.Status.FINISHED, Campaign.Status.CANCELLED, Campaign.Status.STOPPED})
#: Status -> the badge kind of :mod:`~django_smsfly.admin.messages` (its colours).
BADGE_KINDS = {
    Campaign.Status.DRAFT: "neutral",
    Campaign.Status.SCHEDULED: "pending",
    Campaign.Status.RUNNING: "pending",
    Campaign.Status.PAUSED: "neutral",
    Campaign.Status.FINISHED: "success",
    Campaign.Status.CANCELLED: "failure",
    Campaign.Status.STOPPED: "failure",
}
#: Which buttons a status offers (the page's script shows and hides them by these).
ACTIONS_BY_STATUS = {
    "pause": (Campaign.Status.RUNNING, Campaign.Status.SCHEDULED),
    "resume": (Campaign.Status.PAUSED,),
    "cancel": (Campaign.Status.RUNNING, Campaign.Status.SCHEDULED, Campaign.Status.PAUSED),
}
#: How many error codes the delivery stats name.
TOP_ERRORS = 5
#: Characters that make a spreadsheet read a cell as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def url_of(model_admin: ModelAdmin[Any], name: str, campaign: Campaign | None = None) -> str:
    """The address of one of the campaign admin's views (``"change"``, ``"progress"``...)."""
    opts = model_admin.opts
    view = f"{model_admin.admin_site.name}:{opts.app_label}_{opts.model_name}_{name}"
    return reverse(view, args=[] if campaign is None else [campaign.pk])


# -- the check report -------------------------------------------------------------------


def report_context(campaign: Campaign) -> dict[str, Any]:
    """What the check report shows, from the campaign's counts and ``report``."""
    report = campaign.report or {}
    labels = {
        "invalid": gettext("invalid"),
        "opted_out": gettext("opted out"),
        "duplicate": gettext("duplicate"),
        "no_price": gettext("no price"),
    }
    problems = [
        {
            **problem,
            "kind_label": labels.get(str(problem.get("kind")), str(problem.get("kind", ""))),
            "recipient_display": display_recipient(str(problem.get("recipient", ""))),
        }
        for problem in report.get("problems", [])
    ]
    preview = [
        {**row, "recipient_display": display_recipient(str(row.get("recipient", "")))}
        for row in report.get("preview", [])
    ]
    return {
        "problems": problems,
        "problems_more": int(report.get("problems_more") or 0),
        "no_price": _number(sum(1 for problem in problems if problem.get("kind") == "no_price")),
        "preview": preview,
        "counts": {
            name: _number(getattr(campaign, name))
            for name in (
                "rows_total",
                "rows_valid",
                "rows_invalid",
                "rows_opted_out",
                "rows_duplicate",
                "parts_total",
            )
        },
        "cost_estimate": money(campaign.cost_estimate),
    }


# -- progress ---------------------------------------------------------------------------


def _number(value: int | Decimal | float) -> str:
    return formats.number_format(value, force_grouping=True)


def _rate(per_second: float) -> str:
    # A slow campaign (a few a minute) still shows a figure, not 0.0.
    return formats.number_format(per_second, 1 if per_second >= 10 else 2)


def _moment(value: dt.datetime | None) -> str:
    if value is None:
        return "—"
    # The long form, as the message pages write a moment ("Dec. 1, 2026, 3:33 p.m."):
    # the short one is month-first in English, which reads as a different day elsewhere.
    return formats.date_format(timezone.localtime(value), "DATETIME_FORMAT")


def duration(seconds: int | None) -> str:
    """A time left as people say it: ``2 h 5 min``, ``4 min 10 s``, ``12 s``."""
    if seconds is None:
        return "—"
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return gettext("%(hours)d h %(minutes)d min") % {"hours": hours, "minutes": minutes}
    if minutes:
        return gettext("%(minutes)d min %(seconds)d s") % {"minutes": minutes, "seconds": seconds}
    return gettext("%(seconds)d s") % {"seconds": seconds}


def top_errors(campaign: Campaign) -> list[dict[str, Any]]:
    """The campaign's most frequent error codes, with how many messages had each (one
    grouped query)."""
    rows = (
        Message.objects.filter(campaign=campaign)
        .exclude(error_code="")
        .values("error_code")
        .annotate(count=Count("pk"))
        .order_by("-count", "error_code")[:TOP_ERRORS]
    )
    return [
        {"code": row["error_code"], "count": row["count"], "display": _number(row["count"])}
        for row in rows
    ]


def progress_display(progress: Any) -> dict[str, str]:
    """Every figure of a :class:`~django_smsfly.campaigns.Progress`, formatted for the
    active language (the page and its JSON show the same strings)."""
    via = progress.delivered_via or {}
    counts = {
        name: _number(getattr(progress, name))
        for name in (
            "total",
            "done",
            "queued",
            "sending",
            "accepted",
            "delivered",
            "failed",
            "opted_out",
            "cancelled",
            "unknown",
        )
    }
    return {
        **counts,
        "status": str(Campaign.Status(progress.status).label),
        "percent": f"{_number(progress.percent)} %",
        "spend": money(progress.spend),
        "rate": gettext("%(rate)s per second") % {"rate": _rate(progress.rate)},
        "eta": duration(progress.eta_seconds)
        if progress.status == Campaign.Status.RUNNING
        else "—",
        "started_at": _moment(progress.started_at),
        "finished_at": _moment(progress.finished_at),
        "via_viber": _number(int(via.get("viber", 0))),
        "via_sms": _number(int(via.get("sms", 0))),
    }


def progress_payload(campaign: Campaign) -> dict[str, Any]:
    """The progress page's JSON: the engine's figures, the same formatted, the buttons
    the status offers, the top error codes, and whether to keep asking."""
    progress = campaigns.progress(campaign)
    status = str(progress.status)
    return {
        "progress": progress.as_dict(),
        "display": progress_display(progress),
        "status": status,
        "badge": BADGE_KINDS.get(Campaign.Status(status), "neutral"),
        "final": status in FINAL,
        "actions": [name for name, states in ACTIONS_BY_STATUS.items() if status in states],
        "top_errors": top_errors(campaign),
    }


# -- the results file -------------------------------------------------------------------


def safe_cell(value: object) -> str:
    """A cell a spreadsheet shows as text: one that starts like a formula gets a quote
    in front (``=HYPERLINK(...)`` would otherwise run when the file is opened)."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


class _Echo:
    """A file that hands back what is written: csv.writer formats, the response streams."""

    def write(self, value: str) -> str:
        return value


def csv_lines(rows: Iterable[Iterable[object]]) -> Iterator[str]:
    """``rows`` as CSV lines, each cell made safe (:func:`safe_cell`)."""
    writer = csv.writer(_Echo())
    for row in rows:
        yield writer.writerow([safe_cell(cell) for cell in row])


def export_response(campaign: Campaign) -> StreamingHttpResponse:
    """The campaign's results as a CSV download, streamed (never all rows in memory).

    A byte-order mark leads, so that spreadsheet programs read the file as UTF-8.
    """
    lines = chain(["\ufeff"], csv_lines(campaigns.export_rows(campaign)))
    response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="campaign-{campaign.pk}.csv"'
    return response
