"""Issue 13 items 6, 7 and 8 on the server side: the admin's history of sends, resends and
refreshes; the message page as the message's story and its status endpoint; the compose
form's capitalised errors and its confirmation of a long SMS."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from django_smsfly import services
from django_smsfly.admin.story import error_line, international
from django_smsfly.backends.sandbox import Simulator
from django_smsfly.models import Message, StatusChange

pytestmark = pytest.mark.django_db

ADD_URL = "admin:django_smsfly_message_add"
CHANGE_URL = "admin:django_smsfly_message_change"
STATUS_URL = "admin:django_smsfly_message_status"
LONG_TEXT = "Thank you for your order. " * 20  # 520 GSM-7 characters: 4 parts


def compose(browser: Client, **fields: Any) -> Any:
    token = browser.get(reverse(ADD_URL)).context["form"]["token"].value()
    data = {
        "channels": "sms",
        "send_mode": "now",
        "sms_source": "InfoCenter",
        "token": token,
        "_send": "1",
        **fields,
    }
    return browser.post(reverse(ADD_URL), data)


def page_of(browser: Client, message: Message) -> str:
    response = browser.get(reverse(CHANGE_URL, args=[message.pk]))
    assert response.status_code == 200
    return str(response.content.decode())


def deliver_everything(sandbox: Simulator) -> None:
    """Let SMS-fly's time pass and a status pass run, as the sync loop would."""
    sandbox.advance(60)
    Message.objects.update(next_check_at=timezone.now() - dt.timedelta(seconds=1))
    services.sync_statuses()


def failed_for_funds(sandbox: Simulator, *sends: tuple[str, str]) -> list[Message]:
    """Each ``(number, text)`` sent while the account is empty (so it failed), then the
    account topped up again, so that sending them again succeeds."""
    sandbox.balance = 0
    failed = [services.send_sms(number, text) for number, text in sends]
    sandbox.balance = 1000
    return failed


def story_of(page: str) -> str:
    start = page.index('id="smsfly-story"')
    return page[start : page.index('<fieldset class="module aligned ">', start)]


def log_of(message: Message) -> list[tuple[int, str, str]]:
    entries = LogEntry.objects.filter(object_id=str(message.pk)).order_by("pk")
    return [(e.action_flag, e.user.get_username(), e.get_change_message()) for e in entries]


# -- the admin's history (item 6) ------------------------------------------------------------


def test_a_send_from_the_compose_page_is_in_the_history(operator: Client) -> None:
    compose(operator, recipient="050 123 4567", sms_text="Hello")
    message = Message.objects.get()
    assert log_of(message) == [(ADDITION, "operator", "Sent from the admin.")]
    history = operator.get(reverse("admin:django_smsfly_message_history", args=[message.pk]))
    assert "Sent from the admin." in history.content.decode()
    assert "probably wasn’t added via this admin site" not in history.content.decode()
    index = operator.get(reverse("admin:index")).content.decode()
    assert "Recent actions" in index
    assert reverse(CHANGE_URL, args=[message.pk]) in index


def test_a_second_post_of_the_same_form_logs_nothing_more(operator: Client) -> None:
    token = operator.get(reverse(ADD_URL)).context["form"]["token"].value()
    compose(operator, recipient="050 123 4567", sms_text="Hello", token=token)
    compose(operator, recipient="050 123 4567", sms_text="Hello", token=token)
    assert LogEntry.objects.count() == 1


def test_sending_again_is_in_the_history_and_the_timeline_names_who(
    operator: Client, sandbox: Simulator
) -> None:
    [failed] = failed_for_funds(sandbox, ("380501234567", "Your code: 1234"))
    response = operator.post(reverse("admin:django_smsfly_message_resend", args=[failed.pk]))
    assert response.status_code == 302
    assert log_of(failed) == [(CHANGE, "operator", "Sent again.")]
    story = story_of(page_of(operator, failed))
    assert "Sent again by operator" in story
    assert "RESEND" not in story  # not shown as if SMS-fly had said it


def test_the_bulk_action_logs_each_message_sent_again(
    operator: Client, sandbox: Simulator
) -> None:
    first, second = failed_for_funds(sandbox, ("380501234567", "One"), ("380671234567", "Two"))
    operator.post(
        reverse("admin:django_smsfly_message_changelist"),
        {"action": "resend_messages", "_selected_action": [first.pk, second.pk]},
    )
    assert log_of(first) == [(CHANGE, "operator", "Sent again.")]
    assert log_of(second) == [(CHANGE, "operator", "Sent again.")]


