"""A mailing run told in words: a line for each row worth telling, and the summary.

Pure text: the functions take a row's result or the run's report and return lines;
they write nothing. ``smsfly_send --csv`` writes them (a row's problem on stderr, the
rest by verbosity, see :class:`RowLine`), and ``smsfly_send --to --dry-run`` describes
its one message with the same words (:func:`channel_names`, :func:`segments_text`,
:func:`cost_line`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from django_smsfly.channels import Channel
from django_smsfly.mailing.report import MailingReport, Outcome, RowResult
from django_smsfly.segments import Segments

#: The most line numbers a summary names; the rest are counted.
LINES_SHOWN = 10


@dataclass(frozen=True)
class RowLine:
    """The line told for one row, and who gets to see it."""

    text: str
    #: The least verbosity that shows it (a problem is shown at every verbosity).
    level: int = 1
    #: The row could not be sent: the line goes to stderr, whatever the verbosity.
    problem: bool = False


def row_line(result: RowResult) -> RowLine | None:
    """The line for one row: problems always, the rows another run has in hand at
    verbosity 1, every other row worth a word at verbosity 2; ``None`` for the rest."""
    line = {"line": result.line}
    message = result.message
    if result.is_problem:
        return RowLine(
            _("Line %(line)d: %(problem)s") % {**line, "problem": result.detail}, problem=True
        )
    if result.outcome is Outcome.ELSEWHERE and message is not None:
        return RowLine(
            _("Line %(line)d: in progress elsewhere: %(recipient)s, message %(pk)d (%(state)s).")
            % {
                **line,
                "recipient": message.recipient,
                "pk": message.pk,
                "state": message.get_state_display(),
            }
        )
    if result.outcome is Outcome.SENT and message is not None:
        text = _("Line %(line)d: %(recipient)s accepted as message %(pk)d.") % {
            **line,
            "recipient": message.recipient,
            "pk": message.pk,
        }
    elif result.outcome is Outcome.QUEUED:
        text = _("Line %(line)d: queued for a retry: %(problem)s") % {
            **line,
            "problem": result.detail,
        }
    elif result.outcome is Outcome.SKIPPED and message is not None:
        text = _("Line %(line)d: already sent as message %(pk)d (%(state)s); skipped.") % {
            **line,
            "pk": message.pk,
            "state": message.get_state_display(),
        }
    elif result.outcome is Outcome.CHECKED:
        text = _("Line %(line)d: %(details)s") % {**line, "details": row_details(result)}
    else:
        return None
    return RowLine(text, level=2)


def summary_lines(report: MailingReport) -> list[str]:
    """The lines that end a run: what became of its rows, what it cost or would cost."""
    if report.dry_run:
        return _dry_run_lines(report)
    lines = [_counts_line(report)]
    if report.elsewhere:
        lines.append(
            ngettext(
                "%(count)d row in progress elsewhere (another run, a task worker or "
                "smsfly_sync has it): not counted above as sent.",
                "%(count)d rows in progress elsewhere (another run, a task worker or "
                "smsfly_sync has them): not counted above as sent.",
                report.elsewhere,
            )
            % {"count": report.elsewhere}
        )
    lines += _campaign_lines(report)
    if report.deferred:
        lines.append(_("Follow their progress with smsfly_sync or in the admin."))
        return lines
    if report.sent:
        lines.append(_("Cost: %(cost)s") % {"cost": money(report.cost)})
    if report.queued:
        lines.append(_("Queued messages are sent again by smsfly_sync when their time comes."))
    return lines


def _counts_line(report: MailingReport) -> str:
    counts = {
        "rows": report.rows,
        "sent": report.sent,
        "skipped": report.skipped,
        "queued": report.queued,
        "errors": report.errors,
        "enqueued": report.enqueued,
    }
    if report.deferred:
        return (
            ngettext(
                "%(rows)d row: %(enqueued)d handed to the task workers, %(skipped)d "
                "skipped as already sent, %(errors)d invalid.",
                "%(rows)d rows: %(enqueued)d handed to the task workers, %(skipped)d "
                "skipped as already sent, %(errors)d invalid.",
                report.rows,
            )
            % counts
        )
    return (
        ngettext(
            "%(rows)d row: %(sent)d sent, %(skipped)d skipped as already sent, "
            "%(queued)d queued for a retry, %(errors)d failed.",
            "%(rows)d rows: %(sent)d sent, %(skipped)d skipped as already sent, "
            "%(queued)d queued for a retry, %(errors)d failed.",
            report.rows,
        )
        % counts
    )


def _campaign_lines(report: MailingReport) -> list[str]:
    """What a campaign's run adds: rows waiting for quiet hours to end, opted-out
    numbers and duplicate rows (none of them sent now)."""
    lines: list[str] = []
    if report.scheduled:
        lines.append(
            ngettext(
                "%(count)d row waits for the end of its quiet hours; smsfly_sync sends it then.",
                "%(count)d rows wait for the end of their quiet hours; smsfly_sync "
                "sends them then.",
                report.scheduled,
            )
            % {"count": report.scheduled}
        )
    if report.opted_out:
        lines.append(
            ngettext(
                "%(count)d row not sent: the number is on the opt-out list.",
                "%(count)d rows not sent: their numbers are on the opt-out list.",
                report.opted_out,
            )
            % {"count": report.opted_out}
        )
    if report.duplicate:
        lines.append(
            ngettext(
                "%(count)d row not sent: the number of an earlier row.",
                "%(count)d rows not sent: the numbers of earlier rows.",
                report.duplicate,
            )
            % {"count": report.duplicate}
        )
    return lines


def _dry_run_lines(report: MailingReport) -> list[str]:
    lines = [
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
    ]
    if report.encodings:
        by_encoding = ", ".join(
            f"{name} ×{count}" for name, count in sorted(report.encodings.items())
        )
        lines.append(
            _("SMS parts: %(parts)d (%(encodings)s)")
            % {"parts": report.parts, "encodings": by_encoding}
        )
    if not report.checked:
        pass  # nothing would be sent: no cost to estimate
    elif report.price_error is not None:
        lines.append(_("Estimated cost: unknown (%(error)s).") % {"error": report.price_error})
    else:
        lines.append(cost_line(report.first, report.most, len(report.channels)))
        if report.unpriced:
            lines.append(
                ngettext(
                    "No price is known for %(count)d message (line %(lines)s); it is not counted.",
                    "No price is known for %(count)d messages (lines %(lines)s); they "
                    "are not counted.",
                    report.unpriced,
                )
                % {
                    "count": report.unpriced,
                    "lines": line_list(report.unpriced_lines, report.unpriced),
                }
            )
    lines.append(_("Dry run: nothing was sent."))
    return lines


def line_list(lines: Sequence[int], count: int) -> str:
    """``"3, 7, 9"``, or ``"3, 7, 9 and 41 more"`` when there are more than are shown."""
    shown = lines[:LINES_SHOWN]
    text = ", ".join(str(line) for line in shown)
    if count > len(shown):
        text += " " + _("and %(more)d more") % {"more": count - len(shown)}
    return text


def row_details(result: RowResult) -> str:
    """Dry run: ``380500000100 · sms · 1 part, GSM-7, 5 characters · 0.479``."""
    parts = [result.recipient, channel_names(result.channels)]
    if result.segments is not None:
        parts.append(segments_text(result.segments))
    if result.estimate is not None and result.estimate.first is not None:
        parts.append(money(result.estimate.first))
    return " · ".join(parts)


def channel_names(channels: Sequence[Channel]) -> str:
    """``"viber, sms"``: the channels in fallback order, as the options name them."""
    return ", ".join(c.value for c in channels)


def segments_text(segments: Segments) -> str:
    """``"2 parts, UCS-2, 75 characters"``: how an SMS text is sent and billed."""
    return ngettext(
        "%(parts)d part, %(encoding)s, %(length)d characters",
        "%(parts)d parts, %(encoding)s, %(length)d characters",
        segments.parts,
    ) % {"parts": segments.parts, "encoding": segments.encoding, "length": segments.length}


def cost_line(first: Decimal | None, most: Decimal | None, channels: int) -> str:
    """The estimated cost; with a fallback channel, both what the first channel costs
    when it delivers and the most the message can cost."""
    if first is None:
        return _("Estimated cost: unknown (no price for this number's network).")
    if channels > 1:
        return _("Estimated cost: %(first)s if the first channel delivers, at most %(most)s.") % {
            "first": money(first),
            "most": money(most),
        }
    return _("Estimated cost: %(cost)s.") % {"cost": money(first)}


def money(value: Decimal | None) -> str:
    """A stored amount without the trailing zeros of its column (``0.4790`` -> ``0.479``)."""
    if value is None:
        return "—"
    return format(value.normalize(), "f")
