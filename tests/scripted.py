"""A backend whose replies a test writes: the sandbox, except for the actions scripted.

Tests that need a reply the simulator never gives (a status that goes backwards, a
message id the database cannot store, a reply about another message) or a reply that
arrives at a moment of the test's choosing set a handler for that action on
:data:`SCRIPT`; every other request goes to the sandbox as usual. Use it with
``SMSFLY["BACKEND"] = "tests.scripted.ScriptedBackend"``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

from django_smsfly.backends.base import RawReply
from django_smsfly.backends.sandbox import SandboxBackend

Handler = Callable[[Mapping[str, Any]], RawReply]


class Script:
    """The handlers of the scripted actions, shared by every thread of the test."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._handlers: dict[str, Handler] = {}

    def on(self, action: str, handler: Handler) -> None:
        """Answer ``action`` with ``handler(body)`` from now on."""
        with self._lock:
            self._handlers[action] = handler

    def handler(self, action: str) -> Handler | None:
        with self._lock:
            return self._handlers.get(action)

    def clear(self) -> None:
        with self._lock:
            self._handlers.clear()


SCRIPT = Script()


class ScriptedBackend(SandboxBackend):
    """The sandbox, with the actions set on :data:`SCRIPT` answered by their handlers."""

    def send(self, body: Mapping[str, Any]) -> RawReply:
        handler = SCRIPT.handler(str(body.get("action", "")))
        if handler is not None:
            return handler(body)
        return super().send(body)


def reply(data: Mapping[str, Any]) -> RawReply:
    """A successful API reply carrying ``data``."""
    return RawReply(
        http_status=200,
        body={"success": 1, "date": "2026-12-01 10:00:00 +0200", "data": dict(data)},
    )


def status_reply(message_id: str, **channels: str) -> RawReply:
    """A GETMESSAGESTATUS reply: ``status_reply(mid, sms="DELIVRD")``."""
    data: dict[str, Any] = {"messageID": message_id}
    for channel, status in channels.items():
        data[channel] = {"status": status, "date": "2026-12-01 10:00:05"}
    return reply(data)


def asked_id(body: Mapping[str, Any]) -> str:
    """The message id a GETMESSAGESTATUS request asks about."""
    return str(body["data"]["messageID"])
