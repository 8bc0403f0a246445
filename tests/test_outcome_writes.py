"""The outcome of a send is the only record of what SMS-fly did with a message: it must
survive a database connection lost between the reply and the write.

The finding: with PostgreSQL connections killed (or the server restarted) while sends
ran, 9 of 500, 4 of 500 and 5 of 400 accepted messages ended ``unknown`` /
``WORKER_LOST`` with their SMS-fly message id lost. Now the write is retried on a fresh
connection; one that still cannot be stored is logged at ERROR with what an operator
needs to repair it (``smsfly_sync --attach``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from django.db import OperationalError, connection, connections

from django_smsfly import services
from django_smsfly.backends.base import RawReply
from django_smsfly.backends.sandbox import Simulator, get_simulator
from django_smsfly.delivery import records
from django_smsfly.models import ChannelStatus, Message
from tests.scripted import SCRIPT

NUMBER = "380501234567"
KEY = "outcome-test-key-5f0c2a9b7d"

needs_postgres = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="needs PostgreSQL (set DATABASE_URL)"
)


@pytest.fixture
def scripted(settings: Any) -> Iterator[Simulator]:
    settings.SMSFLY = {
        **settings.SMSFLY,
        "BACKEND": "tests.scripted.ScriptedBackend",
        "API_KEY": KEY,
    }
    yield get_simulator()
    SCRIPT.clear()


def _admin_connection() -> Any:
    """A connection of its own (psycopg), to kill others' from outside Django."""
    import psycopg

    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    params.pop("prepare_threshold", None)
    return psycopg.connect(**params, autocommit=True)


def _backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        row = cursor.fetchone()
    assert row is not None
    return int(row[0])


def _answer(body: Mapping[str, Any]) -> RawReply:
    answer: RawReply = get_simulator().respond(body).as_raw_reply()
    return answer


@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_an_outcome_whose_connection_is_killed_after_the_reply_is_stored(
    scripted: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    def send_then_kill(body: Mapping[str, Any]) -> RawReply:
        answer = _answer(body)
        pid = _backend_pid()
        with _admin_connection() as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", [pid])
        return answer

    SCRIPT.on("SENDMESSAGE", send_then_kill)
    with caplog.at_level(logging.WARNING, logger="django_smsfly"):
        message = services.send_sms(NUMBER, "Hi")
    stored = Message.objects.get(pk=message.pk)
    assert stored.state == Message.State.ACCEPTED
    assert stored.message_id == scripted.messages[-1].message_id
    assert ChannelStatus.objects.get(message=stored).status == "accepted"
    assert any("new database connection" in r.getMessage() for r in caplog.records)


@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_an_outcome_is_stored_across_a_database_that_refuses_connections_for_a_while(
    scripted: Simulator,
) -> None:
    """As during a PostgreSQL restart: the connection dies and new ones are refused for
    a second and a half; the write waits it out."""
    name = connection.settings_dict["NAME"]

    def send_then_restart(body: Mapping[str, Any]) -> RawReply:
        answer = _answer(body)
        pid = _backend_pid()
        with _admin_connection_to("postgres") as admin:
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            admin.execute("SELECT pg_terminate_backend(%s)", [pid])

        def reopen() -> None:
            time.sleep(1.5)
            with _admin_connection_to("postgres") as admin:
                admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')

        threading.Thread(target=reopen).start()
        return answer

    SCRIPT.on("SENDMESSAGE", send_then_restart)
    try:
        message = services.send_sms(NUMBER, "Hi")
    finally:
        with _admin_connection_to("postgres") as admin:
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
    stored = Message.objects.get(pk=message.pk)
    assert stored.state == Message.State.ACCEPTED
    assert stored.message_id == scripted.messages[-1].message_id


def _admin_connection_to(dbname: str) -> Any:
    import psycopg

    params = connection.get_connection_params()
    for option in ("cursor_factory", "context", "prepare_threshold"):
        params.pop(option, None)
    params["dbname"] = dbname
    return psycopg.connect(**params, autocommit=True)


@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_no_accepted_message_is_lost_while_connections_are_killed_again_and_again(
    scripted: Simulator,
) -> None:
    """200 sends while another connection kills every other backend of the database
    every 200 ms: each send either fails before its request (nothing sent) or ends with
    its outcome stored; SMS-fly never has a message the database does not know."""
    name = connection.settings_dict["NAME"]
    stop = threading.Event()
    kills = 0

    def killer() -> None:
        nonlocal kills
        with _admin_connection_to("postgres") as admin:
            while not stop.wait(0.2):
                cursor = admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = %s AND pid <> pg_backend_pid()",
                    [name],
                )
                kills += sum(1 for (killed,) in cursor.fetchall() if killed)

    thread = threading.Thread(target=killer)
    thread.start()
    refused = 0
    try:
        for i in range(200):
            try:
                services.send_sms(NUMBER, f"Message {i}")
            except OperationalError:
                refused += 1  # the INSERT itself failed: nothing was sent
                connection.close()
    finally:
        stop.set()
        thread.join()
        connections.close_all()
    sent = {m.message_id for m in scripted.messages}
    accepted = set(
        Message.objects.filter(state=Message.State.ACCEPTED).values_list("message_id", flat=True)
    )
    assert kills > 0
    assert sent == accepted  # every message SMS-fly has is stored with its id
    assert len(sent) + refused == 200
    # A refused send whose INSERT committed though its reply was lost leaves a row
    # "sending" with no request made: recovery treats it as possibly sent (never twice).
    assert Message.objects.filter(state=Message.State.SENDING).count() <= refused
    assert not Message.objects.filter(state=Message.State.UNKNOWN).exists()


