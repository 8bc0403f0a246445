"""The Ukrainian translation: complete, well formed, compiled, and what operators see.

The catalog is read with a small parser of the ``.po`` format (enough for the files
gettext's tools write) so that the suite needs nothing beyond the app's test extras.
"""

from __future__ import annotations

import ast
import gettext as gettext_module
import io
import json
import re
import shutil
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import responses
from django.core.cache import cache
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from django.utils import translation
from django.utils.translation import ngettext

import django_smsfly
from django_smsfly import send_sms
from django_smsfly.client import SmsFlyClient
from django_smsfly.exceptions import SmsFlyAuthError, SmsFlyValidationError
from django_smsfly.models import Message, StatusChange
from django_smsfly.statuses import DeliveryStatus
from tests.conftest import API_URL

PACKAGE = Path(django_smsfly.__file__).resolve().parent
MESSAGES = PACKAGE / "locale" / "uk" / "LC_MESSAGES"
PO_FILE = MESSAGES / "django.po"
MO_FILE = MESSAGES / "django.mo"

#: Ukrainian plural forms: one (1, 21), few (2-4, 22-24), many (0, 5-20, 25...) and
#: a fraction; a number from each, as Django's ngettext picks the form.
PLURAL_SAMPLES = {0: 21, 1: 3, 2: 5, 3: 1.5}

#: A ``%(name)x`` placeholder with its conversion, or ``%%`` (a literal percent sign).
PLACEHOLDER = re.compile(r"%%|%\((\w+)\)[-#0 +]*\d*(?:\.\d+)?([diouxXeEfFgGcrsa])")
TAG = re.compile(r"<[^<>]+>")


# -- a small .po reader --------------------------------------------------------------------


@dataclass
class Entry:
    """One message of a catalog."""

    msgid: str = ""
    msgid_plural: str | None = None
    msgctxt: str | None = None
    #: The translations by plural form (form 0 only for a message without plural).
    msgstr: dict[int, str] = field(default_factory=dict)
    flags: set[str] = field(default_factory=set)
    obsolete: bool = False

    def __str__(self) -> str:
        return repr(self.msgid[:70])


def parse_po(text: str) -> tuple[dict[str, str], list[Entry]]:
    """The header's fields and the messages of a ``.po`` file written by gettext's tools."""
    entries: list[Entry] = []
    for block in re.split(r"\n\s*\n", text):
        entry = Entry()
        key: str | None = None
        values: dict[str, str] = {}
        for raw in block.splitlines():
            line = raw.strip()
            if line.startswith("#~"):
                entry.obsolete = True
                line = line[2:].strip()
            elif line.startswith("#,"):
                entry.flags |= {flag.strip() for flag in line[2:].split(",")}
                continue
            elif line.startswith("#") or not line:
                continue
            if line.startswith('"'):
                if key is None:
                    raise ValueError(f"a string outside an entry: {raw!r}")
                values[key] += ast.literal_eval(line)
                continue
            key, _, rest = line.partition(" ")
            values[key] = ast.literal_eval(rest)
        if not values:
            continue
        for name, value in values.items():
            if name == "msgid":
                entry.msgid = value
            elif name == "msgid_plural":
                entry.msgid_plural = value
            elif name == "msgctxt":
                entry.msgctxt = value
            elif name == "msgstr":
                entry.msgstr[0] = value
            elif match := re.fullmatch(r"msgstr\[(\d+)\]", name):
                entry.msgstr[int(match.group(1))] = value
            else:
                raise ValueError(f"unknown keyword {name!r}")
        entries.append(entry)
    header = next(e for e in entries if e.msgid == "" and e.msgctxt is None)
    fields = dict(line.split(": ", 1) for line in header.msgstr[0].splitlines() if ": " in line)
    messages = [e for e in entries if e is not header and not e.obsolete]
    return fields, messages


def read_catalog(path: Path = PO_FILE) -> tuple[dict[str, str], list[Entry]]:
    return parse_po(path.read_text(encoding="utf-8"))


def placeholders(text: str) -> set[tuple[str, str]]:
    """The ``%(name)x`` placeholders of a text, as (name, conversion) pairs."""
    return {(m.group(1), m.group(2)) for m in PLACEHOLDER.finditer(text) if m.group(0) != "%%"}


