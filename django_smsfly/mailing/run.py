"""A mailing run: one message per row of a CSV file, resumable, paced by the send limiter.

Every row gets an idempotency key (see :func:`~django_smsfly.mailing.source.row_key`), so
running the same file again skips the rows already handed to SMS-fly. Each row's
message is written ``queued`` and then sent with :func:`django_smsfly.services.dispatch`,
which claims it first and waits for the one send limiter at the run's rate: two runs of
one file at once send every row once, and each run reports the rows the other has in
hand as *elsewhere*, not as failures.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext as _

from django_smsfly import services
from django_smsfly.channels import Channel
from django_smsfly.conf import smsfly_settings
from django_smsfly.exceptions import SmsFlyError, SmsFlyOptedOut, SmsFlyValidationError
from django_smsfly.mailing.content import MailingContent, RowTemplate
from django_smsfly.mailing.report import (
    MailingError,
    MailingInterrupted,
    MailingReport,
    Outcome,
    RowResult,
)
from django_smsfly.mailing.source import (
    CsvFile,
    Header,
    Row,
    RowError,
    count_rows,
    describe,
    fill,
    open_rows,
    row_key,
)
from django_smsfly.models import Message, OptOut
from django_smsfly.pricing import CostEstimate
from django_smsfly.quiet import quiet_until
from django_smsfly.segments import count_segments
from django_smsfly.validation import SmsContent, ViberContent, normalize_recipient

#: Sends per second when neither the run nor ``SMSFLY["SEND_RATE_LIMIT"]`` sets a rate:
#: SMS-fly answers bursts with HTTP 429.
DEFAULT_RATE = 5.0

#: A run stops after this many sends in a row that SMS-fly did not settle (queued for a
#: retry, or an unknown outcome): it is down or refusing bursts, and going on would only
#: pile up messages for an operator to look at.
MAX_UNSETTLED_IN_A_ROW = 5

#: Refusals that every following row would meet too (the key or the money): stop at once.
FATAL_CODES = frozenset({"FORBIDDEN", "HTTP_403", "INSUFFICIENTFUND", "INSUFFICIENTFUNDS"})


def run_csv(
    file: CsvFile,
    content: MailingContent,
    *,
    campaign: str = "",
    rate: float | None = None,
    limit: int | None = None,
    encoding: str = "utf-8-sig",
    delimiter: str = ",",
    defer: bool = False,
    dry_run: bool = False,
    name: str | None = None,
    run_id: str | None = None,
    progress: Callable[[MailingReport], None] | None = None,
    on_row: Callable[[RowResult], None] | None = None,
    campaign_id: int | None = None,
    quiet_hours: bool = False,
    unique: bool = False,
    keep_going: Callable[[MailingReport], bool] | None = None,
) -> MailingReport:
    """Send one message per row of a CSV file (or, with ``dry_run``, check each row).

    ``file`` is a path or an open text stream with a header row: ``recipient``
    (required), ``text`` and ``viber_text`` (unless ``content`` has templates), and any
    columns the templates name. ``campaign`` is part of every row's key: the same name
    resumes a run, a new one sends the file again. ``rate`` is the most sends per
    second, through the one send limiter (default ``SMSFLY["SEND_RATE_LIMIT"]``, or
    :data:`DEFAULT_RATE` when that is not set; ``0``: no limit). ``limit`` stops after
    that many rows. ``defer`` writes the messages queued and enqueues send tasks in
    batches instead. ``name`` is the file's name in each message's metadata (default:
    the file's own); ``run_id`` marks the messages this run writes (default: a new id).

    ``on_row`` is called with each row's :class:`RowResult`, then ``progress`` with the
    report so far. A campaign's run (:mod:`django_smsfly.campaigns`) also passes
    ``campaign_id`` (its messages are linked to it), ``quiet_hours`` (a row whose
    recipient is inside ``SMSFLY["QUIET_HOURS"]`` is written queued to be sent at the
    window's end, not now), ``unique`` (a row repeating an earlier row's number is
    skipped as a duplicate) and ``keep_going``, asked after every row: ``False`` ends
    the run there (paused or cancelled), with the row in hand finished.

    Returns the :class:`MailingReport`; a run that stopped early (SMS-fly
    refusing everything, the file broken further down) says why in ``report.stopped``.
    Raises :class:`MailingError` before any row is sent when the file or the options
    cannot be used, and :class:`MailingInterrupted` (with the report) on Ctrl-C.
    """
    source = describe(file)
    # The whole file's structure first: a malformed row anywhere sends nothing at all.
    total = count_rows(file, encoding=encoding, delimiter=delimiter)
    with open_rows(file, encoding=encoding, delimiter=delimiter) as rows:
        first = next(rows, None)
        if first is None:
            raise MailingError(
                _("%(path)s is empty: expected a header row with a 'recipient' column.")
                % {"path": source}
            )
        header = Header.parse(first[1], source=source)
        channels = check_content(header, content)
        report = MailingReport(
            run_id=run_id or uuid.uuid4().hex,
            dry_run=dry_run,
            deferred=defer and not dry_run,
            channels=channels,
            total=total if limit is None or total is None else min(total, limit),
        )
        run = _Run(
            header,
            content,
            report,
            name=name if name is not None else _file_name(source),
            campaign=campaign,
            rate=_send_rate(rate),
            progress=progress,
            on_row=on_row,
        )
        run.campaign_id = campaign_id
        run.quiet_hours = quiet_hours
        run.unique = unique
        run.keep_going = keep_going
        return run.run(rows, limit)


def check_content(header: Header, content: MailingContent) -> tuple[Channel, ...]:
    """Check the content against the file's header; the channels every message takes.

    Raises :class:`MailingError` for a template naming something that is not a column,
    or channels the content cannot fill.
    """
    template = content.template
    if template is not None:
        _check_variables(header, template)
        return content.choose_channels(sms=template.sms, viber=template.viber)
    for option, text in (("--text", content.text), ("--viber-text", content.viber_text)):
        if text is not None:
            header.check_template(option, text)
    return content.choose_channels(
        sms=content.text is not None or "text" in header.special,
        viber=content.has_viber or "viber_text" in header.special,
    )


def row_content(
    header: Header, content: MailingContent, channels: tuple[Channel, ...], values: Row
) -> tuple[SmsContent | None, ViberContent | None]:
    """A row's SMS and Viber content: rendered by the row template, or texts filled
    from ``{column}`` templates or taken from the file's text columns. Raises
    :class:`~django_smsfly.mailing.source.RowError` saying why the row cannot have any."""
    if content.template is not None:
        try:
            rendered = content.template.render(dict(values))
        except (ValueError, SmsFlyError) as exc:
            raise RowError(str(exc)) from exc
        return content.with_options(*rendered)
    sms_text = fill("--text", content.text, values, header.cell(values, "text"))
    viber_text = fill(
        "--viber-text", content.viber_text, values, header.cell(values, "viber_text")
    )
    return content.blocks(channels, sms_text, viber_text)


def _check_variables(header: Header, template: RowTemplate) -> None:
    missing = sorted(template.variables - set(header.columns))
    if missing:
        raise MailingError(
            _(
                "The %(template)s uses %(names)s, which the CSV does not have as columns "
                "(columns: %(columns)s)."
            )
            % {
                "template": template.label or _("template"),
                "names": ", ".join(missing),
                "columns": ", ".join(header.columns),
            }
        )


def _file_name(source: str) -> str:
    return source.replace("\\", "/").rsplit("/", 1)[-1]


def _send_rate(rate: float | None) -> float:
    if rate is not None:
        return rate
    configured: float | None = smsfly_settings.SEND_RATE_LIMIT
    return DEFAULT_RATE if configured is None else configured


class _Stop(Exception):
    """The run cannot usefully go on; the text says why."""


class _Run:
    """One pass over the rows of a file, counting into a :class:`MailingReport`."""

    def __init__(
        self,
        header: Header,
        content: MailingContent,
        report: MailingReport,
        *,
        name: str,
        campaign: str,
        rate: float,
        progress: Callable[[MailingReport], None] | None,
        on_row: Callable[[RowResult], None] | None,
    ) -> None:
        self.header = header
        self.content = content
        self.report = report
        self.channels: tuple[Channel, ...] = report.channels
        self.name = name
        self.campaign = campaign
        self.rate = rate
        self.progress = progress
        self.on_row = on_row
        #: ``defer``: primary keys written but not yet enqueued (flushed in batches).
        self.pending: list[int] = []
        self.unsettled_in_a_row = 0
        # A campaign's run (see run_csv).
        self.campaign_id: int | None = None
        self.quiet_hours = False
        self.unique = False
        self.keep_going: Callable[[MailingReport], bool] | None = None
        #: ``unique``: the numbers of the rows read so far (as integers: small).
        self.seen: set[int] = set()

    def run(self, rows: Iterator[tuple[int, list[str]]], limit: int | None) -> MailingReport:
        """Go through the rows; stop early when going on is useless."""
        try:
            try:
                self._rows(rows, limit)
            finally:
                # Also on an interruption: what was written is handed to the workers.
                self._flush()
        except (_Stop, MailingError) as exc:
            # SMS-fly refusing everything, or unreadable input further down the file.
            self.report.stopped = str(exc)
        except KeyboardInterrupt:
            raise MailingInterrupted(self.report) from None
        return self.report

    def _rows(self, rows: Iterator[tuple[int, list[str]]], limit: int | None) -> None:
        if limit is not None and limit < 1:
            return
        for line, cells in rows:
            self.report.line = line
            result = self._row(self.report.rows + 1, line, cells)
            self.report.add(result)
            if self.on_row is not None:
                self.on_row(result)
            if self.progress is not None:
                self.progress(self.report)
            self._stop_if_hopeless(result)
            if limit is not None and self.report.rows >= limit:
                return  # before reading on: the rest of the file is for the next run
            if self.keep_going is not None and not self.keep_going(self.report):
                return  # paused or cancelled: the row in hand is done, nothing is half-sent

    def _row(self, index: int, line: int, cells: list[str]) -> RowResult:
        """One row, step by step: its values and texts, its key, then its message."""
        header = self.header
        try:
            values = header.values(cells)
            sms, viber = self._content(values)
            recipient = values[header.special["recipient"]]
            if self.unique and self._repeated(recipient):
                return RowResult(
                    line, Outcome.DUPLICATE, recipient, detail=_("the number of an earlier row")
                )
            key, earlier = self._key(index, cells)
            if earlier is not None:
                return self._take(line, earlier)
            if self.report.dry_run:
                return self._check(line, recipient, sms, viber)
            return self._take(line, self._write(line, recipient, sms, viber, key))
        except RowError as exc:
            return RowResult(line, Outcome.INVALID, detail=str(exc))

    def _content(self, values: Row) -> tuple[SmsContent | None, ViberContent | None]:
        return row_content(self.header, self.content, self.channels, values)

    def _repeated(self, recipient: str) -> bool:
        """``unique``: whether an earlier row had this number (an invalid one is left to
        the write, which names the problem)."""
        try:
            number = int(normalize_recipient(recipient, smsfly_settings.DEFAULT_REGION))
        except (SmsFlyValidationError, ValueError):
            return False
        if number in self.seen:
            return True
        self.seen.add(number)
        return False

    def _key(self, index: int, cells: list[str]) -> tuple[str, Message | None]:
        """This row's idempotency key, and the message that already used it, if any.

        A row whose earlier message failed (refused, nothing sent or spent) gets the
        next key (``...:2``), so fixing the cause and running again sends it.
        """
        base = row_key(self.campaign, self.header, index, cells)
        key, attempt = base, 1
        while True:
            earlier = Message.objects.filter(idempotency_key=key).first()
            if earlier is None or earlier.state != Message.State.FAILED:
                return key, earlier
            if earlier.error_code == SmsFlyOptedOut.default_code and _still_opted_out(earlier):
                return key, earlier  # the number is still on the list: not tried again
            attempt += 1
            key = f"{base}:{attempt}"

    def _write(
        self,
        line: int,
        recipient: str,
        sms: SmsContent | None,
        viber: ViberContent | None,
        key: str,
    ) -> Message:
        """Write the row's message ``queued`` (or find the one another run just wrote)."""
        metadata: dict[str, Any] = {"csv": self.name, "line": line}
        if self.campaign:
            metadata["campaign"] = self.campaign
        metadata["run"] = self.report.run_id
        try:
            return services.queue_message(
                recipient,
                channels=self.channels,
                sms=sms,
                viber=viber,
                idempotency_key=key,
                metadata=metadata,
                send_at=self._quiet_until(recipient),
                campaign_id=self.campaign_id,
            )
        except SmsFlyValidationError as exc:
            raise RowError(str(exc)) from exc

    def _quiet_until(self, recipient: str) -> dt.datetime | None:
        """``quiet_hours``: the end of the recipient's quiet window, if it is in one now."""
        if not self.quiet_hours or smsfly_settings.QUIET_HOURS is None:
            return None
        try:
            digits = normalize_recipient(recipient, smsfly_settings.DEFAULT_REGION)
        except SmsFlyValidationError:
            return None  # queue_message refuses it, naming the problem
        return quiet_until(digits, timezone.now())

    def _take(self, line: int, message: Message) -> RowResult:
        """What this run does with a row's message: send it, hand it to the task workers,
        or leave it to whoever has it."""
        if self.report.dry_run:
            return _found(line, message, Outcome.SKIPPED)
        if message.state == Message.State.FAILED and message.error_code == _OPTED_OUT:
            return _found(line, message, Outcome.OPTED_OUT)
        if _waits_for_its_time(message):
            return _found(line, message, Outcome.SCHEDULED)
        if self.report.deferred and message.state == Message.State.QUEUED:
            # Written now, or left queued by an interrupted --defer run: enqueue it
            # (again). A send task claims its message first, so it is sent once.
            self._enqueue(message.pk)
            return _found(line, message, Outcome.ENQUEUED)
        if self._is_ours_to_send(message):
            return self._send(line, message)
        if message.state in (Message.State.SENDING, Message.State.FAILED):
            # Being sent by someone else, or (failed) sent by another run since this one
            # looked the row up: either way that run reports it.
            return _found(line, message, Outcome.ELSEWHERE)
        if message.state == Message.State.QUEUED and _never_tried(message):
            return _found(line, message, Outcome.ELSEWHERE)  # its writer is about to send it
        # Accepted, unknown (never re-sent automatically), or queued for a retry (for
        # smsfly_sync): an earlier run handed it over.
        return _found(line, message, Outcome.SKIPPED)

    def _is_ours_to_send(self, message: Message) -> bool:
        """Whether this run sends the message: it wrote it, or its writer left it behind.

        Another run's message that is not sent yet is left to it for ``QUEUED_GRACE``
        (as ``smsfly_sync`` leaves it): it is waiting for a send slot. Were both runs to
        send it, the claim would let only one, but the other could not tell whose send
        it was and would count it too.
        """
        if message.state != Message.State.QUEUED or not _never_tried(message):
            return False
        metadata = message.metadata
        if isinstance(metadata, dict) and metadata.get("run") == self.report.run_id:
            return True
        grace = dt.timedelta(seconds=smsfly_settings.QUEUED_GRACE)
        return message.created_at <= timezone.now() - grace

    def _send(self, line: int, message: Message) -> RowResult:
        """Send a queued message (claimed first, paced by the one send limiter)."""
        sent = services.dispatch(message.pk, rate_limit=self.rate)
        state = sent.state
        if state == Message.State.SENDING:
            return _found(line, sent, Outcome.ELSEWHERE)  # another worker claimed it first
        if state == Message.State.ACCEPTED:
            return _found(line, sent, Outcome.SENT)
        problem = f"{sent.recipient}: {sent.error_text} [{sent.error_code}]"
        if state == Message.State.QUEUED:
            return RowResult(line, Outcome.QUEUED, sent.recipient, sent, problem)
        if state == Message.State.UNKNOWN:
            problem += " " + _("(outcome unknown: it may have been sent)")
            return RowResult(line, Outcome.UNKNOWN, sent.recipient, sent, problem)
        return RowResult(line, Outcome.FAILED, sent.recipient, sent, problem)

    def _stop_if_hopeless(self, result: RowResult) -> None:
        """Stop when SMS-fly refuses everything, or settles nothing any more."""
        if result.outcome is Outcome.SENT:
            self.unsettled_in_a_row = 0
            return
        if result.outcome in (Outcome.QUEUED, Outcome.UNKNOWN):
            self.unsettled_in_a_row += 1
        elif result.outcome is not Outcome.FAILED:
            return  # not sent by this run: it says nothing about SMS-fly
        code = result.message.error_code if result.message is not None else ""
        if code in FATAL_CODES:
            raise _Stop(
                _("Stopped at line %(line)d: SMS-fly refuses every message (%(code)s).")
                % {"line": result.line, "code": code}
            )
        if self.unsettled_in_a_row >= MAX_UNSETTLED_IN_A_ROW:
            raise _Stop(
                _(
                    "Stopped at line %(line)d: %(count)d messages in a row were not "
                    "accepted (last: %(code)s). Run the same command again later: rows "
                    "already sent or queued are skipped."
                )
                % {"line": result.line, "count": self.unsettled_in_a_row, "code": code}
            )

    def _enqueue(self, pk: int) -> None:
        self.pending.append(pk)
        if len(self.pending) >= services.SEND_TASK_BATCH:
            self._flush()

    def _flush(self) -> None:
        if self.pending:
            services.enqueue_send(self.pending)
            self.pending = []

    def _check(
        self, line: int, recipient: str, sms: SmsContent | None, viber: ViberContent | None
    ) -> RowResult:
        """Dry run: validate a row; its parts and estimated cost."""
        try:
            prepared = services.get_client().prepare(
                recipient, channels=self.channels, sms=sms, viber=viber
            )
        except SmsFlyValidationError as exc:
            raise RowError(str(exc)) from exc
        sms_block = prepared.data.get(Channel.SMS.value)
        return RowResult(
            line,
            Outcome.CHECKED,
            recipient=prepared.recipient,
            channels=prepared.channels,
            segments=count_segments(sms_block["text"]) if sms_block else None,
            estimate=self._estimate(recipient, sms, viber),
        )

    def _estimate(
        self, recipient: str, sms: SmsContent | None, viber: ViberContent | None
    ) -> CostEstimate | None:
        if self.report.price_error is not None:
            return None  # the price list could not be had: don't ask again for every row
        try:
            return services.estimate_cost(recipient, channels=self.channels, sms=sms, viber=viber)
        except SmsFlyValidationError as exc:
            raise RowError(str(exc)) from exc
        except SmsFlyError as exc:
            self.report.price_error = str(exc)
            return None


_OPTED_OUT = SmsFlyOptedOut.default_code


def _never_tried(message: Message) -> bool:
    """Queued for its first send: no attempt yet, no retry time set (other than the
    time it was scheduled for)."""
    return message.attempts == 0 and message.retry_at in (None, message.send_at)


def _waits_for_its_time(message: Message) -> bool:
    """Queued never tried, not to be sent before a time still ahead (quiet hours)."""
    return (
        message.state == Message.State.QUEUED
        and message.attempts == 0
        and message.send_at is not None
        and message.send_at > timezone.now()
    )


def _still_opted_out(message: Message) -> bool:
    return OptOut.objects.filter(recipient=message.recipient).exists()


def _found(line: int, message: Message, outcome: Outcome) -> RowResult:
    return RowResult(line, outcome, recipient=message.recipient, message=message)
