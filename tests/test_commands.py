"""Management commands: what they print, their exit statuses, and what they send."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import re
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import OperationalError, connection
from django.test import override_settings
from django.utils import timezone

from django_smsfly import services
from django_smsfly.backends.sandbox import TEST_NUMBERS, Fault, Outcome, Simulator, get_simulator
from django_smsfly.backends.sandbox_server import SandboxServer
from django_smsfly.management.commands import smsfly_sync
from django_smsfly.models import Message
from django_smsfly.ratelimit import RateLimiter, reset_rate_limiters
from tests.workers import run_together

pytestmark = pytest.mark.frozen_sandbox

SANDBOX = "django_smsfly.backends.sandbox.SandboxBackend"
ROOT = Path(__file__).resolve().parent.parent


class Terminal(io.StringIO):
    """A captured stream that says it is a terminal, as a console would."""

    def isatty(self) -> bool:
        return True


def run(name: str, *args: str, stdout: io.StringIO | None = None) -> tuple[str, str]:
    """Run a command; its stdout and stderr."""
    out = stdout if stdout is not None else io.StringIO()
    err = io.StringIO()
    call_command(name, *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def fails(name: str, *args: str, returncode: int = 1) -> str:
    """Run a command that must fail with ``returncode``; the error's text."""
    with pytest.raises(CommandError) as caught:
        run(name, *args)
    assert caught.value.returncode == returncode, str(caught.value)
    return str(caught.value)


def sends() -> int:
    return len(get_simulator().requests_for("SENDMESSAGE"))


# -- smsfly_balance -----------------------------------------------------------------------


def test_balance_is_printed() -> None:
    out, _ = run("smsfly_balance")
    assert out == "Balance: 1000.000\n"


def test_balance_ext_prints_sms_and_viber() -> None:
    out, _ = run("smsfly_balance", "--ext")
    assert out.splitlines() == ["SMS: 1000.000", "Viber: 500.000"]


def test_balance_json_keeps_every_digit_as_strings() -> None:
    get_simulator().balance = "91.477"
    assert json.loads(run("smsfly_balance", "--json")[0]) == {"balance": "91.477"}
    ext = json.loads(run("smsfly_balance", "--ext", "--json")[0])
    assert ext == {"sms": "91.477", "viber": "500.000"}


