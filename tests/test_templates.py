"""Message templates: rendering with a restricted context, finding a language's variant,
``send_template`` end to end on the sandbox, and the admin's form and live preview."""

from __future__ import annotations

import datetime as dt
import enum
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse
from django.utils import timezone, translation

import django_smsfly
from django_smsfly import templating
from django_smsfly.backends.sandbox import Simulator
from django_smsfly.channels import Channel
from django_smsfly.exceptions import SmsFlyValidationError
from django_smsfly.models import Message, MessageTemplate, OptOut
from django_smsfly.templating import TemplateError, TemplateNotFound
from django_smsfly.validation import SmsContent, ViberContent

pytestmark = pytest.mark.frozen_sandbox

NUMBER = "380501234567"


def sms_template(text: str, **fields: Any) -> MessageTemplate:
    """An unsaved SMS template (rendering needs no database)."""
    return MessageTemplate(name="t", channels="sms", sms_text=text, **fields)


def render_sms(text: str, **context: object) -> str:
    rendered = templating.render(sms_template(text), context)
    assert rendered.sms is not None
    return rendered.sms.text


def sends(sandbox: Simulator) -> list[dict[str, Any]]:
    return [request.body["data"] for request in sandbox.requests_for("SENDMESSAGE")]


# -- rendering ----------------------------------------------------------------------------


def test_placeholders_are_filled_from_the_context() -> None:
    text = "Hi {{ name }}, order {{ order }} costs {{ total }} UAH."
    assert render_sms(text, name="Olena", order=42, total=Decimal("99.50")) == (
        "Hi Olena, order 42 costs 99.50 UAH."
    )


def test_texts_are_plain_text_not_html() -> None:
    assert render_sms("{{ shop }} <b>", shop="Salt & Pepper <Kyiv>") == "Salt & Pepper <Kyiv> <b>"


@pytest.mark.parametrize("value", [None, "", "   "], ids=["none", "empty", "blank"])
def test_an_empty_placeholder_is_an_error_naming_it(value: object) -> None:
    with pytest.raises(TemplateError) as raised:
        render_sms("Hi {{ name }}!", name=value)
    assert "{{ name }}" in str(raised.value)
    assert "missing or empty" in str(raised.value)
    assert raised.value.missing == ("name",)


def test_every_missing_placeholder_is_named_at_once() -> None:
    with pytest.raises(TemplateError) as raised:
        render_sms("{{ first }} {{ name }} {{ last }}", name="Olena")
    assert raised.value.missing == ("first", "last")
    assert "{{ first }}, {{ last }}" in str(raised.value)
    assert "are missing or empty" in str(raised.value)


@pytest.mark.parametrize(
    "text",
    ["{{ name|upper }}", "{{ name|truncatechars:2 }}", "{{ when|date:'d.m' }}", "{{ n|add:1 }}"],
)
def test_a_missing_value_through_a_filter_is_still_an_error(text: str) -> None:
    with pytest.raises(TemplateError, match="missing or empty"):
        render_sms(f"Hi {text}")


def test_default_and_if_allow_a_blank_explicitly() -> None:
    text = 'Hi {{ name|default:"friend" }}{% if code %}, code {{ code }}{% endif %}.'
    assert render_sms(text) == "Hi friend."
    assert render_sms(text, name="", code="A1") == "Hi friend, code A1."
    assert render_sms("{% firstof nick name 'there' %}", name="Olena") == "Olena"


def test_zero_and_false_are_values_not_blanks() -> None:
    assert render_sms(
        "{{ points }} points, {{ vip|yesno:'VIP,regular' }}", points=0, vip=False
    ) == ("0 points, regular")


def test_dates_and_numbers_use_the_template_filters() -> None:
    when = dt.datetime(2025, 3, 1, 9, 30, tzinfo=dt.timezone.utc)
    text = "{{ when|date:'d.m.Y H:i' }} {{ amount|floatformat:2 }}"
    # Aware datetimes are shown in the site's time zone (Europe/Kyiv: UTC+2 in March).
    assert render_sms(text, when=when, amount=3) == "01.03.2025 11:30 3.00"


class Size(str, enum.Enum):
    BIG = "big"


@pytest.mark.parametrize(
    "value", [object(), ["a"], {"a": 1}, b"bytes", dt.timedelta(1)], ids=lambda v: type(v).__name__
)
def test_only_plain_values_are_accepted(value: object) -> None:
    with pytest.raises(TemplateError, match="not a plain value") as raised:
        render_sms("{{ thing }}", thing=value)
    assert raised.value.field == "thing"


