"""Reading reply fields: money, dates, statuses."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from django_smsfly.exceptions import SmsFlyBadReply
from django_smsfly.results import KYIV, Balances, PriceList, Sources, parse_datetime, parse_decimal
from django_smsfly.statuses import Status


@pytest.mark.parametrize(
    ("value", "expected"),
    [("0.479", "0.479"), (0.479, "0.479"), (0.75, "0.75"), (1, "1"), (" 91.477 ", "91.477")],
)
def test_money_from_strings_and_numbers(value: object, expected: str) -> None:
    assert parse_decimal(value, "cost") == Decimal(expected)


@pytest.mark.parametrize("value", ["abc", "", None, True, "NaN", "Infinity", [1]])
def test_money_that_is_not_a_number(value: object) -> None:
    with pytest.raises(SmsFlyBadReply, match="cost"):
        parse_decimal(value, "cost")


def test_dates_with_and_without_offset() -> None:
    with_offset = parse_datetime("2021-12-17 10:36:07 +0200", "date")
    assert with_offset == dt.datetime(2021, 12, 17, 8, 36, 7, tzinfo=dt.timezone.utc)
    summer = parse_datetime("2022-07-01 12:00:00", "date")  # Kyiv summer time is +03:00
    assert summer.tzinfo is KYIV
    assert summer.utcoffset() == dt.timedelta(hours=3)
    assert parse_datetime("2022-07-01 12:00:00 -0130", "d").utcoffset() == -dt.timedelta(
        hours=1, minutes=30
    )


@pytest.mark.parametrize("value", ["2021-13-01 00:00:00", "yesterday", 1639730167, ""])
def test_bad_dates(value: object) -> None:
    with pytest.raises(SmsFlyBadReply):
        parse_datetime(value, "date")


def test_unknown_and_non_string_statuses_become_unknown() -> None:
    assert Status.parse("SOMETHINGNEW") is Status.UNKNOWN
    assert Status.parse(None) is Status.UNKNOWN
    assert Status.parse(" delivered ") is Status.DELIVRD


def test_results_are_frozen() -> None:
    balances = Balances(sms=Decimal(1), viber=Decimal(2))
    with pytest.raises(AttributeError):
        balances.sms = Decimal(5)  # type: ignore[misc]


def test_sources_refuse_a_non_list() -> None:
    with pytest.raises(SmsFlyBadReply):
        Sources.from_data({"sms": "InfoCenter"})


def test_price_list_skips_unknown_channels() -> None:
    prices = PriceList.from_data(
        {"pricelist": {"rcs": {"255": {"01": "1"}}, "viber": {"255": {"01": "0.9"}}}},
        "pricelist",
    )
    assert [(p.channel.value, p.price) for p in prices] == [("viber", Decimal("0.9"))]