def test_the_parser_reads_plurals_flags_and_continued_lines() -> None:
    fields, [single, plural] = parse_po(
        'msgid ""\nmsgstr ""\n"Language: uk\\n"\n\n'
        '#: a.py:1\n#, fuzzy, python-format\nmsgid "a %(x)s"\nmsgstr ""\n"б "\n"%(x)s"\n\n'
        'msgid "one"\nmsgid_plural "many"\nmsgstr[0] "о"\nmsgstr[1] ""\n\n'
        '#~ msgid "gone"\n#~ msgstr "нема"\n'
    )
    assert fields == {"Language": "uk"}
    assert (single.msgid, single.msgstr, single.flags) == (
        "a %(x)s",
        {0: "б %(x)s"},
        {"fuzzy", "python-format"},
    )
    assert (plural.msgid_plural, plural.msgstr) == ("many", {0: "о", 1: ""})


def test_placeholders_are_read_with_their_conversion() -> None:
    assert placeholders("%(a)s, 100%% %(b)d, %%(c)s, %(rate).1f/s") == {
        ("a", "s"),
        ("b", "d"),
        ("rate", "f"),
    }


# -- the catalog ---------------------------------------------------------------------------


def test_the_catalog_is_ukrainian_with_four_plural_forms() -> None:
    fields, _entries = read_catalog()
    assert fields["Language"] == "uk"
    assert fields["Content-Type"] == "text/plain; charset=UTF-8"
    assert fields["Plural-Forms"].startswith("nplurals=4;")


def test_every_message_is_translated() -> None:
    _fields, entries = read_catalog()
    assert len(entries) > 300
    untranslated = [
        str(e)
        for e in entries
        if len(e.msgstr) != (4 if e.msgid_plural else 1)
        or any(not text.strip() for text in e.msgstr.values())
    ]
    assert untranslated == []


def test_no_translation_is_left_fuzzy() -> None:
    _fields, entries = read_catalog()
    assert [str(e) for e in entries if "fuzzy" in e.flags] == []


def test_translations_keep_every_placeholder_and_tag() -> None:
    """A lost or misspelled ``%(name)s`` breaks the text (or raises) only in Ukrainian.

    Every plural form carries all the placeholders: the first form serves 21, 31...
    too, so it must show the number even where the English singular does not.
    """
    _fields, entries = read_catalog()
    wrong = []
    for entry in entries:
        expected = placeholders(entry.msgid) | placeholders(entry.msgid_plural or "")
        tags = sorted(TAG.findall(entry.msgid))
        for form, text in entry.msgstr.items():
            if placeholders(text) != expected or sorted(TAG.findall(text)) != tags:
                wrong.append(f"{entry} [{form}]: {text!r}")
        if expected and "python-format" not in entry.flags:
            wrong.append(f"{entry}: placeholders but no python-format flag")
    assert wrong == []


def test_the_compiled_catalog_is_the_po_file() -> None:
    """``django.mo`` was compiled from the ``.po`` as it is now: nothing is missing."""
    with MO_FILE.open("rb") as handle:
        compiled = gettext_module.GNUTranslations(handle)
    _fields, entries = read_catalog()
    stale = []
    for entry in entries:
        if entry.msgid_plural is None:
            found = (
                compiled.pgettext(entry.msgctxt, entry.msgid)
                if entry.msgctxt
                else compiled.gettext(entry.msgid)
            )
            if found != entry.msgstr[0]:
                stale.append(str(entry))
            continue
        for form, number in PLURAL_SAMPLES.items():
            with warnings.catch_warnings():
                # Python frowns on a fraction here; Django passes one on (1.5 messages).
                warnings.simplefilter("ignore", DeprecationWarning)
                found = compiled.ngettext(entry.msgid, entry.msgid_plural, number)  # type: ignore[arg-type]
            if found != entry.msgstr[form]:
                stale.append(f"{entry} [{form}]")
    assert stale == []