def test_a_model_instance_is_refused_so_no_attributes_are_walked() -> None:
    user = User(username="olena", password="secret-hash")
    with pytest.raises(TemplateError, match="User is not a plain value"):
        render_sms("{{ user }}", user=user)


def test_a_string_subclass_is_passed_on_as_its_plain_value() -> None:
    assert render_sms("{{ size }}", size=Size.BIG.value) == "big"
    assert render_sms("{{ size|upper }}", size=Size.BIG) in {"BIG", "SIZE.BIG"}


def test_a_nul_in_a_value_is_refused_naming_it() -> None:
    with pytest.raises(TemplateError, match="NUL") as raised:
        render_sms("{{ name }}", name="Ole\x00na")
    assert raised.value.field == "name"


@pytest.mark.parametrize(
    "tag",
    [
        "{% load static %}",
        "{% include 'admin/base.html' %}",
        "{% extends 'admin/base.html' %}",
        "{% block x %}{% endblock %}",
        "{% debug %}",
        "{% url 'admin:index' %}",
        "{% csrf_token %}",
    ],
)
def test_tags_that_reach_beyond_the_text_are_refused_by_name(tag: str) -> None:
    name = tag.split()[1]
    with pytest.raises(ValidationError, match=f"{{% {name} %}} is not allowed"):
        templating.check_syntax(f"Hi {tag}")
    # A row written around the form (by code, say) is refused when rendered too.
    with pytest.raises(TemplateError, match="is not allowed"):
        render_sms(f"Hi {tag}")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("{% for c in name %}{{ c }}{% endfor %}", "{% for %} is not available"),
        ("{% lorem 100000 w %}", "{% lorem %} is not available"),
        ("{{ name|center:'100000000' }}", "Invalid filter: 'center'"),
        ("{{ name.upper }}", "plain values only"),
        ("{% if user.is_staff %}x{% endif %}", "{{ user.is_staff }}"),
        ("{{ name|default:user.email }}", "{{ user.email }}"),
        ("{% if %}x{% endif %}", "if"),
        ("Hi {{ name", "line 1: a {{, {% or {# is not closed"),
        ("Hi\n{% if name", "line 2: a {{, {% or {# is not closed"),
        ("{% if name %}x", "Unclosed tag on line 1: 'if'"),
        ("Hi \x00", "NUL"),
    ],
)
def test_bad_syntax_is_refused_with_a_reason(text: str, reason: str) -> None:
    with pytest.raises(ValidationError) as raised:
        templating.check_syntax(text)
    assert reason in raised.value.messages[0]


def test_good_syntax_passes() -> None:
    templating.check_syntax(
        'Hi {{ name|default:"friend"|title }}{% if code %} {{ code }}{% else %}!{% endif %}'
        "{% with n=name %}{{ n }}{% endwith %}{% now 'Y' %}{# note #}"
        "{% verbatim %}{{ shown as is {% endverbatim %}"
    )


def test_variables_are_the_context_names_the_channels_texts_read() -> None:
    template = MessageTemplate(
        name="t",
        channels="viber,sms",
        sms_text="{% if vip %}VIP {% endif %}{{ name }} {{ when|date:fmt }}",
        viber_text="{% with x=code %}{{ x }}{% endwith %}{% now 'Y' as year %}{{ year }}",
        button_caption="{{ cta|default:'Open' }}",
    )
    assert templating.variables(template) == {"vip", "name", "when", "fmt", "code", "cta"}
    template.channels = "sms"
    assert templating.variables(template) == {"vip", "name", "when", "fmt"}
    assert templating.variables("Hi {{ a }} {{ b|default:c }}") == {"a", "b", "c"}


def test_render_gives_what_send_message_takes_for_each_channel() -> None:
    template = MessageTemplate(
        name="t",
        channels="viber,sms",
        sms_text="Order {{ order }} shipped",
        viber_text="Order {{ order }} shipped, {{ name }}!\n",
        button_caption="Track {{ order }}",
        button_url="https://shop.example/track",
        image="https://shop.example/box.png",
    )
    rendered = templating.render(template, {"order": 7, "name": "Olena"})
    assert rendered == templating.Rendered(
        channels=(Channel.VIBER, Channel.SMS),
        sms=SmsContent(text="Order 7 shipped"),
        viber=ViberContent(
            text="Order 7 shipped, Olena!",
            image="https://shop.example/box.png",
            button_caption="Track 7",
            button_url="https://shop.example/track",
        ),
    )


def test_a_channel_whose_text_renders_empty_is_an_error() -> None:
    with pytest.raises(TemplateError, match="empty once rendered") as raised:
        render_sms("{% if code %}{{ code }}{% endif %}")
    assert raised.value.field == "sms_text"


