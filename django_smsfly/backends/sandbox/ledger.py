"""The sandbox's account shared by the processes of one site (option ``state_file``).

Each process has a simulator of its own, so without this the admin (in the web server),
``smsfly_balance`` and the sync loop would each see a different balance. With a
``state_file`` every request reads the balances and the refunds still due from the file
and writes them back, under an exclusive lock on a file beside it: every process tells
the same story. Message statuses need nothing shared: each is a function of its id and
the time.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import tempfile
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

try:  # POSIX; elsewhere the file is still shared, without a lock between processes
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["Ledger"]

#: The format of the file, written into it.
VERSION = 1


class Ledger:
    """The account's balances and pending refunds in a JSON file."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock_path = self.path.with_name(self.path.name + ".lock")

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the ledger for one read-change-write (other processes wait)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock_path.open("a") as handle:
            if fcntl is not None:
                fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                if fcntl is not None:
                    fcntl.flock(handle, fcntl.LOCK_UN)

    def read(self) -> dict[str, Any] | None:
        """The account as last written, or ``None`` without a (usable) file."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict) or data.get("version") != VERSION:
            return None
        try:
            return {
                "configured": {k: Decimal(v) for k, v in data["configured"].items()},
                "balance": Decimal(data["balance"]),
                "viber_balance": Decimal(data["viber_balance"]),
                "refunds": [
                    (dt.datetime.fromisoformat(at), channel, Decimal(amount))
                    for at, channel, amount in data["refunds"]
                ],
            }
        except (KeyError, TypeError, ValueError, ArithmeticError):
            return None  # a damaged file: start again from the configured balances

    def write(self, account: dict[str, Any]) -> None:
        """Replace the file with ``account`` (atomically: a reader never sees half)."""
        data = {
            "version": VERSION,
            "configured": {k: str(v) for k, v in account["configured"].items()},
            "balance": str(account["balance"]),
            "viber_balance": str(account["viber_balance"]),
            "refunds": [
                [at.isoformat(), channel, str(amount)]
                for at, channel, amount in account["refunds"]
            ],
        }
        descriptor, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".sandbox-")
        try:
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                json.dump(data, handle, indent=1)
            os.replace(temporary, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise

    def __repr__(self) -> str:
        return f"<Ledger {self.path}>"
