"""The sandbox simulator and backend: SMS-fly's API v2.04 as the document and the live
service describe it, with time, outcomes, faults and records under the test's control."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from django_smsfly.backends.base import RawReply
from django_smsfly.backends.sandbox import (
    TEST_NUMBERS,
    Fault,
    MessagePlan,
    Outcome,
    SandboxBackend,
    Simulator,
    get_simulator,
    viber_label,
)
from django_smsfly.exceptions import (
    SmsFlyConnectionError,
    SmsFlyTimeout,
    SmsFlyTransportError,
    Verdict,
)
from django_smsfly.results import Balances, PriceList, SendResult, Sources, StatusResult
from tests.workers import run_together

KEY = "sandbox-test-key-0000000000000000000"
# 12:00 Kyiv in winter (+0200).
T0 = dt.datetime(2024, 1, 10, 10, 0, 0, tzinfo=dt.timezone.utc)
ID_RE = re.compile(r"FAPI[0-9A-F]{32}")
DATE_WITH_OFFSET = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4}")
DATE_WITHOUT_OFFSET = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")
ROOT = Path(__file__).resolve().parent.parent

SMS = {"source": "InfoCenter", "ttl": 5, "text": "Hello"}
VIBER = {"source": "Promo", "ttl": 5, "text": "Spring sale: 20% off everything"}


@pytest.fixture
def sim() -> Simulator:
    """A simulator of its own with the clock frozen at T0."""
    simulator = Simulator()
    simulator.freeze(T0)
    return simulator


@pytest.fixture
def backend(sim: Simulator) -> SandboxBackend:
    return SandboxBackend(simulator=sim)


@pytest.fixture
def default_simulator() -> Iterator[Simulator]:
    """The process-wide simulator, reset before and after (other tests share it)."""
    simulator = get_simulator()
    simulator.reset()
    yield simulator
    simulator.reset()


def body(action: str, data: Any = None, key: str | None = KEY) -> dict[str, Any]:
    auth = {} if key is None else {"key": key}
    return {"auth": auth, "action": action, "data": {} if data is None else data}


def call(sim: Simulator, action: str, data: Any = None) -> tuple[int, dict[str, Any]]:
    return sim.handle(body(action, data))


def send(
    sim: Simulator,
    recipient: str = "380501234567",
    channels: tuple[str, ...] = ("sms",),
    **blocks: Any,
) -> tuple[int, dict[str, Any]]:
    data: dict[str, Any] = {"recipient": recipient, "channels": list(channels)}
    for channel in channels:
        data[channel] = blocks.get(channel, SMS if channel == "sms" else VIBER)
    return call(sim, "SENDMESSAGE", data)


def sent_id(sim: Simulator, *args: Any, **kwargs: Any) -> str:
    status, reply = send(sim, *args, **kwargs)
    assert status == 200, reply
    message_id: str = reply["data"]["messageID"]
    return message_id


def statuses_at(sim: Simulator, message_id: str, seconds: float) -> dict[str, str]:
    sim.freeze(T0 + dt.timedelta(seconds=seconds))
    status, reply = call(sim, "GETMESSAGESTATUS", {"messageID": message_id})
    assert status == 200, reply
    return {ch: reply["data"][ch]["status"] for ch in ("sms", "viber") if ch in reply["data"]}


def error_of(reply: tuple[int, dict[str, Any]]) -> tuple[int, str]:
    status, payload = reply
    assert payload["success"] == 0
    return status, payload["error"]["code"]


# --- reply shapes, as the document shows them ---------------------------------------------


def test_getbalance_is_a_string_with_three_decimals(sim: Simulator) -> None:
    status, reply = call(sim, "GETBALANCE")
    assert status == 200
    assert reply == {
        "success": 1,
        "date": "2024-01-10 12:00:00 +0200",
        "data": {"balance": "1000.000"},
    }


def test_getbalanceext_reports_sms_and_viber_balances(sim: Simulator) -> None:
    _, reply = call(sim, "GETBALANCEEXT")
    assert reply["data"] == {"balance": {"sms": "1000.000", "viber": "500.000"}}
    assert Balances.from_data(reply["data"]).as_dict() == {
        "sms": Decimal("1000.000"),
        "viber": Decimal("500.000"),
    }


def test_reply_date_carries_the_kyiv_offset_of_the_season(sim: Simulator) -> None:
    sim.freeze(dt.datetime(2024, 7, 1, 9, 0, tzinfo=dt.timezone.utc))
    _, reply = call(sim, "GETBALANCE")
    assert reply["date"] == "2024-07-01 12:00:00 +0300"


def test_getsources_answers_the_requested_channels_only(sim: Simulator) -> None:
    _, reply = call(sim, "GETSOURCES", {"channels": ["viber"]})
    assert reply["data"] == {"viber": ["Promo", "SMS-fly"]}
    _, reply = call(sim, "GETSOURCES", {"channels": ["sms", "viber"]})
    assert Sources.from_data(reply["data"]) == Sources(
        sms=("InfoCenter", "SMS-fly"), viber=("Promo", "SMS-fly")
    )


def test_sources_are_configurable_per_channel() -> None:
    sim = Simulator(sources={"sms": ["MyShop"]})
    _, reply = call(sim, "GETSOURCES", {"channels": ["sms", "viber"]})
    assert reply["data"] == {"sms": ["MyShop"], "viber": ["Promo", "SMS-fly"]}


def test_getpricelist_is_channel_mcc_mnc_price_strings(sim: Simulator) -> None:
    _, reply = call(sim, "GETPRICELIST", {"channels": ["sms", "viber"]})
    table = reply["data"]["pricelist"]
    assert set(table) == {"sms", "viber"}
    assert set(table["sms"]) == {"255"}  # Ukraine unless asked otherwise
    assert {"01", "03", "06", "07", "99"} <= set(table["sms"]["255"])
    assert all(re.fullmatch(r"\d+\.\d{3}", p) for p in table["sms"]["255"].values())
    prices = PriceList.from_data(reply["data"], "pricelist")
    assert prices.get("sms", "255", "03") == Decimal("0.478")
    assert prices.get("viber", "255", "01") == Decimal("0.750")


def test_getpricelist_for_poland_and_for_a_country_without_prices(sim: Simulator) -> None:
    _, reply = call(sim, "GETPRICELIST", {"channels": ["sms"], "mcc": "260"})
    assert set(reply["data"]["pricelist"]["sms"]["260"]) >= {"01", "02", "03", "06"}
    _, reply = call(sim, "GETPRICELIST", {"channels": ["sms"], "mcc": "999"})
    assert reply["data"] == {"pricelist": {"sms": {}}}


def test_getprice_answers_one_network(sim: Simulator) -> None:
    _, reply = call(sim, "GETPRICE", {"channels": ["sms"], "mcc": "255", "mnc": "01"})
    assert reply["data"] == {"price": {"sms": {"255": {"01": "0.479"}}}}


def test_prices_are_configurable() -> None:
    sim = Simulator(prices={"sms": {"255": {"01": "1.5"}}})
    _, reply = call(sim, "GETPRICE", {"channels": ["sms", "viber"], "mnc": "01"})
    assert reply["data"]["price"] == {
        "sms": {"255": {"01": "1.500"}},
        "viber": {"255": {"01": "0.750"}},
    }


def test_sendmessage_reply_has_an_id_and_accepted_channels_with_string_costs(
    sim: Simulator,
) -> None:
    status, reply = send(sim, channels=("viber", "sms"))
    assert status == 200
    data = reply["data"]
    assert ID_RE.fullmatch(data["messageID"])
    assert list(data) == ["messageID", "viber", "sms"]  # the channels' order
    assert data["viber"] == {
        "status": "ACCEPTD",
        "date": "2024-01-10 12:00:00 +0200",
        "label": "promotion",
        "cost": "0.750",
    }
    assert data["sms"] == {
        "status": "ACCEPTD",
        "date": "2024-01-10 12:00:00 +0200",
        "cost": "0.479",
    }
    result = SendResult.from_data(data, None)
    assert result.cost == Decimal("1.229")


def test_viber_label_marks_codes_and_orders_as_transactions() -> None:
    assert viber_label("Your code: 4821") == "transaction:1"
    assert viber_label("Замовлення №123 відправлено") == "transaction:1"
    assert viber_label("Spring sale!") == "promotion"
    assert viber_label(None) == "promotion"


def test_getmessagestatus_dates_have_no_offset_and_there_is_no_cost(sim: Simulator) -> None:
    message_id = sent_id(sim, channels=("viber", "sms"))
    sim.freeze(T0 + dt.timedelta(seconds=7))
    status, reply = call(sim, "GETMESSAGESTATUS", {"messageID": message_id})
    assert status == 200
    assert reply["data"] == {
        "messageID": message_id,
        "viber": {"status": "DELIVRD", "date": "2024-01-10 12:00:05"},
        "sms": {"status": "REFUND", "date": "2024-01-10 12:00:05"},
    }
    assert DATE_WITH_OFFSET.fullmatch(reply["date"])
    parsed = StatusResult.from_data(reply["data"], None)
    assert parsed["viber"].date == dt.datetime(2024, 1, 10, 10, 0, 5, tzinfo=dt.timezone.utc)


# --- errors ----------------------------------------------------------------------------------

GOOD_SEND: dict[str, Any] = {"recipient": "380501234567", "channels": ["sms"], "sms": SMS}


def send_with(**changes: Any) -> dict[str, Any]:
    data = {**GOOD_SEND, **changes}
    return {k: v for k, v in data.items() if v is not None}


def viber_send(**viber: Any) -> dict[str, Any]:
    block = {"source": "Promo", "ttl": 5, **viber}
    return {"recipient": "380501234567", "channels": ["viber"], "viber": block}


ERRORS: list[tuple[str, Any, int, str]] = [
    ("not JSON", b"{not json", 422, "INVREQUEST"),
    ("empty body", b"", 422, "INVREQUEST"),
    ("not UTF-8", b"\xff\xfe{", 422, "INVREQUEST"),
    ("not an object", b"[1, 2]", 400, "INVREQUEST"),
    ("no auth", {"action": "GETBALANCE", "data": {}}, 400, "INVREQUEST"),
    ("no key", body("GETBALANCE", key=None), 403, "FORBIDDEN"),
    ("empty key", body("GETBALANCE", key=""), 403, "FORBIDDEN"),
    ("no action", {"auth": {"key": KEY}, "data": {}}, 400, "INVACTION"),
    ("unknown action", body("SENDSMS"), 400, "INVACTION"),
    ("no data", {"auth": {"key": KEY}, "action": "GETBALANCE"}, 400, "INVREQUEST"),
    ("short recipient", body("SENDMESSAGE", send_with(recipient="380501")), 400, "INVRECIPIENT"),
    ("long recipient", body("SENDMESSAGE", send_with(recipient="3" * 16)), 400, "INVRECIPIENT"),
    ("plus", body("SENDMESSAGE", send_with(recipient="+380501234567")), 400, "INVRECIPIENT"),
    ("number", body("SENDMESSAGE", send_with(recipient=380501234567)), 400, "INVRECIPIENT"),
    ("no channels", body("SENDMESSAGE", send_with(channels=None)), 400, "INVCHANNELS"),
    ("empty channels", body("SENDMESSAGE", send_with(channels=[])), 400, "INVCHANNELS"),
    ("twice", body("SENDMESSAGE", send_with(channels=["sms", "sms"])), 400, "INVCHANNELS"),
    ("unknown", body("SENDMESSAGE", send_with(channels=["telegram"])), 400, "INVCHANNELS"),
    ("no sms block", body("SENDMESSAGE", send_with(sms=None)), 400, "INVSMSMESSAGE"),
    (
        "no viber block",
        body("SENDMESSAGE", send_with(channels=["viber", "sms"])),
        400,
        "INVVIBERMESSAGE",
    ),
    ("empty sms text", body("SENDMESSAGE", send_with(sms={**SMS, "text": ""})), 400, "INVTEXT"),
    ("no sms text", body("SENDMESSAGE", send_with(sms={"source": "InfoCenter"})), 400, "INVTEXT"),
    ("long viber text", body("SENDMESSAGE", viber_send(text="x" * 1001)), 400, "INVTEXT"),
    ("nothing to show", body("SENDMESSAGE", viber_send()), 400, "INVTEXT"),
    (
        "button alone",
        body("SENDMESSAGE", viber_send(button={"caption": "Go", "url": "https://e.org"})),
        400,
        "INVTEXT",
    ),
    (
        "text and image without button",
        body("SENDMESSAGE", viber_send(text="Hi", image="https://e.org/i.png")),
        400,
        "INVTEXT",
    ),
    (
        "button without url",
        body("SENDMESSAGE", viber_send(text="Hi", button={"caption": "Go"})),
        400,
        "INVBUTTON",
    ),
    (
        "caption too long",
        body(
            "SENDMESSAGE",
            viber_send(text="Hi", button={"caption": "C" * 31, "url": "https://e.org"}),
        ),
        400,
        "INVBUTTON",
    ),
    (
        "http image",
        body("SENDMESSAGE", viber_send(image="http://e.org/i.png")),
        400,
        "INVIMAGEURL",
    ),
    (
        "unknown sms source",
        body("SENDMESSAGE", send_with(sms={**SMS, "source": "Nobody"})),
        400,
        "INVSOURCE",
    ),
    (
        "unknown viber source",
        body("SENDMESSAGE", viber_send(text="Hi", source="X")),
        400,
        "INVSOURCE",
    ),
    ("ttl zero", body("SENDMESSAGE", send_with(sms={**SMS, "ttl": 0})), 400, "INVREQUEST"),
    ("ttl too long", body("SENDMESSAGE", send_with(sms={**SMS, "ttl": 1441})), 400, "INVREQUEST"),
    ("ttl as text", body("SENDMESSAGE", send_with(sms={**SMS, "ttl": "5"})), 400, "INVREQUEST"),
    ("no route", body("SENDMESSAGE", send_with(recipient="99912345678")), 400, "INVROUTE"),
    (
        "unknown id",
        body("GETMESSAGESTATUS", {"messageID": "FAPI00040A3AFA000002"}),
        400,
        "INVMSGID",
    ),
    ("no id", body("GETMESSAGESTATUS"), 400, "INVMSGID"),
    ("no mnc", body("GETPRICE", {"channels": ["sms"], "mcc": "255"}), 400, "INVREQUEST"),
    ("sources without channels", body("GETSOURCES"), 400, "INVCHANNELS"),
]


@pytest.mark.parametrize(
    ("request_body", "http_status", "code"),
    [pytest.param(b, s, c, id=name) for name, b, s, c in ERRORS],
)
def test_errors_have_the_documented_code_and_http_status(
    sim: Simulator, request_body: Any, http_status: int, code: str
) -> None:
    status, reply = sim.handle(request_body)
    assert (status, reply["success"], reply["error"]["code"]) == (http_status, 0, code)
    assert DATE_WITH_OFFSET.fullmatch(reply["error"]["date"])
    assert isinstance(reply["error"]["description"], str)
    assert "data" not in reply


def test_a_refused_send_spends_nothing_and_issues_no_id(sim: Simulator) -> None:
    send(sim, channels=("viber", "sms"), viber={"source": "Promo"})
    assert (sim.balance, sim.viber_balance) == (Decimal("1000.000"), Decimal("500.000"))
    assert sim.messages == []


def test_a_configured_key_refuses_any_other(sim: Simulator) -> None:
    sim.configure(api_key=KEY)
    assert call(sim, "GETBALANCE")[0] == 200
    assert error_of(sim.handle(body("GETBALANCE", key="another-key"))) == (403, "FORBIDDEN")


def test_without_a_configured_key_any_non_empty_key_is_accepted(sim: Simulator) -> None:
    assert sim.handle(body("GETBALANCE", key="whatever"))[0] == 200


def test_insufficient_funds_uses_the_vendors_spelling(sim: Simulator) -> None:
    sim.balance = Decimal("0.100")
    assert error_of(send(sim)) == (400, "INSUFFICIENTFUNDS")
    sim.balance = 10
    sim.viber_balance = 0
    assert error_of(send(sim, channels=("viber",))) == (400, "INSUFFICIENTFUNDS")


def test_viber_shapes_the_document_allows(sim: Simulator) -> None:
    button = {"caption": "Open", "url": "https://example.org"}
    image = "https://example.org/i.png"
    for viber in (
        {"text": "Hi"},
        {"image": image},
        {"text": "Hi", "button": button},
        {"text": "Hi", "button": button, "image": image},
    ):
        status, reply = send(sim, channels=("viber",), viber={"source": "Promo", **viber})
        assert status == 200, (viber, reply)


def test_ttl_and_flash_are_optional(sim: Simulator) -> None:
    status, _ = send(sim, sms={"source": "InfoCenter", "text": "Hi"})
    assert status == 200
    status, _ = send(sim, sms={**SMS, "flash": 1})
    assert status == 200
    assert error_of(send(sim, sms={**SMS, "flash": 2})) == (400, "INVREQUEST")


def test_an_empty_json_array_counts_as_empty_data(sim: Simulator) -> None:
    # PHP clients encode an empty object as [].
    assert sim.handle({"auth": {"key": KEY}, "action": "GETBALANCE", "data": []})[0] == 200


# --- money -----------------------------------------------------------------------------------


def test_sms_is_charged_per_segment_on_the_recipients_network(sim: Simulator) -> None:
    send(sim, "380671234567", sms={**SMS, "text": "x" * 161})  # Kyivstar, 2 GSM parts
    assert sim.balance == Decimal("1000.000") - 2 * Decimal("0.478")
    _, reply = call(sim, "GETBALANCE")
    assert reply["data"]["balance"] == "999.044"


def test_viber_is_charged_a_flat_price_from_the_viber_balance(sim: Simulator) -> None:
    send(sim, channels=("viber",), viber={**VIBER, "text": "x" * 1000})
    assert (sim.balance, sim.viber_balance) == (Decimal("1000.000"), Decimal("499.250"))


def test_an_unneeded_fallback_is_refunded_when_viber_delivers(sim: Simulator) -> None:
    send(sim, channels=("viber", "sms"))
    assert sim.balance == Decimal("999.521")
    sim.advance(5)
    assert sim.balance == Decimal("1000.000")
    assert sim.viber_balance == Decimal("499.250")


def test_a_polish_number_is_charged_the_dearest_polish_rate(sim: Simulator) -> None:
    _, reply = send(sim, "48501234567")
    assert reply["data"]["sms"]["cost"] == "0.210"


# --- ids ------------------------------------------------------------------------------------


def test_ids_are_unique_even_within_one_millisecond(sim: Simulator) -> None:
    ids = {sent_id(sim) for _ in range(2000)}
    assert len(ids) == 2000
    assert all(ID_RE.fullmatch(i) for i in ids)


def test_two_simulators_never_issue_the_same_id() -> None:
    first, second = Simulator(), Simulator()
    first.freeze(T0)
    second.freeze(T0)
    assert {sent_id(first) for _ in range(200)}.isdisjoint({sent_id(second) for _ in range(200)})


def test_a_changed_id_is_not_found(sim: Simulator) -> None:
    message_id = sent_id(sim)
    flipped = message_id[:-5] + ("0" if message_id[-5] != "0" else "1") + message_id[-4:]
    for wrong in (flipped, message_id.lower(), message_id + "0", 12345):
        assert error_of(call(sim, "GETMESSAGESTATUS", {"messageID": wrong})) == (400, "INVMSGID")


@given(
    ms=st.integers(min_value=0, max_value=(1 << 44) - 1),
    channels=st.sampled_from([("sms",), ("viber",), ("viber", "sms"), ("sms", "viber")]),
    # Refused sends (INVRECIPIENT, ERRPHONES) never get an id.
    outcome=st.sampled_from(
        [o for o in Outcome if o not in (Outcome.REJECTED, Outcome.STOP_LISTED)]
    ),
    ttl=st.integers(min_value=1, max_value=1440),
    speed_centi=st.integers(min_value=1, max_value=(1 << 20) - 1),
    unique=st.integers(min_value=0, max_value=(1 << 28) - 1),
)
def test_an_id_carries_its_plan(
    *,
    ms: int,
    channels: tuple[str, ...],
    outcome: Outcome,
    ttl: int,
    speed_centi: int,
    unique: int,
) -> None:
    sent_at = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(milliseconds=ms)
    plan = MessagePlan(sent_at, channels, outcome, dict.fromkeys(channels, ttl), speed_centi / 100)
    message_id = plan.encode(unique)
    assert ID_RE.fullmatch(message_id)
    assert MessagePlan.decode(message_id) == plan


# --- statuses over time ------------------------------------------------------------------

STATUS_ORDER = ["ACCEPTD", "INPROGRESS", "SENT", "DELIVRD", "VIEWED"]


def test_sms_timeline(sim: Simulator) -> None:
    message_id = sent_id(sim)
    seen = [statuses_at(sim, message_id, s)["sms"] for s in (0, 0.9, 1, 2.9, 3, 5.9, 6, 3600)]
    assert seen == [
        "ACCEPTD", "ACCEPTD", "INPROGRESS", "INPROGRESS", "SENT", "SENT", "DELIVRD", "DELIVRD",
    ]  # fmt: skip


def test_status_dates_are_when_each_status_was_reached(sim: Simulator) -> None:
    message_id = sent_id(sim)
    sim.freeze(T0 + dt.timedelta(seconds=4))
    _, reply = call(sim, "GETMESSAGESTATUS", {"messageID": message_id})
    assert reply["data"]["sms"] == {"status": "SENT", "date": "2024-01-10 12:00:03"}
    assert DATE_WITHOUT_OFFSET.fullmatch(reply["data"]["sms"]["date"])


def test_viber_timeline_ends_viewed(sim: Simulator) -> None:
    message_id = sent_id(sim, channels=("viber",))
    seen = [statuses_at(sim, message_id, s)["viber"] for s in (0, 2, 5, 14, 15)]
    assert seen == ["ACCEPTD", "SENT", "DELIVRD", "DELIVRD", "VIEWED"]


def test_viber_then_sms_refunds_the_sms_when_viber_delivers(sim: Simulator) -> None:
    message_id = sent_id(sim, channels=("viber", "sms"))
    assert statuses_at(sim, message_id, 4) == {"viber": "SENT", "sms": "ACCEPTD"}
    assert statuses_at(sim, message_id, 5) == {"viber": "DELIVRD", "sms": "REFUND"}
    assert statuses_at(sim, message_id, 60) == {"viber": "VIEWED", "sms": "REFUND"}


def test_no_viber_falls_back_to_an_sms_that_is_delivered(sim: Simulator) -> None:
    message_id = sent_id(sim, TEST_NUMBERS[Outcome.NO_VIBER], channels=("viber", "sms"))
    assert statuses_at(sim, message_id, 5) == {"viber": "UNDELIV", "sms": "ACCEPTD"}
    assert statuses_at(sim, message_id, 6) == {"viber": "UNDELIV", "sms": "INPROGRESS"}
    assert statuses_at(sim, message_id, 8) == {"viber": "UNDELIV", "sms": "SENT"}
    assert statuses_at(sim, message_id, 11) == {"viber": "UNDELIV", "sms": "DELIVRD"}


def test_undelivered_fails_every_channel(sim: Simulator) -> None:
    message_id = sent_id(sim, TEST_NUMBERS[Outcome.UNDELIVERED], channels=("viber", "sms"))
    assert statuses_at(sim, message_id, 3600) == {"viber": "UNDELIV", "sms": "UNDELIV"}


def test_expired_comes_when_the_ttl_runs_out(sim: Simulator) -> None:
    number = TEST_NUMBERS[Outcome.EXPIRED]
    message_id = sent_id(sim, number, sms={**SMS, "ttl": 2})
    assert statuses_at(sim, message_id, 119) == {"sms": "SENT"}
    assert statuses_at(sim, message_id, 120) == {"sms": "EXPIRED"}


def test_an_expired_viber_hands_over_to_sms_which_expires_after_its_own_ttl(
    sim: Simulator,
) -> None:
    number = TEST_NUMBERS[Outcome.EXPIRED]
    message_id = sent_id(
        sim, number, ("viber", "sms"), viber={**VIBER, "ttl": 1}, sms={**SMS, "ttl": 3}
    )
    assert statuses_at(sim, message_id, 60) == {"viber": "EXPIRED", "sms": "ACCEPTD"}
    assert statuses_at(sim, message_id, 64) == {"viber": "EXPIRED", "sms": "SENT"}
    assert statuses_at(sim, message_id, 240) == {"viber": "EXPIRED", "sms": "EXPIRED"}


def test_stopped_messages_are_stoped(sim: Simulator) -> None:
    message_id = sent_id(sim, TEST_NUMBERS[Outcome.STOPPED], channels=("viber", "sms"))
    assert statuses_at(sim, message_id, 1) == {"viber": "STOPED", "sms": "STOPED"}


def test_speed_makes_the_timeline_faster() -> None:
    sim = Simulator(speed=10)
    sim.freeze(T0)
    message_id = sent_id(sim)
    assert statuses_at(sim, message_id, 0.5) == {"sms": "SENT"}
    assert statuses_at(sim, message_id, 0.6) == {"sms": "DELIVRD"}
    _, reply = call(sim, "GETMESSAGESTATUS", {"messageID": message_id})
    assert reply["data"]["sms"]["date"] == "2024-01-10 12:00:00"  # 0.6 s after the send


def test_advance_moves_a_frozen_clock(sim: Simulator) -> None:
    message_id = sent_id(sim)
    sim.advance(3)
    assert sim.status_of(message_id) == {"sms": "SENT"}
    sim.advance(3)
    assert sim.status_of(message_id) == {"sms": "DELIVRD"}


def test_an_injected_clock_drives_time() -> None:
    now = [T0]
    sim = Simulator(clock=lambda: now[0])
    message_id = sent_id(sim)
    now[0] += dt.timedelta(seconds=6)
    assert sim.status_of(message_id) == {"sms": "DELIVRD"}


def test_the_clock_only_moves_forward_and_must_be_aware(sim: Simulator) -> None:
    with pytest.raises(ValueError, match="forward"):
        sim.advance(-1)
    with pytest.raises(ValueError, match="aware"):
        sim.freeze(dt.datetime(2024, 1, 1))


@given(
    channels=st.sampled_from([("sms",), ("viber",), ("viber", "sms"), ("sms", "viber")]),
    # Refused sends (INVRECIPIENT, ERRPHONES) never get an id.
    outcome=st.sampled_from(
        [o for o in Outcome if o not in (Outcome.REJECTED, Outcome.STOP_LISTED)]
    ),
    ttl=st.integers(min_value=1, max_value=1440),
    times=st.lists(st.floats(min_value=0, max_value=200_000), min_size=2, max_size=8),
)
def test_statuses_never_move_back(
    channels: tuple[str, ...], outcome: Outcome, ttl: int, times: list[float]
) -> None:
    plan = MessagePlan(T0, channels, outcome, dict.fromkeys(channels, ttl), 1.0)
    timeline = plan.timeline()
    for steps in timeline.values():
        assert [at for at, _ in steps] == sorted(at for at, _ in steps)
    previous: dict[str, int] = {}
    for seconds in sorted(times):
        for channel, (status, _) in plan.status_at(T0 + dt.timedelta(seconds=seconds)).items():
            index = [s for _, s in timeline[channel]].index(status)
            assert index >= previous.get(channel, 0)
            previous[channel] = index


# --- another process answers for the id ------------------------------------------------------


def test_a_second_simulator_knows_the_status_of_an_id_it_did_not_issue(sim: Simulator) -> None:
    message_id = sent_id(sim, channels=("viber", "sms"))
    other = Simulator(speed=50)  # its own speed does not matter: the id carries the sender's
    other.freeze(T0 + dt.timedelta(seconds=5))
    status, reply = call(other, "GETMESSAGESTATUS", {"messageID": message_id})
    assert status == 200
    assert reply["data"]["viber"]["status"] == "DELIVRD"
    assert reply["data"]["sms"]["status"] == "REFUND"


def test_an_id_issued_in_another_process_is_answered_here(sim: Simulator) -> None:
    script = (
        "import datetime as dt\n"
        "from django_smsfly.backends.sandbox import Simulator\n"
        "sim = Simulator()\n"
        f"sim.freeze(dt.datetime.fromisoformat({T0.isoformat()!r}))\n"
        "status, reply = sim.handle({'auth': {'key': 'k'}, 'action': 'SENDMESSAGE', 'data': {\n"
        "    'recipient': '380500000002', 'channels': ['viber', 'sms'],\n"
        "    'viber': {'source': 'Promo', 'text': 'Hi'},\n"
        "    'sms': {'source': 'InfoCenter', 'text': 'Hi'}}})\n"
        "print(reply['data']['messageID'])\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    done = subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=ROOT,
        env=env, timeout=60,
    )  # fmt: skip
    message_id = done.stdout.strip()
    assert statuses_at(sim, message_id, 11) == {"viber": "UNDELIV", "sms": "DELIVRD"}


# --- rules and test numbers -----------------------------------------------------------------


@pytest.mark.parametrize(("outcome", "number"), TEST_NUMBERS.items())
def test_built_in_test_numbers(sim: Simulator, outcome: Outcome, number: str) -> None:
    assert sim.outcome_for(number) is outcome
    assert sim.outcome_for("38067123" + number[-4:]) is outcome  # any Ukrainian number


def test_other_numbers_are_delivered(sim: Simulator) -> None:
    assert sim.outcome_for("380501234567") is Outcome.DELIVERED
    assert sim.outcome_for("48500000001") is Outcome.DELIVERED  # not Ukrainian


def test_a_rejected_number_is_refused_at_send(sim: Simulator) -> None:
    assert error_of(send(sim, TEST_NUMBERS[Outcome.REJECTED])) == (400, "INVRECIPIENT")
    assert sim.balance == Decimal("1000.000")


def test_test_numbers_can_be_switched_off() -> None:
    sim = Simulator(test_numbers=False)
    assert sim.outcome_for(TEST_NUMBERS[Outcome.REJECTED]) is Outcome.DELIVERED


def test_rules_apply_in_order_and_before_test_numbers(sim: Simulator) -> None:
    sim.add_rule(r"^38050", Outcome.EXPIRED)
    sim.add_rule(r".", Outcome.STOPPED)
    sim.add_rule(lambda number: number.startswith("48"), Outcome.UNDELIVERED)
    assert sim.outcome_for(TEST_NUMBERS[Outcome.UNDELIVERED]) is Outcome.EXPIRED
    assert sim.outcome_for("48501234567") is Outcome.STOPPED


def test_a_callable_rule_and_its_outcome_in_the_status(sim: Simulator) -> None:
    sim.add_rule(lambda number: number.endswith("77"), "undelivered")
    message_id = sent_id(sim, "380501234577")
    assert sim.messages[-1].outcome is Outcome.UNDELIVERED
    assert statuses_at(sim, message_id, 6) == {"sms": "UNDELIV"}


def test_reset_restores_the_configured_state(sim: Simulator) -> None:
    sim.configure(balance=50)
    sim.add_rule(".", Outcome.REJECTED)
    sim.inject(Fault.SERVER_ERROR)
    call(sim, "GETBALANCE")
    sim.clear_rules()
    send(sim)
    sim.add_rule(".", Outcome.REJECTED)
    sim.inject(Fault.SERVER_ERROR)
    sim.reset()
    assert sim.balance == Decimal("50.000")
    assert (sim.requests, sim.messages, sim.pending_faults) == ([], [], [])
    assert sim.outcome_for("380501234567") is Outcome.DELIVERED
    assert abs(sim.now() - dt.datetime.now(dt.timezone.utc)) < dt.timedelta(seconds=5)


# --- faults in process -------------------------------------------------------------------


def test_rate_limited_returns_429_with_retry_after_and_does_nothing(
    sim: Simulator, backend: SandboxBackend
) -> None:
    sim.inject(Fault.RATE_LIMITED, retry_after=2)
    reply = backend.send(body("SENDMESSAGE", GOOD_SEND))
    assert (reply.http_status, reply.body) == (429, None)
    assert reply.headers["retry-after"] == "2"
    assert "429" in reply.text
    assert sim.messages == []
    assert sim.requests[-1].processed is False


@pytest.mark.parametrize(
    ("fault", "status"),
    [(Fault.SERVER_ERROR, 500), (Fault.BAD_GATEWAY, 502), (Fault.SERVICE_UNAVAILABLE, 503)],
)
def test_server_errors_return_an_html_page_and_do_nothing(
    sim: Simulator, backend: SandboxBackend, fault: Fault, status: int
) -> None:
    sim.inject(fault)
    reply = backend.send(body("SENDMESSAGE", GOOD_SEND))
    assert (reply.http_status, reply.body) == (status, None)
    assert reply.text.startswith("<html>")
    assert reply.headers["content-type"] == "text/html"
    assert sim.messages == []


@pytest.mark.parametrize(
    ("fault", "error", "verdict", "sent"),
    [
        pytest.param(Fault.TIMEOUT, SmsFlyTimeout, Verdict.UNKNOWN, 1, id="timeout"),
        pytest.param(
            Fault.CONNECTION_REFUSED, SmsFlyConnectionError, Verdict.NOT_SENT, 0, id="refused"
        ),
        pytest.param(Fault.CONNECTION_RESET, SmsFlyTransportError, Verdict.UNKNOWN, 1, id="reset"),
    ],
)
def test_a_transport_fault_raises_with_what_it_says_of_the_send(
    sim: Simulator,
    backend: SandboxBackend,
    fault: Fault,
    error: type[SmsFlyTransportError],
    verdict: Verdict,
    sent: int,
) -> None:
    """A timeout or a reset comes after the message was sent (its outcome is unknown); a
    refused connection, before (nothing was sent)."""
    sim.inject(fault)
    with pytest.raises(error) as caught:
        backend.send(body("SENDMESSAGE", GOOD_SEND))
    assert type(caught.value) is error
    assert caught.value.verdict is verdict
    assert caught.value.action == "SENDMESSAGE"
    assert len(sim.messages) == sent


def test_broken_json_is_returned_as_text_after_sending(
    sim: Simulator, backend: SandboxBackend
) -> None:
    sim.inject(Fault.BROKEN_JSON)
    reply = backend.send(body("SENDMESSAGE", GOOD_SEND))
    assert (reply.http_status, reply.body) == (200, None)
    assert reply.text.startswith('{"success": 1, "date": ')
    with pytest.raises(ValueError, match=r"Expecting|Unterminated"):
        json.loads(reply.text)
    assert len(sim.messages) == 1


def test_empty_body_and_html_page_replies(sim: Simulator, backend: SandboxBackend) -> None:
    sim.inject(Fault.EMPTY_BODY)
    sim.inject(Fault.HTML_ERROR)
    assert backend.send(body("GETBALANCE")) == RawReply(
        200, None, text="", headers={"content-type": "application/json"}
    )
    html = backend.send(body("GETBALANCE"))
    assert (html.http_status, html.body) == (200, None)
    assert html.text.startswith("<!DOCTYPE html>")
    assert len(sim.requests_for("GETBALANCE")) == 2  # both were processed


def test_a_fault_is_used_once_then_requests_succeed(
    sim: Simulator, backend: SandboxBackend
) -> None:
    sim.inject(Fault.SERVER_ERROR)
    assert backend.send(body("GETBALANCE")).http_status == 500
    assert backend.send(body("GETBALANCE")).http_status == 200


def test_times_repeats_a_fault(sim: Simulator, backend: SandboxBackend) -> None:
    sim.inject(Fault.BAD_GATEWAY, times=3)
    assert [backend.send(body("GETBALANCE")).http_status for _ in range(4)] == [502, 502, 502, 200]


def test_faults_apply_in_order_and_only_to_their_action(
    sim: Simulator, backend: SandboxBackend
) -> None:
    sim.inject(Fault.SERVER_ERROR, action="SENDMESSAGE")
    sim.inject(Fault.BAD_GATEWAY)
    sim.inject(Fault.SERVICE_UNAVAILABLE, action="SENDMESSAGE")
    assert backend.send(body("GETBALANCE")).http_status == 502
    assert backend.send(body("GETBALANCE")).http_status == 200
    assert backend.send(body("SENDMESSAGE", GOOD_SEND)).http_status == 500
    assert backend.send(body("SENDMESSAGE", GOOD_SEND)).http_status == 503
    assert backend.send(body("SENDMESSAGE", GOOD_SEND)).http_status == 200
    assert sim.pending_faults == []


def test_handle_is_the_core_and_ignores_faults(sim: Simulator) -> None:
    sim.inject(Fault.SERVER_ERROR)
    assert call(sim, "GETBALANCE")[0] == 200
    assert sim.pending_faults == [(Fault.SERVER_ERROR, 1, None)]


def test_the_burst_limit_refuses_with_429() -> None:
    sim = Simulator(rate_limit=0.001, burst=3)  # no refill within the test
    backend = SandboxBackend(simulator=sim)
    statuses = [backend.send(body("GETBALANCE")).http_status for _ in range(5)]
    assert statuses == [200, 200, 200, 429, 429]
    refused = backend.send(body("GETBALANCE"))
    assert int(refused.headers["retry-after"]) >= 1
    assert len([r for r in sim.requests if r.processed]) == 3


def test_latency_is_spent_on_every_request() -> None:
    backend = SandboxBackend(simulator=Simulator(latency=0.05))
    started = time.monotonic()
    for _ in range(5):
        backend.send(body("GETBALANCE"))
    assert time.monotonic() - started >= 0.25


# --- records -----------------------------------------------------------------------------


def test_requests_are_recorded_with_their_replies(sim: Simulator) -> None:
    call(sim, "GETBALANCE")
    sim.advance(1)
    send(sim)
    first, second = sim.requests
    assert (first.action, first.http_status, first.at) == ("GETBALANCE", 200, T0)
    assert first.reply is not None
    assert first.reply["data"] == {"balance": "1000.000"}
    assert second.body["data"]["recipient"] == "380501234567"
    assert sim.requests_for("SENDMESSAGE") == [second]


def test_a_body_that_is_not_json_is_recorded_as_text(sim: Simulator) -> None:
    sim.handle(b"hello")
    (recorded,) = sim.requests
    assert (recorded.action, recorded.body, recorded.http_status) == (None, "hello", 422)


def test_records_are_copies(sim: Simulator) -> None:
    request = body("SENDMESSAGE", {**GOOD_SEND, "sms": dict(SMS)})
    send_reply = sim.handle(request)[1]
    request["data"]["sms"]["text"] = "changed"
    send_reply["data"]["messageID"] = "changed"
    assert sim.requests[0].body["data"]["sms"]["text"] == "Hello"
    assert sim.requests[0].reply is not None
    assert sim.requests[0].reply["data"]["messageID"] != "changed"


def test_sent_messages_are_recorded(sim: Simulator) -> None:
    message_id = sent_id(sim, channels=("viber", "sms"))
    (message,) = sim.messages
    assert message.message_id == message_id
    assert message.recipient == "380501234567"
    assert message.channels == ("viber", "sms")
    assert message.sms == SMS
    assert message.viber == VIBER
    assert message.costs == {"viber": Decimal("0.750"), "sms": Decimal("0.479")}
    assert message.cost == Decimal("1.229")
    assert (message.sent_at, message.outcome, message.label) == (
        T0,
        Outcome.DELIVERED,
        "promotion",
    )


def test_no_repr_shows_the_api_key(sim: Simulator) -> None:
    sim.configure(api_key=KEY)
    backend = SandboxBackend(simulator=sim)
    backend.send(body("GETBALANCE"))
    sim.inject(Fault.RATE_LIMITED)
    backend.send(body("GETBALANCE"))
    for text in (*map(repr, sim.requests), repr(sim.requests), repr(sim), repr(backend)):
        assert KEY not in text
    assert "***" in repr(sim.requests[0])


# --- the backend -------------------------------------------------------------------------


def test_backends_share_the_process_wide_simulator(default_simulator: Simulator) -> None:
    first, second = SandboxBackend(), SandboxBackend()
    assert first.simulator is second.simulator is default_simulator
    first.send(body("SENDMESSAGE", GOOD_SEND))
    assert second.send(body("GETBALANCE")).body["data"]["balance"] == "999.521"


def test_backend_options_configure_the_simulator_once(default_simulator: Simulator) -> None:
    backend = SandboxBackend(
        balance="10", viber_balance=5, speed=2, latency=0, api_key=KEY, sources={"sms": ["Shop"]}
    )
    assert default_simulator.options["sources"]["sms"] == ("Shop",)
    backend.send(body("SENDMESSAGE", {**GOOD_SEND, "sms": {**SMS, "source": "Shop"}}))
    # A new client built from the same settings does not refill the balance ...
    SandboxBackend(balance="10", viber_balance=5, speed=2, api_key=KEY)
    assert default_simulator.balance == Decimal("9.521")
    # ... while reset() returns to the configured one.
    default_simulator.reset()
    assert default_simulator.balance == Decimal("10.000")
    assert default_simulator.speed == 2.0


def test_backend_accepts_the_base_backend_arguments(sim: Simulator) -> None:
    backend = SandboxBackend(
        simulator=sim,
        api_url="https://sms-fly.ua/api/v2/api.php",
        timeout=(1.0, 2.0),
        user_agent="tests",
        max_retries=0,
        retry_backoff=0.1,
        max_retry_wait=1.0,
    )
    assert backend.timeout == (1.0, 2.0)
    assert backend.send(body("GETBALANCE")).http_status == 200


def test_unknown_or_bad_options_are_refused(sim: Simulator) -> None:
    with pytest.raises(TypeError, match="colour"):
        SandboxBackend(simulator=sim, colour="red")
    with pytest.raises(ValueError, match="speed"):
        Simulator(speed=0)
    with pytest.raises(ValueError, match="balance"):
        Simulator(balance=-1)
    with pytest.raises(ValueError, match="times"):
        sim.inject(Fault.TIMEOUT, times=0)


def test_a_body_json_cannot_carry_fails_as_on_the_wire(backend: SandboxBackend) -> None:
    with pytest.raises(TypeError):
        backend.send(body("GETBALANCE", {"amount": Decimal(1)}))


def test_the_sandbox_needs_neither_django_settings_nor_a_database() -> None:
    script = (
        "import sys\n"
        "from django_smsfly.backends.sandbox import SandboxBackend\n"
        "body = {'auth': {'key': 'k'}, 'action': 'GETBALANCE', 'data': {}}\n"
        "reply = SandboxBackend().send(body)\n"
        "assert reply.http_status == 200, reply\n"
        "unwanted = ('django.db', 'django_smsfly.models')\n"
        "loaded = [m for m in sys.modules if m.startswith(unwanted)]\n"
        "assert not loaded, loaded\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", script], check=True, cwd=ROOT, env=env, timeout=60
    )


# --- threads -----------------------------------------------------------------------------


def test_many_threads_sending_at_once(sim: Simulator, backend: SandboxBackend) -> None:
    ids: list[str] = []
    lock = threading.Lock()

    def worker(_index: int) -> None:
        for _ in range(50):
            reply = backend.send(body("SENDMESSAGE", GOOD_SEND))
            with lock:
                ids.append(reply.body["data"]["messageID"])

    run_together(16, worker)
    assert len(ids) == len(set(ids)) == 800
    assert len(sim.messages) == 800
    assert sim.balance == Decimal("1000.000") - 800 * Decimal("0.479")
