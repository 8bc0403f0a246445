"""Running test work in threads that stand in for separate workers or processes."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TypeVar

from django.db import connections

T = TypeVar("T")


def run_together(
    count: int,
    work: Callable[[int], T],
    *,
    timeout: float = 120.0,
    together: bool = True,
    names: Sequence[str] | None = None,
) -> list[T]:
    """``work(index)`` in ``count`` threads; their results, in index order.

    Each thread has its own database connection (closed when it ends), as a separate
    process would. With ``together`` the threads start at once through a barrier, so
    their work overlaps; ``names`` names the threads. Every thread must finish within
    ``timeout`` seconds and none may raise: the test fails naming what they raised.
    """
    start = threading.Barrier(count) if together else None
    results: dict[int, T] = {}
    errors: list[BaseException] = []

    def worker(index: int) -> None:
        try:
            if start is not None:
                start.wait()
            results[index] = work(index)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [
        threading.Thread(target=worker, args=(i,), name=None if names is None else names[i])
        for i in range(count)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    assert not any(thread.is_alive() for thread in threads), "a worker did not finish"
    assert not errors, errors
    return [results[index] for index in range(count)]
