"""When a message's status is asked for next, and when asking stops.

Young messages change fast and old ones rarely, so the delay between checks grows with
a message's age; polling stops once every channel is final, or a while after the
message's lifetime ran out without a final status.
"""

from __future__ import annotations

import datetime as dt

from django_smsfly.models import Message

#: Polling stops this long after a message's lifetime ran out without a final status.
POLL_GRACE = dt.timedelta(hours=6)
#: The longest lifetime SMS-fly allows, assumed when a message did not set one.
MAX_TTL = dt.timedelta(minutes=1440)
#: How long a sync's claim on a message lasts; a sync that dies frees it after this.
SYNC_LEASE = dt.timedelta(minutes=5)

# (age below which, delay between checks): young messages change fast, old ones rarely.
_CHECK_SCHEDULE: tuple[tuple[dt.timedelta, dt.timedelta], ...] = (
    (dt.timedelta(minutes=2), dt.timedelta(seconds=10)),
    (dt.timedelta(minutes=10), dt.timedelta(seconds=30)),
    (dt.timedelta(hours=1), dt.timedelta(minutes=2)),
    (dt.timedelta(hours=6), dt.timedelta(minutes=10)),
)
_CHECK_SLOWEST = dt.timedelta(minutes=30)


def next_check_delay(age: dt.timedelta) -> dt.timedelta:
    """How long to wait before asking again about a message sent ``age`` ago."""
    for below, delay in _CHECK_SCHEDULE:
        if age < below:
            return delay
    return _CHECK_SLOWEST


def first_check(now: dt.datetime) -> dt.datetime:
    """When a message accepted ``now`` is first asked about."""
    return now + next_check_delay(dt.timedelta(0))


def lifetime(message: Message) -> dt.timedelta:
    """The longest lifetime (``ttl``) of the message's channels."""
    return max(
        (dt.timedelta(minutes=block.get("ttl") or 1440) for block in message.content.values()),
        default=MAX_TTL,
    )


def polling_deadline(message: Message) -> dt.datetime:
    """After this, a message without a final status is no longer asked about."""
    return (message.sent_at or message.created_at) + lifetime(message) + POLL_GRACE
