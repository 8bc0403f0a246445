"""Masking recipients' numbers (SMSFLY["MASK_RECIPIENTS"])."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import responses

from django_smsfly.clients import get_client
from django_smsfly.privacy import display_recipient, mask_recipient
from tests.conftest import API_KEY, API_URL


def test_mask_keeps_both_ends() -> None:
    assert mask_recipient("380501234567") == "380501****67"
    assert mask_recipient("48601234567") == "486012***67"
    assert mask_recipient("12345") == "*****"


def test_display_follows_the_setting(settings: Any) -> None:
    assert display_recipient("380501234567") == "380501234567"
    settings.SMSFLY = {**settings.SMSFLY, "MASK_RECIPIENTS": True}
    assert display_recipient("380501234567") == "380501****67"


@pytest.mark.parametrize("masked", [False, True])
def test_debug_log_masks_the_number_only_when_asked(
    settings: Any, caplog: pytest.LogCaptureFixture, mocked: responses.RequestsMock, masked: bool
) -> None:
    settings.SMSFLY = {
        **settings.SMSFLY,
        "MASK_RECIPIENTS": masked,
        "BACKEND": "django_smsfly.backends.http.HTTPBackend",
        "API_URL": API_URL,
        "API_KEY": API_KEY,
        "SMS_SOURCE": "InfoCenter",
    }
    mocked.post(
        API_URL,
        json={
            "success": 1,
            "date": "2026-01-01 10:00:00",
            "data": {"messageID": "FAPI1", "sms": {"status": "ACCEPTD", "cost": "0.5"}},
        },
    )
    client = get_client()  # the backend takes MASK_RECIPIENTS from the settings
    with caplog.at_level(logging.DEBUG, logger="django_smsfly"):
        client.send_sms("380501234567", "Hi")
    assert API_KEY not in caplog.text
    if masked:
        assert "380501****67" in caplog.text
        assert "380501234567" not in caplog.text
    else:
        assert "380501234567" in caplog.text
    # What is sent is never masked.
    sent = mocked.calls[0].request.body
    assert isinstance(sent, bytes)
    assert b"380501234567" in sent


def test_a_messages_name_masks_the_number_when_asked(settings: Any) -> None:
    from django_smsfly.models import Message

    message = Message(recipient="380501234567", channels="sms")
    settings.SMSFLY = {**settings.SMSFLY, "MASK_RECIPIENTS": True}
    assert str(message) == "380501****67 (SMS): queued"
    settings.SMSFLY = {**settings.SMSFLY, "MASK_RECIPIENTS": False}
    assert str(message) == "380501234567 (SMS): queued"
