"""Every change of a message is a guarded transition: the findings that broke it, each
reproduced, on SQLite and PostgreSQL alike unless a test needs real concurrency.

- two pollers of one message (a slow reply after a fast one, or both the same);
- a status reply about another message;
- the message's own status moving back on a Viber-then-SMS fallback;
- reply values the database cannot store;
- the shared rate limit's cache down;
- a worker slower than its lease (contradictory signals);
- an operator attaching the message id of an unknown message.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import threading
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, connections
from django.utils import timezone

from django_smsfly import services, signals
from django_smsfly.backends.base import RawReply
from django_smsfly.backends.sandbox import Simulator, get_simulator
from django_smsfly.models import ChannelStatus, Message, StatusChange
from django_smsfly.ratelimit import reset_rate_limiters
from tests.scripted import SCRIPT, reply, status_reply

SCRIPTED = "tests.scripted.ScriptedBackend"
NUMBER = "380501234567"


@pytest.fixture
def scripted(settings: Any) -> Iterator[Simulator]:
    settings.SMSFLY = {**settings.SMSFLY, "BACKEND": SCRIPTED, "API_KEY": "transitions-key"}
    simulator = get_simulator()
    yield simulator
    SCRIPT.clear()


@pytest.fixture
def fired() -> Iterator[list[tuple[str, Any]]]:
    """Every outcome and status signal, in order: (name, details)."""
    log: list[tuple[str, Any]] = []
    lock = threading.Lock()

    def on_status(
        message: Message, channel: Any, old_status: Any, new_status: Any, **kw: Any
    ) -> None:
        with lock:
            log.append(
                ("status_changed", (message.pk, str(channel), str(old_status), str(new_status)))
            )

    def on_sent(message: Message, **kw: Any) -> None:
        with lock:
            log.append(("message_sent", message.pk))

    def on_failed(message: Message, error: Any, **kw: Any) -> None:
        with lock:
            log.append(("message_failed", message.pk))

    signals.status_changed.connect(on_status, weak=False)
    signals.message_sent.connect(on_sent, weak=False)
    signals.message_failed.connect(on_failed, weak=False)
    yield log
    signals.status_changed.disconnect(on_status)
    signals.message_sent.disconnect(on_sent)
    signals.message_failed.disconnect(on_failed)


def channel_history(message: Message, channel: str) -> list[tuple[str, str]]:
    return list(
        StatusChange.objects.filter(message=message, channel=channel)
        .order_by("pk")
        .values_list("old_status", "new_status")
    )


def message_history(message: Message) -> list[tuple[str, str]]:
    return channel_history(message, "")


def status_of(message: Message, channel: str) -> str:
    return ChannelStatus.objects.get(message=message, channel=channel).status


def queue(text: str) -> Message:
    return services.queue_message(NUMBER, channels="sms", sms={"text": text})


def due_now(message: Message) -> None:
    Message.objects.filter(pk=message.pk).update(next_check_at=timezone.now())


# -- two pollers, one message (PostgreSQL: real row locks between connections) ------------

needs_postgres = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="needs PostgreSQL (set DATABASE_URL)"
)


def _in_thread(work: Any) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as exc:  # pragma: no cover - reported by the test
            errors.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, errors


@needs_postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("slow", "fast"), [("SENT", "DELIVRD"), ("DELIVRD", "DELIVRD")])
def test_a_slow_poll_after_a_fast_one_never_moves_the_status_back_nor_signals_twice(
    scripted: Simulator, fired: list[tuple[str, Any]], slow: str, fast: str
) -> None:
    """The sync loop's batch polls slowly; "Refresh status now" polls the same message
    fast. Whatever order the replies land in, the status only moves forward, and each
    move is in the history and signalled once."""
    message = services.send_sms(NUMBER, "Hi")
    mid = message.message_id or ""
    calls = itertools.count()
    slow_started, release = threading.Event(), threading.Event()

    def statuses(body: Mapping[str, Any]) -> RawReply:
        if next(calls) == 0:  # the batch's poll: it waits until the fast one is stored
            slow_started.set()
            assert release.wait(20)
            return status_reply(mid, sms=slow)
        return status_reply(mid, sms=fast)

    SCRIPT.on("GETMESSAGESTATUS", statuses)
    due_now(message)
    batch, errors = _in_thread(lambda: services.sync_statuses(rate_limit=0))
    assert slow_started.wait(20)
    services.sync_statuses(message_pks=[message.pk], rate_limit=0)  # the admin's refresh
    release.set()
    batch.join(30)
    assert not errors

    assert status_of(message, "sms") == "delivered"
    assert Message.objects.get(pk=message.pk).status == "delivered"
    assert channel_history(message, "sms") == [("queued", "accepted"), ("accepted", "delivered")]
    moves = [details for name, details in fired if name == "status_changed"]
    assert moves == [
        (message.pk, "sms", "queued", "accepted"),
        (message.pk, "sms", "accepted", "delivered"),
    ]
    # A later poll saying the same changes nothing and signals nothing.
    services.sync_statuses(message_pks=[message.pk], rate_limit=0)
    assert len(channel_history(message, "sms")) == 2
    assert len([n for n, _ in fired if n == "status_changed"]) == 2


@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_many_pollers_keep_every_history_a_forward_chain_on_postgresql() -> None:
    from tests.stress import run_poller_stress

    outcome = run_poller_stress(messages=12, pollers=6, polls_per_poller=40)
    assert outcome["violations"] == []
    assert outcome["polls"] == 6 * 40


def test_many_pollers_keep_every_history_a_forward_chain_on_sqlite(tmp_path: Any) -> None:
    """The same stress in processes of its own, on an SQLite file (threads cannot share
    the test suite's in-memory database)."""
    import json
    import os
    import subprocess
    import sys

    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'stress.sqlite3'}"}
    done = subprocess.run(
        [sys.executable, "-m", "tests.stress", "12", "6", "40"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    assert outcome["violations"] == []
    assert outcome["polls"] == 6 * 40


# -- replies that must not be applied ----------------------------------------------------


@pytest.mark.django_db
def test_a_status_reply_about_another_message_is_refused(scripted: Simulator) -> None:
    message = services.send_sms(NUMBER, "Hi")
    SCRIPT.on("GETMESSAGESTATUS", lambda body: status_reply("someone-else", sms="DELIVRD"))
    report = services.sync_statuses(message_pks=[message.pk], rate_limit=0)
    stored = Message.objects.get(pk=message.pk)
    assert report.errors == 1
    assert report.error_codes == {"MESSAGE_ID_MISMATCH": 1}
    assert stored.error_code == "MESSAGE_ID_MISMATCH"
    assert "someone-else" in stored.error_text
    assert status_of(message, "sms") == "accepted"
    assert stored.status == "accepted"
    assert channel_history(message, "sms") == [("queued", "accepted")]


@pytest.mark.django_db
def test_the_overall_status_never_moves_back_on_a_viber_to_sms_fallback(
    scripted: Simulator,
) -> None:
    message = services.send_viber(NUMBER, text="Hi", sms_text="Hi")
    mid = message.message_id or ""
    replies = iter(
        [
            status_reply(mid, viber="INPROGRESS", sms="ACCEPTD"),
            status_reply(mid, viber="UNDELIV", sms="ACCEPTD"),
            status_reply(mid, viber="UNDELIV", sms="DELIVRD"),
        ]
    )
    SCRIPT.on("GETMESSAGESTATUS", lambda body: next(replies))
    seen = []
    for _ in range(3):
        services.sync_statuses(message_pks=[message.pk], rate_limit=0)
        seen.append(Message.objects.get(pk=message.pk).status)
    assert seen == ["in_progress", "in_progress", "delivered"]
    assert message_history(message) == [
        ("queued", "accepted"),
        ("accepted", "in_progress"),
        ("in_progress", "delivered"),
    ]
    assert Message.objects.get(pk=message.pk).delivered_via == "sms"


# -- reply values the database cannot store ------------------------------------------------


def _send_reply(message_id: str, cost: str = "0.479") -> Any:
    def handler(body: Mapping[str, Any]) -> RawReply:
        return reply(
            {
                "messageID": message_id,
                "sms": {"status": "ACCEPTD", "date": "2026-12-01 10:00:00 +0200", "cost": cost},
            }
        )

    return handler


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("message_id", "problem"),
    [
        ("x" * 65, "longer than 64"),
        ("FLY\x00123", "NUL"),
        ("   ", "blank"),
    ],
    ids=["too-long", "nul", "blank"],
)
def test_a_message_id_the_database_cannot_store_becomes_an_unknown_outcome(
    scripted: Simulator, fired: list[tuple[str, Any]], message_id: str, problem: str
) -> None:
    SCRIPT.on("SENDMESSAGE", _send_reply(message_id))
    message = services.send_sms(NUMBER, "Hi")  # never raises for what SMS-fly did
    stored = Message.objects.get(pk=message.pk)
    assert stored.state == Message.State.UNKNOWN
    assert stored.error_code == "UNSTORABLE_REPLY"
    assert problem in stored.error_text
    assert stored.message_id is None
    assert fired == [("message_failed", message.pk)]


@pytest.mark.django_db
def test_a_message_id_another_message_has_becomes_an_unknown_outcome(
    scripted: Simulator,
) -> None:
    first = services.send_sms(NUMBER, "First")
    SCRIPT.on("SENDMESSAGE", _send_reply(first.message_id or ""))
    second = services.send_sms(NUMBER, "Second")
    stored = Message.objects.get(pk=second.pk)
    assert stored.state == Message.State.UNKNOWN
    assert stored.error_code == "UNSTORABLE_REPLY"
    assert f"already belongs to message {first.pk}" in stored.error_text
    assert Message.objects.get(pk=first.pk).state == Message.State.ACCEPTED


@pytest.mark.django_db
def test_an_absurd_cost_is_not_stored_and_the_message_is_accepted(scripted: Simulator) -> None:
    SCRIPT.on("SENDMESSAGE", _send_reply("FLY-ABSURD-COST", cost="100000000"))
    message = services.send_sms(NUMBER, "Hi")
    stored = Message.objects.get(pk=message.pk)
    assert stored.state == Message.State.ACCEPTED
    assert stored.message_id == "FLY-ABSURD-COST"
    assert stored.cost is None
    assert ChannelStatus.objects.get(message=stored).cost is None


@pytest.mark.django_db(transaction=True)
def test_one_unstorable_reply_never_stops_a_sync_pass(scripted: Simulator) -> None:
    taken = services.send_sms(NUMBER, "Already sent")
    queued = [
        services.queue_message(NUMBER, channels="sms", sms={"text": f"Hi {i}"}) for i in range(3)
    ]
    Message.objects.filter(pk__in=[m.pk for m in queued]).update(
        retry_at=timezone.now(), attempts=1
    )
    sends = itertools.count()

    def send(body: Mapping[str, Any]) -> RawReply:
        if next(sends) == 1:  # the second queued message gets another message's id
            answer: RawReply = _send_reply(taken.message_id or "")(body)
            return answer
        return _passthrough(body)

    SCRIPT.on("SENDMESSAGE", send)
    call_command("smsfly_sync", verbosity=0)
    states = [Message.objects.get(pk=m.pk).state for m in queued]
    assert states == [Message.State.ACCEPTED, Message.State.UNKNOWN, Message.State.ACCEPTED]


def _passthrough(body: Mapping[str, Any]) -> RawReply:
    """Answer as the sandbox would."""
    answer: RawReply = get_simulator().respond(body).as_raw_reply()
    return answer


# -- the shared rate limit's cache down ----------------------------------------------------


@pytest.fixture
def redis_down(settings: Any) -> Iterator[None]:
    pytest.importorskip("redis")
    settings.CACHES = {
        **settings.CACHES,
        # Nothing listens on this port: every cache call fails to connect.
        "ratelimit": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:9/0",
            "OPTIONS": {"socket_connect_timeout": 0.2},
        },
    }
    settings.SMSFLY = {**settings.SMSFLY, "RATE_LIMIT_CACHE": "ratelimit", "SEND_RATE_LIMIT": 5}
    reset_rate_limiters()
    yield
    reset_rate_limiters()


