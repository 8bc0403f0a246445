"""The admin's message list and page (browser tests come with the full admin)."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from django_smsfly import services
from django_smsfly.models import Message

pytestmark = pytest.mark.django_db

HOSTILE = '<script>alert("x")</script>'


@pytest.fixture
def operator() -> Client:
    # A Django test client of its own: `client` in this suite is the SMS-fly client.
    browser = Client()
    browser.force_login(User.objects.create_superuser("operator", "op@example.com", "pw"))
    return browser


def list_page(client: Client, **params: Any) -> str:
    response = client.get(reverse("admin:django_smsfly_message_changelist"), params)
    assert response.status_code == 200
    return response.content.decode()


def test_list_shows_messages_with_status_badges(operator: Client) -> None:
    services.send_sms("380501234567", "Hello")
    page = list_page(operator)
    assert "380501234567" in page
    assert "smsfly-badge" in page
    assert "accepted" in page


def test_search_finds_any_written_form_of_the_number(operator: Client) -> None:
    services.send_sms("380501234567", "Hello")
    services.send_sms("380671234567", "Other")
    page = list_page(operator, q="050 123 45 67")
    assert "380501234567" in page
    assert "380671234567" not in page


def test_hostile_text_and_metadata_are_escaped(operator: Client) -> None:
    message = services.send_sms("380501234567", HOSTILE, metadata={"note": HOSTILE})
    page = operator.get(
        reverse("admin:django_smsfly_message_change", args=[message.pk])
    ).content.decode()
    assert HOSTILE not in page
    assert "&lt;script&gt;" in page


def test_the_message_page_is_read_only(operator: Client) -> None:
    message = services.send_sms("380501234567", "Hello")
    url = reverse("admin:django_smsfly_message_change", args=[message.pk])
    page = operator.get(url).content.decode()
    assert 'name="recipient"' not in page  # shown, not editable
    assert "380501234567" in page
    operator.post(url, {"recipient": "380671234567"})
    assert Message.objects.get(pk=message.pk).recipient == "380501234567"


def test_there_is_no_raw_add_form(operator: Client) -> None:
    response = operator.get(reverse("admin:django_smsfly_message_add"))
    assert response.status_code == 403


def test_list_queries_do_not_grow_with_rows(operator: Client) -> None:
    user = User.objects.get(username="operator")
    services.send_sms("380501234567", "One", created_by=user)
    with CaptureQueriesContext(connection) as few:
        list_page(operator)
    for i in range(30):
        services.send_sms("380501234567", f"Message {i}", created_by=user)
    with CaptureQueriesContext(connection) as many:
        list_page(operator)
    assert len(many) == len(few)
