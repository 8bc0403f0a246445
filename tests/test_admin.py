"""The admin's message list, a message's page and the balance panel."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.template import Context, Template
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from django_smsfly import services
from django_smsfly.admin.changelist import MessagePaginator
from django_smsfly.backends.sandbox import Fault, get_simulator
from django_smsfly.models import Message
from django_smsfly.templatetags.smsfly_admin import smsfly_percent
from tests.admin_users import staff_with

pytestmark = pytest.mark.django_db

HOSTILE = '<script>alert("x")</script>'
ESCAPED = "&lt;script&gt;"
LIST_URL = "admin:django_smsfly_message_changelist"


def list_page(browser: Client, **params: Any) -> str:
    response = browser.get(reverse(LIST_URL), params)
    assert response.status_code == 200
    return response.content.decode()


def listed(browser: Client, **params: Any) -> list[Message]:
    response = browser.get(reverse(LIST_URL), params)
    assert response.status_code == 200
    return list(response.context["cl"].result_list)


def created(message: Message, when: dt.datetime) -> Message:
    Message.objects.filter(pk=message.pk).update(created_at=when)
    message.refresh_from_db()
    return message


# -- the list -------------------------------------------------------------------------------


def test_list_shows_messages_with_status_badges(operator: Client) -> None:
    services.send_sms("380501234567", "Hello")
    page = list_page(operator)
    assert "380501234567" in page
    assert 'class="smsfly-badge smsfly-badge-pending">accepted<' in page
    assert "django_smsfly/admin.css" in page


def test_list_shows_channels_in_fallback_order(operator: Client) -> None:
    services.send_viber("380501234567", text="Hi", sms_text="Hi")
    assert "Viber → SMS" in list_page(operator)


def test_search_finds_any_written_form_of_the_number(operator: Client) -> None:
    services.send_sms("380501234567", "Hello")
    services.send_sms("380671234567", "Other")
    for written in ("050 123 45 67", "+380 (50) 123-45-67", "380501234567"):
        assert [m.recipient for m in listed(operator, q=written)] == ["380501234567"]


def test_search_finds_the_message_id_and_words_of_the_text(operator: Client) -> None:
    first = services.send_sms("380501234567", "Your parcel is on its way")
    second = services.send_viber("380671234567", text="Привіт, ваше замовлення готове")
    assert listed(operator, q=first.message_id) == [first]
    assert listed(operator, q="parcel") == [first]
    assert listed(operator, q="замовлення") == [second]


def test_filters_by_status_channels_and_state(operator: Client) -> None:
    sms = services.send_sms("380501234567", "Hello")
    viber = services.send_viber("380501234567", text="Hi", sms_text="Hi")
    refused = services.send_sms("380500000004", "Refused")  # the sandbox refuses this number
    assert listed(operator, status__exact="failed") == [refused]
    assert listed(operator, channels="viber,sms") == [viber]
    assert set(listed(operator, channels="sms")) == {sms, refused}
    assert listed(operator, state__exact="failed") == [refused]


def test_date_hierarchy_offers_only_dates_with_messages(operator: Client) -> None:
    zone = timezone.get_current_timezone()
    created(services.send_sms("380501234567", "a"), dt.datetime(2025, 3, 4, 10, tzinfo=zone))
    created(services.send_sms("380501234567", "b"), dt.datetime(2025, 3, 9, 23, 30, tzinfo=zone))
    created(services.send_sms("380501234567", "c"), dt.datetime(2026, 1, 2, 0, 15, tzinfo=zone))

    def choices(**params: Any) -> list[str]:
        response = operator.get(reverse(LIST_URL), params)
        return [c["title"] for c in response.context["cl"].smsfly_date_hierarchy["choices"]]

    assert choices() == ["2025", "2026"]
    assert choices(created_at__year=2025) == ["March 2025"]
    # Local days: 23:30 in Kyiv is still the 9th although it is the 9th in UTC too,
    # and 00:15 on 2 January in Kyiv is 1 January in UTC.
    assert choices(created_at__year=2025, created_at__month=3) == ["March 4", "March 9"]
    assert choices(created_at__year=2026, created_at__month=1) == ["January 2"]
    page = list_page(operator, created_at__year=2025, created_at__month=3)
    assert "created_at__day=9" in page


def test_date_hierarchy_starts_at_the_month_when_all_messages_share_it(operator: Client) -> None:
    services.send_sms("380501234567", "a")
    response = operator.get(reverse(LIST_URL))
    hierarchy = response.context["cl"].smsfly_date_hierarchy
    today = timezone.localdate()
    assert hierarchy["back"]["title"] == str(today.year)
    assert len(hierarchy["choices"]) == 1


def test_list_queries_do_not_grow_with_rows(operator: Client) -> None:
    user = User.objects.get(username="operator")
    services.send_viber("380501234567", text="One", sms_text="One", created_by=user)
    list_page(operator)  # the balance panel is cached from here on
    with CaptureQueriesContext(connection) as few:
        list_page(operator)
    few_count = len(few)  # the next request clears the connection's query log
    for i in range(30):
        services.send_viber("380501234567", text=f"M{i}", sms_text=f"M{i}", created_by=user)
    with CaptureQueriesContext(connection) as many:
        list_page(operator)
    assert few_count > 0
    assert len(many) == few_count


def test_the_list_never_counts_the_whole_table(operator: Client) -> None:
    services.send_sms("380501234567", "Hello")
    with CaptureQueriesContext(connection) as queries:
        list_page(operator)
    counts = [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]
    assert counts, "the list shows how many messages there are"
    assert all("LIMIT" in sql.upper() for sql in counts), counts


def test_the_count_stops_at_its_limit(operator: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(MessagePaginator, "count_limit", 2)
    for i in range(3):
        services.send_sms("380501234567", f"Hello {i}")
    response = operator.get(reverse(LIST_URL))
    assert response.context["cl"].paginator.count_kind == "more"
    page = response.content.decode()
    assert "more than 2 messages" in page
    assert "Select all matching messages" in page
    monkeypatch.setattr(MessagePaginator, "count_limit", 3)
    page = list_page(operator)
    assert "3 messages" in page
    assert "more than" not in page


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's row estimate")
def test_a_large_unfiltered_table_is_counted_by_estimate(
    operator: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(MessagePaginator, "count_limit", 5)
    for i in range(20):
        services.send_sms("380501234567", f"Hello {i}")
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {Message._meta.db_table}")
    response = operator.get(reverse(LIST_URL))
    assert response.context["cl"].paginator.count_kind == "estimate"
    assert "about 20 messages" in response.content.decode()
    # With a filter the estimate does not apply: the count is capped instead.
    response = operator.get(reverse(LIST_URL), {"status__exact": "accepted"})
    assert response.context["cl"].paginator.count_kind == "more"


# -- a message's page -------------------------------------------------------------------------


def test_hostile_text_metadata_and_error_are_escaped(operator: Client) -> None:
    message = services.send_sms("380501234567", HOSTILE, metadata={"note": HOSTILE})
    Message.objects.filter(pk=message.pk).update(error_code="X<b>", error_text=HOSTILE)
    for page in (
        operator.get(reverse("admin:django_smsfly_message_change", args=[message.pk])),
        operator.get(reverse(LIST_URL), {"q": "alert"}),
    ):
        text = page.content.decode()
        assert HOSTILE not in text
        assert "<b>" not in text
    detail = operator.get(reverse("admin:django_smsfly_message_change", args=[message.pk]))
    assert ESCAPED in detail.content.decode()


def test_the_message_page_is_read_only(operator: Client) -> None:
    message = services.send_sms("380501234567", "Hello")
    url = reverse("admin:django_smsfly_message_change", args=[message.pk])
    page = operator.get(url).content.decode()
    assert 'name="recipient"' not in page  # shown, not editable
    assert "380501234567" in page
    operator.post(url, {"recipient": "380671234567"})
    assert Message.objects.get(pk=message.pk).recipient == "380501234567"


def test_the_message_page_shows_channels_history_cost_and_metadata(operator: Client) -> None:
    message = services.send_viber(
        "380501234567", text="Hi", sms_text="Hi", metadata={"order": 1042}
    )
    page = operator.get(
        reverse("admin:django_smsfly_message_change", args=[message.pk])
    ).content.decode()
    assert message.message_id
    assert message.message_id in page
    assert "0.750" in page  # the Viber channel's cost
    assert "&quot;order&quot;: 1042" in page
    assert "History" in page
    assert "smsfly-refresh" in page  # the refresh button: the message was accepted


def test_the_add_page_is_the_compose_form(operator: Client) -> None:
    page = operator.get(reverse("admin:django_smsfly_message_add")).content.decode()
    assert 'id="smsfly-compose-form"' in page
    assert 'name="content"' not in page


def test_a_viewer_sees_the_list_without_sending_or_actions() -> None:
    services.send_sms("380501234567", "Hello")
    viewer = staff_with("view_message")
    page = list_page(viewer)
    assert "380501234567" in page
    assert "smsfly-compose-link" not in page
    assert "refresh_statuses" not in page
    assert "resend_messages" not in page
    assert viewer.get(reverse("admin:django_smsfly_message_add")).status_code == 403


# -- the balance panel ------------------------------------------------------------------------


def balance_panel(page: str) -> str:
    start = page.index('id="smsfly-balance"')
    return page[start : page.index("</section>", start)]


def test_the_balance_panel_shows_both_balances(operator: Client) -> None:
    simulator = get_simulator()
    simulator.balance = Decimal("812.345")
    simulator.viber_balance = Decimal("401.5")
    panel = balance_panel(list_page(operator))
    assert "812.345" in panel
    assert "401.500" in panel
    assert "below" not in panel


def test_the_balance_panel_warns_below_the_threshold(operator: Client) -> None:
    get_simulator().viber_balance = Decimal("12.5")
    smsfly = {
        "BACKEND": "django_smsfly.backends.sandbox.SandboxBackend",
        "BALANCE_WARNING": Decimal("50"),
    }
    with override_settings(SMSFLY=smsfly):
        panel = balance_panel(list_page(operator))
    assert "A balance is below 50" in panel
    assert 'smsfly-balance-item smsfly-balance-low" data-channel="viber"' in panel
    assert 'smsfly-balance-item" data-channel="sms"' in panel


def test_no_warning_when_the_threshold_is_off(operator: Client) -> None:
    get_simulator().balance = Decimal("1")
    smsfly = {"BACKEND": "django_smsfly.backends.sandbox.SandboxBackend", "BALANCE_WARNING": None}
    with override_settings(SMSFLY=smsfly):
        panel = balance_panel(list_page(operator))
    assert "below" not in panel


@pytest.mark.parametrize("fault", [Fault.CONNECTION_REFUSED, Fault.SERVER_ERROR, Fault.HTML_ERROR])
def test_the_balance_panel_stays_calm_when_smsfly_fails(operator: Client, fault: Fault) -> None:
    services.send_sms("380501234567", "Hello")
    get_simulator().inject(fault, times=10, action="GETBALANCEEXT")
    panel = balance_panel(list_page(operator))
    assert "could not be fetched from SMS-fly" in panel
    assert "380501234567" in list_page(operator)  # and the list is there as ever


def test_the_balance_is_cached_briefly(operator: Client) -> None:
    list_page(operator)
    list_page(operator)
    assert len(get_simulator().requests_for("GETBALANCEEXT")) == 1


SHARES = [None, Decimal(0), Decimal("0.0049"), Decimal("0.7650"), Decimal("0.7651"), Decimal(1)]


@pytest.mark.parametrize("share", SHARES)
def test_a_share_is_written_in_per_cent_as_the_overviews_always_wrote_it(
    share: Decimal | None,
) -> None:
    before = Template(
        "{% if share is None %}—{% else %}{% widthratio share 1 100 %}&nbsp;%{% endif %}"
    )
    assert smsfly_percent(share) == before.render(Context({"share": share}))
