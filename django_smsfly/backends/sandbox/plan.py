"""The status plan of a sandbox message, carried in its id.

A message's statuses are a pure function of its id and the time: the id encodes when it
was sent, its channels, each channel's ttl, its outcome and the speed, so any process
running a sandbox answers GETMESSAGESTATUS for ids another process issued.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass

from django_smsfly.backends.sandbox.outcomes import Outcome
from django_smsfly.backends.sandbox.wire import CHANNELS, SMS, VIBER

__all__ = ["UNIQUE_BITS", "MessagePlan"]

# Simulated seconds after a channel starts (divided by speed for real seconds).
_SMS_STEPS = ((1.0, "INPROGRESS"), (3.0, "SENT"))
_SMS_FINAL_AT = 6.0
_VIBER_STEPS = ((2.0, "SENT"),)
_VIBER_FINAL_AT = 5.0
_VIBER_VIEWED_AT = 15.0
_STOP_AT = 1.0
# Float arithmetic must not keep a status from appearing at exactly its moment.
_EPSILON = 1e-6

_ID_RE = re.compile(r"FAPI[0-9A-F]{32}")
_CHANNEL_CODES: dict[tuple[str, ...], int] = {
    (SMS,): 1,
    (VIBER,): 2,
    (VIBER, SMS): 3,
    (SMS, VIBER): 4,
}
_OUTCOME_CODES: dict[Outcome, int] = {
    Outcome.DELIVERED: 0,
    Outcome.UNDELIVERED: 1,
    Outcome.NO_VIBER: 2,
    Outcome.EXPIRED: 3,
    Outcome.STOPPED: 4,
}
#: Bits of an id that only make it one of a kind (a counter a simulator keeps).
UNIQUE_BITS = 28
# Field widths in bits, most significant first; 128 bits = 32 hex digits.
_ID_FIELDS = (
    ("ms", 44),
    ("channels", 3),
    ("outcome", 3),
    ("sms_ttl", 11),
    ("viber_ttl", 11),
    ("speed", 20),  # hundredths: 0.01 to 10485.75
    ("unique", UNIQUE_BITS),
    ("check", 8),
)
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


def _checksum(bits120: int) -> int:
    return hashlib.blake2b(bits120.to_bytes(15, "big"), digest_size=1).digest()[0]


@dataclass(frozen=True)
class MessagePlan:
    """Everything that decides a message's statuses, as carried in its id.

    An id is ``FAPI`` and 32 hex digits: send time in milliseconds, channels, outcome,
    each channel's ttl, speed (in hundredths), 28 unique bits and an 8-bit checksum.
    """

    sent_at: dt.datetime
    channels: tuple[str, ...]
    outcome: Outcome
    #: Minutes per channel.
    ttl: Mapping[str, int]
    speed: float

    def encode(self, unique: int) -> str:
        """The message id for this plan, with ``unique`` (28 bits) making it one of a kind."""
        values = {
            "ms": (self.sent_at - _EPOCH) // dt.timedelta(milliseconds=1),
            "channels": _CHANNEL_CODES[self.channels],
            "outcome": _OUTCOME_CODES[self.outcome],
            "sms_ttl": self.ttl.get(SMS, 0),
            "viber_ttl": self.ttl.get(VIBER, 0),
            "speed": round(self.speed * 100),
            "unique": unique % (1 << UNIQUE_BITS),
            "check": 0,
        }
        number = 0
        for name, width in _ID_FIELDS:
            number = (number << width) | values[name]
        number |= _checksum(number >> 8)
        return f"FAPI{number:032X}"

    @classmethod
    def decode(cls, message_id: object) -> MessagePlan | None:
        """The plan inside an id the sandbox issued, or ``None`` for any other value."""
        if not isinstance(message_id, str) or not _ID_RE.fullmatch(message_id):
            return None
        number = int(message_id[4:], 16)
        if _checksum(number >> 8) != number & 0xFF:
            return None
        values: dict[str, int] = {}
        for name, width in reversed(_ID_FIELDS):
            values[name] = number & ((1 << width) - 1)
            number >>= width
        channels = next((k for k, v in _CHANNEL_CODES.items() if v == values["channels"]), None)
        outcome = next((k for k, v in _OUTCOME_CODES.items() if v == values["outcome"]), None)
        if channels is None or outcome is None or values["speed"] == 0:
            return None
        ttl = {ch: values[f"{ch}_ttl"] for ch in channels}
        if any(not 1 <= minutes <= 1440 for minutes in ttl.values()):
            return None
        if any(values[f"{ch}_ttl"] for ch in CHANNELS if ch not in channels):
            return None
        sent_at = _EPOCH + dt.timedelta(milliseconds=values["ms"])
        return cls(sent_at, channels, outcome, ttl, values["speed"] / 100)

    def timeline(self) -> dict[str, list[tuple[float, str]]]:
        """Each channel's statuses with the simulated second each one begins."""
        events: dict[str, list[tuple[float, str]]] = {}
        start = 0.0  # when the channel now trying began (a fallback starts on failure)
        delivered_at: float | None = None
        for channel in self.channels:
            steps = events[channel] = [(0.0, "ACCEPTD")]
            if self.outcome is Outcome.STOPPED:
                steps.append((_STOP_AT, "STOPED"))
                continue
            if delivered_at is not None:
                # An earlier channel got through: this one is not needed.
                steps.append((delivered_at, "REFUND"))
                continue
            progress, final_at = (
                (_SMS_STEPS, _SMS_FINAL_AT) if channel == SMS else (_VIBER_STEPS, _VIBER_FINAL_AT)
            )
            if self.outcome is Outcome.EXPIRED:
                end = start + self.ttl[channel] * 60
                steps += [(start + at, status) for at, status in progress if start + at < end]
                steps.append((end, "EXPIRED"))
                start = end
                continue
            steps += [(start + at, status) for at, status in progress]
            fails = self.outcome is Outcome.UNDELIVERED or (
                self.outcome is Outcome.NO_VIBER and channel == VIBER
            )
            if fails:
                steps.append((start + final_at, "UNDELIV"))
                start += final_at
                continue
            delivered_at = start + final_at
            steps.append((delivered_at, "DELIVRD"))
            if channel == VIBER:
                steps.append((start + _VIBER_VIEWED_AT, "VIEWED"))
        return events

    def moment(self, simulated_seconds: float) -> dt.datetime:
        """The real time a simulated second after the send falls on."""
        return self.sent_at + dt.timedelta(seconds=simulated_seconds / self.speed)

    def status_at(self, at: dt.datetime) -> dict[str, tuple[str, dt.datetime]]:
        """Each channel's status and the time it was reached, as of ``at``."""
        elapsed = (at - self.sent_at).total_seconds() * self.speed + _EPSILON
        result: dict[str, tuple[str, dt.datetime]] = {}
        for channel, steps in self.timeline().items():
            began, status = steps[0]
            for step in steps:  # in time order
                if step[0] <= elapsed:
                    began, status = step
            result[channel] = (status, self.moment(began))
        return result