def test_a_resend_made_in_code_is_not_credited_to_anyone(
    operator: Client, sandbox: Simulator
) -> None:
    [failed] = failed_for_funds(sandbox, ("380501234567", "Hello"))
    services.resend(failed.pk)
    story = story_of(page_of(operator, failed))
    assert "Sent again" in story
    assert "Sent again by" not in story


def test_refreshing_a_status_is_in_the_history_with_the_status_found(
    operator: Client, sandbox: Simulator
) -> None:
    message = services.send_sms("380501234567", "Hello")
    sandbox.advance(30)
    operator.post(reverse("admin:django_smsfly_message_refresh", args=[message.pk]))
    assert log_of(message) == [(CHANGE, "operator", "Status refreshed: delivered")]


# -- the message page (item 7) -------------------------------------------------------------------


def test_the_page_is_headed_in_words_not_with_the_raw_channels(
    operator: Client, sandbox: Simulator
) -> None:
    message = services.send_viber("380501234567", text="Hi", sms_text="Hi")
    deliver_everything(sandbox)
    page = page_of(operator, message)
    assert (
        '<h2 id="smsfly-subtitle">Viber, then SMS if Viber fails to +380 50 123 4567 — '
        "delivered via Viber and read</h2>"
    ) in page
    assert "(viber,sms)" not in page


def test_a_delivered_message_has_one_status_line_and_no_error_section(
    operator: Client, sandbox: Simulator
) -> None:
    message = services.send_sms("380501234567", "Hello")
    deliver_everything(sandbox)
    page = page_of(operator, message)
    story = story_of(page)
    assert "Accepted by SMS-fly and delivered to the phone." in story
    assert 'id="smsfly-error"' not in page
    assert ">Error<" not in page
    assert "field-state" not in page  # merged into the one status line
    assert "Delivery timeline" in story
    assert 'id="smsfly-cost"' in story


def test_a_viber_then_sms_message_says_why_it_went_by_sms(
    operator: Client, sandbox: Simulator
) -> None:
    message = services.send_viber("380500000002", text="Hi", sms_text="Hi")  # Viber fails
    deliver_everything(sandbox)
    message.refresh_from_db()
    assert message.delivered_via == "sms"
    story = story_of(page_of(operator, message))
    assert (
        '<div class="readonly" id="smsfly-reason">Viber: not delivered; SMS: delivered</div>'
        in (story)
    )


def test_an_undelivered_message_says_so_per_channel(operator: Client, sandbox: Simulator) -> None:
    message = services.send_sms("380500000001", "Hello")  # every channel UNDELIV
    deliver_everything(sandbox)
    story = story_of(page_of(operator, message))
    assert "Accepted by SMS-fly, but it did not reach the phone." in story
    assert '<div class="readonly" id="smsfly-reason">SMS: not delivered</div>' in story


def test_a_refused_message_says_why_and_has_no_channel_table(operator: Client) -> None:
    message = services.send_sms("380500000004", "Hello")  # INVRECIPIENT
    page = page_of(operator, message)
    story = story_of(page)
    assert (
        "SMS-fly refused it: INVRECIPIENT: wrong recipient: the recipient refuses messages "
        "(sandbox rule)"
    ) in story
    assert "SENDMESSAGE" not in story
    assert 'id="smsfly-channels"' not in page
    assert '<div class="readonly" id="smsfly-cost">nothing</div>' in story
    assert "— not sent</h2>" in page


def test_the_cost_is_what_was_charged_and_a_refunded_channel_says_so(
    operator: Client, sandbox: Simulator
) -> None:
    message = services.send_viber("380671234567", text="Hi", sms_text="Hi")
    deliver_everything(sandbox)
    message.refresh_from_db()
    story = story_of(page_of(operator, message))
    assert '<div class="readonly" id="smsfly-cost">0.750</div>' in story  # Viber only
    assert '<td class="field-cost_display">refunded</td>' in story  # the SMS channel


def test_the_status_endpoint_follows_the_message_until_it_is_final(
    operator: Client, sandbox: Simulator
) -> None:
    message = services.send_sms("380501234567", "Hello")
    url = reverse(STATUS_URL, args=[message.pk])
    first = json.loads(operator.get(url).content)
    assert first["final"] is False
    assert first["status"] == "accepted"
    assert first["title"] == "SMS to +380 50 123 4567 — waiting its turn"
    deliver_everything(sandbox)
    last = json.loads(operator.get(url).content)
    assert last["final"] is True
    assert last["title"] == "SMS to +380 50 123 4567 — delivered via SMS"
    assert 'id="smsfly-status">delivered</span>' in last["html"]


