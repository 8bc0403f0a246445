"""Bulk sending in the background: a 100,000-row CSV through ``smsfly_send --defer`` and
task workers, against the sandbox over real HTTP, at a shared send rate.

Run from the repository root (PostgreSQL and Redis on 127.0.0.1, as for the engine
tests)::

    .venv/bin/python -m benchmarks.bulk                    # the recorded run (~25 minutes)
    .venv/bin/python -m benchmarks.bulk --rows 5000        # a quick run
    .venv/bin/python -m benchmarks.bulk --rows 10000 --rate 0   # the machine's capacity

What it does, with the harness of ``tests/test_engines.py`` (a PostgreSQL database of
its own, workers started as a site starts them, ``tests/engine_settings.py``):

1. starts the sandbox server in this process and ``--workers`` workers of ``--engine``,
   sharing ``SMSFLY["SEND_RATE_LIMIT"] = --rate`` through a Redis cache;
2. runs ``smsfly_send --csv FILE --defer`` and interrupts it with SIGINT once
   ``--interrupt-at`` of the rows are written, then runs the same command again to the
   end (rows already written are skipped, or enqueued again if still queued);
3. waits until every message is accepted, and checks that every recipient got exactly
   one SENDMESSAGE.

It reports the throughput over the sending phase (first to last acceptance) against the
rate, the busiest second, the pace of ``smsfly_send`` and its memory: the resident set
(VmRSS, sampled every 50 ms, and the kernel's high-water mark VmHWM) from when its first
row is written to its peak, over both runs. Results go to ``benchmarks/results/bulk.json``
(``bulk-quick.json`` for other row counts). Exit status 1 if anything was sent twice or
not at all.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import json
import platform
import signal
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks.run import RESULTS
from django_smsfly.backends.sandbox import state as sandbox_state
from django_smsfly.backends.sandbox_server import SandboxServer
from tests.test_engines import (
    EngineRun,
    ServiceUnavailable,
    busiest_second,
    check_services,
    processed_sends,
    rate_bound,
    recipients,
    write_csv,
)

FULL_ROWS = 100_000


class MemorySampler(threading.Thread):
    """Samples a process's VmRSS and VmHWM (KiB) every ``interval`` seconds until it ends."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.path = Path(f"/proc/{pid}/status")
        self.interval = interval
        self.rss_kib = 0
        self.peak_kib = 0
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.is_set():
            try:
                fields = dict(
                    line.split(":", 1)
                    for line in self.path.read_text().splitlines()
                    if ":" in line
                )
            except OSError:
                return  # the process ended
            if "VmRSS" not in fields:
                return  # ended, not yet reaped: no memory left to measure
            self.rss_kib = int(fields["VmRSS"].split()[0])
            self.peak_kib = max(self.peak_kib, self.rss_kib, int(fields["VmHWM"].split()[0]))
            time.sleep(self.interval)

    def stop(self) -> None:
        self._done.set()
        self.join(timeout=5)


def last_message(run: EngineRun) -> int:
    """The highest message id: rows are numbered as written (cheaper than a count)."""
    return int(run.query("SELECT coalesce(max(id), 0) FROM django_smsfly_message")[0][0])


def smsfly_send(
    run: EngineRun, path: Path, log: Path, *, interrupt_at: int | None
) -> dict[str, Any]:
    """One ``smsfly_send --csv --defer`` run; with ``interrupt_at``, SIGINT once that
    many messages exist. Returns its exit status, duration and memory."""
    argv = run.command("smsfly_send", "--csv", str(path), "--text", "Hi {name}", "--defer")
    before = last_message(run)
    started = time.monotonic()
    process = run.spawn(argv, log)
    sampler = MemorySampler(process.pid)
    sampler.start()
    baseline_kib: int | None = None
    interrupted = False
    while process.poll() is None:
        time.sleep(0.05)
        written = last_message(run) - before
        if baseline_kib is None and written > 0:
            # The first row is written: Django is set up and the run is under way.
            baseline_kib = sampler.rss_kib
        if interrupt_at is not None and not interrupted and written >= interrupt_at:
            process.send_signal(signal.SIGINT)
            interrupted = True
    seconds = time.monotonic() - started
    sampler.stop()
    return {
        "exit_status": process.returncode,
        "interrupted": interrupted,
        "seconds": seconds,
        "rows_written": last_message(run) - before,
        "baseline_rss_mib": (baseline_kib or 0) / 1024,
        "peak_rss_mib": sampler.peak_kib / 1024,
        "summary": log.read_text(errors="replace").strip().splitlines()[-3:],
    }


