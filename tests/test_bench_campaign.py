"""The campaign benchmark (``benchmarks/bench_campaign.py``) runs, and fails loudly when
the sends do not match the file. No figure of it is asserted: the machine varies."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from benchmarks.bench_campaign import BenchFailure, Expected, check_sends, write_csv

ROOT = Path(__file__).resolve().parent.parent


def sends(*numbers: str) -> list[SimpleNamespace]:
    """Recorded SENDMESSAGE requests, as the sandbox keeps them."""
    return [SimpleNamespace(body={"data": {"recipient": number}}) for number in numbers]


def test_the_generated_file_has_every_kind_of_row(tmp_path: Path) -> None:
    path = tmp_path / "list.csv"
    expected = write_csv(path, 1000, 0)
    lines = path.read_text().splitlines()
    assert lines[0] == "recipient,name"
    assert len(lines) == 1001
    assert (len(expected.opted_out), expected.invalid, expected.duplicate) == (3, 5, 6)
    assert len(expected.valid) == 1000 - 3 - 5 - 6
    # The sandbox's built-in test numbers (refused, stop-listed, ...) are left out.
    assert not [n for n in expected.valid if 1 <= int(n[-4:]) <= 6]


@pytest.mark.parametrize(
    ("sent", "problem"),
    [
        (["380670000001", "380670000001", "380670000002"], "sent more than once"),
        (["380670000001"], "valid rows never sent"),
        (["380670000001", "380670000002", "380670000009"], "opted-out numbers sent to"),
        (["380670000001", "380670000002", "380670000010"], "numbers of no valid row"),
    ],
)
def test_a_send_that_does_not_match_the_file_fails_the_run(sent: list[str], problem: str) -> None:
    expected = Expected(rows=4, valid={"380670000001", "380670000002"})
    expected.opted_out = {"380670000009"}
    campaign = SimpleNamespace(name="Send at 50/s")
    with pytest.raises(BenchFailure, match=problem):
        check_sends(campaign, sends(*sent), expected)
    check_sends(campaign, sends("380670000002", "380670000001"), expected)  # exactly once


def test_a_small_run_checks_every_send_and_writes_its_figures(tmp_path: Path) -> None:
    output = tmp_path / "campaign.json"
    argv = ["--rows", "400", "--send-rows", "60", "--rate", "1000", "--high-rate", "0"]
    environment = {k: v for k, v in os.environ.items() if k != "SMSFLY_BENCH_PG_URL"}
    argv += ["--json", "--output", str(output)]
    done = subprocess.run(  # noqa: S603 - our own script, with our own arguments
        [sys.executable, "-m", "benchmarks.bench_campaign", *argv],
        check=False,
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    results = json.loads(output.read_text())
    assert json.loads(done.stdout) == results
    upload, send = results["upload"], results["send"]
    assert upload["rows"] == 400
    assert upload["counts"] == {"valid": 393, "invalid": 2, "opted_out": 2, "duplicate": 3}
    assert upload["python_peak_mib"] > 0
    assert (send["rows"], send["sendmessage"]) == (60, send["valid_rows"])
    assert results["exactly_once"] is True
    assert "send_high" not in results
