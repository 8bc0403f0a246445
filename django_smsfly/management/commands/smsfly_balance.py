"""``manage.py smsfly_balance``: the account balance, for people and for monitoring."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from django_smsfly import services
from django_smsfly.management.commands._common import SmsFlyCommand

#: Exit status when a balance is below ``--warn-below``.
BELOW_THRESHOLD = 2


class Command(SmsFlyCommand):
    """Print the SMS-fly balance; optionally fail when it runs low."""

    help = gettext_noop(
        "Print the SMS-fly account balance (GETBALANCE), or the SMS and Viber balances "
        "with --ext. Exit status: 0 the balance is fine, 1 it could not be read (API or "
        "configuration error), 2 it is below --warn-below."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        """Options: --ext, --json, --warn-below."""
        parser.add_argument(
            "--ext",
            action="store_true",
            help=_("Show the SMS and Viber balances separately (GETBALANCEEXT)."),
        )
        parser.add_argument(
            "--json",
            action="store_true",
            help=_(
                'Print JSON: {"balance": "91.477"}, or {"sms": "...", "viber": "..."} with '
                "--ext. Amounts are strings, to keep every digit."
            ),
        )
        parser.add_argument(
            "--warn-below",
            metavar="AMOUNT",
            help=_(
                "Exit with status 2 and a warning on stderr if the balance (with --ext: "
                "either balance) is below AMOUNT."
            ),
        )

    def handle(self, *args: Any, **options: Any) -> None:
        """Read the balance(s), print them and compare them with the threshold."""
        threshold = _amount(options["warn_below"]) if options["warn_below"] is not None else None
        balances: dict[str, Decimal]
        if options["ext"]:
            balances = services.get_balances()
            labels = {"sms": _("SMS"), "viber": _("Viber")}
        else:
            balances = {"balance": services.get_balance()}
            labels = {"balance": _("Balance")}
        if options["json"]:
            self.write_json(balances)
        else:
            for name, amount in balances.items():
                self.say(f"{labels[name]}: {amount}")
        if threshold is None:
            return
        low = [name for name, amount in balances.items() if amount < threshold]
        if low:
            named = options["ext"]  # with one balance, its name adds nothing
            details = ", ".join(
                f"{labels[name]} {balances[name]}" if named else str(balances[name])
                for name in low
            )
            # A warning for monitoring, not a failure of the command: the balance was
            # read and printed. Its own exit status tells the two apart.
            self.warn(
                _("Warning: low balance: %(details)s, below %(threshold)s.")
                % {"threshold": threshold, "details": details}
            )
            raise SystemExit(BELOW_THRESHOLD)


def _amount(value: object) -> Decimal:
    try:
        amount = Decimal(str(value).strip().replace(",", "."))
    except InvalidOperation:
        amount = Decimal("NaN")
    if not amount.is_finite() or amount < 0:
        raise CommandError(
            _("--warn-below: %(value)r is not an amount of 0 or more (for example 100 or 12.50).")
            % {"value": value}
        )
    return amount
