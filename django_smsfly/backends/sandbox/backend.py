"""The sandbox backend: a client's requests answered by a simulator in this process."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django_smsfly.backends.base import BaseBackend, RawReply
from django_smsfly.backends.sandbox.faults import Fault
from django_smsfly.backends.sandbox.options import over_defaults, pop_options
from django_smsfly.backends.sandbox.simulator import Simulator, get_simulator
from django_smsfly.exceptions import (
    SmsFlyConnectionError,
    SmsFlyTimeout,
    SmsFlyTransportError,
    Verdict,
)

__all__ = ["SandboxBackend"]


class SandboxBackend(BaseBackend):
    """A backend that answers from a :class:`Simulator` in this process; nothing is sent.

    Its own keyword arguments are ``simulator`` and the simulator options (see
    :class:`SandboxOptions`), which are applied to the simulator; the rest are
    :class:`~django_smsfly.backends.base.BaseBackend`'s. Without ``simulator`` it uses
    the process-wide one from :func:`get_simulator`, so every client in the process sees
    the same balance and messages.
    """

    requires_api_key = False
    reaches_phones = False

    def __init__(self, *, simulator: Simulator | None = None, **kwargs: Any) -> None:
        options = pop_options(kwargs)
        super().__init__(**kwargs)
        if simulator is None:
            # The shared simulator takes the whole configuration each time, so options
            # removed from the settings fall back to their defaults instead of lingering.
            simulator = get_simulator()
            options = over_defaults(options)
        #: The simulator that answers this backend's requests.
        self.simulator = simulator
        self.simulator.configure(**options)

    def send(self, body: Mapping[str, Any]) -> RawReply:
        """Hand the body to the simulator; raise as a transport would for no-reply faults."""
        reply = self.simulator.respond(body)
        where = f"sandbox: {reply.action or 'request'}"
        if reply.fault is Fault.CONNECTION_REFUSED:
            raise SmsFlyConnectionError(f"{where}: connection refused", action=reply.action)
        if reply.fault is Fault.TIMEOUT:
            raise SmsFlyTimeout(f"{where}: no reply in time", action=reply.action)
        if reply.fault is Fault.CONNECTION_RESET:
            raise SmsFlyTransportError(
                f"{where}: connection reset before the reply",
                verdict=Verdict.UNKNOWN,
                action=reply.action,
            )
        return reply.as_raw_reply()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} in-process {self.simulator!r}>"