def low_balance(*args: str) -> tuple[str, str]:
    """Run ``smsfly_balance`` expecting the low-balance exit status 2: (stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(SystemExit) as caught:
        call_command("smsfly_balance", *args, stdout=out, stderr=err)
    assert caught.value.code == 2
    return out.getvalue(), err.getvalue()


def test_balance_below_the_threshold_is_a_warning_with_exit_status_2() -> None:
    get_simulator().balance = "5.5"
    out, err = low_balance("--warn-below", "10")
    assert out == "Balance: 5.500\n"
    assert err == "Warning: low balance: 5.500, below 10.\n"


def test_a_low_balance_is_not_printed_as_a_command_error(tmp_path: Path) -> None:
    """Issue 13: the warning came out as "CommandError: Low balance..."."""
    # The child process has a sandbox of its own, with 1000.000 on it.
    done = subprocess.run(
        [sys.executable, "-m", "django", "smsfly_balance", "--warn-below", "5000"],
        capture_output=True,
        text=True,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 2
    assert "CommandError" not in done.stderr
    assert "Warning: low balance" in done.stderr


def test_a_negative_threshold_is_refused() -> None:
    error = fails("smsfly_balance", "--warn-below", "-5")
    assert "'-5' is not an amount of 0 or more" in error
    assert not get_simulator().requests_for("GETBALANCE")


def test_balance_above_the_threshold_exits_with_0() -> None:
    out, err = run("smsfly_balance", "--warn-below", "10")
    assert out == "Balance: 1000.000\n"
    assert err == ""


def test_balance_ext_warns_when_either_balance_is_low() -> None:
    get_simulator().viber_balance = "1"
    _out, err = low_balance("--ext", "--warn-below", "50")
    assert "Viber 1" in err
    assert "SMS" not in err


def test_balance_refuses_a_threshold_that_is_not_an_amount() -> None:
    error = fails("smsfly_balance", "--warn-below", "abc")
    assert "'abc' is not an amount" in error
    assert not get_simulator().requests_for("GETBALANCE")


def test_an_api_failure_is_a_readable_error_with_status_1() -> None:
    get_simulator().inject(Fault.SERVER_ERROR, times=10)
    error = fails("smsfly_balance")
    assert "SMS-fly request failed" in error
    assert "HTTP_500" in error


def test_a_configuration_error_is_a_readable_error() -> None:
    with override_settings(SMSFLY={"BACKEND": "django_smsfly.backends.http.HTTPBackend"}):
        error = fails("smsfly_balance")
    assert error.startswith("Configuration error:")
    assert "API_KEY" in error


def test_a_refused_key_is_reported_without_the_key() -> None:
    secret = "wrong-key-0123456789abcdef0123456789"
    settings = {"BACKEND": SANDBOX, "API_KEY": secret, "BACKEND_OPTIONS": {"api_key": "right"}}
    with override_settings(SMSFLY=settings):
        error = fails("smsfly_balance")
    assert "FORBIDDEN" in error
    assert secret not in error


# -- smsfly_sources and smsfly_prices ------------------------------------------------------


def test_sources_are_listed_per_channel() -> None:
    out, _ = run("smsfly_sources")
    assert out.splitlines() == [
        "SMS:",
        "  InfoCenter",
        "  SMS-fly",
        "Viber:",
        "  Promo",
        "  SMS-fly",
    ]


def test_sources_of_one_channel_as_json() -> None:
    out, _ = run("smsfly_sources", "--channel", "viber", "--json")
    assert json.loads(out) == {"viber": ["Promo", "SMS-fly"]}


def test_prices_are_a_table() -> None:
    out, _ = run("smsfly_prices", "--channel", "sms")
    lines = out.splitlines()
    assert lines[0].split() == ["Channel", "MCC", "MNC", "Network", "Price"]
    assert lines[1].split() == ["sms", "255", "01", "Vodafone", "Ukraine", "0.479"]
    assert lines[2].split()[2:4] == ["03", "Kyivstar"]
    assert len(lines) == 6


def test_prices_of_one_network_as_json() -> None:
    out, _ = run("smsfly_prices", "--mnc", "03", "--json")
    assert json.loads(out) == [
        {"channel": "sms", "mcc": "255", "mnc": "03", "network": "Kyivstar", "price": "0.478"},
        {
            "channel": "viber",
            "mcc": "255",
            "mnc": "03",
            "network": "Kyivstar",
            "price": "0.750",
        },
    ]
    assert get_simulator().requests_for("GETPRICE")


def test_prices_of_a_country_without_a_route() -> None:
    out, _ = run("smsfly_prices", "--mcc", "310")
    assert out == "No prices listed for mcc 310.\n"


def test_prices_refuse_a_bad_country_code() -> None:
    assert "mcc" in fails("smsfly_prices", "--mcc", "ua")


# -- smsfly_cleanup ------------------------------------------------------------------------


@pytest.mark.django_db
def test_cleanup_deletes_old_finished_messages_only() -> None:
    old = timezone.now() - dt.timedelta(days=40)
    finished = services.send_sms("380501234567", "done")
    pending = services.send_sms("380501234568", "still polled")
    recent = services.send_sms("380501234569", "recent")
    Message.objects.filter(pk__in=[finished.pk, recent.pk]).update(next_check_at=None)
    Message.objects.exclude(pk=recent.pk).update(created_at=old)

    out, _ = run("smsfly_cleanup", "--older-than", "30", "--dry-run")
    assert out == "1 message would be deleted.\n"
    assert Message.objects.count() == 3

    out, _ = run("smsfly_cleanup", "--older-than", "30")
    assert out == "1 message deleted.\n"
    assert set(Message.objects.values_list("pk", flat=True)) == {pending.pk, recent.pk}


@pytest.mark.django_db
@pytest.mark.parametrize("days", ["0", "-3", "soon"])
def test_cleanup_needs_a_positive_number_of_days(days: str) -> None:
    assert "--older-than" in fails("smsfly_cleanup", "--older-than", days)


# -- smsfly_send: one message --------------------------------------------------------------


@pytest.mark.django_db
def test_send_an_sms() -> None:
    out, _ = run("smsfly_send", "--to", "050 123 4567", "--text", "Hello")
    message = Message.objects.get()
    assert message.state == Message.State.ACCEPTED
    assert message.channels == "sms"
    assert out.splitlines() == [
        f"Message {message.pk}: accepted by SMS-fly.",
        f"  SMS-fly message id: {message.message_id}",
        "  Status: accepted",
        "  Cost: 0.479",
    ]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "channels"),
    [
        (["--viber-text", "Hi"], "viber"),
        (["--viber-text", "Hi", "--text", "Hi"], "viber,sms"),
        (["--viber-text", "Hi", "--text", "Hi", "--channels", "sms,viber"], "sms,viber"),
        (["--image", "https://example.com/a.png"], "viber"),
    ],
)
def test_send_chooses_channels_by_the_content_given(args: list[str], channels: str) -> None:
    run("smsfly_send", "--to", "380501234567", *args)
    assert Message.objects.get().channels == channels


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--to", "123", "--text", "Hi"], "recipient: '123' is not a valid phone number"),
        (["--to", "380501234567"], "Nothing to send"),
        (["--text", "Hi"], "Give either --to NUMBER or --csv FILE"),
        (["--to", "380501234567", "--text", "Hi", "--channels", "viber"], "viber channel needs"),
        (["--to", "380501234567", "--viber-text", "Hi", "--channels", "sms"], "sms channel needs"),
        (["--to", "380501234567", "--text", "Hi", "--channels", "fax"], "unknown channel 'fax'"),
        (["--to", "380501234567", "--text", "Hi", "--ttl", "2000"], "sms.ttl"),
        (["--to", "380501234567", "--text", "Hi", "--campaign", "x"], "only for --csv"),
    ],
)
def test_send_refuses_bad_input_before_sending(args: list[str], error: str) -> None:
    assert error in fails("smsfly_send", *args)
    assert sends() == 0
    assert not Message.objects.exists()


@pytest.mark.django_db
def test_send_refused_by_sms_fly_exits_with_1() -> None:
    error = fails("smsfly_send", "--to", TEST_NUMBERS[Outcome.REJECTED], "--text", "Hi")
    message = Message.objects.get()
    assert message.state == Message.State.FAILED
    assert f"Message {message.pk} failed" in error
    assert "INVRECIPIENT" in error


@pytest.mark.django_db
def test_send_with_an_unknown_outcome_exits_with_1() -> None:
    get_simulator().inject(Fault.SERVER_ERROR, action="SENDMESSAGE")
    error = fails("smsfly_send", "--to", "380501234567", "--text", "Hi")
    assert "outcome is unknown" in error
    assert "smsfly_sync --message" in error


@pytest.mark.django_db
def test_send_queued_for_a_retry_exits_with_0_and_says_so() -> None:
    get_simulator().inject(Fault.RATE_LIMITED, action="SENDMESSAGE")
    out, _ = run("smsfly_send", "--to", "380501234567", "--text", "Hi")
    message = Message.objects.get()
    assert message.state == Message.State.QUEUED
    assert f"Message {message.pk} is queued" in out
    assert "smsfly_sync sends it again" in out


@pytest.mark.django_db
def test_send_with_a_used_idempotency_key_sends_nothing() -> None:
    args = ("--to", "380501234567", "--text", "Hi", "--idempotency-key", "order-7")
    run("smsfly_send", *args)
    out, _ = run("smsfly_send", *args)
    message = Message.objects.get()
    assert f"used before, by message {message.pk}: nothing was sent" in out
    assert sends() == 1


@pytest.mark.django_db
def test_send_dry_run_shows_segments_encoding_and_cost() -> None:
    text = "Привіт! " * 10  # Cyrillic: UCS-2, 80 characters, two parts
    out, _ = run(
        "smsfly_send",
        *("--to", "+380 (67) 123-45-67", "--text", text, "--viber-text", "Hi", "--dry-run"),
    )
    assert out.splitlines() == [
        "Recipient: 380671234567",
        "Channels: viber, sms",
        "SMS: 2 parts, UCS-2, 80 characters",
        "Estimated cost: 0.75 if the first channel delivers, at most 1.706.",
        "Dry run: nothing was sent.",
    ]
    assert sends() == 0
    assert not Message.objects.exists()


@pytest.mark.django_db
def test_send_prints_nothing_at_verbosity_0() -> None:
    out, err = run("smsfly_send", "--to", "380501234567", "--text", "Hi", "-v", "0")
    assert (out, err) == ("", "")
    assert sends() == 1


# -- smsfly_send: a CSV file ---------------------------------------------------------------


def write_csv(
    path: Path, rows: list[list[str]], header: tuple[str, ...] = ("recipient", "name")
) -> str:
    lines = [",".join(header), *(",".join(row) for row in rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def people(count: int = 20) -> list[list[str]]:
    return [[f"38050{i:07d}", f"Person {i}"] for i in range(100, 100 + count)]


def send_csv(path: str, *args: str) -> tuple[str, str]:
    return run("smsfly_send", "--csv", path, "--text", "Hi {name}", "--rate", "0", *args)


@pytest.mark.django_db
def test_csv_sends_one_message_per_row_from_the_template(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "list.csv", people())
    out, err = send_csv(path)
    assert sends() == 20
    assert Message.objects.filter(state=Message.State.ACCEPTED).count() == 20
    first = get_simulator().messages[0]
    assert first.recipient == "380500000100"
    assert first.sms == {"source": "InfoCenter", "text": "Hi Person 100"}
    assert "20 rows: 20 sent, 0 skipped as already sent, 0 queued for a retry, 0 failed." in out
    assert "Cost: 9.58" in out
    assert err == ""


@pytest.mark.django_db
def test_csv_takes_texts_from_columns_as_written(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "list.csv",
        [["380501234567", "Sale {today}", "See {it}"]],
        header=("Recipient", "Text", "viber_text"),
    )
    run("smsfly_send", "--csv", path, "--rate", "0")
    sent = get_simulator().messages[0]
    assert sent.channels == ("viber", "sms")
    assert sent.sms is not None
    assert sent.sms["text"] == "Sale {today}"


@pytest.mark.django_db
def test_csv_reports_an_invalid_row_skips_it_and_exits_with_1(tmp_path: Path) -> None:
    rows = people(5)
    rows[2] = ["12345", "Nobody"]
    path = write_csv(tmp_path / "list.csv", rows)
    with pytest.raises(CommandError) as caught:
        run("smsfly_send", "--csv", path, "--text", "Hi {name}", "--rate", "0")
    assert "1 row could not be sent" in str(caught.value)
    assert sends() == 4
    assert Message.objects.count() == 4


@pytest.mark.django_db
def test_csv_invalid_rows_are_named_by_line_on_stderr(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "list.csv", [["380501234567", "A"], ["12345", "B", "extra"]])
    err = io.StringIO()
    with pytest.raises(CommandError):
        call_command(
            "smsfly_send", "--csv", path, "--text", "Hi", "--rate", "0",
            stdout=io.StringIO(), stderr=err,
        )  # fmt: skip
    assert err.getvalue() == "Line 3: 3 fields, but the header has 2\n"


@pytest.mark.django_db
def test_csv_run_again_sends_nothing_twice(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "list.csv", people())
    send_csv(path)
    out, _ = send_csv(path)
    assert sends() == 20
    assert "20 rows: 0 sent, 20 skipped as already sent" in out


@pytest.mark.django_db
def test_csv_resumes_after_a_partial_run(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "list.csv", people())
    out, _ = send_csv(path, "--limit", "8")
    assert "8 rows: 8 sent" in out
    out, _ = send_csv(path)
    assert "20 rows: 12 sent, 8 skipped as already sent" in out
    assert sends() == 20
    assert Message.objects.count() == 20


def interrupt_call(monkeypatch: pytest.MonkeyPatch, name: str, at: int) -> Callable[[], None]:
    """Make the ``at``-th call of ``services.<name>`` a Ctrl-C; returns the undo."""
    real = getattr(services, name)
    calls = 0

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == at:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(services, name, interrupted)
    return monkeypatch.undo


@pytest.mark.django_db
def test_csv_resumes_after_an_interruption(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_csv(tmp_path / "list.csv", people())
    undo = interrupt_call(monkeypatch, "queue_message", at=7)
    with pytest.raises(CommandError) as caught:
        send_csv(path)
    assert caught.value.returncode == 130
    assert "Interrupted at line 8" in str(caught.value)
    assert sends() == 6
    undo()

    send_csv(path)
    assert sends() == 20
    assert sorted(m.recipient for m in get_simulator().messages) == [p[0] for p in people()]


@pytest.mark.django_db
def test_csv_row_left_waiting_for_its_send_slot_is_sent_after_the_queued_grace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_csv(tmp_path / "list.csv", people())
    undo = interrupt_call(monkeypatch, "dispatch", at=7)
    with pytest.raises(CommandError) as caught:
        send_csv(path)
    assert caught.value.returncode == 130
    undo()
    [left] = Message.objects.filter(state=Message.State.QUEUED)
    assert left.metadata["line"] == 8

    # At once, the row is its run's (it might still be waiting for a slot): not sent.
    out, err = send_csv(path)
    assert "20 rows: 13 sent, 6 skipped as already sent, 0 queued for a retry, 0 failed." in out
    assert f"Line 8: in progress elsewhere: {left.recipient}, message {left.pk} (queued)." in out
    assert "1 row in progress elsewhere" in out
    assert err == ""
    assert sends() == 19

    # After QUEUED_GRACE it was left behind: the next run sends it (as smsfly_sync would).
    Message.objects.filter(pk=left.pk).update(created_at=timezone.now() - dt.timedelta(seconds=61))
    out, _ = send_csv(path)
    assert "20 rows: 1 sent, 19 skipped as already sent" in out
    assert sorted(m.recipient for m in get_simulator().messages) == [p[0] for p in people()]


@pytest.mark.django_db
def test_csv_with_a_new_campaign_sends_the_file_again(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "list.csv", people(3))
    send_csv(path, "--campaign", "may")
    send_csv(path, "--campaign", "june")
    assert sends() == 6
    assert Message.objects.filter(metadata__campaign="june").count() == 3


@pytest.mark.django_db
def test_csv_row_refused_earlier_is_tried_again(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "list.csv", [[TEST_NUMBERS[Outcome.REJECTED], "X"]])
    for _ in range(2):
        with pytest.raises(CommandError):
            send_csv(path)
    assert len(get_simulator().requests_for("SENDMESSAGE")) == 2
    assert Message.objects.filter(state=Message.State.FAILED).count() == 2


@pytest.mark.django_db
def test_csv_stops_at_once_when_the_money_runs_out(tmp_path: Path) -> None:
    get_simulator().balance = "0.5"
    path = write_csv(tmp_path / "list.csv", people(5))
    with pytest.raises(CommandError) as caught:
        send_csv(path)
    assert "Stopped at line 3" in str(caught.value)
    assert "INSUFFICIENTFUNDS" in str(caught.value)
    assert sends() == 2


@pytest.mark.django_db
def test_csv_stops_when_sms_fly_keeps_failing(tmp_path: Path) -> None:
    get_simulator().inject(Fault.RATE_LIMITED, times=50, action="SENDMESSAGE")
    path = write_csv(tmp_path / "list.csv", people(10))
    with pytest.raises(CommandError) as caught:
        send_csv(path)
    assert "5 messages in a row were not accepted" in str(caught.value)
    assert Message.objects.filter(state=Message.State.QUEUED).count() == 5


@pytest.mark.django_db
def test_csv_rate_is_the_rate_of_the_one_send_limiter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--rate paces the sends once, not on top of SEND_RATE_LIMIT's own wait."""
    waits: list[float] = []

    def acquire(self: RateLimiter) -> float:
        waits.append(self.rate)
        return 0.0

    reset_rate_limiters()
    monkeypatch.setattr(RateLimiter, "acquire", acquire)
    path = write_csv(tmp_path / "list.csv", people(3))
    with override_settings(SMSFLY={**settings.SMSFLY, "SEND_RATE_LIMIT": 2}):
        out, _ = run("smsfly_send", "--csv", path, "--text", "Hi", "--rate", "20")
    reset_rate_limiters()
    assert "3 rows: 3 sent" in out
    assert waits == [20.0, 20.0, 20.0]


