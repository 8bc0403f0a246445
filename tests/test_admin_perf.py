"""The message list stays as fast with many messages as with few.

The list is loaded at a small and a large table size. The number of queries must be
the same at both, and the time of a load (median of several) is measured at each,
with the part of it spent in the database. By default the sizes are 200 and 2,000 so
the suite stays quick; with ``SMSFLY_PERF_TESTS=1`` they are 1,000 and 100,000, the
ratio of the page times must stay within 1.5 for the plain and the filtered list, and
the figures are written to ``benchmarks/results/admin_list.json``. Run it on
PostgreSQL too (``DATABASE_URL=postgres://...``). A search for words of the text reads
every row it looks through, so its figures are recorded, not bounded.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import statistics
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any
from unittest import mock

import django
import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from django_smsfly.models import ChannelStatus, Message

pytestmark = pytest.mark.django_db

FULL = os.environ.get("SMSFLY_PERF_TESTS") == "1"
SMALL, LARGE = (1_000, 100_000) if FULL else (200, 2_000)
LOADS = 15 if FULL else 3
CHUNK = 5_000
#: Messages are spread over this many days, at every size alike.
SPREAD_DAYS = 90
RESULTS = Path(__file__).resolve().parent.parent / "benchmarks" / "results" / "admin_list.json"

#: (state, status, channels) in rotation: mostly delivered, some failed, some pending.
SHAPES = [
    ("accepted", "delivered", "sms"),
    ("accepted", "delivered", "viber,sms"),
    ("accepted", "viewed", "viber"),
    ("accepted", "sent", "sms"),
    ("accepted", "undelivered", "sms"),
    ("failed", "failed", "sms"),
    ("accepted", "delivered", "sms"),
    ("unknown", "queued", "viber,sms"),
]

PAGES = {
    "list": {},
    "filtered": {"status__exact": "delivered"},
    "searched": {"q": "050 000 0007"},
}


def grow_to(total: int, users: list[User]) -> None:
    """Add messages (with their channel rows) until the table holds ``total``."""
    have = Message.objects.count()
    now = timezone.now()
    created_at = Message._meta.get_field("created_at")
    # auto_now_add would stamp every row "now"; the list must see a spread of dates.
    with mock.patch.object(created_at, "auto_now_add", False):
        for start in range(have, total, CHUNK):
            batch = []
            for n in range(start, min(start + CHUNK, total)):
                state, status, channels = SHAPES[n % len(SHAPES)]
                batch.append(
                    Message(
                        recipient=f"38050{n % 10_000_000:07d}",
                        channels=channels,
                        content={"sms": {"source": "InfoCenter", "text": f"Message {n}"}},
                        message_id=f"FAPI{n:032X}" if state == "accepted" else None,
                        state=state,
                        status=status,
                        cost=Decimal("0.479"),
                        created_by=users[n % len(users)],
                        created_at=now - dt.timedelta(minutes=(n * 7919) % (SPREAD_DAYS * 1440)),
                    )
                )
            messages = Message.objects.bulk_create(batch)
            ChannelStatus.objects.bulk_create(
                ChannelStatus(message=m, channel=ch, position=i, status=m.status)
                for m in messages
                for i, ch in enumerate(m.channels.split(","))
            )
    analyze()


def shrink_to(total: int) -> None:
    """Delete the newest rows until the table holds ``total`` (the oldest keep their spread)."""
    keep = Message.objects.order_by("pk").values_list("pk", flat=True)[total - 1]
    Message.objects.filter(pk__gt=keep).delete()
    analyze()


def analyze() -> None:
    if connection.vendor == "postgresql":
        # What autovacuum does on its own to a table that changed: keep the planner's
        # statistics (and the list's row estimate) current.
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {Message._meta.db_table}")
            cursor.execute(f"ANALYZE {ChannelStatus._meta.db_table}")


@dataclass
class Measured:
    """One page at one table size."""

    queries: int
    #: Median time of a whole page load (template rendering included).
    page_ms: float
    #: Median time spent in the database during a load.
    db_ms: float
    #: What the page's count was (``MessagePaginator.count_kind``).
    count: str


def measure(browser: Client, params: dict[str, str]) -> Measured:
    """Queries of one load, and the median page and database times of several."""
    url = reverse("admin:django_smsfly_message_changelist")
    response = browser.get(url, params)  # warm caches (balance, templates)
    assert response.status_code == 200
    with CaptureQueriesContext(connection) as captured:
        response = browser.get(url, params)
    # Counted now: the test client's next request clears the connection's query log.
    queries = len(captured)
    assert response.status_code == 200
    kind = response.context["cl"].paginator.count_kind
    in_db: list[float] = []

    def timed(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            in_db[-1] += time.perf_counter() - started

    pages = []
    with connection.execute_wrapper(timed):
        for _ in range(LOADS):
            in_db.append(0.0)
            started = time.perf_counter()
            browser.get(url, params)
            pages.append(time.perf_counter() - started)
    return Measured(
        queries=queries,
        page_ms=statistics.median(pages) * 1000,
        db_ms=statistics.median(in_db) * 1000,
        count=kind,
    )


def test_the_list_costs_the_same_at_any_size() -> None:
    users = [User.objects.create_superuser(f"op{n}", f"op{n}@example.com", "pw") for n in range(5)]
    browser = Client()
    browser.force_login(users[0])

    def measure_pages() -> dict[str, Measured]:
        return {name: measure(browser, params) for name, params in PAGES.items()}

    # Small, large, then small again (the large table cut back): the machine's load
    # drifts, so the small table's times are the mean of the runs either side.
    grow_to(SMALL, users)
    before = measure_pages()
    grow_to(LARGE, users)
    large = measure_pages()
    shrink_to(SMALL)
    after = measure_pages()
    assert Message.objects.count() == SMALL

    figures: dict[str, Any] = {}
    for name in PAGES:
        runs = (before[name], large[name], after[name])
        assert len({run.queries for run in runs}) == 1, (name, runs)  # the same at any size
        small_ms = (before[name].page_ms + after[name].page_ms) / 2
        small_db = (before[name].db_ms + after[name].db_ms) / 2
        figures[name] = {
            "queries": large[name].queries,
            str(SMALL): {
                "median_ms": round(small_ms, 2),
                "db_ms": round(small_db, 3),
                "count": before[name].count,
            },
            str(LARGE): {
                "median_ms": round(large[name].page_ms, 2),
                "db_ms": round(large[name].db_ms, 3),
                "count": large[name].count,
            },
            "ratio": round(large[name].page_ms / small_ms, 3),
            "db_ratio": round(large[name].db_ms / small_db, 3),
        }
    if FULL:
        record(figures)
        assert figures["list"]["ratio"] <= 1.5, figures
        assert figures["filtered"]["ratio"] <= 1.5, figures


def record(figures: dict[str, Any]) -> None:
    """Merge this run's figures into the results file, under the database's name."""
    results: dict[str, Any] = {}
    if RESULTS.exists():
        results = json.loads(RESULTS.read_text())
    results[connection.vendor] = {
        "when": timezone.now().isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "django": django.get_version(),
        "sizes": [SMALL, LARGE],
        "loads": LOADS,
        "load_average": [round(n, 2) for n in os.getloadavg()],
        "pages": {name: {"params": PAGES[name], **figure} for name, figure in figures.items()},
    }
    RESULTS.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
