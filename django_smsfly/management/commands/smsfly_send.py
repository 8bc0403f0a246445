"""``manage.py smsfly_send``: send one message, or one per row of a CSV file.

A CSV run is streamed (one row in memory at a time), paced to ``--rate`` messages per
second, and resumable: every row gets an idempotency key made from the campaign name,
the header, the row's position and its content, so running the same file again after an
interruption skips the rows already handed to SMS-fly instead of sending them twice.
"""

from __future__ import annotations

import csv
import hashlib
import string
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop, ngettext

from django_smsfly import services
from django_smsfly.channels import Channel
from django_smsfly.exceptions import SmsFlyError, SmsFlyValidationError
from django_smsfly.management.commands._common import (
    INTERRUPTED,
    Progress,
    SmsFlyCommand,
    money,
    non_negative_float,
    positive_int,
)
from django_smsfly.models import Message
from django_smsfly.pricing import CostEstimate
from django_smsfly.ratelimit import RateLimiter
from django_smsfly.segments import Segments, count_segments
from django_smsfly.validation import SmsContent, ViberContent, validate_channels

#: A CSV run stops after this many sends in a row that SMS-fly did not settle (queued
#: for a retry, or an unknown outcome): it is down or refusing bursts, and going on
#: would only pile up messages for an operator to look at.
MAX_UNSETTLED_IN_A_ROW = 5

#: Refusals that every following row would meet too (the key or the money): stop at once.
FATAL_CODES = frozenset({"FORBIDDEN", "HTTP_403", "INSUFFICIENTFUND", "INSUFFICIENTFUNDS"})


