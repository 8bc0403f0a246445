"""django-smsfly: a Django app for the SMS-fly gateway (JSON REST API v2.04).

The public Python API is importable from this package::

    from django_smsfly import send_sms, get_client, get_balance

Names that need Django's app registry (services, models) are imported lazily, so
``import django_smsfly`` is safe from settings files and before ``django.setup()``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# Public name -> module that defines it. Imported on first use (PEP 562).
_LAZY = {
    "send_sms": "django_smsfly.services",
    "send_viber": "django_smsfly.services",
    "send_message": "django_smsfly.services",
    "send_template": "django_smsfly.services",
    "sync_statuses": "django_smsfly.services",
    "get_client": "django_smsfly.services",
    "get_balance": "django_smsfly.services",
    "get_balances": "django_smsfly.services",
    "SmsFlyClient": "django_smsfly.client",
    "SmsContent": "django_smsfly.validation",
    "ViberContent": "django_smsfly.validation",
}

__all__ = [
    "SmsContent",
    "SmsFlyClient",
    "ViberContent",
    "__version__",
    "get_balance",
    "get_balances",
    "get_client",
    "send_message",
    "send_sms",
    "send_template",
    "send_viber",
    "sync_statuses",
]

if TYPE_CHECKING:  # pragma: no cover
    from django_smsfly.client import SmsFlyClient
    from django_smsfly.services import (
        get_balance,
        get_balances,
        get_client,
        send_message,
        send_sms,
        send_template,
        send_viber,
        sync_statuses,
    )
    from django_smsfly.validation import SmsContent, ViberContent


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'django_smsfly' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
