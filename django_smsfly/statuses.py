"""Message statuses as SMS-fly reports them.

:class:`Status` is the raw per-channel status from the API. The document spells some
values differently from the live service (``ACCEPTED``/``ACCEPTD``,
``DELIVERED``/``DELIVRD``, ``INSUFFICIENTFUND``/``INSUFFICIENTFUNDS``...); every known
spelling maps to one member, and a value nobody has seen before becomes
:attr:`Status.UNKNOWN` while the reply keeps the raw string, so a new status on the
server never crashes a client.
"""

from __future__ import annotations

import enum


class Status(str, enum.Enum):
    """A raw SMS-fly channel status, in the spelling the live API uses."""

    ACCEPTD = "ACCEPTD"
    PENDING = "PENDING"
    INPROGRESS = "INPROGRESS"
    SENT = "SENT"
    DELIVRD = "DELIVRD"
    VIEWED = "VIEWED"
    EXPIRED = "EXPIRED"
    UNDELIV = "UNDELIV"
    STOPED = "STOPED"
    ERROR = "ERROR"
    INSUFFICIENTFUND = "INSUFFICIENTFUND"
    MODERATION = "MODERATION"
    RESERVED = "RESERVED"
    REFUND = "REFUND"
    #: A status this version of django-smsfly does not know; the raw text is kept.
    UNKNOWN = "UNKNOWN"

    @classmethod
    def parse(cls, raw: object) -> Status:
        """Return the member for a wire value, accepting known aliases; never raises."""
        if not isinstance(raw, str):
            return cls.UNKNOWN
        key = raw.strip().upper()
        key = STATUS_ALIASES.get(key, key)
        try:
            return cls(key)
        except ValueError:
            return cls.UNKNOWN

    def __str__(self) -> str:
        return self.value


#: Other spellings seen in the document, older API versions and the vendor's code.
STATUS_ALIASES: dict[str, str] = {
    "ACCEPTED": "ACCEPTD",
    "ACCEPT": "ACCEPTD",
    "DELIVERED": "DELIVRD",
    "UNDELIVERED": "UNDELIV",
    "UNDELIVRD": "UNDELIV",
    "STOPPED": "STOPED",
    "INSUFFICIENTFUNDS": "INSUFFICIENTFUND",
    "IN_PROGRESS": "INPROGRESS",
}


class DeliveryStatus(str, enum.Enum):
    """The normalized status of a channel or of a whole message.

    Raw statuses (:class:`Status`) map onto this small set; each member knows whether it
    is final (no further change is expected, polling stops) and whether it is a success.
    Members are ordered by :attr:`rank`: a channel only ever moves to a higher rank.
    """

    #: Written in the database, not yet accepted by SMS-fly.
    QUEUED = "queued"
    #: Accepted by SMS-fly (ACCEPTD).
    ACCEPTED = "accepted"
    #: Waiting or being processed (PENDING, INPROGRESS, MODERATION, RESERVED).
    IN_PROGRESS = "in_progress"
    #: Handed to the operator or Viber (SENT).
    SENT = "sent"
    #: Delivered to the phone (DELIVRD).
    DELIVERED = "delivered"
    #: Opened by the recipient (VIEWED; Viber only).
    VIEWED = "viewed"
    #: Not delivered (UNDELIV).
    UNDELIVERED = "undelivered"
    #: Its lifetime ran out before delivery (EXPIRED).
    EXPIRED = "expired"
    #: Stopped by SMS-fly (STOPED).
    STOPPED = "stopped"
    #: Failed at SMS-fly (ERROR, INSUFFICIENTFUND) or refused before sending.
    FAILED = "failed"
    #: Not needed and refunded: the channel another one replaced (REFUND).
    REFUNDED = "refunded"

    @property
    def rank(self) -> int:
        """Position in the forward-only order; finals share the top ranks."""
        return _RANK[self]

    @property
    def is_final(self) -> bool:
        """True when no further change is expected (polling for it stops)."""
        return self in _FINAL

    @property
    def is_success(self) -> bool:
        """True for delivered and viewed."""
        return self in (DeliveryStatus.DELIVERED, DeliveryStatus.VIEWED)

    @property
    def is_failure(self) -> bool:
        """True for final statuses that are not a success (refunded is neither)."""
        return self.is_final and not self.is_success and self is not DeliveryStatus.REFUNDED

    @classmethod
    def from_raw(cls, raw: Status | str) -> DeliveryStatus | None:
        """The normalized status of a raw one; ``None`` for a status not known here."""
        return RAW_TO_DELIVERY.get(Status.parse(raw) if isinstance(raw, str) else raw)

    def __str__(self) -> str:
        return self.value


