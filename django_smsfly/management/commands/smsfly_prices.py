"""``manage.py smsfly_prices``: what a message costs, per channel and network."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from django_smsfly import services
from django_smsfly.management.commands._common import (
    SmsFlyCommand,
    add_channel_option,
    chosen_channels,
)
from django_smsfly.pricing import network_name


class Command(SmsFlyCommand):
    """Print SMS-fly's price list of a country, or the prices of one network."""

    help = gettext_noop(
        "Print SMS-fly's prices per channel and mobile network: the price list of a "
        "country (GETPRICELIST), or of one network with --mnc (GETPRICE). SMS prices are "
        "per part. Always asked afresh (estimates use a cached copy). Exit status 1 if "
        "SMS-fly cannot be asked."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        """Options: --mcc, --mnc, --channel, --json."""
        parser.add_argument(
            "--mcc",
            default="255",
            help=_("Mobile country code (default 255, Ukraine; 260 is Poland)."),
        )
        parser.add_argument(
            "--mnc", help=_("Mobile network code: only this network (for example 01).")
        )
        add_channel_option(parser)
        parser.add_argument(
            "--json",
            action="store_true",
            help=_(
                'Print JSON: a list of {"channel", "mcc", "mnc", "network", "price"}; '
                "prices are strings, to keep every digit."
            ),
        )

    def handle(self, *args: Any, **options: Any) -> None:
        """Ask SMS-fly and print the prices as a table or JSON."""
        channels = chosen_channels(options)
        client = services.get_client()
        if options["mnc"] is not None:
            prices = client.get_price(options["mcc"], options["mnc"], channels)
        else:
            prices = client.get_price_list(options["mcc"], channels)
        rows = sorted(prices, key=lambda p: (p.channel.value, p.mcc, p.mnc))
        if options["json"]:
            self.write_json(
                [
                    {
                        "channel": p.channel.value,
                        "mcc": p.mcc,
                        "mnc": p.mnc,
                        "network": network_name(p.mcc, p.mnc),
                        "price": p.price,
                    }
                    for p in rows
                ]
            )
            return
        if not rows:
            self.say(_("No prices listed for mcc %(mcc)s.") % {"mcc": options["mcc"]})
            return
        table = [[_("Channel"), _("MCC"), _("MNC"), _("Network"), _("Price")]]
        table += [
            [p.channel.value, p.mcc, p.mnc, network_name(p.mcc, p.mnc) or "?", str(p.price)]
            for p in rows
        ]
        widths = [max(len(row[i]) for row in table) for i in range(5)]
        for row in table:
            # Prices right-aligned so their decimal points line up.
            cells = [cell.ljust(width) for cell, width in zip(row[:4], widths, strict=False)]
            self.say("  ".join([*cells, row[4].rjust(widths[4])]))
