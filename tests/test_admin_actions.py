"""The admin's actions: refresh a status now, send again; POST-only, CSRF, permissions."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import User
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from django_smsfly import services
from django_smsfly.backends.sandbox import Fault, Outcome, Simulator
from django_smsfly.models import Message
from tests.admin_users import staff_with

pytestmark = [pytest.mark.django_db, pytest.mark.frozen_sandbox]

LIST_URL = "admin:django_smsfly_message_changelist"
NUMBER = "380501234567"


def url(name: str, message: Message) -> str:
    return reverse(f"admin:django_smsfly_message_{name}", args=[message.pk])


def run_action(browser: Client, action: str, *messages: Message, **extra: str) -> Any:
    data = {"action": action, "index": "0", "_selected_action": [str(m.pk) for m in messages]}
    return browser.post(reverse(LIST_URL), {**data, **extra})


def confirm_bulk(browser: Client, *messages: Message) -> Any:
    """The confirmation page's POST: no ``index``, ``confirm=yes``."""
    data = {
        "action": "resend_messages",
        "_selected_action": [str(m.pk) for m in messages],
        "confirm": "yes",
    }
    return browser.post(reverse(LIST_URL), data)


def flash(response: Any) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def status_requests(sandbox: Simulator) -> int:
    return len(sandbox.requests_for("GETMESSAGESTATUS"))


def send_requests(sandbox: Simulator) -> int:
    return len(sandbox.requests_for("SENDMESSAGE"))


def failed_message(sandbox: Simulator, number: str = NUMBER) -> Message:
    """A message SMS-fly refused, to a number it will take the next time."""
    sandbox.add_rule(number, Outcome.REJECTED)
    message = services.send_sms(number, "Hello")
    sandbox.clear_rules()
    assert message.state == Message.State.FAILED
    return message


def unknown_message(sandbox: Simulator, number: str = NUMBER) -> Message:
    """A message whose request timed out after SMS-fly took it: the outcome is unknown."""
    sandbox.inject(Fault.TIMEOUT, action="SENDMESSAGE")
    message = services.send_sms(number, "Hello")
    assert message.state == Message.State.UNKNOWN
    return message


# -- refresh status now ------------------------------------------------------------------


def test_refresh_moves_the_status_once_the_sandbox_has_moved(
    operator: Client, sandbox: Simulator
) -> None:
    message = services.send_sms(NUMBER, "Hello")
    sandbox.advance(10)  # the sandbox's SMS is delivered after 6 s
    response = operator.post(url("refresh", message))
    assert response.status_code == 302
    assert response["Location"] == url("change", message)
    message.refresh_from_db()
    assert message.status == "delivered"
    assert flash(response) == ["The status of 1 message was checked. 1 has changed."]


def test_refresh_reports_no_change_when_there_is_none(
    operator: Client, sandbox: Simulator
) -> None:
    message = services.send_sms(NUMBER, "Hello")
    response = operator.post(url("refresh", message))
    assert flash(response) == ["The status of 1 message was checked. 0 have changed."]
    assert status_requests(sandbox) == 1


def test_bulk_refresh_reports_in_plural(operator: Client, sandbox: Simulator) -> None:
    first = services.send_sms(NUMBER, "One")
    second = services.send_sms("380671234567", "Two")
    refused = services.send_sms("380500000004", "Refused")  # never accepted
    sandbox.advance(10)
    response = run_action(operator, "refresh_statuses", first, second, refused)
    assert response.status_code == 302
    assert set(Message.objects.values_list("status", flat=True)) == {"delivered", "failed"}
    assert flash(response) == [
        "The status of 2 messages was checked. 2 have changed.",
        "1 message has no status to check: SMS-fly has not accepted it.",
    ]
    assert status_requests(sandbox) == 2


def test_refresh_needs_a_post(operator: Client, sandbox: Simulator) -> None:
    message = services.send_sms(NUMBER, "Hello")
    response = operator.get(url("refresh", message))
    assert response.status_code == 405
    assert status_requests(sandbox) == 0


def test_refresh_needs_the_csrf_token(operator_user: User, sandbox: Simulator) -> None:
    message = services.send_sms(NUMBER, "Hello")
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(operator_user)
    assert browser.post(url("refresh", message)).status_code == 403
    assert status_requests(sandbox) == 0


def test_refresh_needs_the_change_permission(sandbox: Simulator) -> None:
    message = services.send_sms(NUMBER, "Hello")
    viewer = staff_with("view_message")
    assert viewer.post(url("refresh", message)).status_code == 403
    run_action(viewer, "refresh_statuses", message)
    assert status_requests(sandbox) == 0
    page = viewer.get(url("change", message)).content.decode()
    assert "smsfly-refresh" not in page


def test_refresh_with_the_change_permission(sandbox: Simulator) -> None:
    message = services.send_sms(NUMBER, "Hello")
    refresher = staff_with("view_message", "change_message")
    assert refresher.post(url("refresh", message)).status_code == 302
    assert status_requests(sandbox) == 1


