"""SmsFlyClient: the exact requests each action sends and how every reply is read.

HTTP is faked with `responses`; the backend is the real HTTPBackend.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from decimal import Decimal
from typing import Any

import pytest
import requests
import responses

from django_smsfly import __version__
from django_smsfly.channels import Channel
from django_smsfly.client import SmsFlyClient
from django_smsfly.exceptions import (
    SmsFlyAPIError,
    SmsFlyAuthError,
    SmsFlyBadReply,
    SmsFlyConnectionError,
    SmsFlyError,
    SmsFlyInsufficientFunds,
    SmsFlyInvalidRequest,
    SmsFlyMessageNotFound,
    SmsFlyRateLimited,
    SmsFlyServerError,
    SmsFlyTimeout,
    SmsFlyValidationError,
    Verdict,
)
from django_smsfly.results import KYIV
from django_smsfly.statuses import Status
from tests.conftest import API_KEY, API_URL

AUTH = {"key": API_KEY, "appversion": f"django-smsfly/{__version__}"}

# Sample replies from the API document (v2.04).
DOC_BALANCE = {"success": 1, "date": "2021-12-16 17:15:25 +0200", "data": {"balance": "91.477"}}
DOC_BALANCE_EXT = {
    "success": 1,
    "date": "2021-12-16 17:15:25 +0200",
    "data": {"balance": {"sms": "91.477", "viber": "191.477"}},
}
DOC_SOURCES = {
    "success": 1,
    "date": "2022-11-14 18:50:11 +0200",
    "data": {"viber": ["Promo", "Taxi"], "sms": ["myAlphaName", "myAlphaName2"]},
}
DOC_PRICELIST = {
    "success": 1,
    "date": "2022-11-14 18:50:11 +0200",
    "data": {
        "pricelist": {"sms": {"255": {"00": "0.479", "01": "0.478", "03": "0.477", "06": "0.476"}}}
    },
}
DOC_PRICE = {
    "success": 1,
    "date": "2022-11-14 18:50:11 +0200",
    "data": {"price": {"sms": {"255": {"01": "0.478"}}}},
}
DOC_SEND = {
    "success": 1,
    "date": "2021-12-17 10:36:07 +0200",
    "data": {
        "messageID": "FAPI00040A3AFA000002",
        "viber": {
            "status": "ACCEPTED",
            "date": "2021-12-17 10:36:07 +0200",
            "label": "transaction:1",
            "cost": 0.750,
        },
        "sms": {"status": "ACCEPTED", "date": "2021-12-17 10:36:07 +0200", "cost": 0.475},
    },
}
DOC_STATUS = {
    "success": 1,
    "date": "2021-12-17 10:54:37 +0200",
    "data": {
        "messageID": "FAPI00040A3AFA000002",
        "viber": {"status": "DELIVRD", "date": "2021-12-17 10:36:09"},
        "sms": {"status": "REFUND", "date": "2021-12-17 10:36:12"},
    },
}
# The live API's variant: ACCEPTD spelling and costs as strings.
REAL_SEND = {
    "success": 1,
    "date": "2021-12-17 10:36:07 +0200",
    "data": {
        "messageID": "FAPI00040A3AFA000003",
        "sms": {"status": "ACCEPTD", "date": "2021-12-17 10:36:07 +0200", "cost": "0.479"},
    },
}


def reply(
    mocked: responses.RequestsMock,
    body: Any,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> None:
    """Queue one reply for the next POST."""
    if isinstance(body, str):
        mocked.post(API_URL, body=body, status=status, headers=headers)
    else:
        mocked.post(API_URL, json=body, status=status, headers=headers)


def sent(mocked: responses.RequestsMock, index: int = -1) -> dict[str, Any]:
    """The JSON body of a request the client sent."""
    body = mocked.calls[index].request.body
    assert body is not None
    return dict(json.loads(body))


def error(code: str, description: str = "") -> dict[str, Any]:
    return {
        "success": 0,
        "error": {"code": code, "date": "2021-02-03 04:05:06 +0200", "description": description},
    }


# -- requests ------------------------------------------------------------------------


def test_get_balance_sends_the_documented_body_and_reads_a_decimal(
    client: SmsFlyClient, mocked: responses.RequestsMock
) -> None:
    reply(mocked, DOC_BALANCE)
    assert client.get_balance() == Decimal("91.477")
    assert sent(mocked) == {"auth": AUTH, "action": "GETBALANCE", "data": {}}


def test_balance_sent_as_a_number_is_read_exactly(
    client: SmsFlyClient, mocked: responses.RequestsMock
) -> None:
    reply(mocked, {"success": 1, "data": {"balance": 91.477}})
    assert client.get_balance() == Decimal("91.477")


def test_get_balance_ext(client: SmsFlyClient, mocked: responses.RequestsMock) -> None:
    reply(mocked, DOC_BALANCE_EXT)
    balances = client.get_balance_ext()
    assert (balances.sms, balances.viber) == (Decimal("91.477"), Decimal("191.477"))
    assert balances.as_dict() == {"sms": Decimal("91.477"), "viber": Decimal("191.477")}
    assert sent(mocked) == {"auth": AUTH, "action": "GETBALANCEEXT", "data": {}}


def test_get_sources(client: SmsFlyClient, mocked: responses.RequestsMock) -> None:
    reply(mocked, DOC_SOURCES)
    sources = client.get_sources()
    assert sources.sms == ("myAlphaName", "myAlphaName2")
    assert sources.for_channel("viber") == ("Promo", "Taxi")
    assert sent(mocked) == {
        "auth": AUTH,
        "action": "GETSOURCES",
        "data": {"channels": ["sms", "viber"]},
    }


def test_get_sources_for_one_channel(client: SmsFlyClient, mocked: responses.RequestsMock) -> None:
    reply(mocked, {"success": 1, "data": {"viber": ["Promo"]}})
    assert client.get_sources(["viber"]).sms == ()
    assert sent(mocked)["data"] == {"channels": ["viber"]}


def test_get_price_list(client: SmsFlyClient, mocked: responses.RequestsMock) -> None:
    reply(mocked, DOC_PRICELIST)
    prices = client.get_price_list("255")
    assert len(prices) == 4
    assert prices.get("sms", "255", "03") == Decimal("0.477")
    assert prices.get(Channel.VIBER, "255", "03") is None
    assert sent(mocked) == {
        "auth": AUTH,
        "action": "GETPRICELIST",
        "data": {"channels": ["sms", "viber"], "mcc": "255"},
    }


def test_get_price(client: SmsFlyClient, mocked: responses.RequestsMock) -> None:
    reply(mocked, DOC_PRICE)
    prices = client.get_price(255, "01", channels=["sms"])
    assert prices.get("sms", "255", "01") == Decimal("0.478")
    assert sent(mocked) == {
        "auth": AUTH,
        "action": "GETPRICE",
        "data": {"channels": ["sms"], "mcc": "255", "mnc": "01"},
    }


@pytest.mark.parametrize("mnc", [1, "1", "01", " 01 "])
def test_get_price_normalizes_the_network_code(
    client: SmsFlyClient, mocked: responses.RequestsMock, mnc: Any
) -> None:
    """``get_price(255, 1)`` sent ``"mnc": "1"`` and looked the price up under ``"1"``,
    while replies key networks as ``"01"``: the lookup found nothing."""
    reply(mocked, DOC_PRICE)
    prices = client.get_price(255, mnc, channels=["sms"])
    assert sent(mocked)["data"] == {"channels": ["sms"], "mcc": "255", "mnc": "01"}
    assert prices.get("sms", 255, mnc) == Decimal("0.478")
    assert prices.get("sms", "255", "1") == Decimal("0.478")


@pytest.mark.parametrize("ttl", ["300", " 300 "])
def test_ttl_as_a_numeric_string_is_sent_as_a_number(
    client: SmsFlyClient, mocked: responses.RequestsMock, ttl: Any
) -> None:
    reply(mocked, REAL_SEND)
    client.send_sms("063 123 4567", "You message text", ttl=ttl)
    assert sent(mocked)["data"]["sms"]["ttl"] == 300


@pytest.mark.parametrize("ttl", ["3.5", "", "five", "٣٠٠", True])
def test_a_ttl_that_is_not_whole_minutes_is_refused(client: SmsFlyClient, ttl: Any) -> None:
    with pytest.raises(SmsFlyValidationError, match="whole number of minutes"):
        client.send_sms("063 123 4567", "Hi", ttl=ttl)


def test_send_sms_body(client: SmsFlyClient, mocked: responses.RequestsMock) -> None:
    reply(mocked, REAL_SEND)
    result = client.send_sms("063 123 4567", "You message text", ttl=300)
    assert sent(mocked) == {
        "auth": AUTH,
        "action": "SENDMESSAGE",
        "data": {
            "recipient": "380631234567",
            "channels": ["sms"],
            "sms": {"source": "InfoCenter", "ttl": 300, "text": "You message text"},
        },
    }
    assert result.message_id == "FAPI00040A3AFA000003"
    assert result["sms"].status is Status.ACCEPTD
    assert result["sms"].cost == Decimal("0.479")
    assert result.cost == Decimal("0.479")


def test_send_flash_sms_sets_flash_1(client: SmsFlyClient, mocked: responses.RequestsMock) -> None:
    reply(mocked, REAL_SEND)
    client.send_sms("380631234567", "Flash!", source="Other", flash=True)
    assert sent(mocked)["data"]["sms"] == {"source": "Other", "flash": 1, "text": "Flash!"}


def test_send_viber_only_body(client: SmsFlyClient, mocked: responses.RequestsMock) -> None:
    reply(mocked, REAL_SEND)
    client.send_viber(
        "+380 50 123 45 67",
        text="You message text",
        button_caption="SuperButton",
        button_url="https://you.site/",
        image="https://you.site/img/image.png",
        ttl=60,
    )
    assert sent(mocked)["data"] == {
        "recipient": "380501234567",
        "channels": ["viber"],
        "viber": {
            "source": "Promo",
            "ttl": 60,
            "text": "You message text",
            "button": {"caption": "SuperButton", "url": "https://you.site/"},
            "image": "https://you.site/img/image.png",
        },
    }


def test_send_viber_with_sms_fallback_body_and_doc_reply(
    client: SmsFlyClient, mocked: responses.RequestsMock
) -> None:
    reply(mocked, DOC_SEND)
    result = client.send_viber(
        "380501234567",
        text="Viber text",
        button_caption="Button Caption",
        button_url="https://example.org",
        image="https://example.org/image.png",
        source="MyViberSource",
        ttl=5,
        sms_text="SMS text",
        sms_source="MySMSSource",
        sms_ttl=5,
    )
    # The document's own example, field for field.
    assert sent(mocked)["data"] == {
        "recipient": "380501234567",
        "channels": ["viber", "sms"],
        "viber": {
            "source": "MyViberSource",
            "ttl": 5,
            "text": "Viber text",
            "button": {"caption": "Button Caption", "url": "https://example.org"},
            "image": "https://example.org/image.png",
        },
        "sms": {"source": "MySMSSource", "ttl": 5, "text": "SMS text"},
    }
    assert list(result.channels) == [Channel.VIBER, Channel.SMS]
    viber = result["viber"]
    assert viber.status is Status.ACCEPTD  # "ACCEPTED" in the document
    assert viber.raw_status == "ACCEPTED"
    assert viber.cost == Decimal("0.75")
    assert viber.label == "transaction:1"
    assert viber.date == dt.datetime(
        2021, 12, 17, 10, 36, 7, tzinfo=dt.timezone(dt.timedelta(hours=2))
    )
    assert result.cost == Decimal("1.225")
    assert result.date is not None
    assert result.date.utcoffset() == dt.timedelta(hours=2)


def test_send_message_takes_mappings(client: SmsFlyClient, mocked: responses.RequestsMock) -> None:
    reply(mocked, REAL_SEND)
    client.send_message("380501234567", channels=["sms"], sms={"text": "Hi", "source": "Shop"})
    assert sent(mocked)["data"]["sms"] == {"source": "Shop", "text": "Hi"}


def test_appversion_can_be_turned_off(mocked: responses.RequestsMock) -> None:
    from django_smsfly.backends.http import HTTPBackend

    smsfly = SmsFlyClient(API_KEY, backend=HTTPBackend(api_url=API_URL), appversion=None)
    reply(mocked, DOC_BALANCE)
    smsfly.get_balance()
    assert sent(mocked)["auth"] == {"key": API_KEY}


def test_get_message_status_reads_dates_without_offset_as_kyiv_time(
    client: SmsFlyClient, mocked: responses.RequestsMock
) -> None:
    reply(mocked, DOC_STATUS)
    result = client.get_message_status("FAPI00040A3AFA000002")
    assert sent(mocked) == {
        "auth": AUTH,
        "action": "GETMESSAGESTATUS",
        "data": {"messageID": "FAPI00040A3AFA000002"},
    }
    assert result.message_id == "FAPI00040A3AFA000002"
    assert result["viber"].status is Status.DELIVRD
    assert result["sms"].status is Status.REFUND
    assert result["viber"].date == dt.datetime(2021, 12, 17, 10, 36, 9, tzinfo=KYIV)
    assert result["viber"].date.utcoffset() == dt.timedelta(hours=2)  # winter time
    assert result["sms"].cost is None


def test_unknown_status_is_kept_not_fatal(
    client: SmsFlyClient, mocked: responses.RequestsMock
) -> None:
    body = {
        "success": 1,
        "data": {
            "messageID": "FAPI1",
            "sms": {"status": "TELEPORTED", "date": "2021-12-17 10:36:12"},
        },
    }
    reply(mocked, body)
    result = client.get_message_status("FAPI1")
    assert result["sms"].status is Status.UNKNOWN
    assert result["sms"].raw_status == "TELEPORTED"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ACCEPTD", Status.ACCEPTD),
        ("ACCEPTED", Status.ACCEPTD),
        ("DELIVRD", Status.DELIVRD),
        ("DELIVERED", Status.DELIVRD),
        ("ACCEPT", Status.ACCEPTD),  # seen in other SMS-fly clients' fixtures
        ("STOPED", Status.STOPED),
        ("INSUFFICIENTFUND", Status.INSUFFICIENTFUND),
        ("INSUFFICIENTFUNDS", Status.INSUFFICIENTFUND),
        ("viewed", Status.VIEWED),
    ],
)
def test_status_aliases(
    client: SmsFlyClient, mocked: responses.RequestsMock, raw: str, expected: Status
) -> None:
    reply(mocked, {"success": 1, "data": {"messageID": "FAPI1", "sms": {"status": raw}}})
    assert client.get_message_status("FAPI1")["sms"].status is expected


def test_mistyped_informative_fields_do_not_lose_a_sent_message(
    client: SmsFlyClient, mocked: responses.RequestsMock, caplog: pytest.LogCaptureFixture
) -> None:
    body = {
        "success": 1,
        "date": "yesterday",
        "data": {"messageID": "FAPI9", "sms": {"status": "ACCEPTD", "date": 5, "cost": "n/a"}},
    }
    reply(mocked, body)
    result = client.send_sms("380501234567", "x")
    assert result.message_id == "FAPI9"
    assert (result["sms"].cost, result["sms"].date, result.date) == (None, None, None)
    assert "sms.cost" in caplog.text


# -- validation happens before any request -------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"recipient": "12345", "text": "x"}, "recipient"),
        ({"recipient": "380441234567", "text": "x"}, "recipient"),  # a landline
        ({"recipient": "380501234567", "text": "   "}, "sms.text"),
        ({"recipient": "380501234567", "text": "x", "ttl": 0}, "sms.ttl"),
        ({"recipient": "380501234567", "text": "x", "ttl": 1441}, "sms.ttl"),
    ],
)
def test_bad_sms_is_refused_before_any_request(
    client: SmsFlyClient, mocked: responses.RequestsMock, kwargs: dict[str, Any], field: str
) -> None:
    with pytest.raises(SmsFlyValidationError) as info:
        client.send_sms(**kwargs)
    assert info.value.field == field
    assert info.value.verdict is Verdict.NOT_SENT
    assert len(mocked.calls) == 0


def test_bad_viber_is_refused_before_any_request(
    client: SmsFlyClient, mocked: responses.RequestsMock
) -> None:
    with pytest.raises(SmsFlyValidationError, match=r"viber\.button_caption"):
        client.send_viber(
            "380501234567", text="Hi", button_caption="x" * 31, button_url="https://a.example"
        )
    assert len(mocked.calls) == 0


def test_status_of_an_empty_id_is_refused(
    client: SmsFlyClient, mocked: responses.RequestsMock
) -> None:
    with pytest.raises(SmsFlyValidationError, match="message_id"):
        client.get_message_status(" ")
    assert len(mocked.calls) == 0


@pytest.mark.parametrize("mcc", ["", "25a", "2555"])
def test_bad_mcc_is_refused(
    client: SmsFlyClient, mocked: responses.RequestsMock, mcc: str
) -> None:
    with pytest.raises(SmsFlyValidationError, match="mcc"):
        client.get_price_list(mcc)
    assert len(mocked.calls) == 0


# -- errors: class and verdict -------------------------------------------------------

ERROR_CODES = [
    ("INVREQUEST", SmsFlyInvalidRequest),
    ("INVACTION", SmsFlyInvalidRequest),
    ("INVRECIPIENT", SmsFlyInvalidRequest),
    ("INVTEXT", SmsFlyInvalidRequest),
    ("INVBUTTON", SmsFlyInvalidRequest),
    ("INVIMAGEURL", SmsFlyInvalidRequest),
    ("INVROUTE", SmsFlyInvalidRequest),
    ("INVSOURCE", SmsFlyInvalidRequest),
    ("INVCHANNELS", SmsFlyInvalidRequest),
    ("INVSMSMESSAGE", SmsFlyInvalidRequest),
    ("INVVIBERMESSAGE", SmsFlyInvalidRequest),
    ("INVMSGID", SmsFlyMessageNotFound),
    ("FORBIDDEN", SmsFlyAuthError),
    ("INSUFFICIENTFUND", SmsFlyInsufficientFunds),
    ("INSUFFICIENTFUNDS", SmsFlyInsufficientFunds),
]


@pytest.mark.parametrize(("code", "cls"), ERROR_CODES)
@pytest.mark.parametrize("http_status", [200, 400])
def test_every_documented_error_code(
    client: SmsFlyClient,
    mocked: responses.RequestsMock,
    code: str,
    cls: type[SmsFlyAPIError],
    http_status: int,
) -> None:
    reply(mocked, error(code, "details here"), status=http_status)
    with pytest.raises(cls) as info:
        client.send_sms("380501234567", "Hello")
    exc = info.value
    assert type(exc) is cls
    assert (exc.code, exc.description, exc.http_status) == (code, "details here", http_status)
    assert exc.reply is not None
    assert exc.reply["error"]["code"] == code
    assert exc.verdict is Verdict.NOT_SENT
    assert not exc.transient
    assert code in str(exc)
    assert len(mocked.calls) == 1


@pytest.mark.parametrize(
    ("http_status", "body", "cls", "verdict"),
    [
        (400, error("INVREQUEST"), SmsFlyInvalidRequest, Verdict.NOT_SENT),
        (400, "<html>Bad Request</html>", SmsFlyInvalidRequest, Verdict.NOT_SENT),
        (403, error("FORBIDDEN"), SmsFlyAuthError, Verdict.NOT_SENT),
        (403, "Forbidden", SmsFlyAuthError, Verdict.NOT_SENT),
        (422, error("INVREQUEST"), SmsFlyInvalidRequest, Verdict.NOT_SENT),
        (422, "", SmsFlyInvalidRequest, Verdict.NOT_SENT),
        (429, "Too Many Requests", SmsFlyRateLimited, Verdict.NOT_SENT),
        (429, error("RATELIMIT"), SmsFlyRateLimited, Verdict.NOT_SENT),
        (500, "<html>Internal Server Error</html>", SmsFlyServerError, Verdict.UNKNOWN),
        (500, error("ERROR"), SmsFlyServerError, Verdict.UNKNOWN),
        (502, "<html>Bad Gateway</html>", SmsFlyServerError, Verdict.UNKNOWN),
        (503, "", SmsFlyServerError, Verdict.UNKNOWN),
        (200, "<html>Maintenance</html>", SmsFlyBadReply, Verdict.UNKNOWN),
        (200, "", SmsFlyBadReply, Verdict.UNKNOWN),
        (200, '{"success": 1, "data": {', SmsFlyBadReply, Verdict.UNKNOWN),
        (200, '["not", "an", "object"]', SmsFlyBadReply, Verdict.UNKNOWN),
        (200, '{"data": {}}', SmsFlyBadReply, Verdict.UNKNOWN),
        (200, '{"success": 1}', SmsFlyBadReply, Verdict.UNKNOWN),
        (
            200,
            '{"success": 1, "data": {"sms": {"status": "ACCEPTD"}}}',
            SmsFlyBadReply,
            Verdict.UNKNOWN,
        ),
    ],
)
def test_http_statuses_and_broken_replies_on_send(
    client: SmsFlyClient,
    mocked: responses.RequestsMock,
    http_status: int,
    body: Any,
    cls: type[SmsFlyError],
    verdict: Verdict,
) -> None:
    # The 429 is retried by the backend: answer every attempt the same way.
    for _ in range(4 if http_status == 429 else 1):
        reply(mocked, body, status=http_status)
    with pytest.raises(cls) as info:
        client.send_sms("380501234567", "Hello")
    assert info.value.verdict is verdict
    if isinstance(info.value, SmsFlyAPIError):
        assert info.value.http_status == http_status
    # A send is repeated only after a 429, which proves nothing was sent.
    assert len(mocked.calls) == (4 if http_status == 429 else 1)


def test_rate_limited_carries_retry_after(
    client: SmsFlyClient, mocked: responses.RequestsMock
) -> None:
    for _ in range(4):
        reply(mocked, "slow down", status=429, headers={"Retry-After": "7"})
    with pytest.raises(SmsFlyRateLimited) as info:
        client.get_balance()
    assert info.value.retry_after == 7.0
    assert info.value.safe_to_retry


def test_connection_refused_is_not_sent(
    client: SmsFlyClient, mocked: responses.RequestsMock
) -> None:
    from urllib3.exceptions import MaxRetryError, NewConnectionError

    cause = MaxRetryError(None, API_URL, NewConnectionError(None, "Connection refused"))  # type: ignore[arg-type]
    for _ in range(4):
        mocked.post(API_URL, body=requests.ConnectionError(cause))
    with pytest.raises(SmsFlyConnectionError) as info:
        client.send_sms("380501234567", "Hello")
    assert info.value.verdict is Verdict.NOT_SENT
    assert info.value.safe_to_retry


def test_read_timeout_is_unknown_and_never_repeated(
    client: SmsFlyClient, mocked: responses.RequestsMock
) -> None:
    mocked.post(API_URL, body=requests.ReadTimeout("read timed out"))
    with pytest.raises(SmsFlyTimeout) as info:
        client.send_sms("380501234567", "Hello")
    assert info.value.verdict is Verdict.UNKNOWN
    assert not info.value.safe_to_retry
    assert len(mocked.calls) == 1


def test_the_key_is_in_no_error_text_repr_or_log(
    client: SmsFlyClient, mocked: responses.RequestsMock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    failures: list[BaseException] = []
    # A hostile server echoing the key back in its error text must not leak it either.
    reply(mocked, error("FORBIDDEN", f"bad key {API_KEY}"), status=403)
    reply(mocked, f"<html>{API_KEY}</html>", status=500)
    reply(mocked, f"<html>{API_KEY}</html>", status=200)
    mocked.post(API_URL, body=requests.ReadTimeout(f"timeout {API_KEY}"))
    for _ in range(4):
        with pytest.raises(SmsFlyError) as info:
            client.send_sms("380501234567", "Hello")
        failures.append(info.value)
    reply(mocked, DOC_BALANCE)
    client.get_balance()
    for exc in failures:
        assert API_KEY not in str(exc)
        assert API_KEY not in repr(exc)
        assert API_KEY not in repr(exc.args)
        assert API_KEY not in repr(vars(exc))
    assert API_KEY not in repr(client)
    assert API_KEY not in caplog.text
    assert "GETBALANCE" in caplog.text  # the log did record the calls


def test_client_needs_a_key() -> None:
    from django_smsfly.backends.http import HTTPBackend

    with pytest.raises(ValueError, match="api_key"):
        SmsFlyClient("", backend=HTTPBackend(api_url=API_URL))
