"""What a message will cost: the recipient's network, and the price list applied to it.

Pure functions over a :class:`~django_smsfly.results.PriceList`; the Django side
(fetching and caching price lists) is :func:`django_smsfly.services.estimate_cost`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from django_smsfly.channels import Channel
from django_smsfly.results import PriceList
from django_smsfly.segments import Segments, count_segments

#: Country calling code -> mobile country code, for the countries SMS-fly serves most.
COUNTRY_MCC = {
    "380": "255",  # Ukraine
    "48": "260",  # Poland
    "373": "259",  # Moldova
    "40": "226",  # Romania
    "36": "216",  # Hungary
    "421": "231",  # Slovakia
    "420": "230",  # Czechia
    "49": "262",  # Germany
    "44": "234",  # United Kingdom
    "1": "310",  # United States
}

#: Ukrainian operator codes (the two digits after 380) -> mobile network code. Number
#: portability makes this a best guess, which is what an estimate needs.
UA_MNC = {
    **dict.fromkeys(("50", "66", "95", "99", "75"), "01"),  # Vodafone
    **dict.fromkeys(("67", "68", "96", "97", "98", "77"), "03"),  # Kyivstar
    **dict.fromkeys(("63", "73", "93"), "06"),  # lifecell
    "91": "07",  # 3Mob
}


#: Network names by (mcc, mnc), for the networks SMS-fly lists prices for.
NETWORK_NAMES = {
    ("255", "01"): "Vodafone Ukraine",
    ("255", "03"): "Kyivstar",
    ("255", "06"): "lifecell",
    ("255", "07"): "3Mob",
    ("255", "99"): "Phoenix",
    ("260", "01"): "Plus",
    ("260", "02"): "T-Mobile",
    ("260", "03"): "Orange",
    ("260", "06"): "Play",
}


def network_name(mcc: str, mnc: str) -> str:
    """The network's name, or ``""`` when it is not known here."""
    return NETWORK_NAMES.get((mcc.strip().zfill(3), mnc.strip().zfill(2)), "")


def network_of(recipient: str) -> tuple[str | None, str | None]:
    """``(mcc, mnc)`` of a normalized number; ``None`` where it cannot be told."""
    for length in (3, 2, 1):
        mcc = COUNTRY_MCC.get(recipient[:length])
        if mcc is not None:
            mnc = UA_MNC.get(recipient[3:5]) if mcc == "255" else None
            return mcc, mnc
    return None, None


@dataclass(frozen=True)
class CostEstimate:
    """The estimated cost of one message, channel by channel."""

    #: Channel -> estimated cost, or ``None`` where no price is known.
    channels: dict[Channel, Decimal | None]
    #: SMS segments of the SMS text, when there is an SMS channel.
    segments: Segments | None = None

    @property
    def most(self) -> Decimal | None:
        """The cost if every channel is paid for (the worst case), ``None`` if unknown."""
        values = list(self.channels.values())
        if any(v is None for v in values):
            return None
        return sum((v for v in values if v is not None), Decimal(0))

    @property
    def first(self) -> Decimal | None:
        """The cost when the first channel delivers (the usual case)."""
        return next(iter(self.channels.values()), None)


def estimate(
    prices: PriceList,
    recipient: str,
    channels: Iterable[Channel],
    *,
    sms_text: str | None = None,
) -> CostEstimate:
    """Estimate a message's cost from a price list (SMS: price x parts; Viber: flat)."""
    mcc, mnc = network_of(recipient)
    costs: dict[Channel, Decimal | None] = {}
    segments = count_segments(sms_text) if sms_text is not None else None
    for channel in channels:
        price = _price(prices, channel, mcc, mnc)
        if channel is Channel.SMS and price is not None:
            price *= segments.parts if segments else 1
        costs[channel] = price
    return CostEstimate(costs, segments)


def _price(
    prices: PriceList, channel: Channel, mcc: str | None, mnc: str | None
) -> Decimal | None:
    if mcc is None:
        return None
    if mnc is not None:
        exact = prices.get(channel, mcc, mnc)
        if exact is not None:
            return exact
    # Network unknown or unlisted: the dearest price in the country, so the estimate
    # errs on the safe side.
    in_country = [p.price for p in prices if p.channel is channel and p.mcc == mcc]
    return max(in_country) if in_country else None