def test_refresh_of_a_missing_message_is_not_found(operator: Client) -> None:
    response = operator.post(reverse("admin:django_smsfly_message_refresh", args=[999]))
    assert response.status_code == 404


# -- send again: failed ------------------------------------------------------------------


def test_send_again_resends_a_failed_message(operator: Client, sandbox: Simulator) -> None:
    message = failed_message(sandbox)
    page = operator.get(url("change", message)).content.decode()
    assert 'id="smsfly-resend"' in page
    response = operator.post(url("resend", message))
    assert response.status_code == 302
    assert response["Location"] == url("change", message)
    again = Message.objects.get()  # the same row
    assert again.pk == message.pk
    assert again.state == Message.State.ACCEPTED
    assert send_requests(sandbox) == 2
    assert flash(response) == [f"The message to {NUMBER} was sent again and SMS-fly accepted it."]


def test_get_on_send_again_only_shows_the_confirmation(
    operator: Client, sandbox: Simulator
) -> None:
    message = failed_message(sandbox)
    response = operator.get(url("resend", message))
    assert response.status_code == 200
    assert 'id="smsfly-resend-form"' in response.content.decode()
    assert 'id="smsfly-duplicate-warning"' not in response.content.decode()
    assert send_requests(sandbox) == 1
    assert Message.objects.get().state == Message.State.FAILED


def test_send_again_refuses_an_accepted_message(operator: Client, sandbox: Simulator) -> None:
    message = services.send_sms(NUMBER, "Hello")
    response = operator.post(url("resend", message), {"confirm": "yes"})
    assert response.status_code == 302
    assert send_requests(sandbox) == 1
    assert flash(response) == [
        "1 message was not sent again: only a failed message, or one whose outcome is "
        "unknown, can be."
    ]


def test_send_again_needs_the_add_permission(sandbox: Simulator) -> None:
    message = failed_message(sandbox)
    viewer = staff_with("view_message", "change_message")
    assert viewer.post(url("resend", message), {"confirm": "yes"}).status_code == 403
    assert viewer.get(url("resend", message)).status_code == 403
    run_action(viewer, "resend_messages", message)
    assert send_requests(sandbox) == 1
    assert Message.objects.get().state == Message.State.FAILED


def test_send_again_needs_the_csrf_token(operator_user: User, sandbox: Simulator) -> None:
    message = failed_message(sandbox)
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(operator_user)
    assert browser.post(url("resend", message)).status_code == 403
    assert send_requests(sandbox) == 1


# -- send again: unknown outcome ---------------------------------------------------------


def test_an_unknown_outcome_is_sent_again_only_after_confirmation(
    operator: Client, sandbox: Simulator
) -> None:
    message = unknown_message(sandbox)
    # The page's button posts without a confirmation: that only shows the warning.
    for response in (operator.get(url("resend", message)), operator.post(url("resend", message))):
        assert response.status_code == 200
        page = response.content.decode()
        assert 'id="smsfly-duplicate-warning"' in page
        assert "may deliver a message twice" in page
        assert send_requests(sandbox) == 1
        assert Message.objects.get().state == Message.State.UNKNOWN
    response = operator.post(url("resend", message), {"confirm": "yes"})
    assert response.status_code == 302
    assert Message.objects.get().state == Message.State.ACCEPTED
    assert send_requests(sandbox) == 2


def test_bulk_send_again_asks_before_resending_unknown_outcomes(
    operator: Client, sandbox: Simulator
) -> None:
    failed = failed_message(sandbox, "380671234567")
    unknown = unknown_message(sandbox)
    accepted = services.send_sms("380631234567", "Fine")
    response = run_action(operator, "resend_messages", failed, unknown, accepted)
    assert response.status_code == 200  # the confirmation page, nothing sent
    page = response.content.decode()
    assert 'id="smsfly-duplicate-warning"' in page
    assert f'name="_selected_action" value="{failed.pk}"' in page
    assert f'name="_selected_action" value="{unknown.pk}"' in page
    assert f'value="{accepted.pk}"' not in page
    assert send_requests(sandbox) == 3

    response = confirm_bulk(operator, failed, unknown)
    assert response.status_code == 302
    assert set(Message.objects.values_list("state", flat=True)) == {Message.State.ACCEPTED}
    assert send_requests(sandbox) == 5
    assert flash(response) == ["2 messages were sent again."]


def test_bulk_send_again_of_failed_messages_needs_no_confirmation(
    operator: Client, sandbox: Simulator
) -> None:
    failed = failed_message(sandbox)
    accepted = services.send_sms("380631234567", "Fine")
    response = run_action(operator, "resend_messages", failed, accepted)
    assert response.status_code == 302
    assert Message.objects.get(pk=failed.pk).state == Message.State.ACCEPTED
    assert flash(response) == [
        "1 message was sent again.",
        "1 message was not sent again: only a failed message, or one whose outcome is "
        "unknown, can be.",
    ]