@pytest.mark.django_db(transaction=True)
def test_an_outcome_that_cannot_be_stored_at_all_is_logged_for_repair(
    scripted: Simulator, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(records, "OUTCOME_WRITE_BACKOFF", 0.0)

    def database_gone(*args: Any, **kwargs: Any) -> Any:
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(ChannelStatus.objects, "bulk_create", database_gone)
    with caplog.at_level(logging.ERROR, logger="django_smsfly"), pytest.raises(OperationalError):
        services.send_sms(NUMBER, "Hi")
    message = Message.objects.get()
    message_id = scripted.messages[-1].message_id
    [line] = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert f"Message {message.pk}:" in line
    assert message_id in line
    assert "accepted" in line
    assert KEY not in caplog.text
    # The row still says "sending"; once its lease runs out it becomes unknown, and the
    # id from the log line repairs it.
    assert message.state == Message.State.SENDING
    monkeypatch.undo()
    assert message.lease_until is not None
    services.recover_stale_sends(now=message.lease_until + records.send_lease())
    repaired = services.attach_message_id(message.pk, message_id)
    assert repaired.state == Message.State.ACCEPTED
    assert repaired.message_id == message_id


@pytest.mark.django_db(transaction=True)
def test_a_claim_whose_read_back_fails_gives_the_message_back(
    scripted: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found by the Celery battery: the connection broke right after the claim (and its
    request mark) committed; the message was later given up as possibly sent though no
    request had left. Now the claim is released: queued again, the attempt uncounted."""
    message = services.queue_message(NUMBER, channels="sms", sms={"text": "Hi"})
    real_get = type(Message.objects).get

    def broken_once(manager: Any, *args: Any, **kwargs: Any) -> Any:
        monkeypatch.setattr(type(Message.objects), "get", real_get)
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(type(Message.objects), "get", broken_once)
    with pytest.raises(OperationalError):
        services.dispatch(message.pk)
    stored = Message.objects.get(pk=message.pk)
    assert (stored.state, stored.attempts, stored.request_started_at) == (
        Message.State.QUEUED,
        0,
        None,
    )
    assert scripted.requests_for("SENDMESSAGE") == []
    assert services.dispatch(message.pk).state == Message.State.ACCEPTED


@pytest.mark.django_db(transaction=True)
def test_one_database_error_does_not_stop_the_rest_of_a_send_task(
    scripted: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django_smsfly import tasks
    from django_smsfly.delivery import sending

    pks = [
        services.queue_message(NUMBER, channels="sms", sms={"text": f"Hi {i}"}).pk
        for i in range(3)
    ]
    real_dispatch = sending.dispatch

    def dispatch(pk: int, **kwargs: Any) -> Message:
        if pk == pks[1]:
            raise OperationalError("terminating connection due to administrator command")
        return real_dispatch(pk, **kwargs)

    monkeypatch.setattr(sending, "dispatch", dispatch)
    counts = tasks.send_messages.call(pks)
    assert counts == {"accepted": 2, "error": 1}
    states = [Message.objects.get(pk=pk).state for pk in pks]
    assert states == [Message.State.ACCEPTED, Message.State.QUEUED, Message.State.ACCEPTED]
