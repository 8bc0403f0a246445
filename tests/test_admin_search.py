"""The message list's search finds words of the text whatever their case, in any
alphabet, on SQLite as on PostgreSQL (issue 13: ``Ваше`` found 1 message, ``ваше`` 0)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.urls import reverse

from django_smsfly.admin.changelist import SEARCH_LOOKUP
from django_smsfly.models import Message

pytestmark = pytest.mark.django_db

LIST = "admin:django_smsfly_message_changelist"


def message(recipient: str, sms: str = "", viber: str = "") -> Message:
    content = {}
    if sms:
        content["sms"] = {"source": "InfoCenter", "text": sms}
    if viber:
        content["viber"] = {"source": "InfoCenter", "text": viber}
    return Message.objects.create(
        recipient=recipient,
        channels=",".join(content),
        content=content,
        state="accepted",
        status="delivered",
    )


@pytest.fixture
def operator() -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("op", "op@example.com", "pw"))
    return client


def found(operator: Client, term: str) -> set[str]:
    response = operator.get(reverse(LIST), {"q": term})
    assert response.status_code == 200
    return {row.recipient for row in response.context["cl"].result_list}


def test_cyrillic_text_is_found_whatever_its_case(operator: Client) -> None:
    message("380501111111", sms="Ваше замовлення в дорозі")
    message("380502222222", viber="ВАШЕ ЗАМОВЛЕННЯ ГОТОВЕ")
    message("380503333333", sms="Your order has shipped")
    both = {"380501111111", "380502222222"}
    for term in ("Ваше", "ваше", "ВАШЕ", "вАшЕ"):
        assert found(operator, term) == both, term
    assert found(operator, "замовлення готове") == {"380502222222"}  # every word must match
    assert found(operator, "your ORDER") == {"380503333333"}


def test_greek_and_ukrainian_letters_fold_too(operator: Client) -> None:
    message("380502222222", sms="ΣΟΦΊΑ Ґанок Їжак")
    assert found(operator, "σοφία") == {"380502222222"}
    assert found(operator, "ґанок їжак") == {"380502222222"}


@pytest.mark.skipif(
    connection.vendor != "sqlite", reason="PostgreSQL's UPPER() keeps ß, as Django's icontains"
)
def test_sqlite_folds_as_python_does(operator: Client) -> None:
    message("380501111111", sms="Straße")  # str.casefold: ß is ss
    assert found(operator, "STRASSE") == {"380501111111"}


def test_like_wildcards_in_the_term_are_plain_characters(operator: Client) -> None:
    message("380501111111", sms="Знижка 50% на все")
    message("380502222222", sms="Знижка 50 гривень")
    assert found(operator, "50%") == {"380501111111"}
    assert found(operator, "_") == set()


def test_the_number_and_message_id_are_still_searched(operator: Client) -> None:
    row = message("380501234567", sms="Привіт")
    Message.objects.filter(pk=row.pk).update(message_id="FAPI00ABC")
    assert found(operator, "050 123 4567") == {"380501234567"}
    assert found(operator, "FAPI00ABC") == {"380501234567"}


def test_the_lookup_works_outside_the_admin_page() -> None:
    message("380501111111", sms="Ваше замовлення")
    rows = Message.objects.filter(**{f"content__sms__text__{SEARCH_LOOKUP}": "ваше"})
    assert [row.recipient for row in rows] == ["380501111111"]


def test_postgresql_keeps_djangos_icontains() -> None:
    query = str(Message.objects.filter(content__sms__text__smsfly_icontains="ваше").query).upper()
    if connection.vendor == "sqlite":
        assert "SMSFLY_CASEFOLD(" in query
    else:
        assert "SMSFLY_CASEFOLD" not in query
        assert "UPPER(" in query
