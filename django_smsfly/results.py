"""Typed, immutable results of SMS-fly API calls, and the reading of raw replies into them.

Money is :class:`~decimal.Decimal` (the API sends strings such as ``"0.479"`` and, in
its document, numbers); dates are timezone-aware (a date without an offset, as status
replies give it, is Europe/Kyiv time). A reply that lacks a required field or has one
of the wrong type raises :class:`~django_smsfly.exceptions.SmsFlyBadReply`.

The client scrubs the API key out of a reply before anything here reads it, so a value
quoted (and cut) in an error text holds no piece of the key.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from django_smsfly.channels import Channel
from django_smsfly.exceptions import SmsFlyBadReply
from django_smsfly.statuses import Status

logger = logging.getLogger("django_smsfly.client")

_T = TypeVar("_T")
_ReportT = TypeVar("_ReportT", bound="MessageReport")

#: SMS-fly's local time, used for dates that arrive without an offset.
KYIV = ZoneInfo("Europe/Kyiv")

#: How much of a bad value an error text quotes.
QUOTE_LIMIT = 40

_DATE_RE = re.compile(
    r"^\s*(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:\.\d+)?"
    r"\s*(?:([+-])(\d{2}):?(\d{2})|Z)?\s*$"
)


def _quoted(value: object) -> str:
    """The start of a bad value, quoted for an error text.

    The value must already be scrubbed of the key (the client scrubs every reply before
    it is parsed): cut first, a key across the cut would no longer be found whole.
    """
    return repr(str(value)[:QUOTE_LIMIT])


def parse_decimal(value: object, what: str) -> Decimal:
    """Read money sent as a string (``"0.479"``) or a number (``0.479``)."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise SmsFlyBadReply(f"{what}: expected a number, got {type(value).__name__}")
    try:
        # str() first: Decimal(0.1) would keep the float's binary noise.
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise SmsFlyBadReply(f"{what}: {_quoted(value)} is not a number") from None
    if not number.is_finite():
        raise SmsFlyBadReply(f"{what}: {_quoted(value)} is not a finite number")
    return number


def parse_datetime(value: object, what: str) -> dt.datetime:
    """Read ``"2021-12-17 10:36:07 +0200"`` or ``"2021-12-17 10:36:09"`` (Kyiv time)."""
    if not isinstance(value, str):
        raise SmsFlyBadReply(f"{what}: expected a date string, got {type(value).__name__}")
    match = _DATE_RE.match(value)
    if match is None:
        raise SmsFlyBadReply(f"{what}: {_quoted(value)} is not a date")
    year, month, day, hour, minute, second, sign, off_h, off_m = match.groups()
    tzinfo: dt.tzinfo
    if sign:
        offset = dt.timedelta(hours=int(off_h), minutes=int(off_m))
        tzinfo = dt.timezone(-offset if sign == "-" else offset)
    elif value.rstrip().endswith("Z"):
        tzinfo = dt.timezone.utc
    else:
        tzinfo = KYIV
    try:
        return dt.datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            int(second),
            tzinfo=tzinfo,
        )
    except ValueError:
        raise SmsFlyBadReply(f"{what}: {_quoted(value)} is not a valid date") from None


def _lenient(parse: Callable[[object, str], _T], value: object, what: str) -> _T | None:
    """Parse a field that is informative, not essential: a missing or malformed value
    becomes ``None`` (and a warning) instead of failing a reply that otherwise succeeded.
    """
    if value is None or value == "":
        return None
    try:
        return parse(value, what)
    except SmsFlyBadReply:
        # The field's name only, not its value: a reply may echo what the request
        # carried, the API key among it, and a log line must never hold the key.
        logger.warning("Ignoring a malformed field in an SMS-fly reply: %s", what)
        return None


