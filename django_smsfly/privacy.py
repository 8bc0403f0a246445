"""Recipients' numbers in logs and on screens, masked when the site asks for it.

With ``SMSFLY["MASK_RECIPIENTS"] = True`` a number shows as ``380501****67`` in the
admin's lists and in the app's log lines: enough for an operator to tell messages apart
and to match a number a customer reads out, not enough to harvest numbers from a
screenshot or a log file. The database keeps the full number (it is needed to send and
to search), and the message's own page still shows it to those allowed to view it.
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

from django_smsfly.backends.base import mask_recipient
from django_smsfly.conf import smsfly_settings

__all__ = ["display_recipient", "mask_recipient", "masking"]


def masking() -> bool:
    """Whether numbers are masked; off when Django's settings are not configured
    (the client used on its own, outside a Django site)."""
    try:
        return bool(smsfly_settings.MASK_RECIPIENTS)
    except ImproperlyConfigured:
        return False


def display_recipient(number: str) -> str:
    """The number as lists and logs should show it under the current settings."""
    return mask_recipient(number) if masking() else str(number)
