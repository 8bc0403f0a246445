"""The opt-out list in the admin: the list, add, import, remove, and the messages' action."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.contrib.admin.models import DELETION, LogEntry
from django.contrib.auth.models import Permission, User
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client, override_settings
from django.urls import reverse

from django_smsfly import send_sms
from django_smsfly.admin import optout_lists
from django_smsfly.admin.optout_lists import import_numbers
from django_smsfly.backends.sandbox import Simulator
from django_smsfly.models import Message, OptOut

pytestmark = pytest.mark.django_db

LIST = "admin:django_smsfly_optout_changelist"
ADD = "admin:django_smsfly_optout_add"
IMPORT = "admin:django_smsfly_optout_import"
MESSAGES = "admin:django_smsfly_message_changelist"


def flash(response: Any) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def upload(browser: Client, content: bytes, name: str = "numbers.csv", note: str = "") -> Any:
    file = SimpleUploadedFile(name, content, content_type="text/csv")
    return browser.post(reverse(IMPORT), {"file": file, "note": note})


def numbers() -> set[str]:
    return set(OptOut.objects.values_list("recipient", flat=True))


# -- the list ------------------------------------------------------------------------------


def test_the_list_shows_number_source_note_and_who(operator: Client, operator_user: User) -> None:
    OptOut.objects.create(
        recipient="380501234567", source=OptOut.Source.ERRPHONES, note="stop list"
    )
    OptOut.objects.create(recipient="380671234567", created_by=operator_user)
    page = operator.get(reverse(LIST)).content.decode()
    assert "380501234567" in page
    assert "SMS-fly stop list" in page
    assert "stop list" in page
    assert "added by hand" in page
    assert ">operator<" in page
    assert 'id="smsfly-optout-import-link"' in page


@override_settings(
    SMSFLY={
        "BACKEND": "django_smsfly.backends.sandbox.SandboxBackend",
        "MASK_RECIPIENTS": True,
    }
)
def test_numbers_are_masked_in_the_list_when_the_site_asks(operator: Client) -> None:
    OptOut.objects.create(recipient="380501234567")
    page = operator.get(reverse(LIST)).content.decode()
    assert "380501****67" in page
    assert "380501234567" not in page


@pytest.mark.parametrize("query", ["050 123 4567", "+380 (50) 123-45-67", "380501234567"])
def test_search_finds_a_number_however_it_is_written(operator: Client, query: str) -> None:
    OptOut.objects.create(recipient="380501234567")
    OptOut.objects.create(recipient="380671234567")
    response = operator.get(reverse(LIST), {"q": query})
    assert [o.recipient for o in response.context["cl"].result_list] == ["380501234567"]


def test_the_list_filters_by_source(operator: Client) -> None:
    OptOut.objects.create(recipient="380501234567", source=OptOut.Source.ERRPHONES)
    OptOut.objects.create(recipient="380671234567", source=OptOut.Source.IMPORT)
    response = operator.get(reverse(LIST), {"source__exact": "errphones"})
    assert [o.recipient for o in response.context["cl"].result_list] == ["380501234567"]


# -- add -----------------------------------------------------------------------------------


def test_a_number_is_added_in_international_form(operator: Client, operator_user: User) -> None:
    response = operator.post(
        reverse(ADD), {"recipient": "050 123 45 67", "note": "asked by phone"}
    )
    assert response.status_code == 302
    entry = OptOut.objects.get()
    assert entry.recipient == "380501234567"
    assert entry.source == OptOut.Source.MANUAL
    assert entry.note == "asked by phone"
    assert entry.created_by == operator_user


def test_a_bad_number_is_a_clear_form_error(operator: Client) -> None:
    response = operator.post(reverse(ADD), {"recipient": "call me"})
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["recipient"] == [
        "“call me” is not a mobile number. Write it as 050 123 4567, +380 50 123 4567 "
        "or 380501234567."
    ]
    assert not OptOut.objects.exists()


def test_a_number_already_on_the_list_says_so(operator: Client) -> None:
    OptOut.objects.create(recipient="380501234567")
    response = operator.post(reverse(ADD), {"recipient": "+380 50 123 4567"})
    assert response.status_code == 200
    error = response.context["adminform"].form.errors["recipient"][0]
    assert error.startswith("380501234567 is already on the opt-out list (since ")
    assert OptOut.objects.count() == 1


def test_only_the_note_of_an_entry_can_be_changed(operator: Client) -> None:
    entry = OptOut.objects.create(recipient="380501234567")
    url = reverse("admin:django_smsfly_optout_change", args=[entry.pk])
    operator.post(url, {"recipient": "380671234567", "note": "customer's request"})
    entry.refresh_from_db()
    assert entry.recipient == "380501234567"
    assert entry.note == "customer's request"


# -- remove --------------------------------------------------------------------------------


def test_a_number_is_removed_after_confirmation_and_the_history_says_so(
    operator: Client, sandbox: Simulator
) -> None:
    entry = OptOut.objects.create(recipient="380501234567")
    url = reverse("admin:django_smsfly_optout_delete", args=[entry.pk])
    confirm = operator.get(url)
    assert "Are you sure" in confirm.content.decode()
    assert OptOut.objects.exists()
    operator.post(url, {"post": "yes"})
    assert not OptOut.objects.exists()
    assert LogEntry.objects.get(action_flag=DELETION).object_repr == "380501234567"
    # Messages reach the number again.
    assert send_sms("0501234567", "Welcome back").state == Message.State.ACCEPTED


# -- import ---------------------------------------------------------------------------------


def test_a_plain_list_is_imported_with_a_report(operator: Client, operator_user: User) -> None:
    OptOut.objects.create(recipient="380671234567")
    content = "050 123 4567\n\n+380 67 123 45 67\nnot a number\n380501234567\n0931234567\n"
    response = upload(operator, content.encode(), name="numbers.txt", note="shop list")
    report = response.context["report"]
    assert (report.added, report.existing, report.invalid) == (2, 2, 1)
    assert [(p.line, p.value) for p in report.problems] == [(4, "not a number")]
    assert numbers() == {"380501234567", "380671234567", "380931234567"}
    added = OptOut.objects.get(recipient="380501234567")
    assert added.source == OptOut.Source.IMPORT
    assert added.note == "shop list"
    assert added.created_by == operator_user
    # The one already there keeps how it came on the list.
    assert OptOut.objects.get(recipient="380671234567").source == OptOut.Source.MANUAL
    page = response.content.decode()
    assert 'id="smsfly-import-problems"' in page
    assert "not a number" in page


def test_a_csv_file_is_read_by_its_recipient_column(operator: Client) -> None:
    content = (
        "\ufeffname;Recipient;city\n"
        "Ann;050 123 4567;Kyiv\n"
        'Bob;"+380 67 123 45 67";Lviv\n'
        "Carl;;Odesa\n"
        "Dan;12345;Dnipro\n"
    )
    response = upload(operator, content.encode())
    report = response.context["report"]
    assert numbers() == {"380501234567", "380671234567"}
    assert (report.added, report.existing, report.invalid) == (2, 0, 2)
    assert (report.problems[0].line, report.problems[0].reason) == (
        4,
        "no number in the “recipient” column",
    )
    assert report.problems[1].line == 5


def test_a_csv_without_a_recipient_column_is_refused(operator: Client) -> None:
    response = upload(operator, b"name,phone\nAnn,0501234567\n")
    assert "none named “recipient”" in response.context["report"].error
    assert not OptOut.objects.exists()


def test_a_file_that_is_not_utf8_keeps_what_came_before(operator: Client) -> None:
    content = b"0501234567\n0671234567\n" + "Привіт\n".encode("cp1251") + b"0931234567\n"
    response = upload(operator, content)
    report = response.context["report"]
    assert report.error == "Line 3 is not UTF-8 text."
    assert numbers() == {"380501234567", "380671234567"}
    assert "could not be read to its end" in response.content.decode()


def test_an_unbalanced_quote_does_not_merge_the_rows_after_it(operator: Client) -> None:
    content = 'recipient\n"0501234567\n0671234567\n0931234567\n'
    report = upload(operator, content.encode()).context["report"]
    # The open quote swallows the rest into one value: refused, nothing taken from it.
    assert report.added == 0
    assert report.invalid == 1
    assert not OptOut.objects.exists()


def test_an_import_is_written_in_batches_and_counts_repeats(
    operator_user: User, monkeypatch: pytest.MonkeyPatch, django_assert_max_num_queries: Any
) -> None:
    monkeypatch.setattr(optout_lists, "BATCH_SIZE", 50)
    lines = [f"0501{n:06d}" for n in range(200)] + ["0501000000"]
    with django_assert_max_num_queries(20):  # 5 batches of a lookup and an insert, at most
        report = import_numbers(io.BytesIO("\n".join(lines).encode()), created_by=operator_user)
    assert (report.added, report.existing, report.invalid) == (200, 1, 0)
    assert OptOut.objects.count() == 200


def test_an_import_reads_the_file_as_a_stream() -> None:
    class OneChunkAtATime(io.BytesIO):
        """A file that never hands out more than it is asked for, and records asks."""

        def __init__(self, data: bytes) -> None:
            super().__init__(data)
            self.asked: list[int] = []

        def read(self, size: int | None = -1) -> bytes:
            assert size is not None, "read in chunks, not whole"
            assert 0 < size <= 64 * 1024, "read in chunks, not whole"
            self.asked.append(size)
            return super().read(size)

    data = "\n".join(f"0501{n:06d}" for n in range(20_000)).encode()
    source = OneChunkAtATime(data)
    report = import_numbers(source)
    assert report.added == 20_000
    assert len(source.asked) > 1


def test_a_line_far_too_long_stops_the_import_with_a_reason(operator: Client) -> None:
    content = b"0501234567\n" + b"9" * 100_000 + b"\n0671234567\n"
    # (Not held whole: reading stops once the line outgrows the limit.)
    report = upload(operator, content).context["report"]
    assert report.error == "Line 2 is longer than 4096 characters."
    assert numbers() == {"380501234567"}


def test_import_needs_the_add_permission() -> None:
    user = User.objects.create_user("viewer", "v@example.com", "pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename="view_optout"))
    browser = Client()
    browser.force_login(user)
    assert browser.get(reverse(IMPORT)).status_code == 403
    assert upload(browser, b"0501234567\n").status_code == 403
    assert not OptOut.objects.exists()
    assert 'id="smsfly-optout-import-link"' not in browser.get(reverse(LIST)).content.decode()


# -- the messages' action ------------------------------------------------------------------


def test_the_message_list_action_opts_the_numbers_out(
    operator: Client, operator_user: User, sandbox: Simulator
) -> None:
    first = send_sms("0501234567", "Sale!")
    again = send_sms("0501234567", "Sale again!")
    other = send_sms("0671234567", "Sale!")
    OptOut.objects.create(recipient="380671234567")
    response = operator.post(
        reverse(MESSAGES),
        {"action": "opt_out_recipients", "_selected_action": [first.pk, again.pk, other.pk]},
    )
    assert response.status_code == 302
    assert flash(response) == [
        "1 number was added to the opt-out list: it gets no more messages.",
        "1 number was already on the opt-out list.",
    ]
    entry = OptOut.objects.get(recipient="380501234567")
    assert entry.created_by == operator_user
    assert entry.source == OptOut.Source.MANUAL
    # The next send to it makes no request.
    before = len(sandbox.requests_for("SENDMESSAGE"))
    assert send_sms("0501234567", "More!").error_code == "OPTED_OUT"
    assert len(sandbox.requests_for("SENDMESSAGE")) == before


def test_the_action_needs_the_permission_to_add_opt_outs(sandbox: Simulator) -> None:
    user = User.objects.create_user("clerk", "c@example.com", "pw", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(codename__in=["view_message", "change_message"])
    )
    browser = Client()
    browser.force_login(user)
    page = browser.get(reverse(MESSAGES)).content.decode()
    assert 'value="opt_out_recipients"' not in page
    user.user_permissions.add(Permission.objects.get(codename="add_optout"))
    page = browser.get(reverse(MESSAGES)).content.decode()
    assert 'value="opt_out_recipients"' in page
