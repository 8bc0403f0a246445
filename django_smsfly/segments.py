"""How many SMS parts a text takes, and in which encoding.

A text that fits the GSM 03.38 alphabet is sent as GSM-7: 160 characters in one SMS,
153 per part when split (the rest of each part holds the joining header). Characters of
the extension table (``^{}\\[~]|€`` and form feed) take two places. Anything else — Cyrillic,
for example — makes the whole text UCS-2: 70 characters in one SMS, 67 per part, with
characters outside the Basic Multilingual Plane (most emoji) taking two. A part never
splits a two-place character.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Encoding(str, enum.Enum):
    """How an SMS text is encoded on the air."""

    GSM7 = "GSM-7"
    UCS2 = "UCS-2"

    def __str__(self) -> str:
        return self.value


GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡"
    "ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")

#: (one-part limit, per-part limit when split) in places, per encoding.
LIMITS = {Encoding.GSM7: (160, 153), Encoding.UCS2: (70, 67)}


@dataclass(frozen=True)
class Segments:
    """The result of :func:`count_segments`."""

    encoding: Encoding
    #: Places the text takes (extension characters and surrogate pairs count two).
    length: int
    #: SMS parts the text is sent (and billed) as; 0 for an empty text.
    parts: int
    #: Places per part at this length (160/70 for one part, 153/67 when split).
    per_part: int
    #: Places still free in the last part.
    remaining: int


def encoding_of(text: str) -> Encoding:
    """GSM-7 if every character is in the GSM alphabet or its extension, else UCS-2."""
    if all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in text):
        return Encoding.GSM7
    return Encoding.UCS2


def _width(char: str, encoding: Encoding) -> int:
    if encoding is Encoding.GSM7:
        return 2 if char in GSM7_EXTENSION else 1
    return 2 if ord(char) > 0xFFFF else 1


def count_segments(text: str) -> Segments:
    """Count the SMS parts of ``text``."""
    encoding = encoding_of(text)
    single, multi = LIMITS[encoding]
    widths = [_width(c, encoding) for c in text]
    length = sum(widths)
    if length == 0:
        return Segments(encoding, 0, 0, single, single)
    if length <= single:
        return Segments(encoding, length, 1, single, single - length)
    parts, used = 1, 0
    for width in widths:
        if used + width > multi:  # this character starts the next part
            parts, used = parts + 1, 0
        used += width
    return Segments(encoding, length, parts, multi, multi - used)
