"""``manage.py smsfly_cleanup``: delete the records of old, finished messages, and old
one-time codes."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.management.base import CommandParser
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop, ngettext

from django_smsfly import services, verification
from django_smsfly.management.commands._common import SmsFlyCommand, positive_int


class Command(SmsFlyCommand):
    """Delete messages older than a number of days whose story is over, and old
    verifications (one-time codes and refused requests for them)."""

    help = gettext_noop(
        "Delete messages created more than --older-than days ago, with their channel "
        "statuses and history. Messages still queued, being sent or waiting for a final "
        "status are kept whatever their age. One-time codes and refused requests for "
        "them go after --verifications-older-than days (by default --older-than)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        """Options: --older-than, --verifications-older-than, --dry-run."""
        parser.add_argument(
            "--older-than",
            type=positive_int,
            required=True,
            metavar="DAYS",
            help=_("Delete messages created more than DAYS days ago."),
        )
        parser.add_argument(
            "--verifications-older-than",
            type=positive_int,
            metavar="DAYS",
            help=_(
                "Delete one-time codes and refused requests for them created more than "
                "DAYS days ago (default: --older-than). The fraud guard page shows the "
                "last 30 days."
            ),
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help=_("Only count the messages that would be deleted."),
        )

    def handle(self, *args: Any, **options: Any) -> None:
        """Count or delete, and say how many."""
        older_than = dt.timedelta(days=options["older_than"])
        codes_days = options["verifications_older_than"]
        codes_older_than = dt.timedelta(days=codes_days) if codes_days else older_than
        dry_run = options["dry_run"]
        # A dry run goes the same way as the real one, counting where it would delete.
        if dry_run:
            messages, codes_of = services.count_old_messages, verification.count_old_verifications
        else:
            messages, codes_of = (
                services.delete_old_messages,
                verification.delete_old_verifications,
            )
        count = messages(older_than)
        self.say(_messages_line(count, dry_run=dry_run))
        codes = codes_of(codes_older_than)
        # A site that sends no codes sees the report it always had.
        if codes or codes_days:
            self.say(_verifications_line(codes, dry_run=dry_run))


def _messages_line(count: int, *, dry_run: bool) -> str:
    if dry_run:
        return ngettext(
            "%(count)d message would be deleted.", "%(count)d messages would be deleted.", count
        ) % {"count": count}
    return ngettext("%(count)d message deleted.", "%(count)d messages deleted.", count) % {
        "count": count
    }


def _verifications_line(count: int, *, dry_run: bool) -> str:
    if dry_run:
        return ngettext(
            "%(count)d verification would be deleted.",
            "%(count)d verifications would be deleted.",
            count,
        ) % {"count": count}
    return ngettext(
        "%(count)d verification deleted.", "%(count)d verifications deleted.", count
    ) % {"count": count}
