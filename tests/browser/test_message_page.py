"""A message's page in headless Chromium (issue 13 items 6 and 7): the admin's history of
what operators did, and the page following the message by itself until it is final, in
English and Ukrainian."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext
from playwright.sync_api import Page, expect
from pytest_django.live_server_helper import LiveServer

from django_smsfly import services
from django_smsfly.admin.messages import MessageAdmin
from django_smsfly.backends.sandbox import Simulator
from django_smsfly.models import Message

pytestmark = pytest.mark.django_db(transaction=True)

LANGUAGES = pytest.mark.parametrize(("locale", "language"), [("en-US", "en"), ("uk-UA", "uk")])
MESSAGE_PAGE = re.compile(r"/admin/django_smsfly/message/\d+/change/$")


def translated(language: str, text: str) -> str:
    """``text`` as the admin shows it in ``language`` (English until it is translated)."""
    with translation.override(language):
        return gettext(text)


@pytest.fixture
def operator_page(
    new_page: Callable[..., Page], admin_user: Any, log_in: Callable[..., None]
) -> Callable[[str], Page]:
    def open_page(locale: str) -> Page:
        page = new_page(locale=locale)
        log_in(page)
        return page

    return open_page


@pytest.fixture
def quick_polling(monkeypatch: pytest.MonkeyPatch) -> None:
    # The live server runs in this process: its admin asks every 0.3 s instead of 3 s.
    monkeypatch.setattr(MessageAdmin, "status_poll_interval", 300)


def change_url(live_server: LiveServer, message: Message) -> str:
    return live_server.url + reverse("admin:django_smsfly_message_change", args=[message.pk])


def sync_pass() -> None:
    """What the sync loop does in the background: ask SMS-fly for what is due."""
    Message.objects.update(next_check_at=timezone.now() - dt.timedelta(seconds=1))
    services.sync_statuses()


@LANGUAGES
def test_a_send_from_the_admin_is_in_its_history_and_recent_actions(
    operator_page: Callable[[str], Page],
    live_server: LiveServer,
    sandbox: Simulator,
    locale: str,
    language: str,
) -> None:
    page = operator_page(locale)
    page.goto(live_server.url + reverse("admin:django_smsfly_message_add"))
    page.fill("#id_recipient", "050 123 4567")
    page.fill("#id_sms_text", "Your order has shipped")
    page.click("#smsfly-send")
    expect(page).to_have_url(MESSAGE_PAGE)
    message = Message.objects.get()

    page.click(".object-tools a.historylink")
    expect(page.locator("#change-history")).to_contain_text(
        translated(language, "Sent from the admin.")
    )
    expect(page.locator("#content-main")).not_to_contain_text("wasn’t added via this admin")

    page.goto(live_server.url + reverse("admin:index"))
    recent = page.locator("#recent-actions-module")
    expect(recent.locator(f"a[href$='/message/{message.pk}/change/']")).to_have_count(1)


@LANGUAGES
def test_sent_again_is_told_as_the_operators_doing(
    operator_page: Callable[[str], Page],
    live_server: LiveServer,
    sandbox: Simulator,
    locale: str,
    language: str,
) -> None:
    sandbox.balance = 0
    failed = services.send_sms("380501234567", "Your code: 1234")
    sandbox.balance = 1000
    page = operator_page(locale)
    page.goto(change_url(live_server, failed))
    expect(page.locator("#smsfly-error")).to_contain_text("INSUFFICIENTFUNDS")
    page.click("#smsfly-resend")
    expect(page).to_have_url(MESSAGE_PAGE)

    timeline = page.locator("#smsfly-timeline")
    heading = page.locator(".smsfly-story-timeline h2")
    expect(heading).to_have_text(translated(language, "Delivery timeline"))
    with translation.override(language):
        sent_again = gettext("Sent again by %(user)s") % {"user": "admin"}
    expect(timeline.locator("tr.smsfly-timeline-ours")).to_contain_text(sent_again)
    expect(timeline).not_to_contain_text("RESEND")
    expect(page.locator("#smsfly-error")).to_have_count(0)  # sent: no error any more

    page.click(".object-tools a.historylink")
    expect(page.locator("#change-history")).to_contain_text(translated(language, "Sent again."))


@LANGUAGES
def test_the_page_follows_the_message_until_it_is_delivered(
    operator_page: Callable[[str], Page],
    live_server: LiveServer,
    sandbox: Simulator,
    quick_polling: None,
    locale: str,
    language: str,
) -> None:
    message = services.send_viber("380671234567", text="Ваше замовлення", sms_text="Ваше")
    page = operator_page(locale)
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(change_url(live_server, message))
    status = page.locator("#smsfly-status")
    expect(status).to_have_text(translated(language, "accepted"))
    expect(page.locator("#smsfly-story")).to_have_attribute("data-smsfly-final", "0")
    page.evaluate("window.smsflyNotReloaded = true")  # gone if the page were reloaded

    sandbox.advance(60)  # SMS-fly's time: Viber delivered, the SMS fallback refunded
    sync_pass()

    expect(status).to_have_text(translated(language, "viewed"))
    expect(status).to_have_class(re.compile(r"\bsmsfly-badge-success\b"))
    expect(page.locator("#smsfly-story")).to_have_attribute("data-smsfly-final", "1")
    with translation.override(language):
        title = gettext("%(channels)s to %(recipient)s") % {
            "channels": gettext("%(first)s, then %(second)s if %(first)s fails")
            % {"first": "Viber", "second": gettext("SMS")},
            "recipient": "+380 67 123 4567",
        }
        outcome = gettext("delivered via %(channel)s and read") % {"channel": "Viber"}
    expect(page.locator("#smsfly-subtitle")).to_have_text(f"{title} — {outcome}")
    expect(page.locator("#smsfly-cost")).to_have_text("0.750" if language == "en" else "0,750")
    refunded = page.locator(
        "#smsfly-channels tr[data-channel-status='refunded'] .field-cost_display"
    )
    expect(refunded).to_have_text(translated(language, "refunded"))
    assert page.evaluate("window.smsflyNotReloaded") is True

    # Final: it stops asking.
    status_url = reverse("admin:django_smsfly_message_status", args=[message.pk])
    page.wait_for_timeout(400)
    asked = sum(status_url in url for url in requests)
    page.wait_for_timeout(1200)
    assert sum(status_url in url for url in requests) == asked


def test_a_refused_message_tells_why_without_an_empty_channel_table(
    operator_page: Callable[[str], Page], live_server: LiveServer, sandbox: Simulator
) -> None:
    message = services.send_sms("380500000004", "Hello")  # SMS-fly: INVRECIPIENT
    page = operator_page("en-US")
    page.goto(change_url(live_server, message))
    expect(page.locator("#smsfly-subtitle")).to_have_text("SMS to +380 50 000 0004 — not sent")
    expect(page.locator("#smsfly-reason")).to_have_text(
        "SMS-fly refused it: INVRECIPIENT: wrong recipient: the recipient refuses messages "
        "(sandbox rule)"
    )
    expect(page.locator("#smsfly-channels")).to_have_count(0)
    expect(page.locator("#smsfly-story")).to_have_attribute("data-smsfly-final", "1")
