"""The databases the benchmarks run on ("legs"), one Django settings per process.

Django reads its settings once per process, so a benchmark that compares databases runs
each leg in a child process of its own: the parent (``benchmarks/run.py``) starts the
sandbox servers, runs ``python -m benchmarks.send --leg NAME ...`` once per leg, reads the
JSON line each child prints last, and puts the figures side by side. This module is
imported by the parent before Django is set up, and by ``benchmarks/settings.py``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

#: Send legs, in the order they are printed, and what each one is.
LEGS = {
    "postgresql": "PostgreSQL, Django's default database settings",
    "sqlite-default": "SQLite, Django's default settings (rollback journal)",
    "sqlite-wal": "SQLite in WAL mode (synchronous=NORMAL, immediate transactions)",
}
DEFAULT_PG_URL = "postgres://postgres@127.0.0.1:5432/smsfly_bench"


def leg_from_environment() -> str:
    """The leg of this process: ``SMSFLY_BENCH_LEG``, else ``url`` when ``DATABASE_URL``
    is set, else ``sqlite-wal``."""
    leg = os.environ.get("SMSFLY_BENCH_LEG")
    if leg:
        if leg not in LEGS and leg != "url":
            raise SystemExit(f"SMSFLY_BENCH_LEG={leg!r}: expected one of {', '.join(LEGS)}, url")
        return leg
    return "url" if os.environ.get("DATABASE_URL") else "sqlite-wal"


def pg_url() -> str:
    """The PostgreSQL database of the ``postgresql`` leg."""
    return os.environ.get("SMSFLY_BENCH_PG_URL") or DEFAULT_PG_URL


def baseline_pg_url() -> str:
    """The PostgreSQL database of a baseline checkout's runs (``run.py --baseline``)."""
    url, _, query = pg_url().partition("?")
    return f"{url}_baseline" + (f"?{query}" if query else "")


def sqlite_path(leg: str) -> Path:
    """The SQLite file of a leg (on disk, not in memory: commits must cost what they cost)."""
    return Path(os.environ.get("SMSFLY_BENCH_DIR", "/tmp")) / f"smsfly-bench-{leg}.sqlite3"


def ensure_postgresql(url: str) -> str | None:
    """Create the leg's PostgreSQL database if it is missing.

    Returns ``None`` when the database is there, else why it cannot be used (the server
    is unreachable, or refused): the caller prints that and skips the leg.
    """
    import dj_database_url
    import psycopg
    from psycopg import sql

    config = dj_database_url.parse(url)
    name = config["NAME"]
    params: dict[str, Any] = {
        "host": config.get("HOST") or "127.0.0.1",
        "port": config.get("PORT") or 5432,
        "user": config.get("USER") or None,
        "password": config.get("PASSWORD") or None,
        "connect_timeout": 3,
    }
    try:
        with psycopg.connect(dbname="postgres", autocommit=True, **params) as conn:
            found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
            if found is None:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
                print(f"created the PostgreSQL database {name!r}", file=sys.stderr)
    except psycopg.Error as exc:
        return f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
    return None


def setup_django(leg: str) -> None:
    """Set Django up for ``leg`` in this process, on a freshly migrated, empty database."""
    os.environ["SMSFLY_BENCH_LEG"] = leg
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.settings")
    if leg.startswith("sqlite"):
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{sqlite_path(leg)}{suffix}").unlink(missing_ok=True)
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    if leg == "postgresql":  # our own database: start from empty tables
        call_command("flush", interactive=False, verbosity=0)
