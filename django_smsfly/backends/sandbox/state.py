"""What a simulator knows and remembers: its options, the account's balances and the
refunds still due, the outcome rules, and the requests and messages on record."""

from __future__ import annotations

import collections
import datetime as dt
import heapq
import itertools
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django_smsfly.backends.base import redact_body
from django_smsfly.backends.sandbox.faults import Fault
from django_smsfly.backends.sandbox.options import (
    OPTION_NAMES,
    default_options,
    normalize_option,
)
from django_smsfly.backends.sandbox.outcomes import Outcome, OutcomeRules, builtin_outcome
from django_smsfly.backends.sandbox.plan import UNIQUE_BITS
from django_smsfly.backends.sandbox.wire import SMS

__all__ = ["MAX_RECORDS", "RecordedRequest", "SandboxState", "SentMessage"]

#: The most requests and messages kept for inspection; older ones are forgotten.
MAX_RECORDS = 100_000


@dataclass(frozen=True, repr=False)
class RecordedRequest:
    """One request the simulator received. Its ``repr`` hides the API key."""

    #: The action, or ``None`` when the body did not name one.
    action: str | None
    #: The decoded request body (or the start of the raw text when it was not JSON).
    body: Any
    #: The HTTP status of the reply the simulator produced.
    http_status: int
    #: The JSON reply object sent (the simulator's answer, or an injected API error), or
    #: ``None`` when no JSON reply was produced (a refusal page, a dropped connection).
    reply: dict[str, Any] | None
    at: dt.datetime
    #: The injected fault that shaped this exchange, if any.
    fault: Fault | None = None
    #: Whether the simulator acted on the request.
    processed: bool = True

    def __repr__(self) -> str:
        body = redact_body(self.body) if isinstance(self.body, Mapping) else self.body
        fault = f", fault={self.fault.value}" if self.fault else ""
        return (
            f"RecordedRequest(action={self.action!r}, http_status={self.http_status}"
            f"{fault}, body={body!r})"
        )


@dataclass(frozen=True)
class SentMessage:
    """A message the simulator accepted."""

    message_id: str
    recipient: str
    channels: tuple[str, ...]
    #: The request's ``sms`` and ``viber`` blocks (``None`` for an unused channel).
    sms: Mapping[str, Any] | None
    viber: Mapping[str, Any] | None
    #: Total debited, and per channel.
    cost: Decimal
    costs: Mapping[str, Decimal]
    sent_at: dt.datetime
    outcome: Outcome
    #: The Viber label (``"promotion"`` / ``"transaction:1"``), if Viber was used.
    label: str | None = None


class SandboxState:
    """Everything one simulator knows and remembers, with the rules that change it.

    Not locked: the :class:`~django_smsfly.backends.sandbox.Simulator` that owns it holds
    its lock around every use.
    """

    def __init__(self) -> None:
        #: The options, normalized: what :meth:`reset` returns to.
        self.options = default_options()
        #: The SMS balance (what GETBALANCE reports).
        self.balance: Decimal = self.options["balance"]
        #: The Viber balance.
        self.viber_balance: Decimal = self.options["viber_balance"]
        #: Outcomes chosen for recipients by the test.
        self.rules = OutcomeRules()
        #: Every request received, oldest first.
        self.requests: collections.deque[RecordedRequest] = collections.deque(maxlen=MAX_RECORDS)
        #: Every message accepted, oldest first.
        self.messages: collections.deque[SentMessage] = collections.deque(maxlen=MAX_RECORDS)
        # Ids are unique within this simulator by this counter, across processes by the
        # random start and the millisecond in the id.
        self._unique = itertools.count(secrets.randbits(UNIQUE_BITS))
        # The sequence number orders refunds due at the same moment.
        self._refund_seq = itertools.count()
        self._refunds: list[tuple[dt.datetime, int, str, Decimal]] = []

    def configure(self, options: Mapping[str, Any]) -> set[str]:
        """Set ``options`` (checked and normalized); returns the names of those changed.

        An option set to the value it already has changes nothing, so a balance that
        has been spent is only refilled when the configured balance changes.
        """
        unknown = sorted(set(options) - OPTION_NAMES)
        if unknown:
            raise TypeError(f"unexpected sandbox option(s): {', '.join(unknown)}")
        changed: set[str] = set()
        for name, value in options.items():
            normalized = normalize_option(name, value, self.options)
            if normalized == self.options[name]:
                continue
            self.options[name] = normalized
            changed.add(name)
            if name == "balance":
                self.balance = normalized
            elif name == "viber_balance":
                self.viber_balance = normalized
        return changed

    def reset(self) -> None:
        """Back to the configured balances, with no rules, records or refunds due."""
        self.balance = self.options["balance"]
        self.viber_balance = self.options["viber_balance"]
        self.rules.clear()
        self.requests.clear()
        self.messages.clear()
        self._refunds.clear()

    def outcome_for(self, recipient: str) -> Outcome:
        """What becomes of a message to ``recipient``: the first rule it matches decides,
        then the built-in test numbers (if on)."""
        ruled = self.rules.match(recipient)
        if ruled is not None:
            return ruled
        if self.options["test_numbers"]:
            return builtin_outcome(recipient)
        return Outcome.DELIVERED

    def next_unique(self) -> int:
        """A number this simulator has not yet made a message id with."""
        return next(self._unique)

    def account(self) -> dict[str, Any]:
        """The balances and the refunds still due, for a :class:`~.ledger.Ledger`."""
        return {
            "configured": {
                "balance": self.options["balance"],
                "viber_balance": self.options["viber_balance"],
            },
            "balance": self.balance,
            "viber_balance": self.viber_balance,
            "refunds": [(at, channel, amount) for at, _, channel, amount in sorted(self._refunds)],
        }

    def restore_account(self, account: dict[str, Any] | None) -> None:
        """Take over the balances and refunds another process left, unless the configured
        balances changed since (then they start afresh, as :meth:`configure` does)."""
        configured = self.account()["configured"]
        if account is None or account["configured"] != configured:
            return
        self.balance = account["balance"]
        self.viber_balance = account["viber_balance"]
        self._refunds = []
        for at, channel, amount in account["refunds"]:
            self.refund_at(at, channel, amount)

    def refund_at(self, moment: dt.datetime, channel: str, amount: Decimal) -> None:
        """Credit ``amount`` back to ``channel``'s balance once the clock reaches ``moment``."""
        heapq.heappush(self._refunds, (moment, next(self._refund_seq), channel, amount))

    def settle_refunds(self, now: dt.datetime) -> None:
        """Credit back every refund due by ``now``."""
        while self._refunds and self._refunds[0][0] <= now:
            _, _, channel, amount = heapq.heappop(self._refunds)
            if channel == SMS:
                self.balance += amount
            else:
                self.viber_balance += amount