def test_a_template_error_is_a_validation_error() -> None:
    assert issubclass(TemplateError, SmsFlyValidationError)
    assert issubclass(TemplateNotFound, LookupError)


# -- finding a language's variant -------------------------------------------------------


@pytest.fixture
def variants(db: None) -> dict[str, MessageTemplate]:
    return {
        language: MessageTemplate.objects.create(
            name="welcome", language=language, sms_text=f"[{language or 'default'}] {{{{ name }}}}"
        )
        for language in ("", "uk", "pl-pl")
    }


@pytest.mark.parametrize(
    ("language", "expected"),
    [("uk", "uk"), ("uk-ua", "uk"), ("uk_UA", "uk"), ("en", ""), ("pl-PL", "pl-pl"), ("pl", "")],
)
def test_find_falls_back_from_region_to_language_to_the_default(
    variants: dict[str, MessageTemplate], language: str, expected: str
) -> None:
    assert templating.find("welcome", language) == variants[expected]


def test_find_uses_the_active_language_by_default(variants: dict[str, MessageTemplate]) -> None:
    with translation.override("uk"):
        assert templating.find("welcome") == variants["uk"]
    with translation.override("en"):
        assert templating.find("welcome") == variants[""]


def test_find_without_a_default_variant_names_the_template(db: None) -> None:
    MessageTemplate.objects.create(name="promo", language="uk", sms_text="Знижка")
    with pytest.raises(TemplateNotFound, match="'promo'") as raised:
        templating.find("promo", "en")
    assert isinstance(raised.value, LookupError)
    with pytest.raises(TemplateNotFound, match="'nothing'"):
        templating.find("nothing")


# -- send_template ------------------------------------------------------------------------


@pytest.fixture
def shipped(db: None) -> MessageTemplate:
    MessageTemplate.objects.create(
        name="shipped", language="uk", sms_text="Замовлення {{ order }} відправлено, {{ name }}."
    )
    return MessageTemplate.objects.create(
        name="shipped",
        channels="viber,sms",
        sms_text="Order {{ order }} shipped, {{ name }}.",
        viber_text="Order {{ order }} is on its way, {{ name }}!",
        button_caption="Track",
        button_url="https://shop.example/track",
    )


def test_send_template_sends_the_rendered_texts(
    shipped: MessageTemplate, sandbox: Simulator
) -> None:
    message = django_smsfly.send_template("shipped", "050 123 4567", {"order": 42, "name": "Ann"})
    assert message.state == Message.State.ACCEPTED
    assert message.recipient == NUMBER
    assert message.channels == "viber,sms"
    assert sends(sandbox) == [
        {
            "recipient": NUMBER,
            "channels": ["viber", "sms"],
            "viber": {
                "source": "Promo",
                "text": "Order 42 is on its way, Ann!",
                "button": {"caption": "Track", "url": "https://shop.example/track"},
            },
            "sms": {"source": "InfoCenter", "text": "Order 42 shipped, Ann."},
        }
    ]
    assert Message.objects.get().content["sms"]["text"] == "Order 42 shipped, Ann."


def test_send_template_picks_the_language_variant(
    shipped: MessageTemplate, sandbox: Simulator
) -> None:
    django_smsfly.send_template("shipped", NUMBER, {"order": 7, "name": "Оля"}, language="uk-UA")
    [sent] = sends(sandbox)
    assert sent["channels"] == ["sms"]
    assert sent["sms"]["text"] == "Замовлення 7 відправлено, Оля."


def test_send_template_with_a_missing_value_writes_and_sends_nothing(
    shipped: MessageTemplate, sandbox: Simulator
) -> None:
    with pytest.raises(TemplateError, match=r"\{\{ name \}\}"):
        django_smsfly.send_template("shipped", NUMBER, {"order": 42, "name": " "})
    with pytest.raises(TemplateNotFound):
        django_smsfly.send_template("unknown", NUMBER, {})
    assert not Message.objects.exists()
    assert sandbox.requests == []


def test_send_template_passes_every_send_option(
    shipped: MessageTemplate, sandbox: Simulator
) -> None:
    user = User.objects.create_user("op")
    message = django_smsfly.send_template(
        "shipped",
        NUMBER,
        {"order": 1, "name": "Ann"},
        idempotency_key="order-1-shipped",
        metadata={"order": 1},
        created_by=user,
        sms_source="SMS-fly",
        viber_source="SMS-fly",
    )
    again = django_smsfly.send_template(
        "shipped", NUMBER, {"order": 1, "name": "Ann"}, idempotency_key="order-1-shipped"
    )
    assert again.pk == message.pk
    message.refresh_from_db()
    assert message.metadata == {"order": 1}
    assert message.created_by == user
    [sent] = sends(sandbox)  # the same key never sends twice
    assert sent["sms"]["source"] == "SMS-fly"
    assert sent["viber"]["source"] == "SMS-fly"


