"""Background sending on real task engines: worker processes, PostgreSQL, Redis, RabbitMQ.

Opt-in: these run only with ``SMSFLY_ENGINE_TESTS=1`` and need PostgreSQL
(127.0.0.1:5432, user postgres), Redis (127.0.0.1:6379) and, for Celery, RabbitMQ
(127.0.0.1:5672, guest, with ``rabbitmqctl`` to restart it). With the variable set, a
service that cannot be reached is a failure, not a skip::

    SMSFLY_ENGINE_TESTS=1 .venv/bin/python -m pytest tests/test_engines.py -m engines -s

Each run gets a PostgreSQL database of its own (the workers cannot see pytest-django's
test database), migrated by a ``manage.py migrate`` subprocess. The sandbox is served
over real HTTP from this process, and everything else happens in separate processes
with :mod:`tests.engine_settings`, as on a real site: ``smsfly_send --csv ... --defer``
writes and enqueues the messages, several workers send them, ``smsfly_sync`` cleans up
after the faults: a worker killed with SIGKILL, its PostgreSQL connections cut,
RabbitMQ stopped and started again. The assertions read the database and the requests
the sandbox received. ``-s`` shows a summary line per run.

The machinery (:class:`~tests.engine_harness.EngineRun` and the faults) is in
:mod:`tests.engine_harness`.
"""

from __future__ import annotations

import collections
import datetime as dt
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from django_smsfly.backends.sandbox_server import SandboxServer
from tests.engine_harness import (
    EngineRun,
    ServiceUnavailable,
    busiest_second,
    check_services,
    processed_sends,
    rabbitmq_stopped,
    rate_bound,
    recipients,
    write_csv,
)

ENABLED = os.environ.get("SMSFLY_ENGINE_TESTS") == "1"

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
#: A short lease and grace, so that the recovery after a fault happens within the test
#: (the engine settings shorten the HTTP timeouts to fit a send in the lease).
LEASE = 4.0
GRACE = 2.0

#: Messages of a Celery fault run: five send tasks of 100 for four workers, so that one
#: waits in RabbitMQ while the others run.
FAULT_COUNT = 500
#: The sandbox's latency in the Celery fault runs: a send spends a good part of its time
#: on the network (the rest is the worker's database work), so faults catch many there.
FAULT_LATENCY = 0.03
#: Messages written by ``smsfly_send --defer`` while RabbitMQ is down.
OUTAGE_COUNT = 100
#: Times a Celery worker's PostgreSQL connections are cut in a run: every other time
#: while its request is in flight, the others wherever the worker is in its work.
CUTS = 4
#: Seconds the cuts may take at most, and how many queued messages must be left for
#: another cut to be made (a cut into the last few would test nothing).
CUT_PHASE = 40.0
CUTS_UNTIL_LEFT = 40

Mailing = tuple[Path, list[str]]


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
def fault_server(server: SandboxServer) -> SandboxServer:
    """The sandbox with FAULT_LATENCY."""
    server.simulator.configure(latency=FAULT_LATENCY)
    return server


def in_flight(server: SandboxServer) -> tuple[float, float]:
    """How long ago a request must have been marked as leaving for a fault to hit it in
    flight: half the sandbox's latency to 90 % of it. A worker needs a few milliseconds
    from the mark to the wire, so by then most requests have reached the sandbox, and
    their answers are still to come."""
    return server.latency * 0.5, server.latency * 0.9


def make_mailing(directory: Path, count: int, *, name: str, prefix: str = "38067") -> Mailing:
    """A CSV file of ``count`` distinct recipients, and the recipients."""
    numbers = recipients(count, prefix=prefix)
    return write_csv(directory / f"{name}.csv", numbers), numbers


@pytest.fixture
def mailing(tmp_path: Path) -> Mailing:
    """A CSV file of COUNT distinct recipients."""
    return make_mailing(tmp_path, COUNT, name="mailing")


