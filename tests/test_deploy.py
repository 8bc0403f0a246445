"""The example project's production settings pass ``manage.py check --deploy``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parent.parent / "example_project"

PRODUCTION_ENV = {
    "DJANGO_SETTINGS_MODULE": "example_project.production",
    "DJANGO_SECRET_KEY": "k3y-" + "x7Qp2Lm9Zr4Tb8Wc1Nd6Hf0Gj5Sa3Ve" * 2,
    "DJANGO_ALLOWED_HOSTS": "sms.example.com",
    "SMSFLY_API_KEY": "0123456789abcdef0123456789abcdef0123",
}


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "SMSFLY_"))}
    clean.pop("DATABASE_URL", None)
    return subprocess.run(  # noqa: S603 - our own manage.py with fixed arguments
        [sys.executable, "manage.py", *args],
        cwd=EXAMPLE,
        env={**clean, **env, "PYTHONPATH": str(EXAMPLE.parent)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_check_deploy_is_clean_in_production_settings() -> None:
    done = _manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION_ENV)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no issues" in done.stdout
    assert PRODUCTION_ENV["SMSFLY_API_KEY"] not in done.stdout + done.stderr


def test_production_settings_refuse_to_start_without_a_secret_key() -> None:
    env = {**PRODUCTION_ENV, "DJANGO_SECRET_KEY": ""}
    done = _manage("check", env=env)
    assert done.returncode != 0
    assert "Set DJANGO_SECRET_KEY" in done.stderr


def test_the_demo_settings_are_flagged_by_check_deploy() -> None:
    """The demo's own settings are for a laptop: check --deploy says so."""
    done = _manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        env={"DJANGO_SETTINGS_MODULE": "example_project.settings"},
    )
    assert done.returncode != 0
    assert "security.W004" in done.stdout + done.stderr  # no HSTS