@pytest.mark.django_db
def test_a_direct_send_with_the_rate_limit_cache_down_is_queued_not_raised(
    redis_down: None, caplog: pytest.LogCaptureFixture
) -> None:
    simulator = get_simulator()
    with caplog.at_level(logging.ERROR, logger="django_smsfly"):
        message = services.send_sms(NUMBER, "Hi")
    stored = Message.objects.get(pk=message.pk)
    assert stored.state == Message.State.QUEUED
    assert stored.error_code == "RATE_LIMIT_CACHE_DOWN"
    assert stored.attempts == 0
    assert stored.retry_at is not None
    assert simulator.requests_for("SENDMESSAGE") == []
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(lines) == 1
    assert "rate-limit cache 'ratelimit'" in lines[0]


@pytest.mark.django_db
def test_a_sync_pass_with_the_rate_limit_cache_down_claims_nothing(
    redis_down: None, caplog: pytest.LogCaptureFixture
) -> None:
    queued = [
        services.queue_message(NUMBER, channels="sms", sms={"text": f"Hi {i}"}) for i in range(3)
    ]
    Message.objects.update(retry_at=timezone.now(), attempts=1)
    with caplog.at_level(logging.ERROR, logger="django_smsfly"):
        for _ in range(2):
            services.run_sync_pass()
            Message.objects.update(retry_at=timezone.now())
    rows = list(Message.objects.order_by("pk").values_list("state", "attempts"))
    assert rows == [(Message.State.QUEUED, 1)] * len(queued)
    assert get_simulator().requests_for("SENDMESSAGE") == []
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 2  # one line per pass, not one per message


