"""The delivery channels SMS-fly offers."""

from __future__ import annotations

import enum


class Channel(str, enum.Enum):
    """A delivery channel, spelled as on the wire."""

    SMS = "sms"
    VIBER = "viber"

    def __str__(self) -> str:
        return self.value
