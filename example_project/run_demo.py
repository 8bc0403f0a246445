"""Run the demo: the example site, with the status sync running beside it.

From this directory (``make demo`` runs it for you)::

    python run_demo.py [ADDR] [--interval SECONDS]

It migrates the database, creates the ``admin`` user (see ``bootstrap.py``), starts
``manage.py smsfly_sync --loop`` as a child process, so sent messages move on to
"delivered" by themselves, ``manage.py db_worker`` (django-tasks-db's worker), which
runs background sends and campaigns, and ``manage.py runserver ADDR`` (default
``127.0.0.1:8000``). Once the site answers it prints where and how to log in, and
where to try a one-time code (``/verify/``) and two-factor login (``/account/login/``).
Ctrl+C (or SIGTERM) stops them all; the server stopping on its own stops the others too.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

import django

HERE = Path(__file__).resolve().parent
MANAGE = HERE / "manage.py"

#: Seconds to wait for the site to answer before giving up on printing the banner.
STARTUP_TIMEOUT = 60.0
#: Seconds a child gets to stop by itself after Ctrl+C, and after SIGTERM before a kill.
GRACE = 3.0
STOP_TIMEOUT = 10.0


class _Terminated(Exception):
    """SIGTERM arrived: stop everything as Ctrl+C would."""


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise _Terminated


def split_addr(addr: str) -> tuple[str, int]:
    """The host to open in a browser and the port of a runserver address.

    ``8000``, ``127.0.0.1:8000``, ``0.0.0.0:8000`` and ``[::1]:8000`` are accepted, as by
    runserver; a wildcard host is shown as ``127.0.0.1``.
    """
    host, sep, port = addr.rpartition(":")
    if not sep:
        host, port = "", addr
    host = host.strip("[]")
    if host in {"", "0", "0.0.0.0", "::"}:  # noqa: S104 - names a wildcard, binds nothing
        host = "127.0.0.1"
    return host, int(port)


def port_taken(host: str, port: int) -> bool:
    """Whether something already listens on the address runserver is to use."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # Binding is the question runserver will ask; SO_REUSEADDR as runserver sets it,
        # so a port left in TIME_WAIT by an earlier demo does not count as taken.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


#: What the sandbox's test numbers do (any Ukrainian number with that ending).
TEST_NUMBER_LINES = (
    "Sandbox test numbers (any 380 number with that ending; every other is delivered):",
    "  ...0001 undelivered   ...0002 Viber fails, SMS delivered   ...0003 expires",
    "  ...0004 refused (INVRECIPIENT)   ...0005 stopped   ...0006 stop-listed (ERRPHONES)",
)


def _start(*args: str) -> subprocess.Popen[bytes]:
    # The children share this terminal (and its Ctrl+C) and write to it directly.
    return subprocess.Popen([sys.executable, str(MANAGE), *args], cwd=HERE)  # noqa: S603


def _listening(host: str, port: int, server: subprocess.Popen[bytes]) -> bool:
    """Wait until the server accepts connections; False if it stopped or never answered."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline and server.poll() is None:
        try:
            with socket.create_connection((host, port), timeout=1):
                return True
        except OSError:
            time.sleep(0.2)
    return False


def _stop(child: subprocess.Popen[bytes], grace: float) -> None:
    """Give a child ``grace`` seconds to finish by itself, then SIGTERM, then kill it."""
    for step, timeout in ((None, grace), (child.terminate, STOP_TIMEOUT), (child.kill, None)):
        if step is not None:
            step()
        try:
            child.wait(timeout)
        except subprocess.TimeoutExpired:
            continue
        return


def _banner(
    url: str, login: str, where: str, interval: float, site: str, *, sandbox: bool = True
) -> str:
    rule = "=" * 78
    numbers = [f"  {line}" for line in TEST_NUMBER_LINES] if sandbox else []
    return "\n".join(
        [
            rule,
            f"  The django-smsfly demo is running: {url}",
            f"  {login}",
            f"  {where}",
            f"  Verify a phone with a one-time code: {site}/verify/",
            f"  Two-factor login (turn it on in the two-factor settings): {site}/account/login/",
            "  Send one from Messages -> Send a message (or with manage.py smsfly_send):",
            f"  its status is checked every {interval:g} s by smsfly_sync --loop and reaches",
            '  "delivered" within about half a minute.',
            "  Running: the site (runserver), the status sync (smsfly_sync --loop) and a",
            "  task worker (db_worker) for background sends and campaigns.",
            *numbers,
            "  Stop the demo with Ctrl+C.",
            rule,
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Prepare the database, run the site and the sync, and stop both together."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "addr",
        nargs="?",
        default="127.0.0.1:8000",
        help="the address runserver listens on (default 127.0.0.1:8000)",
    )
    parser.add_argument(
        "--interval",
        type=float,
        help="seconds between status checks (default: DEMO_SYNC_INTERVAL, 5)",
    )
    args = parser.parse_args(argv)
    host, port = split_addr(args.addr)
    if port_taken(host, port):
        print(
            f"Port {port} on {host} is taken: another program (an earlier demo?) listens "
            "there.\nStop it, or run the demo on another address, e.g. "
            f"`make demo DEMO_ADDR={host}:{port + 1}` (or `python run_demo.py {port + 1}`).",
            file=sys.stderr,
        )
        return 2

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_project.settings")
    django.setup()
    import bootstrap  # noqa: PLC0415 - this directory's module, after django.setup()
    from django.conf import settings  # noqa: PLC0415 - needs django.setup() first
    from django.core.management import call_command  # noqa: PLC0415
    from django.db import connections  # noqa: PLC0415

    from django_smsfly.conf import smsfly_settings  # noqa: PLC0415

    call_command("migrate", interactive=False, verbosity=1)
    bootstrap.ensure_site_name()
    login = bootstrap.ensure_admin()
    connections.close_all()  # the children open their own
    interval = args.interval or float(getattr(settings, "DEMO_SYNC_INTERVAL", 5.0))
    if smsfly_settings.uses_sandbox:
        where = "Messages go to the sandbox: nothing is sent, no network is used."
    else:
        where = f"Messages go to SMS-fly ({smsfly_settings.API_URL}): they are real."

    url_host = f"[{host}]" if ":" in host else host
    site = f"http://{url_host}:{port}"
    url = f"{site}/admin/"
    signal.signal(signal.SIGTERM, _on_sigterm)
    children: list[subprocess.Popen[bytes]] = []
    code = 0
    # Ctrl+C reaches the children too (they share the terminal): let them finish by
    # themselves. After SIGTERM, or when the server stopped, they are told to stop.
    grace = 0.0
    try:
        children.append(_start("smsfly_sync", "--loop", "--interval", f"{interval:g}"))
        # The task worker: "Send in the background", smsfly_send --defer and campaigns
        # run here, as they would on a production worker.
        children.append(_start("db_worker", "--interval", "0.5", "--no-startup-delay"))
        server = _start("runserver", args.addr, "--noreload")
        children.append(server)
        if _listening(host, port, server):
            banner = _banner(
                url,
                bootstrap.describe(login),
                where,
                interval,
                site,
                sandbox=smsfly_settings.uses_sandbox,
            )
            print(banner, flush=True)
        code = server.wait()
    except KeyboardInterrupt:
        grace = GRACE
    except _Terminated:
        pass
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second one must not cut this short
        # The server first, so nothing new is sent while the sync winds down.
        for child in reversed(children):
            _stop(child, grace)
    return code


if __name__ == "__main__":
    sys.exit(main())
