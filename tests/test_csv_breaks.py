"""The CSV path as an attacker (or a careless spreadsheet) would try it: one test per break
of issue 12 — an unbalanced quote, a NUL byte, a missing template field, an endless
text, a silent run, and a dry run that did not name its rows."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from django_smsfly import services
from django_smsfly.backends.sandbox import get_simulator
from django_smsfly.mailing import MailingContent, MailingError, MailingReport, run_csv
from django_smsfly.mailing.source import Header, row_key
from django_smsfly.models import Message

pytestmark = pytest.mark.django_db

HI = MailingContent(text="Hi {name}")


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8", newline="")
    return path


def sent_texts() -> list[tuple[str, str]]:
    """``(recipient, SMS text)`` of every SENDMESSAGE the sandbox received, in order."""
    return [
        (r.body["data"]["recipient"], r.body["data"]["sms"]["text"])
        for r in get_simulator().requests_for("SENDMESSAGE")
    ]


def smsfly_send(*args: str) -> tuple[str, str]:
    """Run ``smsfly_send``; its stdout and stderr (a failure raises ``CommandError``)."""
    out, err = io.StringIO(), io.StringIO()
    call_command("smsfly_send", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


# -- 1. an unbalanced quote --------------------------------------------------------------

UNBALANCED = (
    "recipient,name\n"
    "380500000100,Olena\n"
    "380500000101,Taras\n"
    '380500000102,"Ivan\n'  # line 4: the quote is never closed
    "380500000103,Maria\n"
    "380500000104,Petro\n"
)


def test_a_quote_never_closed_is_an_error_naming_its_line_and_nothing_is_sent(
    tmp_path: Path,
) -> None:
    path = write(tmp_path / "list.csv", UNBALANCED)
    with pytest.raises(MailingError, match=r"^Line 4: a quoted cell that starts on this line"):
        run_csv(path, HI, rate=0)
    assert sent_texts() == []  # not even the two good rows before it
    assert not Message.objects.exists()


def test_a_quote_closed_rows_later_does_not_swallow_the_rows_between(tmp_path: Path) -> None:
    # Well-formed CSV, but the cell of line 3 would take in lines 4 and 5 whole.
    path = write(
        tmp_path / "list.csv",
        "recipient,name\n"
        "380500000100,Olena\n"
        '380500000101,"Taras\n'
        "380500000102,Ivan\n"
        '+380 50 000 0103,Maria"\n',
    )
    with pytest.raises(MailingError) as caught:
        run_csv(path, HI, rate=0)
    assert str(caught.value).startswith(
        "Line 3: a quoted cell that starts on this line is not closed before line 4, "
        "which looks like a row of its own."
    )
    assert sent_texts() == []


def test_text_after_a_closing_quote_is_an_error_naming_the_line(tmp_path: Path) -> None:
    path = write(
        tmp_path / "list.csv",
        'recipient,name\n380500000100,Olena\n380500000101,"Taras" Shevchenko\n',
    )
    with pytest.raises(MailingError, match=r"^Line 3: not valid CSV: "):
        run_csv(path, HI, rate=0)
    assert sent_texts() == []


def test_a_text_of_several_lines_in_quotes_is_still_one_cell(tmp_path: Path) -> None:
    path = write(
        tmp_path / "list.csv",
        "recipient,text\n"
        '380500000100,"Your order has shipped.\n'
        "Tracking: 20450012 3456,\n"  # a line break, digits, the delimiter: still text
        'Call 0 800 300 545"\n'
        "380500000101,Thank you\n",
    )
    report = run_csv(path, MailingContent(), rate=0)
    assert (report.sent, report.errors) == (2, 0)
    assert sent_texts() == [
        ("380500000100", "Your order has shipped.\nTracking: 20450012 3456,\nCall 0 800 300 545"),
        ("380500000101", "Thank you"),
    ]
    # Each row is named by the line it starts on.
    lines = dict(Message.objects.values_list("recipient", "metadata__line"))
    assert lines == {"380500000100": 2, "380500000101": 5}


def test_smsfly_send_on_a_malformed_file_exits_1_names_the_line_and_sends_nothing(
    tmp_path: Path,
) -> None:
    path = write(tmp_path / "list.csv", UNBALANCED)
    with pytest.raises(CommandError) as caught:
        smsfly_send("--csv", str(path), "--text", "Hi {name}", "--rate", "0")
    assert caught.value.returncode == 1
    assert "Line 4" in str(caught.value)
    assert get_simulator().requests_for("SENDMESSAGE") == []
    assert not Message.objects.exists()


def test_a_dry_run_of_a_malformed_file_fails_the_same_way(tmp_path: Path) -> None:
    path = write(tmp_path / "list.csv", UNBALANCED)
    with pytest.raises(CommandError, match="Line 4"):
        smsfly_send("--csv", str(path), "--text", "Hi {name}", "--dry-run")


def test_an_upload_stream_is_checked_first_and_read_from_where_it_was(tmp_path: Path) -> None:
    with pytest.raises(MailingError, match=r"^Line 4"):
        run_csv(io.StringIO(UNBALANCED), HI, rate=0)
    upload = io.StringIO("recipient,name\n380500000100,Olena\n380500000101,Taras\n")
    report = run_csv(upload, HI, rate=0)
    assert (report.total, report.sent) == (2, 2)
    assert sent_texts() == [("380500000100", "Hi Olena"), ("380500000101", "Hi Taras")]


# -- 2. a NUL byte -----------------------------------------------------------------------

WITH_NUL = "recipient,name\n380500000100,Olena\n380500000101,Ta\x00ras\n380500000102,Ivan\n"


def test_a_nul_byte_refuses_its_row_naming_line_and_column_and_the_run_goes_on(
    tmp_path: Path,
) -> None:
    path = write(tmp_path / "list.csv", WITH_NUL)
    report = run_csv(path, HI, rate=0)
    assert (report.rows, report.sent, report.invalid) == (3, 2, 1)
    [problem] = report.problems
    assert problem.line == 3
    assert problem.text == (
        "the 'name' column contains a NUL character (\\x00), which cannot be stored or sent"
    )
    assert sent_texts() == [("380500000100", "Hi Olena"), ("380500000102", "Hi Ivan")]
    assert Message.objects.count() == 2  # nothing was written for the refused row


def test_a_run_resumed_after_a_nul_row_does_not_stop_at_it(tmp_path: Path) -> None:
    path = write(tmp_path / "list.csv", WITH_NUL)
    run_csv(path, HI, rate=0, limit=2)  # stopped at the NUL row
    report = run_csv(path, HI, rate=0)
    assert (report.rows, report.sent, report.skipped, report.invalid) == (3, 1, 1, 1)
    assert report.stopped is None
    assert [r for r, _ in sent_texts()] == ["380500000100", "380500000102"]


def test_a_nul_byte_in_the_recipient_cell_is_refused_too(tmp_path: Path) -> None:
    path = write(tmp_path / "list.csv", "recipient,name\n38050\x000000100,Olena\n")
    report = run_csv(path, HI, dry_run=True)
    assert report.invalid == 1
    assert "the 'recipient' column contains a NUL character" in report.problems[0].text


def test_text_that_is_not_valid_unicode_refuses_its_row_without_a_crash() -> None:
    # A lone surrogate: what a stream decoded with errors="surrogateescape" may hold.
    upload = io.StringIO("recipient,name\n380500000100,Ol\udce9na\n380500000101,Taras\n")
    report = run_csv(upload, HI, rate=0)
    assert (report.sent, report.invalid) == (1, 1)
    assert report.problems[0].line == 2
    assert "'name' column contains a character that is not valid Unicode" in (
        report.problems[0].text
    )


def test_the_row_key_digests_any_text_and_is_unchanged_for_valid_text() -> None:
    header = Header.parse(["recipient", "name"], source="list.csv")
    # The key of this row as released: a file half sent before an upgrade resumes.
    assert row_key("june", header, 1, ["380500000100", "Olena"]) == (
        "smsfly_send:3cc06f7bd034be7d9bcebc54e7da42ddc8ec904dc43c960147e610d6dfe494ca"
    )
    odd = row_key("june", header, 1, ["380500000100", "Ol\udce9na"])
    assert odd.startswith("smsfly_send:")
    assert odd != row_key("june", header, 1, ["380500000100", "Olena"])


# -- 3. a missing template field -----------------------------------------------------------

MISSING_NAME = "recipient,name\n380500000100,Olena\n380500000101,\n380500000102\n"


def test_an_empty_or_missing_field_is_a_row_error_and_the_dry_run_counts_it_invalid(
    tmp_path: Path,
) -> None:
    path = write(tmp_path / "list.csv", MISSING_NAME)
    report = run_csv(path, HI, dry_run=True)
    assert (report.checked, report.invalid) == (1, 2)
    assert [p.line for p in report.problems] == [3, 4]
    assert report.problems[0].text == (
        "--text needs {name}, but the 'name' column is empty on this row "
        "(write {name|...} for a default)"
    )


def test_a_row_missing_a_field_is_not_sent_as_a_greeting_to_nobody(tmp_path: Path) -> None:
    path = write(tmp_path / "list.csv", MISSING_NAME)
    with pytest.raises(CommandError, match="2 rows could not be sent"):
        smsfly_send("--csv", str(path), "--text", "Hi {name}", "--rate", "0")
    assert sent_texts() == [("380500000100", "Hi Olena")]


def test_a_default_fills_an_empty_field_and_an_empty_default_allows_it(tmp_path: Path) -> None:
    path = write(tmp_path / "list.csv", MISSING_NAME)
    report = run_csv(path, MailingContent(text="Hi {name|friend}"), rate=0, campaign="a")
    assert (report.sent, report.errors) == (3, 0)
    report = run_csv(path, MailingContent(text="Hello{name|}!"), rate=0, campaign="b")
    assert (report.sent, report.errors) == (3, 0)
    assert [text for _, text in sent_texts()] == [
        "Hi Olena",
        "Hi friend",
        "Hi friend",
        "HelloOlena!",
        "Hello!",
        "Hello!",
    ]


def test_a_default_is_checked_against_the_header_like_any_field(tmp_path: Path) -> None:
    path = write(tmp_path / "list.csv", MISSING_NAME)
    with pytest.raises(MailingError, match=r"uses \{surname\}"):
        run_csv(path, MailingContent(text="Hi {surname|friend}"), rate=0)


# -- 4. no upper bound on text -------------------------------------------------------------


def test_a_row_too_long_for_the_sms_parts_limit_is_a_row_error(tmp_path: Path) -> None:
    long_text = "a" * 1601  # 11 parts of 153 characters: over the default 10
    path = write(
        tmp_path / "list.csv",
        f"recipient,text\n380500000100,{long_text}\n380500000101,Short\n",
    )
    report = run_csv(path, MailingContent(), dry_run=True)
    assert (report.checked, report.invalid) == (1, 1)
    assert report.problems[0].line == 2
    assert report.problems[0].text == (
        "sms.text: is too long: 1601 characters, more than the 10 SMS parts allowed "
        "(SMSFLY['MAX_SMS_PARTS'])"
    )
    report = run_csv(path, MailingContent(), rate=0)
    assert (report.sent, report.invalid) == (1, 1)
    assert sent_texts() == [("380500000101", "Short")]
    assert Message.objects.count() == 1


def test_a_template_that_multiplies_a_cell_cannot_make_a_huge_sms(tmp_path: Path) -> None:
    path = write(tmp_path / "list.csv", f"recipient,name\n380500000100,{'x' * 100_000}\n")
    report = run_csv(path, MailingContent(text="{name}{name}{name}"), rate=0)
    assert report.invalid == 1
    assert "is too long: 300000 characters" in report.problems[0].text
    assert sent_texts() == []


def test_a_cell_beyond_what_csv_reads_is_a_clear_error_naming_its_line(tmp_path: Path) -> None:
    path = write(tmp_path / "list.csv", f"recipient,name\n380500000100,{'x' * 200_000}\n")
    with pytest.raises(MailingError, match=r"^Line 2: a cell is longer than 131072 characters"):
        run_csv(path, HI, rate=0)


# -- 5. progress -----------------------------------------------------------------------------


def test_the_progress_line_tells_count_rate_and_eta() -> None:
    from django_smsfly.mailing.progress import progress_line

    report = MailingReport(line=51, rows=50, sent=40, skipped=10)
    # 40 rows handled in 8 s (the 10 skipped took no time): 5/s, 150 rows left: 30 s.
    assert progress_line(report, 200, 8.0) == (
        "line 51 · sent 40 · skipped 10 · errors 0 · 50/200 rows (25%) · 5.0/s · ETA 30s"
    )
    assert progress_line(report, 5050, 8.0).endswith("· ETA 16m 40s")
    assert progress_line(report, 36050, 8.0).endswith("· ETA 2h 00m")
    # No total known (an upload that could not be read twice): no ETA.
    assert progress_line(report, None, 8.0) == (
        "line 51 · sent 40 · skipped 10 · errors 0 · 50 rows · 5.0/s"
    )
    # Done: no ETA; nothing handled yet: no rate to go by.
    assert progress_line(report, 50, 8.0).endswith("· 50/50 rows (100%) · 5.0/s")
    assert progress_line(MailingReport(), 10, 0.0).endswith("0/10 rows (0%) · 0.0/s")


class FakeClock:
    """Seconds that pass only when told: each reading moves ``step`` seconds on."""

    def __init__(self, step: float) -> None:
        self.now = 1000.0
        self.step = step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def test_a_run_writes_plain_progress_lines_every_ten_seconds_when_not_a_terminal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django_smsfly.mailing import progress

    rows = "".join(f"38050{i:07d},P{i}\n" for i in range(100, 130))
    path = write(tmp_path / "list.csv", "recipient,name\n" + rows)
    # Every reading of the clock is 1.5 s later, so the run takes well over 10 s.
    monkeypatch.setattr(progress, "monotonic", FakeClock(1.5))
    out, err = smsfly_send("--csv", str(path), "--text", "Hi {name}", "--rate", "0")
    lines = out.splitlines()
    progress_lines = [line for line in lines if line.startswith("line ")]
    assert "\r" not in out
    assert len(progress_lines) >= 3  # some while running...
    assert progress_lines[-1].startswith("line 31 · sent 30 · skipped 0 · errors 0 · 30/30 rows")
    summary = lines.index(
        "30 rows: 30 sent, 0 skipped as already sent, 0 queued for a retry, 0 failed."
    )
    assert lines[summary - 1] == progress_lines[-1]  # ...and one at the end, before the summary
    counts = [int(line.split(" · ")[4].split("/")[0]) for line in progress_lines]
    assert counts == sorted(counts)
    assert counts[0] < 30
    assert all("/30 rows" in line for line in progress_lines)
    assert all(" · ETA " in line for line in progress_lines[:-1])
    assert err == ""


def test_no_progress_lines_in_a_short_run_but_the_last(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django_smsfly.mailing import progress

    path = write(tmp_path / "list.csv", "recipient,name\n380500000100,Olena\n")
    monkeypatch.setattr(progress, "monotonic", FakeClock(0.01))
    out, _ = smsfly_send("--csv", str(path), "--text", "Hi {name}", "--rate", "0")
    assert [line for line in out.splitlines() if line.startswith("line ")] == [out.splitlines()[0]]
    assert out.splitlines()[0].startswith("line 2 · sent 1 · skipped 0 · errors 0 · 1/1 rows")


class Terminal(io.StringIO):
    """A captured stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def test_on_a_terminal_the_line_is_redrawn_in_place_a_few_times_a_second(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django_smsfly.mailing import progress

    rows = "".join(f"38050{i:07d},P{i}\n" for i in range(100, 160))
    path = write(tmp_path / "list.csv", "recipient,name\n" + rows)
    clock = FakeClock(0.01)
    monkeypatch.setattr(progress, "monotonic", clock)
    out = Terminal()
    call_command(
        "smsfly_send", "--csv", str(path), "--text", "Hi {name}", "--rate", "0",
        stdout=out, stderr=io.StringIO(),
    )  # fmt: skip
    draws = out.getvalue().split("\r\x1b[K  ")[1:]
    seconds = clock.now - 1000.0
    assert 2 <= len(draws) <= seconds * 4 + 2  # not one per row: 60 rows, ~4 a second
    assert draws[0].startswith("line 2 · sent 1 · skipped 0 · errors 0 · 1/60 rows (1%) · ")
    assert draws[-1].startswith("line 61 · sent 60 · skipped 0 · errors 0 · 60/60 rows (100%)")


def test_nothing_but_errors_at_verbosity_0(tmp_path: Path) -> None:
    path = write(tmp_path / "list.csv", "recipient,name\n380500000100,Olena\n")
    out, err = smsfly_send("--csv", str(path), "--text", "Hi {name}", "--rate", "0", "-v", "0")
    assert (out, err) == ("", "")


# -- 6. the dry run names its rows -----------------------------------------------------------


def test_a_number_outside_the_allowed_regions_is_a_row_error_naming_its_line(
    tmp_path: Path,
) -> None:
    path = write(
        tmp_path / "list.csv",
        'recipient,name\n380500000100,Olena\n"+1 202 555 0143",Joe\n',
    )
    report = run_csv(path, HI, dry_run=True)
    assert (report.checked, report.invalid) == (1, 1)
    assert report.problems[0].line == 3
    assert report.problems[0].text.startswith(
        "recipient: +12025550143 is in US; messages may only go to "
    )
    assert report.problems[0].text.endswith(" (SMSFLY['ALLOWED_REGIONS'])")
    with pytest.raises(CommandError):
        smsfly_send("--csv", str(path), "--text", "Hi {name}", "--rate", "0")
    assert sent_texts() == [("380500000100", "Hi Olena")]  # no request for the US number


def test_the_dry_run_names_the_rows_it_has_no_price_for(tmp_path: Path) -> None:
    # The SMS price list knows Ukraine only: the Polish number cannot be priced.
    services.get_client()  # built with the settings' options first, then changed
    get_simulator().configure(prices={"sms": {"255": {"01": "0.479", "99": "0.495"}}})
    path = write(
        tmp_path / "list.csv",
        "recipient,name\n380500000100,Olena\n48512345678,Jan\n380500000101,Taras\n",
    )
    report = run_csv(path, HI, dry_run=True)
    assert (report.checked, report.unpriced, report.unpriced_lines) == (3, 1, [3])
    out, _ = smsfly_send("--csv", str(path), "--text", "Hi {name}", "--dry-run")
    assert "No price is known for 1 message (line 3); it is not counted." in out