@pytest.mark.django_db(transaction=True)  # the task is enqueued when the send commits
def test_send_template_defers_on_the_immediate_backend(
    shipped: MessageTemplate, sandbox: Simulator
) -> None:
    message = django_smsfly.send_template(
        "shipped", NUMBER, {"order": 2, "name": "Ann"}, defer=True
    )
    assert message.state == Message.State.ACCEPTED
    assert len(sends(sandbox)) == 1


def test_send_template_at_a_time_queues_it(shipped: MessageTemplate, sandbox: Simulator) -> None:
    later = timezone.now() + dt.timedelta(hours=2)
    message = django_smsfly.send_template(
        "shipped", NUMBER, {"order": 3, "name": "Ann"}, send_at=later
    )
    message.refresh_from_db()
    assert message.state == Message.State.QUEUED
    assert message.send_at == later
    assert sends(sandbox) == []


def test_send_template_honours_opt_outs_unless_told_not_to(
    shipped: MessageTemplate, sandbox: Simulator
) -> None:
    OptOut.objects.create(recipient=NUMBER)
    refused = django_smsfly.send_template("shipped", NUMBER, {"order": 4, "name": "Ann"})
    assert refused.state == Message.State.FAILED
    assert refused.error_code == "OPTED_OUT"
    assert sends(sandbox) == []
    forced = django_smsfly.send_template(
        "shipped", NUMBER, {"order": 4, "name": "Ann"}, ignore_opt_out=True
    )
    assert forced.state == Message.State.ACCEPTED
    assert forced.ignore_opt_out is True
    assert len(sends(sandbox)) == 1


# -- the admin -----------------------------------------------------------------------------

ADD_URL = "admin:django_smsfly_messagetemplate_add"
PREVIEW_URL = "admin:django_smsfly_messagetemplate_preview"


def form_data(**fields: str) -> dict[str, str]:
    data = {
        "name": "welcome",
        "language": "",
        "channels": "sms",
        "description": "",
        "sms_text": "Hi {{ name }}",
        "viber_text": "",
        "image": "",
        "button_caption": "",
        "button_url": "",
    }
    data.update(fields)
    return data


def form_errors(response: Any) -> dict[str, list[str]]:
    form = response.context["adminform"].form
    return {name: list(messages) for name, messages in form.errors.items()}


def test_the_admin_saves_a_valid_template(operator: Client) -> None:
    response = operator.post(
        reverse(ADD_URL),
        form_data(language="uk", sms_text="Привіт, {{ name }}!\r\nДо зустрічі."),
    )
    assert response.status_code == 302, form_errors(response)
    template = MessageTemplate.objects.get()
    assert (template.name, template.language, template.channels) == ("welcome", "uk", "sms")
    assert template.sms_text == "Привіт, {{ name }}!\nДо зустрічі."


def test_the_admin_list_shows_and_searches_templates(operator: Client) -> None:
    MessageTemplate.objects.create(name="welcome", sms_text="Hi", description="First contact")
    MessageTemplate.objects.create(name="shipped", language="uk", sms_text="Відправлено")
    url = reverse("admin:django_smsfly_messagetemplate_changelist")
    page = operator.get(url).content.decode()
    assert "welcome" in page
    assert "First contact" in page
    assert "shipped" in page
    found = operator.get(url, {"q": "contact"}).content.decode()
    assert "welcome" in found
    assert "shipped" not in found


@pytest.mark.parametrize(
    ("fields", "field", "reason"),
    [
        ({"sms_text": "Hi {% load static %}"}, "sms_text", "{% load %} is not allowed"),
        ({"sms_text": "Hi {{ user.email }}"}, "sms_text", "plain values only"),
        ({"channels": "viber,sms", "sms_text": "Hi"}, "viber_text", "needs a text or an image"),
        ({"channels": "viber,sms", "viber_text": "Hi", "sms_text": ""}, "sms_text", "empty"),
        (
            {"channels": "viber", "viber_text": "Hi", "button_caption": "Open"},
            "button_url",
            "needs a URL",
        ),
        (
            {"channels": "viber", "viber_text": "Hi", "button_url": "https://e.example/"},
            "button_caption",
            "needs a caption",
        ),
        ({"sms_text": "{{ name }} " + "x" * 400}, "sms_text", "more than the 2 SMS parts allowed"),
        ({"language": "english!"}, "language", ""),
    ],
)
def test_the_admin_refuses_a_template_a_send_would_refuse(
    operator: Client, settings: Any, fields: dict[str, str], field: str, reason: str
) -> None:
    settings.SMSFLY = {**settings.SMSFLY, "MAX_SMS_PARTS": 2}
    response = operator.post(reverse(ADD_URL), form_data(**fields))
    assert response.status_code == 200
    errors = form_errors(response)
    assert field in errors, errors
    assert reason in " ".join(errors[field])
    assert not MessageTemplate.objects.exists()


