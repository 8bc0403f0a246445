"""Numbers onto the opt-out list in bulk: from an uploaded file, or from messages.

:func:`import_numbers` reads a CSV file with a ``recipient`` column, or a plain list
with one number per line, as a stream: one line at a time, never the whole file in
memory, writing every :data:`BATCH_SIZE` numbers with one ``bulk_create``. Each number
is normalized as every send normalizes it, so ``050 123 4567`` and ``+380501234567``
are the same entry. :class:`ImportReport` says what became of each line: added, already
on the list, or invalid (with its line number and why).

:func:`add_numbers` is the one writer of both this import and the message list's
*Opt out* action.
"""

from __future__ import annotations

import csv
import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from django.utils.translation import gettext

from django_smsfly.conf import smsfly_settings
from django_smsfly.exceptions import SmsFlyValidationError
from django_smsfly.models import OptOut
from django_smsfly.validation import normalize_recipient

#: Numbers written per ``bulk_create`` (and looked up per query beforehand).
BATCH_SIZE = 1000
#: Invalid lines kept for the report; beyond these only their count is.
MAX_PROBLEMS_SHOWN = 200
#: The column a CSV file's numbers are in (its header, in any letter case).
RECIPIENT_COLUMN = "recipient"
#: The longest line read: a file with a longer one is not a list of numbers.
MAX_LINE = 4096
#: How much of the file is read at once (bytes).
CHUNK_SIZE = 64 * 1024
_DELIMITERS = ",;\t"


class UnreadableFile(ValueError):
    """The file cannot be read on (not UTF-8 text, no ``recipient`` column, a line far
    too long); the lines before were imported."""


@dataclass(frozen=True)
class Row:
    """A line of the file with a value in it."""

    line: int
    value: str
    #: Why the CSV reader could not read the row, if it could not.
    malformed: str = ""


@dataclass
class Problem:
    """One line that put no number on the list."""

    line: int
    value: str
    reason: str


@dataclass
class ImportReport:
    """What an import did, line by line."""

    added: int = 0
    #: Numbers already on the list (or twice in the file).
    existing: int = 0
    invalid: int = 0
    #: The first :data:`MAX_PROBLEMS_SHOWN` invalid lines.
    problems: list[Problem] = field(default_factory=list)
    #: Set when reading stopped early (the file is not UTF-8 text, say); what came
    #: before it was imported.
    error: str = ""

    @property
    def lines(self) -> int:
        """Lines with a value in them."""
        return self.added + self.existing + self.invalid

    def refuse(self, line: int, value: str, reason: str) -> None:
        """Count a line as invalid, and keep it for the report while there is room."""
        self.invalid += 1
        if len(self.problems) < MAX_PROBLEMS_SHOWN:
            self.problems.append(Problem(line=line, value=value[:100], reason=reason))


def add_numbers(
    numbers: Iterable[str], *, source: str, created_by: Any = None, note: str = ""
) -> tuple[int, int]:
    """Put normalized numbers on the list; ``(added, already there)``.

    Numbers already on it are left as they are (their source and note kept), in one
    query per :data:`BATCH_SIZE`; a number twice in ``numbers`` counts as already there
    the second time.
    """
    user = created_by if getattr(created_by, "pk", None) else None
    added = existing = 0
    iterator = iter(numbers)
    while batch := list(itertools.islice(iterator, BATCH_SIZE)):
        unique = set(batch)
        known = set(
            OptOut.objects.filter(recipient__in=unique).values_list("recipient", flat=True)
        )
        new = sorted(unique - known)
        # ignore_conflicts: another import (or an ERRPHONES refusal) may add the same
        # number between the lookup and the insert; the list holds it once either way.
        OptOut.objects.bulk_create(
            [OptOut(recipient=n, source=source, note=note, created_by=user) for n in new],
            ignore_conflicts=True,
        )
        added += len(new)
        existing += len(batch) - len(new)
    return added, existing


def import_numbers(upload: IO[bytes], *, created_by: Any = None, note: str = "") -> ImportReport:
    """Import the numbers of an uploaded file (CSV or a plain list) as ``import``."""
    report = ImportReport()
    numbers = _until_unreadable(_valid_numbers(_rows(_lines(upload)), report), report)
    report.added, report.existing = add_numbers(
        numbers, source=OptOut.Source.IMPORT, created_by=created_by, note=note
    )
    return report


