"""``manage.py smsfly_send``: send one message, or one per row of a CSV file.

The command reads its options and writes what happened; the work is the service
layer's: :func:`django_smsfly.services.send_message` for one message, and
:func:`django_smsfly.mailing.run_csv` for a CSV run (streamed, paced, resumable), whose
report becomes the lines and the exit status here.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop, ngettext

from django_smsfly import mailing, services, templating
from django_smsfly.campaigns import CampaignError
from django_smsfly.campaigns import cli as campaign_cli
from django_smsfly.channels import Channel
from django_smsfly.exceptions import SmsFlyError, SmsFlyValidationError
from django_smsfly.mailing import MailingContent, MailingReport, Outcome, RowResult
from django_smsfly.mailing import progress as run_progress
from django_smsfly.management.commands._common import (
    INTERRUPTED,
    Progress,
    SmsFlyCommand,
    money,
    non_negative_float,
    positive_int,
)
from django_smsfly.models import Message, MessageTemplate
from django_smsfly.segments import Segments, count_segments
from django_smsfly.validation import SmsContent, ViberContent


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
            "--text",
            help=_(
                "The SMS text; with --csv a template such as 'Hi {name}' (a row with an "
                "empty name is refused; 'Hi {name|friend}' puts in a default)."
            ),
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
            metavar="N",
            help=_(
                "At most N messages per second: the rate of the app's one send limiter for "
                "this run (default SMSFLY['SEND_RATE_LIMIT'], or 5 when it is not set; 0 for "
                "no limit)."
            ),
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
        run.add_argument(
            "--template",
            metavar="NAME",
            help=_(
                "Render each row with this message template (its channels and texts; the "
                "row's columns are its values) instead of --text and --viber-text."
            ),
        )
        run.add_argument(
            "--language",
            metavar="CODE",
            help=_("With --template: the template's variant for this language (uk, en)."),
        )
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
        _check_options(options)
        content = _content(options)
        try:
            if options["csv"]:
                self._run_csv(content, options)
            else:
                self._send_one(content, options)
        except (mailing.MailingError, CampaignError) as exc:
            raise CommandError(str(exc)) from None

    # -- one message ---------------------------------------------------------------------

    def _send_one(self, content: MailingContent, options: dict[str, Any]) -> None:
        channels = content.choose_channels(sms=content.text is not None, viber=content.has_viber)
        sms, viber = content.blocks(channels, content.text, content.viber_text)
        key = options["idempotency_key"]
        earlier = Message.objects.filter(idempotency_key=key).first() if key else None
        if options["dry_run"]:
            self._preview(options["to"], channels, sms, viber)
            if earlier is not None:
                self.say(
                    _("The idempotency key was used by message %(pk)d: nothing would be sent.")
                    % {"pk": earlier.pk}
                )
            self.say(_("Dry run: nothing was sent."))
            return
        message = services.send_message(
            options["to"],
            channels=channels,
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

    # -- a CSV file ----------------------------------------------------------------------

    def _run_csv(self, content: MailingContent, options: dict[str, Any]) -> None:
        """Run the file through :func:`~django_smsfly.mailing.run_csv`; tell how it went."""
        output = _CsvOutput(self)
        try:
            report = _run_file(content, options, output)
        except mailing.MailingInterrupted as exc:
            output.finish(exc.report)
            raise CommandError(
                _(
                    "Interrupted at line %(line)d. Run the same command again to go on: "
                    "rows already sent are skipped."
                )
                % {"line": exc.report.line},
                returncode=INTERRUPTED,
            ) from None
        output.finish(report)
        if report.stopped is not None:
            # Unreadable input further down the file, or SMS-fly refusing everything:
            # what was done so far is summarized before the error.
            raise CommandError(report.stopped)
        if report.errors:
            raise CommandError(
                ngettext(
                    "%(count)d row could not be sent; see the lines above.",
                    "%(count)d rows could not be sent; see the lines above.",
                    report.errors,
                )
                % {"count": report.errors}
            )


def _run_file(
    content: MailingContent, options: dict[str, Any], output: _CsvOutput
) -> MailingReport:
    """A dry run checks the file here; a real run is a campaign (origin ``cli``): the
    same file and --campaign name find it again, and it runs through the campaigns'
    runner in this process, so the admin shows it with its progress."""
    template = _template(options)
    if options["dry_run"]:
        if template is not None:
            content = campaign_cli.with_template(content, template)
        return mailing.run_csv(
            options["csv"],
            content,
            campaign=options["campaign"] or "",
            rate=options["rate"],
            limit=options["limit"],
            encoding=options["encoding"],
            delimiter=options["delimiter"],
            dry_run=True,
            progress=output.progress,
            on_row=output.row,
        )
    campaign = campaign_cli.open_campaign(
        options["csv"],
        content,
        key=options["campaign"] or "",
        template=template,
        language=options["language"] or "",
        encoding=options["encoding"],
        delimiter=options["delimiter"],
    )
    report = campaign_cli.run_campaign(
        campaign,
        rate=options["rate"],
        limit=options["limit"],
        defer=options["defer"],
        progress=output.progress,
        on_row=output.row,
    )
    if report is None:
        campaign.refresh_from_db(fields=["error"])
        raise CommandError(campaign.error)
    return report


def _template(options: dict[str, Any]) -> MessageTemplate | None:
    """The --template asked for (its --language variant), or ``None``."""
    if not options["template"]:
        return None
    try:
        return templating.find(options["template"], options["language"] or None)
    except templating.TemplateNotFound as exc:
        raise CommandError(_("--template: %(error)s") % {"error": exc}) from None


def _check_options(options: dict[str, Any]) -> None:
    """Refuse options that do not go together."""
    if bool(options["to"]) == bool(options["csv"]):
        raise CommandError(_("Give either --to NUMBER or --csv FILE."))
    if options["csv"] and options["idempotency_key"]:
        raise CommandError(
            _("--idempotency-key is for one message; a CSV run keys each row itself.")
        )
    if not options["csv"]:
        for name in ("campaign", "limit", "template"):
            if options[name] is not None:
                raise CommandError(_("--%(option)s is only for --csv.") % {"option": name})
    if options["template"] and (options["text"] is not None or options["viber_text"] is not None):
        raise CommandError(_("Give either --template or --text/--viber-text, not both."))
    if options["language"] and not options["template"]:
        raise CommandError(_("--language is only for --template."))


def _content(options: dict[str, Any]) -> MailingContent:
    """The content and options every message shares, as given on the command line."""
    names = options["channels"]
    return MailingContent(
        text=options["text"],
        viber_text=options["viber_text"],
        image=options["image"],
        button_caption=options["button_caption"],
        button_url=options["button_url"],
        channels=[part.strip() for part in names.split(",") if part.strip()] if names else None,
        sms_source=options["source"],
        viber_source=options["viber_source"],
        ttl=options["ttl"],
        flash=bool(options["flash"]),
    )


class _CsvOutput:
    """A CSV run in lines: one for each row worth telling, a progress line, a summary."""

    def __init__(self, command: Command) -> None:
        self.command = command
        self.clock = run_progress.monotonic
        self.started = self.clock()
        self.bar = Progress(command.stdout, enabled=command.verbosity >= 1, clock=self.clock)
        self.bar.REDRAW_EVERY = run_progress.REDRAW_EVERY
        # Not a terminal (a log, a pipe): a plain line every so often instead, no "\r".
        self.plain = command.verbosity >= 1 and not self.bar.enabled
        self.ticker = run_progress.Ticker(run_progress.PLAIN_EVERY, self.clock)

    def row(self, result: RowResult) -> None:
        """A line for one row: problems on stderr always, the rows another run has at
        verbosity 1, everything else at verbosity 2."""
        line = {"line": result.line}
        message = result.message
        if result.is_problem:
            self.bar.clear()
            self.command.stderr.write(
                _("Line %(line)d: %(problem)s") % {**line, "problem": result.detail}
            )
        elif result.outcome is Outcome.ELSEWHERE and message is not None:
            self._say(
                _(
                    "Line %(line)d: in progress elsewhere: %(recipient)s, message %(pk)d "
                    "(%(state)s)."
                )
                % {
                    **line,
                    "recipient": message.recipient,
                    "pk": message.pk,
                    "state": message.get_state_display(),
                }
            )
        elif result.outcome is Outcome.SENT and message is not None:
            self._say(
                _("Line %(line)d: %(recipient)s accepted as message %(pk)d.")
                % {**line, "recipient": message.recipient, "pk": message.pk},
                level=2,
            )
        elif result.outcome is Outcome.QUEUED:
            self._say(
                _("Line %(line)d: queued for a retry: %(problem)s")
                % {**line, "problem": result.detail},
                level=2,
            )
        elif result.outcome is Outcome.SKIPPED and message is not None:
            self._say(
                _("Line %(line)d: already sent as message %(pk)d (%(state)s); skipped.")
                % {**line, "pk": message.pk, "state": message.get_state_display()},
                level=2,
            )
        elif result.outcome is Outcome.CHECKED:
            self._say(
                _("Line %(line)d: %(details)s") % {**line, "details": _row_details(result)},
                level=2,
            )

    def _say(self, text: str, *, level: int = 1) -> None:
        if self.command.verbosity >= level:
            self.bar.clear()
            self.command.stdout.write(text)

    def progress(self, report: MailingReport) -> None:
        """Redraw the progress line on a terminal; elsewhere write it as a plain line
        every ``PLAIN_EVERY`` seconds."""
        if not self.plain:
            self.bar.update(self._progress_line(report))
        elif self.ticker.due():
            self.command.stdout.write(self._progress_line(report))

    def _progress_line(self, report: MailingReport) -> str:
        elapsed = self.clock() - self.started
        return run_progress.progress_line(report, report.total, elapsed)

    def finish(self, report: MailingReport) -> None:
        """End the progress line and write the summary."""
        if report.rows and self.plain:
            self.command.stdout.write(self._progress_line(report))
        elif report.rows:
            self.bar.finish(self._progress_line(report))
        if report.dry_run:
            self._dry_run_summary(report)
            return
        say = self.command.say
        counts = {
            "rows": report.rows,
            "sent": report.sent,
            "skipped": report.skipped,
            "queued": report.queued,
            "errors": report.errors,
            "enqueued": report.enqueued,
        }
        if report.deferred:
            say(
                ngettext(
                    "%(rows)d row: %(enqueued)d handed to the task workers, %(skipped)d "
                    "skipped as already sent, %(errors)d invalid.",
                    "%(rows)d rows: %(enqueued)d handed to the task workers, %(skipped)d "
                    "skipped as already sent, %(errors)d invalid.",
                    report.rows,
                )
                % counts
            )
        else:
            say(
                ngettext(
                    "%(rows)d row: %(sent)d sent, %(skipped)d skipped as already sent, "
                    "%(queued)d queued for a retry, %(errors)d failed.",
                    "%(rows)d rows: %(sent)d sent, %(skipped)d skipped as already sent, "
                    "%(queued)d queued for a retry, %(errors)d failed.",
                    report.rows,
                )
                % counts
            )
        if report.elsewhere:
            say(
                ngettext(
                    "%(count)d row in progress elsewhere (another run, a task worker or "
                    "smsfly_sync has it): not counted above as sent.",
                    "%(count)d rows in progress elsewhere (another run, a task worker or "
                    "smsfly_sync has them): not counted above as sent.",
                    report.elsewhere,
                )
                % {"count": report.elsewhere}
            )
        self._campaign_lines(report)
        if report.deferred:
            say(_("Follow their progress with smsfly_sync or in the admin."))
            return
        if report.sent:
            say(_("Cost: %(cost)s") % {"cost": money(report.cost)})
        if report.queued:
            say(_("Queued messages are sent again by smsfly_sync when their time comes."))

    def _campaign_lines(self, report: MailingReport) -> None:
        """What a campaign's run adds: rows waiting for quiet hours to end, opted-out
        numbers and duplicate rows (none of them sent now)."""
        say = self.command.say
        if report.scheduled:
            say(
                ngettext(
                    "%(count)d row waits for the end of its quiet hours; smsfly_sync sends "
                    "it then.",
                    "%(count)d rows wait for the end of their quiet hours; smsfly_sync "
                    "sends them then.",
                    report.scheduled,
                )
                % {"count": report.scheduled}
            )
        if report.opted_out:
            say(
                ngettext(
                    "%(count)d row not sent: the number is on the opt-out list.",
                    "%(count)d rows not sent: their numbers are on the opt-out list.",
                    report.opted_out,
                )
                % {"count": report.opted_out}
            )
        if report.duplicate:
            say(
                ngettext(
                    "%(count)d row not sent: the number of an earlier row.",
                    "%(count)d rows not sent: the numbers of earlier rows.",
                    report.duplicate,
                )
                % {"count": report.duplicate}
            )

    def _dry_run_summary(self, report: MailingReport) -> None:
        say = self.command.say
        say(
            ngettext(
                "%(rows)d row checked: %(valid)d valid, %(errors)d invalid, %(skipped)d "
                "already sent (would be skipped).",
                "%(rows)d rows checked: %(valid)d valid, %(errors)d invalid, %(skipped)d "
                "already sent (would be skipped).",
                report.rows,
            )
            % {
                "rows": report.rows,
                "valid": report.checked,
                "errors": report.errors,
                "skipped": report.skipped,
            }
        )
        if report.encodings:
            by_encoding = ", ".join(
                f"{name} ×{count}" for name, count in sorted(report.encodings.items())
            )
            say(
                _("SMS parts: %(parts)d (%(encodings)s)")
                % {"parts": report.parts, "encodings": by_encoding}
            )
        if not report.checked:
            pass  # nothing would be sent: no cost to estimate
        elif report.price_error is not None:
            say(_("Estimated cost: unknown (%(error)s).") % {"error": report.price_error})
        else:
            say(_cost_line(report.first, report.most, len(report.channels)))
            if report.unpriced:
                say(
                    ngettext(
                        "No price is known for %(count)d message (line %(lines)s); it is "
                        "not counted.",
                        "No price is known for %(count)d messages (lines %(lines)s); they "
                        "are not counted.",
                        report.unpriced,
                    )
                    % {
                        "count": report.unpriced,
                        "lines": _line_list(report.unpriced_lines, report.unpriced),
                    }
                )
        say(_("Dry run: nothing was sent."))


#: The most line numbers a summary names; the rest are counted.
LINES_SHOWN = 10


def _line_list(lines: list[int], count: int) -> str:
    """``"3, 7, 9"``, or ``"3, 7, 9 and 41 more"`` when there are more than are shown."""
    shown = lines[:LINES_SHOWN]
    text = ", ".join(str(line) for line in shown)
    if count > len(shown):
        text += " " + _("and %(more)d more") % {"more": count - len(shown)}
    return text


def _row_details(result: RowResult) -> str:
    """Dry run: ``380500000100 · sms · 1 part, GSM-7, 5 characters · 0.479``."""
    parts = [result.recipient, _channel_names(result.channels)]
    if result.segments is not None:
        parts.append(_segments(result.segments))
    if result.estimate is not None and result.estimate.first is not None:
        parts.append(money(result.estimate.first))
    return " · ".join(parts)


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
