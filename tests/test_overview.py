"""The delivery overview: messages per day by outcome, the rate, and the SVG chart."""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from collections.abc import Callable
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse

from django_smsfly.admin.overview import DayCount, Overview, delivery_overview, render_chart
from django_smsfly.models import Message

pytestmark = pytest.mark.django_db

KYIV = ZoneInfo("Europe/Kyiv")
TODAY = dt.date(2026, 3, 15)
SVG = "{http://www.w3.org/2000/svg}"
OVERVIEW_URL = "admin:django_smsfly_message_overview"


def message(status: str, at: dt.datetime, text: str = "Hello") -> Message:
    row = Message.objects.create(
        recipient="380501234567",
        channels="sms",
        content={"sms": {"source": "InfoCenter", "text": text}},
        state="accepted",
        status=status,
    )
    # created_at is stamped on insert; these messages belong to given days.
    Message.objects.filter(pk=row.pk).update(created_at=at)
    return row


def local(day: dt.date, hour: int = 12, minute: int = 0) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=KYIV)


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # noqa: S314 - the chart this app drew, not outside input


def by_day(overview: Overview) -> dict[dt.date, tuple[int, int, int]]:
    return {d.day: (d.delivered, d.failed, d.pending) for d in overview.days}


def test_counts_each_day_by_outcome() -> None:
    for status in ("delivered", "viewed", "undelivered", "sent"):
        message(status, local(TODAY))
    for status in ("expired", "stopped", "failed", "queued", "accepted", "in_progress"):
        message(status, local(TODAY - dt.timedelta(days=3)))
    counted = by_day(delivery_overview(30, today=TODAY, tz=KYIV))
    assert counted[TODAY] == (2, 1, 1)
    assert counted[TODAY - dt.timedelta(days=3)] == (0, 3, 3)


def test_days_without_messages_are_zero_and_the_window_is_exact() -> None:
    message("delivered", local(TODAY - dt.timedelta(days=29), 0, 5))  # first day, just in
    message("delivered", local(TODAY - dt.timedelta(days=30), 23, 55))  # the day before
    message("delivered", local(TODAY + dt.timedelta(days=1), 0, 5))  # tomorrow
    overview = delivery_overview(30, today=TODAY, tz=KYIV)
    assert len(overview.days) == 30
    assert overview.days[0].day == TODAY - dt.timedelta(days=29)
    assert overview.days[-1].day == TODAY
    assert overview.days[0].delivered == 1
    assert sum(d.total for d in overview.days) == 1
    assert all(d.total == 0 for d in overview.days[1:])


def test_days_are_local_days_of_the_site() -> None:
    # 23:30 UTC on the 14th is 01:30 on the 15th in Kyiv (UTC+2 in March).
    message("delivered", dt.datetime(2026, 3, 14, 23, 30, tzinfo=dt.timezone.utc))
    assert by_day(delivery_overview(30, today=TODAY, tz=KYIV))[TODAY] == (1, 0, 0)
    utc = by_day(delivery_overview(30, today=TODAY, tz=dt.timezone.utc))
    assert utc[TODAY - dt.timedelta(days=1)] == (1, 0, 0)


def test_the_rate_counts_delivered_among_finished_messages() -> None:
    for status in ("delivered", "delivered", "viewed", "undelivered", "queued", "sent"):
        message(status, local(TODAY))
    message("failed", local(TODAY - dt.timedelta(days=1)))
    overview = delivery_overview(30, today=TODAY, tz=KYIV)
    assert overview.days[-1].rate == Decimal("0.75")  # 3 of 4 finished; 2 pending left out
    assert overview.days[-2].rate == Decimal("0")
    assert overview.days[0].rate is None  # nothing finished that day
    assert (overview.delivered, overview.failed, overview.pending) == (3, 2, 2)
    assert overview.rate == Decimal("0.6")


def test_counting_is_one_query(django_assert_num_queries: Callable[..., Any]) -> None:
    for n in range(20):
        message("delivered", local(TODAY - dt.timedelta(days=n % 30)))
    with django_assert_num_queries(1):
        delivery_overview(30, today=TODAY, tz=KYIV)


# -- the chart -------------------------------------------------------------------------------


def test_the_chart_is_well_formed_svg_with_a_bar_per_day() -> None:
    message("delivered", local(TODAY))
    message("failed", local(TODAY))
    message("sent", local(TODAY - dt.timedelta(days=2)))
    overview = delivery_overview(30, today=TODAY, tz=KYIV)
    root = parse(render_chart(overview))
    assert root.tag == f"{SVG}svg"
    assert root.get("role") == "img"
    days = [g for g in root.iter(f"{SVG}g") if g.get("class") == "smsfly-chart-day"]
    assert [g.get("data-day") for g in days] == [d.day.isoformat() for d in overview.days]
    today = days[-1]
    assert (today.get("data-delivered"), today.get("data-failed"), today.get("data-pending")) == (
        "1",
        "1",
        "0",
    )
    bars = {r.get("class") for r in today.iter(f"{SVG}rect")}
    assert bars == {"smsfly-chart-delivered", "smsfly-chart-failed"}
    assert not list(days[0].iter(f"{SVG}rect"))  # an empty day draws no bar
    assert "pending" in (days[-3].findtext(f"{SVG}title") or "")


def test_bars_are_scaled_to_the_busiest_day() -> None:
    overview = Overview(
        days=(
            DayCount(TODAY - dt.timedelta(days=1), delivered=5),
            DayCount(TODAY, delivered=8, failed=2),
        )
    )
    root = parse(render_chart(overview))
    heights = [
        float(r.get("height") or 0)
        for r in root.iter(f"{SVG}rect")
        if (r.get("class") or "").startswith("smsfly-chart-")
    ]
    # The scale tops at 10: 5 is half of the 10 (8 + 2) of the busiest day.
    assert heights[0] * 2 == pytest.approx(heights[1] + heights[2])


def test_an_empty_period_still_draws_a_chart() -> None:
    root = parse(render_chart(delivery_overview(30, today=TODAY, tz=KYIV)))
    assert len(list(root.iter(f"{SVG}g"))) == 30


# -- the page --------------------------------------------------------------------------------


def test_the_overview_page_is_linked_from_the_list() -> None:
    operator = Client()
    operator.force_login(User.objects.create_superuser("op", "op@example.com", "pw"))
    message("delivered", dt.datetime.now(tz=KYIV), text='<script>alert("x")</script>')
    page = operator.get(reverse("admin:django_smsfly_message_changelist")).content.decode()
    assert reverse(OVERVIEW_URL) in page
    response = operator.get(reverse(OVERVIEW_URL))
    assert response.status_code == 200
    html = response.content.decode()
    assert "<svg" in html
    assert "<script>alert" not in html
    assert 'id="smsfly-delivery-rate">100&nbsp;%' in html
    assert "<script src=" not in html.split('id="content-main"')[1]  # no script for the chart


def test_the_overview_needs_the_view_permission() -> None:
    user = User.objects.create_user("staff", "staff@example.com", "pw", is_staff=True)
    browser = Client()
    browser.force_login(user)
    assert browser.get(reverse(OVERVIEW_URL)).status_code == 403
    user.user_permissions.set(Permission.objects.filter(codename="view_message"))
    assert browser.get(reverse(OVERVIEW_URL)).status_code == 200
