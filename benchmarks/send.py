"""One send leg: ``send_sms`` against a bare ``requests.Session.post``, on one database.

Run by ``benchmarks/run.py`` once per leg (see benchmarks/legs.py), each in its own
process because Django reads its settings once; by hand::

    .venv/bin/python -m benchmarks.send --leg postgresql --url URL --fast-url URL0

``URL`` is a sandbox server with the simulated latency (20 ms in ``make bench``), ``URL0``
one without. The last line printed is the leg's figures as JSON.

Two measurements, each interleaving the two paths in short blocks whose order flips from
one round to the next (so that drift on a busy machine falls on both alike):

- **ratio**: the mean time of a ``send_sms`` over the mean time of a bare POST of the
  same body to the same server, at ``URL``'s latency, with nothing instrumented;
- **app time beyond the commits**, at 0 ms latency: the database's share of each send
  is measured (every statement's ``execute``, the reading of its rows and the closing
  of its cursor, every ``COMMIT``: timed by hooks on the connection), and ``send_sms``
  − bare POST − database is the time the app spends on its own: Python in the app,
  Django's ORM and our HTTP layer.
  The client process's CPU time per send (``time.process_time``, which other processes'
  load does not inflate) beside it, minus the bare POST's, is a steadier second view.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import time
from collections.abc import Callable, Iterator
from typing import Any

from benchmarks.legs import LEGS, setup_django

RECIPIENT = "380501234567"
TEXT = "Benchmark"


class Paths:
    """The two things compared: ``send_sms``, and a bare POST of the body it sends."""

    def __init__(self, url: str) -> None:
        import requests
        from django.conf import settings
        from django.test import override_settings

        from django_smsfly import services

        self.settings = override_settings(SMSFLY={**settings.SMSFLY, "API_URL": url})
        self.settings.enable()
        client = services.get_client()
        prepared = client.prepare(RECIPIENT, channels=["sms"], sms={"text": TEXT})
        body = {
            "auth": {"key": "benchmark-key", "appversion": client.appversion},
            "action": "SENDMESSAGE",
            "data": dict(prepared.data),
        }
        self.payload = json.dumps(body, separators=(",", ":")).encode()
        self.session = requests.Session()
        self.session.headers["Content-Type"] = "application/json"
        self.url = url
        self.send_sms = services.send_sms

    def bare(self) -> None:
        self.session.post(self.url, data=self.payload, timeout=10).raise_for_status()

    def app(self) -> None:
        message = self.send_sms(RECIPIENT, TEXT)
        assert message.state == "accepted", (message.state, message.error_text)

    def close(self) -> None:
        self.session.close()
        self.settings.disable()


def interleaved(
    paths: Paths, count: int, rounds: int, on_app: Callable[[], None] | None = None
) -> dict[str, list[tuple[float, float]]]:
    """(wall, CPU) seconds of each call of each path, in ``rounds`` alternating blocks."""
    # Warm up both paths (connections, imports, first queries, caches).
    for _ in range(10):
        paths.bare()
        paths.app()
    timings: dict[str, list[tuple[float, float]]] = {"bare": [], "app": []}
    per_round = max(count // rounds, 1)
    clock, cpu = time.perf_counter, time.process_time
    for index in range(rounds):
        order = ("bare", "app") if index % 2 == 0 else ("app", "bare")
        for name in order:
            call = paths.bare if name == "bare" else paths.app
            record = timings[name].append
            for _ in range(per_round):
                wall_started, cpu_started = clock(), cpu()
                call()
                record((clock() - wall_started, cpu() - cpu_started))
                if name == "app" and on_app is not None:
                    on_app()
    return timings


def mean_ms(samples: list[tuple[float, float]], column: int = 0) -> float:
    return 1000 * statistics.fmean(sample[column] for sample in samples)


def median_ms(samples: list[tuple[float, float]]) -> float:
    return 1000 * statistics.median(sample[0] for sample in samples)


def bench_ratio(url: str, count: int, rounds: int) -> dict[str, float]:
    """``send_sms`` over a bare POST at ``url``'s latency, nothing instrumented."""
    paths = Paths(url)
    try:
        timings = interleaved(paths, count, rounds)
    finally:
        paths.close()
    bare, app = timings["bare"], timings["app"]
    return {
        "messages": len(app),
        "bare_ms": mean_ms(bare),
        "app_ms": mean_ms(app),
        "ratio": mean_ms(app) / mean_ms(bare),
        "median_ratio": median_ms(app) / median_ms(bare),
        "bare_cpu_ms": mean_ms(bare, 1),
        "app_cpu_ms": mean_ms(app, 1),
    }