@pytest.mark.django_db
def test_csv_template_with_an_unknown_column_sends_nothing(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "list.csv", people(3))
    for template in ("Hi {surname}", "Hi {}", "Hi {name.__class__}", "Hi {name"):
        error = fails("smsfly_send", "--csv", path, "--text", template)
        assert "--text" in error
    assert sends() == 0


@pytest.mark.django_db
def test_csv_template_that_cannot_fill_a_row_names_the_row(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "list.csv", [["380501234567", "7"]])
    err = io.StringIO()
    with pytest.raises(CommandError):
        call_command(
            "smsfly_send", "--csv", path, "--text", "No {name:d}", "--rate", "0",
            stdout=io.StringIO(), stderr=err,
        )  # fmt: skip
    assert err.getvalue().startswith("Line 2: --text cannot be filled from this row")


@pytest.mark.django_db
def test_csv_needs_a_recipient_column(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "list.csv", [["380501234567"]], header=("phone",))
    assert "no 'recipient' column" in fails("smsfly_send", "--csv", path, "--text", "Hi")


@pytest.mark.django_db
def test_csv_that_is_missing_is_a_readable_error(tmp_path: Path) -> None:
    assert "Cannot read" in fails(
        "smsfly_send", "--csv", str(tmp_path / "nope.csv"), "--text", "Hi"
    )


