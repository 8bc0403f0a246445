"""The campaign list benchmark: what a page of the list costs as campaigns pile up.

Run from the repository root::

    .venv/bin/python -m benchmarks.bench_campaign_list            # make bench-campaign-list
    .venv/bin/python -m benchmarks.bench_campaign_list --campaigns 10 --messages 5000
    .venv/bin/python -m benchmarks.bench_campaign_list --database-url postgres://...

``--campaigns`` finished campaigns of ``--messages`` final messages each (delivered,
undelivered, refused, with costs) are written straight to the database, then the query
the admin's campaign list runs for its page (:func:`~django_smsfly.campaigns.outcomes.
with_outcomes` over the first 100 campaigns, newest first) is timed ``--repeat`` times:

0. **joined (before)**: the query the list ran before campaigns kept their counts, every
   message of every campaign joined and grouped: the baseline of the ratios;
1. **counted**: no campaign settled yet, each campaign on the page counted from its own
   messages (a subquery per figure);
2. **settled**: after :func:`django_smsfly.campaigns.settle` (timed too: a one-off per
   campaign, on the sync pass), the figures read from the campaigns' rows;
3. **settled + 1 running**: one more campaign of as many messages, still running, so
   counted live beside the settled ones.

The ratio of each to "joined", from the same run, is what the change bought; the
figures of every campaign must be the same every way (the run fails otherwise). The
database is a SQLite file in WAL mode in a temporary directory, or PostgreSQL with
``--database-url`` (flushed first). Results go to ``benchmarks/results/``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from benchmarks.bench_campaign import RESULTS, site_settings, start_django

PAGE = 100
BATCH = 5_000


def setup_django(args: argparse.Namespace, workdir: Path) -> str:
    """Configure Django for this process, migrate, and flush PostgreSQL."""
    from django.conf import settings

    settings.configure(
        **site_settings(args, workdir),
        SMSFLY={"BACKEND": "django_smsfly.backends.sandbox.SandboxBackend"},
    )
    return start_django()


def fill(name: str, messages: int, status: str) -> Any:
    """A campaign with ``messages`` messages: 70 % delivered, 20 % undelivered (both
    charged), 10 % refused; all final unless the campaign is running."""
    from django.utils import timezone

    from django_smsfly.models import Campaign, Message

    campaign = Campaign.objects.create(name=name, status=status, rows_valid=messages)
    running = status == Campaign.Status.RUNNING
    rows = []
    for index in range(messages):
        share = index % 10
        refused = share == 9
        rows.append(
            Message(
                recipient=f"38050{index:07d}",
                channels="sms",
                content={"sms": {"source": "InfoCenter", "text": "Hello"}},
                campaign=campaign,
                state=Message.State.FAILED if refused else Message.State.ACCEPTED,
                status="failed" if refused else ("delivered" if share < 7 else "undelivered"),
                cost=None if refused else Decimal("0.479"),
                next_check_at=None,
            )
        )
        if len(rows) == BATCH:
            Message.objects.bulk_create(rows)
            rows = []
    Message.objects.bulk_create(rows)
    if running:
        # A few still waiting for their report: a live campaign's messages are not final.
        waiting = list(
            Message.objects.filter(campaign=campaign, status="delivered").values_list(
                "pk", flat=True
            )[:100]
        )
        Message.objects.filter(pk__in=waiting).update(
            status="accepted", next_check_at=timezone.now()
        )
    return campaign


def page() -> list[tuple[str, int, int, int, Decimal | None]]:
    """The list's page query, evaluated: what the admin runs for its rows."""
    from django_smsfly.campaigns.outcomes import with_outcomes
    from django_smsfly.models import Campaign

    rows: Any = with_outcomes(Campaign.objects.order_by("-created_at", "-id"))[:PAGE]
    return [(c.name, c.n_handled, c.n_delivered, c.n_failed, c.spend) for c in rows]


def joined_page() -> list[tuple[str, int, int, int, Decimal | None]]:
    """The page as the list counted it before campaigns kept their counts: every message
    of every campaign joined and grouped (the baseline)."""
    from django.db.models import Count, Q, Sum

    from django_smsfly.campaigns.outcomes import DELIVERED, FAILED
    from django_smsfly.models import Campaign, Message

    rows: Any = Campaign.objects.order_by("-created_at", "-id").annotate(
        n_handled=Count(
            "messages",
            filter=~Q(messages__state__in=(Message.State.QUEUED, Message.State.SENDING)),
        ),
        n_delivered=Count("messages", filter=Q(messages__status__in=DELIVERED)),
        n_failed=Count(
            "messages",
            filter=Q(messages__state=Message.State.FAILED) | Q(messages__status__in=FAILED),
        ),
        spend=Sum("messages__cost"),
    )[:PAGE]
    return [(c.name, c.n_handled, c.n_delivered, c.n_failed, c.spend) for c in rows]


