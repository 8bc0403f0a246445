"""A campaign's counts in the list: counted while they may change, kept once it is over.

Counting every campaign's messages on each view of the list grows with every campaign
ever sent (0.33 s on SQLite for ten campaigns of 10,000 messages, before). A campaign
that is finished or cancelled and whose messages are all final keeps its counts on its
own row (``settled_*``, written by :func:`campaigns.settle` on each sync pass), and the
list reads them there. These tests hold that to what a user relies on: the figures are
the same either way, a campaign that can still move is always counted, and an
operator's repair (send again, attach an id) or a deletion makes it counted again.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from django_smsfly import campaigns, services, tasks
from django_smsfly.campaigns import outcomes
from django_smsfly.delivery import repair, retention
from django_smsfly.models import Campaign, Message

pytestmark = pytest.mark.django_db

LIST = "admin:django_smsfly_campaign_changelist"
State = Message.State


def campaign(name: str, status: str = Campaign.Status.FINISHED) -> Campaign:
    return Campaign.objects.create(name=name, status=status, rows_valid=4)


def message(
    owner: Campaign, state: str, status: str, *, cost: str | None = None, polled: bool = False
) -> Message:
    """One of the campaign's messages as the delivery core leaves it."""
    return Message.objects.create(
        recipient="380501234567",
        channels="sms",
        content={"sms": {"source": "InfoCenter", "text": "Hello"}},
        campaign=owner,
        state=state,
        status=status,
        cost=Decimal(cost) if cost is not None else None,
        next_check_at=timezone.now() if polled else None,
    )


def over(name: str = "June sale") -> Campaign:
    """A finished campaign whose four messages are final: 2 delivered, 1 undelivered, 1
    refused."""
    owner = campaign(name)
    message(owner, State.ACCEPTED, "delivered", cost="0.479")
    message(owner, State.ACCEPTED, "delivered", cost="0.479")
    message(owner, State.ACCEPTED, "undelivered", cost="0.479")
    message(owner, State.FAILED, "failed")
    return owner


def listed(pk: int) -> tuple[int, int, int, Decimal | None]:
    row: Any = outcomes.with_outcomes(Campaign.objects.filter(pk=pk)).get()
    return row.n_handled, row.n_delivered, row.n_failed, row.spend


FIGURES = (4, 2, 2, Decimal("1.437"))


def test_a_campaign_that_is_over_keeps_the_counts_it_was_listed_with() -> None:
    owner = over()
    assert listed(owner.pk) == FIGURES  # counted from its messages
    assert campaigns.settle() == 1
    owner.refresh_from_db()
    assert owner.settled_at is not None
    kept = (
        owner.settled_handled,
        owner.settled_delivered,
        owner.settled_failed,
        owner.settled_spend,
    )
    assert kept == FIGURES
    assert listed(owner.pk) == FIGURES  # read from its row
    assert campaigns.settle() == 0  # nothing left to settle


def test_the_list_reads_a_settled_campaign_from_its_row_not_its_messages() -> None:
    owner = over()
    campaigns.settle()
    # A write that bypasses the delivery core (a test's, never the app's) shows where
    # the figures come from: the kept counts, not a new count.
    owner.messages.filter(status="undelivered").update(status="delivered")
    assert listed(owner.pk) == FIGURES


@pytest.mark.parametrize(
    "status", [Campaign.Status.RUNNING, Campaign.Status.PAUSED, Campaign.Status.STOPPED]
)
def test_a_campaign_that_may_still_send_is_counted_live(status: str) -> None:
    owner = over()
    Campaign.objects.filter(pk=owner.pk).update(status=status)
    assert campaigns.settle() == 0
    message(owner, State.QUEUED, "queued")
    assert listed(owner.pk) == (4, 2, 2, Decimal("1.437"))
    owner.messages.filter(state=State.QUEUED).update(state=State.FAILED, status="failed")
    assert listed(owner.pk) == (5, 2, 3, Decimal("1.437"))


def test_a_campaign_waiting_for_a_delivery_report_is_not_settled_until_it_comes() -> None:
    owner = over()
    waiting = message(owner, State.ACCEPTED, "accepted", cost="0.479", polled=True)
    assert campaigns.settle() == 0
    assert listed(owner.pk) == (5, 2, 2, Decimal("1.916"))
    # The report comes (or polling gives up): the message is final.
    Message.objects.filter(pk=waiting.pk).update(status="delivered", next_check_at=None)
    assert campaigns.settle() == 1
    assert listed(owner.pk) == (5, 3, 2, Decimal("1.916"))


