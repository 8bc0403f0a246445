"""What every send checks before any request: the opt-out list, the time it may go out
(``send_at``), the text's parts and characters, and the number's country."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.utils import timezone

from django_smsfly import services
from django_smsfly.backends.sandbox import TEST_NUMBERS, Outcome, Simulator
from django_smsfly.conf import smsfly_settings
from django_smsfly.exceptions import SmsFlyValidationError
from django_smsfly.models import Campaign, Message, OptOut
from django_smsfly.quiet import quiet_until

pytestmark = pytest.mark.django_db

NUMBER = "380501234567"


def _sends(sandbox: Simulator) -> list[Any]:
    return sandbox.requests_for("SENDMESSAGE")


# -- opt-outs -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "send",
    [
        lambda: services.send_sms("050 123 45 67", "Sale: -20%"),
        lambda: services.send_viber("+380501234567", text="Sale", sms_text="Sale"),
        lambda: services.send_message(NUMBER, channels="sms", sms={"text": "Sale"}),
        lambda: services.send_sms(NUMBER, "Sale", defer=True),
        lambda: services.queue_message(NUMBER, channels="sms", sms={"text": "Sale"}),
    ],
    ids=["send_sms", "send_viber", "send_message", "defer", "queue_message"],
)
def test_an_opted_out_number_gets_no_request_and_a_failed_record(
    send: Any,
    sandbox: Simulator,
    failures: list[dict[str, Any]],
    django_capture_on_commit_callbacks: Any,
) -> None:
    OptOut.objects.create(recipient=NUMBER)
    with django_capture_on_commit_callbacks(execute=True):
        message = send()
    message.refresh_from_db()
    assert _sends(sandbox) == []
    assert (message.state, message.status) == (Message.State.FAILED, "failed")
    assert message.error_code == "OPTED_OUT"
    assert "opted out" in message.error_text
    assert message.cost is None
    assert message.attempts == 0
    assert message.retry_at is None
    assert [call["message"].pk for call in failures] == [message.pk]
    assert failures[0]["error"].error_code == "OPTED_OUT"


def test_ignore_opt_out_sends_and_is_recorded(sandbox: Simulator) -> None:
    OptOut.objects.create(recipient=NUMBER)
    message = services.send_sms(NUMBER, "Your order 55 has shipped", ignore_opt_out=True)
    assert message.state == Message.State.ACCEPTED
    assert message.ignore_opt_out is True
    assert len(_sends(sandbox)) == 1


def test_a_number_that_opts_out_after_queueing_is_not_sent_by_the_sync_pass(
    sandbox: Simulator,
) -> None:
    message = services.queue_message(NUMBER, channels="sms", sms={"text": "Sale"})
    OptOut.objects.create(recipient=NUMBER)
    Message.objects.filter(pk=message.pk).update(retry_at=timezone.now())  # due now
    call_command("smsfly_sync", verbosity=0)
    message.refresh_from_db()
    assert _sends(sandbox) == []
    assert (message.state, message.error_code) == (Message.State.FAILED, "OPTED_OUT")


def test_errphones_puts_the_number_on_the_opt_out_list(
    sandbox: Simulator, failures: list[dict[str, Any]]
) -> None:
    stop_listed = TEST_NUMBERS[Outcome.STOP_LISTED]
    first = services.send_sms(stop_listed, "Sale")
    assert (first.state, first.error_code) == (Message.State.FAILED, "ERRPHONES")
    [entry] = OptOut.objects.all()
    assert (entry.recipient, entry.source) == (stop_listed, OptOut.Source.ERRPHONES)
    # The next message costs no request at all.
    second = services.send_sms(stop_listed, "Sale again")
    assert second.error_code == "OPTED_OUT"
    assert len(_sends(sandbox)) == 1


# -- send_at --------------------------------------------------------------------------------


def test_send_at_is_not_sent_before_its_time_by_smsfly_sync(sandbox: Simulator) -> None:
    send_at = timezone.now() + dt.timedelta(seconds=1.5)
    message = services.send_sms(NUMBER, "Good morning", send_at=send_at)
    assert message.state == Message.State.QUEUED
    assert message.send_at == send_at
    call_command("smsfly_sync", verbosity=0)
    assert _sends(sandbox) == []
    time.sleep(max(0.0, (send_at - timezone.now()).total_seconds()) + 0.05)
    call_command("smsfly_sync", verbosity=0)
    message.refresh_from_db()
    assert message.state == Message.State.ACCEPTED
    [request] = _sends(sandbox)
    assert request.body["data"]["sms"]["text"] == "Good morning"


def test_send_at_enqueues_a_task_that_runs_then(
    sandbox: Simulator, dummy_tasks: Any, django_capture_on_commit_callbacks: Any
) -> None:
    send_at = timezone.now() + dt.timedelta(hours=2)
    with django_capture_on_commit_callbacks(execute=True):
        message = services.send_viber(NUMBER, text="Hi", send_at=send_at)
    [result] = dummy_tasks.results
    assert result.args == [[message.pk]]
    assert result.task.run_after == send_at
    # A worker that runs it early (an engine without run_after) sends nothing.
    assert result.task.call(*result.args) == {"queued": 1}
    assert _sends(sandbox) == []


def test_send_at_in_the_past_sends_at_once(sandbox: Simulator) -> None:
    message = services.send_sms(NUMBER, "Hi", send_at=timezone.now() - dt.timedelta(minutes=1))
    assert message.state == Message.State.ACCEPTED


@pytest.mark.parametrize(
    ("send_at", "sensitive"),
    [(dt.datetime(2030, 1, 1, 9, 0), False), ("tomorrow", False), (None, True)],
    ids=["naive", "string", "sensitive"],
)
def test_a_bad_send_at_is_refused_before_anything_is_written(
    send_at: Any, sensitive: bool, sandbox: Simulator
) -> None:
    when = send_at if send_at is not None else timezone.now() + dt.timedelta(hours=1)
    with pytest.raises(SmsFlyValidationError) as caught:
        services.send_sms(NUMBER, "Code 1234", send_at=when, sensitive=sensitive)
    assert caught.value.field == "send_at"
    assert not Message.objects.exists()


def test_queued_messages_of_a_paused_campaign_wait(sandbox: Simulator) -> None:
    campaign = Campaign.objects.create(name="Spring sale", status=Campaign.Status.PAUSED)
    message = services.queue_message(
        NUMBER, channels="sms", sms={"text": "Sale"}, campaign_id=campaign.pk
    )
    Message.objects.filter(pk=message.pk).update(retry_at=timezone.now())
    call_command("smsfly_sync", verbosity=0)
    assert _sends(sandbox) == []
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.RUNNING)
    call_command("smsfly_sync", verbosity=0)
    assert len(_sends(sandbox)) == 1


# -- what a text and a number may be ----------------------------------------------------------


@pytest.mark.parametrize("text", ["Hi\x00there", "Hi \ud800"], ids=["nul", "surrogate"])
def test_characters_no_database_can_store_are_refused(text: str, sandbox: Simulator) -> None:
    with pytest.raises(SmsFlyValidationError) as caught:
        services.send_sms(NUMBER, text)
    assert caught.value.field == "sms.text"
    with pytest.raises(SmsFlyValidationError):
        services.send_viber(NUMBER, text=text)
    assert not Message.objects.exists()
    assert _sends(sandbox) == []


def test_an_sms_longer_than_max_sms_parts_is_refused(sandbox: Simulator, settings: Any) -> None:
    eleven_parts = "a" * (153 * 10 + 1)
    with pytest.raises(SmsFlyValidationError) as caught:
        services.send_sms(NUMBER, eleven_parts)
    assert "11 SMS parts, at most 10" in str(caught.value)
    assert caught.value.field == "sms.text"
    # A huge text is refused by its length, before its parts are counted.
    with pytest.raises(SmsFlyValidationError, match="100000000 characters"):
        services.send_sms(NUMBER, "x" * 100_000_000)
    assert not Message.objects.exists()
    settings.SMSFLY = {**settings.SMSFLY, "MAX_SMS_PARTS": 11}
    assert services.send_sms(NUMBER, eleven_parts).state == Message.State.ACCEPTED


def test_numbers_outside_allowed_regions_are_refused(sandbox: Simulator, settings: Any) -> None:
    with pytest.raises(SmsFlyValidationError) as caught:
        services.send_sms("+1 202 555 0143", "Hi")
    assert caught.value.field == "recipient"
    assert "is in US" in str(caught.value)
    assert "PL, UA" in str(caught.value)
    assert services.send_sms("+48 512 345 678", "Cześć").state == Message.State.ACCEPTED
    settings.SMSFLY = {**settings.SMSFLY, "ALLOWED_REGIONS": ["UA"]}
    with pytest.raises(SmsFlyValidationError):
        services.send_sms("+48 512 345 678", "Cześć")
    assert len(_sends(sandbox)) == 1


# -- settings --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "error"),
    [
        ("MAX_SMS_PARTS", 0, "from 1 to 255"),
        ("MAX_SMS_PARTS", True, "integer"),
        ("ALLOWED_REGIONS", None, "list of country codes"),
        ("ALLOWED_REGIONS", ["XX"], "'XX' is not a region"),
        ("QUIET_HOURS", {"START": "21:00"}, "needs START and END"),
        ("QUIET_HOURS", {"START": "25:00", "END": "09:00"}, "time of day"),
        ("QUIET_HOURS", {"START": "09:00", "END": "09:00"}, "must differ"),
        ("QUIET_HOURS", {"START": "21:00", "END": "09:00", "ZONE": "x"}, "Unknown key"),
    ],
)
def test_new_settings_are_validated(key: str, value: Any, error: str, settings: Any) -> None:
    settings.SMSFLY = {**settings.SMSFLY, key: value}
    with pytest.raises(ImproperlyConfigured, match=error):
        smsfly_settings.as_dict()


# -- quiet hours ----------------------------------------------------------------------------

KYIV = dt.timezone(dt.timedelta(hours=2))  # Europe/Kyiv in winter


@pytest.mark.parametrize(
    ("local", "until"),
    [
        ((2026, 12, 1, 22, 30), (2026, 12, 2, 9, 0)),  # evening: the next morning
        ((2026, 12, 2, 6, 0), (2026, 12, 2, 9, 0)),  # early morning: this morning
        ((2026, 12, 2, 9, 0), None),  # the window's end: sending again
        ((2026, 12, 2, 14, 0), None),  # the day
        ((2026, 12, 2, 21, 0), (2026, 12, 3, 9, 0)),  # the window's start
    ],
)
def test_quiet_hours_across_midnight_in_the_recipients_zone(
    local: tuple[int, int, int, int, int],
    until: tuple[int, int, int, int, int] | None,
    settings: Any,
) -> None:
    settings.SMSFLY = {**settings.SMSFLY, "QUIET_HOURS": {"START": "21:00", "END": "09:00"}}
    now = dt.datetime(*local, tzinfo=KYIV)
    expected = None if until is None else dt.datetime(*until, tzinfo=KYIV)
    assert quiet_until(NUMBER, now) == expected


def test_quiet_hours_follow_the_recipients_country(settings: Any) -> None:
    settings.SMSFLY = {**settings.SMSFLY, "QUIET_HOURS": {"START": "21:00", "END": "09:00"}}
    # 20:30 in Warsaw is 21:30 in Kyiv: quiet for a Ukrainian number, not a Polish one.
    now = dt.datetime(2026, 12, 1, 19, 30, tzinfo=dt.timezone.utc)
    assert quiet_until(NUMBER, now) == dt.datetime(2026, 12, 2, 7, 0, tzinfo=dt.timezone.utc)
    assert quiet_until("48512345678", now) is None


def test_no_quiet_hours_by_default() -> None:
    assert quiet_until(NUMBER, timezone.now()) is None