def _mapping(value: object, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise SmsFlyBadReply(f"{what}: expected an object, got {type(value).__name__}")
    return value


@dataclass(frozen=True)
class Balances:
    """The two balances GETBALANCEEXT reports."""

    sms: Decimal
    viber: Decimal

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Balances:
        """Build from the reply's ``data`` object."""
        balance = _mapping(data.get("balance"), "balance")
        return cls(
            sms=parse_decimal(balance.get("sms"), "balance.sms"),
            viber=parse_decimal(balance.get("viber"), "balance.viber"),
        )

    def as_dict(self) -> dict[str, Decimal]:
        """``{"sms": ..., "viber": ...}``."""
        return {"sms": self.sms, "viber": self.viber}


@dataclass(frozen=True)
class Sources:
    """Sender names (alpha names) the account may use, per channel (GETSOURCES)."""

    sms: tuple[str, ...] = ()
    viber: tuple[str, ...] = ()

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Sources:
        """Build from the reply's ``data`` object; a missing channel means no names."""
        names: dict[str, tuple[str, ...]] = {}
        for channel in Channel:
            value = data.get(channel.value)
            if value is None:
                names[channel.value] = ()
                continue
            if not isinstance(value, list) or not all(isinstance(n, str) for n in value):
                raise SmsFlyBadReply(f"{channel.value}: expected a list of sender names")
            names[channel.value] = tuple(value)
        return cls(sms=names["sms"], viber=names["viber"])

    def for_channel(self, channel: Channel | str) -> tuple[str, ...]:
        """The names for one channel."""
        return self.viber if Channel(channel) is Channel.VIBER else self.sms


@dataclass(frozen=True)
class Price:
    """The price of one message on one channel to one operator network."""

    channel: Channel
    mcc: str
    mnc: str
    price: Decimal


@dataclass(frozen=True)
class PriceList:
    """Prices by channel, mobile country code and mobile network code.

    Iterating yields :class:`Price` rows; :meth:`get` looks one up.
    """

    prices: tuple[Price, ...] = ()

    @classmethod
    def from_data(cls, data: Mapping[str, Any], key: str) -> PriceList:
        """Build from ``data[key]`` shaped ``channel -> mcc -> mnc -> price``."""
        table = _mapping(data.get(key), key)
        rows: list[Price] = []
        for channel_name, by_mcc in table.items():
            try:
                channel = Channel(channel_name)
            except ValueError:
                continue  # a channel this client does not know yet: skip, don't crash
            for mcc, by_mnc in _mapping(by_mcc, f"{key}.{channel_name}").items():
                where = f"{key}.{channel_name}.{mcc}"
                for mnc, price in _mapping(by_mnc, where).items():
                    rows.append(
                        Price(channel, str(mcc), str(mnc), parse_decimal(price, f"{where}.{mnc}"))
                    )
        return cls(tuple(rows))

    def __iter__(self) -> Iterator[Price]:
        return iter(self.prices)

    def __len__(self) -> int:
        return len(self.prices)

    def get(self, channel: Channel | str, mcc: str | int, mnc: str | int) -> Decimal | None:
        """The price for one network, or ``None`` if it is not listed. Codes match however
        they are written: ``get("sms", 255, 1)`` finds the price listed under ``"01"``."""
        channel = Channel(channel)
        mcc_code = normalize_network_code(str(mcc), 3)
        mnc_code = normalize_network_code(str(mnc), 2)
        for row in self.prices:
            if (
                row.channel is channel
                and normalize_network_code(row.mcc, 3) == mcc_code
                and normalize_network_code(row.mnc, 2) == mnc_code
            ):
                return row.price
        return None


def normalize_network_code(code: str, width: int) -> str:
    """A numeric mcc/mnc code zero-padded to ``width`` digits (``"1"`` -> ``"01"``); any
    other text is returned stripped, as it is."""
    text = code.strip()
    return text.zfill(width) if text.isdigit() else text


@dataclass(frozen=True)
class ChannelResult:
    """What SMS-fly reports for one channel of one message."""

    channel: Channel
    #: The normalized raw status; :attr:`Status.UNKNOWN` for a value not known here.
    status: Status
    #: The status exactly as it arrived (kept even when :attr:`status` is UNKNOWN).
    raw_status: str
    date: dt.datetime | None = None
    cost: Decimal | None = None
    #: Viber only: ``"promotion"`` or ``"transaction:N"``.
    label: str | None = None

    @classmethod
    def from_data(cls, channel: Channel, data: Mapping[str, Any]) -> ChannelResult:
        """Build from one channel object of a SENDMESSAGE or GETMESSAGESTATUS reply."""
        name = channel.value
        raw = data.get("status")
        if not isinstance(raw, str) or not raw:
            raise SmsFlyBadReply(f"{name}.status: expected a status string")
        label = data.get("label")
        return cls(
            channel=channel,
            status=Status.parse(raw),
            raw_status=raw,
            date=_lenient(parse_datetime, data.get("date"), f"{name}.date"),
            cost=_lenient(parse_decimal, data.get("cost"), f"{name}.cost"),
            label=label if isinstance(label, str) and label else None,
        )


@dataclass(frozen=True)
class MessageReport:
    """A message's id and per-channel results: the reply to SENDMESSAGE or
    GETMESSAGESTATUS. ``report[Channel.SMS]`` or ``report["sms"]`` gives a channel."""

    message_id: str
    #: When the server produced the reply.
    date: dt.datetime | None
    channels: Mapping[Channel, ChannelResult] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def from_data(
        cls: type[_ReportT], data: Mapping[str, Any], date: dt.datetime | None
    ) -> _ReportT:
        """Build from the reply's ``data`` object; channels keep the reply's order."""
        message_id = data.get("messageID")
        if not isinstance(message_id, str) or not message_id:
            raise SmsFlyBadReply("messageID: expected a message id string")
        channels = {
            channel: ChannelResult.from_data(channel, _mapping(data[channel.value], channel.value))
            for channel in _reply_channels(data)
        }
        return cls(message_id=message_id, date=date, channels=MappingProxyType(channels))

    def __getitem__(self, channel: Channel | str) -> ChannelResult:
        return self.channels[Channel(channel)]

    def get(self, channel: Channel | str) -> ChannelResult | None:
        """The result for one channel, or ``None`` if the reply did not mention it."""
        return self.channels.get(Channel(channel))

    @property
    def cost(self) -> Decimal | None:
        """The sum of the channels' costs, or ``None`` if no channel carried one."""
        costs = [r.cost for r in self.channels.values() if r.cost is not None]
        return sum(costs, Decimal(0)) if costs else None


def _reply_channels(data: Mapping[str, Any]) -> list[Channel]:
    # Keep the order the server used; unknown keys (messageID...) are not channels.
    return [Channel(key) for key in data if key in {c.value for c in Channel}]


@dataclass(frozen=True)
class SendResult(MessageReport):
    """The reply to SENDMESSAGE: the new message id and each channel's first status."""


@dataclass(frozen=True)
class StatusResult(MessageReport):
    """The reply to GETMESSAGESTATUS: each channel's current status."""