@pytest.fixture
def fault_mailing(tmp_path: Path) -> Mailing:
    """A CSV file of FAULT_COUNT distinct recipients."""
    return make_mailing(tmp_path, FAULT_COUNT, name="mailing")


def enqueue(run: EngineRun, mailing: Mailing) -> None:
    """``smsfly_send --csv ... --defer``: write every row queued and enqueue send tasks."""
    path, numbers = mailing
    count = len(numbers)
    done = run.manage("smsfly_send", "--csv", str(path), "--text", "Hi {name}", "--defer")
    assert f"{count} rows: {count} handed to the task workers" in done.stdout, done.stdout
    queued = run.query(
        "SELECT count(*) FROM django_smsfly_message WHERE state = 'queued' "
        "AND recipient = ANY(%s)",
        [numbers],
    )
    assert queued == [(count,)]


# -- what every run must end with ----------------------------------------------------------


@dataclass
class Outcome:
    """What became of a run's messages; :func:`sent_at_most_once` checks the rules."""

    accepted: int
    #: Their request had been marked as leaving when the worker was lost: unknown
    #: (WORKER_LOST), sent at most once and never again.
    unknown: int
    #: Of those, how many SMS-fly had in fact acted on.
    unknown_sent: int
    #: Accepted at a later attempt: claimed, then queued again because no request had
    #: left when their worker was lost.
    retried: int
    attempts: set[int]


def sent_at_most_once(run: EngineRun, server: SandboxServer, numbers: list[str]) -> Outcome:
    """Check the bar of every run, whatever the fault: each recipient has its message,
    none is left queued or sending, none was sent twice, every accepted message was sent
    exactly once, and the only other outcome is ``unknown`` (WORKER_LOST) for a message
    whose request had been marked as leaving."""
    rows = run.messages()
    assert len(rows) == len(numbers)
    assert {r.recipient for r in rows} == set(numbers)
    by_state = collections.Counter(r.state for r in rows)
    assert set(by_state) <= {"accepted", "unknown"}, by_state
    per_recipient = collections.Counter(recipient for recipient, _ in processed_sends(server))
    assert set(per_recipient) <= set(numbers)
    # Nobody got the message twice...
    assert max(per_recipient.values()) == 1
    for row in rows:
        if row.state == "accepted":
            # ...every accepted message was sent exactly once...
            assert per_recipient[row.recipient] == 1, row
        else:
            # ...and the others were held by a lost worker after their request was marked
            # as leaving: they may have been sent, so they are unknown and not sent again.
            assert row.error_code == "WORKER_LOST", row
            assert row.request_started_at is not None, row
    return Outcome(
        accepted=by_state["accepted"],
        unknown=by_state["unknown"],
        unknown_sent=sum(1 for r in rows if r.state == "unknown" and per_recipient[r.recipient]),
        retried=sum(1 for r in rows if r.state == "accepted" and r.attempts > 1),
        attempts={r.attempts for r in rows},
    )


@dataclass
class Recovery:
    """What was left to ``smsfly_sync`` once the workers had settled after a fault."""

    #: Queued (their task was lost, or never reached the engine): sent by smsfly_sync.
    left_queued: int
    #: Left sending by a lost worker: settled by smsfly_sync after the lease.
    left_sending: int
    #: smsfly_sync passes until nothing was queued or being sent.
    passes: int
    seconds: float


def recover(run: EngineRun, server: SandboxServer, *, fault_at: float) -> Recovery:
    """Wait until the workers have done what they can, then run ``smsfly_sync`` as a
    site's timer would, from ``LEASE`` (and ``GRACE``) after the fault on, until no
    message is queued or sending."""
    settled = run.wait_quiet(still_for=2.0, timeout=150)
    # The faults are over: the sends and polls that follow need no more than LATENCY.
    server.simulator.configure(latency=LATENCY)
    time.sleep(max(0.0, fault_at + max(LEASE, GRACE) + 0.5 - time.monotonic()))
    passes = 0
    started = time.monotonic()
    while True:
        passes += 1
        run.manage("smsfly_sync")
        states = run.states()
        if not states["queued"] and not states["sending"]:
            break
        assert passes < 6, f"smsfly_sync left messages behind: {dict(states)}"
        time.sleep(1.0)
    return Recovery(
        left_queued=settled["queued"],
        left_sending=settled["sending"],
        passes=passes,
        seconds=time.monotonic() - started,
    )