# -- a worker slower than its lease ----------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_worker_slower_than_its_lease_never_signals_both_failed_and_sent(
    scripted: Simulator, fired: list[tuple[str, Any]]
) -> None:
    """The lease ran out while the request was on its way: recovery gave the message up
    as unknown (message_failed). The reply then arrives: the truth is stored (accepted,
    with its id, polled from then on) but message_sent is not sent as well."""

    def slow_send(body: Mapping[str, Any]) -> RawReply:
        answer = _passthrough(body)
        later = timezone.now() + dt.timedelta(hours=1)
        services.recover_stale_sends(now=later)  # meanwhile, the sync loop gives up on it
        return answer

    SCRIPT.on("SENDMESSAGE", slow_send)
    message = services.send_sms(NUMBER, "Hi")
    stored = Message.objects.get(pk=message.pk)
    assert stored.state == Message.State.ACCEPTED
    assert stored.message_id
    assert stored.next_check_at is not None
    outcomes = [name for name, _ in fired if name != "status_changed"]
    assert outcomes == ["message_failed"]


# -- an operator attaches a known message id ---------------------------------------------


@pytest.fixture
def unknown_message(scripted: Simulator) -> tuple[Message, str]:
    """A message whose outcome is unknown though SMS-fly has it (the reply was lost)."""
    from django_smsfly.exceptions import SmsFlyTimeout

    def lost(body: Mapping[str, Any]) -> RawReply:
        _passthrough(body)
        raise SmsFlyTimeout("sandbox: no reply in time", action="SENDMESSAGE")

    SCRIPT.on("SENDMESSAGE", lost)
    message = services.send_sms(NUMBER, "Hi")
    SCRIPT.clear()
    assert message.state == Message.State.UNKNOWN
    return message, scripted.messages[-1].message_id


