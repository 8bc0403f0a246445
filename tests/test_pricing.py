"""Cost estimates and the price-list cache."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.utils import timezone

from django_smsfly import services
from django_smsfly.backends.sandbox import get_simulator
from django_smsfly.channels import Channel
from django_smsfly.models import Message
from django_smsfly.pricing import estimate, network_of
from django_smsfly.results import Price, PriceList
from django_smsfly.segments import Encoding

PRICES = PriceList(
    (
        Price(Channel.SMS, "255", "01", Decimal("0.479")),
        Price(Channel.SMS, "255", "03", Decimal("0.478")),
        Price(Channel.VIBER, "255", "03", Decimal("0.75")),
    )
)


@pytest.fixture(autouse=True)
def _empty_cache() -> None:
    cache.clear()


def test_network_of_numbers() -> None:
    assert network_of("380501234567") == ("255", "01")
    assert network_of("380671234567") == ("255", "03")
    assert network_of("48512345678") == ("260", None)
    assert network_of("99912345") == (None, None)


def test_sms_cost_is_price_times_parts() -> None:
    result = estimate(PRICES, "380671234567", [Channel.SMS], sms_text="ї" * 71)
    assert result.segments is not None
    assert (result.segments.encoding, result.segments.parts) == (Encoding.UCS2, 2)
    assert result.channels == {Channel.SMS: Decimal("0.956")}


def test_viber_then_sms_worst_and_usual_case() -> None:
    result = estimate(PRICES, "380671234567", [Channel.VIBER, Channel.SMS], sms_text="Hi")
    assert result.first == Decimal("0.75")
    assert result.most == Decimal("1.228")


def test_unknown_network_takes_the_dearest_price_in_the_country() -> None:
    result = estimate(PRICES, "380911234567", [Channel.SMS], sms_text="Hi")
    assert result.channels[Channel.SMS] == Decimal("0.479")


def test_no_price_means_no_estimate() -> None:
    result = estimate(PRICES, "48512345678", [Channel.SMS], sms_text="Hi")
    assert result.channels == {Channel.SMS: None}
    assert result.most is None


def test_estimate_cost_uses_the_api_once_then_the_cache() -> None:
    first = services.estimate_cost("050 123 4567", channels=["sms"], sms={"text": "Hello"})
    second = services.estimate_cost("050 123 4567", channels=["sms"], sms={"text": "Hello"})
    assert first == second
    assert first.first == Decimal("0.479")  # the sandbox's Vodafone price
    assert len(get_simulator().requests_for("GETPRICELIST")) == 1
    assert get_simulator().requests_for("SENDMESSAGE") == []


@pytest.mark.django_db
def test_cleanup_deletes_only_finished_old_messages() -> None:
    old = timezone.now() - dt.timedelta(days=40)
    finished = services.send_sms("380501234567", "Old and done")
    Message.objects.filter(pk=finished.pk).update(next_check_at=None)
    waiting = services.send_sms("380501234567", "Old, still polled")
    queued = services.queue_message("380501234567", channels="sms", sms={"text": "Old queue"})
    recent = services.send_sms("380501234567", "Recent")
    Message.objects.filter(pk__in=[finished.pk, waiting.pk, queued.pk]).update(created_at=old)
    Message.objects.filter(pk=recent.pk).update(next_check_at=None)
    assert services.delete_old_messages(dt.timedelta(days=30), batch_size=1) == 1
    assert set(Message.objects.values_list("pk", flat=True)) == {waiting.pk, queued.pk, recent.pk}