def _figures(outcome: Outcome, recovery: Recovery) -> str:
    return (
        f"{outcome.accepted} accepted, {outcome.unknown} unknown (WORKER_LOST; "
        f"{outcome.unknown_sent} of them had reached SMS-fly), {outcome.retried} retried "
        f"after recovery; {recovery.left_queued} left queued and {recovery.left_sending} "
        f"sending, settled by smsfly_sync ({recovery.passes} pass(es), "
        f"{recovery.seconds:.1f} s)"
    )


# -- every message once, with all workers alive ----------------------------------------------


def _all_sent_once(
    run: EngineRun, server: SandboxServer, mailing: Mailing
) -> list[tuple[str, dt.datetime]]:
    _path, numbers = mailing
    started = time.monotonic()
    enqueue(run, mailing)
    enqueued = time.monotonic()
    run.start_workers(WORKERS)
    run.wait(lambda s: s["accepted"] == COUNT, timeout=150, what="every message accepted")
    finished = time.monotonic()
    run.stop_workers()

    outcome = sent_at_most_once(run, server, numbers)
    assert outcome.accepted == COUNT
    assert outcome.attempts == {1}
    sends = processed_sends(server)
    assert len(sends) == COUNT
    print(
        f"\n[{run.engine}] {COUNT} messages by {WORKERS} workers: every one sent once "
        f"(smsfly_send --defer {enqueued - started:.1f} s, then the workers "
        f"{finished - enqueued:.1f} s)"
    )
    return sends


def test_django_tasks_db_workers_send_every_message_exactly_once(
    server: SandboxServer, mailing: Mailing, tmp_path: Path
) -> None:
    with EngineRun("db", tmp_path, server.url) as run:
        _all_sent_once(run, server, mailing)


def test_rq_workers_send_every_message_exactly_once_within_the_shared_rate(
    server: SandboxServer, mailing: Mailing, tmp_path: Path
) -> None:
    with EngineRun("rq", tmp_path, server.url, rate=RATE) as run:
        sends = _all_sent_once(run, server, mailing)
    assert busiest_second(t for _, t in sends) <= rate_bound(RATE)


# -- a worker dies part way ----------------------------------------------------------------


@dataclass
class KillReport:
    """What became of the messages when one worker was killed."""

    outcome: Outcome
    recovery: Recovery
    #: Whether the killed worker was seen with its request in flight.
    caught: bool
    seconds: float


def _survives_a_killed_worker(
    run: EngineRun, server: SandboxServer, mailing: Mailing
) -> KillReport:
    _path, numbers = mailing
    quarter = len(numbers) // 4
    started = time.monotonic()
    enqueue(run, mailing)
    run.start_workers(WORKERS)
    run.wait(lambda s: s["accepted"] >= quarter, timeout=90, what="a quarter accepted")
    caught = run.kill_worker_in_flight(0, marked=in_flight(server))
    # The others go on with what they hold and what is still in the queue; after its
    # lease, a message the killed worker held is stale, and smsfly_sync settles it and
    # sends what was left queued (its task is gone) once QUEUED_GRACE has passed.
    recovery = recover(run, server, fault_at=time.monotonic())
    run.stop_workers()

    outcome = sent_at_most_once(run, server, numbers)
    # One worker held one message at a time: at most one was lost in flight or retried.
    assert outcome.unknown + outcome.retried <= 1
    assert outcome.attempts <= {1, 2}
    if caught:
        # The message it held was marked as leaving: never sent again, whether SMS-fly
        # had it (then a second send would show above) or not.
        assert outcome.retried == 0
    report = KillReport(outcome, recovery, caught, time.monotonic() - started)
    print(
        f"\n[{run.engine}] {len(numbers)} messages, worker killed after {quarter}+ accepted, "
        f"{'with' if caught else 'NOT seen with'} a request in flight: "
        f"{_figures(outcome, recovery)}; {report.seconds:.1f} s in all"
    )
    return report


