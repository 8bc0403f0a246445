"""The retry loop: which failures a request is repeated after, and how long to wait.

Only where repeating cannot duplicate anything (the rule is in the package's
documentation, :mod:`django_smsfly.backends.http`): a read-only action after any
transport failure or a busy server, any action when the request certainly did not arrive.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from django_smsfly.backends.base import RawReply, parse_retry_after
from django_smsfly.exceptions import SmsFlyBadReply, SmsFlyTransportError, Verdict

# The backend's logger: one name for every line of the HTTP backend.
logger = logging.getLogger("django_smsfly.http")

#: HTTP statuses after which a read-only request is repeated (the server or a proxy
#: in front of it was busy or briefly unavailable).
RETRY_STATUSES_READ_ONLY = frozenset({429, 502, 503, 504})
#: HTTP statuses after which any request is repeated: a 429 is a refusal, nothing was done.
RETRY_STATUSES_ANY = frozenset({429})


@dataclass(frozen=True)
class RetryPolicy:
    """How often a request may be repeated and how long to wait before each repeat."""

    #: How many times a request that is safe to repeat may be repeated.
    max_retries: int
    #: Seconds before the first retry, doubled for each further one.
    backoff: float
    #: Cap on a single wait; a server's longer ``Retry-After`` is not waited for.
    max_wait: float
    #: Called with the seconds to wait between attempts.
    sleep: Callable[[float], None]
    #: A number in [0, 1) for the jitter that spreads parallel workers out.
    random: Callable[[], float]

    def run(self, attempt: Callable[[int], RawReply], *, action: str, read_only: bool) -> RawReply:
        """Call ``attempt`` (with the attempt's number, from 1) until a reply is final.

        Returns the last reply, also one with a retryable status when no retry is left;
        re-raises the transport error of the last attempt, or of one that must not be
        repeated.
        """
        retry_statuses = RETRY_STATUSES_READ_ONLY if read_only else RETRY_STATUSES_ANY
        for number in range(1, self.max_retries + 2):
            try:
                reply = attempt(number)
            except SmsFlyTransportError as exc:
                # Messages of our errors start with the action already.
                if not _may_repeat_after(exc, read_only) or self._give_up(number, str(exc)):
                    raise
                self._wait(str(exc), number, self.backoff_before(number - 1))
                continue

            if reply.http_status not in retry_statuses:
                return reply
            reason = f"{action}: HTTP {reply.http_status}"
            if self._give_up(number, reason):
                return reply
            wait = self._wait_asked_by(reply, reason, number)
            if wait is None:
                return reply
            self._wait(reason, number, wait)

        raise AssertionError("unreachable")  # pragma: no cover - the loop always exits

    def backoff_before(self, retry_index: int) -> float:
        """Seconds before retry number ``retry_index`` (0-based), capped."""
        base = self.backoff * 2.0**retry_index
        return min(base * (1 + 0.1 * self.random()), self.max_wait)

    def _wait_asked_by(self, reply: RawReply, reason: str, number: int) -> float | None:
        """Seconds to wait before repeating after ``reply``: its ``Retry-After`` or the
        backoff; ``None`` when the server asks for a wait longer than the cap."""
        retry_after = parse_retry_after(reply.headers.get("retry-after"))
        if retry_after is None:
            return self.backoff_before(number - 1)
        if retry_after > self.max_wait:
            # Waiting that long would hold a worker; the caller can reschedule.
            logger.warning(
                "SMS-fly %s with Retry-After %.0f s (over the %.0f s limit); not retrying",
                reason,
                retry_after,
                self.max_wait,
            )
            return None
        return retry_after

    def _give_up(self, number: int, reason: str) -> bool:
        """True (after logging why) when attempt ``number`` was the last one allowed."""
        if number <= self.max_retries:
            return False
        if self.max_retries:
            logger.warning("SMS-fly %s; giving up after %d attempts", reason, number)
        return True

    def _wait(self, reason: str, number: int, seconds: float) -> None:
        logger.warning(
            "SMS-fly %s; retry %d of %d in %.2f s", reason, number, self.max_retries, seconds
        )
        self.sleep(seconds)


def _may_repeat_after(exc: SmsFlyTransportError, read_only: bool) -> bool:
    if isinstance(exc, SmsFlyBadReply):
        # A reply arrived; asking again would most likely bring the same one.
        return False
    if read_only:
        return True
    # Only a request that certainly did not arrive can be repeated without a duplicate.
    return exc.verdict is Verdict.NOT_SENT
