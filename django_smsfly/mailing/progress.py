"""How far a mailing run has got, as one line: where it is, what it did, how many rows
of how many, its pace and the time left.

Pure: :func:`progress_line` takes the report so far, the number of rows the run is to
go through (when known) and the seconds since it started, and returns the line.
``smsfly_send --csv`` prints it (redrawn in place on a terminal, every
:data:`PLAIN_EVERY` seconds in a log); the admin's campaign pages can show the same.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from django.utils.translation import gettext as _

from django_smsfly.mailing.report import MailingReport

#: Seconds between two progress lines when the output is not a terminal (a log, a pipe).
PLAIN_EVERY = 10.0

#: Seconds between two redraws of the line on a terminal: a few times a second.
REDRAW_EVERY = 0.25


def monotonic() -> float:
    """The clock runs are timed with (a test puts a fake one in its place)."""
    return time.monotonic()


def pace(report: MailingReport, elapsed: float) -> float:
    """Rows handled per second, not counting the rows another run sent or has in hand:
    those take no time, and a resumed run would otherwise promise too much."""
    if elapsed <= 0:
        return 0.0
    return _worked(report) / elapsed


def time_left(report: MailingReport, total: int | None, elapsed: float) -> float | None:
    """Seconds until the last row at the pace so far; ``None`` when it cannot be told
    (the total is not known, or nothing has been handled yet)."""
    if total is None:
        return None
    rate = pace(report, elapsed)
    if rate <= 0:
        return None
    return max(total - report.rows, 0) / rate


def duration(seconds: float) -> str:
    """``"45s"``, ``"16m 05s"``, ``"2h 07m"``: short, for a line that is redrawn."""
    whole = max(round(seconds), 0)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return _("%(hours)dh %(minutes)02dm") % {"hours": hours, "minutes": minutes}
    if minutes:
        return _("%(minutes)dm %(seconds)02ds") % {"minutes": minutes, "seconds": secs}
    return _("%(seconds)ds") % {"seconds": secs}


def progress_line(report: MailingReport, total: int | None, elapsed: float) -> str:
    """``line 5211 · sent 5150 · skipped 0 · errors 59 · 5210/10000 rows (52%) · 5.0/s
    · ETA 15m 58s``; without a known total the count stands alone and there is no ETA,
    and once every row is done the ETA is left out."""
    parts = [
        _("line %(line)d · sent %(sent)d · skipped %(skipped)d · errors %(errors)d")
        % {
            "line": report.line,
            "sent": report.sent,
            "skipped": report.skipped,
            "errors": report.errors,
        }
    ]
    if total:
        parts.append(
            _("%(rows)d/%(total)d rows (%(percent)d%%)")
            % {"rows": report.rows, "total": total, "percent": 100 * report.rows // total}
        )
    else:
        parts.append(_("%(rows)d rows") % {"rows": report.rows})
    parts.append(_("%(rate).1f/s") % {"rate": pace(report, elapsed)})
    left = time_left(report, total, elapsed)
    if left is not None and total is not None and report.rows < total:
        parts.append(_("ETA %(left)s") % {"left": duration(left)})
    return " · ".join(parts)


class Ticker:
    """Tells when a periodic line is due: every ``every`` seconds of ``clock``."""

    def __init__(self, every: float, clock: Callable[[], float] = monotonic) -> None:
        self.every = every
        self._clock = clock
        self._last = clock()

    def due(self) -> bool:
        """Whether ``every`` seconds have passed since the last line (or the start);
        if so, the next line is due ``every`` seconds from now."""
        now = self._clock()
        if now - self._last < self.every:
            return False
        self._last = now
        return True


def _worked(report: MailingReport) -> int:
    return max(report.rows - report.skipped - report.elsewhere, 0)