def test_a_message_refused_again_is_reported(operator: Client, sandbox: Simulator) -> None:
    refused = [services.send_sms("380500000004", "No"), services.send_sms("380670000004", "No")]
    response = run_action(operator, "resend_messages", *refused)
    assert flash(response) == ["SMS-fly refused 2 messages again; their pages show why."]


def test_the_confirmation_page_escapes_error_texts(operator: Client, sandbox: Simulator) -> None:
    message = unknown_message(sandbox)
    Message.objects.filter(pk=message.pk).update(error_text='<script>alert("x")</script>')
    page = operator.get(url("resend", message)).content.decode()
    assert "<script>alert" not in page
    assert "&lt;script&gt;" in page


# -- delete -------------------------------------------------------------------------------


def test_delete_leaves_out_messages_on_their_way(operator: Client, sandbox: Simulator) -> None:
    done = services.send_sms(NUMBER, "Done")
    queued = services.queue_message(NUMBER, channels="sms", sms={"text": "Waiting"})
    response = run_action(operator, "delete_selected", done, queued)
    assert response.status_code == 200  # Django's confirmation page, for the finished one
    page = response.content.decode()
    assert f'value="{done.pk}"' in page
    assert f'value="{queued.pk}"' not in page
    response = operator.post(
        reverse(LIST_URL),
        {
            "action": "delete_selected",
            "_selected_action": [str(done.pk), str(queued.pk)],
            "post": "yes",
        },
    )
    assert response.status_code == 302
    assert list(Message.objects.all()) == [queued]
    assert flash(response) == [
        "1 message is on its way to SMS-fly and was left out; it can be deleted once it is sent.",
        "Successfully deleted 1 message.",
    ]


def test_a_queued_message_has_no_delete_button(operator: Client) -> None:
    queued = services.queue_message(NUMBER, channels="sms", sms={"text": "Waiting"})
    page = operator.get(url("change", queued)).content.decode()
    assert url("delete", queued) not in page
    assert operator.post(url("delete", queued), {"post": "yes"}).status_code == 403
    assert Message.objects.filter(pk=queued.pk).exists()


def test_an_action_acts_on_a_bounded_number_of_messages(
    operator: Client, sandbox: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("django_smsfly.admin.actions.ACTION_LIMIT", 1)
    messages = [services.send_sms(NUMBER, "One"), services.send_sms(NUMBER, "Two")]
    response = run_action(operator, "refresh_statuses", *messages)
    assert status_requests(sandbox) == 0
    assert flash(response) == [
        "An action can act on at most 1 message at once. Select fewer messages, or narrow "
        "the list with its filters."
    ]


# -- attach the SMS-fly message id -----------------------------------------------------


def test_attach_the_message_id_of_an_unknown_message(operator: Client, sandbox: Simulator) -> None:
    message = unknown_message(sandbox)
    real_id = sandbox.messages[-1].message_id  # SMS-fly has it: the reply was lost
    page = operator.get(url("change", message)).content.decode()
    assert 'id="smsfly-attach-id"' in page
    form = operator.get(url("attach_id", message))
    assert form.status_code == 200
    assert 'id="smsfly-attach-form"' in form.content.decode()
    response = operator.post(url("attach_id", message), {"message_id": real_id})
    assert response.status_code == 302
    assert response["Location"] == url("change", message)
    stored = Message.objects.get()
    assert (stored.state, stored.message_id) == (Message.State.ACCEPTED, real_id)
    assert stored.last_checked_at is not None  # its status was asked for at once
    assert send_requests(sandbox) == 1  # nothing was sent again
    assert flash(response) == [
        f"The message now has the SMS-fly message id {real_id}; its status is followed "
        "from now on."
    ]
    assert LogEntry.objects.get().get_change_message() == (
        f"Attached the SMS-fly message id {real_id}."
    )


def test_attaching_an_id_another_message_has_is_a_form_error(
    operator: Client, sandbox: Simulator
) -> None:
    taken = services.send_sms("380671234567", "Other")
    message = unknown_message(sandbox)
    response = operator.post(url("attach_id", message), {"message_id": taken.message_id})
    assert response.status_code == 200
    assert f"already belongs to message {taken.pk}" in response.content.decode()
    assert Message.objects.get(pk=message.pk).state == Message.State.UNKNOWN


def test_attach_is_offered_only_for_an_unknown_message(
    operator: Client, sandbox: Simulator
) -> None:
    message = failed_message(sandbox)
    assert 'id="smsfly-attach-id"' not in operator.get(url("change", message)).content.decode()
    response = operator.post(url("attach_id", message), {"message_id": "FLY-1"})
    assert response.status_code == 302
    assert Message.objects.get().state == Message.State.FAILED


def test_attach_needs_the_send_permission(sandbox: Simulator) -> None:
    message = unknown_message(sandbox)
    browser = staff_with("view_message")
    response = browser.post(url("attach_id", message), {"message_id": "FLY-1"})
    assert response.status_code == 403
    assert Message.objects.get().state == Message.State.UNKNOWN