@pytest.mark.django_db
def test_csv_in_another_encoding_needs_encoding(tmp_path: Path) -> None:
    path = tmp_path / "list.csv"
    path.write_bytes("recipient,name\n380501234567,Олена\n".encode("cp1251"))
    assert "--encoding" in fails("smsfly_send", "--csv", str(path), "--text", "Hi {name}")
    send_csv(str(path), "--encoding", "cp1251")
    assert get_simulator().messages[0].sms == {"source": "InfoCenter", "text": "Hi Олена"}


@pytest.mark.django_db
def test_csv_dry_run_checks_and_estimates_without_sending(tmp_path: Path) -> None:
    rows = [*people(3), ["12345", "Nobody"]]
    path = write_csv(tmp_path / "list.csv", rows)
    out = io.StringIO()
    with pytest.raises(CommandError):
        call_command(
            "smsfly_send", "--csv", path, "--text", "Привіт, {name}", "--dry-run", "-v", "2",
            stdout=out, stderr=io.StringIO(),
        )  # fmt: skip
    lines = out.getvalue().splitlines()
    assert lines[0] == "Line 2: 380500000100 · sms · 1 part, UCS-2, 18 characters · 0.479"
    assert lines[-4:] == [
        "4 rows checked: 3 valid, 1 invalid, 0 already sent (would be skipped).",
        "SMS parts: 3 (UCS-2 ×3)",
        "Estimated cost: 1.437.",
        "Dry run: nothing was sent.",
    ]
    assert sends() == 0
    assert not Message.objects.exists()