@pytest.mark.skipif(shutil.which("xgettext") is None, reason="needs gettext's tools")
def test_every_marked_string_in_the_app_is_in_the_catalog(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Extract the app's strings afresh: the shipped catalog has each, translated, and no more."""
    copy = tmp_path / "django_smsfly"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__", "*.mo"))
    monkeypatch.chdir(copy)
    call_command("makemessages", locale=["uk"], verbosity=0)
    _fields, fresh = read_catalog(copy / "locale" / "uk" / "LC_MESSAGES" / "django.po")
    _fields, shipped = read_catalog()
    assert {(e.msgctxt, e.msgid) for e in fresh} == {(e.msgctxt, e.msgid) for e in shipped}
    new = [
        str(e) for e in fresh if "fuzzy" in e.flags or any(not text for text in e.msgstr.values())
    ]
    assert new == []


# -- what operators see --------------------------------------------------------------------


@pytest.fixture
def ukrainian(settings: Any) -> Iterator[None]:
    """The site's language is Ukrainian (``LANGUAGE_CODE = "uk"``)."""
    settings.LANGUAGE_CODE = "uk"
    cache.clear()
    yield
    cache.clear()


def visible_text(html: bytes) -> str:
    """The page's text with tags, scripts and runs of white space collapsed."""
    page = html.decode()
    page = re.sub(r"<script.*?</script>", " ", page, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page))


def send_from_admin(browser: Client, **fields: str) -> Any:
    url = reverse("admin:django_smsfly_message_add")
    # The compose form's one-time token, as the page draws it.
    token = browser.get(url).context["form"]["token"].value()
    data = {
        "token": token,
        "recipient": "380500000003",
        "channels": "sms",
        "send_mode": "now",
        "sms_source": "InfoCenter",
        "sms_text": "Привіт",
        "_send": "1",
        **fields,
    }
    return browser.post(reverse("admin:django_smsfly_message_add"), data, follow=True)


@pytest.mark.usefixtures("ukrainian")
def test_the_message_list_is_in_ukrainian(operator: Client) -> None:
    send_from_admin(operator)
    page = visible_text(operator.get(reverse("admin:django_smsfly_message_changelist")).content)
    for text in (
        "Надіслати повідомлення",  # the compose link
        "Огляд доставки",
        "Баланс SMS-fly",
        "Viber, потім SMS",  # a filter
        "Оновити статус зараз",  # an action
        "Одержувач Канали Статус Стан Вартість Створено Автор",  # the columns
        "1 повідомлення",  # the count under the list
    ):
        assert text in page
    assert "Send a message" not in page
    assert "Delivery overview" not in page


@pytest.mark.usefixtures("ukrainian")
def test_the_compose_page_and_its_counter_are_in_ukrainian(operator: Client) -> None:
    response = operator.get(reverse("admin:django_smsfly_message_add"))
    page = visible_text(response.content)
    for text in ("Одержувач:", "Відправник SMS:", "Текст SMS:", "Напис на кнопці:", "Коли:"):
        assert text in page
    # The live counter's words come from the page, rendered in the site's language.
    rules = re.search(
        rb'<script id="smsfly-segment-rules" type="application/json">(.*?)</script>',
        response.content,
    )
    assert rules is not None
    assert json.loads(rules.group(1))["labels"] == {
        "length": "Символів",
        "parts": "Частин SMS",
        "encoding": "Кодування",
        "remaining": "Залишилося в цій частині",
    }
    assert 'value="Надіслати"' in response.content.decode()
    assert 'value="Оцінити вартість"' in response.content.decode()


@pytest.mark.usefixtures("ukrainian")
def test_the_compose_form_reports_errors_in_ukrainian(operator: Client) -> None:
    response = send_from_admin(
        operator,
        recipient="12",
        channels="viber",
        viber_source="Promo",
        viber_text="Знижки",
        viber_image="https://example.com/a.png",
    )
    page = visible_text(response.content)
    assert "Будь ласка, виправте наведені нижче помилки." in page
    assert "«12» — не мобільний номер." in page
    # A rule of django_smsfly.validation, as the form shows it: capitalised as Django's.
    assert "До тексту із зображенням потрібна ще й кнопка" in page
    assert not Message.objects.exists()


@pytest.mark.usefixtures("ukrainian")
def test_sending_from_the_admin_reports_and_records_in_ukrainian(operator: Client) -> None:
    page = visible_text(send_from_admin(operator).content)
    assert "SMS-fly прийняв повідомлення для 380500000003." in page
    assert "Оновити статус зараз" in page
    # The history reads in Ukrainian too.
    change = StatusChange.objects.get(channel="sms")
    assert str(change) == "sms: у черзі → прийнято"
    assert "у черзі → прийнято" in page


