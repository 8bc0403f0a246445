"""The sandbox's account shared through a file (``state_file``): one story for every
process of a site (each test's simulators stand for processes: each has its own state)."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

from django_smsfly.backends.sandbox import Simulator

SEND = {
    "auth": {"key": "k"},
    "action": "SENDMESSAGE",
    "data": {
        "recipient": "380671234567",
        "channels": ["viber", "sms"],
        "viber": {"source": "Promo", "text": "Hi"},
        "sms": {"source": "InfoCenter", "text": "Hi"},
    },
}


def test_a_send_in_one_process_is_on_the_balance_another_reads(tmp_path: Path) -> None:
    ledger = tmp_path / "account.json"
    site, command = Simulator(state_file=ledger), Simulator(state_file=str(ledger))
    status, _reply = site.handle(SEND)
    assert status == 200
    assert command.balance == Decimal("999.522")  # the SMS fallback's price, reserved
    assert command.viber_balance == Decimal("499.250")


def test_a_refund_due_is_credited_whichever_process_reads_first(tmp_path: Path) -> None:
    ledger = tmp_path / "account.json"
    start = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.timezone.utc)
    site, sync = Simulator(state_file=ledger), Simulator(state_file=ledger)
    site.freeze(start)
    sync.freeze(start)
    site.handle(SEND)
    sync.advance(60)  # Viber delivered: the SMS fallback is refunded
    assert sync.balance == Decimal("1000.000")
    site.advance(60)
    assert site.balance == Decimal("1000.000")  # credited once, not twice


def test_without_a_state_file_each_process_has_its_own_account() -> None:
    site, command = Simulator(), Simulator()
    site.handle(SEND)
    assert command.balance == Decimal("1000.000")


def test_a_damaged_file_starts_again_from_the_configured_balance(tmp_path: Path) -> None:
    ledger = tmp_path / "account.json"
    ledger.write_text("{not json", encoding="utf-8")
    assert Simulator(state_file=ledger).balance == Decimal("1000.000")
    assert json.loads(ledger.read_text(encoding="utf-8"))["balance"] == "1000.000"


def test_a_new_configured_balance_refills_the_shared_account(tmp_path: Path) -> None:
    ledger = tmp_path / "account.json"
    Simulator(state_file=ledger).handle(SEND)
    assert Simulator(state_file=ledger).balance < Decimal("1000")
    assert Simulator(state_file=ledger, balance="50").balance == Decimal("50.000")


def test_reset_resets_the_shared_account(tmp_path: Path) -> None:
    ledger = tmp_path / "account.json"
    first = Simulator(state_file=ledger)
    first.handle(SEND)
    first.reset()
    assert Simulator(state_file=ledger).balance == Decimal("1000.000")