@pytest.mark.django_db
def test_csv_progress_is_drawn_in_place_on_a_terminal(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "list.csv", people(3))
    out = Terminal()
    run("smsfly_send", "--csv", path, "--text", "Hi", "--rate", "0", stdout=out)
    text = out.getvalue()
    assert text.startswith("\r\x1b[K  line 2 · sent 1 · skipped 0 · errors 0 · ")
    assert "line 4 · sent 3 · skipped 0 · errors 0 · " in text
    assert "/s\n3 rows: 3 sent" in text


# -- smsfly_sync ---------------------------------------------------------------------------


def make_due() -> None:
    Message.objects.exclude(next_check_at=None).update(
        next_check_at=timezone.now() - dt.timedelta(seconds=1)
    )


def sync(*args: str, stdout: io.StringIO | None = None) -> tuple[str, str]:
    return run("smsfly_sync", "--rate-limit", "0", *args, stdout=stdout)


@pytest.mark.django_db
def test_sync_moves_statuses_and_prints_the_report(sandbox: Simulator) -> None:
    for number in ("380501234567", TEST_NUMBERS[Outcome.UNDELIVERED], "380671234567"):
        services.send_sms(number, "Hi")
    sandbox.advance(10)
    make_due()
    out, err = sync()
    assert out == "checked 3, changed 3, final 3, errors 0\n"
    assert err == ""
    assert sorted(Message.objects.values_list("status", flat=True)) == [
        "delivered",
        "delivered",
        "undelivered",
    ]


@pytest.mark.django_db
def test_sync_checks_only_due_messages(sandbox: Simulator) -> None:
    services.send_sms("380501234567", "Hi")
    out, _ = sync()
    assert out == "checked 0, changed 0, final 0, errors 0\n"
    assert not sandbox.requests_for("GETMESSAGESTATUS")


@pytest.mark.django_db
@pytest.mark.parametrize("by", ["message_id", "pk"])
def test_sync_checks_a_given_message_due_or_not(sandbox: Simulator, by: str) -> None:
    message = services.send_sms("380501234567", "Hi")
    services.send_sms("380501234568", "Hi")
    sandbox.advance(10)
    out, _ = sync("--message", str(getattr(message, by)))
    assert out == "checked 1, changed 1, final 1, errors 0\n"
    message.refresh_from_db()
    assert message.status == "delivered"


@pytest.mark.django_db
def test_sync_refuses_an_unknown_message() -> None:
    assert "FAPI0" in fails("smsfly_sync", "--message", "FAPI0")


