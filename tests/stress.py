"""Many pollers on the same messages at once: statuses only move forward, whatever the
interleaving.

Threads poll a handful of messages side by side, some through claimed batches (as
``smsfly_sync`` does), some by primary key (as "Refresh status now" does). Every
status reply is drawn at random from the channel's path, so replies arrive out of
order, repeated, and late. Afterwards each channel's history must be one forward chain
ending in what is stored, that end must be the furthest status any reply carried, and
``status_changed`` must have fired once per history row.

Run in the test process on PostgreSQL, and as ``python -m tests.stress MESSAGES POLLERS
POLLS`` (with ``DATABASE_URL`` naming an SQLite file) for SQLite, whose in-memory test
database threads cannot share.
"""

from __future__ import annotations

import itertools
import random
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Mapping
from typing import Any

from django.db import connections
from django.test import override_settings
from django.utils import timezone

from tests.workers import run_together

#: Each channel's path: replies are drawn from it at random (no two competing finals, so
#: the furthest status carried is the one right answer whatever the order).
PATHS = {
    "viber": ["ACCEPTD", "INPROGRESS", "SENT", "DELIVRD", "VIEWED"],
    "sms": ["ACCEPTD", "PENDING", "SENT", "DELIVRD"],
}


def run_poller_stress(*, messages: int, pollers: int, polls_per_poller: int) -> dict[str, Any]:
    """Run the stress; ``{"violations": [...], "polls": iterations run}``."""
    from django.conf import settings

    from django_smsfly import services, signals
    from django_smsfly.backends.base import RawReply
    from tests.scripted import SCRIPT, status_reply

    smsfly = {**settings.SMSFLY, "BACKEND": "tests.scripted.ScriptedBackend", "API_KEY": "stress"}
    lock = threading.Lock()
    furthest: dict[tuple[str, str], int] = {}
    moves: Counter[tuple[int, str]] = Counter()

    def on_status(message: Any, channel: Any, **kwargs: Any) -> None:
        with lock:
            moves[(message.pk, str(channel))] += 1

    def statuses(body: Mapping[str, Any]) -> RawReply:
        mid = str(body["data"]["messageID"])
        rng = random.Random()
        picked = {}
        with lock:
            for channel, path in PATHS.items():
                index = rng.randrange(len(path))
                picked[channel] = path[index]
                furthest[(mid, channel)] = max(furthest.get((mid, channel), 0), index)
        time.sleep(rng.random() * 0.004)  # replies overtake one another
        return status_reply(mid, **picked)

    signals.status_changed.connect(on_status, weak=False)
    try:
        with override_settings(SMSFLY=smsfly):
            SCRIPT.on("GETMESSAGESTATUS", statuses)
            pks = [
                services.send_viber(
                    "380501234567", text=f"Hi {i}", sms_text=f"Hi {i}", source="Promo"
                ).pk
                for i in range(messages)
            ]
            iterations = _run_pollers(pks, pollers, polls_per_poller)
            violations = _check(pks, furthest, moves)
    finally:
        SCRIPT.clear()
        signals.status_changed.disconnect(on_status)
    return {"violations": violations, "polls": iterations}


def _run_pollers(pks: list[int], pollers: int, polls: int) -> int:
    from django_smsfly import services
    from django_smsfly.models import Message

    def poller(seed: int) -> int:
        rng = random.Random(seed)
        for _ in range(polls):
            if rng.random() < 0.4:  # the sync loop: claim what is due, in batches
                # Due as time makes them due: one row at a time (a multi-row UPDATE in
                # random order is a deadlock of the test's own making).
                for pk in rng.sample(pks, 3):
                    Message.objects.filter(pk=pk).update(next_check_at=timezone.now())
                services.sync_statuses(limit=3, batch_size=2, concurrency=2, rate_limit=0)
            else:  # "Refresh status now" on one message
                services.sync_statuses(message_pks=[rng.choice(pks)], concurrency=1, rate_limit=0)
        return polls

    return sum(run_together(pollers, poller, timeout=240))


def _check(
    pks: list[int], furthest: dict[tuple[str, str], int], moves: Counter[tuple[int, str]]
) -> list[str]:
    from django_smsfly.models import ChannelStatus, Message, StatusChange
    from django_smsfly.statuses import DeliveryStatus

    violations: list[str] = []
    chains: dict[tuple[int, str], list[tuple[str, str]]] = defaultdict(list)
    for message_pk, channel, old, new in (
        StatusChange.objects.filter(message_id__in=pks)
        .order_by("pk")
        .values_list("message_id", "channel", "old_status", "new_status")
    ):
        chains[(message_pk, channel)].append((old, new))
    for message in Message.objects.filter(pk__in=pks):
        rows = {row.channel: row.status for row in ChannelStatus.objects.filter(message=message)}
        for channel in [*PATHS, ""]:
            chain = chains[(message.pk, channel)]
            where = f"message {message.pk} {channel or 'overall'}"
            stored = rows.get(channel) if channel else message.status
            if not chain or chain[0][0] != "queued":
                violations.append(f"{where}: history does not start at queued: {chain}")
                continue
            for (_, before), (after_old, after_new) in itertools.pairwise(chain):
                if after_old != before:
                    violations.append(f"{where}: broken chain {chain}")
                if DeliveryStatus(after_new).rank <= DeliveryStatus(after_old).rank:
                    violations.append(f"{where}: moved back {chain}")
            if chain[-1][1] != stored:
                violations.append(f"{where}: stores {stored} but history ends {chain[-1][1]}")
            if channel:
                if moves[(message.pk, channel)] != len(chain):
                    violations.append(
                        f"{where}: {moves[(message.pk, channel)]} signals for {len(chain)} moves"
                    )
                index = furthest.get((message.message_id or "", channel))
                expected = "accepted" if index is None else _normalized(PATHS[channel][index])
                if DeliveryStatus(expected).rank > DeliveryStatus(str(stored)).rank:
                    violations.append(f"{where}: stores {stored}, a reply said {expected}")
    return violations


def _normalized(raw: str) -> str:
    from django_smsfly.statuses import DeliveryStatus

    status = DeliveryStatus.from_raw(raw)
    return status.value if status is not None else "accepted"


def main(argv: list[str]) -> None:
    """``python -m tests.stress MESSAGES POLLERS POLLS``: print the outcome as JSON."""
    import json
    import os

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django

    django.setup()
    from django.core.management import call_command

    # Six writers on one file on a busy machine: wait longer than Django's 5 s for the
    # write lock, so what is measured is correctness, not the machine's load.
    connections["default"].settings_dict.setdefault("OPTIONS", {})["timeout"] = 60

    call_command("migrate", verbosity=0)
    messages, pollers, polls = (int(value) for value in argv[:3])
    outcome = run_poller_stress(messages=messages, pollers=pollers, polls_per_poller=polls)
    print(json.dumps(outcome))


if __name__ == "__main__":
    main(sys.argv[1:])
