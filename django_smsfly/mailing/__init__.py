"""Mailings: one message per row of a CSV file, resumable, paced, and told row by row.

:func:`run_csv` is the one definition of a CSV run; ``smsfly_send --csv`` is a thin
command over it, and anything else (the admin's campaigns) can call it the same way::

    from django_smsfly.mailing import MailingContent, run_csv

    report = run_csv("orders.csv", MailingContent(text="{name}, your order has shipped."))
    print(report.sent, report.errors, [p.line for p in report.problems])

The layout: :mod:`~django_smsfly.mailing.source` reads the file (header, rows,
templates, row keys), :mod:`~django_smsfly.mailing.run` sends,
:mod:`~django_smsfly.mailing.report` holds what a run tells, and
:mod:`~django_smsfly.mailing.progress` and :mod:`~django_smsfly.mailing.summary` put it
in words. Nothing here writes to a stream or to message rows: the rows are written by
:mod:`django_smsfly.services`.
"""

from __future__ import annotations

from django_smsfly.mailing.content import MailingContent
from django_smsfly.mailing.report import (
    MailingError,
    MailingInterrupted,
    MailingReport,
    Outcome,
    RowProblem,
    RowResult,
)
from django_smsfly.mailing.run import DEFAULT_RATE, FATAL_CODES, MAX_UNSETTLED_IN_A_ROW, run_csv
from django_smsfly.mailing.source import CsvFile

__all__ = [
    "DEFAULT_RATE",
    "FATAL_CODES",
    "MAX_UNSETTLED_IN_A_ROW",
    "CsvFile",
    "MailingContent",
    "MailingError",
    "MailingInterrupted",
    "MailingReport",
    "Outcome",
    "RowProblem",
    "RowResult",
    "run_csv",
]
