"""The campaign benchmark (issue 12): a 100,000-row upload, and a campaign's send rate.

Run from the repository root::

    .venv/bin/python -m benchmarks.bench_campaign            # make bench-campaign
    .venv/bin/python -m benchmarks.bench_campaign --rows 20000 --send-rows 2000 --json
    .venv/bin/python -m benchmarks.bench_campaign --database-url postgres://...

Everything runs in this one process, on the in-process sandbox backend (no network):

1. **upload**: a CSV of ``--rows`` rows (a ``name`` column; a few hundred numbers put on
   the opt-out list first, some invalid rows, some duplicates) is turned into a campaign
   by :func:`django_smsfly.campaigns.create` from a ``TemporaryUploadedFile``, as the
   admin's upload hands it over, which stores it and checks every row. Timed once as it
   is, then once more under ``tracemalloc`` for the peak of Python's allocations (and the
   process's maximum resident set from ``resource``), both beside the file's size: the
   file is streamed, so the peak stays far below it.
2. **send**: a campaign of ``--send-rows`` rows is started and its runner run here
   (:func:`django_smsfly.campaigns.run`) with ``SMSFLY["SEND_RATE_LIMIT"] = --rate``;
   throughput = SENDMESSAGE requests / the runner's wall time, against the rate (target
   at least 0.9). Then the same at ``--high-rate``, to show the app's own ceiling on
   this machine: when a leg stays below 0.9 x its rate, the machine, not the limiter,
   was the bound. Each leg shows the share of its wall time the process had the CPU
   and the share the limiter made it wait (near 0: the limiter never held it back).
3. **correctness**, for every campaign: the check's counts are the generated ones, and
   the sandbox got exactly one SENDMESSAGE per valid row and none to an opted-out
   number or an invalid row. Anything else ends the run with exit status 1.

The database is a SQLite file in a temporary directory (WAL, as a production SQLite site
runs), migrated here; PostgreSQL with ``--database-url`` (used as given) or
``SMSFLY_BENCH_PG_URL`` (its database name with ``_campaign`` appended, so it is private
to this benchmark), created if missing and flushed. A table is printed (``--json``: the
figures as JSON instead); they are also written to ``benchmarks/results/``.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import datetime as dt
import json
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
FULL_ROWS = 100_000
SMS_TEXT = "Hi {name}, your June offer is waiting in the app."
#: Each leg's numbers start at its own offset, so no leg's number is in another's file.
UPLOAD_BASE, SEND_BASE, HIGH_BASE = 0, 300_000, 600_000

# Where in the file the special rows fall (row index modulo these, checked in order).
OPTED_OUT_EVERY, INVALID_EVERY, DUPLICATE_EVERY = 331, 211, 197


class BenchFailure(Exception):
    """A correctness check failed: the benchmark's figures cannot be trusted."""


# -- the file ----------------------------------------------------------------------------


@dataclass
class Expected:
    """What the generated file must come to."""

    rows: int = 0
    valid: set[str] = field(default_factory=set)
    opted_out: set[str] = field(default_factory=set)
    #: Numbers in invalid rows that would be sendable if the row were valid.
    invalid_numbers: set[str] = field(default_factory=set)
    invalid: int = 0
    duplicate: int = 0


def numbers(base: int) -> Iterator[str]:
    """Ukrainian mobile numbers from ``base`` on, leaving out the sandbox's built-in test
    numbers (endings 0001-0006 are refused, undelivered or stop-listed)."""
    index = base
    while True:
        number = f"38067{2_000_000 + index:07d}"
        index += 1
        if not 1 <= int(number[-4:]) <= 6:
            yield number


def write_csv(path: Path, rows: int, base: int) -> Expected:
    """Write ``rows`` rows to ``path``, one at a time; return what they must come to."""
    expected = Expected(rows=rows)
    fresh = numbers(base)
    last_valid = ""
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("recipient,name\n")
        for row in range(rows):
            if row % OPTED_OUT_EVERY == 7:
                number = next(fresh)
                expected.opted_out.add(number)
                out.write(f"{number},Customer {row}\n")
            elif row % INVALID_EVERY == 5:
                expected.invalid += 1
                out.write(invalid_row(row, next(fresh), expected))
            elif row % DUPLICATE_EVERY == 3 and last_valid:
                expected.duplicate += 1
                out.write(f"+{last_valid},Customer {row}\n")  # another spelling, same number
            else:
                last_valid = next(fresh)
                expected.valid.add(last_valid)
                out.write(f"{last_valid},Customer {row}\n")
    return expected


