"""End to end: the client and the HTTP backend against the sandbox served over real HTTP.

Everything here crosses a real socket on 127.0.0.1: request building, JSON on the wire,
keep-alive, error mapping and the sandbox's answers.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from django_smsfly.backends.http import HTTPBackend
from django_smsfly.backends.sandbox import TEST_NUMBERS, Fault, Outcome, Simulator
from django_smsfly.backends.sandbox_server import SandboxServer
from django_smsfly.channels import Channel
from django_smsfly.client import SmsFlyClient
from django_smsfly.exceptions import (
    SmsFlyAuthError,
    SmsFlyError,
    SmsFlyInsufficientFunds,
    SmsFlyInvalidRequest,
    SmsFlyMessageNotFound,
    SmsFlyRateLimited,
    SmsFlyServerError,
    SmsFlyTimeout,
    Verdict,
)
from django_smsfly.statuses import Status

pytestmark = pytest.mark.e2e

KEY = "e2e-key-0123456789abcdef0123456789ab"


@pytest.fixture
def simulator() -> Simulator:
    simulator = Simulator(api_key=KEY)
    simulator.freeze()
    return simulator


@pytest.fixture
def server(simulator: Simulator) -> Iterator[SandboxServer]:
    with SandboxServer(simulator) as running:
        yield running


@pytest.fixture
def waits() -> list[float]:
    return []


@pytest.fixture
def smsfly(server: SandboxServer, waits: list[float]) -> Iterator[SmsFlyClient]:
    backend = HTTPBackend(api_url=server.url, timeout=(2.0, 2.0), sleep=waits.append)
    client = SmsFlyClient(KEY, backend=backend, sms_source="InfoCenter", viber_source="Promo")
    yield client
    client.close()


def test_every_read_action_over_http(smsfly: SmsFlyClient) -> None:
    assert smsfly.get_balance() == Decimal("1000.000")
    balances = smsfly.get_balance_ext()
    assert (balances.sms, balances.viber) == (Decimal("1000.000"), Decimal("500.000"))
    assert "InfoCenter" in smsfly.get_sources().sms
    assert "Promo" in smsfly.get_sources(["viber"]).viber
    price_list = smsfly.get_price_list("255")
    assert len(price_list) > 1
    some = next(iter(price_list))
    assert (
        smsfly.get_price(some.mcc, some.mnc, [some.channel]).get(some.channel, some.mcc, some.mnc)
        == some.price
    )


def test_send_sms_and_follow_it_to_delivered(
    smsfly: SmsFlyClient, simulator: Simulator, server: SandboxServer
) -> None:
    result = smsfly.send_sms("050 123 4567", "Your code is 1234")
    assert result.message_id.startswith("FAPI")
    assert result["sms"].status is Status.ACCEPTD
    assert result["sms"].cost is not None
    assert result["sms"].cost > 0
    assert smsfly.get_balance() == Decimal("1000.000") - result["sms"].cost
    sent = simulator.requests_for("SENDMESSAGE")[0].body
    assert sent["data"] == {
        "recipient": "380501234567",
        "channels": ["sms"],
        "sms": {"source": "InfoCenter", "text": "Your code is 1234"},
    }
    seen = [smsfly.get_message_status(result.message_id)["sms"].status]
    for _ in range(4):
        simulator.advance(2)
        seen.append(smsfly.get_message_status(result.message_id)["sms"].status)
    assert seen[-1] is Status.DELIVRD
    assert seen == sorted(seen, key=list(Status).index)  # only ever forward
    # Every request went over one kept-alive connection.
    assert server.connection_count == 1


def test_viber_with_sms_fallback_when_viber_fails(
    smsfly: SmsFlyClient, simulator: Simulator
) -> None:
    result = smsfly.send_viber(
        TEST_NUMBERS[Outcome.NO_VIBER], text="Order 1234 is ready", sms_text="Order 1234 is ready"
    )
    assert list(result.channels) == [Channel.VIBER, Channel.SMS]
    assert result["viber"].label is not None
    simulator.advance(60)
    status = smsfly.get_message_status(result.message_id)
    assert status["viber"].status is Status.UNDELIV
    assert status["sms"].status is Status.DELIVRD


def test_viber_delivered_refunds_the_sms_fallback(
    smsfly: SmsFlyClient, simulator: Simulator
) -> None:
    result = smsfly.send_viber("380671234567", text="Hello", sms_text="Hello")
    simulator.advance(60)
    status = smsfly.get_message_status(result.message_id)
    assert status["viber"].status is Status.VIEWED
    assert status["sms"].status is Status.REFUND


def test_api_refusals_over_http(smsfly: SmsFlyClient, simulator: Simulator) -> None:
    with pytest.raises(SmsFlyInvalidRequest) as info:
        smsfly.send_sms(TEST_NUMBERS[Outcome.REJECTED], "Hi")
    assert (info.value.code, info.value.http_status) == ("INVRECIPIENT", 400)
    with pytest.raises(SmsFlyInvalidRequest) as info:
        smsfly.send_sms("380501234567", "Hi", source="NotMine")
    assert info.value.code == "INVSOURCE"
    with pytest.raises(SmsFlyMessageNotFound):
        smsfly.get_message_status("FAPI0000")
    simulator.balance = Decimal("0.01")
    with pytest.raises(SmsFlyInsufficientFunds):
        smsfly.send_sms("380501234567", "Hi")
    assert simulator.messages == []


def test_wrong_key_is_an_auth_error_that_does_not_show_the_key(server: SandboxServer) -> None:
    wrong = "wrong-key-0123456789abcdef0123456789"
    client = SmsFlyClient(wrong, backend=HTTPBackend(api_url=server.url))
    with pytest.raises(SmsFlyAuthError) as info:
        client.get_balance()
    assert info.value.http_status == 403
    assert wrong not in str(info.value)
    assert wrong not in repr(info.value)


def test_send_is_retried_after_429_and_sent_once(
    smsfly: SmsFlyClient, simulator: Simulator, waits: list[float]
) -> None:
    simulator.inject(Fault.RATE_LIMITED, retry_after=1)
    result = smsfly.send_sms("380501234567", "Hi")
    assert waits == [1.0]
    assert len(simulator.messages) == 1
    assert simulator.messages[0].message_id == result.message_id


@pytest.mark.parametrize(
    ("fault", "options", "error", "sent"),
    [
        pytest.param(Fault.SERVER_ERROR, {}, SmsFlyServerError, 0, id="500"),
        # The server processes the send, then says nothing until the client gives up.
        pytest.param(Fault.TIMEOUT, {"delay": 5}, SmsFlyTimeout, 1, id="read-timeout"),
    ],
)
def test_send_is_not_repeated_when_its_outcome_is_unknown(
    smsfly: SmsFlyClient,
    simulator: Simulator,
    fault: Fault,
    options: dict[str, Any],
    error: type[SmsFlyError],
    sent: int,
) -> None:
    simulator.inject(fault, **options)
    with pytest.raises(error) as info:
        smsfly.send_sms("380501234567", "Hi")
    assert info.value.verdict is Verdict.UNKNOWN
    assert len(simulator.requests_for("SENDMESSAGE")) == 1
    # After a timeout it was in fact sent: "unknown" was right.
    assert len(simulator.messages) == sent


def test_read_only_action_is_retried_after_a_502(
    smsfly: SmsFlyClient, simulator: Simulator
) -> None:
    simulator.inject(Fault.BAD_GATEWAY)
    assert smsfly.get_balance() == Decimal("1000.000")
    assert len(simulator.requests_for("GETBALANCE")) == 2


def test_persistent_429_gives_up_with_rate_limited(
    smsfly: SmsFlyClient, simulator: Simulator
) -> None:
    simulator.inject(Fault.RATE_LIMITED, times=10)
    with pytest.raises(SmsFlyRateLimited) as info:
        smsfly.send_sms("380501234567", "Hi")
    assert info.value.safe_to_retry
    assert simulator.messages == []
