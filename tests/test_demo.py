"""The example project: its settings, and the demo that ``make demo`` runs.

Everything runs in subprocesses on a copy of ``example_project/`` in a temporary
directory, so a developer's own ``example_project/.env`` or ``db.sqlite3`` never
changes what is tested (nor is touched).
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.contrib.example_site import clean_env, copy_project, free_port

pytest.importorskip("environ", reason="the example project needs django-environ (the demo extra)")

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "example_project"
SANDBOX = "django_smsfly.backends.sandbox.SandboxBackend"
HTTP = "django_smsfly.backends.http.HTTPBackend"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the example project (no .env, no database), as on a fresh clone."""
    return copy_project(tmp_path)


def python(project: Path, *args: str, env: dict[str, str], timeout: float = 60) -> str:
    """Run Python in the project's directory; its stdout (a failure shows stderr)."""
    done = subprocess.run(  # noqa: S603
        [sys.executable, *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def manage(project: Path, *args: str, env: dict[str, str]) -> str:
    return python(project, "manage.py", *args, env=env)


SHOW_SETTINGS = """
import json
from example_project import settings as s
print(json.dumps({
    "SMSFLY": s.SMSFLY,
    "DATABASE": s.DATABASES["default"],
    "DEBUG": s.DEBUG,
    "SECRET_KEY": s.SECRET_KEY,
    "ALLOWED_HOSTS": s.ALLOWED_HOSTS,
    "LANGUAGE_CODE": s.LANGUAGE_CODE,
    "TIME_ZONE": s.TIME_ZONE,
    "DEMO_SYNC_INTERVAL": s.DEMO_SYNC_INTERVAL,
}, default=str))
"""


def load_settings(project: Path, **env: str) -> dict[str, Any]:
    """The example project's settings as imported with the given environment."""
    result: dict[str, Any] = json.loads(python(project, "-c", SHOW_SETTINGS, env=clean_env(**env)))
    return result


# -- settings -------------------------------------------------------------------------------


def test_without_a_key_the_demo_needs_nothing(project: Path) -> None:
    settings = load_settings(project)
    assert settings["SMSFLY"] == {
        "SMS_SOURCE": "InfoCenter",
        "VIBER_SOURCE": "Promo",
        "BACKEND": SANDBOX,
        "BACKEND_OPTIONS": {"speed": 0.5, "state_file": str(project / "sandbox-account.json")},
    }
    assert settings["DATABASE"]["ENGINE"] == "django.db.backends.sqlite3"
    assert settings["DATABASE"]["NAME"] == str(project / "db.sqlite3")
    assert settings["DEBUG"] is True
    assert settings["ALLOWED_HOSTS"] == ["127.0.0.1", "localhost"]
    assert settings["LANGUAGE_CODE"] == "en"
    assert settings["DEMO_SYNC_INTERVAL"] == 5.0


def test_with_a_key_messages_go_to_the_real_api(project: Path) -> None:
    settings = load_settings(
        project,
        SMSFLY_API_KEY="key-from-the-account",
        SMSFLY_API_URL="https://sms-fly.pl/api/v2/api.php",
        SMSFLY_SMS_SOURCE="MyShop",
    )
    assert settings["SMSFLY"] == {
        "SMS_SOURCE": "MyShop",
        "VIBER_SOURCE": "Promo",
        "BACKEND": HTTP,
        "API_KEY": "key-from-the-account",
        "API_URL": "https://sms-fly.pl/api/v2/api.php",
    }


def test_an_empty_key_means_the_sandbox(project: Path) -> None:
    assert load_settings(project, SMSFLY_API_KEY="  ")["SMSFLY"]["BACKEND"] == SANDBOX


def test_settings_are_read_from_a_dotenv_file_next_to_manage_py(project: Path) -> None:
    (project / ".env").write_text(
        "SMSFLY_API_KEY=key-in-the-file\n"
        "DJANGO_DEBUG=0\n"
        "DJANGO_SECRET_KEY='a#secret with spaces'\n"
        "DJANGO_ALLOWED_HOSTS=demo.example.com,127.0.0.1\n"
        "DJANGO_LANGUAGE_CODE=uk\n"
        "DEMO_SYNC_INTERVAL=2.5\n"
        "DATABASE_URL=postgres://demo:pw@127.0.0.1:5432/smsfly_demo\n",
        encoding="utf-8",
    )
    settings = load_settings(project)
    assert settings["SMSFLY"]["BACKEND"] == HTTP
    assert settings["SMSFLY"]["API_KEY"] == "key-in-the-file"
    assert settings["DEBUG"] is False
    assert settings["SECRET_KEY"] == "a#secret with spaces"
    assert settings["ALLOWED_HOSTS"] == ["demo.example.com", "127.0.0.1"]
    assert settings["LANGUAGE_CODE"] == "uk"
    assert settings["DEMO_SYNC_INTERVAL"] == 2.5
    database = settings["DATABASE"]
    assert database["ENGINE"] == "django.db.backends.postgresql"
    assert (database["NAME"], database["USER"], database["HOST"]) == (
        "smsfly_demo",
        "demo",
        "127.0.0.1",
    )
    # SQLite's locking options are for SQLite only.
    assert "transaction_mode" not in database.get("OPTIONS", {})


def test_the_environment_wins_over_the_dotenv_file(project: Path) -> None:
    (project / ".env").write_text(
        "SMSFLY_API_KEY=key-in-the-file\nDJANGO_LANGUAGE_CODE=uk\n", encoding="utf-8"
    )
    settings = load_settings(project, SMSFLY_API_KEY="", DJANGO_LANGUAGE_CODE="en")
    assert settings["SMSFLY"]["BACKEND"] == SANDBOX
    assert settings["LANGUAGE_CODE"] == "en"


def test_the_example_env_file_documents_every_variable_the_settings_read() -> None:
    source = (EXAMPLE / "example_project" / "settings.py").read_text(encoding="utf-8")
    read = set(re.findall(r'env\.(?:str|bool|list|float|int|db_url)\(\s*"([A-Z_]+)"', source))
    example = (EXAMPLE / ".env.example").read_text(encoding="utf-8")
    documented = set(re.findall(r"^# ([A-Z_]+)=", example, flags=re.MULTILINE))
    assert "SMSFLY_API_KEY" in read
    assert read == documented


# -- the demo -------------------------------------------------------------------------------


def test_a_message_sent_by_the_site_is_delivered_by_the_sync_loop(project: Path) -> None:
    """The demo's two processes: the site sends, ``smsfly_sync --loop`` follows it up."""
    env = clean_env(SMSFLY_SANDBOX_SPEED="1000")  # delivered 6 ms after the send
    manage(project, "migrate", "--no-input", "-v", "0", env=env)
    manage(
        project,
        "shell",
        "-c",
        "import datetime as dt; from django.utils import timezone;"
        "from django_smsfly import send_sms; from django_smsfly.models import Message;"
        "message = send_sms('050 123 4567', 'Hello from the demo');"
        # As if the ten seconds to its first check had passed.
        "Message.objects.filter(pk=message.pk).update("
        "next_check_at=timezone.now() - dt.timedelta(seconds=1))",
        env=env,
    )
    out = manage(
        project, "smsfly_sync", "--loop", "--interval", "0.2", "--max-passes", "3", env=env
    )
    lines = out.splitlines()
    assert re.fullmatch(r"\[\d\d:\d\d:\d\d\] checked 1, changed 1, final 1, errors 0", lines[0])
    assert lines[-1] == "Stopped after 3 runs. Total: checked 1, changed 1, final 1, errors 0"
    status = manage(
        project,
        "shell",
        "-c",
        "from django_smsfly.models import Message; m = Message.objects.get();"
        "print(m.status, [(c.channel, c.status) for c in m.channel_statuses.all()])",
        env=env,
    )
    assert status.strip().splitlines()[-1] == "delivered [('sms', 'delivered')]"


def test_the_demos_processes_share_one_sandbox_account(project: Path) -> None:
    """Issue 13: the admin showed 990.689 while smsfly_balance beside it said 1000.000."""
    env = clean_env(SMSFLY_SANDBOX_SPEED="1000")
    manage(project, "migrate", "--no-input", "-v", "0", env=env)
    assert manage(project, "smsfly_balance", env=env) == "Balance: 1000.000\n"
    manage(project, "smsfly_send", "--to", "050 123 4567", "--text", "Hi", env=env)
    # Another process, another simulator: the same account.
    assert manage(project, "smsfly_balance", env=env) == "Balance: 999.521\n"


class Demo:
    """``run_demo.py`` in a subprocess, its output read line by line in a thread."""

    def __init__(self, project: Path) -> None:
        self.project = project
        self.port = free_port()
        self.process = subprocess.Popen(  # noqa: S603
            [sys.executable, "run_demo.py", f"127.0.0.1:{self.port}", "--interval", "0.5"],
            cwd=project,
            env=clean_env(PYTHONUNBUFFERED="1"),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            # Its own process group: the test can reach (and kill) everything it started.
            start_new_session=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)
        self.lines.put(None)  # the end of the output

    def read_until(self, text: str | None, timeout: float) -> str:
        """The output up to the first line containing ``text`` (``None``: to the end)."""
        seen: list[str] = []
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                if text is None:
                    return "".join(seen)
                break
            seen.append(line)
            if text is not None and text in line:
                return "".join(seen)
        raise AssertionError(f"{text!r} not seen in:\n{''.join(seen)}")

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)


@pytest.fixture
def demo(project: Path) -> Iterator[Demo]:
    """``run_demo.py`` running on a free port; whatever it started is killed afterwards."""
    running = Demo(project)
    try:
        yield running
    finally:
        running.kill()


def test_the_demo_runs_the_site_and_the_sync_and_stops_both(demo: Demo) -> None:
    output = demo.read_until("Stop the demo with Ctrl+C", timeout=60)
    base = f"http://127.0.0.1:{demo.port}"
    assert f"{base}/admin/" in output
    assert "Log in as 'admin' with the password 'admin'." in output
    assert "Messages go to the sandbox" in output
    assert "...0004 refused (INVRECIPIENT)" in output  # the sandbox's test numbers

    session = requests.Session()
    login = session.get(f"{base}/admin/login/", timeout=10)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text)
    assert token is not None
    page = session.post(
        f"{base}/admin/login/?next=/admin/",
        data={"username": "admin", "password": "admin", "csrfmiddlewaretoken": token[1]},
        timeout=10,
    )
    assert page.url == f"{base}/admin/"
    assert 'action="/admin/logout/"' in page.text
    # The English/Ukrainian switch is on every admin page of the demo, the index too.
    assert 'id="smsfly-language"' in page.text

    # Background sending is done by the demo's worker, not inline (issue 13).
    assert "task worker (db_worker)" in output
    queued = manage(
        demo.project,
        "shell",
        "-c",
        "from django_smsfly import send_sms; print(send_sms('050 123 4567', 'Hi', defer=True).pk)",
        env=clean_env(),
    )
    pk = int(queued.strip().splitlines()[-1])
    state = ""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and state != "accepted":
        time.sleep(0.5)
        state = manage(
            demo.project,
            "shell",
            "-c",
            f"from django_smsfly.models import Message; print(Message.objects.get(pk={pk}).state)",
            env=clean_env(),
        ).splitlines()[-1]
    assert state == "accepted"

    demo.process.send_signal(signal.SIGTERM)
    assert demo.process.wait(30) == 0
    rest = demo.read_until(None, timeout=10)
    # The sync loop was told to stop, and said so on its way out.
    assert re.search(r"Stopped after \d+ runs?\. Total: ", rest), rest
    # Nothing it started is left running.
    with pytest.raises(ProcessLookupError):
        os.killpg(demo.process.pid, 0)


def test_the_demo_says_when_its_port_is_taken_instead_of_claiming_to_run(
    project: Path,
) -> None:
    """Issue 13: with port 8000 taken the demo printed "is running" and then failed."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(  # noqa: S603
            [sys.executable, "run_demo.py", f"127.0.0.1:{port}"],
            cwd=project,
            env=clean_env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 2
    assert f"Port {port} on 127.0.0.1 is taken" in done.stderr
    assert f"DEMO_ADDR=127.0.0.1:{port + 1}" in done.stderr
    assert "is running" not in done.stdout


@pytest.mark.parametrize(
    ("addr", "expected"),
    [
        ("8000", ("127.0.0.1", 8000)),
        ("127.0.0.1:8011", ("127.0.0.1", 8011)),
        ("0.0.0.0:8000", ("127.0.0.1", 8000)),
        ("[::1]:8000", ("::1", 8000)),
    ],
)
def test_the_demo_shows_a_url_for_any_runserver_address(
    addr: str, expected: tuple[str, int]
) -> None:
    sys.path.insert(0, str(EXAMPLE))
    try:
        import run_demo
    finally:
        sys.path.remove(str(EXAMPLE))
    assert run_demo.split_addr(addr) == expected
