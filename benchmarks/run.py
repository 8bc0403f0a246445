"""django-smsfly benchmarks: sending and status sync against the sandbox over real HTTP.

Run from the repository root::

    make bench            # the full run recorded in docs/performance.rst (~20 minutes)
    make bench-quick      # a smaller run to check the machinery (~2 minutes)
    make bench-send       # the send legs only, three runs each (~5 minutes)

The sandbox runs as a separate process on 127.0.0.1 with a simulated network latency,
so the client, the database and the server do not share one interpreter. Every figure
is a ratio between runs made in the same invocation (the machine is noisy; absolute
times are printed for context only).

**Sending** is measured on three databases ("legs", benchmarks/legs.py): PostgreSQL
with Django's default settings (``SMSFLY_BENCH_PG_URL``, default
``postgres://postgres@127.0.0.1:5432/smsfly_bench``, created if missing; the leg is
skipped, saying why, when PostgreSQL cannot be reached), SQLite with Django's default
settings, and SQLite in WAL mode. Django reads its settings once per process, so each
leg is a child process (``python -m benchmarks.send --leg NAME``) that prints its
figures as a JSON line; this process starts the sandbox servers, runs the legs (three
passes by default, ``--passes N``, the order reversed on every other pass) and puts
the ratios side by side. ``--legs postgresql,sqlite-wal`` runs some legs only.

**Status sync** and its memory run in this process, on ``DATABASE_URL`` when it is set
(your own database: the benchmark deletes its messages), else on SQLite in WAL mode.
``--send-only`` leaves them out.

Results go to ``benchmarks/results/latest.json`` (``quick.json``, ``send-latest.json``;
``--output FILE`` elsewhere) and are printed as the reStructuredText tables used in
docs/performance.rst.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import gc
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks.legs import (
    LEGS,
    baseline_pg_url,
    ensure_postgresql,
    leg_from_environment,
    pg_url,
    setup_django,
)

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"


@contextlib.contextmanager
def sandbox_server(latency: float) -> Iterator[str]:
    """A sandbox server in its own process; yields its API URL."""
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [
            sys.executable,
            "-m",
            "django_smsfly.backends.sandbox_server",
            "--port",
            "0",
            "--latency",
            str(latency),
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.search(r"(http://127\.0\.0\.1:\d+/\S+)", line)
        if not match:
            raise RuntimeError(f"the sandbox server did not start: {line!r}")
        yield match.group(1)
    finally:
        process.terminate()
        process.wait(timeout=10)


def using(url: str) -> Any:
    """Settings pointing the app at one sandbox server."""
    from django.conf import settings
    from django.test import override_settings

    return override_settings(SMSFLY={**settings.SMSFLY, "API_URL": url})


# -- sending (one child process per database leg, see benchmarks/send.py) ---------------


def run_send_leg(
    leg: str, url: str, fast_url: str, count: int, rounds: int, *, root: Path = ROOT
) -> dict[str, Any]:
    """Run one send leg in a child process (its own Django settings); its figures.

    ``root``: the checkout whose code the child runs (see ``--baseline``).
    """
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "benchmarks.settings"}
    env.pop("SMSFLY_BENCH_LEG", None)
    if root != ROOT:
        # Its own PostgreSQL database: the two checkouts may not have the same migrations.
        env["SMSFLY_BENCH_PG_URL"] = baseline_pg_url()
    completed = subprocess.run(  # noqa: S603 - our own interpreter and module
        [
            sys.executable,
            "-m",
            "benchmarks.send",
            "--leg",
            leg,
            "--url",
            url,
            "--fast-url",
            fast_url,
            "--count",
            str(count),
            "--rounds",
            str(rounds),
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=root,
        env=env,
        check=True,
    )
    result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


def bench_send_legs(
    legs: list[str], passes: int, count: int, rounds: int, baseline: Path | None = None
) -> dict[str, dict[str, Any]]:
    """Every leg, ``passes`` times, the order reversed on every other pass.

    With a ``baseline`` checkout, each leg also runs from there, right before or after
    this checkout's run of it (alternately): a change's effect, measured in one run.
    """
    skipped: dict[str, str] = {}
    if "postgresql" in legs:
        urls = [pg_url()] + ([baseline_pg_url()] if baseline else [])
        problem = next(filter(None, map(ensure_postgresql, urls)), None)
        if problem is not None:
            print(f"send, postgresql: skipped, PostgreSQL is not reachable ({problem})")
            skipped["postgresql"] = problem
    trees = [ROOT] if baseline is None else [ROOT, baseline]
    runnable = [(leg, tree) for leg in legs if leg not in skipped for tree in trees]
    runs: dict[str, list[dict[str, Any]]] = {}
    for index in range(passes):
        order = runnable if index % 2 == 0 else runnable[::-1]
        for leg, tree in order:
            name = leg if tree == ROOT else f"{leg} (baseline)"
            # Fresh servers for every run: a sandbox's balance lasts about 2,000 sends.
            with sandbox_server(0.02) as slow, sandbox_server(0.0) as fast:
                result = run_send_leg(leg, slow, fast, count, rounds, root=tree)
            runs.setdefault(name, []).append(result)
            send, app_time = result["send"], result["app_time"]
            print(
                f"send, {name}, pass {index + 1}: ratio {send['ratio']:.3f} "
                f"(bare {send['bare_ms']:.2f} ms, send_sms {send['app_ms']:.2f} ms); "
                f"0 ms: database {app_time['database_ms']:.2f} ms, "
                f"beyond {app_time['beyond_ms']:.2f} ms, "
                f"CPU beyond {app_time['cpu_beyond_ms']:.2f} ms",
                flush=True,
            )
    summary: dict[str, dict[str, Any]] = {leg: {"skipped": skipped[leg]} for leg in skipped}
    for name, results in sorted(runs.items()):
        sends = [run["send"] for run in results]
        app_times = [run["app_time"] for run in results]
        ratios = [send["ratio"] for send in sends]
        summary[name] = {
            "passes": len(sends),
            "messages": sum(send["messages"] for send in sends),
            "bare_ms": statistics.median(send["bare_ms"] for send in sends),
            "app_ms": statistics.median(send["app_ms"] for send in sends),
            "ratio": statistics.median(ratios),
            "ratio_min": min(ratios),
            "ratio_max": max(ratios),
            "database_ms": statistics.median(a["database_ms"] for a in app_times),
            "beyond_ms": statistics.median(a["beyond_ms"] for a in app_times),
            "cpu_beyond_ms": statistics.median(a["cpu_beyond_ms"] for a in app_times),
            "statements": app_times[0]["statements"],
            "runs": results,
        }
    return summary


# -- sync -------------------------------------------------------------------------------


def make_due_messages(count: int) -> None:
    """``count`` accepted messages, due for a status check, with ids the sandbox knows."""
    from django.utils import timezone

    from django_smsfly.backends.sandbox import Simulator
    from django_smsfly.models import ChannelStatus, Message

    Message.objects.all().delete()
    simulator = Simulator(balance="100000000")
    # Sent a minute ago: by now the sandbox reports every one delivered.
    simulator.freeze(timezone.now() - dt.timedelta(minutes=1))
    messages = []
    for i in range(count):
        sms = {"source": "InfoCenter", "text": f"Message {i}"}
        body = {
            "auth": {"key": "k"},
            "action": "SENDMESSAGE",
            "data": {"recipient": "380501234567", "channels": ["sms"], "sms": sms},
        }
        status, reply = simulator.handle(body)
        assert status == 200, reply
        messages.append(
            Message(
                recipient="380501234567",
                channels="sms",
                content={"sms": sms},
                message_id=reply["data"]["messageID"],
                state=Message.State.ACCEPTED,
                status="accepted",
                sent_at=timezone.now() - dt.timedelta(minutes=1),
                next_check_at=timezone.now(),
            )
        )
    Message.objects.bulk_create(messages, batch_size=1000)
    ChannelStatus.objects.bulk_create(
        [
            ChannelStatus(message=m, channel="sms", status="accepted", raw_status="ACCEPTD")
            for m in Message.objects.only("pk")
        ],
        batch_size=1000,
    )


def reset_due() -> None:
    """Every message back to accepted and due, as if never checked."""
    from django.utils import timezone

    from django_smsfly.models import ChannelStatus, Message, StatusChange

    StatusChange.objects.all().delete()
    ChannelStatus.objects.update(status="accepted", raw_status="ACCEPTD")
    Message.objects.update(status="accepted", delivered_via="", next_check_at=timezone.now())


def bench_sync(url: str, count: int, concurrency: int, latency: float) -> dict[str, float]:
    """Wall time of one sync of ``count`` due messages, against the ideal."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from django_smsfly import services

    reset_due()
    with using(url), CaptureQueriesContext(connection) as captured:
        started = time.perf_counter()
        report = services.sync_statuses(concurrency=concurrency, rate_limit=0)
        wall = time.perf_counter() - started
    assert report.checked == count, report
    assert report.final == count, report
    queries = [
        q for q in captured if not q["sql"].startswith(("BEGIN", "COMMIT", "SAVEPOINT", "RELEASE"))
    ]
    ideal = count * latency / concurrency
    return {
        "messages": count,
        "concurrency": concurrency,
        "wall_s": wall,
        "ideal_s": ideal,
        "ratio": wall / ideal,
        "queries_per_message": len(queries) / count,
    }