@pytest.mark.usefixtures("ukrainian")
def test_the_delivery_overview_is_in_ukrainian(operator: Client) -> None:
    send_from_admin(operator)
    page = visible_text(operator.get(reverse("admin:django_smsfly_message_overview")).content)
    for text in (
        "Огляд доставки",
        "Частка доставлених",
        "Повідомлення за днями",
        # The chart's title, legend and a bar's tooltip.
        "Повідомлення за днями й результатами",
        "доставлено не вдалося в очікуванні",
        "доставлено — 0, не вдалося — 0, в очікуванні — 1",
    ):
        assert text in page


@pytest.mark.usefixtures("ukrainian")
def test_the_warning_before_sending_again_is_in_ukrainian(operator: Client) -> None:
    message = Message.objects.create(
        recipient="380500000003",
        channels="sms",
        content={"sms": {"source": "InfoCenter", "text": "Привіт"}},
        state=Message.State.UNKNOWN,
        status=DeliveryStatus.QUEUED.value,
        error_code="WORKER_LOST",
    )
    url = reverse("admin:django_smsfly_message_resend", args=[message.pk])
    response = operator.get(url)
    page = visible_text(response.content)
    assert "Повідомлення може бути доставлено двічі." in page
    assert "Для 1 позначеного нижче повідомлення запит дійшов або міг дійти до SMS-fly" in page
    assert 'value="Так, усе одно надіслати повторно"' in response.content.decode()


def test_a_browser_asking_for_ukrainian_gets_it(operator: Client, settings: Any) -> None:
    """On a site with several languages, LocaleMiddleware picks Ukrainian per request."""
    settings.MIDDLEWARE = [
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.middleware.locale.LocaleMiddleware",
        *settings.MIDDLEWARE[1:],
    ]
    settings.LANGUAGES = [("en", "English"), ("uk", "Українська")]
    url = reverse("admin:django_smsfly_message_add")
    english = visible_text(operator.get(url, headers={"accept-language": "en"}).content)
    ukrainian = visible_text(operator.get(url, headers={"accept-language": "uk"}).content)
    assert "Send a message" in english
    assert "Надіслати повідомлення" in ukrainian
    assert "Send a message" not in ukrainian


# -- commands and errors -------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.usefixtures("ukrainian")
def test_commands_speak_ukrainian() -> None:
    out, err = io.StringIO(), io.StringIO()
    call_command("smsfly_send", "--to", "380500000003", "--text", "Привіт", stdout=out, stderr=err)
    message = Message.objects.get()
    assert f"Повідомлення {message.pk}: прийнято SMS-fly." in out.getvalue()

    out = io.StringIO()
    call_command("smsfly_sync", stdout=out, stderr=err)
    assert out.getvalue().startswith("перевірено 0, змінено 0, остаточних 0, помилок 0")

    with pytest.raises(CommandError) as caught:
        call_command("smsfly_send", "--to", "12", "--text", "Привіт", stdout=out, stderr=err)
    assert str(caught.value).startswith("Некоректні вхідні дані: recipient: ")


@pytest.mark.django_db
@pytest.mark.usefixtures("ukrainian")
def test_validation_errors_are_in_the_site_language() -> None:
    with pytest.raises(SmsFlyValidationError) as caught:
        send_sms("380500000003", "")
    assert caught.value.reason == "текст SMS не може бути порожнім"
    assert str(caught.value) == "sms.text: текст SMS не може бути порожнім"
    with translation.override("en"), pytest.raises(SmsFlyValidationError) as caught:
        send_sms("380500000003", "")
    assert caught.value.reason == "the SMS text must not be empty"


@pytest.mark.usefixtures("ukrainian")
def test_the_clients_errors_are_in_the_site_language(
    client: SmsFlyClient, mocked: responses.RequestsMock
) -> None:
    mocked.post(API_URL, status=403, body="")
    with pytest.raises(SmsFlyAuthError) as caught:
        client.get_balance()
    assert str(caught.value) == "GETBALANCE: доступ заборонено (HTTP 403)"


@pytest.mark.parametrize(
    ("count", "text"),
    [
        (1, "1 повідомлення надіслано повторно."),
        (3, "3 повідомлення надіслано повторно."),
        (5, "5 повідомлень надіслано повторно."),
        (11, "11 повідомлень надіслано повторно."),
        (21, "21 повідомлення надіслано повторно."),
        (24, "24 повідомлення надіслано повторно."),
    ],
)
def test_counts_take_the_ukrainian_plural_forms(count: int, text: str) -> None:
    with translation.override("uk"):
        found = ngettext(
            "%(count)d message was sent again.", "%(count)d messages were sent again.", count
        ) % {"count": count}
    assert found == text
