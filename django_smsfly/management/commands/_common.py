"""What the ``smsfly_*`` management commands share.

:class:`SmsFlyCommand` turns every refusal of SMS-fly and every configuration mistake
into a :class:`~django.core.management.CommandError` with a readable message (never a
traceback) and exit status 1; :class:`Progress` draws a status line in place on a
terminal, and :class:`RunOutput` tells a mailing run with it; the argument types give
clear messages for bad numbers, and ``--channel`` is read one way everywhere.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser, OutputWrapper
from django.utils.translation import gettext as _

from django_smsfly.channels import Channel
from django_smsfly.exceptions import SmsFlyError, SmsFlyValidationError
from django_smsfly.mailing import MailingReport, RowResult, summary
from django_smsfly.mailing import progress as run_progress

#: Exit status of a command stopped with Ctrl-C.
INTERRUPTED = 130


@contextmanager
def api_errors() -> Iterator[None]:
    """Turn SMS-fly errors and configuration errors into a :class:`CommandError`.

    Exit status 1 for both. The client already scrubs the API key from every error
    text, and configuration errors never contain it, so the messages are safe to print.
    """
    try:
        yield
    except SmsFlyValidationError as exc:
        raise CommandError(_("Invalid input: %(error)s") % {"error": exc}) from exc
    except SmsFlyError as exc:
        text = _("SMS-fly request failed: %(error)s [%(code)s]") % {
            "error": exc,
            "code": exc.error_code,
        }
        if exc.transient:
            text += " " + _("This may pass; try again later.")
        raise CommandError(text) from exc
    except ImproperlyConfigured as exc:
        raise CommandError(_("Configuration error: %(error)s") % {"error": exc}) from exc


class SmsFlyCommand(BaseCommand):
    """Base of the app's commands: translated help, readable errors, verbosity, JSON.

    Subclasses set :attr:`help` with ``gettext_noop`` (so it is extracted for
    translation and still a plain ``str``); it is translated when the parser is built.
    """

    #: The ``--verbosity`` of the running command (0 prints nothing but errors).
    verbosity: int = 1

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        """Build the parser with the description in the active language."""
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parser.description = _(self.help) if self.help else None
        return parser

    def execute(self, *args: Any, **options: Any) -> str | None:
        """Run the command; SMS-fly and configuration errors become ``CommandError``.

        Ctrl-C ends the command with a short message and exit status 130 (the shell's
        convention for an interrupt), not a traceback.
        """
        self.verbosity = int(options.get("verbosity", 1))
        try:
            with api_errors():
                return super().execute(*args, **options)
        except KeyboardInterrupt:
            raise CommandError(_("Interrupted."), returncode=INTERRUPTED) from None

    def say(self, text: str, *, level: int = 1) -> None:
        """Write a line to stdout when the verbosity is at least ``level``."""
        if self.verbosity >= level:
            self.stdout.write(text)

    def warn(self, text: str) -> None:
        """Write a warning to stderr (shown at every verbosity: it needs attention)."""
        self.stderr.write(text, style_func=self.style.WARNING)

    def write_json(self, data: object) -> None:
        """Write ``data`` as JSON; money (``Decimal``) becomes a string, keeping every digit."""
        self.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=_json_default))


def _json_default(value: object) -> object:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def error_codes(codes: Mapping[str, int]) -> str:
    """``"HTTP_500 ×3, RATE_LIMITED ×1"``, most frequent first."""
    ranked = sorted(codes.items(), key=lambda item: (-item[1], item[0]))
    return ", ".join(f"{code} ×{count}" for code, count in ranked)


# -- argument types (argparse reports their messages as usage errors) -----------------------


def positive_int(value: str) -> int:
    """A whole number of at least 1."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            _("%(value)r is not a whole number") % {"value": value}
        ) from None
    if number < 1:
        raise argparse.ArgumentTypeError(_("must be at least 1, not %(value)s") % {"value": value})
    return number


def non_negative_float(value: str) -> float:
    """A number of at least 0 (for rates, where 0 means no limit)."""
    number = _float(value)
    if number < 0:
        raise argparse.ArgumentTypeError(
            _("must not be negative, not %(value)s") % {"value": value}
        )
    return number


def positive_float(value: str) -> float:
    """A number greater than 0."""
    number = _float(value)
    if number <= 0:
        raise argparse.ArgumentTypeError(
            _("must be greater than 0, not %(value)s") % {"value": value}
        )
    return number


def add_channel_option(parser: CommandParser) -> None:
    """``--channel sms|viber``: only this channel (read with :func:`chosen_channels`)."""
    parser.add_argument(
        "--channel",
        choices=[c.value for c in Channel],
        help=_("Only this channel (default: both)."),
    )