def bench_bare_poll(url: str, concurrency: int, latency: float) -> float:
    """The floor: the same status requests by bare ``requests`` threads, no app, no
    database. Returns wall time / ideal, like :func:`bench_sync`."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    import requests

    from django_smsfly.models import Message

    ids = list(Message.objects.values_list("message_id", flat=True))
    local = threading.local()

    def poll(message_id: str) -> None:
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
        body = {
            "auth": {"key": "k"},
            "action": "GETMESSAGESTATUS",
            "data": {"messageID": message_id},
        }
        session.post(url, data=json.dumps(body), timeout=10).raise_for_status()

    with ThreadPoolExecutor(concurrency) as pool:
        started = time.perf_counter()
        list(pool.map(poll, ids))
        wall = time.perf_counter() - started
    return wall / (len(ids) * latency / concurrency)


def bench_sync_memory(url: str, small: int, large: int) -> dict[str, float]:
    """Peak Python memory of a sync of ``small`` and of ``large`` messages."""
    from django_smsfly import services

    peaks = {}
    # A first run pays for imports and caches; measure after it.
    make_due_messages(small)
    with using(url):
        services.sync_statuses(concurrency=8, rate_limit=0)
    for count in (small, large):
        make_due_messages(count)
        gc.collect()
        tracemalloc.start()
        with using(url):
            services.sync_statuses(concurrency=8, rate_limit=0)
        peaks[count] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return {
        "small": small,
        "large": large,
        "small_peak_kib": peaks[small] / 1024,
        "large_peak_kib": peaks[large] / 1024,
        "ratio": peaks[large] / peaks[small],
    }


# -- report -----------------------------------------------------------------------------


#: The send table's columns: heading and width.
SEND_COLUMNS = (
    ("database", 18),
    ("runs", 4),
    ("bare (ms)", 9),
    ("app (ms)", 8),
    ("ratio", 5),
    ("range", 11),
    ("target", 6),
    ("database", 8),
    ("beyond", 6),
    ("CPU", 6),
)


def send_table(legs: dict[str, dict[str, Any]]) -> list[str]:
    rule = "  ".join("=" * width for _, width in SEND_COLUMNS)
    heading = "  ".join(f"{name:<{width}}" for name, width in SEND_COLUMNS).rstrip()
    lines = [
        "Sending: send_sms against a bare POST at 20 ms latency; app time at 0 ms",
        "",
        rule,
        heading,
        rule,
    ]
    names = {"postgresql": "PostgreSQL", "sqlite-default": "SQLite", "sqlite-wal": "SQLite WAL"}
    for leg, row in legs.items():
        base, baseline, _ = leg.partition(" (baseline)")
        name = names.get(base, base) + (" (base)" if baseline else "")
        if "skipped" in row:
            lines.append(f"{name:<18}  skipped: {row['skipped'][:60]}")
            continue
        lines.append(
            f"{name:<18}  {row['passes']:<4}  {row['bare_ms']:9.2f}  {row['app_ms']:8.2f}  "
            f"{row['ratio']:5.3f}  {row['ratio_min']:.3f}-{row['ratio_max']:.3f}  "
            f"≤ 1.10  {row['database_ms']:8.2f}  {row['beyond_ms']:6.2f}  "
            f"{row['cpu_beyond_ms']:6.2f}"
        )
    lines += [
        rule,
        "",
        "ratio: the median over the runs, range: the lowest and highest run. At 0 ms latency,",
        "per send: database = its statements and commits, beyond = send_sms - bare POST -",
        "database (target ≤ 1.5 ms), CPU = the client process's CPU time, send_sms - bare POST.",
    ]
    return lines


def rst_tables(results: dict[str, Any]) -> str:
    lines = send_table(results["send_legs"]) if "send_legs" in results else []
    if "sync" not in results:
        return "\n".join(lines)
    lines += [
        "",
        f"Status sync ({results['sync'][0]['messages']} due messages, 20 ms latency, "
        f"{results['database']})",
        "",
        "===========  ========  =========  ======  ======  ==========  =================",
        "concurrency  wall (s)  ideal (s)  ratio   target  bare ratio  queries / message",
        "===========  ========  =========  ======  ======  ==========  =================",
    ]
    for row in results["sync"]:
        lines.append(
            f"{row['concurrency']:<11}  {row['wall_s']:8.1f}  {row['ideal_s']:9.1f}  "
            f"{row['ratio']:6.3f}  ≤ 1.25  {row['bare_ratio']:10.3f}  "
            f"{row['queries_per_message']:.3f}"
        )
    memory = results["memory"]
    lines += [
        "===========  ========  =========  ======  ======  ==========  =================",
        "",
        f"Peak Python memory of a sync: {memory['small_peak_kib']:.0f} KiB for "
        f"{memory['small']} messages, {memory['large_peak_kib']:.0f} KiB for "
        f"{memory['large']} (ratio {memory['ratio']:.2f}).",
    ]
    return "\n".join(lines)


def bench_sync_all(results: dict[str, Any], sync_count: int) -> None:
    """The status sync and its memory, in this process, on ``DATABASE_URL`` or SQLite WAL."""
    leg = leg_from_environment()
    setup_django(leg)
    from django.db import connection

    results["database"] = connection.vendor
    with sandbox_server(0.0) as fast:
        results["memory"] = bench_sync_memory(fast, sync_count // 5, sync_count)
        print("sync memory:", results["memory"], flush=True)
    with sandbox_server(0.02) as slow:
        make_due_messages(sync_count)
        results["sync"] = []
        for concurrency in (16, 4, 1):
            row = bench_sync(slow, sync_count, concurrency, 0.02)
            row["bare_ratio"] = bench_bare_poll(slow, concurrency, 0.02)
            print("sync:", row, flush=True)
            results["sync"].append(row)
    results["sync"].sort(key=lambda row: row["concurrency"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smaller, faster run")
    parser.add_argument(
        "--send-only", action="store_true", help="only the send legs, not the status sync"
    )
    parser.add_argument(
        "--legs",
        default=",".join(LEGS),
        help=f"the send legs to run, comma-separated (default: {','.join(LEGS)})",
    )
    parser.add_argument(
        "--passes", type=int, help="how many times each send leg runs (default 3, quick 1)"
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        help="another checkout (e.g. a git worktree of the previous commit) whose send "
        "legs run beside this one's, alternately",
    )
    parser.add_argument("--output", help="where to write the JSON results")
    args = parser.parse_args()
    legs = [leg for leg in args.legs.split(",") if leg]
    unknown = set(legs) - set(LEGS)
    if unknown:
        parser.error(f"unknown legs: {', '.join(sorted(unknown))}")
    passes = args.passes or (1 if args.quick else 3)
    sync_count = 1000 if args.quick else 10_000
    send_count = 100 if args.quick else 400
    results: dict[str, Any] = {
        "when": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "quick": args.quick,
        "load_average": os.getloadavg(),
    }
    results["send_legs"] = bench_send_legs(
        legs, passes, send_count, 10 if args.quick else 20, args.baseline
    )
    if not args.send_only:
        bench_sync_all(results, sync_count)
    results["load_average_after"] = os.getloadavg()
    if args.output:
        output = Path(args.output)
    else:
        RESULTS.mkdir(exist_ok=True)
        name = "quick.json" if args.quick else "latest.json"
        output = RESULTS / (f"send-{name}" if args.send_only else name)
    output.write_text(json.dumps(results, indent=2) + "\n")
    print()
    print(rst_tables(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