class DatabaseTimer:
    """The time a connection spends in the database: every statement, its rows, every
    COMMIT.

    The rows count as well as the statement: SQLite finishes a statement, and commits
    an INSERT ... RETURNING made in autocommit mode, only when its rows have been read
    (or its cursor is closed).
    """

    def __init__(self) -> None:
        self.seconds = 0.0
        self.statements = 0
        self.log: list[str] = []

    def __call__(
        self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any
    ) -> Any:
        self.statements += 1
        if len(self.log) < 16:
            self.log.append(sql.split(" (", 1)[0][:60])
        return self.timed(execute)(sql, params, many, context)

    def timed(self, function: Callable[..., Any]) -> Callable[..., Any]:
        def timed_call(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - started

        return timed_call

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        """Time the default connection's statements, rows, cursors' closing and commits
        (benchmark instrumentation: Django's classes are patched while it lasts)."""
        from django.db import connection, connections
        from django.db.backends.utils import CursorWrapper

        wrapper: Any = connections["default"]
        wrapper._commit = self.timed(wrapper._commit)
        plain_getattr = CursorWrapper.__getattr__

        def timed_getattr(cursor: CursorWrapper, name: str) -> Any:
            found = plain_getattr(cursor, name)
            if name in ("fetchone", "fetchmany", "fetchall", "close"):
                return self.timed(found)
            return found

        CursorWrapper.__getattr__ = timed_getattr  # type: ignore[method-assign]
        try:
            with connection.execute_wrapper(self):
                yield
        finally:
            CursorWrapper.__getattr__ = plain_getattr  # type: ignore[method-assign]
            del wrapper._commit


def bench_app_time(url: str, count: int, rounds: int) -> dict[str, Any]:
    """The app's own time per send at 0 ms latency, beyond its database statements."""
    paths = Paths(url)
    timer = DatabaseTimer()
    per_send: list[float] = []
    last = [0.0]

    def after_app() -> None:
        per_send.append(timer.seconds - last[0])
        last[0] = timer.seconds

    try:
        with timer.installed():
            # One send first, to see its statements (printed for the record).
            paths.app()
            statements = list(timer.log)
            timings = interleaved(paths, count, rounds, on_app=after_app)
    finally:
        paths.close()
    bare, app = timings["bare"], timings["app"]
    database_ms = 1000 * statistics.fmean(per_send)
    return {
        "messages": len(app),
        "bare_ms": mean_ms(bare),
        "app_ms": mean_ms(app),
        "database_ms": database_ms,
        "beyond_ms": mean_ms(app) - mean_ms(bare) - database_ms,
        "median_beyond_ms": median_ms(app) - median_ms(bare) - 1000 * statistics.median(per_send),
        "cpu_beyond_ms": mean_ms(app, 1) - mean_ms(bare, 1),
        "statements": statements,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--leg", choices=sorted(LEGS), required=True)
    parser.add_argument("--url", required=True, help="a sandbox server with latency")
    parser.add_argument("--fast-url", required=True, help="a sandbox server without")
    parser.add_argument("--count", type=int, default=400, help="sends per measurement")
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    setup_django(args.leg)
    result = {
        "leg": args.leg,
        "send": bench_ratio(args.url, args.count, args.rounds),
        "app_time": bench_app_time(args.fast_url, args.count, args.rounds),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
