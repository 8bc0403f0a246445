"""Recording what the app's signals were sent with."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.dispatch import Signal


class Recorder:
    """Collects what a signal's receivers were given (its keyword arguments)."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(self, sender: Any, **kwargs: Any) -> None:
        kwargs.pop("signal", None)
        self.calls.append(kwargs)


@contextmanager
def recording(signal: Signal) -> Iterator[Recorder]:
    """A :class:`Recorder` connected to ``signal`` for the ``with`` block."""
    recorder = Recorder()
    signal.connect(recorder)
    try:
        yield recorder
    finally:
        signal.disconnect(recorder)
