"""What a transport receives: :class:`SimulatedReply`, and the replies faults turn into —
refusals (error pages and error objects) and spoiled answers (cut, emptied, mistyped,
padded)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django_smsfly.backends.base import RawReply
from django_smsfly.backends.sandbox.faults import (
    DEEP_JSON_DEPTH,
    UNLISTED_STATUS,
    Fault,
    InjectedFault,
)
from django_smsfly.backends.sandbox.wire import describe_error, error_reply, json_bytes

__all__ = ["SimulatedReply", "refusal", "spoiled"]


@dataclass(frozen=True)
class SimulatedReply:
    """What a transport should do with one request: the bytes of an HTTP reply, or a
    :attr:`fault` (TIMEOUT, CONNECTION_REFUSED, CONNECTION_RESET) meaning no reply."""

    http_status: int
    content: bytes
    content_type: str = "application/json"
    #: Extra headers (``Retry-After``).
    headers: Mapping[str, str] = field(default_factory=dict)
    #: The reply object the simulator produced, if it processed the request.
    reply: dict[str, Any] | None = None
    fault: Fault | None = None
    #: For a TIMEOUT: seconds an HTTP server should stay silent before closing.
    delay: float = 0.0
    action: str | None = None
    #: Whether an HTTP server should stream :attr:`content` in chunks without a
    #: ``Content-Length`` (HUGE_BODY), as a server generating a long page does.
    chunked: bool = False

    def as_raw_reply(self) -> RawReply:
        """The reply as a backend returns it (JSON decoded, or the start of the text)."""
        headers = {"content-type": self.content_type}
        headers.update({k.lower(): v for k, v in self.headers.items()})
        text = self.content.decode("utf-8", errors="replace")
        try:
            body = json.loads(text) if text.strip() else None
        except (ValueError, RecursionError):  # RecursionError: nested too deep to read
            body = None
        if body is None:
            return RawReply(self.http_status, None, text=text[:500], headers=headers)
        return RawReply(self.http_status, body, headers=headers)


# The faults a proxy answers with an error page of its own, and that page's status.
_FAULT_STATUS = {
    Fault.FORBIDDEN: 403,
    Fault.RATE_LIMITED: 429,
    Fault.SERVER_ERROR: 500,
    Fault.BAD_GATEWAY: 502,
    Fault.SERVICE_UNAVAILABLE: 503,
}

_HTML_PAGES = {
    403: "403 Forbidden",
    429: "429 Too Many Requests",
    500: "500 Internal Server Error",
    502: "502 Bad Gateway",
    503: "503 Service Temporarily Unavailable",
}


def _nginx_page(status: int) -> bytes:
    title = _HTML_PAGES[status]
    return (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
        f"<center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n"
        "</body>\r\n</html>\r\n"
    ).encode()


_MAINTENANCE_PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>SMS-fly</title></head>\n"
    b"<body><h1>Technical works</h1><p>The service will be back shortly.</p></body></html>\n"
)


def _retry_after_header(value: float | str) -> str:
    if isinstance(value, str):
        return value  # an HTTP date or an unreadable text, sent as given
    return str(max(1, math.ceil(value)))


def refusal(
    fault: Fault,
    action: str | None,
    *,
    retry_after: float | str | None = None,
    code: str = "INVREQUEST",
    http_status: int | None = None,
    date: str = "",
) -> SimulatedReply:
    """How a fault that refuses a request before it is processed looks to a transport."""
    if fault in {Fault.API_ERROR, Fault.UNPROCESSABLE, Fault.DEEP_JSON}:
        detail = ""
        if fault is Fault.UNPROCESSABLE:
            code, status, detail = "INVREQUEST", 422, "the request body could not be read"
        elif fault is Fault.DEEP_JSON:
            code, status = "INVREQUEST", 400
        else:
            status = http_status or (403 if code == "FORBIDDEN" else 400)
        reply = error_reply(code, describe_error(code, detail), date)
        content = json_bytes(reply)
        if fault is Fault.DEEP_JSON:
            # Written out rather than encoded: the point is a depth the encoder could
            # refuse. The recorded reply leaves the nested value out.
            depth = DEEP_JSON_DEPTH
            content = content[:-1] + b', "trace": ' + b"[" * depth + b"]" * depth + b"}"
        return SimulatedReply(status, content, reply=reply, fault=fault, action=action)
    page_status = _FAULT_STATUS.get(fault)
    if page_status is None:  # CONNECTION_REFUSED: no reply at all
        return SimulatedReply(0, b"", fault=fault, action=action)
    headers = {}
    if retry_after is not None:
        headers["Retry-After"] = _retry_after_header(retry_after)
    page = _nginx_page(page_status)
    return SimulatedReply(page_status, page, "text/html", headers, fault=fault, action=action)


def spoiled(
    injected: InjectedFault, action: str | None, *, reply: dict[str, Any], status: int
) -> SimulatedReply:
    """How a fault that strikes after the request was processed looks to a transport.

    ``reply``/``status``: the simulator's own answer, which the fault then spoils.
    """
    fault = injected.fault
    content = b""
    content_type = "application/json"
    if fault is Fault.BROKEN_JSON:
        full = json_bytes(reply)
        content = full[: max(1, len(full) // 2)]
    elif fault is Fault.HTML_ERROR:
        content, content_type = _MAINTENANCE_PAGE, "text/html; charset=utf-8"
    elif fault in {Fault.MISSING_FIELDS, Fault.WRONG_TYPES, Fault.UNKNOWN_STATUS}:
        content = json_bytes(_spoil_data(fault, reply))
    elif fault is Fault.HUGE_BODY:
        content = _padded(reply, injected.size)
    if fault in {Fault.BROKEN_JSON, Fault.HTML_ERROR, Fault.EMPTY_BODY}:
        # The server did its work, then the reply was spoiled on the way out.
        status = 200
    return SimulatedReply(
        status,
        content,
        content_type,
        reply=reply,
        fault=fault,
        delay=injected.delay,
        action=action,
        chunked=fault is Fault.HUGE_BODY,
    )


def _spoil_data(fault: Fault, reply: dict[str, Any]) -> dict[str, Any]:
    """A successful reply with its ``data`` emptied, mistyped or given unknown statuses.

    Error replies are left alone: the fault is about answers that claim success.
    """
    data = reply.get("data")
    if reply.get("success") != 1 or not isinstance(data, dict):
        return reply
    changed: dict[str, Any]
    if fault is Fault.MISSING_FIELDS:
        changed = {}
    elif fault is Fault.WRONG_TYPES:
        changed = {key: _wrapped(value) for key, value in data.items()}
    else:
        changed = {
            key: {**value, "status": UNLISTED_STATUS}
            if isinstance(value, dict) and "status" in value
            else value
            for key, value in data.items()
        }
    return {**reply, "data": changed}


def _wrapped(value: Any) -> Any:
    """Every scalar inside ``value`` put in a one-element list: each field mistyped."""
    if isinstance(value, dict):
        return {key: _wrapped(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_wrapped(item) for item in value]
    return [value]


def _padded(reply: dict[str, Any], size: int) -> bytes:
    """``reply`` as JSON of ``size`` bytes (at least its own length): valid, but huge."""
    base = json_bytes({**reply, "padding": ""})
    return json_bytes({**reply, "padding": "x" * max(0, size - len(base))})
