"""Background sending and polling: defer, tasks, leases and recovery, fan-out, shared limits.

These run in-process on the task frameworks' immediate and dummy backends; the real
engines (django-tasks-db workers on PostgreSQL, RQ on Redis) are in test_engines.py.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.utils import timezone

from django_smsfly import services, taskcompat, tasks
from django_smsfly.backends.sandbox import Fault, Simulator
from django_smsfly.conf import smsfly_settings
from django_smsfly.delivery import sending
from django_smsfly.models import Message
from django_smsfly.ratelimit import reset_rate_limiters

pytestmark = pytest.mark.django_db(transaction=True)


def _sends(sandbox: Simulator) -> list[Any]:
    return [r for r in sandbox.requests if r.action == "SENDMESSAGE"]


def _run(result: Any) -> Any:
    """Run an enqueued task's function the way a worker would."""
    return result.task.call(*result.args, **result.kwargs)


# -- defer=True ----------------------------------------------------------------------------


def test_defer_on_the_default_immediate_backend_sends_at_once(sandbox: Simulator) -> None:
    message = services.send_sms("380501234567", "Hi", defer=True)
    assert message.state == Message.State.ACCEPTED
    assert message.message_id
    assert len(_sends(sandbox)) == 1


def test_defer_queues_and_enqueues_one_task_with_the_primary_key(
    sandbox: Simulator, dummy_tasks: Any
) -> None:
    message = services.send_viber("380501234567", text="Hi", sms_text="Hi by SMS", defer=True)
    assert message.state == Message.State.QUEUED
    assert message.attempts == 0
    assert _sends(sandbox) == []
    [result] = dummy_tasks.results
    assert result.args == [[message.pk]]
    assert result.task.name == "send_messages"
    assert _run(result) == {"accepted": 1}
    message.refresh_from_db()
    assert message.state == Message.State.ACCEPTED
    assert message.channels == "viber,sms"
    # A second run of the same task (a redelivery) sends nothing.
    assert _run(result) == {"accepted": 1}
    assert len(_sends(sandbox)) == 1


def test_defer_inside_a_transaction_enqueues_only_after_the_commit(
    sandbox: Simulator, dummy_tasks: Any
) -> None:
    with transaction.atomic():
        message = services.send_sms("380501234567", "Hi", defer=True)
        assert dummy_tasks.results == []
    assert len(dummy_tasks.results) == 1

    def send_then_fail() -> None:
        with transaction.atomic():
            services.send_sms("380501234568", "Hi", defer=True)
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):
        send_then_fail()
    assert len(dummy_tasks.results) == 1  # the rolled-back message enqueued nothing
    assert Message.objects.get().pk == message.pk


def test_defer_with_an_unknown_task_backend_refuses_before_writing(settings: Any) -> None:
    settings.SMSFLY = {**settings.SMSFLY, "TASK_BACKEND": "workers"}
    with pytest.raises(ImproperlyConfigured, match="workers"):
        services.send_sms("380501234567", "Hi", defer=True)
    assert not Message.objects.exists()