def test_the_status_endpoint_needs_the_view_permission(operator: Client) -> None:
    message = services.send_sms("380501234567", "Hello")
    url = reverse(STATUS_URL, args=[message.pk])
    nobody = User.objects.create_user("clerk", "c@example.com", "pw", is_staff=True)
    browser = Client()
    browser.force_login(nobody)
    assert browser.get(url).status_code == 404
    nobody.user_permissions.set(Permission.objects.filter(codename="view_message"))
    assert Client().get(url).status_code == 302  # not logged in: to the login page
    browser.force_login(User.objects.get(pk=nobody.pk))
    assert browser.get(url).status_code == 200


def test_the_status_endpoint_runs_a_fixed_number_of_queries(
    operator: Client, sandbox: Simulator
) -> None:
    short = services.send_sms("380501234567", "Hello")
    long = services.send_viber("380671234567", text="Hi", sms_text="Hi")
    deliver_everything(sandbox)
    for _ in range(10):
        StatusChange.objects.create(
            message=long, channel="sms", old_status="sent", new_status="sent"
        )
    assert long.history.count() > short.history.count() + 10
    counts = []
    for message in (short, long):
        with CaptureQueriesContext(connection) as queries:
            assert operator.get(reverse(STATUS_URL, args=[message.pk])).status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1]


def test_the_page_loads_its_script_and_no_inline_script(operator: Client) -> None:
    message = services.send_sms("380501234567", "Hello")
    page = page_of(operator, message)
    assert "django_smsfly/message.js" in page
    story = story_of(page)
    assert "<script" not in story
    assert f'data-smsfly-status-url="{reverse(STATUS_URL, args=[message.pk])}"' in page


# -- errors and the compose form (item 8) ------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "text", "line"),
    [
        (
            "INVRECIPIENT",
            "SENDMESSAGE: INVRECIPIENT: wrong recipient",
            "INVRECIPIENT: wrong recipient",
        ),
        (
            "HTTP_503",
            "SENDMESSAGE: SMS-fly server error (HTTP 503)",
            "HTTP_503: SMS-fly server error (HTTP 503)",
        ),
        (
            "OPTED_OUT",
            "The number opted out of messages",
            "OPTED_OUT: The number opted out of messages",
        ),
        ("TIMEOUT", "", "TIMEOUT"),
        ("", "no reply", "no reply"),
    ],
)
def test_an_error_reads_with_its_code_once(code: str, text: str, line: str) -> None:
    assert error_line(code, text) == line


def test_numbers_are_written_as_people_write_them() -> None:
    assert international("380501234567") == "+380 50 123 4567"
    assert international("48601234567") == "+48 601 234 567"


def test_validation_messages_start_with_a_capital_letter(operator: Client) -> None:
    response = compose(operator, recipient="050 123 4567", sms_text="x" * 2000)  # > 10 parts
    [error] = response.context["form"].errors["sms_text"]
    assert error[0].isupper()
    assert error.startswith("Is too long")


def test_a_long_sms_is_sent_only_once_its_parts_and_cost_are_confirmed(
    operator: Client, sandbox: Simulator
) -> None:
    token = operator.get(reverse(ADD_URL)).context["form"]["token"].value()
    fields = {"recipient": "050 123 4567", "sms_text": LONG_TEXT, "token": token}
    asked = compose(operator, **fields)
    assert asked.status_code == 200
    page = asked.content.decode()
    assert "Send an SMS of 4 parts?" in page
    assert "The SMS text takes 4 parts, and each part is billed as one SMS." in page
    assert 'name="confirm_parts" value="1"' in page
    assert asked.context["estimate"].most is not None
    assert not Message.objects.exists()
    assert sandbox.requests_for("SENDMESSAGE") == []

    sent = compose(operator, confirm_parts="1", **fields)
    assert sent.status_code == 302
    again = compose(operator, confirm_parts="1", **fields)  # a double click on the confirm
    assert again.status_code == 302
    assert len(sandbox.requests_for("SENDMESSAGE")) == 1
    assert Message.objects.count() == 1


def test_a_sms_of_three_parts_is_sent_without_asking(operator: Client, sandbox: Simulator) -> None:
    response = compose(operator, recipient="050 123 4567", sms_text="Thanks! " * 50)  # 3 parts
    assert response.status_code == 302
    assert len(sandbox.requests_for("SENDMESSAGE")) == 1
