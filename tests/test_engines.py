"""Background sending on real task engines: worker processes, PostgreSQL, Redis, RabbitMQ.

Opt-in: these run only with ``SMSFLY_ENGINE_TESTS=1`` and need PostgreSQL
(127.0.0.1:5432, user postgres), Redis (127.0.0.1:6379) and, for Celery, RabbitMQ
(127.0.0.1:5672, guest). With the variable set, a service that cannot be reached is a
failure, not a skip::

    SMSFLY_ENGINE_TESTS=1 .venv/bin/python -m pytest tests/test_engines.py -m engines -s

Each run gets a PostgreSQL database of its own (the workers cannot see pytest-django's
test database), migrated by a ``manage.py migrate`` subprocess. The sandbox is served
over real HTTP from this process, and everything else happens in separate processes
with :mod:`tests.engine_settings`, as on a real site: ``smsfly_send --csv ... --defer``
writes and enqueues 2,000 messages, several workers send them, ``smsfly_sync`` cleans
up after a worker killed with SIGKILL. The assertions read the database and the
requests the sandbox received. ``-s`` shows a summary line per run.

The harness (:class:`EngineRun`) is shared with ``benchmarks/bulk.py``.
"""

from __future__ import annotations

import collections
import contextlib
import csv
import datetime as dt
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from django_smsfly.backends.sandbox_server import SandboxServer

ROOT = Path(__file__).resolve().parent.parent
ENABLED = os.environ.get("SMSFLY_ENGINE_TESTS") == "1"

PG = os.environ.get("SMSFLY_ENGINE_PG", "postgres://postgres@127.0.0.1:5432").rstrip("/")
REDIS = os.environ.get("SMSFLY_ENGINE_REDIS", "redis://127.0.0.1:6379").rstrip("/")
AMQP = os.environ.get("SMSFLY_ENGINE_AMQP", "amqp://guest:guest@127.0.0.1:5672//")

pytestmark = [
    pytest.mark.engines,
    pytest.mark.skipif(
        not ENABLED,
        reason="real task engines (PostgreSQL, Redis, RabbitMQ on 127.0.0.1): "
        "set SMSFLY_ENGINE_TESTS=1 to run them",
    ),
]

#: Messages per run.
COUNT = 2000
#: Worker processes per run.
WORKERS = 4
#: Seconds every request to the sandbox takes, like a network: long enough for the kill
#: tests to catch a worker with its request in flight.
LATENCY = 0.01
#: The shared send rate of the RQ runs (per second, all workers together): below what
#: four RQ workers manage on a 2-core machine (110-120 a second), so that the limit, not
#: the machine, paces them, and a worker spends part of each send waiting for its slot.
RATE = 80.0
#: A short lease and grace, so that the recovery after a kill happens within the test.
LEASE = 3.0
GRACE = 2.0
#: Redis databases of the runs: RQ's queue and the shared rate limit. Flushed before
#: and after each run, so run one engine test session (or bulk benchmark) at a time on
#: a machine, and nothing else that uses them.
RQ_DB = 13
CACHE_DB = 14


class ServiceUnavailable(RuntimeError):
    """A service the engine runs need cannot be reached."""


def check_services(*names: str) -> None:
    """Connect to each named service (``postgres``, ``redis``, ``rabbitmq``) or raise."""
    for name in names:
        try:
            if name == "postgres":
                psycopg.connect(f"{PG}/postgres", connect_timeout=3).close()
            elif name == "redis":
                import redis

                redis.Redis.from_url(REDIS, socket_connect_timeout=3).ping()
            elif name == "rabbitmq":
                with _amqp() as connection:
                    connection.connect()
            else:  # pragma: no cover - a mistake in the caller
                raise ValueError(name)
        except ImportError as exc:
            raise ServiceUnavailable(f"{name}: the client library is missing ({exc})") from exc
        except Exception as exc:
            raise ServiceUnavailable(f"{name} is not reachable: {exc}") from exc


def _amqp() -> Any:
    """A (not yet connected) connection to the RabbitMQ of the Celery runs."""
    from kombu.connection import Connection

    return Connection(AMQP, connect_timeout=3)  # type: ignore[no-untyped-call,unused-ignore]


def recipients(count: int, *, prefix: str = "38067") -> list[str]:
    """``count`` distinct Ukrainian mobile numbers, none of them a sandbox test number
    (those end in 0001 to 0005 and fail on purpose)."""
    numbers: list[str] = []
    serial = 1_000_000
    while len(numbers) < count:
        serial += 1
        number = f"{prefix}{serial:07d}"
        if number[-4:] not in {"0001", "0002", "0003", "0004", "0005"}:
            numbers.append(number)
    return numbers


