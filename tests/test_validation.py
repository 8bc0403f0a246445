"""Validation: bad input is refused with a message naming the field, before any request."""

from __future__ import annotations

from typing import Any

import pytest

from django_smsfly.channels import Channel
from django_smsfly.exceptions import SmsFlyValidationError
from django_smsfly.validation import (
    SmsContent,
    ViberContent,
    build_send_data,
    normalize_recipient,
    validate_channels,
    validate_ttl,
)


@pytest.mark.parametrize(
    "written",
    [
        "+380 (50) 123-45-67",
        "050 123 4567",
        "380501234567",
        "+380501234567",
        "0501234567",
        "00380501234567",
        380501234567,
    ],
)
def test_every_written_form_of_a_ukrainian_number_is_the_same(written: object) -> None:
    assert normalize_recipient(written, "UA") == "380501234567"


def test_region_decides_numbers_without_a_country_code() -> None:
    assert normalize_recipient("512 345 678", "PL") == "48512345678"
    assert normalize_recipient("+48 512 345 678", "UA") == "48512345678"
    # The API's own form keeps its country code whatever the region.
    assert normalize_recipient("380501234567", "PL") == "380501234567"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "required"),
        ("hello", "not a valid phone number"),
        ("12345", "not a valid phone number"),
        ("+380 44 123 45 67", "not a mobile number"),  # a Kyiv landline
        ("3805012345678901", "not a valid phone number"),
        ("1" * 100, "not a phone number"),
        (None, "expected a phone number"),
        (True, "expected a phone number"),
    ],
)
def test_bad_recipients_are_refused(value: object, reason: str) -> None:
    with pytest.raises(SmsFlyValidationError) as info:
        normalize_recipient(value, "UA")
    assert info.value.field == "recipient"
    assert reason in str(info.value)
    assert isinstance(info.value, ValueError)  # a validation error is also a ValueError


def test_channels_keep_their_order() -> None:
    assert validate_channels(["viber", "sms"]) == (Channel.VIBER, Channel.SMS)
    assert validate_channels("sms") == (Channel.SMS,)


@pytest.mark.parametrize(
    ("channels", "reason"),
    [([], "at least one"), (["sms", "sms"], "twice"), (["fax"], "unknown channel")],
)
def test_bad_channels(channels: list[str], reason: str) -> None:
    with pytest.raises(SmsFlyValidationError, match=reason) as info:
        validate_channels(channels)
    assert info.value.field == "channels"


@pytest.mark.parametrize("ttl", [1, 60, 1440])
def test_ttl_in_range(ttl: int) -> None:
    assert validate_ttl(ttl, "sms.ttl") == ttl


def test_ttl_as_a_numeric_string_is_a_number_of_minutes() -> None:
    # As configuration files and environment variables give it.
    assert validate_ttl("60", "sms.ttl") == 60


@pytest.mark.parametrize("ttl", [0, -5, 1441, 2.5, "2.5", "0", "60 min", True])
def test_ttl_out_of_range(ttl: object) -> None:
    with pytest.raises(SmsFlyValidationError, match=r"sms\.ttl"):
        validate_ttl(ttl, "sms.ttl")


def send(**kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("sms_source", "InfoCenter")
    kwargs.setdefault("viber_source", "Promo")
    return build_send_data("380501234567", **kwargs)


def test_listed_channel_needs_its_content() -> None:
    with pytest.raises(SmsFlyValidationError, match="no content") as info:
        send(channels=["viber", "sms"], viber=ViberContent(text="Hi"))
    assert info.value.field == "sms"


def test_content_for_an_unlisted_channel_is_refused() -> None:
    with pytest.raises(SmsFlyValidationError, match="not among the channels"):
        send(channels=["sms"], sms=SmsContent("Hi"), viber=ViberContent(text="Hi"))


def test_sender_name_comes_from_argument_or_default() -> None:
    assert send(channels=["sms"], sms=SmsContent("Hi"))["sms"]["source"] == "InfoCenter"
    assert send(channels=["sms"], sms=SmsContent("Hi", source="Shop"))["sms"]["source"] == "Shop"
    with pytest.raises(SmsFlyValidationError, match="SMS_SOURCE") as info:
        send(channels=["sms"], sms=SmsContent("Hi"), sms_source=None)
    assert info.value.field == "sms.source"


@pytest.mark.parametrize(
    "viber",
    [
        ViberContent(text="Hi"),
        ViberContent(image="https://example.org/a.png"),
        ViberContent(text="Hi", button_caption="Open", button_url="https://example.org"),
        ViberContent(
            text="Hi",
            button_caption="Open",
            button_url="https://example.org",
            image="https://example.org/a.png",
        ),
        ViberContent(text="x" * 1000),
        ViberContent(text="Hi", button_caption="c" * 30, button_url="http://example.org/x?y=1"),
    ],
)
def test_allowed_viber_combinations(viber: ViberContent) -> None:
    assert send(channels=["viber"], viber=viber)["viber"]["source"] == "Promo"


@pytest.mark.parametrize(
    ("viber", "field"),
    [
        (ViberContent(), "viber"),
        (ViberContent(text=""), "viber.text"),
        (ViberContent(text="x" * 1001), "viber.text"),
        (ViberContent(text="Hi", image="https://example.org/a.png"), "viber.image"),
        (
            ViberContent(
                image="https://example.org/a.png",
                button_caption="Go",
                button_url="https://example.org",
            ),
            "viber.button",
        ),
        (ViberContent(text="Hi", button_caption="Go"), "viber.button_url"),
        (ViberContent(text="Hi", button_url="https://example.org"), "viber.button_caption"),
        (
            ViberContent(text="Hi", button_caption="c" * 31, button_url="https://example.org"),
            "viber.button_caption",
        ),
        (
            ViberContent(text="Hi", button_caption="Go", button_url="javascript:alert(1)"),
            "viber.button_url",
        ),
        (ViberContent(image="http://example.org/a.png"), "viber.image"),
        (ViberContent(image="not a url"), "viber.image"),
        (ViberContent(text="Hi", ttl=2000), "viber.ttl"),
    ],
)
def test_refused_viber_content_names_the_field(viber: ViberContent, field: str) -> None:
    with pytest.raises(SmsFlyValidationError) as info:
        send(channels=["viber"], viber=viber)
    assert info.value.field == field


def test_whole_message_data() -> None:
    data = send(
        channels=["viber", "sms"],
        viber=ViberContent(text="Code 1234", ttl=10),
        sms=SmsContent("Code 1234", ttl=10),
    )
    assert data == {
        "recipient": "380501234567",
        "channels": ["viber", "sms"],
        "viber": {"source": "Promo", "ttl": 10, "text": "Code 1234"},
        "sms": {"source": "InfoCenter", "ttl": 10, "text": "Code 1234"},
    }


def test_unknown_content_field_is_a_validation_error() -> None:
    with pytest.raises(SmsFlyValidationError, match="sms"):
        send(channels=["sms"], sms={"txt": "typo"})


def test_sms_fallback_needs_its_text() -> None:
    from django_smsfly.validation import sms_fallback

    assert sms_fallback(None) is None
    assert sms_fallback("Hi", ttl=5) == SmsContent("Hi", ttl=5)
    with pytest.raises(SmsFlyValidationError, match="sms_text") as info:
        sms_fallback(None, source="Shop")
    assert info.value.field == "sms_text"