def test_django_tasks_db_a_killed_worker_sends_nothing_twice_and_loses_nothing(
    server: SandboxServer, mailing: Mailing, tmp_path: Path
) -> None:
    with EngineRun("db", tmp_path, server.url, lease=LEASE, grace=GRACE) as run:
        _survives_a_killed_worker(run, server, mailing)


def test_rq_a_killed_worker_sends_nothing_twice_and_loses_nothing(
    server: SandboxServer, mailing: Mailing, tmp_path: Path
) -> None:
    with EngineRun("rq", tmp_path, server.url, rate=RATE, lease=LEASE, grace=GRACE) as run:
        _survives_a_killed_worker(run, server, mailing)
        sends = processed_sends(server)
    assert busiest_second(t for _, t in sends) <= rate_bound(RATE)


# -- Celery ------------------------------------------------------------------------------------

#: The line a Celery worker logs when a send task is delivered to it, and when it has
#: connected to the broker.
CELERY_RECEIVED = re.compile(r"Task django_smsfly\.tasks\.send_messages\[([0-9a-f-]+)\] received")
CELERY_CONNECTED = re.compile(r"Connected to amqp://")


def redelivered(run: EngineRun) -> int:
    """How many times a send task was delivered again (after the worker holding it was
    lost, or could not acknowledge it), from the workers' logs."""
    deliveries = collections.Counter(
        t for found in run.log_findall(CELERY_RECEIVED) for t in found
    )
    return sum(deliveries.values()) - len(deliveries)


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
    celery_ready: None, server: SandboxServer, mailing: Mailing, tmp_path: Path
) -> None:
    with EngineRun("celery", tmp_path, server.url) as run:
        _all_sent_once(run, server, mailing)


def test_celery_a_killed_worker_sends_nothing_twice_and_loses_nothing(
    celery_ready: None, fault_server: SandboxServer, fault_mailing: Mailing, tmp_path: Path
) -> None:
    with EngineRun("celery", tmp_path, fault_server.url, lease=LEASE, grace=GRACE) as run:
        report = _survives_a_killed_worker(run, fault_server, fault_mailing)
        again = redelivered(run)
    print(f"[celery] the killed worker's task was delivered again: {again} time(s)")
    if report.caught:
        # Unacknowledged (task_acks_late), it went back to RabbitMQ and another worker ran
        # it: its claims made that harmless (sent_at_most_once), and nothing was left queued.
        assert again == 1
        assert report.recovery.left_queued == 0


