"""django-smsfly benchmarks: sending and status sync against the sandbox over real HTTP.

Run from the repository root::

    make bench            # the full run recorded in docs/performance.rst (~5 minutes)
    make bench-quick      # a smaller run to check the machinery (~1 minute)

The sandbox runs as a separate process on 127.0.0.1 with a simulated network latency,
so the client, the database and the server do not share one interpreter. Every figure
is a ratio between runs made in the same invocation (the machine is noisy; absolute
times are printed for context only). Results go to ``benchmarks/results/latest.json``
and are printed as the reStructuredText tables used in docs/performance.rst.
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
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


def setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.settings")
    sys.path.insert(0, str(ROOT))
    db = Path(os.environ.get("SMSFLY_BENCH_DB", "/tmp/smsfly-bench.sqlite3"))
    if not os.environ.get("DATABASE_URL"):
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def using(url: str) -> Any:
    """Settings pointing the app at one sandbox server."""
    from django.conf import settings
    from django.test import override_settings

    return override_settings(SMSFLY={**settings.SMSFLY, "API_URL": url})


# -- sending ----------------------------------------------------------------------------


def bench_send(url: str, count: int, rounds: int) -> dict[str, float]:
    """``send_sms`` against a bare ``requests`` POST of the same body, interleaved."""
    import requests

    from django_smsfly import services
    from django_smsfly.models import Message

    with using(url):
        client = services.get_client()
        prepared = client.prepare("380501234567", channels=["sms"], sms={"text": "Benchmark"})
        body = {
            "auth": {"key": "benchmark-key", "appversion": client.appversion},
            "action": "SENDMESSAGE",
            "data": dict(prepared.data),
        }
        session = requests.Session()
        session.headers["Content-Type"] = "application/json"
        payload = json.dumps(body).encode()
        # Warm up both paths (connections, imports, first queries).
        for _ in range(5):
            session.post(url, data=payload, timeout=10).raise_for_status()
            services.send_sms("380501234567", "Benchmark")
        bare = app = 0.0
        per_round = count // rounds
        for _ in range(rounds):
            started = time.perf_counter()
            for _ in range(per_round):
                session.post(url, data=payload, timeout=10).raise_for_status()
            bare += time.perf_counter() - started
            started = time.perf_counter()
            for _ in range(per_round):
                services.send_sms("380501234567", "Benchmark")
            app += time.perf_counter() - started
        sent = per_round * rounds
        accepted = Message.objects.filter(state=Message.State.ACCEPTED).count()
        assert accepted >= sent, f"only {accepted} of {sent} accepted"
        session.close()
    return {
        "messages": sent,
        "bare_ms": 1000 * bare / sent,
        "app_ms": 1000 * app / sent,
        "ratio": app / bare,
    }


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


def rst_tables(results: dict[str, Any]) -> str:
    send = results["send"]
    lines = [
        "Sending (20 ms latency)",
        "",
        "==========================  =========  ==========  ======  ======",
        "messages                    bare (ms)  app (ms)    ratio   target",
        "==========================  =========  ==========  ======  ======",
        f"{send['messages']:<26}  {send['bare_ms']:9.2f}  {send['app_ms']:10.2f}  "
        f"{send['ratio']:6.3f}  ≤ 1.10",
        "==========================  =========  ==========  ======  ======",
        "",
        f"The app's own time per message at 0 ms latency: "
        f"{results['send_0ms']['app_ms'] - results['send_0ms']['bare_ms']:.2f} ms "
        f"(send_sms {results['send_0ms']['app_ms']:.2f} ms, bare POST "
        f"{results['send_0ms']['bare_ms']:.2f} ms).",
        "",
        f"Status sync ({results['sync'][0]['messages']} due messages, 20 ms latency)",
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smaller, faster run")
    args = parser.parse_args()
    setup_django()
    from django.db import connection

    sync_count = 1000 if args.quick else 10_000
    send_count = 100 if args.quick else 400
    results: dict[str, Any] = {
        "when": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "database": connection.vendor,
        "quick": args.quick,
    }
    with sandbox_server(0.0) as fast:
        results["send_0ms"] = bench_send(fast, send_count, 4)
        print("send, 0 ms:", results["send_0ms"], flush=True)
        results["memory"] = bench_sync_memory(fast, sync_count // 5, sync_count)
        print("sync memory:", results["memory"], flush=True)
    with sandbox_server(0.02) as slow:
        results["send"] = bench_send(slow, send_count, 4)
        print("send, 20 ms:", results["send"], flush=True)
        make_due_messages(sync_count)
        results["sync"] = []
        for concurrency in (16, 4, 1):
            row = bench_sync(slow, sync_count, concurrency, 0.02)
            row["bare_ratio"] = bench_bare_poll(slow, concurrency, 0.02)
            print("sync:", row, flush=True)
            results["sync"].append(row)
    results["sync"].sort(key=lambda row: row["concurrency"])
    RESULTS.mkdir(exist_ok=True)
    name = "quick.json" if args.quick else "latest.json"
    (RESULTS / name).write_text(json.dumps(results, indent=2) + "\n")
    print()
    print(rst_tables(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
