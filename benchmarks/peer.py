"""Peer comparison: django-smsfly's client against ``smsflyapi2`` from PyPI, over real HTTP.

Run from the repository root::

    .venv/bin/python -m benchmarks.peer                 # about 1.5 minutes
    .venv/bin/python -m benchmarks.peer --count 100 --output /tmp/peer.json   # a quick check

Both libraries make the same sends (SENDMESSAGE, one SMS) and then the same number of
status checks (GETMESSAGESTATUS, each of a message that library sent), one request at a
time, against one sandbox server (``django_smsfly.backends.sandbox_server``) in its own
process on 127.0.0.1 with a simulated network latency of 20 ms, then 0 ms.

``smsflyapi2`` is never a dependency of this project: it is installed by this script into
a throwaway virtual environment in a temporary directory, made from this interpreter,
with the same ``requests`` and ``urllib3`` versions as ours, and deleted afterwards.
Each library runs in a small driver process of its own (this file, run with
``--driver``): ours with this environment's interpreter, the peer with the throwaway
one. The drivers take turns in short rounds whose order rotates, so that the noise of a
small, shared machine falls on all of them alike; while one works, the others wait on a
pipe and use no CPU. Each call is timed on its own inside its driver, from the call to
a usable answer (a message id, a status string).

A third driver runs ``smsflyapi2`` with the logging its import sets up left in place
(``logging.basicConfig(level=DEBUG)`` on the root logger, written to a file here); the
headline comparison is against the peer with the root logger put back to ``WARNING``,
as a site configuring its own logging would.

Results go to ``benchmarks/results/peer.json`` and are printed as the tables used in
docs/performance.rst ("Compared with smsflyapi2").
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"

#: The peer, pinned so that a run can be repeated.
PEER = "smsflyapi2"
PEER_VERSION = "0.9.9"

# The same message through both libraries: the peer's defaults (sender "InfoCenter", a
# ttl of 5 minutes) given to ours explicitly, so the two requests carry the same data.
API_KEY = "benchmark-key"
RECIPIENT = "380501234567"
TEXT = "Benchmark"
SOURCE = "InfoCenter"
TTL = 5

#: Driver names, in the order of the first round.
OURS = "django-smsfly"
THEIRS = "smsflyapi2"
THEIRS_LOGGING = "smsflyapi2 (import logging)"
DRIVERS = (OURS, THEIRS, THEIRS_LOGGING)

WARM_UP = 10


# -- the drivers (run in their own interpreters; only the standard library at import) ---


@dataclass(frozen=True)
class Calls:
    """What a driver measures: one send, one status check, and its connection count."""

    send: Callable[[], str]
    status: Callable[[str], str]
    connections: Callable[[], int]


def _connections_opened(session: Any) -> int:
    """How many TCP connections a :class:`requests.Session` has opened so far."""
    adapters = {id(a): a for a in session.adapters.values()}.values()
    total = 0
    for adapter in adapters:
        pools = adapter.poolmanager.pools
        for key in list(pools.keys()):
            total += pools[key].num_connections
    return int(total)


def _our_calls(url: str) -> Calls:
    from django_smsfly.backends.http import HTTPBackend
    from django_smsfly.channels import Channel
    from django_smsfly.client import SmsFlyClient

    # The client as documented for use outside a site: its defaults, nothing tuned.
    backend = HTTPBackend(api_url=url)
    client = SmsFlyClient(API_KEY, backend=backend, sms_source=SOURCE)

    def send() -> str:
        return client.send_sms(RECIPIENT, TEXT, ttl=TTL).message_id

    def status(message_id: str) -> str:
        return client.get_message_status(message_id).channels[Channel.SMS].raw_status

    return Calls(send, status, lambda: _connections_opened(backend.session))


def _peer_calls(url: str, *, import_logging: bool) -> Calls:
    import logging

    from smsflyapi2 import SMSFlyAPI2  # type: ignore[import-not-found]  # throwaway venv only

    if not import_logging:
        # Importing smsflyapi2 set the root logger to DEBUG; put back Python's default.
        logging.getLogger().setLevel(logging.WARNING)
    # The peer takes its API URL as a constructor argument; nothing needs patching.
    api = SMSFlyAPI2(API_KEY, sms_source=SOURCE, api_url=url)

    # The peer returns the requests.Response as it came; the least a caller must do to
    # use it is decode the JSON, check "success" and pick out the field it needs.
    def read(response: Any) -> dict[str, Any]:
        body = response.json()
        if body.get("success") != 1:
            raise RuntimeError(f"{THEIRS}: request failed: {body!r}")
        data: dict[str, Any] = body["data"]
        return data

    def send() -> str:
        return str(read(api.send_sms_message(RECIPIENT, TEXT))["messageID"])

    def status(message_id: str) -> str:
        return str(read(api.get_message_status(message_id))["sms"]["status"])

    return Calls(send, status, lambda: _connections_opened(api._session))


def _timed(call: Callable[[], str]) -> tuple[float, str]:
    started = time.perf_counter()
    value = call()
    return time.perf_counter() - started, value


def run_driver(name: str, url: str) -> int:
    """Answer commands from the harness, one JSON line in, one JSON line out."""
    if name == OURS:
        calls = _our_calls(url)
    else:
        calls = _peer_calls(url, import_logging=name == THEIRS_LOGGING)
    while line := sys.stdin.readline():
        command = json.loads(line)
        times: list[float] = []
        values: list[str] = []
        # CPU time of this process alone: the client's own work, whatever the server,
        # the network wait or the other processes on the machine did meanwhile.
        cpu = time.process_time()
        if command["op"] == "send":
            for _ in range(command["count"]):
                elapsed, message_id = _timed(calls.send)
                times.append(elapsed)
                values.append(message_id)
        elif command["op"] == "status":
            for message_id in command["ids"]:
                elapsed, status = _timed(functools.partial(calls.status, message_id))
                times.append(elapsed)
                values.append(status)
        cpu = time.process_time() - cpu
        reply = {
            "times": times,
            "values": values,
            "cpu": cpu,
            "connections": calls.connections(),
        }
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()
    return 0


# -- the harness ------------------------------------------------------------------------


def make_peer_venv(directory: Path) -> Path:
    """A new virtual environment holding only the peer and its dependency; its python."""
    subprocess.run(  # noqa: S603 - this interpreter, fixed arguments
        [sys.executable, "-m", "venv", str(directory)], check=True, capture_output=True
    )
    python = directory / "bin" / "python"
    # The same requests and urllib3 as ours, so that the HTTP stack is not a difference.
    pins = [f"{PEER}=={PEER_VERSION}"] + [
        f"{name}=={metadata.version(name)}" for name in ("requests", "urllib3")
    ]
    done = subprocess.run(  # noqa: S603 - the new environment's pip, fixed arguments
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *pins],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        raise RuntimeError(f"installing {' '.join(pins)} failed:\n{done.stderr[-2000:]}")
    return python


class Driver:
    """One driver process and the pipe to it."""

    def __init__(self, name: str, python: Path, url: str, log: IO[str]) -> None:
        self.name = name
        self._log = log
        # -I: no current directory or user site on sys.path, so the peer's interpreter
        # sees only its own environment (and ours only what is installed in .venv).
        self._process = subprocess.Popen(  # noqa: S603 - our interpreters, this file
            [str(python), "-I", str(Path(__file__).resolve()), "--driver", name, "--url", url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            cwd=tempfile.gettempdir(),
        )

    def ask(self, **command: Any) -> dict[str, Any]:
        process = self._process
        assert process.stdin is not None
        assert process.stdout is not None
        process.stdin.write(json.dumps(command) + "\n")
        process.stdin.flush()
        line = process.stdout.readline()
        if not line:
            self._log.flush()
            self._log.seek(0)
            tail = self._log.read()[-3000:]
            raise RuntimeError(f"the {self.name} driver stopped:\n{tail}")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def close(self) -> None:
        assert self._process.stdin is not None
        self._process.stdin.close()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


@contextmanager
def drivers(pythons: dict[str, Path], url: str, workdir: Path) -> Iterator[dict[str, Driver]]:
    with ExitStack() as stack:
        started = {}
        for index, (name, python) in enumerate(pythons.items()):
            log = stack.enter_context((workdir / f"driver-{index}.log").open("w+"))
            started[name] = Driver(name, python, url, log)
            stack.callback(started[name].close)
        yield started


def summary(times: Sequence[float], cpu: float) -> dict[str, float]:
    """Per-request figures: wall time (median, mean, 90th percentile) and mean CPU time."""
    ordered = sorted(times)
    return {
        "requests": len(ordered),
        "median_ms": 1000 * statistics.median(ordered),
        "mean_ms": 1000 * statistics.fmean(ordered),
        "p90_ms": 1000 * ordered[int(0.9 * (len(ordered) - 1))],
        "cpu_ms": 1000 * cpu / len(ordered),
    }


def measure(running: dict[str, Driver], count: int, rounds: int) -> dict[str, Any]:
    """``count`` sends, then ``count`` status checks, by every driver in rotating rounds."""
    names = list(running)
    per_round = count // rounds
    for driver in running.values():
        # Connections, imports and first-call caches, on both paths; not counted.
        warm = driver.ask(op="send", count=WARM_UP)
        driver.ask(op="status", ids=warm["values"])
    times: dict[str, dict[str, list[float]]] = {n: {"send": [], "status": []} for n in names}
    round_medians: dict[str, dict[str, list[float]]] = {
        n: {"send": [], "status": []} for n in names
    }
    ids: dict[str, list[str]] = {n: [] for n in names}
    statuses: dict[str, set[str]] = {n: set() for n in names}
    cpu: dict[str, dict[str, float]] = {n: {"send": 0.0, "status": 0.0} for n in names}
    connections: dict[str, int] = {}
    for op in ("send", "status"):
        for index in range(rounds):
            shift = index % len(names)
            for name in names[shift:] + names[:shift]:
                if op == "send":
                    reply = running[name].ask(op="send", count=per_round)
                    ids[name] += reply["values"]
                else:
                    chunk = ids[name][index * per_round : (index + 1) * per_round]
                    reply = running[name].ask(op="status", ids=chunk)
                    statuses[name].update(reply["values"])
                times[name][op] += reply["times"]
                cpu[name][op] += reply["cpu"]
                round_medians[name][op].append(statistics.median(reply["times"]))
                connections[name] = reply["connections"]
    result: dict[str, Any] = {}
    for op in ("send", "status"):
        row: dict[str, Any] = {name: summary(times[name][op], cpu[name][op]) for name in names}
        ours = row[OURS]["median_ms"]
        row["ratio"] = ours / row[THEIRS]["median_ms"]
        row["ratio_vs_import_logging"] = ours / row[THEIRS_LOGGING]["median_ms"]
        row["cpu_ratio"] = row[OURS]["cpu_ms"] / row[THEIRS]["cpu_ms"]
        per_round_ratios = sorted(
            a / b for a, b in zip(round_medians[OURS][op], round_medians[THEIRS][op], strict=True)
        )
        row["round_ratio_min"] = per_round_ratios[0]
        row["round_ratio_median"] = statistics.median(per_round_ratios)
        row["round_ratio_max"] = per_round_ratios[-1]
        result[op] = row
    result["connections_opened"] = connections
    result["statuses_seen"] = {name: sorted(statuses[name]) for name in names}
    return result


def simple_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """A reStructuredText simple table; every column but the first right-aligned."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    rule = "  ".join("=" * w for w in widths)

    def line(cells: Sequence[str]) -> str:
        first, *rest = cells
        parts = [first.ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(rest, widths[1:], strict=True)
        ]
        return "  ".join(parts).rstrip()

    return [rule, line(header), rule, *(line(r) for r in rows), rule]