def _until_unreadable(numbers: Iterator[str], report: ImportReport) -> Iterator[str]:
    """``numbers`` up to where the file cannot be read on; the reason into ``report``.

    (The numbers before it are still written: the batch being gathered included.)
    """
    try:
        yield from numbers
    except UnreadableFile as exc:
        report.error = str(exc)


def _lines(upload: IO[bytes]) -> Iterator[str]:
    """The file's lines as text (UTF-8, a BOM dropped), one at a time.

    Split as bytes, then decoded line by line (a newline byte is never part of another
    character in UTF-8), so a line that is not UTF-8 is named, and every one before it
    is read.
    """
    pending = b""
    number = 0
    while chunk := upload.read(CHUNK_SIZE):
        *complete, pending = (pending + chunk).split(b"\n")
        for raw in complete:
            number += 1
            yield _decoded(raw, number)
        if len(pending) > MAX_LINE * 4:  # (4: the most bytes a character takes)
            # Not a list of numbers, and not to be held in memory waiting for its end.
            raise UnreadableFile(
                gettext("Line %(line)d is longer than %(max)d characters.")
                % {"line": number + 1, "max": MAX_LINE}
            )
    if pending:
        yield _decoded(pending, number + 1)


def _decoded(raw: bytes, number: int) -> str:
    try:
        text = raw.decode("utf-8-sig" if number == 1 else "utf-8")
    except UnicodeDecodeError:
        raise UnreadableFile(
            gettext("Line %(line)d is not UTF-8 text.") % {"line": number}
        ) from None
    return text.removesuffix("\r")


def _rows(lines: Iterator[str]) -> Iterator[Row]:
    """``(line number, value)`` of each line that holds a value."""
    first = next(lines, None)
    if first is None:
        return
    delimiter = next((d for d in _DELIMITERS if d in first), None)
    header = next(csv.reader([first], delimiter=delimiter or ","), [])
    names = [cell.strip().lower() for cell in header]
    if delimiter is None and names != [RECIPIENT_COLUMN]:
        yield from _plain(first, lines)
    elif RECIPIENT_COLUMN in names:
        yield from _csv(lines, delimiter or ",", names.index(RECIPIENT_COLUMN))
    else:
        raise UnreadableFile(
            gettext(
                "The file's first line has several columns but none named “%(column)s”: "
                "give the numbers a “%(column)s” column, or upload one number per line."
            )
            % {"column": RECIPIENT_COLUMN}
        )


def _plain(first: str, lines: Iterator[str]) -> Iterator[Row]:
    for number, line in enumerate(itertools.chain([first], lines), start=1):
        value = line.strip()
        if value:
            yield Row(number, value)


def _csv(lines: Iterator[str], delimiter: str, column: int) -> Iterator[Row]:
    """The ``recipient`` cells of a CSV file's rows after its header, by line number."""
    # Line numbers of the file: the header was line 1; a quoted cell may span lines.
    reader = csv.reader(_with_newlines(lines), delimiter=delimiter, strict=True)
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield Row(reader.line_num + 1, "", str(exc))
            continue
        if not any(cell.strip() for cell in row):
            continue
        value = row[column].strip() if column < len(row) else ""
        yield Row(reader.line_num + 1, value)


def _with_newlines(lines: Iterator[str]) -> Iterator[str]:
    for line in lines:
        yield line + "\n"


def _valid_numbers(rows: Iterator[Row], report: ImportReport) -> Iterator[str]:
    """The rows' numbers, normalized; each invalid row is counted in ``report``."""
    region = smsfly_settings.DEFAULT_REGION
    for row in rows:
        if row.malformed:
            reason = gettext("not a well-formed CSV row (%(error)s)") % {"error": row.malformed}
            report.refuse(row.line, row.value, reason)
        elif not row.value:
            report.refuse(row.line, "", gettext("no number in the “recipient” column"))
        else:
            try:
                yield normalize_recipient(row.value, region)
            except SmsFlyValidationError as exc:
                report.refuse(row.line, row.value, str(exc.reason))
