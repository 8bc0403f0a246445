"""The compatibility matrix: ``nox`` runs the suite on every supported Python x Django.

    .venv/bin/nox                      # the whole matrix (8 sessions)
    .venv/bin/nox -s "tests(3.13-6.0)"    # one cell
    .venv/bin/nox -s release           # build, check and install-test the package

Each cell runs the suite on SQLite (and on PostgreSQL too when DATABASE_URL is set),
without the browser and real-engine tests, which `make test` and CI run on one cell.
Interpreters are looked up on PATH and in pyenv (scripts/find-python).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import nox

ROOT = Path(__file__).parent
nox.options.sessions = ["tests"]
nox.options.reuse_existing_virtualenvs = True

#: (Python, Django) pairs Django supports: 5.2 on 3.10-3.13, 6.x on 3.12+.
MATRIX = [
    ("3.10", "5.2"),
    ("3.11", "5.2"),
    ("3.12", "5.2"),
    ("3.12", "6.0"),
    ("3.12", "6.1"),
    ("3.13", "5.2"),
    ("3.13", "6.0"),
    ("3.13", "6.1"),
]


def _interpreter(version: str) -> str:
    found = subprocess.run(  # noqa: S603 - our own script, a version string
        [str(ROOT / "scripts" / "find-python"), version],
        capture_output=True,
        text=True,
        check=False,
    )
    return found.stdout.strip() or f"python{version}"


@nox.session
@nox.parametrize(
    ("python", "django"),
    [(_interpreter(python), django) for python, django in MATRIX],
    ids=[f"{python}-{django}" for python, django in MATRIX],
)
def tests(session: nox.Session, django: str) -> None:
    """The suite on one Python x Django cell."""
    session.install("-e", ".[test,demo]", f"Django~={django}.0")
    session.run(
        "python", "-m", "pytest", "-m", "not browser and not engines", "-q", *session.posargs
    )


@nox.session(python=False)
def release(session: nox.Session) -> None:
    """Build the sdist and wheel, check them, and run the example project off the wheel."""
    session.run("bash", "scripts/release-check", external=True)
