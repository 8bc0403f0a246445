"""SMS-fly's actions as the sandbox answers them: the request envelope (key, action,
data), then one handler per action — balances, sender names, prices, SENDMESSAGE with
its checks and costs, and GETMESSAGESTATUS.

Each handler takes the simulator's :class:`~django_smsfly.backends.sandbox.state.SandboxState`,
the request's ``data`` and the simulator's time, and returns the reply's ``data`` or
raises :class:`~django_smsfly.backends.sandbox.wire.ApiError`. The simulator holds its
lock around every call.
"""

from __future__ import annotations

import datetime as dt
import hmac
import re
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django_smsfly.backends.sandbox.outcomes import Outcome
from django_smsfly.backends.sandbox.plan import MessagePlan
from django_smsfly.backends.sandbox.state import SandboxState, SentMessage
from django_smsfly.backends.sandbox.wire import (
    CHANNELS,
    NOT_JSON,
    SMS,
    VIBER,
    ApiError,
    kyiv_local,
    money,
    with_offset,
)
from django_smsfly.pricing import network_of
from django_smsfly.segments import count_segments

__all__ = ["answer", "viber_label"]

_Handler = Callable[[SandboxState, dict[str, Any], dt.datetime], dict[str, Any]]


def answer(state: SandboxState, payload: Any, now: dt.datetime) -> dict[str, Any]:
    """The ``data`` of SMS-fly's answer to a decoded request body (:data:`NOT_JSON` for a
    body that is not JSON); raises :class:`ApiError` where SMS-fly refuses the request."""
    action, data = _check_envelope(payload, state.options["api_key"])
    return _HANDLERS[action](state, data, now)


def _check_envelope(payload: Any, api_key: str | None) -> tuple[str, dict[str, Any]]:
    """The action and the ``data`` of a request whose key, action and data are sound."""
    if payload is NOT_JSON:
        raise ApiError("INVREQUEST", "the body is not JSON", 422)
    if not isinstance(payload, dict):
        raise ApiError("INVREQUEST", "the body is not an object")
    auth = payload.get("auth")
    if not isinstance(auth, dict):
        raise ApiError("INVREQUEST", "auth is missing")
    key = auth.get("key")
    if (
        not isinstance(key, str)
        or not key.strip()
        or (api_key is not None and not hmac.compare_digest(key, api_key))
    ):
        raise ApiError("FORBIDDEN", "", 403)
    action = payload.get("action")
    if not isinstance(action, str) or not action:
        raise ApiError("INVACTION", "action is missing")
    if action not in _HANDLERS:
        raise ApiError("INVACTION", f"unknown action {action[:40]!r}")
    data = payload.get("data")
    if data == []:
        data = {}  # what PHP clients send for an empty object
    if not isinstance(data, dict):
        raise ApiError("INVREQUEST", "data is missing")
    return action, data


# ---------------------------------------------------------------------------------------
# Balances, sender names and prices


def _get_balance(state: SandboxState, data: dict[str, Any], now: dt.datetime) -> dict[str, Any]:
    return {"balance": money(state.balance)}


def _get_balance_ext(
    state: SandboxState, data: dict[str, Any], now: dt.datetime
) -> dict[str, Any]:
    return {"balance": {SMS: money(state.balance), VIBER: money(state.viber_balance)}}


def _get_sources(state: SandboxState, data: dict[str, Any], now: dt.datetime) -> dict[str, Any]:
    sources = state.options["sources"]
    return {ch: list(sources.get(ch, ())) for ch in _channels(data.get("channels"))}


def _get_price_list(state: SandboxState, data: dict[str, Any], now: dt.datetime) -> dict[str, Any]:
    return {"pricelist": _price_table(state, data, with_mnc=False)}


def _get_price(state: SandboxState, data: dict[str, Any], now: dt.datetime) -> dict[str, Any]:
    return {"price": _price_table(state, data, with_mnc=True)}


def _price_table(state: SandboxState, data: dict[str, Any], with_mnc: bool) -> dict[str, Any]:
    channels = _channels(data.get("channels"))
    mcc = _code(data.get("mcc", "255"), "mcc", 3)
    mnc = _code(data.get("mnc"), "mnc", 2) if with_mnc else None
    table: dict[str, Any] = {}
    for channel in channels:
        by_mnc = state.options["prices"].get(channel, {}).get(mcc)
        rows = {
            code: money(price)
            for code, price in (by_mnc or {}).items()
            if mnc is None or code == mnc
        }
        table[channel] = {mcc: rows} if rows else {}
    return table


def _code(value: object, name: str, length: int) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value).zfill(length)
    if not isinstance(value, str) or not re.fullmatch(rf"\d{{{length},3}}", value):
        raise ApiError("INVREQUEST", f"{name} must be a string of digits")
    return value


