"""The simulator's clock: real time by default; tests freeze it and move it forward."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

__all__ = ["Clock", "utcnow"]


def utcnow() -> dt.datetime:
    """The real time now (aware, UTC)."""
    return dt.datetime.now(dt.timezone.utc)


class Clock:
    """A clock that runs with ``base`` (default: real time), or stands still where
    :meth:`freeze` stopped it, in both cases moved forward by :meth:`advance`.

    Not locked: the simulator that owns the clock holds its lock around every use.
    """

    def __init__(self, base: Callable[[], dt.datetime] | None = None) -> None:
        self._base = base or utcnow
        self._frozen: dt.datetime | None = None
        self._offset = dt.timedelta()

    def now(self) -> dt.datetime:
        """The current time (aware)."""
        base = self._frozen if self._frozen is not None else self._base()
        return base + self._offset

    def freeze(self, at: dt.datetime | None = None) -> dt.datetime:
        """Stop at ``at`` (default: now); returns the moment it stopped at."""
        if at is not None and at.tzinfo is None:
            raise ValueError("freeze() needs an aware datetime")
        self._frozen = at if at is not None else self.now()
        self._offset = dt.timedelta()
        return self._frozen

    def unfreeze(self) -> None:
        """Run with the base clock again, with nothing added."""
        self._frozen = None
        self._offset = dt.timedelta()

    def advance(self, seconds: float) -> dt.datetime:
        """Move forward by ``seconds``; returns the new now."""
        if seconds < 0:
            raise ValueError("time only moves forward")
        self._offset += dt.timedelta(seconds=seconds)
        return self.now()