@pytest.mark.django_db(transaction=True)
def test_attaching_the_message_id_of_an_unknown_message_makes_it_tracked(
    unknown_message: tuple[Message, str], fired: list[tuple[str, Any]]
) -> None:
    message, real_id = unknown_message
    fired.clear()
    call_command("smsfly_sync", "--attach", str(message.pk), real_id, verbosity=0)
    stored = Message.objects.get(pk=message.pk)
    assert stored.state == Message.State.ACCEPTED
    assert stored.message_id == real_id
    assert stored.last_checked_at is not None  # checked at once
    assert channel_history(message, "sms")[0] == ("queued", "accepted")
    assert ("message_sent", message.pk) not in fired


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("value", "error"),
    [("   ", "blank"), ("y" * 65, "longer than 64")],
)
def test_attaching_an_unusable_message_id_is_refused(
    unknown_message: tuple[Message, str], value: str, error: str
) -> None:
    message, _real = unknown_message
    with pytest.raises(CommandError, match=error):
        call_command("smsfly_sync", "--attach", str(message.pk), value, verbosity=0)
    assert Message.objects.get(pk=message.pk).state == Message.State.UNKNOWN


@pytest.mark.django_db
def test_attaching_an_id_to_an_accepted_message_is_refused(scripted: Simulator) -> None:
    message = services.send_sms(NUMBER, "Hi")
    with pytest.raises(CommandError, match="outcome is unknown"):
        call_command("smsfly_sync", "--attach", str(message.pk), "FLY-OTHER", verbosity=0)
    assert Message.objects.get(pk=message.pk).message_id == message.message_id