# ---------------------------------------------------------------------------------------
# SENDMESSAGE


@dataclass(frozen=True)
class _Order:
    """A SENDMESSAGE request that passed its checks."""

    recipient: str
    channels: tuple[str, ...]
    #: The request's block per channel.
    blocks: dict[str, dict[str, Any]]
    #: Minutes per channel.
    ttl: dict[str, int]


def _send_message(state: SandboxState, data: dict[str, Any], now: dt.datetime) -> dict[str, Any]:
    order = _read_order(state, data)
    outcome = state.outcome_for(order.recipient)
    if outcome is Outcome.REJECTED:
        raise ApiError("INVRECIPIENT", "the recipient refuses messages (sandbox rule)")
    if outcome is Outcome.STOP_LISTED:
        raise ApiError("ERRPHONES", "the number is on the account's stop list (sandbox rule)")
    costs = {ch: _cost(state, ch, order.recipient, order.blocks[ch]) for ch in order.channels}
    _charge(state, costs)
    plan = MessagePlan(now, order.channels, outcome, order.ttl, float(state.options["speed"]))
    message_id = plan.encode(state.next_unique())
    plan = MessagePlan.decode(message_id) or plan  # the id's millisecond precision
    _schedule_refunds(state, plan, costs)
    viber = order.blocks.get(VIBER)
    label = viber_label(viber.get("text")) if viber is not None else None
    state.messages.append(
        SentMessage(
            message_id=message_id,
            recipient=order.recipient,
            channels=order.channels,
            sms=order.blocks.get(SMS),
            viber=viber,
            cost=costs.get(SMS, Decimal(0)) + costs.get(VIBER, Decimal(0)),
            costs=costs,
            sent_at=now,
            outcome=outcome,
            label=label,
        )
    )
    return _accepted(message_id, now, costs, label)


def _read_order(state: SandboxState, data: dict[str, Any]) -> _Order:
    recipient = data.get("recipient")
    if not isinstance(recipient, str) or not re.fullmatch(r"\d{10,15}", recipient):
        raise ApiError("INVRECIPIENT", "expected 10 to 15 digits")
    channels = _channels(data.get("channels"))
    blocks: dict[str, dict[str, Any]] = {}
    ttl: dict[str, int] = {}
    for channel in channels:
        block = data.get(channel)
        if not isinstance(block, dict):
            raise ApiError("INVSMSMESSAGE" if channel == SMS else "INVVIBERMESSAGE")
        check = _check_sms if channel == SMS else _check_viber
        ttl[channel] = check(state, block)
        blocks[channel] = block
    return _Order(recipient, channels, blocks, ttl)


def _check_sms(state: SandboxState, block: dict[str, Any]) -> int:
    text = block.get("text")
    if not isinstance(text, str) or not text.strip():
        raise ApiError("INVTEXT", "sms text is empty")
    _check_source(state, SMS, block)
    flash = block.get("flash", 0)
    if flash not in (0, 1) or isinstance(flash, float):
        raise ApiError("INVREQUEST", "flash must be 0 or 1")
    return _ttl(block)


# The combinations of (text, button, image) a Viber message may have.
_VIBER_SHAPES = frozenset(
    {(True, False, False), (False, False, True), (True, True, False), (True, True, True)}
)


def _check_viber(state: SandboxState, block: dict[str, Any]) -> int:
    text, button, image = block.get("text"), block.get("button"), block.get("image")
    if text is not None and (not isinstance(text, str) or not 1 <= len(text) <= 1000):
        raise ApiError("INVTEXT", "viber text must have 1 to 1000 characters")
    if button is not None and not _valid_button(button):
        raise ApiError("INVBUTTON", "a button needs a caption (1-30) and a url")
    if image is not None and not _https_url(image):
        raise ApiError("INVIMAGEURL", "image must be an https url")
    shape = (text is not None, button is not None, image is not None)
    if shape not in _VIBER_SHAPES:
        raise ApiError("INVTEXT", "allowed: text, image, text+button, text+button+image")
    _check_source(state, VIBER, block)
    return _ttl(block)


def _check_source(state: SandboxState, channel: str, block: dict[str, Any]) -> None:
    source = block.get("source")
    if not isinstance(source, str) or source not in state.options["sources"].get(channel, ()):
        raise ApiError("INVSOURCE", f"not a {channel} sender name of this account")


def _cost(state: SandboxState, channel: str, recipient: str, block: dict[str, Any]) -> Decimal:
    mcc, mnc = network_of(recipient)
    by_mnc = state.options["prices"].get(channel, {}).get(mcc) if mcc else None
    if not by_mnc:
        raise ApiError("INVROUTE", f"no {channel} route to this country")
    # Networks the number does not reveal are charged at the dearest rate.
    price: Decimal = by_mnc.get(mnc) or max(by_mnc.values())
    if channel == SMS:
        price *= count_segments(block["text"]).parts
    return price