@pytest.mark.django_db
def test_sync_refuses_a_message_not_yet_sent() -> None:
    message = services.queue_message("380501234567", channels="sms", sms={"text": "Hi"})
    error = fails("smsfly_sync", "--message", str(message.pk))
    assert "no SMS-fly message id" in error


@pytest.mark.django_db
def test_sync_prints_nothing_at_verbosity_0(sandbox: Simulator) -> None:
    services.send_sms("380501234567", "Hi")
    make_due()
    assert sync("-v", "0") == ("", "")
    assert len(sandbox.requests_for("GETMESSAGESTATUS")) == 1


@pytest.mark.django_db
def test_sync_exits_with_1_when_every_status_request_fails(sandbox: Simulator) -> None:
    services.send_sms("380501234567", "Hi")
    services.send_sms("380501234568", "Hi")
    make_due()
    sandbox.inject(Fault.SERVER_ERROR, times=10, action="GETMESSAGESTATUS")
    out = io.StringIO()
    with pytest.raises(CommandError) as caught:
        sync(stdout=out)
    assert caught.value.returncode == 1
    assert "Every status request failed (HTTP_500 ×2)" in str(caught.value)
    assert out.getvalue().splitlines() == [
        "checked 2, changed 0, final 0, errors 2",
        "Errors by code: HTTP_500 ×2",
    ]


@pytest.mark.django_db
def test_sync_with_some_errors_exits_with_0(sandbox: Simulator) -> None:
    services.send_sms("380501234567", "Hi")
    services.send_sms("380501234568", "Hi")
    make_due()
    sandbox.inject(Fault.SERVER_ERROR, action="GETMESSAGESTATUS")
    out, _ = sync("--concurrency", "1")
    assert out.splitlines()[-1] == "Errors by code: HTTP_500 ×1"


@pytest.mark.django_db
def test_sync_first_sends_what_is_due_and_nothing_too_young(sandbox: Simulator) -> None:
    sms = {"text": "Hi"}
    retry = services.queue_message("380501234561", channels="sms", sms=sms)
    forgotten = services.queue_message("380501234562", channels="sms", sms=sms)
    fresh = services.queue_message("380501234563", channels="sms", sms=sms)
    Message.objects.filter(pk=retry.pk).update(
        attempts=1, retry_at=timezone.now() - dt.timedelta(seconds=1)
    )
    Message.objects.filter(pk=forgotten.pk).update(
        created_at=timezone.now() - dt.timedelta(minutes=2)
    )

    out, _ = sync("--no-send")
    assert sends() == 0

    out, _ = sync()
    assert out == "checked 0, changed 0, final 0, errors 0, sent 2\n"
    states = dict(Message.objects.values_list("pk", "state"))
    assert states == {retry.pk: "accepted", forgotten.pk: "accepted", fresh.pk: "queued"}


@pytest.mark.django_db
def test_sync_progress_is_drawn_in_place_on_a_terminal(sandbox: Simulator) -> None:
    for i in range(5):
        services.send_sms(f"38050123456{i}", "Hi")
    sandbox.advance(10)
    make_due()
    out = Terminal()
    sync("--batch-size", "2", stdout=out)
    text = out.getvalue()
    assert text.startswith("\r\x1b[K  checked 2 · changed 2 · final 2 · errors 0 · ")
    # The line is erased for the summary: the totals are printed once (issue 13).
    assert text.endswith("\r\x1b[Kchecked 5, changed 5, final 5, errors 0\n")


@pytest.mark.django_db
def test_sync_prints_a_line_per_batch_at_verbosity_2(sandbox: Simulator) -> None:
    for i in range(3):
        services.send_sms(f"38050123456{i}", "Hi")
    make_due()
    out, _ = sync("--batch-size", "2", "-v", "2")
    lines = out.splitlines()
    # One line per batch but the last, whose totals the summary gives (once, issue 13).
    assert [line.split(" · ")[0] for line in lines[:1]] == ["checked 2"]
    assert lines[1:] == ["checked 3, changed 0, final 0, errors 0"]


class FakeTime:
    """The loop's clock and sleep: sleeping moves the clock; the ``stop_at``-th sleep stops."""

    def __init__(self, stop_at: int, stop: Callable[[], None]) -> None:
        self.now = 0.0
        self.sleeps = 0
        self.stop_at = stop_at
        self.stop = stop

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert 0 < seconds <= smsfly_sync.SLEEP_STEP
        self.now += seconds
        self.sleeps += 1
        if self.sleeps == self.stop_at:
            self.stop()


def fake_time(monkeypatch: pytest.MonkeyPatch, stop_at: int, stop: Callable[[], None]) -> None:
    fake = FakeTime(stop_at, stop)
    monkeypatch.setattr(smsfly_sync.Command, "clock", staticmethod(fake.clock))
    monkeypatch.setattr(smsfly_sync.Command, "sleep", staticmethod(fake.sleep))


def interrupt() -> None:
    raise KeyboardInterrupt


