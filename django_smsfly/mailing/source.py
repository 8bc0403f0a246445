"""Reading a mailing's CSV file: its header, its rows with their line numbers, the
templates filled from them, and the key that makes each row resumable.

One row is in memory at a time, so the size of the file does not matter. The file is
parsed strictly: a quote that is never closed, or that runs on over lines which look
like rows of their own, is an error naming the line where it opened, never a cell that
swallows the rows after it (see :func:`count_rows`, the pass that checks a whole file
before anything is sent).
"""

from __future__ import annotations

import csv
import functools
import hashlib
import os
import re
import string
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from django.utils.translation import gettext as _

from django_smsfly.exceptions import SmsFlyValidationError
from django_smsfly.mailing.report import MailingError
from django_smsfly.validation import check_storable

#: A file to read: a path, or a text stream already open (an upload, say).
CsvFile = str | os.PathLike[str] | TextIO

#: The columns the app reads itself (found in any letter case).
SPECIAL_COLUMNS = ("recipient", "text", "viber_text")

#: Stands in for NUL while the csv module reads a line: before Python 3.11 it refuses a
#: NUL outright, which would make one bad cell fatal to the whole file. A noncharacter,
#: reserved for such internal use, so it is not mistaken for text.
_NUL_MARK = "\ufdd0"

#: A cell that reads as a phone number: an optional "+", then digits and the usual
#: punctuation. Used only to tell a swallowed row from a line of a multi-line text.
_PHONE_LIKE = re.compile(r"\+?[0-9][0-9 ()\-./]{7,24}")


class RowError(Exception):
    """A row that cannot be sent; reported with its line and counted, never fatal."""


def describe(file: CsvFile) -> str:
    """How errors name the file: its path, or a stream's name."""
    if isinstance(file, str | os.PathLike):
        return str(Path(file))
    return str(getattr(file, "name", "") or "CSV")


def count_rows(file: CsvFile, *, encoding: str, delimiter: str) -> int | None:
    """Check the whole file's structure and count its rows (the header not counted).

    A parse-only pass, one row in memory at a time and nothing written, so that a
    malformed row anywhere stops a run before its first message. Raises
    :class:`MailingError` naming the line. A stream is read and put back where it was;
    one that cannot be rewound is not checked here (``None``): its rows are checked as
    the run reads them.
    """
    position = None
    if not isinstance(file, str | os.PathLike):
        if not file.seekable():
            return None
        position = file.tell()
    try:
        with open_rows(file, encoding=encoding, delimiter=delimiter) as rows:
            count = sum(1 for _row in rows)
    finally:
        if position is not None and not isinstance(file, str | os.PathLike):
            file.seek(position)
    return max(count - 1, 0)


@contextmanager
def open_rows(
    file: CsvFile, *, encoding: str, delimiter: str
) -> Iterator[Iterator[tuple[int, list[str]]]]:
    """The file's ``(line, cells)`` rows, blank ones left out, each with the line it
    starts on; a path is opened and closed here, a stream is read as it is
    (``encoding`` then only names it in errors)."""
    if isinstance(file, str | os.PathLike):
        try:
            handle: TextIO = Path(file).open(newline="", encoding=encoding)  # noqa: SIM115
        except LookupError:
            raise MailingError(
                _("--encoding: unknown encoding %(encoding)r.") % {"encoding": encoding}
            ) from None
        except OSError as exc:
            raise MailingError(
                _("Cannot read %(path)s: %(error)s.")
                % {"path": describe(file), "error": exc.strerror or exc}
            ) from None
    else:
        handle = file
    try:
        lines = _Lines(handle, delimiter)
        try:
            # strict: a quote left open at the end of the file, or text after a closing
            # quote, is an error rather than a cell that silently takes in what follows.
            reader = csv.reader(lines, delimiter=delimiter, strict=True)
        except (TypeError, csv.Error):
            raise MailingError(_("--delimiter must be a single character.")) from None
        yield _read(reader, lines, encoding)
    finally:
        if handle is not file:
            handle.close()


class _Swallowed(Exception):
    """A quoted cell ran on over a line that looks like a row of its own."""

    def __init__(self, line: int) -> None:
        super().__init__(line)
        self.line = line