def test_celery_a_rabbitmq_restart_loses_nothing_and_sends_nothing_twice(
    celery_ready: None, fault_server: SandboxServer, fault_mailing: Mailing, tmp_path: Path
) -> None:
    during = make_mailing(tmp_path, OUTAGE_COUNT, name="during-outage", prefix="38050")
    _path, numbers = fault_mailing
    started = time.monotonic()
    with EngineRun("celery", tmp_path, fault_server.url, lease=LEASE, grace=GRACE) as run:
        enqueue(run, fault_mailing)
        run.start_workers(WORKERS)
        run.wait(lambda s: s["accepted"] >= FAULT_COUNT // 4, timeout=90, what="a quarter")
        with rabbitmq_stopped() as stopped_at:
            at_stop = run.states()
            # Written while the broker is down: the rows are there, their task is not.
            enqueue(run, during)
            written_at = time.monotonic()
        outage = time.monotonic() - stopped_at
        # Each worker notices when its task ends: it cannot acknowledge it, connects
        # again, and the task is delivered again (harmless: every send claims first).
        run.wait(
            lambda _: all(len(found) >= 2 for found in run.log_findall(CELERY_CONNECTED)),
            timeout=90,
            what="every worker connected to RabbitMQ again",
        )
        recovery = recover(run, fault_server, fault_at=written_at)
        run.stop_workers()
        again = redelivered(run)
        outcome = sent_at_most_once(run, fault_server, numbers + during[1])

    # Tasks queued or running at the stop came back with RabbitMQ; the messages written
    # while it was down were sent by smsfly_sync; all of them once, at the first attempt.
    assert at_stop["queued"] > 0
    assert outcome.accepted == FAULT_COUNT + OUTAGE_COUNT
    assert outcome.attempts == {1}
    assert recovery.left_queued >= OUTAGE_COUNT
    print(
        f"\n[celery] RabbitMQ stopped for {outage:.1f} s with {at_stop['accepted']} of "
        f"{FAULT_COUNT} messages accepted, {at_stop['sending']} sending and "
        f"{at_stop['queued']} queued; {OUTAGE_COUNT} more written meanwhile: "
        f"{_figures(outcome, recovery)}; {again} task deliveries repeated; "
        f"{time.monotonic() - started:.1f} s in all"
    )


def test_celery_workers_losing_their_database_connections_send_nothing_twice(
    celery_ready: None, fault_server: SandboxServer, fault_mailing: Mailing, tmp_path: Path
) -> None:
    _path, numbers = fault_mailing
    started = time.monotonic()
    cuts: collections.Counter[str] = collections.Counter()
    with EngineRun("celery", tmp_path, fault_server.url, lease=LEASE, grace=GRACE) as run:
        enqueue(run, fault_mailing)
        run.start_workers(WORKERS)
        run.wait(lambda s: s["accepted"] >= FAULT_COUNT // 4, timeout=90, what="a quarter")
        # Every other cut waits for a request in flight; the others (and one whose
        # request was not caught in flight) hit a worker wherever it is in its work. Cuts
        # go on until CUTS are made, while enough is left to send for one to matter.
        attempts: list[str] = []
        deadline = time.monotonic() + CUT_PHASE
        while cuts.total() < CUTS and time.monotonic() < deadline:
            left = run.states()["queued"]
            if left < CUTS_UNTIL_LEFT:
                break
            index = None
            if len(attempts) % 2 == 0:
                aim = "in_flight"
                index = run.wait_in_flight(
                    workers=range(WORKERS), marked=in_flight(fault_server), timeout=5
                )
            if index is None:
                aim = "anywhere"
                # Starting from a different worker each time, not always the first.
                turn = [(len(attempts) + k) % WORKERS for k in range(WORKERS)]
                index = run.wait_busy(workers=turn, timeout=5)
            made = run.cut_connections(index) if index is not None else 0
            cuts[aim] += made
            attempts.append(f"{aim} w{index}: {made} cut, {left} queued")
            # Let the workers go on for a while between cuts.
            time.sleep(0.5)
        recovery = recover(run, fault_server, fault_at=time.monotonic())
        run.stop_workers()
        outcome = sent_at_most_once(run, fault_server, numbers)

    # A cut costs at most the message its worker was sending: the outcome of a request
    # that reached SMS-fly is written on a new connection, so no accepted message is
    # lost to unknown; a cut the worker cannot get past fails its task, and smsfly_sync
    # settles that message (unknown only if it was marked as leaving) and sends the rest.
    cut = cuts.total()
    assert cut >= 2, f"too few cuts: {attempts}"
    assert outcome.unknown_sent == 0
    assert outcome.unknown + outcome.retried <= cut
    assert outcome.attempts <= {1, 2}
    print(
        f"\n[celery] {FAULT_COUNT} messages, {cut} worker connections cut "
        f"({cuts['in_flight']} with a request in flight, {cuts['anywhere']} anywhere): "
        f"{_figures(outcome, recovery)}; "
        f"{time.monotonic() - started:.1f} s in all"
    )