def invalid_row(row: int, number: str, expected: Expected) -> str:
    """One of three kinds of bad row: not a number, outside the allowed regions, or a
    good number whose template value is empty (never sent as "Hi , ...")."""
    kind = row % 3
    if kind == 0:
        return f"unknown-{row},Customer {row}\n"
    if kind == 1:
        return f"+1202555{row % 10000:04d},Customer {row}\n"
    expected.invalid_numbers.add(number)
    return f"{number},\n"


# -- Django ------------------------------------------------------------------------------


def database_config(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """The database settings: PostgreSQL when asked for, else a SQLite file in WAL mode."""
    url = args.database_url
    if not url and os.environ.get("SMSFLY_BENCH_PG_URL"):
        base, _, query = os.environ["SMSFLY_BENCH_PG_URL"].partition("?")
        url = f"{base}_campaign" + (f"?{query}" if query else "")
    if url:
        import dj_database_url

        from benchmarks.legs import ensure_postgresql

        problem = ensure_postgresql(url)
        if problem is not None:
            raise SystemExit(f"PostgreSQL at {url.split('@')[-1]} cannot be used: {problem}")
        return dict(dj_database_url.parse(url))
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(workdir / "bench.sqlite3"),
        "OPTIONS": {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
        },
    }


def setup_django(args: argparse.Namespace, workdir: Path) -> str:
    """Configure Django for this process and migrate (flush a PostgreSQL database).
    Returns the database's vendor."""
    from django_smsfly.backends.sandbox import state as sandbox_state

    # Every request must stay on record to count them: the largest send leg, twice.
    sandbox_state.MAX_RECORDS = max(sandbox_state.MAX_RECORDS, 2 * args.send_rows + 1000)
    from django.conf import settings

    settings.configure(
        **site_settings(args, workdir),
        MEDIA_ROOT=str(workdir / "media"),
        FILE_UPLOAD_TEMP_DIR=str(workdir),
        # campaigns.start() only marks the campaign running: the runner runs here.
        TASKS={"default": {"BACKEND": f"{tasks_package()}.backends.dummy.DummyBackend"}},
        SMSFLY={
            "BACKEND": "django_smsfly.backends.sandbox.SandboxBackend",
            "SMS_SOURCE": "InfoCenter",
            "VIBER_SOURCE": "Promo",
            # Money for every send leg; the requests take --latency each.
            "BACKEND_OPTIONS": {"balance": "1000000000", "latency": args.latency},
        },
    )
    return start_django()


def site_settings(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """The settings every campaign benchmark's throwaway site has."""
    return {
        "SECRET_KEY": "benchmarks-only",  # a throwaway benchmark site
        "DEBUG": False,
        "USE_TZ": True,
        "TIME_ZONE": "Europe/Kyiv",
        "INSTALLED_APPS": [
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django_smsfly",
        ],
        "DATABASES": {"default": database_config(args, workdir)},
        "CACHES": {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}},
    }


def start_django() -> str:
    """Set Django up, migrate, and empty a PostgreSQL database (a SQLite file is new).
    Returns the database's vendor."""
    import django
    from django.core.management import call_command
    from django.db import connection

    django.setup()
    call_command("migrate", verbosity=0)
    if connection.vendor == "postgresql":
        call_command("flush", interactive=False, verbosity=0)
    return str(connection.vendor)


def tasks_package() -> str:
    """Django's task framework (Django 6), or the ``django_tasks`` backport (5.2)."""
    from django_smsfly import taskcompat

    return "django.tasks" if taskcompat.FRAMEWORK == "django.tasks" else "django_tasks"