_RANK: dict[DeliveryStatus, int] = {
    DeliveryStatus.QUEUED: 0,
    DeliveryStatus.ACCEPTED: 10,
    DeliveryStatus.IN_PROGRESS: 20,
    DeliveryStatus.SENT: 30,
    # Finals. DELIVERED may still become VIEWED (a Viber message opened later); the
    # failure finals and REFUNDED are terminal: nothing moves them.
    DeliveryStatus.DELIVERED: 40,
    DeliveryStatus.VIEWED: 50,
    DeliveryStatus.UNDELIVERED: 60,
    DeliveryStatus.EXPIRED: 60,
    DeliveryStatus.STOPPED: 60,
    DeliveryStatus.FAILED: 60,
    DeliveryStatus.REFUNDED: 60,
}

_FINAL = frozenset(
    {
        DeliveryStatus.DELIVERED,
        DeliveryStatus.VIEWED,
        DeliveryStatus.UNDELIVERED,
        DeliveryStatus.EXPIRED,
        DeliveryStatus.STOPPED,
        DeliveryStatus.FAILED,
        DeliveryStatus.REFUNDED,
    }
)

#: The stored values (``Message.status``) counted as delivered, for queries.
DELIVERED_VALUES: tuple[str, ...] = tuple(s.value for s in DeliveryStatus if s.is_success)
#: The stored values counted as failed: final, and not delivered (a message whose every
#: channel was refunded was not delivered either).
FAILED_VALUES: tuple[str, ...] = tuple(
    s.value for s in DeliveryStatus if s.is_final and not s.is_success
)

#: How every raw status maps to a normalized one (UNKNOWN maps to nothing: it is kept
#: as raw text and never moves a channel).
RAW_TO_DELIVERY: dict[Status, DeliveryStatus] = {
    Status.ACCEPTD: DeliveryStatus.ACCEPTED,
    Status.PENDING: DeliveryStatus.IN_PROGRESS,
    Status.INPROGRESS: DeliveryStatus.IN_PROGRESS,
    Status.MODERATION: DeliveryStatus.IN_PROGRESS,
    Status.RESERVED: DeliveryStatus.IN_PROGRESS,
    Status.SENT: DeliveryStatus.SENT,
    Status.DELIVRD: DeliveryStatus.DELIVERED,
    Status.VIEWED: DeliveryStatus.VIEWED,
    Status.UNDELIV: DeliveryStatus.UNDELIVERED,
    Status.EXPIRED: DeliveryStatus.EXPIRED,
    Status.STOPED: DeliveryStatus.STOPPED,
    Status.ERROR: DeliveryStatus.FAILED,
    Status.INSUFFICIENTFUND: DeliveryStatus.FAILED,
    Status.REFUND: DeliveryStatus.REFUNDED,
}


def advance(current: DeliveryStatus, new: DeliveryStatus | None) -> DeliveryStatus:
    """The status a channel moves to when a reply says ``new``: forward only.

    A late or repeated reply changes nothing; a final status stays, except that a
    delivered Viber message may still be reported viewed.
    """
    if new is None or new is current:
        return current
    if current.is_final and not (
        current is DeliveryStatus.DELIVERED and new is DeliveryStatus.VIEWED
    ):
        return current
    return new if new.rank > current.rank else current


def overall(channels: list[tuple[str, DeliveryStatus]]) -> tuple[DeliveryStatus, str | None]:
    """A message's status from its channels' (in fallback order), and the channel that
    delivered it (``None`` unless delivered).

    Viber delivered + SMS refunded = delivered (via viber); Viber undelivered + SMS
    delivered = delivered (via sms); every channel failed = the last channel's failure.
    """
    if not channels:
        return DeliveryStatus.QUEUED, None
    successes = [(name, status) for name, status in channels if status.is_success]
    if successes:
        name, status = max(successes, key=lambda item: item[1].rank)
        return status, name
    pending = [status for _, status in channels if not status.is_final]
    if pending:
        return max(pending, key=lambda status: status.rank), None
    # All final, none delivered: report the last resort's outcome (the last channel
    # that was not merely refunded).
    failures = [status for _, status in channels if status is not DeliveryStatus.REFUNDED]
    return (failures[-1] if failures else DeliveryStatus.REFUNDED), None
