"""The harness of the real-engine tests: a run's database, its workers, and the faults.

:class:`EngineRun` gives one run on one task engine a PostgreSQL database of its own
(migrated by a ``manage.py migrate`` subprocess), starts its workers as a site starts
them, with :mod:`tests.engine_settings`, and reads the database and the workers' logs.
Beside it are what the tests need around a run: the services it depends on, mailing
files, the SENDMESSAGE requests the sandbox acted on, and the faults the tests inject
(a worker killed, its PostgreSQL connections cut, RabbitMQ stopped).

Used by ``tests/test_engines.py`` (and, through it, ``benchmarks/bulk.py``).
"""

from __future__ import annotations

import collections
import contextlib
import csv
import datetime as dt
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from django_smsfly.backends.sandbox import TEST_NUMBERS
from django_smsfly.backends.sandbox_server import SandboxServer

ROOT = Path(__file__).resolve().parent.parent

PG = os.environ.get("SMSFLY_ENGINE_PG", "postgres://postgres@127.0.0.1:5432").rstrip("/")
REDIS = os.environ.get("SMSFLY_ENGINE_REDIS", "redis://127.0.0.1:6379").rstrip("/")
AMQP = os.environ.get("SMSFLY_ENGINE_AMQP", "amqp://guest:guest@127.0.0.1:5672//")

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
    (their endings fail on purpose: ``TEST_NUMBERS``, whichever the sandbox has)."""
    failing = {number[-4:] for number in TEST_NUMBERS.values()}
    numbers: list[str] = []
    serial = 1_000_000
    while len(numbers) < count:
        serial += 1
        number = f"{prefix}{serial:07d}"
        if number[-4:] not in failing:
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

    def spawn(
        self, argv: Sequence[str], log: Path, *, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        """Start a process in a new session (its own process group), output to ``log``;
        ``env`` adds to the run's environment."""
        with log.open("wb") as out:
            return subprocess.Popen(  # noqa: S603 - our own interpreter and commands
                list(argv),
                cwd=ROOT,
                env={**self.env, **(env or {})},
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
        # --pool solo runs one task at a time; --concurrency 1 has Celery reserve no more
        # (it prefetches concurrency x multiplier tasks): no task waits behind a busy
        # worker while another is idle, and a killed worker takes only its own task along.
        return [
            sys.executable, "-m", "celery", "-A", "tests.engine_settings:celery_app",
            "worker", "--pool", "solo", "--concurrency", "1", "--hostname", f"{name}@localhost",
            "--queues", self.queue, "--without-gossip", "--without-mingle",
            "--without-heartbeat", "--loglevel", "INFO",
        ]  # fmt: skip

    def start_workers(self, count: int) -> None:
        """Start ``count`` workers, each connecting to PostgreSQL under its own name."""
        for _ in range(count):
            index = len(self.workers)
            log = self.workdir / f"worker-{self.tag}-{index}.log"
            name = {"SMSFLY_ENGINE_PROCESS": self.worker_name(index)}
            process = self.spawn(self.worker_command(index), log, env=name)
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
        """The messages of the send task worker ``index`` is running now.

        From the engine where it keeps that (django-tasks-db's table, RQ's worker
        registry). A Celery worker runs its task where nobody can look; what it holds
        is read from the last statement of its PostgreSQL connection instead (Django
        binds the parameters in the text): the message that statement named, or the
        message it is sending to the number whose opt-out it looked up last (the
        lookup made between the claim and the request).
        """
        worker = self.workers[index]
        if self.engine == "celery":
            rows = self.query(
                "SELECT query FROM pg_stat_activity WHERE datname = %s AND application_name = %s",
                [self.database, worker.name],
            )
            statements = [sql or "" for (sql,) in rows]
            pks = [int(pk) for sql in statements for pk in _MESSAGE_PK.findall(sql)]
            numbers = [number for sql in statements for number in _OPT_OUT_LOOKUP.findall(sql)]
            if numbers:
                sending = self.query(
                    "SELECT id FROM django_smsfly_message "
                    "WHERE recipient = ANY(%s) AND state = 'sending'",
                    [numbers],
                )
                pks.extend(pk for (pk,) in sending)
            return pks
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

    def wait_in_flight(
        self, *, workers: Iterable[int], marked: tuple[float, float], timeout: float = 10
    ) -> int | None:
        """Wait until one of ``workers`` has a request in flight: it holds a message whose
        request was marked as leaving between ``marked[0]`` and ``marked[1]`` seconds ago
        (late enough for the request to have left, early enough for its answer to be
        still on the way). Returns that worker, or None after ``timeout`` seconds
        without seeing one.

        The window is a few milliseconds wide, so each look is kept cheap: one query for
        the messages inside it, and only when there are some, who holds them.
        """
        indexes = list(workers)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rows = self.query(_IN_FLIGHT, [marked[1], marked[0]])
            if rows:
                inside = {pk for (pk,) in rows}
                for index in indexes:
                    if inside.intersection(self.held_by(index)):
                        return index
            time.sleep(0.001)
        return None

    def wait_busy(self, *, workers: Iterable[int], timeout: float = 10) -> int | None:
        """Wait until one of ``workers`` holds a message (it is sending, so it has its
        database connection open); returns that worker, or None after ``timeout``
        seconds with every one of them idle."""
        indexes = list(workers)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for index in indexes:
                if self.held_by(index):
                    return index
            time.sleep(0.005)
        return None

    def kill_worker_in_flight(
        self, index: int, *, marked: tuple[float, float], timeout: float = 10
    ) -> bool:
        """Kill worker ``index`` while it has a request in flight (see
        :meth:`wait_in_flight`). Returns whether it was seen so just before the kill;
        after ``timeout`` seconds it is killed anyway."""
        found = self.wait_in_flight(workers=[index], marked=marked, timeout=timeout)
        self.kill_worker(index)
        return found is not None

    def cut_connections(self, index: int) -> int:
        """Terminate worker ``index``'s PostgreSQL connections (``pg_terminate_backend``),
        as a database restart or a proxy dropping them would; returns how many."""
        rows = self.query(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = %s AND application_name = %s",
            [self.database, self.workers[index].name],
        )
        return int(rows[0][0])

    def log_findall(self, pattern: re.Pattern[str]) -> list[list[str]]:
        """Every match of ``pattern`` in each worker's log, worker by worker."""
        return [
            pattern.findall(w.log.read_text(errors="replace")) if w.log.exists() else []
            for w in self.workers
        ]

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
            "SELECT recipient, state, attempts, error_code, sent_at, request_started_at "
            "FROM django_smsfly_message"
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


#: The messages whose request was marked as leaving between so many seconds ago and so
#: many (a worker claims a message and marks it in one statement).
_IN_FLIGHT = (
    "SELECT id FROM django_smsfly_message WHERE state = 'sending' "
    "AND request_started_at BETWEEN clock_timestamp() - make_interval(secs => %s) "
    "AND clock_timestamp() - make_interval(secs => %s)"
)

#: A message an SQL statement of Django's names (``WHERE "django_smsfly_message"."id" = 12``).
_MESSAGE_PK = re.compile(r'"django_smsfly_message"\."id" = (\d+)')
#: The number an opt-out lookup of Django's names (``"django_smsfly_optout"."recipient"
#: = '380671000007'``).
_OPT_OUT_LOOKUP = re.compile(r'"django_smsfly_optout"\."recipient" = \'(\d+)\'')


@dataclass(frozen=True)
class MessageRow:
    """The columns of a message row the assertions read."""

    recipient: str
    state: str
    attempts: int
    error_code: str
    sent_at: dt.datetime | None
    #: When the request was marked as leaving (the last send's, if it did not end queued).
    request_started_at: dt.datetime | None


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


# -- RabbitMQ ----------------------------------------------------------------------------------


@contextlib.contextmanager
def rabbitmq_stopped() -> Iterator[float]:
    """Stop this machine's RabbitMQ node (``rabbitmqctl stop``) for the ``with`` block;
    yields when it stopped (``time.monotonic()``).

    It is started again on the way out, whatever happened in the block or while
    stopping: other tests, and CI, need it.
    """
    try:
        _rabbitmqctl("stop")
        yield time.monotonic()
    finally:
        start_rabbitmq()


def start_rabbitmq(*, timeout: float = 90) -> None:
    """Start the RabbitMQ node unless it runs, and wait until it takes connections."""
    if _rabbitmqctl("await_startup", "--timeout", "2", check=False).returncode == 0:
        return
    subprocess.run(  # noqa: S603 - a fixed command
        [_tool("rabbitmq-server"), "-detached"], capture_output=True, timeout=30, check=True
    )
    deadline = time.monotonic() + timeout
    # await_startup fails at once while the new node has not registered yet: ask again.
    while _rabbitmqctl("await_startup", "--timeout", "10", check=False).returncode != 0:
        if time.monotonic() > deadline:
            raise ServiceUnavailable(f"RabbitMQ did not start again within {timeout:.0f} s")
        time.sleep(0.5)
    check_services("rabbitmq")


def _rabbitmqctl(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - a fixed command
        [_tool("rabbitmqctl"), *args], capture_output=True, text=True, timeout=60, check=check
    )


def _tool(name: str) -> str:
    """The path of one of RabbitMQ's commands (installed in sbin, often not on PATH)."""
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin:/sbin")
    if found is None:
        raise ServiceUnavailable(f"{name} is not installed: the broker cannot be restarted")
    return found