def temporary_upload(path: Path) -> Any:
    """The file as Django's upload handler hands a big upload over: written in chunks
    to a ``TemporaryUploadedFile``."""
    from django.core.files.uploadedfile import TemporaryUploadedFile

    upload = TemporaryUploadedFile(path.name, "text/csv", path.stat().st_size, None)
    with path.open("rb") as source:
        shutil.copyfileobj(source, upload, 64 * 1024)
    upload.seek(0)
    return upload


def add_opt_outs(expected: Expected) -> None:
    from django_smsfly.models import OptOut

    OptOut.objects.bulk_create(
        [OptOut(recipient=n, source=OptOut.Source.IMPORT) for n in sorted(expected.opted_out)],
        batch_size=500,
    )


def create_campaign(path: Path, name: str) -> Any:
    from django_smsfly import campaigns

    upload = temporary_upload(path)
    try:
        return campaigns.create(upload, name=name, sms_text=SMS_TEXT)
    finally:
        upload.close()  # removes the temporary file


def check_counts(campaign: Any, expected: Expected) -> None:
    got = (
        campaign.rows_total,
        campaign.rows_valid,
        campaign.rows_invalid,
        campaign.rows_opted_out,
        campaign.rows_duplicate,
    )
    want = (
        expected.rows,
        len(expected.valid),
        expected.invalid,
        len(expected.opted_out),
        expected.duplicate,
    )
    if got != want:
        raise BenchFailure(
            f"campaign {campaign.name!r}: the check counted (total, valid, invalid, opted "
            f"out, duplicate) = {got}, the file has {want}"
        )


# -- the legs ----------------------------------------------------------------------------