def _charge(state: SandboxState, costs: Mapping[str, Decimal]) -> None:
    """Take each channel's cost from its balance; nothing if either balance falls short."""
    sms_cost = costs.get(SMS, Decimal(0))
    viber_cost = costs.get(VIBER, Decimal(0))
    if sms_cost > state.balance or viber_cost > state.viber_balance:
        raise ApiError("INSUFFICIENTFUNDS")
    state.balance -= sms_cost
    state.viber_balance -= viber_cost


def _schedule_refunds(
    state: SandboxState, plan: MessagePlan, costs: Mapping[str, Decimal]
) -> None:
    """Credit back, when it comes, the cost of each channel the plan ends ``REFUND``."""
    for channel, steps in plan.timeline().items():
        if steps[-1][1] == "REFUND":
            state.refund_at(plan.moment(steps[-1][0]), channel, costs[channel])


def _accepted(
    message_id: str, now: dt.datetime, costs: Mapping[str, Decimal], label: str | None
) -> dict[str, Any]:
    """The ``data`` of an accepted SENDMESSAGE: every channel ``ACCEPTD`` with its cost."""
    reply: dict[str, Any] = {"messageID": message_id}
    for channel, cost in costs.items():
        entry: dict[str, Any] = {"status": "ACCEPTD", "date": with_offset(now)}
        if channel == VIBER:
            entry["label"] = label
        entry["cost"] = money(cost)
        reply[channel] = entry
    return reply


# ---------------------------------------------------------------------------------------
# GETMESSAGESTATUS


def _get_message_status(
    state: SandboxState, data: dict[str, Any], now: dt.datetime
) -> dict[str, Any]:
    message_id = data.get("messageID")
    plan = MessagePlan.decode(message_id)
    if plan is None:
        raise ApiError("INVMSGID")
    reply: dict[str, Any] = {"messageID": message_id}
    for channel, (status, since) in plan.status_at(now).items():
        reply[channel] = {"status": status, "date": kyiv_local(since)}
    return reply


_HANDLERS: dict[str, _Handler] = {
    "GETBALANCE": _get_balance,
    "GETBALANCEEXT": _get_balance_ext,
    "GETSOURCES": _get_sources,
    # The document's table of actions spells it without the S.
    "GETSOURCE": _get_sources,
    "GETPRICELIST": _get_price_list,
    "GETPRICE": _get_price,
    "SENDMESSAGE": _send_message,
    "GETMESSAGESTATUS": _get_message_status,
}


# ---------------------------------------------------------------------------------------
# Checks of request values


def _channels(value: object) -> tuple[str, ...]:
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(c, str) and c in CHANNELS for c in value)
        or len(set(value)) != len(value)
    ):
        raise ApiError("INVCHANNELS")
    return tuple(value)


def _ttl(block: Mapping[str, Any]) -> int:
    # Not required by the document's tables; the sandbox then uses the longest allowed.
    ttl = block.get("ttl", 1440)
    if isinstance(ttl, bool) or not isinstance(ttl, int) or not 1 <= ttl <= 1440:
        raise ApiError("INVREQUEST", "ttl must be an integer from 1 to 1440")
    return ttl


def _https_url(value: object) -> bool:
    if not isinstance(value, str) or not value or any(c.isspace() for c in value):
        return False
    parts = urllib.parse.urlsplit(value)
    return parts.scheme == "https" and bool(parts.netloc)


def _valid_button(button: object) -> bool:
    if not isinstance(button, dict):
        return False
    caption = button.get("caption")
    return (
        isinstance(caption, str)
        and bool(caption.strip())
        and len(caption) <= 30
        and _web_url(button.get("url"))
    )


def _web_url(value: object) -> bool:
    if not isinstance(value, str) or any(c.isspace() for c in value):
        return False
    parts = urllib.parse.urlsplit(value)
    return parts.scheme in {"http", "https"} and bool(parts.netloc)


# Texts that look like a service message: a one-time code or an order notice.
_TRANSACTION_RE = re.compile(
    r"\b\d{4,8}\b|\b(code|код|kod|otp|pin|order|замовлення|заказ|пароль|password)\b",
    re.IGNORECASE,
)


def viber_label(text: str | None) -> str:
    """The label SMS-fly's template matching would give: ``transaction:1`` for codes and
    order notices (a 4–8 digit number or words such as "code", "order"), else
    ``promotion``."""
    return "transaction:1" if text and _TRANSACTION_RE.search(text) else "promotion"
