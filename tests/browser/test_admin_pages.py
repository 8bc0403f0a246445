"""The operator's admin pages in headless Chromium, as an operator uses them.

Compose (the live SMS counter, the cost estimate, Viber with an SMS fallback, errors at
their fields), a message's page (refresh, send again, the duplicate warning), the
balance panel, the delivery overview, the Ukrainian admin and hostile text shown as
text. The tests also take the screenshots in the documentation (``screenshot``).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.core.cache import cache
from django.utils import timezone
from playwright.sync_api import Locator, Page, expect

from django_smsfly import send_sms, send_viber
from django_smsfly.backends.sandbox import Fault, Simulator
from django_smsfly.models import ChannelStatus, Message
from django_smsfly.validation import BUTTON_CAPTION_MAX
from tests.browser.helpers import MESSAGE_PAGE, OpenPage

pytestmark = pytest.mark.django_db(transaction=True)

LIST = "admin:django_smsfly_message_changelist"
ADD = "admin:django_smsfly_message_add"
CHANGE = "admin:django_smsfly_message_change"
OVERVIEW = "admin:django_smsfly_message_overview"

Screenshot = Callable[..., object]


def settled(page: Page) -> Page:
    """``page`` once its deferred scripts have run (the admin's sidebar is one): for a
    screenshot of the page as an operator sees it."""
    page.wait_for_load_state("load")
    return page


def success(page: Page) -> Locator:
    return page.locator(".messagelist .success")


def row_of(page: Page, recipient: str) -> Locator:
    return page.locator("#result_list tbody tr", has_text=recipient)


# -- sending ------------------------------------------------------------------------------


def test_an_sms_is_composed_counted_estimated_sent_and_delivered(
    logged_in_page: Page,
    url: Callable[..., str],
    sandbox: Simulator,
    admin_user: Any,
    screenshot: Screenshot,
) -> None:
    page = logged_in_page
    page.goto(url(LIST))
    page.click("#smsfly-compose-link")
    expect(page).to_have_url(url(ADD))
    expect(page.locator("input[name=channels][value=sms]")).to_be_checked()

    page.fill("#id_recipient", "+380 (50) 123-45-67")
    text = page.locator("#id_sms_text")
    counter = page.locator("#id_sms_text_counter")
    text.press_sequentially("Hello")
    expect(counter).to_have_attribute("data-encoding", "GSM-7")
    expect(counter).to_have_attribute("data-parts", "1")
    expect(counter).to_contain_text("Characters: 5")
    expect(counter).to_contain_text("Left in this part: 155")
    # One Cyrillic letter makes the whole text UCS-2: 70 characters a part, not 160.
    text.press_sequentially(", Привіт")
    expect(counter).to_have_attribute("data-encoding", "UCS-2")
    expect(counter).to_contain_text("Encoding: UCS-2")
    expect(counter).to_contain_text("Left in this part: 57")
    # Past 160 GSM-7 characters an SMS takes two parts (of 153).
    text.fill("x" * 160)
    expect(counter).to_have_attribute("data-encoding", "GSM-7")
    expect(counter).to_have_attribute("data-parts", "1")
    text.press_sequentially("y")
    expect(counter).to_have_attribute("data-parts", "2")
    expect(counter).to_contain_text("Left in this part: 145")
    # Past 70 UCS-2 characters too (parts of 67).
    text.fill("ї" * 70)
    expect(counter).to_have_attribute("data-encoding", "UCS-2")
    expect(counter).to_have_attribute("data-parts", "1")
    message_text = "Привіт! Ваше замовлення №42 вже в дорозі: відстежуйте його на сайті магазину."
    assert len(message_text) > 70
    text.fill(message_text)
    expect(counter).to_have_attribute("data-parts", "2")

    page.click("#smsfly-estimate-button")
    estimate = page.locator("#smsfly-estimate")
    expect(estimate).to_be_visible()
    # Vodafone's price in the sandbox (0.479) for each of the two parts.
    expect(estimate).to_contain_text("0.958")
    expect(estimate).to_contain_text("2 parts")
    # The form keeps what was typed; the estimate sent nothing.
    expect(page.locator("#id_recipient")).to_have_value("+380 (50) 123-45-67")
    expect(text).to_have_value(message_text)
    expect(counter).to_have_attribute("data-parts", "2")
    assert sandbox.requests_for("SENDMESSAGE") == []
    assert not Message.objects.exists()
    screenshot(settled(page), "compose", full_page=True)
    # The estimate is of the message as it was: once the form changes, it goes.
    recipient = page.locator("#id_recipient")
    recipient.press("End")
    recipient.press("Backspace")
    expect(estimate).to_be_hidden()
    recipient.press_sequentially("7")

    page.click("#smsfly-send")
    expect(page).to_have_url(MESSAGE_PAGE)
    expect(success(page)).to_have_text("The message to 380501234567 was accepted by SMS-fly.")
    message = Message.objects.get()
    assert (message.recipient, message.channels, message.state) == (
        "380501234567",
        "sms",
        Message.State.ACCEPTED,
    )
    assert message.content["sms"]["text"] == message_text
    assert message.created_by == admin_user
    assert page.url == url(CHANGE, message.pk)
    assert len(sandbox.requests_for("SENDMESSAGE")) == 1
    [sent] = sandbox.messages
    assert (sent.recipient, sent.channels, sent.message_id) == (
        "380501234567",
        ("sms",),
        message.message_id,
    )
    assert sent.sms is not None
    assert sent.sms["text"] == message_text

    # Watch the status advance: the sandbox delivers an SMS six seconds after the send.
    status = page.locator(".form-row.field-status_badge .smsfly-badge")
    channel = page.locator("td.field-status_badge .smsfly-badge")
    expect(status).to_have_text("accepted")
    sandbox.advance(30)
    page.click("#smsfly-refresh")
    expect(page).to_have_url(url(CHANGE, message.pk))
    expect(success(page)).to_contain_text("The status of 1 message was checked. 1 has changed.")
    expect(status).to_have_text("delivered")
    expect(status).to_have_class(re.compile(r"\bsmsfly-badge-success\b"))
    expect(channel).to_have_text("delivered")
    message.refresh_from_db()
    assert message.status == "delivered"
    assert len(sandbox.requests_for("SENDMESSAGE")) == 1
    screenshot(settled(page), "message-detail")


def test_viber_with_an_sms_fallback_is_sent_and_listed_with_an_sms(
    logged_in_page: Page,
    url: Callable[..., str],
    sandbox: Simulator,
    screenshot: Screenshot,
) -> None:
    earlier = send_sms("050 123 4567", "Your code: 1234")
    page = logged_in_page
    page.goto(url(ADD))
    sms_fields = page.locator("fieldset.smsfly-channel-sms")
    viber_fields = page.locator("fieldset.smsfly-channel-viber")
    # Only the chosen channels' fields are shown, as the choice changes.
    expect(sms_fields).to_be_visible()
    expect(viber_fields).to_be_hidden()
    page.check("input[name=channels][value=viber]")
    expect(viber_fields).to_be_visible()
    expect(sms_fields).to_be_hidden()
    page.check("input[name=channels][value=sms]")
    expect(sms_fields).to_be_visible()
    expect(viber_fields).to_be_hidden()
    page.check("input[name=channels][value='viber,sms']")
    expect(viber_fields).to_be_visible()
    expect(sms_fields).to_be_visible()

    page.fill("#id_recipient", "067 123 45 67")
    viber_text = page.locator("#id_viber_text")
    viber_counter = page.locator("#id_viber_text_counter")
    # The limit counts characters, as SMS-fly does: an emoji is one, and the browser
    # keeps all of a text that fits.
    at_the_limit = "a" * 998 + "🚚📦"
    viber_text.fill(at_the_limit)
    expect(viber_text).to_have_value(at_the_limit)
    expect(viber_counter).to_have_text("Characters: 1000 / 1000")
    expect(viber_counter).not_to_have_class(re.compile(r"\bsmsfly-counter-over\b"))
    viber_text.press_sequentially("!")
    expect(viber_counter).to_have_text("Characters: 1001 / 1000")
    expect(viber_counter).to_have_class(re.compile(r"\bsmsfly-counter-over\b"))
    viber_text.fill("Your order #42 has shipped.")
    expect(viber_counter).to_have_text("Characters: 27 / 1000")
    page.fill("#id_viber_image", "https://shop.example/img/order-42.png")
    page.fill("#id_viber_button_caption", "Track it")
    page.fill("#id_viber_button_url", "https://shop.example/orders/42")
    page.fill("#id_sms_text", "Your order #42 has shipped: shop.example/orders/42")
    page.click("#smsfly-send")

    expect(page).to_have_url(MESSAGE_PAGE)
    expect(success(page)).to_have_text("The message to 380671234567 was accepted by SMS-fly.")
    expect(page.locator(".field-channels_display")).to_contain_text("Viber → SMS")
    message = Message.objects.exclude(pk=earlier.pk).get()
    assert (message.recipient, message.channels, message.state) == (
        "380671234567",
        "viber,sms",
        Message.State.ACCEPTED,
    )
    assert len(sandbox.requests_for("SENDMESSAGE")) == 2
    sent = sandbox.messages[-1]
    assert sent.channels == ("viber", "sms")
    assert sent.viber is not None
    assert sent.sms is not None
    assert sent.viber["text"] == "Your order #42 has shipped."
    assert sent.viber["image"] == "https://shop.example/img/order-42.png"
    assert sent.viber["button"] == {
        "caption": "Track it",
        "url": "https://shop.example/orders/42",
    }
    assert sent.sms["text"] == "Your order #42 has shipped: shop.example/orders/42"

    # Both are on the list, each with its channels and a status badge.
    page.goto(url(LIST))
    expect(page.locator("#result_list tbody tr")).to_have_count(2)
    for recipient, channels in (("380501234567", "SMS"), ("380671234567", "Viber → SMS")):
        row = row_of(page, recipient)
        expect(row.locator("td.field-channels_display")).to_have_text(channels)
        badge = row.locator(".smsfly-badge")
        expect(badge).to_have_text("accepted")
        expect(badge).to_have_class(re.compile(r"\bsmsfly-badge-pending\b"))
    expect(page.locator("#smsfly-balance")).to_be_visible()
    screenshot(settled(page), "message-list")


def test_errors_are_shown_at_their_fields_and_nothing_is_written(
    logged_in_page: Page,
    url: Callable[..., str],
    sandbox: Simulator,
    screenshot: Screenshot,
) -> None:
    page = logged_in_page
    page.goto(url(ADD))
    page.fill("#id_recipient", "050 123")
    page.fill("#id_sms_text", "Hello")
    page.click("#smsfly-send")

    expect(page.locator(".errornote")).to_be_visible()
    recipient_row = page.locator(".form-row.field-recipient")
    expect(recipient_row.locator(".errorlist")).to_have_text(
        "“050 123” is not a mobile number. Write it as 050 123 4567, +380 50 123 4567 "
        "or 380501234567."
    )
    # The rest of the form keeps what was typed.
    expect(page.locator("#id_sms_text")).to_have_value("Hello")
    expect(page.locator("#id_sms_text_counter")).to_have_attribute("data-parts", "1")
    assert not Message.objects.exists()
    assert sandbox.requests_for("SENDMESSAGE") == []
    screenshot(settled(page), "compose-errors")

    # A button caption longer than SMS-fly allows.
    too_long = "A caption far longer than allowed!"
    assert len(too_long) > BUTTON_CAPTION_MAX
    page.fill("#id_recipient", "050 123 4567")
    page.check("input[name=channels][value=viber]")
    page.fill("#id_viber_text", "Your order has shipped.")
    caption = page.locator("#id_viber_button_caption")
    # The browser itself stops at the limit...
    caption.press_sequentially(too_long)
    expect(caption).to_have_value(too_long[:BUTTON_CAPTION_MAX])
    # ... and a client without that guard is stopped by the server, at the field.
    caption.evaluate("input => input.removeAttribute('maxlength')")
    caption.fill(too_long)
    page.fill("#id_viber_button_url", "https://shop.example/orders/42")
    page.click("#smsfly-send")
    expect(page.locator(".errornote")).to_be_visible()
    expect(page.locator(".fieldBox.field-viber_button_caption .errorlist")).to_contain_text(
        f"at most {BUTTON_CAPTION_MAX} characters"
    )
    expect(page.locator(".form-row.field-recipient .errorlist")).to_have_count(0)
    # The page comes back with the channel chosen, and only its fields.
    expect(page.locator("input[name=channels][value=viber]")).to_be_checked()
    expect(page.locator("fieldset.smsfly-channel-sms")).to_be_hidden()
    expect(caption).to_have_value(too_long)
    assert not Message.objects.exists()
    assert sandbox.requests_for("SENDMESSAGE") == []


# -- a message's page ---------------------------------------------------------------------


def test_a_failed_message_is_sent_again_with_one_click(
    logged_in_page: Page, url: Callable[..., str], sandbox: Simulator
) -> None:
    sandbox.balance = 0
    failed = send_sms("050 123 4567", "Your code: 1234")
    sandbox.balance = 1000
    assert failed.state == Message.State.FAILED
    assert sandbox.messages == []

    page = logged_in_page
    page.goto(url(CHANGE, failed.pk))
    expect(page.locator(".field-error_code")).to_contain_text("INSUFFICIENTFUNDS")
    expect(page.locator("#smsfly-refresh")).to_have_count(0)
    page.click("#smsfly-resend")
    expect(page).to_have_url(url(CHANGE, failed.pk))
    expect(success(page)).to_have_text(
        "The message to 380501234567 was sent again and SMS-fly accepted it."
    )
    expect(page.locator("#smsfly-resend")).to_have_count(0)
    failed.refresh_from_db()
    assert failed.state == Message.State.ACCEPTED
    [sent] = sandbox.messages
    assert sent.message_id == failed.message_id


def test_an_unknown_outcome_is_sent_again_only_after_the_duplicate_warning(
    logged_in_page: Page, url: Callable[..., str], sandbox: Simulator, screenshot: Screenshot
) -> None:
    # SMS-fly takes the message, then the answer never comes.
    sandbox.inject(Fault.TIMEOUT, action="SENDMESSAGE")
    unknown = send_sms("050 123 4567", "Your code: 1234")
    assert unknown.state == Message.State.UNKNOWN
    assert len(sandbox.messages) == 1

    page = logged_in_page
    page.goto(url(CHANGE, unknown.pk))
    page.click("#smsfly-resend")
    warning = page.locator("#smsfly-duplicate-warning")
    expect(warning).to_be_visible()
    expect(warning).to_contain_text("This may deliver a message twice.")
    expect(page.locator(".smsfly-resend-list tr.smsfly-unknown")).to_contain_text("380501234567")
    # Pressing the button showed the warning; it sent nothing.
    assert len(sandbox.messages) == 1
    unknown.refresh_from_db()
    assert unknown.state == Message.State.UNKNOWN
    screenshot(settled(page), "resend-confirm")

    page.click("#smsfly-resend-confirm")
    expect(page).to_have_url(url(CHANGE, unknown.pk))
    expect(success(page)).to_have_text(
        "The message to 380501234567 was sent again and SMS-fly accepted it."
    )
    unknown.refresh_from_db()
    assert unknown.state == Message.State.ACCEPTED
    assert len(sandbox.messages) == 2
    assert len(sandbox.requests_for("SENDMESSAGE")) == 2


def test_send_again_from_the_list_warns_before_resending_an_unknown_outcome(
    logged_in_page: Page, url: Callable[..., str], sandbox: Simulator
) -> None:
    sandbox.balance = 0
    failed = send_sms("050 123 4567", "Your code: 1234")
    sandbox.balance = 1000
    sandbox.inject(Fault.TIMEOUT, action="SENDMESSAGE")
    unknown = send_sms("067 123 4567", "Your code: 5678")
    delivered = send_sms("063 123 4567", "Your code: 9012")
    assert [m.state for m in (failed, unknown, delivered)] == ["failed", "unknown", "accepted"]
    sent_before = len(sandbox.messages)

    page = logged_in_page
    page.goto(url(LIST))
    for message in (failed, unknown, delivered):
        page.check(f"#result_list input.action-select[value='{message.pk}']")
    expect(page.locator(".action-counter")).to_contain_text("3 of 3 selected")
    page.select_option("select[name=action]", "resend_messages")
    page.click("button[name=index], input[name=index]")

    expect(page.locator("#smsfly-duplicate-warning")).to_be_visible()
    expect(page.locator(".smsfly-resend-list tbody tr")).to_have_count(2)
    expect(page.locator(".smsfly-resend-list tr.smsfly-unknown")).to_have_count(1)
    assert len(sandbox.messages) == sent_before
    page.click("#smsfly-resend-confirm")

    expect(page).to_have_url(url(LIST))
    expect(success(page)).to_have_text("2 messages were sent again.")
    for message in (failed, unknown):
        message.refresh_from_db()
        assert message.state == Message.State.ACCEPTED
    # The accepted message was not among those asked about, nor sent again.
    assert len(sandbox.messages) == sent_before + 2
    assert {m.recipient for m in sandbox.messages[-2:]} == {"380501234567", "380671234567"}


# -- the balance panel and the overview ---------------------------------------------------


def test_the_balance_panel_shows_warns_and_stays_calm(
    logged_in_page: Page, url: Callable[..., str], sandbox: Simulator, screenshot: Screenshot
) -> None:
    send_sms("050 123 4567", "Your code: 1234")
    page = logged_in_page
    page.goto(url(LIST))
    panel = page.locator("#smsfly-balance")
    sms = panel.locator(".smsfly-balance-item[data-channel=sms]")
    viber = panel.locator(".smsfly-balance-item[data-channel=viber]")
    # One SMS (0.479) is spent already.
    expect(sms.locator("dt")).to_have_text("SMS")
    expect(sms.locator("dd")).to_have_text("999.521")
    expect(viber.locator("dt")).to_have_text("Viber")
    expect(viber.locator("dd")).to_have_text("500.000")
    expect(panel.locator(".smsfly-balance-low")).to_have_count(0)
    expect(panel.locator(".smsfly-callout")).to_have_count(0)

    # Below SMSFLY["BALANCE_WARNING"] (100): flagged, with a note to top up.
    sandbox.balance = 42
    cache.clear()
    page.reload()
    expect(panel.locator(".smsfly-balance-low")).to_have_count(1)
    expect(sms).to_have_class(re.compile(r"\bsmsfly-balance-low\b"))
    expect(sms.locator("dd")).to_have_text("42.000")
    expect(panel.locator(".smsfly-callout-warning")).to_contain_text("A balance is below 100")
    screenshot(settled(page), "balance-low")

    # SMS-fly cannot be asked: the list works and the panel says so calmly.
    sandbox.inject(Fault.SERVER_ERROR, action="GETBALANCEEXT")
    cache.clear()
    page.reload()
    expect(panel.locator(".smsfly-callout")).to_contain_text(
        "The balance could not be fetched from SMS-fly just now."
    )
    expect(panel.locator(".smsfly-balance-item")).to_have_count(0)
    expect(row_of(page, "380501234567")).to_be_visible()
    assert sandbox.pending_faults == []


def test_the_delivery_overview_charts_the_days(
    logged_in_page: Page, url: Callable[..., str], screenshot: Screenshot
) -> None:
    now = timezone.now()
    # Days ago -> statuses of the messages created that day.
    plan = {
        0: ["delivered", "delivered", "accepted"],
        1: ["delivered", "viewed", "undelivered"],
        3: ["delivered"] * 5 + ["expired"],
        6: ["failed", "delivered"],
    }
    # "viewed" is a Viber message read on the phone; the others are SMS. What reached a
    # phone was charged its channel's price, as SMS-fly charges it.
    price = {"sms": Decimal("0.479"), "viber": Decimal("0.750")}
    for days_ago, statuses in plan.items():
        rows = Message.objects.bulk_create(
            Message(
                recipient="380501234567",
                channels="viber" if status == "viewed" else "sms",
                content={"sms": {"source": "InfoCenter", "text": "Hello"}},
                state="accepted",
                status=status,
                delivered_via=_via(status),
                cost=price[_via(status)] if _via(status) else None,
            )
            for status in statuses
        )
        ChannelStatus.objects.bulk_create(
            ChannelStatus(
                message=row,
                channel=row.channels,
                status=row.status,
                cost=price[row.channels] if row.delivered_via else None,
            )
            for row in rows
        )
        # created_at is stamped on insert; these messages belong to earlier days.
        Message.objects.filter(pk__in=[r.pk for r in rows]).update(
            created_at=now - dt.timedelta(days=days_ago)
        )

    page = logged_in_page
    page.goto(url(LIST))
    page.click("#smsfly-overview-link")
    expect(page).to_have_url(url(OVERVIEW))
    expect(page.locator("svg.smsfly-chart")).to_be_visible()
    days = page.locator("svg.smsfly-chart g.smsfly-chart-day")
    expect(days).to_have_count(30)
    for days_ago, (delivered, failed, pending) in {
        0: (2, 0, 1),
        1: (2, 1, 0),
        3: (5, 1, 0),
        6: (1, 1, 0),
        2: (0, 0, 0),
    }.items():
        day = timezone.localdate(now - dt.timedelta(days=days_ago)).isoformat()
        group = page.locator(f"svg.smsfly-chart g.smsfly-chart-day[data-day='{day}']")
        expect(group).to_have_attribute("data-delivered", str(delivered))
        expect(group).to_have_attribute("data-failed", str(failed))
        expect(group).to_have_attribute("data-pending", str(pending))
        expect(group.locator("rect.smsfly-chart-delivered")).to_have_count(1 if delivered else 0)
    expect(page.locator("rect.smsfly-chart-delivered").first).to_be_visible()
    # 10 delivered among 13 with an outcome; the one still pending is left out.
    expect(page.locator("#smsfly-delivery-rate")).to_have_text(re.compile(r"^77\s%$"))
    # Nine SMS and one Viber message reached a phone: 9 x 0.479 + 0.750.
    expect(page.locator("#smsfly-spend")).to_have_text("5.061")
    screenshot(settled(page), "overview")


def _via(status: str) -> str:
    """The channel that delivered a message of this status in the overview's data."""
    return {"delivered": "sms", "viewed": "viber"}.get(status, "")


# -- Ukrainian --------------------------------------------------------------------------


def test_the_admin_pages_speak_ukrainian(
    operator_page: OpenPage,
    url: Callable[..., str],
    sandbox: Simulator,
    screenshot: Screenshot,
) -> None:
    send_sms("050 123 4567", "Привіт")
    send_viber("067 123 45 67", text="Замовлення вже в дорозі", sms_text="Замовлення в дорозі")
    sandbox.balance = 42
    page = operator_page("uk")

    # The list, with its links and the balance panel.
    page.goto(url(LIST))
    expect(page.locator("html")).to_have_attribute("lang", "uk")
    expect(page.locator("#smsfly-compose-link")).to_have_text("Надіслати повідомлення")
    expect(page.locator("#smsfly-overview-link")).to_have_text("Огляд доставки")
    expect(page.locator("#result_list thead")).to_contain_text("Одержувач")
    expect(page.locator("#result_list thead")).to_contain_text("Канали")
    expect(row_of(page, "380501234567").locator(".smsfly-badge")).to_have_text("прийнято")
    expect(row_of(page, "380671234567")).to_contain_text("Viber → SMS")
    expect(page.locator("#changelist-filter")).to_contain_text("Viber, потім SMS")
    expect(page.locator(".smsfly-result-count")).to_have_text("2 повідомлення")
    panel = page.locator("#smsfly-balance")
    expect(panel.locator("h2")).to_have_text("Баланс SMS-fly")
    expect(panel.locator(".smsfly-callout-warning")).to_contain_text("Баланс нижчий за 100")
    # Numbers as Ukrainian writes them: a decimal comma.
    expect(panel.locator("[data-channel=viber] dd")).to_have_text("499,250")
    screenshot(settled(page), "message-list-uk")

    # The compose page: labels, choices, the counter and the buttons.
    page.click("#smsfly-compose-link")
    expect(page.locator("h1")).to_have_text("Надіслати повідомлення")
    expect(page.locator("label[for=id_recipient]")).to_have_text("Одержувач:")
    expect(page.locator("#id_channels")).to_contain_text("Viber, а якщо не вдасться — SMS")
    expect(page.locator("label[for=id_sms_text]")).to_have_text("Текст SMS:")
    page.fill("#id_sms_text", "Привіт")
    expect(page.locator("#id_sms_text_counter")).to_have_text(
        "Символів: 6 · Частин SMS: 1 · Кодування: UCS-2 · Залишилося в цій частині: 64"
    )
    expect(page.locator("#smsfly-send")).to_have_value("Надіслати")
    expect(page.locator("#smsfly-estimate-button")).to_have_value("Оцінити вартість")

    # The overview: the summary, the chart's legend and the table.
    page.goto(url(LIST))
    page.click("#smsfly-overview-link")
    expect(page.locator("h1")).to_have_text("Огляд доставки")
    summary = page.locator("#smsfly-overview-summary")
    for label in ("Повідомлення", "Доставлено", "Не вдалося", "В очікуванні"):
        expect(summary.locator("dt", has_text=label)).to_have_count(1)
    expect(summary.locator("dt", has_text="Частка доставлених")).to_have_count(1)
    legend = page.locator("#smsfly-chart .smsfly-chart-legend li")
    for label in ("доставлено", "не вдалося", "в очікуванні"):
        expect(legend.filter(has_text=label)).to_have_count(1)
    expect(page.locator("#smsfly-overview-table caption")).to_have_text("Повідомлення за днями")


# -- hostile text -------------------------------------------------------------------------

HOSTILE_IMG = "<img src=x onerror=window.__xss=1>"
HOSTILE_SCRIPT = "<script>window.__xss=1</script>"


def xss_ran(page: Page) -> bool:
    return bool(page.evaluate("typeof window.__xss !== 'undefined'"))


def test_hostile_text_is_shown_as_text(
    logged_in_page: Page, url: Callable[..., str], sandbox: Simulator
) -> None:
    hostile = f"{HOSTILE_IMG} {HOSTILE_SCRIPT}"
    message = send_sms(
        "050 123 4567",
        hostile,
        metadata={"note": HOSTILE_IMG, HOSTILE_SCRIPT: HOSTILE_SCRIPT},
    )
    page = logged_in_page

    # The list, searched for the hostile text (the search box shows it back).
    page.goto(url(LIST))
    page.fill("#searchbar", HOSTILE_IMG)
    page.press("#searchbar", "Enter")
    expect(page.locator("#searchbar")).to_have_value(HOSTILE_IMG)
    expect(row_of(page, "380501234567")).to_be_visible()
    assert not xss_ran(page)

    # The message's page: content and metadata as text.
    page.goto(url(CHANGE, message.pk))
    expect(page.locator(".field-content_display pre")).to_contain_text(hostile)
    metadata = page.locator(".field-metadata_display pre")
    expect(metadata).to_contain_text(HOSTILE_IMG)
    expect(metadata).to_contain_text(HOSTILE_SCRIPT)
    assert not xss_ran(page)

    # The compose page shown again with an error: what was typed comes back as text.
    page.goto(url(ADD))
    page.fill("#id_recipient", HOSTILE_IMG)
    page.fill("#id_sms_text", hostile)
    page.click("#smsfly-send")
    expect(page.locator(".form-row.field-recipient .errorlist")).to_contain_text(
        f"“{HOSTILE_IMG}” is not a mobile number."
    )
    expect(page.locator("#id_recipient")).to_have_value(HOSTILE_IMG)
    expect(page.locator("#id_sms_text")).to_have_value(hostile)
    assert not xss_ran(page)
    # Nothing of it became an element anywhere.
    expect(page.locator("#content img")).to_have_count(0)
    assert Message.objects.count() == 1
