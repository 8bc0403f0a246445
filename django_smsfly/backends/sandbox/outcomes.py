"""What becomes of a message: the outcomes, the built-in test numbers and the rules a
test adds to choose an outcome by recipient."""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

__all__ = ["TEST_NUMBERS", "Outcome", "OutcomeRules", "builtin_outcome"]


class Outcome(str, enum.Enum):
    """What becomes of a message sent to a recipient (chosen by rules and test numbers)."""

    #: The first channel is delivered (a delivered Viber message is later ``VIEWED``).
    DELIVERED = "delivered"
    #: Every channel ends ``UNDELIV``.
    UNDELIVERED = "undelivered"
    #: Viber ends ``UNDELIV``; an SMS channel is delivered.
    NO_VIBER = "no_viber"
    #: Nothing is delivered: each channel ends ``EXPIRED`` when its ttl runs out.
    EXPIRED = "expired"
    #: SENDMESSAGE itself is refused with ``INVRECIPIENT``; nothing is spent.
    REJECTED = "rejected"
    #: Every channel is stopped by the system (``STOPED``).
    STOPPED = "stopped"
    #: SENDMESSAGE is refused with ``ERRPHONES``: the number is on the account's stop list.
    STOP_LISTED = "stop_listed"


#: One example number per built-in test outcome (any ``380`` number with that ending works).
TEST_NUMBERS: Mapping[Outcome, str] = {
    Outcome.UNDELIVERED: "380500000001",
    Outcome.NO_VIBER: "380500000002",
    Outcome.EXPIRED: "380500000003",
    Outcome.REJECTED: "380500000004",
    Outcome.STOPPED: "380500000005",
    Outcome.STOP_LISTED: "380500000006",
}
_TEST_SUFFIXES = {number[-4:]: outcome for outcome, number in TEST_NUMBERS.items()}
_UA_NUMBER = re.compile(r"380\d{9}")


def builtin_outcome(recipient: str) -> Outcome:
    """The outcome the built-in test numbers give ``recipient``."""
    if _UA_NUMBER.fullmatch(recipient):
        return _TEST_SUFFIXES.get(recipient[-4:], Outcome.DELIVERED)
    return Outcome.DELIVERED


@dataclass
class _Rule:
    match: Callable[[str], bool]
    outcome: Outcome


class OutcomeRules:
    """Outcomes chosen for recipients by pattern, the first matching rule winning.

    Not locked: the simulator that owns the rules holds its lock around every use.
    """

    def __init__(self) -> None:
        self._rules: list[_Rule] = []

    def add(
        self, pattern: str | re.Pattern[str] | Callable[[str], bool], outcome: Outcome | str
    ) -> None:
        """Give recipients matching ``pattern`` (a regex searched in the number, or a
        callable taking it) the ``outcome``, after the rules already added."""
        outcome = Outcome(outcome)
        if isinstance(pattern, str | re.Pattern):
            regex = re.compile(pattern)

            def search(recipient: str) -> bool:
                return regex.search(recipient) is not None

            match: Callable[[str], bool] = search
        else:
            match = pattern
        self._rules.append(_Rule(match, outcome))

    def clear(self) -> None:
        """Forget every rule."""
        self._rules.clear()

    def match(self, recipient: str) -> Outcome | None:
        """The outcome of the first rule ``recipient`` matches, or ``None``."""
        for rule in self._rules:
            if rule.match(recipient):
                return rule.outcome
        return None
