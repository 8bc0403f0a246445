"""``manage.py smsfly_send``: send one message, or one per row of a CSV file.

The command reads its options and writes what happened; the work is the service
layer's: :func:`django_smsfly.services.send_message` for one message, and
:func:`django_smsfly.mailing.run_csv` for a CSV run (streamed, paced, resumable), whose
report becomes the lines and the exit status here.
"""

from __future__ import annotations

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
from django_smsfly.mailing import MailingContent, MailingReport
from django_smsfly.mailing.summary import channel_names, cost_line, money, segments_text
from django_smsfly.management.commands._common import (
    INTERRUPTED,
    RunOutput,
    SmsFlyCommand,
    non_negative_float,
    positive_int,
)
from django_smsfly.models import Message, MessageTemplate
from django_smsfly.segments import count_segments
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
        self.say(_("Channels: %(channels)s") % {"channels": channel_names(prepared.channels)})
        sms_block = prepared.data.get(Channel.SMS.value)
        if sms_block:
            self.say(
                _("SMS: %(segments)s")
                % {"segments": segments_text(count_segments(sms_block["text"]))}
            )
        try:
            estimate = services.estimate_cost(recipient, channels=channels, sms=sms, viber=viber)
        except SmsFlyValidationError:
            raise  # the input is wrong: an error, not a cost we could not learn
        except SmsFlyError as exc:
            self.say(_("Estimated cost: unknown (%(error)s).") % {"error": exc})
        else:
            self.say(cost_line(estimate.first, estimate.most, len(channels)))

    # -- a CSV file ----------------------------------------------------------------------

    def _run_csv(self, content: MailingContent, options: dict[str, Any]) -> None:
        """Run the file through :func:`~django_smsfly.mailing.run_csv`; tell how it went."""
        output = RunOutput(self)
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
    content: MailingContent, options: dict[str, Any], output: RunOutput
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
