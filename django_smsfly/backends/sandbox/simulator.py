"""The simulator: SMS-fly's API answered in this process, and the process-wide one.

:class:`Simulator` is the thread-safe face of the sandbox. It holds one lock around its
parts — the :class:`~django_smsfly.backends.sandbox.state.SandboxState`, the
:class:`~django_smsfly.backends.sandbox.clock.Clock`, the injected faults and the rate
limit — and runs each request through them: latency, rate limit, injected fault, the
action itself (:func:`~django_smsfly.backends.sandbox.actions.answer`), the record.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django_smsfly.backends.sandbox.actions import answer
from django_smsfly.backends.sandbox.clock import Clock
from django_smsfly.backends.sandbox.faults import Fault, FaultQueue, InjectedFault, TokenBucket
from django_smsfly.backends.sandbox.ledger import Ledger
from django_smsfly.backends.sandbox.options import SandboxOptions, decimal_option
from django_smsfly.backends.sandbox.outcomes import Outcome
from django_smsfly.backends.sandbox.plan import MessagePlan
from django_smsfly.backends.sandbox.replies import SimulatedReply, refusal, spoiled
from django_smsfly.backends.sandbox.state import RecordedRequest, SandboxState, SentMessage
from django_smsfly.backends.sandbox.wire import (
    NOT_JSON,
    ApiError,
    action_of,
    decode_body,
    error_reply,
    json_bytes,
    with_offset,
)

if TYPE_CHECKING:  # pragma: no cover
    from typing_extensions import Unpack

__all__ = ["Simulator", "get_simulator"]


class Simulator:
    """A thread-safe simulation of SMS-fly's API: :meth:`handle` answers one request.

    ``clock`` is a callable returning the current aware datetime (default: real time);
    :meth:`freeze` and :meth:`advance` control time in tests. Other keyword arguments are
    the options listed in the documentation of :mod:`django_smsfly.backends.sandbox`.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], dt.datetime] | None = None,
        **options: Unpack[SandboxOptions],
    ) -> None:
        self._lock = threading.RLock()
        self._ledger: Ledger | None = None
        self._clock = Clock(clock)
        self._state = SandboxState()
        self._faults = FaultQueue()
        self._bucket = TokenBucket()
        self.configure(**options)
        self._bucket.configure(self._state.options["rate_limit"], self._state.options["burst"])

    # -- configuration -------------------------------------------------------------------

    def configure(self, **options: Unpack[SandboxOptions]) -> None:
        """Set options; each becomes what :meth:`reset` returns to.

        An option set to the value it already has changes nothing, so building many
        backends from the same settings never resets a balance that has been spent.
        """
        with self._lock:
            changed = self._state.configure(options)
            if changed & {"rate_limit", "burst"}:
                current = self._state.options
                self._bucket.configure(current["rate_limit"], current["burst"])

    @property
    def options(self) -> dict[str, Any]:
        """The configured options (what :meth:`reset` restores)."""
        with self._lock:
            return dict(self._state.options)

    @property
    def balance(self) -> Decimal:
        """The SMS balance (what GETBALANCE reports)."""
        with self._account():
            self._state.settle_refunds(self.now())
            return self._state.balance

    @balance.setter
    def balance(self, value: Decimal | str | int | float) -> None:
        with self._account():
            self._state.balance = decimal_option("balance", value)

    @property
    def viber_balance(self) -> Decimal:
        """The Viber balance."""
        with self._account():
            self._state.settle_refunds(self.now())
            return self._state.viber_balance

    @viber_balance.setter
    def viber_balance(self, value: Decimal | str | int | float) -> None:
        with self._account():
            self._state.viber_balance = decimal_option("viber_balance", value)

    @contextlib.contextmanager
    def _account(self) -> Iterator[None]:
        """Hold the lock, with the account as the ``state_file`` has it (if one is set):
        read before, written back after, under the file's lock."""
        with self._lock:
            path = self._state.options["state_file"]
            if path is None:
                yield
                return
            if self._ledger is None or str(self._ledger.path) != path:
                self._ledger = Ledger(path)
            ledger = self._ledger
            with ledger.locked():
                self._state.restore_account(ledger.read())
                try:
                    yield
                finally:
                    ledger.write(self._state.account())

    @property
    def speed(self) -> float:
        """How many times faster than real time statuses move (for messages sent from now)."""
        return float(self._state.options["speed"])

    @property
    def latency(self) -> float:
        """Seconds every request takes."""
        return float(self._state.options["latency"])

    def reset(self) -> None:
        """Back to the configured state: balances, no rules, faults or records, real time
        (a ``state_file``'s account too)."""
        with self._account():
            self._state.reset()
            self._faults.clear()
            self._clock.unfreeze()
            self._bucket.refill()

    # -- time ----------------------------------------------------------------------------

    def now(self) -> dt.datetime:
        """The simulator's current time (aware)."""
        with self._lock:
            return self._clock.now()

    def freeze(self, at: dt.datetime | None = None) -> dt.datetime:
        """Stop the clock at ``at`` (default: now) until :meth:`advance` moves it."""
        with self._lock:
            return self._clock.freeze(at)

    def unfreeze(self) -> None:
        """Let the clock run again from the constructor's clock."""
        with self._lock:
            self._clock.unfreeze()

    def advance(self, seconds: float) -> dt.datetime:
        """Move the clock forward (frozen or not) by real ``seconds``; returns the new now."""
        with self._lock:
            return self._clock.advance(seconds)

    # -- outcomes ------------------------------------------------------------------------

    def add_rule(
        self, pattern: str | re.Pattern[str] | Callable[[str], bool], outcome: Outcome | str
    ) -> None:
        """Give recipients matching ``pattern`` (a regex searched in the number, or a
        callable taking it) the ``outcome``. Rules apply in the order added, before the
        built-in test numbers."""
        with self._lock:
            self._state.rules.add(pattern, outcome)

    def clear_rules(self) -> None:
        """Forget the rules added with :meth:`add_rule`."""
        with self._lock:
            self._state.rules.clear()

    def outcome_for(self, recipient: str) -> Outcome:
        """What would become of a message to ``recipient``."""
        with self._lock:
            return self._state.outcome_for(recipient)

    # -- faults --------------------------------------------------------------------------

    def inject(
        self,
        fault: Fault | str,
        *,
        times: int = 1,
        action: str | None = None,
        retry_after: float | str | None = None,
        delay: float | None = None,
        code: str | None = None,
        http_status: int | None = None,
        size: int | None = None,
    ) -> None:
        """Make the next ``times`` requests (of ``action``, or any) fail with ``fault``.

        Faults are used in the order injected. ``retry_after`` adds a ``Retry-After``
        header (RATE_LIMITED, SERVICE_UNAVAILABLE): seconds, or a text sent as it is (an
        HTTP date, or something unreadable). ``delay`` is how long an HTTP server stays
        silent on a TIMEOUT (default :data:`.DEFAULT_TIMEOUT_DELAY`). ``code`` and
        ``http_status`` shape an API_ERROR (default ``INVREQUEST``, with that code's
        usual status); ``size`` is the length of a HUGE_BODY reply in bytes.
        """
        injected = InjectedFault.create(
            fault,
            times=times,
            action=action,
            retry_after=retry_after,
            delay=delay,
            code=code,
            http_status=http_status,
            size=size,
        )
        with self._lock:
            self._faults.add(injected)

    def clear_faults(self) -> None:
        """Drop every fault not yet used."""
        with self._lock:
            self._faults.clear()

    @property
    def pending_faults(self) -> list[tuple[Fault, int, str | None]]:
        """Faults waiting: ``(fault, times left, action)``."""
        with self._lock:
            return self._faults.pending()

    # -- records -------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received, oldest first."""
        with self._lock:
            return list(self._state.requests)

    def requests_for(self, action: str) -> list[RecordedRequest]:
        """The requests of one action."""
        with self._lock:
            return [r for r in self._state.requests if r.action == action]

    @property
    def messages(self) -> list[SentMessage]:
        """Every message accepted, oldest first."""
        with self._lock:
            return list(self._state.messages)

    def status_of(self, message_id: str) -> dict[str, str]:
        """Each channel's status now, e.g. ``{"viber": "DELIVRD", "sms": "REFUND"}``."""
        plan = MessagePlan.decode(message_id)
        if plan is None:
            raise ValueError(f"{message_id!r} is not a sandbox message id")
        return {ch: status for ch, (status, _) in plan.status_at(self.now()).items()}

    # -- the API -------------------------------------------------------------------------

    def handle(self, body: Mapping[str, Any] | bytes | str | None) -> tuple[int, dict[str, Any]]:
        """Answer one request body (a dict, or the raw JSON) as SMS-fly would, with no
        faults or latency: ``(http_status, reply)``."""
        payload, text = decode_body(body)
        with self._account():
            return self._process(payload, text, None)

    def respond(self, body: Mapping[str, Any] | bytes | str | None) -> SimulatedReply:
        """One request the way a transport sees it: latency, rate limit and injected
        faults applied around :meth:`handle`."""
        payload, text = decode_body(body)
        action = action_of(payload)
        latency = self.latency
        if latency:
            time.sleep(latency)  # outside the lock: requests overlap like on a network
        with self._account():
            wait = self._bucket.take()
            if wait is not None:
                limited = refusal(Fault.RATE_LIMITED, action, retry_after=wait)
                return self._refuse(action, (payload, text), limited)
            injected = self._faults.take(action)
            if injected is not None and not injected.fault.processed:
                refused = refusal(
                    injected.fault,
                    action,
                    retry_after=injected.retry_after,
                    code=injected.code,
                    http_status=injected.http_status,
                    date=with_offset(self.now()),
                )
                return self._refuse(action, (payload, text), refused)
            status, reply = self._process(payload, text, injected.fault if injected else None)
        if injected is None:
            return SimulatedReply(status, json_bytes(reply), reply=reply, action=action)
        return spoiled(injected, action, reply=reply, status=status)

    def _refuse(
        self, action: str | None, raw: tuple[Any, str | None], refused: SimulatedReply
    ) -> SimulatedReply:
        """Record a request refused before it was processed, and return the refusal."""
        self._record(
            action, raw, refused.http_status, refused.reply, fault=refused.fault, processed=False
        )
        return refused

    def _process(
        self, payload: Any, text: str | None, fault: Fault | None
    ) -> tuple[int, dict[str, Any]]:
        now = self.now()
        self._state.settle_refunds(now)
        action = action_of(payload)
        try:
            data = answer(self._state, payload, now)
            reply: dict[str, Any] = {"success": 1, "date": with_offset(now), "data": data}
            status = 200
        except ApiError as error:
            status = error.http_status
            reply = error_reply(error.code, error.description, with_offset(now))
        self._record(action, (payload, text), status, reply, fault=fault, at=now)
        return status, json.loads(json.dumps(reply))  # a copy the caller may change

    def _record(
        self,
        action: str | None,
        raw: tuple[Any, str | None],
        status: int,
        reply: dict[str, Any] | None,
        *,
        fault: Fault | None,
        processed: bool = True,
        at: dt.datetime | None = None,
    ) -> None:
        payload, text = raw
        body = payload if payload is not NOT_JSON else text
        self._state.requests.append(
            RecordedRequest(action, body, status, reply, at or self.now(), fault, processed)
        )

    def __repr__(self) -> str:
        key = "checked" if self._state.options["api_key"] else "any"
        return (
            f"<Simulator speed={self.speed:g} balance={self._state.balance} "
            f"viber_balance={self._state.viber_balance} key={key}>"
        )


class _DefaultHolder:
    lock = threading.Lock()
    simulator: Simulator | None = None


def get_simulator() -> Simulator:
    """The process-wide simulator every :class:`SandboxBackend` without its own uses.

    Tests reach the sandbox's state through it: ``get_simulator().messages``,
    ``.inject(...)``, ``.freeze()``; call ``.reset()`` between tests.
    """
    with _DefaultHolder.lock:
        if _DefaultHolder.simulator is None:
            _DefaultHolder.simulator = Simulator()
        return _DefaultHolder.simulator