def max_rss_mib() -> float:
    """The process's maximum resident set so far (``ru_maxrss`` is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def upload_leg(workdir: Path, rows: int, trace: bool) -> dict[str, Any]:
    """create() + check of a ``rows``-row file: time, then Python's peak under
    tracemalloc, and the process's max RSS, beside the file's size."""
    path = workdir / "upload.csv"
    expected = write_csv(path, rows, UPLOAD_BASE)
    add_opt_outs(expected)
    size_mib = path.stat().st_size / 2**20
    rss_before = max_rss_mib()
    started = time.perf_counter()
    campaign = create_campaign(path, "Upload (timed)")
    seconds = time.perf_counter() - started
    rss_after = max_rss_mib()
    check_counts(campaign, expected)
    result: dict[str, Any] = {
        "rows": rows,
        "file_mib": size_mib,
        "seconds": seconds,
        "rows_per_s": rows / seconds,
        "max_rss_before_mib": rss_before,
        "max_rss_after_mib": rss_after,
        "max_rss_growth_mib": rss_after - rss_before,
        "load_average": os.getloadavg()[0],
        "counts": {
            "valid": campaign.rows_valid,
            "invalid": campaign.rows_invalid,
            "opted_out": campaign.rows_opted_out,
            "duplicate": campaign.rows_duplicate,
        },
        "parts_total": campaign.parts_total,
        "cost_estimate": str(campaign.cost_estimate),
    }
    if trace:
        tracemalloc.start()
        try:
            started = time.perf_counter()
            traced = create_campaign(path, "Upload (traced)")
            result["traced_seconds"] = time.perf_counter() - started
            result["python_peak_mib"] = tracemalloc.get_traced_memory()[1] / 2**20
        finally:
            tracemalloc.stop()
        check_counts(traced, expected)
        result["peak_vs_file"] = result["python_peak_mib"] / size_mib
    path.unlink()
    return result


def send_leg(workdir: Path, rows: int, rate: float, base: int) -> dict[str, Any]:
    """Start a ``rows``-row campaign and run its runner here at ``SEND_RATE_LIMIT=rate``;
    check every SENDMESSAGE against the file."""
    from django.conf import settings
    from django.test import override_settings

    from django_smsfly import campaigns
    from django_smsfly.backends.sandbox import get_simulator
    from django_smsfly.models import Campaign
    from django_smsfly.ratelimit import reset_rate_limiters
    from django_smsfly.services import reset_client

    path = workdir / f"send-{base}.csv"
    expected = write_csv(path, rows, base)
    add_opt_outs(expected)
    simulator = get_simulator()
    with override_settings(SMSFLY={**settings.SMSFLY, "SEND_RATE_LIMIT": rate}):
        reset_rate_limiters()
        reset_client()
        campaign = create_campaign(path, f"Send at {rate:g}/s")
        check_counts(campaign, expected)
        simulator.reset()  # the check asked for prices: count only the run's requests
        if not campaigns.start(campaign):
            raise BenchFailure(f"campaign {campaign.pk} did not start")
        with limiter_waits() as waited:
            cpu_started, started = time.process_time(), time.perf_counter()
            campaigns.run(campaign.pk)
            seconds = time.perf_counter() - started
            cpu = time.process_time() - cpu_started
        reset_rate_limiters()
    path.unlink()
    campaign.refresh_from_db()
    sends = simulator.requests_for("SENDMESSAGE")
    check_sends(campaign, sends, expected)
    if campaign.status != Campaign.Status.FINISHED:
        raise BenchFailure(f"campaign {campaign.pk} ended {campaign.status}: {campaign.error}")
    at = sorted(request.at for request in sends)
    phase = (at[-1] - at[0]).total_seconds() if len(at) > 1 else 0.0
    throughput = len(sends) / seconds
    return {
        "rows": rows,
        "valid_rows": len(expected.valid),
        "rate": rate,
        "sendmessage": len(sends),
        "seconds": seconds,
        "throughput_per_s": throughput,
        "throughput_vs_rate": throughput / rate if rate else None,
        "sending_phase_per_s": (len(at) - 1) / phase if phase else None,
        "cpu_share": cpu / seconds,
        # The process's own CPU per send: what one free core would sustain at most.
        "cpu_ms_per_send": 1000 * cpu / len(sends),
        "per_free_core_per_s": len(sends) / cpu if cpu else None,
        "load_average": os.getloadavg()[0],
        "limiter_wait_share": waited[0] / seconds,
        # Below 0.9 x the rate the limiter hardly waited: the app on this machine (its
        # CPU, the database's commits, other processes on the cores) set the pace.
        "bound": "limiter" if throughput >= 0.9 * rate else "machine",
    }


@contextlib.contextmanager
def limiter_waits() -> Iterator[list[float]]:
    """Add up the seconds the send limiter makes the sends wait (its ``acquire`` returns
    them): how much of a leg the limiter, rather than the work, took."""
    from django_smsfly.ratelimit import RateLimiter

    waited = [0.0]
    acquire = RateLimiter.acquire

    def counting(self: RateLimiter) -> float:
        seconds = acquire(self)
        waited[0] += seconds
        return seconds

    RateLimiter.acquire = counting  # type: ignore[method-assign]
    try:
        yield waited
    finally:
        RateLimiter.acquire = acquire  # type: ignore[method-assign]


def check_sends(campaign: Any, sends: list[Any], expected: Expected) -> None:
    """Exactly one SENDMESSAGE per valid row; none to an opted-out or invalid row."""
    per_number = collections.Counter(request.body["data"]["recipient"] for request in sends)
    twice = sorted(n for n, count in per_number.items() if count > 1)
    missing = sorted(expected.valid - per_number.keys())
    opted = sorted(expected.opted_out & per_number.keys())
    invalid = sorted(per_number.keys() - expected.valid)
    problems = [
        f"{len(twice)} numbers sent more than once (e.g. {twice[:3]})" if twice else "",
        f"{len(missing)} valid rows never sent (e.g. {missing[:3]})" if missing else "",
        f"{len(opted)} opted-out numbers sent to (e.g. {opted[:3]})" if opted else "",
        f"{len(invalid)} sends to numbers of no valid row (e.g. {invalid[:3]})" if invalid else "",
    ]
    problems = [p for p in problems if p]
    if problems:
        raise BenchFailure(f"campaign {campaign.name!r}: " + "; ".join(problems))


# -- the run -----------------------------------------------------------------------------


def bench(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="smsfly-bench-campaign-"))
    try:
        vendor = setup_django(args, workdir)
        import django

        results: dict[str, Any] = {
            "when": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "python": platform.python_version(),
            "django": django.get_version(),
            "database": vendor,
            "cpus": os.cpu_count(),
            "sandbox_latency_s": args.latency,
        }
        say = (lambda *_: None) if args.json else _progress
        say(f"upload: {args.rows} rows ...")
        results["upload"] = upload_leg(workdir, args.rows, trace=not args.no_trace)
        say(f"send: {args.send_rows} rows at {args.rate:g}/s ...")
        results["send"] = send_leg(workdir, args.send_rows, args.rate, SEND_BASE)
        if args.high_rate:
            say(f"send: {args.send_rows} rows at {args.high_rate:g}/s ...")
            results["send_high"] = send_leg(workdir, args.send_rows, args.high_rate, HIGH_BASE)
        results["exactly_once"] = True
        return results
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def table(results: dict[str, Any]) -> str:
    """The figures as a small table."""
    up = results["upload"]
    lines = [
        f"campaign benchmark, {results['when']}: Python {results['python']}, Django "
        f"{results['django']}, {results['database']}, {results['cpus']} CPUs",
        "",
        f"upload  {up['rows']:>7} rows  {up['file_mib']:6.1f} MiB file  "
        f"{up['seconds']:6.1f} s  {up['rows_per_s']:7.0f} rows/s",
        f"        valid {up['counts']['valid']}, invalid {up['counts']['invalid']}, "
        f"opted out {up['counts']['opted_out']}, duplicate {up['counts']['duplicate']}",
    ]
    if "python_peak_mib" in up:
        lines.append(
            f"        Python peak {up['python_peak_mib']:.1f} MiB under tracemalloc "
            f"({up['peak_vs_file']:.2f} x the file; traced run {up['traced_seconds']:.1f} s)"
        )
    lines.append(
        f"        max RSS {up['max_rss_before_mib']:.0f} -> {up['max_rss_after_mib']:.0f} MiB "
        f"(+{up['max_rss_growth_mib']:.1f} MiB); load average {up['load_average']:.1f}"
    )
    lines.append("")
    lines.append(
        "send    rate/s   sent   seconds   sent/s   x rate   CPU  limiter  bound"
        "     CPU ms/send  load"
    )
    for key in ("send", "send_high"):
        if key in results:
            leg = results[key]
            lines.append(
                f"        {leg['rate']:>6g} {leg['sendmessage']:>6} {leg['seconds']:>9.1f} "
                f"{leg['throughput_per_s']:>8.1f} {leg['throughput_vs_rate']:>8.3f} "
                f"{leg['cpu_share']:>5.0%} {leg['limiter_wait_share']:>8.0%}  "
                f"{leg['bound']:<8} {leg['cpu_ms_per_send']:>10.2f} {leg['load_average']:>5.1f}"
            )
    lines.append("")
    lines.append("exactly one SENDMESSAGE per valid row, none to an opted-out or invalid row: yes")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--rows", type=int, default=FULL_ROWS, help="rows of the upload leg")
    parser.add_argument("--send-rows", type=int, default=1250, help="rows of each send leg")
    parser.add_argument("--rate", type=float, default=25.0, help="SEND_RATE_LIMIT (per s)")
    parser.add_argument(
        "--high-rate",
        type=float,
        default=2000.0,
        help="SEND_RATE_LIMIT of the ceiling leg (0: leave it out)",
    )
    parser.add_argument(
        "--latency", type=float, default=0.0, help="seconds each sandbox request takes"
    )
    parser.add_argument("--database-url", help="a PostgreSQL URL (default: SQLite)")
    parser.add_argument("--no-trace", action="store_true", help="leave out the tracemalloc pass")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--output", type=Path, help="where to write the JSON results")
    args = parser.parse_args(argv)
    for name in ("rows", "send_rows"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.rate <= 0 or args.high_rate < 0 or args.latency < 0:
        parser.error("--rate must be above 0; --high-rate and --latency at least 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        results = bench(args)
    except BenchFailure as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    output = args.output or RESULTS / (
        "campaign.json" if args.rows == FULL_ROWS else "campaign-quick.json"
    )
    output.parent.mkdir(exist_ok=True)
    output.write_text(json.dumps(results, indent=2, default=str) + "\n")
    if args.json:
        print(json.dumps(results, indent=2, default=str))
    else:
        print(table(results))
        print(f"\nwritten to {output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
