"""The example site, served by ``manage.py runserver`` in a subprocess, for tests that use
its pages as a visitor would (with ``requests`` or a browser).

It runs on a copy of ``example_project/`` in a temporary directory with its own SQLite
database, and none of the developer's ``.env`` or environment variables: out of the box,
as ``make demo`` runs it (DEBUG on, the sandbox backend).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "example_project"
#: The variables the example's settings read: none may leak in from the tests' own.
SETTINGS_VARIABLE = re.compile(r"^(SMSFLY_|DJANGO_|DEMO_|DATABASE_URL$)")
STARTUP_TIMEOUT = 60.0


def clean_env(**values: str) -> dict[str, str]:
    """This environment without the example's variables, importing this checkout."""
    env = {name: value for name, value in os.environ.items() if not SETTINGS_VARIABLE.match(name)}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.update(values)
    return env


def copy_project(target: Path) -> Path:
    """A copy of the example project in ``target`` (no .env, no database)."""
    project = target / "example_project"
    shutil.copytree(
        EXAMPLE, project, ignore=shutil.ignore_patterns(".env", "db.sqlite3*", "__pycache__")
    )
    return project


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class ExampleSite:
    """The running site: its ``url`` and the copy of the project it runs from."""

    url: str
    project: Path
    env: Mapping[str, str]

    def manage(self, *args: str) -> str:
        """Run ``manage.py`` in the site's project (and database); its stdout."""
        done = subprocess.run(  # noqa: S603 - our own manage.py
            [sys.executable, "manage.py", *args],
            cwd=self.project,
            env=dict(self.env),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    def shell(self, code: str) -> str:
        """Run Python in the site's ``manage.py shell``; what it printed."""
        return self.manage("shell", "-c", code)

    def add_user_with_phone(self, username: str, password: str, number: str) -> None:
        """A user whose two-factor device is an SMS phone (two-factor's ``PhoneDevice``)."""
        self.shell(
            "from django.contrib.auth.models import User;"
            "from two_factor.plugins.phonenumber.models import PhoneDevice;"
            f"user = User.objects.create_user({username!r}, password={password!r});"
            "PhoneDevice.objects.create("
            f"user=user, name='default', number={number!r}, method='sms')"
        )


@contextlib.contextmanager
def running_example_site(workdir: Path, **env: str) -> Iterator[ExampleSite]:
    """Migrate a fresh copy of the example site, serve it, stop it afterwards."""
    project = copy_project(workdir)
    site_env = clean_env(**env)
    port = free_port()
    site = ExampleSite(url=f"http://127.0.0.1:{port}", project=project, env=site_env)
    site.manage("migrate", "--no-input", "-v", "0")
    done = subprocess.run(
        [sys.executable, "bootstrap.py"],
        cwd=project,
        env=site_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "admin" in done.stdout
    log = (workdir / "runserver.log").open("w")
    server = subprocess.Popen(  # noqa: S603
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        cwd=project,
        env=site_env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        _wait_until_listening(port, server, workdir / "runserver.log")
        yield site
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:  # pragma: no cover - a server that hangs
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(10)
        log.close()


def _wait_until_listening(port: int, server: subprocess.Popen[Any], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline and server.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"the example site did not start:\n{log.read_text()}")


class Visitor:
    """A ``requests`` session on the site that posts forms with their CSRF token."""

    def __init__(self, site: ExampleSite, *, language: str = "en") -> None:
        self.site = site
        self.session = requests.Session()
        self.session.headers["Accept-Language"] = language

    def get(self, path: str) -> requests.Response:
        return self.session.get(self.site.url + path, timeout=10)

    def post(self, path: str, data: Mapping[str, str]) -> requests.Response:
        """Post ``data`` to ``path`` (its page is read first for the CSRF cookie)."""
        if "csrftoken" not in self.session.cookies:
            self.get(path)
        form = {**data, "csrfmiddlewaretoken": self.session.cookies["csrftoken"]}
        return self.session.post(self.site.url + path, data=form, timeout=10)