def write_csv(path: Path, numbers: Iterable[str]) -> Path:
    """A mailing file with a ``recipient`` and a ``name`` column."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["recipient", "name"])
        for index, number in enumerate(numbers):
            writer.writerow([number, f"Client {index}"])
    return path


@dataclass
class Worker:
    """One worker process, in a process group of its own."""

    index: int
    name: str
    process: subprocess.Popen[bytes]
    log: Path


class EngineRun:
    """One run on one engine: its database, its Redis databases or queue, its workers.

    Use as a context manager: entering creates and migrates the database; leaving stops
    the workers (SIGTERM, then SIGKILL), drops the database and flushes what the run put
    in Redis or RabbitMQ, whatever happened.
    """

    def __init__(
        self,
        engine: str,
        workdir: Path,
        api_url: str,
        *,
        rate: float | None = None,
        lease: float | None = None,
        grace: float | None = None,
    ) -> None:
        self.engine = engine
        self.workdir = workdir
        self.tag = f"{engine}_{os.getpid()}_{secrets.token_hex(3)}"
        self.database = f"smsfly_engines_{self.tag}"
        self.queue = f"smsfly-engines-{self.tag}"
        self.workers: list[Worker] = []
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.engine_settings",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
            "PYTHONUNBUFFERED": "1",
            "SMSFLY_ENGINE": engine,
            "SMSFLY_ENGINE_PG": PG,
            "SMSFLY_ENGINE_DB": self.database,
            "SMSFLY_ENGINE_API_URL": api_url,
            "SMSFLY_ENGINE_REDIS": REDIS,
            "SMSFLY_ENGINE_RQ_DB": str(RQ_DB),
            "SMSFLY_ENGINE_CACHE_DB": str(CACHE_DB),
            "SMSFLY_ENGINE_CACHE_PREFIX": self.queue,
            "SMSFLY_ENGINE_AMQP": AMQP,
            "SMSFLY_ENGINE_CELERY_QUEUE": self.queue,
        }
        for name, value in (
            ("SMSFLY_ENGINE_RATE", rate),
            ("SMSFLY_ENGINE_LEASE", lease),
            ("SMSFLY_ENGINE_GRACE", grace),
        ):
            if value is not None:
                self.env[name] = str(value)
            else:
                self.env.pop(name, None)
        self._db: psycopg.Connection[Any] | None = None

    # -- set-up and clean-up -------------------------------------------------------------

    def __enter__(self) -> EngineRun:
        try:
            with psycopg.connect(f"{PG}/postgres", autocommit=True) as admin:
                admin.execute(f'CREATE DATABASE "{self.database}"')
            self._flush_redis()
            self.manage("migrate", "--verbosity", "0")
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the workers and remove everything the run created."""
        try:
            self.stop_workers()
        finally:
            if self._db is not None:
                self._db.close()
                self._db = None
            with psycopg.connect(f"{PG}/postgres", autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
            self._flush_redis()
            if self.engine == "celery":
                self._delete_celery_queue()

    def _flush_redis(self) -> None:
        if self.engine not in {"rq", "celery"} and "SMSFLY_ENGINE_RATE" not in self.env:
            return
        import redis

        for number in (RQ_DB, CACHE_DB):
            redis.Redis.from_url(f"{REDIS}/{number}").flushdb()

    def _delete_celery_queue(self) -> None:
        with _amqp() as connection:
            channel = connection.channel()
            try:
                channel.queue_delete(self.queue)
            except Exception:  # noqa: S110 - never declared: nothing to delete
                pass
            finally:
                channel.close()

    # -- processes -----------------------------------------------------------------------

    def command(self, *args: str) -> list[str]:
        """A ``manage.py`` command line with this run's settings."""
        return [sys.executable, "-m", "django", *args]

    def manage(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        """Run a management command to its end; a non-zero exit fails with its output."""
        done = subprocess.run(  # noqa: S603 - our own interpreter and commands
            self.command(*args),
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            raise AssertionError(
                f"manage.py {' '.join(args)} exited with {done.returncode}:\n"
                f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
            )
        return done

    def spawn(self, argv: Sequence[str], log: Path) -> subprocess.Popen[bytes]:
        """Start a process in a new session (its own process group), output to ``log``."""
        with log.open("wb") as out:
            return subprocess.Popen(  # noqa: S603 - our own interpreter and commands
                list(argv),
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def worker_name(self, index: int) -> str:
        """The name worker ``index`` is started with."""
        return f"w{index}-{self.tag}"

    def worker_command(self, index: int) -> list[str]:
        """How a worker of this engine is started, as a site would start it."""
        name = self.worker_name(index)
        if self.engine == "db":
            return self.command(
                "db_worker", "--interval", "0.1", "--no-startup-delay", "--no-reload",
                "--worker-id", name,
            )  # fmt: skip
        if self.engine == "rq":
            return self.command(
                "rqworker", "--job-class", "django_tasks_rq.Job", "--with-scheduler",
                "--name", name, "default",
            )  # fmt: skip
        return [
            sys.executable, "-m", "celery", "-A", "tests.engine_settings:celery_app",
            "worker", "--pool", "solo", "--hostname", f"{name}@localhost",
            "--queues", self.queue, "--without-gossip", "--without-mingle",
            "--without-heartbeat", "--loglevel", "INFO",
        ]  # fmt: skip

    def start_workers(self, count: int) -> None:
        """Start ``count`` workers."""
        for _ in range(count):
            index = len(self.workers)
            log = self.workdir / f"worker-{self.tag}-{index}.log"
            process = self.spawn(self.worker_command(index), log)
            self.workers.append(Worker(index, self.worker_name(index), process, log))

    def kill_worker(self, index: int) -> None:
        """SIGKILL a worker with everything it started: the machine it ran on died.

        Its process group, and each descendant's group too: RQ runs every job in a
        forked "work horse" that puts itself in a group of its own.
        """
        worker = self.workers[index]
        family = [worker.process.pid, *_descendants(worker.process.pid)]
        for pid in family:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)  # nobody moves on while the rest is found
        for pid in [*family, *_descendants(worker.process.pid)]:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(os.getpgid(pid), signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        worker.process.wait(timeout=10)

    def held_by(self, index: int) -> list[int]:
        """The messages of the send task worker ``index`` is running now (db and rq)."""
        worker = self.workers[index]
        if self.engine == "db":
            rows = self.query(
                "SELECT args_kwargs FROM django_tasks_database_dbtaskresult "
                "WHERE status = 'RUNNING' AND worker_ids @> %s::jsonb",
                [json.dumps([worker.name])],
            )
            return [pk for (task,) in rows for pk in task["args"][0]]
        if self.engine == "rq":
            import redis
            from rq.exceptions import NoSuchJobError
            from rq.worker import Worker as RQWorker

            connection = redis.Redis.from_url(f"{REDIS}/{RQ_DB}")
            try:
                found = RQWorker.find_by_key(
                    RQWorker.redis_worker_namespace_prefix + worker.name, connection=connection
                )
                job = found.get_current_job() if found is not None else None
            except NoSuchJobError:
                job = None  # it finished meanwhile
            finally:
                connection.close()
            return [int(pk) for pk in job.args[0]] if job is not None else []
        raise NotImplementedError(self.engine)

    def kill_worker_while(self, index: int, stage: str, *, timeout: float = 10) -> bool:
        """Kill worker ``index`` while one of its messages is at ``stage``: ``"claimed"``
        (the claim is taken, the request has not started: waiting for a send slot) or
        ``"in_flight"`` (the request has been marked as leaving). Returns whether it was
        seen there just before the kill; after ``timeout`` seconds it is killed anyway."""
        at_stage = _AT_STAGE[stage]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pks = self.held_by(index)
            if pks and self.query(at_stage, [pks]):
                self.kill_worker(index)
                return True
            time.sleep(0.001)
        self.kill_worker(index)
        return False

    def stop_workers(self) -> None:
        """Ask every live worker to stop (SIGTERM); kill those still running after 15 s."""
        live = [w for w in self.workers if w.process.poll() is None]
        for worker in live:
            _signal_group(worker.process, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for worker in live:
            try:
                worker.process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                _signal_group(worker.process, signal.SIGKILL)
                worker.process.wait(timeout=10)
        # A worker's own children (RQ's work horse) go with its group.
        for worker in self.workers:
            _signal_group(worker.process, signal.SIGKILL)

    def live_workers(self) -> int:
        """How many workers are still running."""
        return sum(1 for w in self.workers if w.process.poll() is None)

    def logs(self, lines: int = 30) -> str:
        """The last lines of every worker's log, for a failure message."""
        parts = []
        for worker in self.workers:
            text = worker.log.read_text(errors="replace") if worker.log.exists() else ""
            tail = "\n".join(text.splitlines()[-lines:])
            parts.append(f"--- worker {worker.index} (exit {worker.process.poll()}) ---\n{tail}")
        return "\n".join(parts)

    # -- the database --------------------------------------------------------------------

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Rows of a query on the run's database (autocommit: always the latest data)."""
        if self._db is None:
            self._db = psycopg.connect(f"{PG}/{self.database}", autocommit=True)
        return self._db.execute(sql, params).fetchall()

    def states(self) -> collections.Counter[str]:
        """How many messages are in each state."""
        rows = self.query("SELECT state, count(*) FROM django_smsfly_message GROUP BY state")
        return collections.Counter(dict(rows))

    def messages(self) -> list[MessageRow]:
        """Every message, as the assertions need it."""
        rows = self.query(
            "SELECT recipient, state, attempts, error_code, sent_at FROM django_smsfly_message"
        )
        return [MessageRow(*row) for row in rows]

    def wait(
        self,
        done: Callable[[collections.Counter[str]], bool],
        *,
        timeout: float,
        what: str,
        need_workers: bool = True,
    ) -> collections.Counter[str]:
        """Poll the states until ``done(states)``; fail with the workers' logs after
        ``timeout`` seconds or when no worker is left."""
        deadline = time.monotonic() + timeout
        while True:
            states = self.states()
            if done(states):
                return states
            if need_workers and self.workers and not self.live_workers():
                raise AssertionError(f"every worker exited before {what}:\n{self.logs()}")
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"not {what} after {timeout:.0f} s ({dict(states)}):\n{self.logs()}"
                )
            time.sleep(0.2)

    def wait_quiet(self, *, still_for: float, timeout: float) -> collections.Counter[str]:
        """Wait until the states have not changed for ``still_for`` seconds."""
        deadline = time.monotonic() + timeout
        last = self.states()
        since = time.monotonic()
        while time.monotonic() - since < still_for:
            if time.monotonic() > deadline:
                raise AssertionError(f"the workers never settled ({dict(last)}):\n{self.logs()}")
            time.sleep(0.25)
            now = self.states()
            if now != last:
                last, since = now, time.monotonic()
        return last


#: Whether one of the given messages is claimed and waiting, or has its request marked.
_AT_STAGE = {
    "claimed": "SELECT 1 FROM django_smsfly_message WHERE id = ANY(%s) "
    "AND state = 'sending' AND request_started_at IS NULL",
    # Marked a moment ago: the request is on its way, with most of the latency to go.
    "in_flight": "SELECT 1 FROM django_smsfly_message WHERE id = ANY(%s) "
    "AND state = 'sending' AND request_started_at IS NOT NULL "
    "AND request_started_at > clock_timestamp() - interval '4 milliseconds'",
}


@dataclass(frozen=True)
class MessageRow:
    """The columns of a message row the assertions read."""

    recipient: str
    state: str
    attempts: int
    error_code: str
    sent_at: dt.datetime | None


def _descendants(pid: int) -> list[int]:
    """The processes below ``pid`` (Linux: /proc/PID/task/TID/children)."""
    found: list[int] = []
    todo = [pid]
    while todo:
        parent = todo.pop()
        try:
            threads = list(Path(f"/proc/{parent}/task").iterdir())
        except OSError:
            continue  # it ended meanwhile
        for thread in threads:
            with contextlib.suppress(OSError):
                children = [int(c) for c in (thread / "children").read_text().split()]
                found.extend(children)
                todo.extend(children)
    return found


def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signum)


def processed_sends(server: SandboxServer) -> list[tuple[str, dt.datetime]]:
    """``(recipient, when)`` of every SENDMESSAGE the sandbox acted on."""
    return [
        (request.body["data"]["recipient"], request.at)
        for request in server.simulator.requests_for("SENDMESSAGE")
        if request.processed
    ]


def busiest_second(times: Iterable[dt.datetime]) -> int:
    """The most requests that fall within any one-second window."""
    moments = sorted(t.timestamp() for t in times)
    most = start = 0
    for end, moment in enumerate(moments):
        while moments[start] <= moment - 1.0:
            start += 1
        most = max(most, end - start + 1)
    return most


def rate_bound(rate: float) -> int:
    """The most sends any one-second window may hold at ``rate`` per second: the rate,
    10 % for the spread of request times on a loaded machine, and a few for the edges."""
    return int(rate * 1.1) + 3


# -- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def services() -> None:
    """PostgreSQL and Redis must answer: with SMSFLY_ENGINE_TESTS=1, a failure if not."""
    try:
        check_services("postgres", "redis")
    except ServiceUnavailable as exc:
        pytest.fail(f"SMSFLY_ENGINE_TESTS=1, but {exc}", pytrace=False)


@pytest.fixture
def server(services: None) -> Iterator[SandboxServer]:
    """The sandbox over HTTP on 127.0.0.1, with a balance that does not run out."""
    with SandboxServer(latency=LATENCY, balance="10000000") as running:
        yield running


@pytest.fixture
def mailing(tmp_path: Path) -> tuple[Path, list[str]]:
    """A CSV file of COUNT distinct recipients."""
    numbers = recipients(COUNT)
    return write_csv(tmp_path / "mailing.csv", numbers), numbers


def enqueue(run: EngineRun, path: Path) -> None:
    """``smsfly_send --csv ... --defer``: write every row queued and enqueue send tasks."""
    done = run.manage("smsfly_send", "--csv", str(path), "--text", "Hi {name}", "--defer")
    assert f"{COUNT} rows: {COUNT} handed to the task workers" in done.stdout, done.stdout
    assert run.states() == {"queued": COUNT}


# -- every message once, with all workers alive ----------------------------------------------


def _all_sent_once(
    run: EngineRun, server: SandboxServer, mailing: tuple[Path, list[str]]
) -> list[tuple[str, dt.datetime]]:
    path, numbers = mailing
    started = time.monotonic()
    enqueue(run, path)
    enqueued = time.monotonic()
    run.start_workers(WORKERS)
    run.wait(lambda s: s["accepted"] == COUNT, timeout=150, what="every message accepted")
    finished = time.monotonic()
    run.stop_workers()

    rows = run.messages()
    assert len(rows) == COUNT
    assert {r.state for r in rows} == {"accepted"}
    assert {r.attempts for r in rows} == {1}
    sends = processed_sends(server)
    per_recipient = collections.Counter(recipient for recipient, _ in sends)
    assert len(sends) == COUNT
    assert set(per_recipient) == set(numbers)
    assert max(per_recipient.values()) == 1
    print(
        f"\n[{run.engine}] {COUNT} messages by {WORKERS} workers: every one sent once "
        f"(smsfly_send --defer {enqueued - started:.1f} s, then the workers "
        f"{finished - enqueued:.1f} s)"
    )
    return sends


def test_django_tasks_db_workers_send_every_message_exactly_once(
    server: SandboxServer, mailing: tuple[Path, list[str]], tmp_path: Path
) -> None:
    with EngineRun("db", tmp_path, server.url) as run:
        _all_sent_once(run, server, mailing)


def test_rq_workers_send_every_message_exactly_once_within_the_shared_rate(
    server: SandboxServer, mailing: tuple[Path, list[str]], tmp_path: Path
) -> None:
    with EngineRun("rq", tmp_path, server.url, rate=RATE) as run:
        sends = _all_sent_once(run, server, mailing)
    assert busiest_second(t for _, t in sends) <= rate_bound(RATE)


# -- a worker dies part way ----------------------------------------------------------------


@dataclass
class KillReport:
    """What became of the messages when one worker was killed."""

    #: Claimed by the killed worker before its request left: sent again (attempts 2).
    retried: int
    #: The killed worker's request may have left: unknown, never sent again.
    unknown: int
    #: Left queued (their task died with the worker): sent by smsfly_sync.
    left_queued: int
    #: smsfly_sync passes until nothing was queued or being sent.
    sync_passes: int
    #: Whether the killed worker was seen holding a message at the aimed-for stage.
    caught: bool
    seconds: float


def _survives_a_killed_worker(
    run: EngineRun, server: SandboxServer, mailing: tuple[Path, list[str]], *, stage: str
) -> KillReport:
    path, numbers = mailing
    started = time.monotonic()
    enqueue(run, path)
    run.start_workers(WORKERS)
    run.wait(lambda s: s["accepted"] >= COUNT // 4, timeout=90, what="a quarter accepted")
    caught = run.kill_worker_while(0, stage)
    killed_at = time.monotonic()

    # The others go on with what they hold and what is still in the queue.
    settled = run.wait_quiet(still_for=2.0, timeout=150)
    left_queued = settled["queued"]
    # After its lease, a message the killed worker held is stale; smsfly_sync settles it
    # and sends what was left queued (its task is gone) once QUEUED_GRACE has passed.
    time.sleep(max(0.0, killed_at + LEASE + 0.5 - time.monotonic()))
    passes = 0
    sync_started = time.monotonic()
    while True:
        passes += 1
        run.manage("smsfly_sync")
        states = run.states()
        if not states["queued"] and not states["sending"]:
            break
        assert passes < 6, f"smsfly_sync left messages behind: {dict(states)}"
        time.sleep(1.0)
    finished = time.monotonic()
    run.stop_workers()

    rows = run.messages()
    assert len(rows) == COUNT
    assert {r.recipient for r in rows} == set(numbers)
    by_state = collections.Counter(r.state for r in rows)
    assert set(by_state) <= {"accepted", "unknown"}, by_state
    sends = processed_sends(server)
    per_recipient = collections.Counter(recipient for recipient, _ in sends)
    # Nobody got the message twice...
    assert max(per_recipient.values()) == 1
    for row in rows:
        if row.state == "accepted":
            # ...every accepted message was sent exactly once...
            assert per_recipient[row.recipient] == 1, row
        else:
            # ...and the only others are the killed worker's message in flight: its
            # request may have left, so it is unknown and not sent again.
            assert row.error_code == "WORKER_LOST", row
            assert per_recipient[row.recipient] <= 1, row
    # One worker held one message at a time.
    assert by_state["unknown"] <= 1
    retried = sum(1 for r in rows if r.state == "accepted" and r.attempts > 1)
    assert retried + by_state["unknown"] <= 1
    assert {r.attempts for r in rows} <= {1, 2}
    report = KillReport(
        retried=retried,
        unknown=by_state["unknown"],
        left_queued=left_queued,
        sync_passes=passes,
        caught=caught,
        seconds=finished - started,
    )
    print(
        f"\n[{run.engine}] worker killed after {COUNT // 4}+ accepted, "
        f"{'with' if caught else 'NOT seen with'} a message {stage.replace('_', ' ')}: "
        f"{by_state['accepted']} accepted, {report.unknown} unknown (WORKER_LOST), "
        f"{report.retried} retried after recovery, {report.left_queued} left queued by the "
        f"lost task and sent by smsfly_sync ({passes} pass(es), {finished - sync_started:.1f} s); "
        f"{report.seconds:.1f} s in all"
    )
    return report


def test_django_tasks_db_a_killed_worker_sends_nothing_twice_and_loses_nothing(
    server: SandboxServer, mailing: tuple[Path, list[str]], tmp_path: Path
) -> None:
    with EngineRun("db", tmp_path, server.url, lease=LEASE, grace=GRACE) as run:
        _survives_a_killed_worker(run, server, mailing, stage="in_flight")


def test_rq_a_killed_worker_sends_nothing_twice_and_loses_nothing(
    server: SandboxServer, mailing: tuple[Path, list[str]], tmp_path: Path
) -> None:
    with EngineRun("rq", tmp_path, server.url, rate=RATE, lease=LEASE, grace=GRACE) as run:
        _survives_a_killed_worker(run, server, mailing, stage="claimed")
        sends = processed_sends(server)
    assert busiest_second(t for _, t in sends) <= rate_bound(RATE)


# -- Celery ------------------------------------------------------------------------------------


@pytest.fixture
def celery_ready(services: None) -> None:
    """django-tasks-celery (Django 6 only) and RabbitMQ."""
    try:
        import django.tasks  # noqa: F401
    except ImportError:
        pytest.skip("django-tasks-celery needs Django 6 (django.tasks)")
    try:
        import celery  # type: ignore[import-untyped,import-not-found,unused-ignore] # noqa: F401
        import django_tasks_celery  # noqa: F401
    except ImportError as exc:
        pytest.fail(
            f"SMSFLY_ENGINE_TESTS=1, but Celery is not installed ({exc}): "
            "pip install 'django-smsfly[engines]'",
            pytrace=False,
        )
    try:
        check_services("rabbitmq")
    except ServiceUnavailable as exc:
        pytest.fail(f"SMSFLY_ENGINE_TESTS=1, but {exc}", pytrace=False)


def test_celery_workers_send_every_message_exactly_once(
    celery_ready: None,
    server: SandboxServer,
    mailing: tuple[Path, list[str]],
    tmp_path: Path,
) -> None:
    with EngineRun("celery", tmp_path, server.url) as run:
        _all_sent_once(run, server, mailing)
