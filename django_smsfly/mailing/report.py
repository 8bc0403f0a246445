"""What a mailing run tells its caller: each row's outcome, the totals, and why it ended.

Plain data: nothing here writes to a stream or knows about commands. ``smsfly_send``
turns a :class:`MailingReport` into lines; the admin can show the same report.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from decimal import Decimal

from django_smsfly.channels import Channel
from django_smsfly.models import Message
from django_smsfly.pricing import CostEstimate
from django_smsfly.segments import Segments


class Outcome(str, enum.Enum):
    """What a run did with one row."""

    #: Accepted by SMS-fly.
    SENT = "sent"
    #: Refused for now (HTTP 429, no connection): queued; ``smsfly_sync`` sends it later.
    QUEUED = "queued"
    #: Refused by SMS-fly: nothing was sent or spent.
    FAILED = "failed"
    #: The request may have arrived (a timeout, an HTTP 5xx): never re-sent automatically.
    UNKNOWN = "unknown"
    #: The row cannot be sent (malformed, a wrong number, a template it cannot fill).
    INVALID = "invalid"
    #: An earlier run sent it (or queued it for a retry, or its outcome is unknown).
    SKIPPED = "skipped"
    #: Another run, a task worker or ``smsfly_sync`` has the row's message in hand.
    ELSEWHERE = "elsewhere"
    #: ``defer``: written queued and handed to the task workers.
    ENQUEUED = "enqueued"
    #: Dry run: valid, and would be sent.
    CHECKED = "checked"
    #: Written queued to be sent later: the recipient is in quiet hours.
    SCHEDULED = "scheduled"
    #: The number is on the opt-out list: recorded failed (``OPTED_OUT``), not sent.
    OPTED_OUT = "opted_out"
    #: The same number as an earlier row of the file (a campaign sends it once).
    DUPLICATE = "duplicate"


#: How many lines a report keeps for a count that names its rows (a dry run of a large
#: file with no prices must not hold a list as long as the file).
LINES_KEPT = 100

#: The outcomes that are a row's failure (the run's exit status is 1 when any occurs).
PROBLEMS = frozenset({Outcome.INVALID, Outcome.FAILED, Outcome.UNKNOWN})


@dataclass(frozen=True)
class RowResult:
    """One row's outcome, as the run's ``on_row`` callback receives it."""

    #: The row's line in the file (1 is the header).
    line: int
    outcome: Outcome
    #: The normalized number (dry run), or the message's; empty for an invalid row.
    recipient: str = ""
    #: The row's message: the one sent, the one found (skipped, elsewhere), or ``None``.
    message: Message | None = None
    #: Why the row failed or was queued, for a person to read.
    detail: str = ""
    #: Dry run: the channels, the SMS text's parts and the estimated cost.
    channels: tuple[Channel, ...] = ()
    segments: Segments | None = None
    estimate: CostEstimate | None = None

    @property
    def is_problem(self) -> bool:
        """Whether the row could not be sent (invalid, refused, or an unknown outcome)."""
        return self.outcome in PROBLEMS


@dataclass(frozen=True)
class RowProblem:
    """A row that could not be sent, by its line in the file."""

    line: int
    text: str


@dataclass
class MailingReport:
    """What a run did, updated row by row (the ``progress`` callback sees it grow)."""

    #: Marks every message this run wrote (``metadata["run"]``), to tell it from others'.
    run_id: str = ""
    dry_run: bool = False
    deferred: bool = False
    #: The channels of every message, in fallback order.
    channels: tuple[Channel, ...] = ()
    #: Rows read (blank lines not counted), and the line of the last one.
    rows: int = 0
    line: int = 0
    #: The rows the run is to go through (the file's, or ``limit``), counted before the
    #: first is sent; ``None`` when not known (a stream that cannot be read twice).
    total: int | None = None
    # One count per outcome (see :class:`Outcome`).
    sent: int = 0
    queued: int = 0
    failed: int = 0
    unknown: int = 0
    invalid: int = 0
    skipped: int = 0
    elsewhere: int = 0
    enqueued: int = 0
    checked: int = 0
    scheduled: int = 0
    opted_out: int = 0
    duplicate: int = 0
    #: What SMS-fly charged for the messages it accepted.
    cost: Decimal = Decimal(0)
    #: The rows that could not be sent, in file order.
    problems: list[RowProblem] = field(default_factory=list)
    #: Why the run stopped before the end of the file (``None``: it did not).
    stopped: str | None = None
    #: Dry run: SMS parts, messages per encoding, and the estimated cost of what would
    #: be sent (when the first channel delivers, and at most).
    parts: int = 0
    encodings: dict[str, int] = field(default_factory=dict)
    first: Decimal = Decimal(0)
    most: Decimal = Decimal(0)
    #: Dry run: rows whose cost is not known (no price for the number's network), and
    #: the lines of the first :data:`LINES_KEPT` of them.
    unpriced: int = 0
    unpriced_lines: list[int] = field(default_factory=list)
    #: Dry run: why the price list could not be had (then no row is priced).
    price_error: str | None = None

    @property
    def errors(self) -> int:
        """Rows that could not be sent: invalid, refused, or with an unknown outcome."""
        return self.invalid + self.failed + self.unknown

    def count(self, outcome: Outcome) -> int:
        """How many rows had ``outcome``."""
        return int(getattr(self, outcome.value))

    def add(self, result: RowResult) -> None:
        """Count one row's result."""
        self.rows += 1
        self.line = result.line
        setattr(self, result.outcome.value, self.count(result.outcome) + 1)
        if result.is_problem:
            self.problems.append(RowProblem(result.line, result.detail))
        if result.outcome is Outcome.SENT and result.message is not None:
            self.cost += result.message.cost or 0
        if result.outcome is Outcome.CHECKED:
            self._add_estimate(result)

    def _add_estimate(self, result: RowResult) -> None:
        if result.segments is not None:
            self.parts += result.segments.parts
            encoding = str(result.segments.encoding)
            self.encodings[encoding] = self.encodings.get(encoding, 0) + 1
        estimate = result.estimate
        if estimate is None or estimate.first is None or estimate.most is None:
            self.unpriced += 1
            if len(self.unpriced_lines) < LINES_KEPT:
                self.unpriced_lines.append(result.line)
        else:
            self.first += estimate.first
            self.most += estimate.most


class MailingError(ValueError):
    """The file or the run's options cannot be used; the text says why.

    Raised before any row is sent (a missing file, a header without a ``recipient``
    column, a template naming no column). Input found broken further down the file
    stops the run instead (:attr:`MailingReport.stopped`).
    """


class MailingInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run; :attr:`report` holds what was done until then."""

    def __init__(self, report: MailingReport) -> None:
        super().__init__()
        self.report = report
