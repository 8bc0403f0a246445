"""``smsfly_send --csv`` as a campaign: the run appears as a Campaign (origin ``cli``) with
its messages linked, a re-run resumes the same campaign, ``--template`` renders each row,
and a malformed file sends nothing."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from django_smsfly import campaigns
from django_smsfly.backends.sandbox import get_simulator
from django_smsfly.models import Campaign, Message, MessageTemplate, OptOut

pytestmark = pytest.mark.django_db


def write_csv(path: Path, *rows: str, header: str = "recipient,name") -> str:
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return str(path)


def send_csv(path: str, *args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("smsfly_send", "--csv", path, "--rate", "0", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def requests() -> list[dict[str, object]]:
    return [r.body["data"] for r in get_simulator().requests_for("SENDMESSAGE")]


ROWS = ("380500000100,Olena", "380500000101,Taras", "380500000102,Ivan")


def test_a_cli_run_is_a_campaign_with_its_messages_linked(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "june.csv", *ROWS)
    out, _err = send_csv(path, "--text", "Hi {name}", "--campaign", "june")
    assert "3 rows: 3 sent" in out
    campaign = Campaign.objects.get()
    assert (campaign.origin, campaign.name, campaign.status) == ("cli", "june", "finished")
    assert campaign.source_name == str(tmp_path / "june.csv")
    assert (campaign.rows_total, campaign.rows_valid, campaign.rows_done) == (3, 3, 3)
    assert set(Message.objects.values_list("campaign_id", flat=True)) == {campaign.pk}
    progress = campaigns.progress(campaign)
    assert (progress.total, progress.accepted, progress.percent) == (3, 3, 100)


def test_running_the_same_file_again_resumes_the_same_campaign(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "june.csv", *ROWS)
    out, _err = send_csv(path, "--text", "Hi {name}", "--limit", "1")
    assert "1 row: 1 sent" in out
    assert Campaign.objects.get().status == "paused"  # --limit leaves the rest for later
    out, _err = send_csv(path, "--text", "Hi {name}")
    assert "3 rows: 2 sent, 1 skipped as already sent" in out
    campaign = Campaign.objects.get()
    assert campaign.status == "finished"
    assert campaign.messages.count() == 3
    assert len(requests()) == 3


def test_opted_out_and_repeated_numbers_are_recorded_not_sent(tmp_path: Path) -> None:
    OptOut.objects.create(recipient="380500000101")
    path = write_csv(tmp_path / "june.csv", *ROWS, "+380500000100,Again")
    out, _err = send_csv(path, "--text", "Hi {name}")
    assert [r["recipient"] for r in requests()] == ["380500000100", "380500000102"]
    assert "1 row not sent: the number is on the opt-out list." in out
    assert "1 row not sent: the number of an earlier row." in out
    opted = Message.objects.get(recipient="380500000101")
    assert (opted.state, opted.error_code) == ("failed", "OPTED_OUT")


def test_template_renders_each_row_in_the_language_asked(tmp_path: Path) -> None:
    MessageTemplate.objects.create(name="hello", channels="sms", sms_text="Hello {{ name }}")
    MessageTemplate.objects.create(
        name="hello", language="uk", channels="sms", sms_text="Привіт, {{ name }}"
    )
    path = write_csv(tmp_path / "june.csv", "380500000100,Олена")
    send_csv(path, "--template", "hello", "--language", "uk")
    assert requests() == [
        {
            "recipient": "380500000100",
            "channels": ["sms"],
            "sms": {"source": "InfoCenter", "text": "Привіт, Олена"},
        }
    ]


def test_an_unknown_template_is_a_clear_error(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "june.csv", *ROWS)
    with pytest.raises(CommandError, match="--template"):
        send_csv(path, "--template", "nope")
    assert not requests()


def test_a_malformed_row_exits_non_zero_naming_the_line_and_sends_nothing(
    tmp_path: Path,
) -> None:
    path = write_csv(tmp_path / "june.csv", "380500000100,Olena", '380500000101,"Taras', *ROWS)
    with pytest.raises(CommandError) as caught:
        send_csv(path, "--text", "Hi {name}")
    assert "line 3" in str(caught.value).lower()
    assert not requests()
    assert not Message.objects.exists()