@pytest.mark.django_db
def test_sync_loop_ends_cleanly_on_ctrl_c(
    sandbox: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    services.send_sms("380501234567", "Hi")
    sandbox.advance(10)
    make_due()
    # --interval 2 waits in two steps of 1 s: the third sleep is in the second wait.
    fake_time(monkeypatch, 3, interrupt)
    out, _ = sync("--loop", "--interval", "2")
    lines = out.splitlines()
    assert len(lines) == 2
    assert lines[0].endswith("] checked 1, changed 1, final 1, errors 0")
    assert lines[1] == "Stopped after 2 runs. Total: checked 1, changed 1, final 1, errors 0"


@pytest.mark.django_db
def test_sync_loop_stops_between_runs_on_sigterm(monkeypatch: pytest.MonkeyPatch) -> None:
    def terminate() -> None:
        os.kill(os.getpid(), signal.SIGTERM)

    previous = signal.getsignal(signal.SIGTERM)
    fake_time(monkeypatch, 5, terminate)
    out, _ = sync("--loop", "--interval", "2")
    assert out == "Stopped after 3 runs. Total: checked 0, changed 0, final 0, errors 0\n"
    assert signal.getsignal(signal.SIGTERM) == previous


@pytest.mark.django_db
def test_ctrl_c_outside_a_loop_is_exit_status_130(monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(**kwargs: Any) -> services.SyncReport:
        raise KeyboardInterrupt

    monkeypatch.setattr(services, "run_sync_pass", interrupted)
    assert fails("smsfly_sync", returncode=130) == "Interrupted."


@pytest.mark.django_db
def test_sync_loop_cannot_be_combined_with_message() -> None:
    message = services.send_sms("380501234567", "Hi")
    assert "--loop" in fails("smsfly_sync", "--message", str(message.pk), "--loop")


class SandboxTime(FakeTime):
    """The loop's time, and the sandbox's with it: each second slept passes for SMS-fly too,
    and the messages' next checks come due (their schedule reads the real clock)."""

    def __init__(self, simulator: Simulator) -> None:
        super().__init__(stop_at=0, stop=lambda: None)
        self.simulator = simulator

    def sleep(self, seconds: float) -> None:
        super().sleep(seconds)
        self.simulator.advance(seconds)
        make_due()


def sandbox_time(monkeypatch: pytest.MonkeyPatch, simulator: Simulator) -> SandboxTime:
    fake = SandboxTime(simulator)
    monkeypatch.setattr(smsfly_sync.Command, "clock", staticmethod(fake.clock))
    monkeypatch.setattr(smsfly_sync.Command, "sleep", staticmethod(fake.sleep))
    return fake


@pytest.mark.django_db
def test_sync_loop_follows_a_message_until_it_is_delivered(
    sandbox: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    message = services.send_sms("380501234567", "Hi")
    make_due()
    fake = sandbox_time(monkeypatch, sandbox)
    # The sandbox's SMS: in progress at 1 s, sent at 3 s, delivered at 6 s.
    out, err = sync("--loop", "--interval", "2", "--max-passes", "4")
    assert err == ""
    assert fake.now == 6.0  # three waits of 2 s: none after the last run
    lines = out.splitlines()
    assert [line.split("] ", 1)[1] for line in lines[:4]] == [
        "checked 1, changed 0, final 0, errors 0",
        "checked 1, changed 1, final 0, errors 0",
        "checked 1, changed 1, final 0, errors 0",
        "checked 1, changed 1, final 1, errors 0",
    ]
    assert lines[4] == "Stopped after 4 runs. Total: checked 4, changed 3, final 1, errors 0"
    message.refresh_from_db()
    assert message.status == "delivered"
    assert list(message.history.filter(channel="sms").values_list("new_status", flat=True)) == [
        "accepted",
        "in_progress",
        "sent",
        "delivered",
    ]


@pytest.mark.django_db
def test_sync_loop_reports_a_failing_run_and_goes_on(
    sandbox: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    message = services.send_sms("380501234567", "Hi")
    sandbox.advance(10)
    make_due()
    real_sync = services.run_sync_pass
    calls = 0

    def locked_once(**kwargs: Any) -> services.SyncReport:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise OperationalError("database is locked")
        return real_sync(**kwargs)

    monkeypatch.setattr(services, "run_sync_pass", locked_once)
    sandbox_time(monkeypatch, sandbox)
    out, err = sync("--loop", "--interval", "1", "--max-passes", "2")
    assert re.fullmatch(
        r"\[\d\d:\d\d:\d\d\] Run failed: OperationalError: database is locked\n"
        r"1 run failed\.\n",
        err,
    )
    assert out.splitlines()[-1] == (
        "Stopped after 2 runs. Total: checked 1, changed 1, final 1, errors 0"
    )
    message.refresh_from_db()
    assert message.status == "delivered"


@pytest.mark.django_db
def test_sync_loop_with_max_passes_fails_when_every_run_failed(
    sandbox: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(**kwargs: Any) -> services.SyncReport:
        raise OperationalError("no such table: django_smsfly_message")

    monkeypatch.setattr(services, "run_sync_pass", broken)
    sandbox_time(monkeypatch, sandbox)
    with pytest.raises(CommandError) as caught:
        sync("--loop", "--interval", "1", "--max-passes", "3")
    assert caught.value.returncode == 1
    assert str(caught.value) == "Every run failed; see the errors above."


@pytest.mark.django_db
def test_sync_loop_stops_at_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def misconfigured(**kwargs: Any) -> services.SyncReport:
        raise ImproperlyConfigured("settings.SMSFLY must be a dict, not str.")

    monkeypatch.setattr(services, "run_sync_pass", misconfigured)
    error = fails("smsfly_sync", "--loop", "--interval", "1")
    assert error == "Configuration error: settings.SMSFLY must be a dict, not str."


def test_max_passes_needs_loop_and_is_not_in_the_help() -> None:
    assert fails("smsfly_sync", "--max-passes", "2") == "--max-passes limits a --loop; add --loop."
    parser = smsfly_sync.Command().create_parser("manage.py", "smsfly_sync")
    assert "--max-passes" not in parser.format_help()
    assert "--interval" in parser.format_help()


# -- smsfly_send: two runs of one file at once ---------------------------------------------


@pytest.fixture
def slow_sandbox() -> Iterator[Simulator]:
    """The sandbox takes 20 ms per request, so that two runs' sends overlap."""
    simulator = get_simulator()
    simulator.configure(latency=0.02)
    yield simulator
    simulator.configure(latency=0.0)


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="threads share SQLite's in-memory test database only with table locks",
)
def test_two_runs_of_one_file_send_each_row_once_and_report_the_others_rows(
    tmp_path: Path, slow_sandbox: Simulator
) -> None:
    path = write_csv(tmp_path / "list.csv", people(10))

    def one_run(index: int) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        try:
            call_command(
                "smsfly_send", "--csv", path, "--text", "Hi {name}", "--rate", "20", "-v", "2",
                stdout=out, stderr=err,
            )  # fmt: skip
        except CommandError as exc:
            return exc.returncode, out.getvalue(), err.getvalue() + str(exc)
        return 0, out.getvalue(), err.getvalue()

    results = run_together(2, one_run, timeout=120)

    per_recipient = Counter(
        r.body["data"]["recipient"] for r in slow_sandbox.requests_for("SENDMESSAGE")
    )
    assert per_recipient == {number: 1 for number, _name in people(10)}
    assert Message.objects.filter(state=Message.State.ACCEPTED).count() == 10
    assert_two_runs_told_the_truth(results, rows=10)


def assert_two_runs_told_the_truth(results: list[tuple[int, str, str]], *, rows: int) -> None:
    """Both runs exit 0 with nothing failed; each accounts for every row, names each row
    the other run had, and the rows sent add up to the file across the two."""
    sent = elsewhere = 0
    for returncode, out, err in results:
        assert (returncode, err) == (0, ""), out  # nothing failed
        summary = re.search(
            rf"{rows} rows: (\d+) sent, (\d+) skipped as already sent, 0 queued", out
        )
        assert summary is not None, out
        moved = re.search(r"(\d+) rows? in progress elsewhere", out)
        in_progress = int(moved.group(1)) if moved else 0
        assert int(summary.group(1)) + int(summary.group(2)) + in_progress == rows, out
        lines = re.findall(r"^Line \d+: in progress elsewhere: ", out, flags=re.MULTILINE)
        assert len(lines) == in_progress, out  # a line naming each
        sent += int(summary.group(1))
        elsewhere += in_progress
    assert sent == rows
    assert elsewhere >= 1


TWO_RUNS_SETTINGS = """
from tests.settings import *  # noqa: F403

DATABASES = {{
    "default": {{
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": {database!r},
        "OPTIONS": {{"timeout": 30, "transaction_mode": "IMMEDIATE"}},
    }}
}}
INSTALLED_APPS = ["django.contrib.auth", "django.contrib.contenttypes", "django_smsfly"]
MIDDLEWARE = []
ROOT_URLCONF = "two_runs_settings"
urlpatterns = []
SMSFLY = {{"API_URL": {url!r}, "API_KEY": "two-runs-key", "SMS_SOURCE": "InfoCenter"}}
"""


@pytest.mark.e2e
def test_two_processes_running_one_file_on_sqlite_send_each_row_once(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "list.csv", people(30))
    with SandboxServer(latency=0.02) as server:
        (tmp_path / "two_runs_settings.py").write_text(
            TWO_RUNS_SETTINGS.format(database=str(tmp_path / "db.sqlite3"), url=server.url),
            encoding="utf-8",
        )
        env = {
            **{k: v for k, v in os.environ.items() if k != "DATABASE_URL"},
            "DJANGO_SETTINGS_MODULE": "two_runs_settings",
            "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)]),
        }
        manage = [sys.executable, "-m", "django"]
        subprocess.run(  # noqa: S603 - our own interpreter and command
            [*manage, "migrate", "-v", "0", "--skip-checks"],
            env=env,
            cwd=ROOT,
            check=True,
            timeout=120,
        )
        send = [*manage, "smsfly_send", "--skip-checks", "--csv", path, "--text", "Hi {name}"]
        runs = [
            subprocess.Popen(  # noqa: S603 - our own interpreter and command
                [*send, "--rate", "20", "-v", "2"],
                env=env,
                cwd=ROOT,
                text=True,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            for _ in range(2)
        ]
        results = []
        for process in runs:
            out, err = process.communicate(timeout=120)
            results.append((process.returncode, out, err))
        per_recipient = Counter(
            r.body["data"]["recipient"]
            for r in server.simulator.requests_for("SENDMESSAGE")
            if r.processed
        )
    assert per_recipient == {number: 1 for number, _name in people(30)}
    assert_two_runs_told_the_truth(results, rows=30)
