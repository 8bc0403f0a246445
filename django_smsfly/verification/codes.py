"""The codes: drawn from :mod:`secrets`, stored only as a keyed hash, compared in
constant time.

The hash is an HMAC-SHA256 keyed with the site's ``SECRET_KEY`` (through Django's
:func:`~django.utils.crypto.salted_hmac`, with a salt of this app's own) over the
purpose, the number and the code. Someone who reads the table cannot try the million
six-digit codes against a row without the key, and a row's hash is good for its own
number and purpose only. A code hashed before a key rotation still matches while the
old key is in ``SECRET_KEY_FALLBACKS``.
"""

from __future__ import annotations

import hmac
import secrets

from django.conf import settings
from django.utils.crypto import salted_hmac

#: The HMAC's salt: a key of its own, derived from ``SECRET_KEY``, for this use only.
KEY_SALT = "django_smsfly.verification.code"
#: The longest input :func:`clean_code` reads as a code (anything longer is not one).
LONGEST_INPUT = 64


def new_code(length: int) -> str:
    """``length`` random decimal digits (leading zeros included), from :mod:`secrets`."""
    return f"{secrets.randbelow(10**length):0{length}d}"


def code_hash(code: str, *, recipient: str, purpose: str, secret: str | None = None) -> str:
    """The hex HMAC-SHA256 of ``code`` for ``recipient`` and ``purpose``.

    ``secret``: the key (default ``SECRET_KEY``).
    """
    # A separator that cannot occur in a purpose, a number or a code.
    value = "\x1f".join((purpose, recipient, code))
    return salted_hmac(KEY_SALT, value, secret=secret, algorithm="sha256").hexdigest()


def matches(code: str, stored_hash: str, *, recipient: str, purpose: str) -> bool:
    """Whether ``code`` is the code ``stored_hash`` was made from, in constant time.

    Every key (``SECRET_KEY`` and each of ``SECRET_KEY_FALLBACKS``) is tried, always all
    of them, so the time taken tells nothing either.
    """
    keys = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    found = False
    for key in keys:
        candidate = code_hash(code, recipient=recipient, purpose=purpose, secret=key)
        found |= hmac.compare_digest(candidate.encode(), stored_hash.encode())
    return found


def clean_code(value: object) -> str | None:
    """A code as typed (``"123 456"``, ``" 123-456 "``) as its digits; ``None`` when
    ``value`` cannot be a code at all (not a string, blank, letters, too long)."""
    if not isinstance(value, str) or len(value) > LONGEST_INPUT:
        return None
    digits = "".join(value.split()).replace("-", "")
    if not digits or not (digits.isascii() and digits.isdigit()):
        return None
    return digits