def timed(repeat: int, query: Any = page) -> tuple[float, list[float], Any]:
    """The median of ``repeat`` evaluations of ``query`` (seconds), all of them, and the
    rows of the last."""
    times = []
    rows: Any = None
    for _ in range(repeat):
        started = time.perf_counter()
        rows = query()
        times.append(time.perf_counter() - started)
    return statistics.median(times), times, rows


def bench(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="smsfly-bench-list-"))
    vendor = setup_django(args, workdir)
    from django_smsfly import campaigns
    from django_smsfly.models import Campaign

    started = time.perf_counter()
    for index in range(args.campaigns):
        fill(f"Campaign {index:03d}", args.messages, Campaign.Status.FINISHED)
    filled = time.perf_counter() - started
    page()  # warm the caches of both databases alike

    joined, joined_all, joined_rows = timed(args.repeat, joined_page)
    counted, counted_all, counted_rows = timed(args.repeat)
    if counted_rows != joined_rows:
        raise SystemExit("FAILED: the counted figures differ from the joined ones")
    started = time.perf_counter()
    settled_count = campaigns.settle()
    settle_time = time.perf_counter() - started
    if settled_count != args.campaigns:
        raise SystemExit(f"FAILED: settled {settled_count} of {args.campaigns} campaigns")
    settled, settled_all, settled_rows = timed(args.repeat)
    if settled_rows != counted_rows:
        raise SystemExit("FAILED: the settled figures differ from the counted ones")
    fill("Running", args.messages, Campaign.Status.RUNNING)
    mixed, mixed_all, _rows = timed(args.repeat)
    return {
        "database": vendor,
        "campaigns": args.campaigns,
        "messages_per_campaign": args.messages,
        "fill_seconds": round(filled, 1),
        "settle_seconds": round(settle_time, 3),
        "joined_ms": round(joined * 1000, 2),
        "counted_ms": round(counted * 1000, 2),
        "settled_ms": round(settled * 1000, 2),
        "settled_plus_running_ms": round(mixed * 1000, 2),
        "counted_ratio": round(counted / joined, 4),
        "settled_ratio": round(settled / joined, 4),
        "settled_plus_running_ratio": round(mixed / joined, 4),
        "runs_ms": {
            "joined": [round(t * 1000, 2) for t in joined_all],
            "counted": [round(t * 1000, 2) for t in counted_all],
            "settled": [round(t * 1000, 2) for t in settled_all],
            "settled_plus_running": [round(t * 1000, 2) for t in mixed_all],
        },
        "python": platform.python_version(),
    }


def table(results: dict[str, Any]) -> str:
    lines = [
        f"{results['campaigns']} finished campaigns x {results['messages_per_campaign']:,} "
        f"messages on {results['database']} (filled in {results['fill_seconds']} s); "
        f"settling them took {results['settle_seconds']} s once",
        f"{'page query':<24}{'median (ms)':>12}{'ratio':>8}",
        f"{'joined (before)':<24}{results['joined_ms']:>12}{1.0:>8.3f}",
        f"{'counted':<24}{results['counted_ms']:>12}{results['counted_ratio']:>8.3f}",
        f"{'settled':<24}{results['settled_ms']:>12}{results['settled_ratio']:>8.3f}",
        f"{'settled + 1 running':<24}{results['settled_plus_running_ms']:>12}"
        f"{results['settled_plus_running_ratio']:>8.3f}",
    ]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--campaigns", type=int, default=20, help="finished campaigns")
    parser.add_argument("--messages", type=int, default=20_000, help="messages per campaign")
    parser.add_argument("--repeat", type=int, default=5, help="timings of each page query")
    parser.add_argument("--database-url", help="a PostgreSQL URL (default: SQLite)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--output", type=Path, help="where to write the JSON results")
    args = parser.parse_args(argv)
    if args.campaigns < 1 or args.messages < 10 or args.repeat < 1:
        parser.error("--campaigns and --repeat must be at least 1, --messages at least 10")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    results = bench(args)
    output = args.output or RESULTS / f"campaign-list-{results['database']}.json"
    output.parent.mkdir(exist_ok=True)
    output.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2) if args.json else table(results))
    print(f"\nwritten to {output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