class _Lines:
    """The physical lines of a file, fed to :func:`csv.reader`, which tell where each
    record starts and refuse a quoted cell that runs on over what looks like rows.

    A line break inside a quoted cell is legitimate (a text of two lines), so a record
    may span lines. But every line after its first is inside a quote; when such a line
    looks like a row of the file (its recipient cell is a phone number and it has the
    delimiter), the quote was most likely never closed and is swallowing rows.
    """

    def __init__(self, handle: TextIO, delimiter: str) -> None:
        self.handle = handle
        self.delimiter = delimiter
        #: Physical lines read so far, and the line the current record starts on.
        self.number = 0
        self.start = 1
        #: Where the recipient is in a row, and how many cells a row has at least
        #: (learnt from the header).
        self.recipient = 0
        self.min_cells = 2
        #: Whether a NUL was replaced in the current record.
        self.had_nul = False
        self._in_record = False

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        line = next(self.handle)
        self.number += 1
        if self._in_record and self._looks_like_row(line):
            raise _Swallowed(self.number)
        self._in_record = True
        if "\x00" in line:
            self.had_nul = True
            line = line.replace("\x00", _NUL_MARK)
        return line

    def record_done(self) -> None:
        """The reader returned a record: the next line starts a new one."""
        self._in_record = False
        self.had_nul = False
        self.start = self.number + 1

    def learn_header(self, cells: list[str]) -> None:
        """Where the recipient column is and how wide a row is."""
        lowered = [cell.strip().lower() for cell in cells]
        self.recipient = lowered.index("recipient") if "recipient" in lowered else 0
        self.min_cells = min(2, len(cells))

    def _looks_like_row(self, line: str) -> bool:
        cells = line.rstrip("\r\n").split(self.delimiter)
        if len(cells) < self.min_cells or len(cells) <= self.recipient:
            return False
        cell = cells[self.recipient].strip().strip('"').strip()
        digits = sum(ch.isdigit() for ch in cell)
        return 9 <= digits <= 15 and _PHONE_LIKE.fullmatch(cell) is not None


def _read(reader: Any, lines: _Lines, encoding: str) -> Iterator[tuple[int, list[str]]]:
    """``(line, row)`` for each non-blank row; broken input is a clear error."""
    header_seen = False
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except _Swallowed as exc:
            raise MailingError(
                _(
                    "Line %(line)d: a quoted cell that starts on this line is not closed "
                    "before line %(next)d, which looks like a row of its own. Check the "
                    "quotes on line %(line)d."
                )
                % {"line": lines.start, "next": exc.line}
            ) from None
        except csv.Error as exc:
            raise MailingError(_csv_error(lines, exc)) from None
        except UnicodeDecodeError:
            raise MailingError(
                _(
                    "Near line %(line)d: the file is not %(encoding)s text; give its "
                    "encoding with --encoding (for example cp1251)."
                )
                % {"line": lines.number + 1, "encoding": encoding}
            ) from None
        line = lines.start
        if lines.had_nul:
            row = [cell.replace(_NUL_MARK, "\x00") for cell in row]
        lines.record_done()
        if any(cell.strip() for cell in row):
            if not header_seen:
                lines.learn_header(row)
                header_seen = True
            yield line, row


def _csv_error(lines: _Lines, exc: csv.Error) -> str:
    """The text for a line the csv module could not read."""
    if "field larger than field limit" in str(exc):
        return _(
            "Line %(line)d: a cell is longer than %(limit)d characters; no message can "
            "be that long (is a quote left open?)."
        ) % {"line": lines.start, "limit": csv.field_size_limit()}
    if lines.number > lines.start:
        return _(
            "Line %(line)d: a quoted cell that starts on this line is not closed properly "
            "(by line %(end)d: %(error)s). Check the quotes on line %(line)d."
        ) % {"line": lines.start, "end": lines.number, "error": exc}
    return _("Line %(line)d: not valid CSV: %(error)s") % {"line": lines.start, "error": exc}


class Row(dict[str, str]):
    """A row's values for a template: an unknown name is an error that names it."""

    def __missing__(self, key: str) -> str:
        raise RowError(_("the template uses {%(name)s}, which is not a column") % {"name": key})