def test_the_admin_checks_the_length_with_the_sample_values(
    operator: Client, settings: Any
) -> None:
    settings.SMSFLY = {**settings.SMSFLY, "MAX_SMS_PARTS": 1}
    long_sample = {"sample-name": "x" * 200}
    refused = operator.post(reverse(ADD_URL), {**form_data(), **long_sample})
    assert "more than the 1 SMS parts allowed" in " ".join(form_errors(refused)["sms_text"])
    # An emptied sample is checked with the variable's name instead.
    saved = operator.post(reverse(ADD_URL), {**form_data(), "sample-name": ""})
    assert saved.status_code == 302


def test_the_change_page_has_the_preview_panel_and_no_inline_script(operator: Client) -> None:
    page = operator.get(reverse(ADD_URL)).content.decode()
    assert 'id="smsfly-template-preview"' in page
    assert f'data-preview-url="{reverse(PREVIEW_URL)}"' in page
    assert "django_smsfly/template_preview.js" in page
    scripts = [chunk.split(">", 1)[0] for chunk in page.split("<script")[1:]]
    assert all("src=" in tag or "application/json" in tag for tag in scripts), scripts


def test_the_preview_renders_with_the_samples_and_counts_parts(operator: Client) -> None:
    data = form_data(
        channels="viber,sms",
        sms_text="Привіт, {{ name }}! Замовлення {{ order }}.",
        viber_text="Hi {{ name }}",
        button_caption="Track {{ order }}",
        button_url="https://shop.example/t",
    )
    response = operator.post(reverse(PREVIEW_URL), {**data, "sample-name": "Оля"})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    preview = response.json()
    assert preview["variables"] == ["name", "order"]
    assert preview["errors"] == {}
    assert preview["channels"] == ["viber", "sms"]
    # "order" has no sample yet: its name stands in.
    text = "Привіт, Оля! Замовлення order."
    assert preview["sms"] == {
        "text": text,
        "length": len(text),
        "parts": 1,
        "encoding": "UCS-2",
        "remaining": 70 - len(text),
        "max_parts": 10,
    }
    assert preview["viber"] == {
        "text": "Hi Оля",
        "length": 6,
        "max": 1000,
        "button_caption": "Track order",
    }


def test_the_preview_reports_errors_per_field(operator: Client) -> None:
    data = form_data(sms_text="Hi {{ name }} {% url 'x' %}")
    preview = operator.post(reverse(PREVIEW_URL), data).json()
    assert "{% url %} is not allowed" in preview["errors"]["sms_text"][0]
    data = form_data(sms_text="Hi {{ name }}, {{ code }}")
    preview = operator.post(reverse(PREVIEW_URL), {**data, "sample-code": " "}).json()
    assert "{{ code }}" in preview["errors"]["sms_text"][0]
    assert preview["sms"] is None


def test_the_preview_needs_a_post(operator: Client) -> None:
    assert operator.get(reverse(PREVIEW_URL)).status_code == 405


@pytest.mark.parametrize("codename", [None, "view_messagetemplate"])
def test_the_preview_is_refused_without_add_or_change_permission(
    db: None, codename: str | None
) -> None:
    user = User.objects.create_user("viewer", is_staff=True)
    if codename:
        user.user_permissions.add(Permission.objects.get(codename=codename))
    browser = Client()
    browser.force_login(user)
    assert browser.post(reverse(PREVIEW_URL), form_data()).status_code == 403


def test_the_preview_is_allowed_with_change_permission(db: None) -> None:
    user = User.objects.create_user("editor", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="change_messagetemplate"))
    browser = Client()
    browser.force_login(user)
    response = browser.post(reverse(PREVIEW_URL), form_data())
    assert response.status_code == 200
    assert response.json()["sms"]["text"] == "Hi name"


def test_the_preview_is_csrf_protected(operator_user: Any) -> None:
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(operator_user)
    assert browser.post(reverse(PREVIEW_URL), form_data()).status_code == 403