class Command(SmsFlyCommand):
    """Send an SMS and/or Viber message to one number, or to every row of a CSV file."""

    help = gettext_noop(
        "Send a message to one number (--to) or one per row of a CSV file (--csv, with a "
        "'recipient' column and optional 'text' and 'viber_text' columns; --text and "
        "--viber-text then act as templates filled from the row's columns, as in "
        "'Hello {name}'). Channels default to sms for --text alone, viber for Viber "
        "options alone, and viber then sms for both. A CSV run is paced by --rate and can "
        "be run again after an interruption: rows already sent are skipped. --dry-run "
        "validates and estimates the cost without sending. Exit status: 0 when every "
        "message was accepted (or queued for a retry), 1 when any failed or the input is "
        "wrong."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        """Options for the recipient(s), the content, the CSV run and the dry run."""
        where = parser.add_argument_group(_("recipients"))
        where.add_argument("--to", metavar="NUMBER", help=_("The recipient's mobile number."))
        where.add_argument(
            "--csv",
            metavar="FILE",
            help=_(
                "A CSV file with a header row: 'recipient' (required), 'text' (the SMS "
                "text, unless --text is given), 'viber_text' (unless --viber-text is "
                "given), and any other columns for the templates."
            ),
        )
        content = parser.add_argument_group(_("content"))
        content.add_argument(
            "--text", help=_("The SMS text; with --csv a template such as 'Hi {name}'.")
        )
        content.add_argument(
            "--viber-text", help=_("The Viber text; with --csv a template like --text.")
        )
        content.add_argument("--image", metavar="URL", help=_("Viber: an https:// image URL."))
        content.add_argument("--button-caption", help=_("Viber: the button's caption."))
        content.add_argument("--button-url", metavar="URL", help=_("Viber: the button's link."))
        content.add_argument(
            "--channels",
            metavar="LIST",
            help=_(
                "Channels in fallback order, comma-separated: sms, viber, viber,sms or sms,viber."
            ),
        )
        content.add_argument(
            "--source", help=_("SMS sender name (default: SMSFLY['SMS_SOURCE']).")
        )
        content.add_argument(
            "--viber-source", help=_("Viber sender name (default: SMSFLY['VIBER_SOURCE']).")
        )
        content.add_argument(
            "--ttl",
            type=positive_int,
            metavar="MINUTES",
            help=_("Lifetime of the message on every channel, 1 to 1440 minutes."),
        )
        content.add_argument(
            "--flash", action="store_true", help=_("Send the SMS as a flash SMS.")
        )
        content.add_argument(
            "--idempotency-key",
            metavar="KEY",
            help=_("With --to: a key that is never sent twice (a repeat returns the first)."),
        )
        run = parser.add_argument_group(_("CSV runs"))
        run.add_argument(
            "--campaign",
            metavar="NAME",
            help=_(
                "Names this mailing. Rows already sent under the same name (and file "
                "contents) are skipped; a new name sends the same file again. Between "
                "runs, only add rows at the end of the file."
            ),
        )
        run.add_argument(
            "--rate",
            type=non_negative_float,
            default=5.0,
            metavar="N",
            help=_("At most N messages per second (default 5; 0 for no limit)."),
        )
        run.add_argument(
            "--limit",
            type=positive_int,
            metavar="N",
            help=_("Stop after the first N rows (run again without it to do the rest)."),
        )
        run.add_argument(
            "--encoding",
            default="utf-8-sig",
            help=_("The file's encoding (default utf-8, with or without a BOM)."),
        )
        run.add_argument("--delimiter", default=",", help=_("The field separator (default ',')."))
        parser.add_argument(
            "--defer",
            action="store_true",
            help=_(
                "Write the messages as queued and hand them to background task workers "
                "(SMSFLY['TASK_BACKEND']), which send them at SMSFLY['SEND_RATE_LIMIT']; "
                "--rate does not apply."
            ),
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help=_(
                "Validate and show recipient, channels, SMS parts and encoding and the "
                "estimated cost; send nothing."
            ),
        )

    def handle(self, *args: Any, **options: Any) -> None:
        """Check the options, then send to one number or run the CSV file."""
        if bool(options["to"]) == bool(options["csv"]):
            raise CommandError(_("Give either --to NUMBER or --csv FILE."))
        if options["csv"]:
            if options["idempotency_key"]:
                raise CommandError(
                    _("--idempotency-key is for one message; a CSV run keys each row itself.")
                )
            _CsvRun(self, options).run()
            return
        for name in ("campaign", "limit"):
            if options[name] is not None:
                raise CommandError(_("--%(option)s is only for --csv.") % {"option": name})
        self._send_one(options)

    # -- one message ---------------------------------------------------------------------

    def _send_one(self, options: dict[str, Any]) -> None:
        content = _Content.from_options(
            options,
            sms=options["text"] is not None,
            viber=_has_viber(options),
        )
        sms, viber = content.blocks(options["text"], options["viber_text"])
        key = options["idempotency_key"]
        earlier = Message.objects.filter(idempotency_key=key).first() if key else None
        if options["dry_run"]:
            self._preview(options["to"], content.channels, sms, viber)
            if earlier is not None:
                self.say(
                    _("The idempotency key was used by message %(pk)d: nothing would be sent.")
                    % {"pk": earlier.pk}
                )
            self.say(_("Dry run: nothing was sent."))
            return
        message = services.send_message(
            options["to"],
            channels=content.channels,
            sms=sms,
            viber=viber,
            idempotency_key=key,
            defer=options["defer"],
        )
        if earlier is not None:
            self.say(
                _("The idempotency key was used before, by message %(pk)d: nothing was sent.")
                % {"pk": earlier.pk}
            )
        self._report(message)

    def _report(self, message: Message) -> None:
        """Describe a message's outcome; a failed or unknown one ends with exit status 1."""
        details = {
            "pk": message.pk,
            "code": message.error_code,
            "error": message.error_text,
        }
        state = message.state
        if state == Message.State.ACCEPTED:
            self.say(_("Message %(pk)d: accepted by SMS-fly.") % details)
            self.say("  " + _("SMS-fly message id: %(id)s") % {"id": message.message_id})
            self.say("  " + _("Status: %(status)s") % {"status": message.get_status_display()})
            self.say("  " + _("Cost: %(cost)s") % {"cost": money(message.cost)})
        elif state == Message.State.QUEUED and not message.error_code and not message.retry_at:
            self.say(
                _("Message %(pk)d is queued: a task worker will send it (--defer).") % details
            )
        elif state == Message.State.QUEUED:
            when = timezone.localtime(message.retry_at) if message.retry_at else None
            self.say(
                _(
                    "Message %(pk)d is queued: SMS-fly refused it for now (%(error)s "
                    "[%(code)s]). smsfly_sync sends it again after %(when)s."
                )
                % {**details, "when": when.strftime("%H:%M:%S") if when else "—"}
            )
        elif state == Message.State.SENDING:
            self.say(_("Message %(pk)d is being sent by another process.") % details)
        elif state == Message.State.FAILED:
            raise CommandError(
                _("Message %(pk)d failed: %(error)s [%(code)s]. Nothing was sent.") % details
            )
        else:
            raise CommandError(
                _(
                    "Message %(pk)d: the outcome is unknown (%(error)s [%(code)s]). SMS-fly "
                    "may have sent it: check it with 'smsfly_sync --message %(pk)d' before "
                    "sending again."
                )
                % details
            )

    def _preview(
        self,
        recipient: str,
        channels: tuple[Channel, ...],
        sms: SmsContent | None,
        viber: ViberContent | None,
    ) -> None:
        prepared = services.get_client().prepare(
            recipient, channels=channels, sms=sms, viber=viber
        )
        self.say(_("Recipient: %(recipient)s") % {"recipient": prepared.recipient})
        self.say(_("Channels: %(channels)s") % {"channels": _channel_names(prepared.channels)})
        sms_block = prepared.data.get(Channel.SMS.value)
        if sms_block:
            self.say(
                _("SMS: %(segments)s") % {"segments": _segments(count_segments(sms_block["text"]))}
            )
        try:
            estimate = services.estimate_cost(recipient, channels=channels, sms=sms, viber=viber)
        except SmsFlyValidationError:
            raise  # the input is wrong: an error, not a cost we could not learn
        except SmsFlyError as exc:
            self.say(_("Estimated cost: unknown (%(error)s).") % {"error": exc})
        else:
            self.say(_cost_line(estimate.first, estimate.most, len(channels)))


# -- what a run sends --------------------------------------------------------------------


@dataclass(frozen=True)
class _Content:
    """Everything a message of this run carries besides its texts."""

    channels: tuple[Channel, ...]
    source: str | None
    viber_source: str | None
    ttl: int | None
    flash: bool
    image: str | None
    button_caption: str | None
    button_url: str | None

    @classmethod
    def from_options(cls, options: dict[str, Any], *, sms: bool, viber: bool) -> _Content:
        """Choose the channels (``--channels`` or by what was given) and check them.

        ``sms``/``viber``: whether an SMS text / Viber content is available at all.
        """
        sms_explicit = options["text"] is not None
        viber_explicit = _has_viber(options)
        if options["channels"]:
            names = [part.strip() for part in options["channels"].split(",") if part.strip()]
            channels = validate_channels(names)
        elif sms and viber:
            channels = (Channel.VIBER, Channel.SMS)
        elif viber:
            channels = (Channel.VIBER,)
        elif sms:
            channels = (Channel.SMS,)
        else:
            raise CommandError(
                _("Nothing to send: give --text (SMS) and/or --viber-text or --image (Viber).")
            )
        if Channel.SMS in channels and not sms:
            raise CommandError(
                _("The sms channel needs a text: --text, or a 'text' column in the CSV.")
            )
        if Channel.VIBER in channels and not viber:
            raise CommandError(
                _(
                    "The viber channel needs --viber-text or --image (or a 'viber_text' "
                    "column in the CSV)."
                )
            )
        if sms_explicit and Channel.SMS not in channels:
            raise CommandError(_("--text is given, but sms is not in --channels."))
        if viber_explicit and Channel.VIBER not in channels:
            raise CommandError(_("Viber options are given, but viber is not in --channels."))
        return cls(
            channels=channels,
            source=options["source"],
            viber_source=options["viber_source"],
            ttl=options["ttl"],
            flash=bool(options["flash"]),
            image=options["image"],
            button_caption=options["button_caption"],
            button_url=options["button_url"],
        )

    def blocks(
        self, sms_text: str | None, viber_text: str | None
    ) -> tuple[SmsContent | None, ViberContent | None]:
        """The SMS and Viber content for these texts (``None`` for a channel not used)."""
        sms = viber = None
        if Channel.SMS in self.channels:
            sms = SmsContent(
                text=sms_text or "", source=self.source, ttl=self.ttl, flash=self.flash
            )
        if Channel.VIBER in self.channels:
            viber = ViberContent(
                # An empty cell means no text (an image-only message), not an empty text.
                text=viber_text or None,
                image=self.image,
                button_caption=self.button_caption,
                button_url=self.button_url,
                source=self.viber_source,
                ttl=self.ttl,
            )
        return sms, viber


def _has_viber(options: dict[str, Any]) -> bool:
    """Whether any Viber option was given."""
    viber_options = ("viber_text", "image", "button_caption", "button_url")
    return any(options[name] is not None for name in viber_options)


def _channel_names(channels: tuple[Channel, ...]) -> str:
    return ", ".join(c.value for c in channels)


def _segments(segments: Segments) -> str:
    return ngettext(
        "%(parts)d part, %(encoding)s, %(length)d characters",
        "%(parts)d parts, %(encoding)s, %(length)d characters",
        segments.parts,
    ) % {"parts": segments.parts, "encoding": segments.encoding, "length": segments.length}


def _cost_line(first: Decimal | None, most: Decimal | None, channels: int) -> str:
    if first is None:
        return _("Estimated cost: unknown (no price for this number's network).")
    if channels > 1:
        return _("Estimated cost: %(first)s if the first channel delivers, at most %(most)s.") % {
            "first": money(first),
            "most": money(most),
        }
    return _("Estimated cost: %(cost)s.") % {"cost": money(first)}


# -- a CSV run ---------------------------------------------------------------------------


class _RowError(Exception):
    """A row that cannot be sent; reported with its line and counted, never fatal."""


class _Stop(Exception):
    """The run cannot usefully go on; the text says why."""


class _Row(dict[str, str]):
    """A row's values for a template: an unknown name is an error that names it."""

    def __missing__(self, key: str) -> str:
        raise _RowError(_("the template uses {%(name)s}, which is not a column") % {"name": key})


@dataclass
class _Tally:
    """What a CSV run did, for the progress line and the summary."""

    rows: int = 0
    sent: int = 0
    skipped: int = 0
    queued: int = 0
    #: --defer: messages handed to the task workers.
    enqueued: int = 0
    errors: int = 0
    cost: Decimal = Decimal(0)
    #: Dry run: SMS parts, messages per encoding, and the estimated cost.
    parts: int = 0
    encodings: dict[str, int] = field(default_factory=dict)
    first: Decimal = Decimal(0)
    most: Decimal = Decimal(0)
    unpriced: int = 0


class _CsvRun:
    """Sends (or, with ``--dry-run``, checks) one message per row of a CSV file."""

    def __init__(self, command: Command, options: dict[str, Any]) -> None:
        self.command = command
        self.options = options
        self.path = Path(options["csv"])
        self.dry_run: bool = options["dry_run"]
        self.tally = _Tally()
        self.defer: bool = options["defer"] and not self.dry_run
        # Deferred sends are paced by the workers' shared limit, not here.
        self.limiter = RateLimiter(0 if self.defer else options["rate"])
        #: --defer: primary keys written but not yet enqueued (flushed in batches).
        self.pending: list[int] = []
        self.progress = Progress(command.stdout, enabled=command.verbosity >= 1)
        self.price_error: SmsFlyError | None = None
        self.unsettled_in_a_row = 0
        self.line = 0

    def run(self) -> None:
        """Read the file row by row, send, and summarize; exit status 1 if a row failed."""
        try:
            handle = self.path.open(newline="", encoding=self.options["encoding"])
        except LookupError:
            raise CommandError(
                _("--encoding: unknown encoding %(encoding)r.")
                % {"encoding": self.options["encoding"]}
            ) from None
        except OSError as exc:
            raise CommandError(
                _("Cannot read %(path)s: %(error)s.")
                % {"path": self.path, "error": exc.strerror or exc}
            ) from None
        with handle:
            try:
                reader = csv.reader(handle, delimiter=self.options["delimiter"])
            except TypeError:
                raise CommandError(_("--delimiter must be a single character.")) from None
            rows = self._read(reader)
            header = next(rows, None)
            if header is None:
                raise CommandError(
                    _("%(path)s is empty: expected a header row with a 'recipient' column.")
                    % {"path": self.path}
                )
            self._prepare(header[1])
            stop: str | None = None
            returncode = 1
            try:
                try:
                    self._rows(rows)
                finally:
                    # Also on an interruption: what was written is handed to the workers.
                    self._flush()
            except (_Stop, CommandError) as exc:
                # Unreadable input further down the file, or SMS-fly refusing everything:
                # what was done so far is summarized before the error.
                stop = str(exc)
            except KeyboardInterrupt:
                returncode = INTERRUPTED
                stop = _(
                    "Interrupted at line %(line)d. Run the same command again to go on: "
                    "rows already sent are skipped."
                ) % {"line": self.line}
            finally:
                if self.tally.rows:
                    self.progress.finish(self._progress_line())
        self._summary()
        if stop is not None:
            raise CommandError(stop, returncode=returncode)
        if self.tally.errors:
            raise CommandError(
                ngettext(
                    "%(count)d row could not be sent; see the lines above.",
                    "%(count)d rows could not be sent; see the lines above.",
                    self.tally.errors,
                )
                % {"count": self.tally.errors}
            )

    def _read(self, reader: Any) -> Iterator[tuple[int, list[str]]]:
        """``(line, row)`` for each non-blank row; broken input is a clear error."""
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise CommandError(
                    _("Line %(line)d: not valid CSV: %(error)s")
                    % {"line": reader.line_num, "error": exc}
                ) from None
            except UnicodeDecodeError:
                raise CommandError(
                    _(
                        "Near line %(line)d: the file is not %(encoding)s text; give its "
                        "encoding with --encoding (for example cp1251)."
                    )
                    % {"line": reader.line_num + 1, "encoding": self.options["encoding"]}
                ) from None
            if any(cell.strip() for cell in row):
                yield reader.line_num, row

    def _prepare(self, header: list[str]) -> None:
        """Check the header and templates against each other; choose the channels."""
        self.header = header
        # Templates name columns as written; the app's own columns are found in any case.
        self.columns = [cell.strip() for cell in header]
        lowered = [column.lower() for column in self.columns]
        for column in lowered:
            if column and lowered.count(column) > 1:
                raise CommandError(
                    _("The column %(column)r appears twice in the header.") % {"column": column}
                )
        self.special: dict[str, str] = {
            name: self.columns[lowered.index(name)]
            for name in ("recipient", "text", "viber_text")
            if name in lowered
        }
        if "recipient" not in self.special:
            raise CommandError(
                _("%(path)s has no 'recipient' column (the header has: %(columns)s).")
                % {"path": self.path, "columns": ", ".join(self.columns)}
            )
        self.sms_template: str | None = self.options["text"]
        self.viber_template: str | None = self.options["viber_text"]
        for option, template in (
            ("--text", self.sms_template),
            ("--viber-text", self.viber_template),
        ):
            if template is not None:
                _check_template(option, template, self.columns)
        self.content = _Content.from_options(
            self.options,
            sms=self.sms_template is not None or "text" in self.special,
            viber=_has_viber(self.options) or "viber_text" in self.special,
        )
        self.campaign: str = self.options["campaign"] or ""

    def _rows(self, rows: Iterator[tuple[int, list[str]]]) -> None:
        limit: int | None = self.options["limit"]
        if limit is not None and limit < 1:
            return
        for line, row in rows:
            self.line = line
            self.tally.rows += 1
            try:
                self._row(self.tally.rows, line, row)
            except _RowError as exc:
                self.tally.errors += 1
                self._problem(line, str(exc))
            self.progress.update(self._progress_line())
            if limit is not None and self.tally.rows >= limit:
                return  # before reading on: the rest of the file is for the next run

    def _row(self, index: int, line: int, row: list[str]) -> None:
        if len(row) > len(self.columns):
            raise _RowError(
                _("%(found)d fields, but the header has %(expected)d")
                % {"found": len(row), "expected": len(self.columns)}
            )
        # A short row leaves its last columns empty, as spreadsheets write them.
        values = _Row(
            zip(self.columns, [*row, *[""] * (len(self.columns) - len(row))], strict=True)
        )
        sms_text = self._fill("--text", self.sms_template, values, self._cell(values, "text"))
        viber_text = self._fill(
            "--viber-text", self.viber_template, values, self._cell(values, "viber_text")
        )
        key, earlier = self._key(index, row)
        if earlier is not None and self.defer and earlier.state == Message.State.QUEUED:
            # Written by an interrupted --defer run: enqueue it (again). A send task
            # claims its message first, so a message enqueued twice is sent once.
            self._enqueue(earlier.pk)
            return
        if earlier is not None:
            self.tally.skipped += 1
            self.command.say(
                _("Line %(line)d: already sent as message %(pk)d (%(state)s); skipped.")
                % {"line": line, "pk": earlier.pk, "state": earlier.get_state_display()},
                level=2,
            )
            return
        sms, viber = self.content.blocks(sms_text, viber_text)
        recipient = values[self.special["recipient"]]
        if self.dry_run:
            self._check(line, recipient, sms, viber)
            return
        self.limiter.acquire()
        metadata: dict[str, Any] = {"csv": self.path.name, "line": line}
        if self.campaign:
            metadata["campaign"] = self.campaign
        # --defer writes the row queued (the workers send it); otherwise it is sent now.
        write = services.queue_message if self.defer else services.send_message
        try:
            message = write(
                recipient,
                channels=self.content.channels,
                sms=sms,
                viber=viber,
                idempotency_key=key,
                metadata=metadata,
            )
        except SmsFlyValidationError as exc:
            raise _RowError(str(exc)) from exc
        if self.defer:
            self._enqueue(message.pk)
            return
        self._outcome(line, message)

    def _enqueue(self, pk: int) -> None:
        self.pending.append(pk)
        self.tally.enqueued += 1
        if len(self.pending) >= services.SEND_TASK_BATCH:
            self._flush()

    def _flush(self) -> None:
        if self.pending:
            services.enqueue_send(self.pending)
            self.pending = []

    def _cell(self, values: _Row, name: str) -> str | None:
        column = self.special.get(name)
        return values[column] if column is not None else None

    def _fill(
        self, option: str, template: str | None, values: _Row, column: str | None
    ) -> str | None:
        if template is None:
            return column  # a column's text is sent as written: its braces are not fields
        try:
            return template.format_map(values)
        except (ValueError, TypeError) as exc:
            raise _RowError(
                _("%(option)s cannot be filled from this row: %(error)s")
                % {"option": option, "error": exc}
            ) from exc

    def _key(self, index: int, row: list[str]) -> tuple[str, Message | None]:
        """This row's idempotency key, and the message that already used it, if any.

        The key digests the campaign, the header, the row's position and its cells, so
        the same file resumes wherever it is moved. A row whose earlier message failed
        (refused, nothing sent or spent) gets the next key (``...:2``), so fixing the
        cause and running again sends it.
        """
        digest = hashlib.sha256()
        for part in (self.campaign, *self.header, str(index), *row):
            digest.update(part.encode("utf-8"))
            digest.update(b"\0")  # a separator, so ("ab", "c") and ("a", "bc") differ
        base = f"smsfly_send:{digest.hexdigest()}"
        key, attempt = base, 1
        while True:
            earlier = Message.objects.filter(idempotency_key=key).first()
            if earlier is None or earlier.state != Message.State.FAILED:
                return key, earlier
            attempt += 1
            key = f"{base}:{attempt}"

    def _outcome(self, line: int, message: Message) -> None:
        tally = self.tally
        state = message.state
        if state == Message.State.ACCEPTED:
            tally.sent += 1
            tally.cost += message.cost or 0
            self.unsettled_in_a_row = 0
            self.command.say(
                _("Line %(line)d: %(recipient)s accepted as message %(pk)d.")
                % {"line": line, "recipient": message.recipient, "pk": message.pk},
                level=2,
            )
            return
        problem = f"{message.recipient}: {message.error_text} [{message.error_code}]"
        if state == Message.State.QUEUED:
            tally.queued += 1
            self.unsettled_in_a_row += 1
            self.command.say(
                _("Line %(line)d: queued for a retry: %(problem)s")
                % {"line": line, "problem": problem},
                level=2,
            )
        else:
            tally.errors += 1
            if state == Message.State.UNKNOWN:
                self.unsettled_in_a_row += 1
                problem += " " + _("(outcome unknown: it may have been sent)")
            self._problem(line, problem)
        if message.error_code in FATAL_CODES:
            raise _Stop(
                _("Stopped at line %(line)d: SMS-fly refuses every message (%(code)s).")
                % {"line": line, "code": message.error_code}
            )
        if self.unsettled_in_a_row >= MAX_UNSETTLED_IN_A_ROW:
            raise _Stop(
                _(
                    "Stopped at line %(line)d: %(count)d messages in a row were not "
                    "accepted (last: %(code)s). Run the same command again later: rows "
                    "already sent or queued are skipped."
                )
                % {"line": line, "count": self.unsettled_in_a_row, "code": message.error_code}
            )

    def _check(
        self, line: int, recipient: str, sms: SmsContent | None, viber: ViberContent | None
    ) -> None:
        """Dry run: validate a row and add its parts and estimated cost to the tally."""
        channels = self.content.channels
        try:
            prepared = services.get_client().prepare(
                recipient, channels=channels, sms=sms, viber=viber
            )
        except SmsFlyValidationError as exc:
            raise _RowError(str(exc)) from exc
        tally = self.tally
        segments = None
        sms_block = prepared.data.get(Channel.SMS.value)
        if sms_block:
            segments = count_segments(sms_block["text"])
            tally.parts += segments.parts
            encoding = str(segments.encoding)
            tally.encodings[encoding] = tally.encodings.get(encoding, 0) + 1
        estimate = self._estimate(recipient, sms, viber)
        if estimate is None or estimate.first is None or estimate.most is None:
            tally.unpriced += 1
        else:
            tally.first += estimate.first
            tally.most += estimate.most
        parts = [prepared.recipient, _channel_names(prepared.channels)]
        if segments is not None:
            parts.append(_segments(segments))
        if estimate is not None and estimate.first is not None:
            parts.append(money(estimate.first))
        self.command.say(
            _("Line %(line)d: %(details)s") % {"line": line, "details": " · ".join(parts)},
            level=2,
        )

    def _estimate(
        self, recipient: str, sms: SmsContent | None, viber: ViberContent | None
    ) -> CostEstimate | None:
        if self.price_error is not None:
            return None  # the price list could not be had: don't ask again for every row
        try:
            return services.estimate_cost(
                recipient, channels=self.content.channels, sms=sms, viber=viber
            )
        except SmsFlyValidationError as exc:
            raise _RowError(str(exc)) from exc
        except SmsFlyError as exc:
            self.price_error = exc
            return None

    def _problem(self, line: int, text: str) -> None:
        self.progress.clear()
        self.command.stderr.write(
            _("Line %(line)d: %(problem)s") % {"line": line, "problem": text}
        )

    def _progress_line(self) -> str:
        tally = self.tally
        done = tally.sent + tally.queued + tally.enqueued if not self.dry_run else tally.rows
        return _(
            "line %(line)d · sent %(sent)d · skipped %(skipped)d · errors %(errors)d"
            " · %(rate).1f/s"
        ) % {
            "line": self.line,
            "sent": tally.sent,
            "skipped": tally.skipped,
            "errors": tally.errors,
            "rate": self.progress.rate(done),
        }

    def _summary(self) -> None:
        tally = self.tally
        say = self.command.say
        counts = {
            "rows": tally.rows,
            "sent": tally.sent,
            "skipped": tally.skipped,
            "queued": tally.queued,
            "errors": tally.errors,
            "valid": tally.rows - tally.errors - tally.skipped,
        }
        if self.defer:
            say(
                ngettext(
                    "%(rows)d row: %(enqueued)d handed to the task workers, %(skipped)d "
                    "skipped as already sent, %(errors)d invalid.",
                    "%(rows)d rows: %(enqueued)d handed to the task workers, %(skipped)d "
                    "skipped as already sent, %(errors)d invalid.",
                    tally.rows,
                )
                % {**counts, "enqueued": tally.enqueued}
            )
            say(_("Follow their progress with smsfly_sync or in the admin."))
            return
        if not self.dry_run:
            say(
                ngettext(
                    "%(rows)d row: %(sent)d sent, %(skipped)d skipped as already sent, "
                    "%(queued)d queued for a retry, %(errors)d failed.",
                    "%(rows)d rows: %(sent)d sent, %(skipped)d skipped as already sent, "
                    "%(queued)d queued for a retry, %(errors)d failed.",
                    tally.rows,
                )
                % counts
            )
            if tally.sent:
                say(_("Cost: %(cost)s") % {"cost": money(tally.cost)})
            if tally.queued:
                say(_("Queued messages are sent again by smsfly_sync when their time comes."))
            return
        say(
            ngettext(
                "%(rows)d row checked: %(valid)d valid, %(errors)d invalid, %(skipped)d "
                "already sent (would be skipped).",
                "%(rows)d rows checked: %(valid)d valid, %(errors)d invalid, %(skipped)d "
                "already sent (would be skipped).",
                tally.rows,
            )
            % counts
        )
        if tally.encodings:
            by_encoding = ", ".join(
                f"{name} ×{count}" for name, count in sorted(tally.encodings.items())
            )
            say(
                _("SMS parts: %(parts)d (%(encodings)s)")
                % {"parts": tally.parts, "encodings": by_encoding}
            )
        if not counts["valid"]:
            pass  # nothing would be sent: no cost to estimate
        elif self.price_error is not None:
            say(_("Estimated cost: unknown (%(error)s).") % {"error": self.price_error})
        else:
            say(_cost_line(tally.first, tally.most, len(self.content.channels)))
            if tally.unpriced:
                say(
                    ngettext(
                        "No price is known for %(count)d message; it is not counted.",
                        "No price is known for %(count)d messages; they are not counted.",
                        tally.unpriced,
                    )
                    % {"count": tally.unpriced}
                )
        say(_("Dry run: nothing was sent."))


def _check_template(option: str, template: str, columns: list[str]) -> None:
    """Refuse a template that is malformed or names something that is not a column.

    Only plain column names are allowed: no positional fields, no attribute or index
    access (``{name.__class__}``), no fields nested in a format spec.
    """
    try:
        fields = [
            (name, spec)
            for _literal, name, spec, _conversion in string.Formatter().parse(template)
            if name is not None
        ]
    except ValueError as exc:
        raise CommandError(
            _("%(option)s is not a valid template (%(error)s). Write {{ and }} for braces.")
            % {"option": option, "error": exc}
        ) from None
    for name, spec in fields:
        # "a.b" or "a[0]" would reach into a value's attributes; a spec may nest fields.
        plain = name in columns and not any(c in name for c in ".[") and "{" not in (spec or "")
        if not plain:
            raise CommandError(
                _(
                    "%(option)s uses {%(name)s}, which is not a column of the CSV (columns: "
                    "%(columns)s). Write {{ and }} for braces."
                )
                % {"option": option, "name": name, "columns": ", ".join(columns)}
            )