def test_a_failed_enqueue_loses_nothing(
    sandbox: Simulator,
    dummy_tasks: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: Any,
    settings: Any,
) -> None:
    def broker_down(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("broker down")

    monkeypatch.setattr(taskcompat, "enqueue", broker_down)
    with caplog.at_level(logging.ERROR, logger="django_smsfly"):
        message = services.send_sms("380501234567", "Hi", defer=True)
    assert message.state == Message.State.QUEUED
    assert "smsfly_sync will take over" in caplog.text
    # Not yet: the task has QUEUED_GRACE to run. After it, smsfly_sync sends it.
    assert services.send_due() == 0
    settings.SMSFLY = {**settings.SMSFLY, "QUEUED_GRACE": 0}
    assert services.send_due() == 1
    message.refresh_from_db()
    assert message.state == Message.State.ACCEPTED
    assert len(_sends(sandbox)) == 1


def test_rate_limited_in_a_task_is_enqueued_again_for_its_retry_time(
    sandbox: Simulator, dummy_tasks: Any
) -> None:
    message = services.send_sms("380501234567", "Hi", defer=True)
    sandbox.inject(Fault.RATE_LIMITED)
    [first] = dummy_tasks.results
    assert _run(first) == {"queued": 1}
    message.refresh_from_db()
    assert message.retry_at is not None
    [_, retry] = dummy_tasks.results
    assert retry.args == [[message.pk]]
    assert retry.task.run_after == message.retry_at
    Message.objects.filter(pk=message.pk).update(retry_at=timezone.now())
    assert _run(retry) == {"accepted": 1}


# -- leases and dead workers ---------------------------------------------------------------


def _recovered_from_a_dead_worker(*, started: bool) -> tuple[Message, services.RecoveryReport]:
    """A deferred send claimed by a worker that died (its lease ran out), before or after
    its request left; recovered. The message as recovery left it, and the report."""
    message = services.send_sms("380501234567", "Hi", defer=True)
    past = timezone.now() - dt.timedelta(seconds=1)
    Message.objects.filter(pk=message.pk).update(
        state=Message.State.SENDING,
        attempts=1,
        claim_token="dead-worker",
        lease_until=past,
        request_started_at=past if started else None,
    )
    report = services.recover_stale_sends()
    message.refresh_from_db()
    return message, report


def test_a_worker_that_died_before_the_request_left_is_retried(
    sandbox: Simulator, dummy_tasks: Any, failures: list[dict[str, Any]]
) -> None:
    message, report = _recovered_from_a_dead_worker(started=False)
    assert (report.requeued, report.unknown) == (1, 0)
    assert message.state == Message.State.QUEUED
    assert message.error_code == services.WORKER_LOST
    assert services.send_due() == 1
    message.refresh_from_db()
    assert message.state == Message.State.ACCEPTED
    assert message.attempts == 2
    assert len(_sends(sandbox)) == 1
    assert failures == []


def test_a_worker_that_died_after_the_request_left_makes_it_unknown(
    sandbox: Simulator, dummy_tasks: Any, failures: list[dict[str, Any]]
) -> None:
    message, report = _recovered_from_a_dead_worker(started=True)
    assert (report.requeued, report.unknown) == (0, 1)
    assert message.state == Message.State.UNKNOWN
    assert message.error_code == "WORKER_LOST"
    assert "outcome is unknown" in message.error_text
    [call] = failures
    assert call["message"].pk == message.pk
    assert call["error"].error_code == "WORKER_LOST"
    # Never re-sent automatically, however often the recovery and the sync run.
    assert services.recover_stale_sends().unknown == 0
    assert services.send_due() == 0
    assert _sends(sandbox) == []


def test_a_live_lease_is_left_alone(dummy_tasks: Any) -> None:
    message = services.send_sms("380501234567", "Hi", defer=True)
    Message.objects.filter(pk=message.pk).update(
        state=Message.State.SENDING,
        claim_token="busy-worker",
        lease_until=timezone.now() + dt.timedelta(minutes=1),
    )
    report = services.recover_stale_sends()
    assert (report.requeued, report.unknown) == (0, 0)
    assert Message.objects.get().state == Message.State.SENDING


def test_a_worker_waits_for_its_send_slot_before_it_claims(
    sandbox: Simulator, dummy_tasks: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker stalled while waiting for a send slot holds no claim: the message stays
    queued (no attempt counted, no lease to run out), and is claimed and sent once after."""
    message = services.send_sms("380501234567", "Hi", defer=True)
    seen: list[Any] = []

    class StallingLimiter:
        def acquire(self) -> float:
            seen.append(
                Message.objects.values_list("state", "attempts", "claim_token").get(pk=message.pk)
            )
            return 0.0

    monkeypatch.setattr(sending, "send_limiter", lambda rate=None: StallingLimiter())
    stored = services.dispatch(message.pk)
    assert seen == [(Message.State.QUEUED, 0, "")]
    assert stored.state == Message.State.ACCEPTED
    assert stored.attempts == 1
    assert len(_sends(sandbox)) == 1


def test_the_request_mark_is_written_before_the_request(
    sandbox: Simulator, dummy_tasks: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    message = services.send_sms("380501234567", "Hi", defer=True)
    seen: list[Any] = []
    real_request = sending.request

    def spy(msg: Message) -> None:
        seen.append(Message.objects.values_list("state", "request_started_at").get(pk=msg.pk))
        real_request(msg)

    monkeypatch.setattr(sending, "request", spy)
    services.dispatch(message.pk)
    [(state, started)] = seen
    assert state == Message.State.SENDING
    assert started is not None


# -- resend --------------------------------------------------------------------------------


def test_resend_a_failed_message(sandbox: Simulator) -> None:
    sandbox.balance = 0
    message = services.send_sms("380501234567", "Hi")
    assert message.state == Message.State.FAILED
    sandbox.balance = 100
    resent = services.resend(message.pk)
    assert resent is not None
    assert resent.pk == message.pk
    assert resent.state == Message.State.ACCEPTED
    assert resent.error_code == ""
    history = [(c.old_status, c.new_status, c.raw_status) for c in resent.history.all()]
    assert history[:2] == [
        ("queued", "failed", "INSUFFICIENTFUNDS"),
        ("failed", "queued", "RESEND"),
    ]
    assert [r.http_status for r in _sends(sandbox)] == [400, 200]
    assert len(sandbox.messages) == 1


def test_resend_an_unknown_message_needs_explicit_consent(sandbox: Simulator) -> None:
    sandbox.inject(Fault.TIMEOUT)
    message = services.send_sms("380501234567", "Hi")
    assert message.state == Message.State.UNKNOWN
    assert services.resend(message.pk) is None
    assert Message.objects.get().state == Message.State.UNKNOWN
    resent = services.resend(message.pk, allow_unknown=True)
    assert resent is not None
    assert resent.state == Message.State.ACCEPTED


def test_resend_refuses_messages_that_were_sent(sandbox: Simulator) -> None:
    message = services.send_sms("380501234567", "Hi")
    assert services.resend(message.pk, allow_unknown=True) is None
    assert len(_sends(sandbox)) == 1


def test_resend_in_the_background(sandbox: Simulator, dummy_tasks: Any) -> None:
    sandbox.balance = 0
    message = services.send_sms("380501234567", "Hi")
    sandbox.balance = 100
    resent = services.resend(message.pk, defer=True)
    assert resent is not None
    assert resent.state == Message.State.QUEUED
    [result] = dummy_tasks.results
    assert _run(result) == {"accepted": 1}


# -- fan-out -------------------------------------------------------------------------------


def test_enqueue_due_fans_out_sends_and_claimed_sync_batches(
    sandbox: Simulator, dummy_tasks: Any, settings: Any
) -> None:
    settings.SMSFLY = {**settings.SMSFLY, "QUEUED_GRACE": 0}
    queued = [
        services.queue_message(f"38050123450{i}", channels="sms", sms={"text": "x"})
        for i in range(3)
    ]
    sent = [services.send_sms(f"38050765432{i}", "y") for i in range(5)]
    Message.objects.filter(pk__in=[m.pk for m in sent]).update(next_check_at=timezone.now())
    to_send, to_poll = services.enqueue_due(batch_size=2)
    assert (to_send, to_poll) == (3, 5)
    send_tasks = [r for r in dummy_tasks.results if r.task.name == "send_messages"]
    sync_tasks = [r for r in dummy_tasks.results if r.task.name == "sync_claimed"]
    assert [r.args for r in send_tasks] == [[[m.pk for m in queued]]]
    assert len(sync_tasks) == 3  # batches of 2, 2 and 1
    # The claimed messages are this run's: a second fan-out finds nothing to poll.
    assert services.enqueue_due(batch_size=2) == (3, 0)
    polled = sum(_run(r)["checked"] for r in sync_tasks)
    assert polled == 5
    status_requests = [r for r in sandbox.requests if r.action == "GETMESSAGESTATUS"]
    assert len(status_requests) == 5
    assert len({r.body["data"]["messageID"] for r in status_requests}) == 5
    assert not Message.objects.exclude(claim_token="").exists()
    # A sync task that runs twice polls nothing the second time (its claim is spent).
    assert _run(sync_tasks[0])["checked"] == 0


def test_tasks_take_primary_keys_and_strings_only(dummy_tasks: Any) -> None:
    message = services.send_sms("380501234567", "Hi", defer=True)
    services.enqueue_due()
    for result in dummy_tasks.results:
        for argument in result.args:
            assert isinstance(argument, str | list)
            if isinstance(argument, list):
                assert all(isinstance(pk, int) for pk in argument)
    assert tasks.send_messages.name == "send_messages"
    assert message.pk in dummy_tasks.results[0].args[0]


# -- shared rate limit ---------------------------------------------------------------------


def test_shared_limiter_gives_every_process_its_own_evenly_spaced_slots(
    settings: Any,
) -> None:
    """Two limiters on one cache stand for two processes: their slots never coincide."""
    from django_smsfly.ratelimit import SharedRateLimiter

    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    now = [1_000_000.0]
    starts: list[float] = []

    def sleep(seconds: float) -> None:
        starts.append(now[0] + seconds)

    workers = [
        SharedRateLimiter(10, cache_alias="default", name="t", clock=lambda: now[0], sleep=sleep)
        for _ in range(2)
    ]
    for i in range(10):
        workers[i % 2].acquire()
    # 10 requests at 10/s from two workers at the same instant: one slot each, 0.1 s
    # apart (the first slot starts now, so it needs no sleep).
    slots = sorted([now[0], *starts])
    assert len(slots) == 10
    gaps = [round(b - a, 6) for a, b in itertools.pairwise(slots)]
    assert gaps == [0.1] * 9


def test_send_rate_limit_paces_direct_sends(
    sandbox: Simulator, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.SMSFLY = {**settings.SMSFLY, "SEND_RATE_LIMIT": 5}
    reset_rate_limiters()
    waits: list[float] = []
    limiter = sending.send_limiter()
    real_acquire = limiter.acquire

    def acquire() -> float:
        waited = real_acquire()
        waits.append(waited)
        return waited

    monkeypatch.setattr(limiter, "acquire", acquire)
    for i in range(3):
        services.send_sms(f"38050123456{i}", "Hi")
    assert len(waits) == 3
    assert sum(waits) == pytest.approx(0.4, abs=0.15)  # 2 gaps of 0.2 s
    reset_rate_limiters()


# -- commands ------------------------------------------------------------------------------


def _command(name: str, *args: str) -> str:
    import io

    from django.core.management import call_command

    out = io.StringIO()
    call_command(name, *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_smsfly_send_defer_queues_every_row_and_enqueues_batches(
    sandbox: Simulator, dummy_tasks: Any, tmp_path: Any
) -> None:
    rows = "\n".join(f"38067{i + 1000:07d},Hello {i}" for i in range(250))
    path = tmp_path / "list.csv"
    path.write_text(f"recipient,name\n{rows}\n", encoding="utf-8")
    out = _command("smsfly_send", "--csv", str(path), "--text", "Hi {name}", "--defer")
    assert "250 rows: 250 handed to the task workers" in out
    assert Message.objects.filter(state=Message.State.QUEUED).count() == 250
    assert _sends(sandbox) == []
    assert [len(r.args[0]) for r in dummy_tasks.results] == [100, 100, 50]
    for result in dummy_tasks.results:
        _run(result)
    assert Message.objects.filter(state=Message.State.ACCEPTED).count() == 250
    assert len(_sends(sandbox)) == 250
    # Run again: every row is skipped, nothing new is enqueued or sent.
    dummy_tasks.clear()
    out = _command("smsfly_send", "--csv", str(path), "--text", "Hi {name}", "--defer")
    assert "250 skipped" in out
    assert dummy_tasks.results == []
    assert len(_sends(sandbox)) == 250


def test_smsfly_send_defer_resumed_enqueues_what_was_left_queued(
    sandbox: Simulator, dummy_tasks: Any, tmp_path: Any
) -> None:
    path = tmp_path / "list.csv"
    path.write_text(
        "recipient\n" + "".join(f"38067{i + 1000:07d}\n" for i in range(30)), encoding="utf-8"
    )
    _command("smsfly_send", "--csv", str(path), "--text", "Hi", "--defer", "--limit", "10")
    [first] = dummy_tasks.results
    _run(first)  # the first 10 are sent
    dummy_tasks.clear()
    # The workers never got the next run's tasks (say the broker lost them) ...
    _command("smsfly_send", "--csv", str(path), "--text", "Hi", "--defer", "--limit", "20")
    dummy_tasks.clear()
    # ... so running the file again enqueues the 10 still queued and the last 10.
    out = _command("smsfly_send", "--csv", str(path), "--text", "Hi", "--defer")
    assert "30 rows: 20 handed to the task workers, 10 skipped as already sent" in out
    enqueued = [pk for r in dummy_tasks.results for pk in r.args[0]]
    assert len(enqueued) == 20
    for result in dummy_tasks.results:
        _run(result)
    assert Message.objects.filter(state=Message.State.ACCEPTED).count() == 30
    sent_to = [r.body["data"]["recipient"] for r in _sends(sandbox)]
    assert len(sent_to) == len(set(sent_to)) == 30


def test_smsfly_sync_enqueue_hands_the_due_work_to_workers(
    sandbox: Simulator, dummy_tasks: Any
) -> None:
    for i in range(3):
        services.send_sms(f"38050765432{i}", "y")
    Message.objects.update(next_check_at=timezone.now())
    out = _command("smsfly_sync", "--enqueue", "--batch-size", "2")
    assert "Enqueued 0 to send and 3 to check." in out
    assert [r.task.name for r in dummy_tasks.results] == ["sync_claimed", "sync_claimed"]
    assert len(_sends(sandbox)) == 3
    assert not [r for r in sandbox.requests if r.action == "GETMESSAGESTATUS"]


def test_recovery_never_requeues_a_message_marked_after_it_was_listed(dummy_tasks: Any) -> None:
    """The worker marks its request between the recovery's SELECT and its UPDATE, and
    its clock is behind by more than the lease: the message must not be queued again
    (its request may be on its way)."""
    from django.db import connection

    message = services.queue_message("380501234567", channels="sms", sms={"text": "Hi"})
    recoverer_now = timezone.now()
    lease = dt.timedelta(seconds=smsfly_settings.SEND_LEASE)
    worker_now = recoverer_now - lease - dt.timedelta(seconds=10)
    Message.objects.filter(pk=message.pk).update(
        state=Message.State.SENDING, attempts=1, claim_token="w", lease_until=worker_now
    )
    marked: list[bool] = []

    def mark_after_listing(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        result = execute(sql, params, many, context)
        if not marked and sql.lstrip().upper().startswith("SELECT") and "lease_until" in sql:
            marked.append(True)
            Message.objects.filter(pk=message.pk, claim_token="w").update(
                request_started_at=worker_now, lease_until=worker_now + lease
            )
        return result

    with connection.execute_wrapper(mark_after_listing):
        services.recover_stale_sends(now=recoverer_now)
    message.refresh_from_db()
    assert marked
    assert message.request_started_at is not None
    assert message.state != Message.State.QUEUED