def rst_tables(results: dict[str, Any]) -> str:
    """The tables of docs/performance.rst, from one run's results."""
    wall: list[list[str]] = []
    cpu: list[list[str]] = []
    for run in results["runs"]:
        for op in ("send", "status"):
            row = run[op]
            label = f"{op}, {run['latency_ms']:g} ms"
            wall.append(
                [
                    label,
                    f"{row[OURS]['median_ms']:.2f}",
                    f"{row[THEIRS]['median_ms']:.2f}",
                    f"{row['ratio']:.3f}",
                    f"{row['round_ratio_min']:.2f} to {row['round_ratio_max']:.2f}",
                    f"{row[THEIRS_LOGGING]['median_ms']:.2f}",
                    f"{row['ratio_vs_import_logging']:.3f}",
                ]
            )
            cpu.append(
                [
                    label,
                    f"{row[OURS]['cpu_ms']:.3f}",
                    f"{row[THEIRS]['cpu_ms']:.3f}",
                    f"{row['cpu_ratio']:.2f}",
                    f"{row[THEIRS_LOGGING]['cpu_ms']:.3f}",
                ]
            )
    lines = [f"Wall time, median ms per request ({results['count']} of each per library)", ""]
    lines += simple_table(
        [
            "request",
            "django-smsfly",
            "smsflyapi2",
            "ratio",
            "per round",
            "smsflyapi2 + log",
            "ratio",
        ],
        wall,
    )
    lines += ["", "Client CPU time, mean ms per request", ""]
    lines += simple_table(
        ["request", "django-smsfly", "smsflyapi2", "ratio", "smsflyapi2 + log"], cpu
    )
    lines.append("")
    for run in results["runs"]:
        lines.append(
            f"Connections opened at {run['latency_ms']:g} ms: {run['connections_opened']}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=500, help="sends and checks per library")
    parser.add_argument("--rounds", type=int, default=25, help="turns each library takes")
    parser.add_argument("--latency", type=float, default=0.02, help="seconds per request")
    parser.add_argument(
        "--output", type=Path, default=RESULTS / "peer.json", help="where the JSON goes"
    )
    parser.add_argument("--driver", choices=DRIVERS, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.driver:
        return run_driver(args.driver, args.url)
    if args.count < args.rounds or args.count % args.rounds:
        parser.error("--count must be a multiple of --rounds")

    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from benchmarks.run import sandbox_server

    results: dict[str, Any] = {
        "when": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "peer": f"{PEER} {PEER_VERSION}",
        "requests": metadata.version("requests"),
        "urllib3": metadata.version("urllib3"),
        "count": args.count,
        "rounds": args.rounds,
        "runs": [],
    }
    with tempfile.TemporaryDirectory(prefix="smsfly-peer-") as tmp:
        workdir = Path(tmp)
        started = time.perf_counter()
        peer_python = make_peer_venv(workdir / "venv")
        print(f"{PEER} {PEER_VERSION} installed in {time.perf_counter() - started:.0f} s")
        pythons = {OURS: Path(sys.executable), THEIRS: peer_python, THEIRS_LOGGING: peer_python}
        for latency in dict.fromkeys((args.latency, 0.0)):
            with sandbox_server(latency) as url, drivers(pythons, url, workdir) as running:
                run = {"latency_ms": 1000 * latency, **measure(running, args.count, args.rounds)}
            print(f"{run['latency_ms']:g} ms:", json.dumps(run, indent=2), flush=True)
            results["runs"].append(run)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print()
    print(rst_tables(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