def test_sending_a_message_again_makes_its_campaign_counted_again() -> None:
    owner = over()
    campaigns.settle()
    refused = owner.messages.get(state=State.FAILED)
    assert repair.requeue(refused.pk) is not None
    owner.refresh_from_db()
    assert owner.settled_at is None
    assert listed(owner.pk) == (3, 2, 1, Decimal("1.437"))
    assert campaigns.settle() == 0  # it has a queued message now


def test_attaching_an_id_makes_its_campaign_counted_again() -> None:
    owner = over()
    lost = message(owner, State.UNKNOWN, "queued")  # an unknown outcome keeps "queued"
    assert campaigns.settle() == 1
    services.attach_message_id(lost.pk, "FAPI0000000001")
    owner.refresh_from_db()
    assert owner.settled_at is None
    assert listed(owner.pk) == (5, 2, 2, Decimal("1.437"))


def test_deleting_old_messages_makes_their_campaign_counted_again() -> None:
    owner = over()
    other = over("July sale")
    campaigns.settle()
    Message.objects.update(created_at=timezone.now() - dt.timedelta(days=400))
    Message.objects.filter(campaign=other).update(created_at=timezone.now())
    assert retention.delete_old_messages(dt.timedelta(days=365)) == 4
    owner.refresh_from_db()
    other.refresh_from_db()
    assert owner.settled_at is None
    assert listed(owner.pk) == (0, 0, 0, None)
    assert other.settled_at is not None  # untouched


def test_a_settling_that_counted_before_a_repair_does_not_keep_its_counts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    owner = over()
    refused = owner.messages.get(state=State.FAILED)
    counts = outcomes.counts

    def counted_then_repaired(pk: int) -> dict[str, Any]:
        found = counts(pk)
        repair.requeue(refused.pk)  # an operator's "send again" lands in between
        return found

    monkeypatch.setattr(outcomes, "counts", counted_then_repaired)
    assert campaigns.settle() == 0
    owner.refresh_from_db()
    assert owner.settled_at is None
    assert listed(owner.pk) == (3, 2, 1, Decimal("1.437"))


def test_a_cancelled_campaign_settles_too() -> None:
    owner = over()
    Campaign.objects.filter(pk=owner.pk).update(status=Campaign.Status.CANCELLED)
    message(owner, State.FAILED, "failed")
    assert campaigns.settle() == 1
    assert listed(owner.pk) == (5, 2, 3, Decimal("1.437"))


def test_every_sync_pass_settles(sandbox: Any) -> None:
    owner = over()
    call_command("smsfly_sync", verbosity=0)
    owner.refresh_from_db()
    assert owner.settled_at is not None
    second = over("July sale")
    assert campaigns.settle in tasks.SYNC_PASS_HOOKS
    tasks.run_sync_hooks()  # what the sync_due task runs before its pass
    second.refresh_from_db()
    assert second.settled_at is not None


def test_deleting_messages_in_the_admin_makes_their_campaign_counted_again(
    operator: Client,
) -> None:
    owner = over()
    campaigns.settle()
    refused = owner.messages.get(state=State.FAILED)
    page = reverse("admin:django_smsfly_message_delete", args=[refused.pk])
    assert operator.post(page, {"post": "yes"}).status_code == 302
    owner.refresh_from_db()
    assert owner.settled_at is None
    assert listed(owner.pk) == (3, 2, 1, Decimal("1.437"))
    campaigns.settle()
    changelist = reverse("admin:django_smsfly_message_changelist")
    operator.post(
        changelist,
        {
            "action": "delete_selected",
            "_selected_action": [str(pk) for pk in owner.messages.values_list("pk", flat=True)],
            "post": "yes",
        },
    )
    owner.refresh_from_db()
    assert owner.settled_at is None
    assert listed(owner.pk) == (0, 0, 0, None)


def test_the_list_shows_kept_and_live_counts_alike_and_sorts_by_them(operator: Client) -> None:
    kept = over("June sale")
    campaigns.settle()
    live = campaign("July sale", Campaign.Status.RUNNING)
    for _ in range(3):
        message(live, State.ACCEPTED, "delivered", cost="0.479")
    response = operator.get(reverse(LIST), {"o": "-7"})  # delivered, most first
    rows = list(response.context["cl"].result_list)
    assert [row.name for row in rows] == ["July sale", "June sale"]
    assert [(row.n_delivered, row.n_failed) for row in rows] == [(3, 0), (2, 2)]
    page = response.content.decode()
    assert "1.437" in page
    kept.refresh_from_db()
    assert kept.settled_at is not None
