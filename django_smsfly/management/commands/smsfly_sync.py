"""``manage.py smsfly_sync``: send what is queued, then ask SMS-fly for due statuses."""

from __future__ import annotations

import argparse
import signal
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import CommandError, CommandParser
from django.db import connections
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop, ngettext

from django_smsfly import campaigns, services
from django_smsfly.exceptions import SmsFlyValidationError
from django_smsfly.management.commands._common import (
    Progress,
    SmsFlyCommand,
    error_codes,
    non_negative_float,
    positive_float,
    positive_int,
)
from django_smsfly.models import Message

#: The longest single sleep of --loop: a stop request is noticed within this many seconds.
SLEEP_STEP = 1.0


class Command(SmsFlyCommand):
    """Poll SMS-fly for the statuses of messages that are due, once or in a loop."""

    help = gettext_noop(
        "First send queued messages that are due (retries, and messages queued over a "
        "minute ago whose task never came; skip with --no-send), then ask SMS-fly for the "
        "status of every message whose next check has come, and store what changed. Safe "
        "to run in several processes at once. Exit status: 0 normally, 1 if every status "
        "request failed (SMS-fly unreachable) or on an API or configuration error. With "
        "--loop it runs until interrupted (Ctrl-C or SIGTERM) and then exits with 0; a run "
        "that fails is reported and the loop goes on."
    )

    #: Replaceable in tests: how the loop waits and reads the time.
    sleep: Callable[[float], None] = staticmethod(time.sleep)
    clock: Callable[[], float] = staticmethod(time.monotonic)

    def add_arguments(self, parser: CommandParser) -> None:
        """Options: limits, concurrency, rate, --message, --loop/--interval, --no-send."""
        parser.add_argument(
            "--limit",
            type=positive_int,
            metavar="N",
            help=_("Check at most N messages (and send at most N queued ones) per run."),
        )
        parser.add_argument(
            "--batch-size",
            type=positive_int,
            metavar="N",
            help=_("Messages claimed per batch (default: SMSFLY['SYNC_BATCH_SIZE'])."),
        )
        parser.add_argument(
            "--concurrency",
            type=positive_int,
            metavar="N",
            help=_("Parallel status requests (default: SMSFLY['SYNC_CONCURRENCY'])."),
        )
        parser.add_argument(
            "--rate-limit",
            type=non_negative_float,
            metavar="R",
            help=_(
                "At most R requests per second, 0 for no limit (default: "
                "SMSFLY['SYNC_RATE_LIMIT']). SMS-fly refuses bursts."
            ),
        )
        parser.add_argument(
            "--message",
            action="append",
            metavar="ID",
            help=_(
                "Check only this message, due or not: its database id or its SMS-fly "
                "message id. Repeat for more. Sends nothing."
            ),
        )
        parser.add_argument(
            "--attach",
            action="append",
            nargs=2,
            metavar=("ID", "MESSAGE_ID"),
            help=_(
                "Repair a message whose outcome is unknown: record its SMS-fly message id "
                "(from SMS-fly's cabinet, or the ERROR log line of an outcome that could "
                "not be stored), then check its status now. Repeat for more."
            ),
        )
        parser.add_argument(
            "--loop",
            action="store_true",
            help=_("Run again every --interval seconds until interrupted."),
        )
        parser.add_argument(
            "--interval",
            type=positive_float,
            default=10.0,
            metavar="SECONDS",
            help=_("Seconds from the start of one run to the next with --loop (default 10)."),
        )
        # Hidden from --help: a loop that ends by itself, for tests and for cron jobs that
        # poll more often than once a minute (--loop --interval 10 --max-passes 6).
        parser.add_argument(
            "--max-passes",
            type=positive_int,
            metavar="N",
            help=argparse.SUPPRESS,
        )
        parser.add_argument(
            "--enqueue",
            action="store_true",
            help=_(
                "Do not do the work here: hand the due sends and status checks to the "
                "task workers (SMSFLY['TASK_BACKEND']), in batches of --batch-size."
            ),
        )
        parser.add_argument(
            "--no-send",
            action="store_true",
            help=_("Do not send queued messages; only check statuses."),
        )

    def handle(self, *args: Any, **options: Any) -> None:
        """Run once (or loop), print the report, and fail if SMS-fly never answered."""
        if options["attach"]:
            attached = [_attach(pk, message_id) for pk, message_id in options["attach"]]
            options["message"] = [*(options["message"] or []), *map(str, attached)]
        pks = _resolve(options["message"]) if options["message"] else None
        if pks is not None and options["loop"]:
            raise CommandError(_("--message checks given messages once; it cannot --loop."))
        if options["max_passes"] is not None and not options["loop"]:
            raise CommandError(_("--max-passes limits a --loop; add --loop."))
        if pks is not None and options["enqueue"]:
            raise CommandError(_("--message checks given messages here; it cannot --enqueue."))
        if options["loop"]:
            self._loop(options)
            return
        if options["enqueue"]:
            self._enqueue(options)
            return
        report = self._run(options, pks)
        self._summary(report)
        if report.checked and report.errors == report.checked:
            raise CommandError(
                _("Every status request failed (%(codes)s). Is SMS-fly reachable?")
                % {"codes": error_codes(report.error_codes)}
            )

    def _enqueue(self, options: dict[str, Any]) -> services.SyncReport:
        """Fan the due work out to the task workers; the report counts what was handed out."""
        to_send, to_poll = services.enqueue_due(
            batch_size=options["batch_size"], limit=options["limit"], send=not options["no_send"]
        )
        if to_send or to_poll or self.verbosity >= 2:
            self.say(
                _("Enqueued %(send)d to send and %(poll)d to check.")
                % {"send": to_send, "poll": to_poll}
            )
        return services.SyncReport(sent=to_send, checked=to_poll)

    def _run(self, options: dict[str, Any], pks: list[int] | None) -> services.SyncReport:
        """One pass (the same one the ``sync_due`` task runs), with a progress line."""
        if options["enqueue"]:
            return self._enqueue(options)
        progress = Progress(self.stdout, enabled=self.verbosity >= 1, clock=self.clock)
        # A batch's line is printed when the next batch arrives: the last one would only
        # repeat the summary that follows the pass, in another format.
        held: str | None = None

        def on_batch(running: services.SyncReport) -> None:
            nonlocal held
            line = _progress_line(running, progress.rate(running.checked))
            if progress.enabled:
                progress.update(line)
                return
            if held is not None:
                self.say(held, level=2)
            held = line

        if pks is None and not options["no_send"]:
            # Scheduled campaigns whose time has come, runners that died.
            campaigns.start_due()
        if pks is None:
            # Campaigns that are over and all final keep their counts for the list.
            campaigns.settle()
        try:
            return services.run_sync_pass(
                limit=options["limit"],
                batch_size=options["batch_size"],
                concurrency=options["concurrency"],
                rate_limit=options["rate_limit"],
                message_pks=pks,
                send=not options["no_send"],
                progress=on_batch,
            )
        finally:
            # The summary takes the in-place line's place.
            progress.clear()

    def _summary(self, report: services.SyncReport, *, prefix: str = "") -> None:
        self.say(prefix + str(report))
        if report.error_codes:
            self.say(_("Errors by code: %(codes)s") % {"codes": error_codes(report.error_codes)})

    def _loop(self, options: dict[str, Any]) -> None:
        """Run every ``--interval`` seconds until Ctrl-C or SIGTERM; both end with status 0.

        A run that raises (the database or SMS-fly failing in a way the sync does not
        absorb) is reported on stderr and the loop goes on; only a configuration error
        ends it, since no later run can succeed. ``--max-passes`` ends it after that
        many runs, with status 1 if every one of them failed.
        """
        stop = _StopFlag()
        total = services.SyncReport()
        interval: float = options["interval"]
        max_passes: int | None = options["max_passes"]
        runs = failed = 0
        with stop.on_sigterm():
            try:
                while not stop.requested:
                    started = self.clock()
                    stamp = timezone.localtime().strftime("%H:%M:%S")
                    try:
                        report = self._run(options, None)
                    except ImproperlyConfigured:
                        raise  # no later run can succeed
                    except Exception as exc:  # a service must outlive a bad run
                        failed += 1
                        self.warn(
                            _("[%(time)s] Run failed: %(error)s")
                            % {"time": stamp, "error": _describe(exc)}
                        )
                    else:
                        total.add(report)
                        # Quiet rounds are only worth a line when asked for more detail;
                        # with --enqueue, _enqueue() has said what it handed out.
                        busy = report.checked or report.sent
                        if not options["enqueue"] and (busy or self.verbosity >= 2):
                            self._summary(report, prefix=f"[{stamp}] ")
                    finally:
                        _recycle_connections()
                    runs += 1
                    if max_passes is not None and runs >= max_passes:
                        break
                    self._wait(interval - (self.clock() - started), stop)
            except KeyboardInterrupt:
                pass  # Ctrl-C is how a loop is meant to end
        self.say(
            ngettext(
                "Stopped after %(runs)d run. Total: %(report)s",
                "Stopped after %(runs)d runs. Total: %(report)s",
                runs,
            )
            % {"runs": runs, "report": total}
        )
        if failed:
            self.warn(
                ngettext("%(failed)d run failed.", "%(failed)d runs failed.", failed)
                % {"failed": failed}
            )
        if max_passes is not None and failed == runs:
            raise CommandError(_("Every run failed; see the errors above."))

    def _wait(self, seconds: float, stop: _StopFlag) -> None:
        # Short steps, so a SIGTERM is acted on within a second, not after the interval.
        deadline = self.clock() + seconds
        while not stop.requested:
            remaining = deadline - self.clock()
            if remaining <= 0:
                return
            self.sleep(min(remaining, SLEEP_STEP))


