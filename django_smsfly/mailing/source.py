"""Reading a mailing's CSV file: its header, its rows with their line numbers, the
templates filled from them, and the key that makes each row resumable.

One row is in memory at a time, so the size of the file does not matter.
"""

from __future__ import annotations

import csv
import hashlib
import os
import string
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from django.utils.translation import gettext as _

from django_smsfly.mailing.report import MailingError

#: A file to read: a path, or a text stream already open (an upload, say).
CsvFile = str | os.PathLike[str] | TextIO

#: The columns the app reads itself (found in any letter case).
SPECIAL_COLUMNS = ("recipient", "text", "viber_text")


class RowError(Exception):
    """A row that cannot be sent; reported with its line and counted, never fatal."""


def describe(file: CsvFile) -> str:
    """How errors name the file: its path, or a stream's name."""
    if isinstance(file, str | os.PathLike):
        return str(Path(file))
    return str(getattr(file, "name", "") or "CSV")


@contextmanager
def open_rows(
    file: CsvFile, *, encoding: str, delimiter: str
) -> Iterator[Iterator[tuple[int, list[str]]]]:
    """The file's ``(line, cells)`` rows, blank ones left out; a path is opened and
    closed here, a stream is read as it is (``encoding`` then only names it in errors)."""
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
        try:
            reader = csv.reader(handle, delimiter=delimiter)
        except TypeError:
            raise MailingError(_("--delimiter must be a single character.")) from None
        yield _read(reader, encoding)
    finally:
        if handle is not file:
            handle.close()


def _read(reader: Any, encoding: str) -> Iterator[tuple[int, list[str]]]:
    """``(line, row)`` for each non-blank row; broken input is a clear error."""
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise MailingError(
                _("Line %(line)d: not valid CSV: %(error)s")
                % {"line": reader.line_num, "error": exc}
            ) from None
        except UnicodeDecodeError:
            raise MailingError(
                _(
                    "Near line %(line)d: the file is not %(encoding)s text; give its "
                    "encoding with --encoding (for example cp1251)."
                )
                % {"line": reader.line_num + 1, "encoding": encoding}
            ) from None
        if any(cell.strip() for cell in row):
            yield reader.line_num, row


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
        """A row's values by column; a row longer than the header is an error."""
        if len(cells) > len(self.columns):
            raise RowError(
                _("%(found)d fields, but the header has %(expected)d")
                % {"found": len(cells), "expected": len(self.columns)}
            )
        # A short row leaves its last columns empty, as spreadsheets write them.
        padded = [*cells, *[""] * (len(self.columns) - len(cells))]
        return Row(zip(self.columns, padded, strict=True))

    def cell(self, values: Row, name: str) -> str | None:
        """The value of one of the app's own columns, ``None`` without that column."""
        column = self.special.get(name)
        return values[column] if column is not None else None

    def check_template(self, option: str, template: str) -> None:
        """Refuse a template that is malformed or names something that is not a column.

        Only plain column names are allowed: no positional fields, no attribute or
        index access (``{name.__class__}``), no fields nested in a format spec.
        """
        try:
            fields = [
                (name, spec)
                for _literal, name, spec, _conversion in string.Formatter().parse(template)
                if name is not None
            ]
        except ValueError as exc:
            raise MailingError(
                _("%(option)s is not a valid template (%(error)s). Write {{ and }} for braces.")
                % {"option": option, "error": exc}
            ) from None
        for name, spec in fields:
            # "a.b" or "a[0]" would reach into a value's attributes; a spec may nest fields.
            plain = (
                name in self.columns
                and not any(c in name for c in ".[")
                and "{" not in (spec or "")
            )
            if not plain:
                raise MailingError(
                    _(
                        "%(option)s uses {%(name)s}, which is not a column of the CSV "
                        "(columns: %(columns)s). Write {{ and }} for braces."
                    )
                    % {"option": option, "name": name, "columns": ", ".join(self.columns)}
                )


def fill(option: str, template: str | None, values: Row, column: str | None) -> str | None:
    """A text for the row: the template filled, or else the column's text as written
    (its braces are not fields)."""
    if template is None:
        return column
    try:
        return template.format_map(values)
    except (ValueError, TypeError) as exc:
        raise RowError(
            _("%(option)s cannot be filled from this row: %(error)s")
            % {"option": option, "error": exc}
        ) from exc


def row_key(campaign: str, header: Header, index: int, cells: list[str]) -> str:
    """The row's idempotency key (before any ``:2`` for a send that failed before).

    It digests the campaign, the header, the row's position and its cells, so the same
    file resumes wherever it is moved, and a new campaign name sends it again.
    """
    digest = hashlib.sha256()
    for part in (campaign, *header.cells, str(index), *cells):
        digest.update(part.encode("utf-8"))
        digest.update(b"\0")  # a separator, so ("ab", "c") and ("a", "bc") differ
    return f"smsfly_send:{digest.hexdigest()}"