def bench(args: argparse.Namespace) -> dict[str, Any]:
    rows: int = args.rows
    rate: float = args.rate
    # Every request must stay on record to check for duplicates.
    sandbox_state.MAX_RECORDS = max(sandbox_state.MAX_RECORDS, 2 * rows)
    workdir = Path(tempfile.mkdtemp(prefix="smsfly-bulk-"))
    numbers = recipients(rows)
    path = write_csv(workdir / "mailing.csv", numbers)
    results: dict[str, Any] = {
        "when": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "engine": args.engine,
        "rows": rows,
        "workers": args.workers,
        "rate": rate,
        "latency_s": args.latency,
    }
    with (
        SandboxServer(latency=args.latency, balance="1000000000") as server,
        EngineRun(args.engine, workdir, server.url, rate=rate or None) as run,
    ):
        run.start_workers(args.workers)
        print(f"{args.workers} {args.engine} workers; smsfly_send --defer of {rows} rows")
        first = smsfly_send(
            run, path, workdir / "send-1.log", interrupt_at=int(rows * args.interrupt_at)
        )
        print("interrupted run:", json.dumps(first), flush=True)
        second = smsfly_send(run, path, workdir / "send-2.log", interrupt_at=None)
        print("resumed run:", json.dumps(second), flush=True)
        expected = rows / rate if rate else rows / 50
        run.wait(
            lambda states: states["accepted"] == rows,
            timeout=expected * 1.5 + 300,
            what="every message accepted",
        )
        run.stop_workers()
        sent_at = run.query(
            "SELECT min(sent_at), max(sent_at), count(*) FROM django_smsfly_message "
            "WHERE state = 'accepted'"
        )[0]
        attempts = dict(
            run.query("SELECT attempts, count(*) FROM django_smsfly_message GROUP BY 1")
        )
        sends = processed_sends(server)
    per_recipient = collections.Counter(recipient for recipient, _ in sends)
    first_at, last_at, accepted = sent_at
    phase = (last_at - first_at).total_seconds()
    throughput = (accepted - 1) / phase if phase else 0.0
    busiest = busiest_second(at for _, at in sends)
    growth = max(first["peak_rss_mib"], second["peak_rss_mib"]) - first["baseline_rss_mib"]
    results.update(
        {
            "interrupted_run": first,
            "resumed_run": second,
            "accepted": accepted,
            "attempts": {str(k): v for k, v in sorted(attempts.items())},
            "sendmessage_requests": len(sends),
            "recipients_sent_twice": sum(1 for n in per_recipient.values() if n > 1),
            "recipients_never_sent": len(set(numbers) - set(per_recipient)),
            "sending_phase_s": phase,
            "throughput_per_s": throughput,
            "throughput_vs_rate": throughput / rate if rate else None,
            "busiest_second": busiest,
            "busiest_second_bound": rate_bound(rate) if rate else None,
            "enqueue_rows_per_s": rows / (first["seconds"] + second["seconds"]),
            "rss_growth_mib": growth,
        }
    )
    results["exactly_once"] = (
        accepted == rows
        and len(sends) == rows
        and results["recipients_sent_twice"] == 0
        and results["recipients_never_sent"] == 0
    )
    results["targets"] = {
        "throughput_at_least_0.9_rate": bool(rate) and throughput >= 0.9 * rate,
        "busiest_second_within_bound": bool(rate) and busiest <= rate_bound(rate),
        "rss_growth_below_100_mib": growth < 100,
    }
    return results


def report(results: dict[str, Any]) -> str:
    first, second = results["interrupted_run"], results["resumed_run"]
    rate = results["rate"]
    lines = [
        f"{results['rows']} rows, {results['workers']} {results['engine']} workers, "
        f"{results['latency_s'] * 1000:.0f} ms latency, rate {rate:g}/s",
        f"exactly once: {results['exactly_once']} ({results['accepted']} accepted, "
        f"{results['sendmessage_requests']} SENDMESSAGE, "
        f"{results['recipients_sent_twice']} recipients sent twice, "
        f"{results['recipients_never_sent']} never sent; attempts {results['attempts']})",
        f"throughput: {results['throughput_per_s']:.1f}/s over "
        f"{results['sending_phase_s']:.0f} s"
        + (f" = {results['throughput_vs_rate']:.3f} x rate (target >= 0.9)" if rate else ""),
        f"busiest second: {results['busiest_second']} sends"
        + (f" (bound {results['busiest_second_bound']})" if rate else ""),
        f"smsfly_send: interrupted after {first['rows_written']} rows "
        f"({first['seconds']:.0f} s, exit {first['exit_status']}); resumed "
        f"{second['rows_written']} more ({second['seconds']:.0f} s, exit "
        f"{second['exit_status']}); {results['enqueue_rows_per_s']:.0f} rows/s",
        f"smsfly_send memory: {first['baseline_rss_mib']:.1f} MiB at the first row, peak "
        f"{first['peak_rss_mib']:.1f} / {second['peak_rss_mib']:.1f} MiB, growth "
        f"{results['rss_growth_mib']:.1f} MiB (target < 100)",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=FULL_ROWS, help="recipients in the CSV")
    parser.add_argument(
        "--rate", type=float, default=80.0, help="SEND_RATE_LIMIT per second (0: no limit)"
    )
    parser.add_argument("--workers", type=int, default=4, help="worker processes")
    parser.add_argument("--engine", choices=["db", "rq"], default="rq")
    parser.add_argument(
        "--latency", type=float, default=0.01, help="seconds each sandbox request takes"
    )
    parser.add_argument(
        "--interrupt-at",
        type=float,
        default=0.4,
        help="SIGINT the first smsfly_send once this share of the rows is written",
    )
    parser.add_argument("--output", type=Path, help="where to write the JSON results")
    args = parser.parse_args()
    # A shell ignores Ctrl-C for a command started with "&", and an ignored signal stays
    # ignored in the processes it starts: then smsfly_send could not be interrupted.
    # With a handler here, they start with the default again.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        check_services("postgres", "redis")
    except ServiceUnavailable as exc:
        parser.error(str(exc))
    results = bench(args)
    output = args.output or RESULTS / (
        "bulk.json" if args.rows == FULL_ROWS else "bulk-quick.json"
    )
    output.parent.mkdir(exist_ok=True)
    output.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print()
    print(report(results))
    print(f"\nwritten to {output}")
    return 0 if results["exactly_once"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