@dataclass(frozen=True)
class Header:
    """The header row: the cells as written (part of every row's key), the column
    names for templates, and where the app's own columns are."""

    cells: list[str]
    columns: list[str]
    #: ``recipient`` / ``text`` / ``viber_text`` -> the column as named in the header.
    special: dict[str, str]

    @classmethod
    def parse(cls, cells: list[str], *, source: str) -> Header:
        """Check the header: no column twice, a ``recipient`` column."""
        # Templates name columns as written; the app's own columns are found in any case.
        columns = [cell.strip() for cell in cells]
        lowered = [column.lower() for column in columns]
        for column in lowered:
            if column and lowered.count(column) > 1:
                raise MailingError(
                    _("The column %(column)r appears twice in the header.") % {"column": column}
                )
        special = {
            name: columns[lowered.index(name)] for name in SPECIAL_COLUMNS if name in lowered
        }
        if "recipient" not in special:
            raise MailingError(
                _("%(path)s has no 'recipient' column (the header has: %(columns)s).")
                % {"path": source, "columns": ", ".join(columns)}
            )
        return cls(cells=cells, columns=columns, special=special)

    def values(self, cells: list[str]) -> Row:
        """A row's values by column. A row longer than the header, or with a cell no
        database can store (NUL, broken Unicode), is an error naming the column."""
        if len(cells) > len(self.columns):
            raise RowError(
                _("%(found)d fields, but the header has %(expected)d")
                % {"found": len(cells), "expected": len(self.columns)}
            )
        for column, cell in zip(self.columns, cells, strict=False):
            try:
                check_storable(cell, column)
            except SmsFlyValidationError as exc:
                reason = {"column": column, "reason": exc.reason}
                raise RowError(_("the %(column)r column %(reason)s") % reason) from None
        # A short row leaves its last columns empty, as spreadsheets write them.
        padded = [*cells, *[""] * (len(self.columns) - len(cells))]
        return Row(zip(self.columns, padded, strict=True))

    def cell(self, values: Row, name: str) -> str | None:
        """The value of one of the app's own columns, ``None`` without that column."""
        column = self.special.get(name)
        return values[column] if column is not None else None

    def check_template(self, option: str, template: str) -> None:
        """Refuse a template that is malformed or names something that is not a column.

        Only plain column names are allowed, each with an optional default after ``|``
        (``{name|friend}``): no positional fields, no attribute or index access
        (``{name.__class__}``), no fields nested in a format spec.
        """
        try:
            fields = [field for _literal, field in _parse(template) if field is not None]
        except ValueError as exc:
            raise MailingError(
                _("%(option)s is not a valid template (%(error)s). Write {{ and }} for braces.")
                % {"option": option, "error": exc}
            ) from None
        for field in fields:
            # "a.b" or "a[0]" would reach into a value's attributes; a spec may nest fields.
            name = field.column
            plain = name in self.columns and not any(c in name for c in ".[")
            if not plain or "{" in field.spec:
                raise MailingError(
                    _(
                        "%(option)s uses {%(name)s}, which is not a column of the CSV "
                        "(columns: %(columns)s). Write {{ and }} for braces."
                    )
                    % {"option": option, "name": name, "columns": ", ".join(self.columns)}
                )


@dataclass(frozen=True)
class _Field:
    """One ``{column|default!conversion:spec}`` of a template."""

    column: str
    #: What an empty cell becomes; ``None``: an empty cell is an error.
    default: str | None
    conversion: str | None
    spec: str

    def render(self, value: str) -> str:
        """The value converted and formatted as the field says."""
        converted: Any = _FORMATTER.convert_field(value, self.conversion)
        return format(converted, self.spec)


_FORMATTER = string.Formatter()


@functools.lru_cache(maxsize=32)
def _parse(template: str) -> tuple[tuple[str, _Field | None], ...]:
    """A template as ``(literal, field)`` pairs, parsed once however many rows use it.

    Raises :class:`ValueError` for a malformed template (an unmatched brace).
    """
    parts: list[tuple[str, _Field | None]] = []
    for literal, name, spec, conversion in _FORMATTER.parse(template):
        field = None
        if name is not None:
            column, bar, default = name.partition("|")
            field = _Field(column, default if bar else None, conversion, spec or "")
        parts.append((literal, field))
    return tuple(parts)


def fill(option: str, template: str | None, values: Row, column: str | None) -> str | None:
    """A text for the row: the template filled, or else the column's text as written
    (its braces are not fields).

    A field whose cell is empty (or missing from a short row) is an error, so no message
    goes out as ``"Hi "``; ``{name|friend}`` puts ``friend`` in its place and
    ``{name|}`` allows it to stay empty.
    """
    if template is None:
        return column
    pieces: list[str] = []
    for literal, field in _parse(template):
        pieces.append(literal)
        if field is None:
            continue
        value = values[field.column]
        if not value.strip():
            if field.default is None:
                raise RowError(
                    _(
                        "%(option)s needs {%(name)s}, but the %(name)r column is empty on "
                        "this row (write {%(name)s|...} for a default)"
                    )
                    % {"option": option, "name": field.column}
                )
            value = field.default
        try:
            pieces.append(field.render(value))
        except (ValueError, TypeError) as exc:
            raise RowError(
                _("%(option)s cannot be filled from this row: %(error)s")
                % {"option": option, "error": exc}
            ) from exc
    return "".join(pieces)


def row_key(campaign: str, header: Header, index: int, cells: list[str]) -> str:
    """The row's idempotency key (before any ``:2`` for a send that failed before).

    It digests the campaign, the header, the row's position and its cells, so the same
    file resumes wherever it is moved, and a new campaign name sends it again. Any
    text can be digested, even one that is not valid Unicode.
    """
    digest = hashlib.sha256()
    for part in (campaign, *header.cells, str(index), *cells):
        # surrogatepass: the same bytes as UTF-8 for any valid text, and no crash on a
        # lone surrogate (such a row is refused, but its key must not break the run).
        digest.update(part.encode("utf-8", "surrogatepass"))
        digest.update(b"\0")  # a separator, so ("ab", "c") and ("a", "bc") differ
    return f"smsfly_send:{digest.hexdigest()}"
