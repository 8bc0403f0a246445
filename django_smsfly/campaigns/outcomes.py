"""A campaign's outcome counts, as the campaign list shows them: counted from its
messages while they may change, kept on the campaign once they cannot.

The list shows each campaign's messages handled, delivered and failed, and what they
cost. Counting them reads every message of every campaign on the page: a year of
campaigns of 100,000 rows is millions of rows for each view of the list. Once a
campaign is finished or cancelled and every one of its messages is final
(:attr:`~django_smsfly.models.Message.is_final`: failed, unknown, or accepted and no
longer polled), nothing changes those counts on their own. :func:`settle`, run by every
sync pass, then writes them on the campaign (``settled_*``), and :func:`with_outcomes`
reads them from there; only the campaigns still moving are counted.

Only an operator's repair of a message (send again, attach an id) or the deletion of old
messages changes a final message. The delivery core clears the campaign's
``settled_at`` in the same transaction (:func:`django_smsfly.delivery.records.unsettle`),
so it is counted again, and settled again once it is final again. A settling that
counted before such a change does not store its counts: it writes only while the
campaign's ``updated_at`` is the one it read before counting, and the clearing moves it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import (
    Case,
    Count,
    DecimalField,
    Exists,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from django_smsfly.models import Campaign, Message
from django_smsfly.statuses import DELIVERED_VALUES, FAILED_VALUES

State = Message.State
#: Campaigns whose rows will not be sent any more: their counts can settle.
OVER = (Campaign.Status.FINISHED, Campaign.Status.CANCELLED)
#: Message statuses counted as delivered, and as failed (as on the overview).
DELIVERED, FAILED = DELIVERED_VALUES, FAILED_VALUES

#: Messages handled: no longer waiting to be sent or on their way.
HANDLED = ~Q(state__in=(State.QUEUED, State.SENDING))
#: Messages delivered.
DELIVERED_Q = Q(status__in=DELIVERED)
#: Messages that failed: refused, not sent (opted out, cancelled) or not delivered.
FAILED_Q = Q(state=State.FAILED) | Q(status__in=FAILED)
#: Messages whose outcome may still change on its own (the opposite of ``is_final``).
OPEN = Q(state__in=(State.QUEUED, State.SENDING)) | Q(
    state=State.ACCEPTED, next_check_at__isnull=False
)


def with_outcomes(queryset: QuerySet[Campaign]) -> QuerySet[Campaign]:
    """Campaigns annotated with ``n_handled``, ``n_delivered``, ``n_failed`` and
    ``spend``: a settled campaign's from its own columns, the others' counted from
    their messages (only theirs), all in the query that reads the campaigns."""
    settled = Q(settled_at__isnull=False)

    def count(condition: Q, kept: str) -> Case:
        live = Coalesce(
            Subquery(_of_campaign(condition).annotate(n=Count("pk")).values("n")[:1]),
            Value(0),
        )
        return Case(When(settled, then=F(kept)), default=live, output_field=IntegerField())

    money = DecimalField(max_digits=14, decimal_places=4)
    live_spend = Subquery(
        _of_campaign(Q()).annotate(total=Sum("cost")).values("total")[:1], output_field=money
    )
    return queryset.annotate(
        n_handled=count(HANDLED, "settled_handled"),
        n_delivered=count(DELIVERED_Q, "settled_delivered"),
        n_failed=count(FAILED_Q, "settled_failed"),
        spend=Case(When(settled, then=F("settled_spend")), default=live_spend, output_field=money),
    )


def _of_campaign(condition: Q) -> QuerySet[Message, Any]:
    """The outer campaign's messages meeting ``condition``, grouped as one row."""
    return (
        Message.objects.filter(campaign=OuterRef("pk"))
        .filter(condition)
        .order_by()
        .values("campaign")
    )


def counts(campaign_pk: int) -> dict[str, Any]:
    """The campaign's outcome counts, and how many of its messages are still open, in
    one query over its messages."""
    return Message.objects.filter(campaign_id=campaign_pk).aggregate(
        handled=Count("pk", filter=HANDLED),
        delivered=Count("pk", filter=DELIVERED_Q),
        failed=Count("pk", filter=FAILED_Q),
        spend=Sum("cost"),
        open=Count("pk", filter=OPEN),
    )


def settle(now: dt.datetime | None = None) -> int:
    """Keep the counts of every campaign that is over and whose messages are all final.

    Reads the campaigns not settled yet, those that are over and have no open message
    (one query), then counts each of them once (one query each) and stores the counts
    unless the campaign changed meanwhile. Returns how many campaigns it settled.
    """
    now = now or timezone.now()
    open_messages = Message.objects.filter(campaign=OuterRef("pk")).filter(OPEN)
    ready = (
        Campaign.objects.filter(status__in=OVER, settled_at__isnull=True)
        .exclude(Exists(open_messages))
        .values_list("pk", "updated_at")
    )
    settled = 0
    for pk, updated_at in list(ready):
        found = counts(pk)
        if found["open"]:
            continue  # a message was sent again meanwhile
        # Written only if nothing changed the campaign since it was read: a repair of
        # one of its messages clears settled_at and moves updated_at in one UPDATE.
        settled += Campaign.objects.filter(
            pk=pk, settled_at__isnull=True, updated_at=updated_at
        ).update(
            settled_at=now,
            settled_handled=found["handled"],
            settled_delivered=found["delivered"],
            settled_failed=found["failed"],
            settled_spend=found["spend"],
        )
    return settled