def chosen_channels(options: Mapping[str, Any]) -> list[Channel]:
    """The channels ``--channel`` asks for: the one it names, or every channel."""
    return [Channel(options["channel"])] if options["channel"] else list(Channel)


def _float(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            _("%(value)r is not a number") % {"value": value}
        ) from None
    if not math.isfinite(number):
        raise argparse.ArgumentTypeError(_("%(value)r is not a number") % {"value": value})
    return number


# -- progress ----------------------------------------------------------------------------------


class Progress:
    """A status line redrawn in place on a terminal; does nothing when output is not one.

    Logs and pipes get no carriage returns: commands print plain lines there instead.
    """

    #: The fewest seconds between redraws: a terminal need not show every row.
    REDRAW_EVERY = 0.1

    def __init__(
        self,
        out: OutputWrapper,
        *,
        enabled: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._out = out
        #: Whether the line is drawn at all (asked for, and the output is a terminal).
        self.enabled = enabled and out.isatty()
        self._clock = clock
        self._started = clock()
        self._drawn_at: float | None = None
        self._text = ""
        self._visible = False

    def rate(self, count: int) -> float:
        """``count`` per second since the display started."""
        elapsed = self._clock() - self._started
        return count / elapsed if elapsed > 0 else 0.0

    def update(self, text: str, *, force: bool = False) -> None:
        """Show ``text`` in place of the previous line (at most every :attr:`REDRAW_EVERY`)."""
        if not self.enabled:
            return
        now = self._clock()
        if self._visible and text == self._text:
            return
        if not force and self._drawn_at is not None and now - self._drawn_at < self.REDRAW_EVERY:
            return
        # Carriage return, then erase to the end of the line: a shorter text leaves no tail.
        self._out.write(f"\r\x1b[K  {text}", ending="")
        self._out.flush()
        self._drawn_at = now
        self._text = text
        self._visible = True

    def clear(self) -> None:
        """Erase the line so that another message can be written in its place."""
        if self._visible:
            self._out.write("\r\x1b[K", ending="")
            self._out.flush()
            self._visible = False
            self._drawn_at = None

    def finish(self, text: str | None = None) -> None:
        """Draw ``text`` (if given) a last time and end the line, leaving it on screen."""
        if text is not None:
            self.update(text, force=True)
        if self._visible:
            self._out.write("")
            self._visible = False


class RunOutput:
    """A mailing run told on a command's streams: a line for each row worth telling
    (:func:`~django_smsfly.mailing.summary.row_line`), a progress line, and the summary.

    On a terminal the progress line is redrawn in place; elsewhere (a log, a pipe) it is
    written as a plain line every :data:`~django_smsfly.mailing.progress.PLAIN_EVERY`
    seconds, with no carriage returns. Pass :meth:`row` and :meth:`progress` to the run
    as its callbacks, and its report to :meth:`finish`.
    """

    def __init__(self, command: SmsFlyCommand) -> None:
        self.command = command
        # Read when the run starts, so that a test's clock put in its place is the one used.
        self.clock = run_progress.monotonic
        self.started = self.clock()
        self.bar = Progress(command.stdout, enabled=command.verbosity >= 1, clock=self.clock)
        self.bar.REDRAW_EVERY = run_progress.REDRAW_EVERY
        self.plain = command.verbosity >= 1 and not self.bar.enabled
        self.ticker = run_progress.Ticker(run_progress.PLAIN_EVERY, self.clock)

    def row(self, result: RowResult) -> None:
        """Write the row's line: a problem on stderr always, the rest by verbosity."""
        told = summary.row_line(result)
        if told is None:
            return
        if told.problem:
            self.bar.clear()
            self.command.stderr.write(told.text)
        elif self.command.verbosity >= told.level:
            self.bar.clear()
            self.command.stdout.write(told.text)

    def progress(self, report: MailingReport) -> None:
        """Redraw the progress line on a terminal; elsewhere write it when one is due."""
        if not self.plain:
            self.bar.update(self._progress_line(report))
        elif self.ticker.due():
            self.command.stdout.write(self._progress_line(report))

    def _progress_line(self, report: MailingReport) -> str:
        elapsed = self.clock() - self.started
        return run_progress.progress_line(report, report.total, elapsed)

    def finish(self, report: MailingReport) -> None:
        """End the progress line (the run's last state stays on screen) and write the
        summary."""
        if report.rows and self.plain:
            self.command.stdout.write(self._progress_line(report))
        elif report.rows:
            self.bar.finish(self._progress_line(report))
        for line in summary.summary_lines(report):
            self.command.say(line)