class _StopFlag:
    """Set by SIGTERM, so a service manager's stop ends the loop between runs."""

    def __init__(self) -> None:
        self.requested = False

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.requested = True

    def on_sigterm(self) -> _SigtermHandler:
        """A context that routes SIGTERM here while it is active."""
        return _SigtermHandler(self._handle)


class _SigtermHandler:
    def __init__(self, handler: Callable[[int, FrameType | None], None]) -> None:
        self._handler = handler
        self._previous: Any = None
        self._installed = False

    def __enter__(self) -> None:
        try:
            self._previous = signal.signal(signal.SIGTERM, self._handler)
            self._installed = True
        except ValueError:
            pass  # not the main thread: signals cannot be caught here, Ctrl-C still works

    def __exit__(self, *exc: object) -> None:
        if self._installed:
            signal.signal(signal.SIGTERM, self._previous)


def _describe(exc: BaseException) -> str:
    """``DatabaseError: database is locked``: the kind of failure and its text, on one line."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _recycle_connections() -> None:
    """Close database connections that broke or outlived ``CONN_MAX_AGE``.

    What Django does at the end of every request; a loop has no requests, and without
    it a connection lost once (a database restart) would fail every later run. A
    connection inside a caller's transaction (a test's) is left alone.
    """
    for connection in connections.all(initialized_only=True):
        if not connection.in_atomic_block:
            connection.close_if_unusable_or_obsolete()


def _progress_line(report: services.SyncReport, rate: float) -> str:
    return _(
        "checked %(checked)d · changed %(changed)d · final %(final)d · errors %(errors)d"
        " · %(rate).1f/s"
    ) % {
        "checked": report.checked,
        "changed": report.changed,
        "final": report.final,
        "errors": report.errors,
        "rate": rate,
    }


def _attach(pk: str, message_id: str) -> int:
    """Attach ``message_id`` to message ``pk`` (its outcome unknown); its primary key."""
    if not str(pk).strip().isdigit():
        raise CommandError(
            _("--attach takes a message's database id, not %(value)r.") % {"value": pk}
        )
    try:
        message = services.attach_message_id(int(pk), message_id)
    except SmsFlyValidationError as exc:
        raise CommandError(
            _("Message %(pk)s: %(error)s") % {"pk": pk, "error": exc.reason}
        ) from exc
    return message.pk


def _resolve(values: list[str]) -> list[int]:
    """Database ids of the messages named by database id or SMS-fly message id."""
    pks: list[int] = []
    for value in values:
        text = str(value).strip()
        # An SMS-fly id wins: it is unambiguous, while digits might be either.
        message = Message.objects.filter(message_id=text).first() if text else None
        if message is None and text.isdigit():
            message = Message.objects.filter(pk=int(text)).first()
        if message is None:
            raise CommandError(
                _("No message has the id or SMS-fly message id %(value)r.") % {"value": text}
            )
        if not message.message_id:
            raise CommandError(
                _(
                    "Message %(pk)d has no SMS-fly message id (it is %(state)s): there is "
                    "no status to ask for."
                )
                % {"pk": message.pk, "state": message.get_state_display()}
            )
        if message.pk not in pks:
            pks.append(message.pk)
    return pks
