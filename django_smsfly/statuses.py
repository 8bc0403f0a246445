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
    "DELIVERED": "DELIVRD",
    "UNDELIVERED": "UNDELIV",
    "UNDELIVRD": "UNDELIV",
    "STOPPED": "STOPED",
    "INSUFFICIENTFUNDS": "INSUFFICIENTFUND",
    "IN_PROGRESS": "INPROGRESS",
}
