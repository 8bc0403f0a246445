"""Profile ``send_sms`` at 0 ms latency with cProfile, on one database leg.

Run from the repository root::

    .venv/bin/python -m benchmarks.profile_send --leg postgresql
    .venv/bin/python -m benchmarks.profile_send --leg sqlite-default --sort cumulative --top 60

A sandbox server without latency runs in its own process (as in ``benchmarks/run.py``),
so the profile holds the client's side only: the app, Django, the database driver and
``requests``. ``--output FILE`` keeps the raw statistics for ``python -m pstats FILE``.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats

from benchmarks.legs import LEGS, ensure_postgresql, pg_url, setup_django
from benchmarks.run import sandbox_server
from benchmarks.send import RECIPIENT, TEXT, Paths


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--leg", choices=sorted(LEGS), default="postgresql")
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--sort", default="tottime", help="a pstats sort key")
    parser.add_argument("--top", type=int, default=45)
    parser.add_argument("--output", help="write the raw statistics here")
    args = parser.parse_args()
    if args.leg == "postgresql" and (problem := ensure_postgresql(pg_url())):
        raise SystemExit(f"PostgreSQL is not reachable: {problem}")
    setup_django(args.leg)
    with sandbox_server(0.0) as url:
        paths = Paths(url)
        for _ in range(20):
            paths.app()
        profile = cProfile.Profile()
        profile.enable()
        for _ in range(args.count):
            paths.send_sms(RECIPIENT, TEXT)
        profile.disable()
        paths.close()
    if args.output:
        profile.dump_stats(args.output)
    stats = pstats.Stats(profile)
    stats.strip_dirs().sort_stats(args.sort).print_stats(args.top)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
