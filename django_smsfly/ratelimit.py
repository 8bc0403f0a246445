"""Pacing requests so that SMS-fly's burst limit (HTTP 429) is not reached."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class RateLimiter:
    """Spaces calls to :meth:`acquire` evenly at ``rate`` per second, across threads.

    Evenly spaced rather than bursty: SMS-fly refuses bursts, and spacing keeps the
    throughput at ``rate`` without ever sending several requests at once. A ``rate`` of
    ``0`` or ``None`` means no limit.
    """

    def __init__(
        self,
        rate: float | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate = rate or 0.0
        self._interval = 1.0 / self.rate if self.rate > 0 else 0.0
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next = 0.0

    def acquire(self) -> float:
        """Wait for the next slot; returns the seconds waited."""
        if not self._interval:
            return 0.0
        with self._lock:
            now = self._clock()
            slot = max(now, self._next)
            self._next = slot + self._interval
        wait = slot - now
        if wait > 0:
            self._sleep(wait)
        return max(wait, 0.0)
