"""Background tasks, and how the app hands work to them.

The tasks are thin wrappers that take primary keys and strings only: all truth lives
in the app's tables, so a task carries just enough to find its rows, and running one
twice is harmless (sending claims the message atomically first; a sync batch polls
only the messages its claim token still holds). This module imports the work
(:mod:`django_smsfly.delivery`); the work never imports it.

Enqueue through :func:`enqueue_send` and :func:`enqueue_due` (or ``send_*(...,
defer=True)`` and ``smsfly_sync --enqueue``): they pick the backend from
``SMSFLY["TASK_BACKEND"]`` and enqueue after the surrounding transaction commits.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import Callable
from typing import Any

from django.db import transaction

from django_smsfly import taskcompat
from django_smsfly.conf import smsfly_settings
from django_smsfly.delivery import sending, sweep, syncing
from django_smsfly.taskcompat import define_task

logger = logging.getLogger("django_smsfly")

#: Messages per send task when many are enqueued at once (smsfly_send --defer, --enqueue).
SEND_TASK_BATCH = 100

#: Work of the layers above that every :func:`sync_due` pass does first, registered when
#: the app starts (the campaigns: start those whose time has come). Called without
#: arguments; one that fails is logged and the pass goes on. This module cannot import
#: those layers, so they register here.
SYNC_PASS_HOOKS: list[Callable[[], object]] = []


@define_task
def send_messages(message_pks: list[int]) -> dict[str, int]:
    """Send the given queued messages, each only if this worker claims it.

    Messages pushed back for a passing reason (HTTP 429, no connection) are enqueued
    again to run at their ``retry_at`` when the task backend can defer; otherwise
    ``smsfly_sync`` sends them when they are due. Returns how many ended in each state
    (for the engine's result store).
    """
    report = sending.dispatch_many(message_pks)
    alias = smsfly_settings.TASK_BACKEND
    if report.retry and taskcompat.supports_defer(alias):
        for run_after, pks in report.retry.items():
            enqueue_send(pks, run_after=run_after)
    return report.counts


@define_task
def sync_claimed(claim_token: str) -> dict[str, Any]:
    """Poll the statuses of the messages a ``smsfly_sync --enqueue`` claimed for this task."""
    return syncing.sync_claimed(claim_token).as_dict()


@define_task
def sync_due() -> dict[str, Any]:
    """One whole pass of ``smsfly_sync`` (for an engine's periodic scheduler)."""
    run_sync_hooks()
    return sweep.run_sync_pass().as_dict()


def run_sync_hooks() -> None:
    """Run the :data:`SYNC_PASS_HOOKS`; a failing one is logged, never fatal."""
    for hook in SYNC_PASS_HOOKS:
        try:
            hook()
        except Exception:
            logger.exception("A sync pass hook (%s) failed; the pass goes on.", hook)


def enqueue_send(message_pks: list[int], *, run_after: dt.datetime | None = None) -> None:
    """Enqueue tasks that send these queued messages, once the transaction commits.

    If enqueuing fails (the broker is down, say), the messages stay ``queued`` and
    ``smsfly_sync`` sends them after ``QUEUED_GRACE``: nothing is lost.
    """
    alias = smsfly_settings.TASK_BACKEND
    for start in range(0, len(message_pks), SEND_TASK_BATCH):
        chunk = list(message_pks[start : start + SEND_TASK_BATCH])
        transaction.on_commit(
            functools.partial(_enqueue_safely, send_messages, chunk, alias, run_after)
        )


def enqueue_due(
    *, batch_size: int | None = None, limit: int | None = None, send: bool = True
) -> tuple[int, int]:
    """Fan the due work out to task workers: ``(messages to send, messages to poll)``.

    Queued messages that are due are enqueued in send tasks (each send claims its
    message, so enqueuing one twice is harmless). Messages due for a status check are
    claimed here in batches — the claim makes them this run's alone — and each batch is
    enqueued as one :func:`sync_claimed` task. A batch whose task is lost is freed when
    its claim's lease runs out and is claimed again later.
    """
    alias = smsfly_settings.TASK_BACKEND
    taskcompat.get_backend(alias)
    batch_size = batch_size or smsfly_settings.SYNC_BATCH_SIZE
    to_send: list[int] = []
    if send:
        sweep.recover_stale_sends()
        to_send = sweep.due_pks(limit)
        enqueue_send(to_send)
    polled = 0
    while limit is None or polled < limit:
        size = batch_size if limit is None else min(batch_size, limit - polled)
        batch = syncing.claim_due(size)
        if not batch:
            break
        polled += len(batch)
        transaction.on_commit(
            functools.partial(_enqueue_safely, sync_claimed, batch[0].claim_token, alias, None)
        )
        if len(batch) < size:
            break
    return len(to_send), polled


def _enqueue_safely(
    task_obj: Any, argument: Any, alias: str, run_after: dt.datetime | None
) -> None:
    try:
        taskcompat.enqueue(task_obj, argument, alias=alias, run_after=run_after)
    except Exception:
        # The rows hold the truth: smsfly_sync will pick up what was not enqueued.
        logger.exception(
            "Could not enqueue %s on the task backend %r; smsfly_sync will take over.",
            getattr(task_obj, "name", task_obj),
            alias,
        )
