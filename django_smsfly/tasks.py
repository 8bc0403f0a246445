"""Background tasks: thin wrappers that take primary keys and strings only.

All truth lives in the app's tables, so a task carries just enough to find its rows,
and running one twice is harmless: sending claims the message atomically first, and a
sync batch polls only the messages its claim token still holds. Enqueue them through
:mod:`django_smsfly.services` (``send_*(..., defer=True)``, ``smsfly_sync
--enqueue``), which picks the backend from ``SMSFLY["TASK_BACKEND"]`` and enqueues after
the surrounding transaction commits.
"""

from __future__ import annotations

from typing import Any

from django_smsfly import services
from django_smsfly.taskcompat import define_task


@define_task
def send_messages(message_pks: list[int]) -> dict[str, int]:
    """Send the given queued messages, each only if this worker claims it.

    Returns how many ended in each state (for the engine's result store).
    """
    return services.dispatch_many(message_pks)


@define_task
def sync_claimed(claim_token: str) -> dict[str, Any]:
    """Poll the statuses of the messages a ``smsfly_sync --enqueue`` claimed for this task."""
    return services.sync_claimed(claim_token).as_dict()


@define_task
def sync_due() -> dict[str, Any]:
    """One whole pass of ``smsfly_sync`` (for an engine's periodic scheduler)."""
    return services.run_sync_pass().as_dict()
