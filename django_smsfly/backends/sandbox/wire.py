"""SMS-fly's wire format, as every part of the sandbox reads and writes it.

Channel names, money and dates written the way the live API writes them, its error
replies, and JSON request bodies decoded as a server receives them.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django_smsfly.results import KYIV

__all__ = [
    "API_PATH",
    "CHANNELS",
    "MONEY",
    "NOT_JSON",
    "SMS",
    "VIBER",
    "ApiError",
    "action_of",
    "decode_body",
    "describe_error",
    "error_reply",
    "json_bytes",
    "kyiv_local",
    "money",
    "with_offset",
]

#: The path SMS-fly serves the API on (the sandbox server answers there too).
API_PATH = "/api/v2/api.php"

SMS = "sms"
VIBER = "viber"
CHANNELS = (SMS, VIBER)

#: The precision of every amount the API writes (three decimal places).
MONEY = Decimal("0.001")

_ERROR_TEXT = {
    "INVREQUEST": "the request is empty or has an invalid format",
    "INVACTION": "action is not specified or not supported",
    "FORBIDDEN": "access denied",
    "INVRECIPIENT": "wrong recipient",
    "INVTEXT": "message text is missing or does not comply with the requirements",
    "INVBUTTON": "invalid button format",
    "INVIMAGEURL": "invalid url format",
    "INVROUTE": "message cannot be sent",
    "INVSOURCE": "unspecified or incorrect sender",
    "INVCHANNELS": "correct sending channels are not set",
    "INVSMSMESSAGE": "message for sms channel not specified",
    "INVVIBERMESSAGE": "message for viber channel not specified",
    "INVMSGID": "identifier not specified or not found",
    "INSUFFICIENTFUNDS": "insufficient funds",
}

#: Stands for a body that is not JSON at all (``None`` is a JSON value: ``null``).
NOT_JSON = object()


def describe_error(code: str, detail: str = "") -> str:
    """The ``description`` SMS-fly gives an error ``code``, with the sandbox's ``detail``."""
    return _ERROR_TEXT.get(code, code) + (f": {detail}" if detail else "")


class ApiError(Exception):
    """A refusal the simulator answers with an error reply."""

    def __init__(self, code: str, detail: str = "", http_status: int = 400) -> None:
        super().__init__(code)
        self.code = code
        self.http_status = http_status
        self.description = describe_error(code, detail)


def error_reply(code: str, description: str, date: str) -> dict[str, Any]:
    """The reply object of a refused request."""
    return {"success": 0, "error": {"code": code, "date": date, "description": description}}


def with_offset(moment: dt.datetime) -> str:
    """``2021-12-17 10:36:07 +0200``: reply and send dates."""
    return moment.astimezone(KYIV).strftime("%Y-%m-%d %H:%M:%S %z")


def kyiv_local(moment: dt.datetime) -> str:
    """``2021-12-17 10:36:09``: status dates carry no offset on the live API."""
    return moment.astimezone(KYIV).strftime("%Y-%m-%d %H:%M:%S")


def money(value: Decimal) -> str:
    """An amount as the API writes it: ``"0.479"``."""
    return format(value.quantize(MONEY, rounding=ROUND_HALF_UP), "f")


def decode_body(body: Mapping[str, Any] | bytes | str | None) -> tuple[Any, str | None]:
    """The JSON value of a body (or :data:`NOT_JSON`) and, for a raw body, its text."""
    if body is None:
        return NOT_JSON, None
    if isinstance(body, Mapping):
        # Through JSON and back, as on the wire: the record cannot change under the
        # caller's feet, and a body HTTP could not carry fails here too.
        return json.loads(json.dumps(body)), None
    if isinstance(body, bytes):
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return NOT_JSON, body[:500].decode("utf-8", errors="replace")
    else:
        text = body
    if not text.strip():
        return NOT_JSON, text
    try:
        return json.loads(text), text
    except ValueError:
        return NOT_JSON, text[:500]


def action_of(payload: Any) -> str | None:
    """The ``action`` a decoded body names, if it names one."""
    action = payload.get("action") if isinstance(payload, dict) else None
    return action if isinstance(action, str) else None


def json_bytes(reply: Mapping[str, Any]) -> bytes:
    """A reply object as the bytes of a JSON body (UTF-8, non-ASCII kept as is)."""
    return json.dumps(reply, ensure_ascii=False).encode("utf-8")
