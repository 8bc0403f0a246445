"""``manage.py smsfly_sources``: the sender names the account may use."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from django_smsfly import services
from django_smsfly.channels import Channel
from django_smsfly.management.commands._common import (
    SmsFlyCommand,
    add_channel_option,
    chosen_channels,
)


class Command(SmsFlyCommand):
    """List the account's sender names per channel (GETSOURCES)."""

    help = gettext_noop(
        "List the sender names (alpha names) the SMS-fly account may use, per channel "
        "(GETSOURCES). Exit status 1 if SMS-fly cannot be asked."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        """Options: --channel, --json."""
        add_channel_option(parser)
        parser.add_argument(
            "--json",
            action="store_true",
            help=_('Print JSON: {"sms": ["InfoCenter", ...], "viber": [...]}.'),
        )

    def handle(self, *args: Any, **options: Any) -> None:
        """Ask SMS-fly and print the names."""
        channels = chosen_channels(options)
        sources = services.get_client().get_sources(channels)
        names = {channel.value: list(sources.for_channel(channel)) for channel in channels}
        if options["json"]:
            self.write_json(names)
            return
        labels = {Channel.SMS.value: _("SMS"), Channel.VIBER.value: _("Viber")}
        for channel, channel_names in names.items():
            self.say(f"{labels[channel]}:")
            for name in channel_names:
                self.say(f"  {name}")
            if not channel_names:
                self.say("  " + _("(none)"))
