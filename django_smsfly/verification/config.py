"""``SMSFLY["VERIFICATION"]`` as typed values, with the defaults that depend on the rest.

:mod:`django_smsfly.conf` validates the dict (and ``manage.py check`` reports it as
``smsfly.E001``); :func:`current` reads it as :class:`VerificationConfig`, resolving
``ALLOWED_REGIONS = None`` to ``DEFAULT_REGION``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.utils.functional import Promise

from django_smsfly.conf import smsfly_settings


@dataclass(frozen=True)
class VerificationConfig:
    """The validated ``SMSFLY["VERIFICATION"]`` (see docs/settings.rst)."""

    code_length: int
    ttl: dt.timedelta
    max_attempts: int
    resend_cooldown: dt.timedelta
    max_per_recipient_per_hour: int | None
    max_per_ip_per_hour: int | None
    max_per_day: int | None
    daily_spend_limit: Decimal | None
    allowed_regions: frozenset[str]
    #: ``None``: the built-in text (:data:`~django_smsfly.verification.texts.DEFAULT_TEXT`).
    text: str | Promise | None
    site_name: str | None
    trusted_proxies: int
    ip_header: str
    #: Where numbers written without a country code are read (``DEFAULT_REGION``).
    default_region: str


def current() -> VerificationConfig:
    """The settings in force now (``override_settings`` included)."""
    values = smsfly_settings.VERIFICATION
    region: str = smsfly_settings.DEFAULT_REGION
    return VerificationConfig(
        code_length=values["CODE_LENGTH"],
        ttl=dt.timedelta(seconds=values["TTL"]),
        max_attempts=values["MAX_ATTEMPTS"],
        resend_cooldown=dt.timedelta(seconds=values["RESEND_COOLDOWN"]),
        max_per_recipient_per_hour=values["MAX_PER_RECIPIENT_PER_HOUR"],
        max_per_ip_per_hour=values["MAX_PER_IP_PER_HOUR"],
        max_per_day=values["MAX_PER_DAY"],
        daily_spend_limit=values["DAILY_SPEND_LIMIT"],
        allowed_regions=frozenset(values["ALLOWED_REGIONS"] or (region,)),
        text=values["TEXT"],
        site_name=values["SITE_NAME"],
        trusted_proxies=values["TRUSTED_PROXIES"],
        ip_header=values["IP_HEADER"],
        default_region=region,
    )
