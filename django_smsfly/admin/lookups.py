"""What the admin asks SMS-fly for while drawing a page: the balances and the sender names.

Both are cached briefly in Django's cache, so a busy admin does not call SMS-fly on every
page load, and neither is ever fatal: when SMS-fly cannot be reached the admin says so
calmly and goes on with what it has (no balance; the sender names from the settings).
A failed lookup is remembered for a short while too, so an unreachable API does not slow
down every page while it is away.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import TypeVar

from django.core.cache import cache

from django_smsfly import services
from django_smsfly.channels import Channel
from django_smsfly.conf import smsfly_settings
from django_smsfly.exceptions import SmsFlyError
from django_smsfly.results import Sources

logger = logging.getLogger("django_smsfly.admin")

#: Seconds a balance is reused before SMS-fly is asked again.
BALANCE_CACHE_SECONDS = 60
#: Seconds the sender names are reused (they change when the account's names do: rarely).
SOURCES_CACHE_SECONDS = 300
#: Seconds a failed lookup is remembered before SMS-fly is tried again.
FAILURE_CACHE_SECONDS = 15

BALANCE_CACHE_KEY = "django_smsfly:admin:balances"
SOURCES_CACHE_KEY = "django_smsfly:admin:sources"

_T = TypeVar("_T")
#: Stored in place of a value while a failed lookup is remembered.
_FAILED = "failed"


def _cached(key: str, fetch: Callable[[], _T], seconds: int) -> _T | None:
    """``fetch()`` through the cache; ``None`` when SMS-fly could not answer."""
    value = cache.get(key)
    if value == _FAILED:
        return None
    if value is not None:
        return value  # type: ignore[no-any-return]
    try:
        value = fetch()
    except SmsFlyError as exc:
        # The client keeps the API key out of its exceptions, so the text is safe to log.
        logger.warning("SMS-fly lookup for the admin failed (%s): %s", key, exc)
        cache.set(key, _FAILED, FAILURE_CACHE_SECONDS)
        return None
    cache.set(key, value, seconds)
    return value


# -- balances ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Balance:
    """One balance as the panel shows it."""

    channel: Channel
    amount: Decimal
    #: True when the amount is below ``SMSFLY["BALANCE_WARNING"]``.
    low: bool


@dataclass(frozen=True)
class BalancePanel:
    """What the balance panel on the message list shows."""

    #: The SMS and Viber balances; empty when SMS-fly could not be asked.
    balances: tuple[Balance, ...]
    #: ``SMSFLY["BALANCE_WARNING"]``: balances below it are flagged (``None``: never).
    threshold: Decimal | None

    @property
    def available(self) -> bool:
        """False when SMS-fly could not be reached: the panel says so instead."""
        return bool(self.balances)

    @property
    def low(self) -> tuple[Balance, ...]:
        """The balances below the threshold."""
        return tuple(balance for balance in self.balances if balance.low)


def balance_panel() -> BalancePanel:
    """The SMS and Viber balances (cached for a minute), each flagged when low."""
    threshold: Decimal | None = smsfly_settings.BALANCE_WARNING
    amounts = _cached(
        BALANCE_CACHE_KEY, lambda: services.get_balances(quick=True), BALANCE_CACHE_SECONDS
    )
    balances = tuple(
        Balance(
            channel=channel,
            amount=amounts[channel.value],
            low=threshold is not None and amounts[channel.value] < threshold,
        )
        for channel in (Channel.SMS, Channel.VIBER)
        if amounts is not None and channel.value in amounts
    )
    return BalancePanel(balances=balances, threshold=threshold)


# -- sender names -----------------------------------------------------------------------


@dataclass(frozen=True)
class SenderNames:
    """The sender names the compose form offers, per channel."""

    sms: tuple[str, ...]
    viber: tuple[str, ...]
    #: False when SMS-fly could not be asked and the names come from the settings.
    from_api: bool

    def for_channel(self, channel: Channel) -> tuple[str, ...]:
        """The names for one channel."""
        return self.viber if channel is Channel.VIBER else self.sms


def _fetch_sources() -> Sources:
    return services.get_lookup_client().get_sources()


def sender_names() -> SenderNames:
    """The account's sender names from GETSOURCES (cached for five minutes).

    When SMS-fly cannot be reached, the names configured as ``SMSFLY["SMS_SOURCE"]`` and
    ``SMSFLY["VIBER_SOURCE"]`` are offered instead, and ``from_api`` is False so the
    page can say so.
    """
    sources = _cached(SOURCES_CACHE_KEY, _fetch_sources, SOURCES_CACHE_SECONDS)
    if sources is not None:
        return SenderNames(sms=sources.sms, viber=sources.viber, from_api=True)
    sms: str | None = smsfly_settings.SMS_SOURCE
    viber: str | None = smsfly_settings.VIBER_SOURCE
    return SenderNames(
        sms=(sms,) if sms else (),
        viber=(viber,) if viber else (),
        from_api=False,
    )
