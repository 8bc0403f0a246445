"""Pacing requests so that SMS-fly's burst limit (HTTP 429) is not reached."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from django.core.cache import caches

from django_smsfly.conf import smsfly_settings
from django_smsfly.exceptions import SmsFlyError, Verdict


class RateLimiterUnavailable(SmsFlyError):
    """The cache that holds the shared rate limit (``RATE_LIMIT_CACHE``) failed.

    No slot could be had, so no request was made: the message was not sent and may be
    sent later, when the cache is back.
    """

    default_code = "RATE_LIMIT_CACHE_DOWN"
    verdict = Verdict.NOT_SENT
    transient = True


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


class SharedRateLimiter:
    """Spaces calls at ``rate`` per second across every process that uses one cache.

    Time is cut into slots of ``1 / rate`` seconds and each call takes the first free
    slot from now on with ``cache.add`` — an atomic "set if absent" on every Django
    cache (``SET NX`` on Redis, ``add`` on Memcached, an INSERT on the database cache).
    Exactly one caller, on any machine, owns a slot, so the requests leave evenly spaced
    at ``rate`` in all, however many workers there are. The caller then sleeps until its
    slot begins. Slots are keyed by their number since the epoch, so nothing needs
    resetting and an idle period leaves no debt behind.

    A cache that is not shared (the local-memory cache) still limits each process on
    its own; the ``smsfly.W002`` check warns about that.
    """

    def __init__(
        self,
        rate: float | None,
        *,
        cache_alias: str,
        name: str,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate = rate or 0.0
        self._interval = 1.0 / self.rate if self.rate > 0 else 0.0
        self.cache_alias = cache_alias
        self._prefix = f"smsfly:rate:{name}:{self.rate:g}:"
        self._clock = clock  # wall time: slots must mean the same on every machine
        self._sleep = sleep
        self._lock = threading.Lock()
        self._last = -1  # the last slot this process took: later calls start after it

    def acquire(self) -> float:
        """Wait for the next free shared slot; returns the seconds waited."""
        if not self._interval:
            return 0.0
        cache = caches[self.cache_alias]
        now = self._clock()
        with self._lock:
            slot = max(int(now / self._interval), self._last + 1)
        # A slot's key outlives the slot by a little, then the cache forgets it.
        timeout = max(int(self._interval * 4) + 5, 5)
        try:
            while not cache.add(f"{self._prefix}{slot}", 1, timeout=timeout):
                slot += 1
        except Exception as exc:  # each cache library raises its own connection errors
            raise RateLimiterUnavailable(
                f"The rate-limit cache {self.cache_alias!r} failed "
                f"({type(exc).__name__}: {' '.join(str(exc).split())[:200]}); nothing was sent."
            ) from exc
        with self._lock:
            self._last = max(self._last, slot)
        wait = slot * self._interval - self._clock()
        if wait > 0:
            self._sleep(wait)
        return max(wait, 0.0)


_limiters: dict[tuple[str, float, str | None], RateLimiter | SharedRateLimiter] = {}
_limiters_lock = threading.Lock()


def get_rate_limiter(name: str, rate: float | None) -> RateLimiter | SharedRateLimiter:
    """The process-wide limiter for ``name`` ("send", "sync") at ``rate`` per second.

    Shared through the cache named by ``SMSFLY["RATE_LIMIT_CACHE"]`` when it is set, so
    every worker on every machine counts against one limit; otherwise one limiter per
    process, shared by its threads.
    """
    alias = smsfly_settings.RATE_LIMIT_CACHE
    key = (name, float(rate or 0.0), alias)
    with _limiters_lock:
        limiter = _limiters.get(key)
        if limiter is None:
            limiter = (
                SharedRateLimiter(rate, cache_alias=alias, name=name)
                if alias
                else RateLimiter(rate)
            )
            _limiters[key] = limiter
        return limiter


def reset_rate_limiters() -> None:
    """Forget the process's limiters (tests, and after settings change)."""
    with _limiters_lock:
        _limiters.clear()
