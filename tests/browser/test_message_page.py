"""A message's page in headless Chromium (issue 13 items 6 and 7): the admin's history of
what operators did, and the page following the message by itself until it is final, in
English and Ukrainian."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext
from playwright.sync_api import Page, expect

from django_smsfly import services
from django_smsfly.admin.messages import MessageAdmin
from django_smsfly.backends.sandbox import Simulator
from django_smsfly.models import Message
from tests.browser.helpers import MESSAGE_PAGE, OpenPage, sync_pass, translated

pytestmark = pytest.mark.django_db(transaction=True)

CHANGE = "admin:django_smsfly_message_change"


@pytest.fixture
def quick_polling(monkeypatch: pytest.MonkeyPatch) -> None:
    # The live server runs in this process: its admin asks every 0.3 s instead of 3 s.
    monkeypatch.setattr(MessageAdmin, "status_poll_interval", 300)


def test_a_send_from_the_admin_is_in_its_history_and_recent_actions(
    compose_page: OpenPage, url: Callable[..., str], sandbox: Simulator, language: str
) -> None:
    page = compose_page(language)
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

    page.goto(url("admin:index"))
    recent = page.locator("#recent-actions-module")
    expect(recent.locator(f"a[href$='/message/{message.pk}/change/']")).to_have_count(1)


def test_sent_again_is_told_as_the_operators_doing(
    operator_page: OpenPage, url: Callable[..., str], sandbox: Simulator, language: str
) -> None:
    sandbox.balance = 0
    failed = services.send_sms("380501234567", "Your code: 1234")
    sandbox.balance = 1000
    page = operator_page(language)
    page.goto(url(CHANGE, failed.pk))
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


def test_the_page_follows_the_message_until_it_is_delivered(
    operator_page: OpenPage,
    url: Callable[..., str],
    sandbox: Simulator,
    quick_polling: None,
    language: str,
) -> None:
    message = services.send_viber("380671234567", text="Ваше замовлення", sms_text="Ваше")
    page = operator_page(language)
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(url(CHANGE, message.pk))
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
    logged_in_page: Page, url: Callable[..., str], sandbox: Simulator
) -> None:
    message = services.send_sms("380500000004", "Hello")  # SMS-fly: INVRECIPIENT
    page = logged_in_page
    page.goto(url(CHANGE, message.pk))
    expect(page.locator("#smsfly-subtitle")).to_have_text("SMS to +380 50 000 0004 — not sent")
    expect(page.locator("#smsfly-reason")).to_have_text(
        "SMS-fly refused it: INVRECIPIENT: wrong recipient: the recipient refuses messages "
        "(sandbox rule)"
    )
    expect(page.locator("#smsfly-channels")).to_have_count(0)
    expect(page.locator("#smsfly-story")).to_have_attribute("data-smsfly-final", "1")
