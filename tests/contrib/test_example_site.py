"""The example site's "verify your phone" page and two-factor pages, used as a visitor
would: the site runs in a subprocess (as ``make demo`` runs it), read with ``requests``."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.contrib.example_site import ExampleSite, Visitor, running_example_site

pytest.importorskip("environ", reason="the example project needs django-environ (the demo extra)")

SHOWN = "+380 50 123 4567"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExampleSite]:
    with running_example_site(tmp_path_factory.mktemp("example")) as running:
        yield running


def text(page: object) -> str:
    """A page's text, tags and extra spaces taken out."""
    without_tags = re.sub(r"<[^>]+>", " ", page.text)  # type: ignore[attr-defined]
    return " ".join(html.unescape(without_tags).split())


def sandbox_code(page: object) -> str:
    """The code in the page's "sandbox only" box."""
    found = re.search(r'<blockquote id="sandbox-text">([^<]*)</blockquote>', page.text)  # type: ignore[attr-defined]
    assert found is not None, "no sandbox box on the page"
    code = re.search(r"\b\d{6}\b", html.unescape(found.group(1)))
    assert code is not None, found.group(1)
    return code.group()


def send_code(visitor: Visitor, number: str) -> object:
    return visitor.post("/verify/", {"action": "send", "number": number})


def test_the_home_page_shows_what_to_try(site: ExampleSite) -> None:
    page = Visitor(site).get("/")
    assert page.status_code == 200
    assert 'href="/verify/"' in page.text
    assert 'href="/account/login/"' in page.text
    assert 'href="/admin/"' in page.text


def test_verifying_a_phone_with_the_code_from_the_sandbox_box(site: ExampleSite) -> None:
    visitor = Visitor(site)

    page = send_code(visitor, "050 123 4567")

    assert f"We sent a code to {SHOWN}." in text(page)
    assert "Sandbox only" in text(page)
    done = visitor.post("/verify/", {"action": "check", "code": sandbox_code(page)})
    assert f"{SHOWN} is verified." in text(done)
    assert f"Verified: {SHOWN}" in text(done)
    assert "Sandbox only" not in text(done)  # no number waits for a code any more


def test_a_wrong_code_says_so_without_saying_why(site: ExampleSite) -> None:
    visitor = Visitor(site)
    page = send_code(visitor, "050 123 4500")
    code = sandbox_code(page)

    wrong = visitor.post("/verify/", {"action": "check", "code": f"{(int(code) + 1) % 10**6:06d}"})

    assert "This code is wrong, expired or used up. Check it, or send a new code." in text(wrong)
    right = visitor.post("/verify/", {"action": "check", "code": code})
    assert "+380 50 123 4500 is verified." in text(right)


def test_a_new_code_at_once_is_refused_with_the_wait(site: ExampleSite) -> None:
    visitor = Visitor(site)
    send_code(visitor, "050 123 4511")

    page = visitor.post("/verify/", {"action": "resend"})

    assert re.search(r"Too many codes were asked for\. Try again in \d+ seconds?\.", text(page))


def test_a_number_in_another_country_is_refused(site: ExampleSite) -> None:
    page = send_code(Visitor(site), "+48 512 345 678")

    assert (
        "This number cannot receive a code: one-time codes are not sent to numbers in PL."
        in text(page)
    )
    assert "Sandbox only" not in text(page)


def test_what_is_not_a_phone_number_is_refused(site: ExampleSite) -> None:
    page = send_code(Visitor(site), "050 123 4567 or 067 123 4567")
    assert "This number cannot receive a code:" in text(page)


def test_the_page_speaks_ukrainian(site: ExampleSite) -> None:
    visitor = Visitor(site, language="uk")

    assert "Підтвердіть свій телефон" in text(visitor.get("/verify/"))
    page = send_code(visitor, "050 123 4522")
    assert "Лише пісочниця" in text(page)
    wrong = visitor.post("/verify/", {"action": "check", "code": "000000"})
    assert "Код неправильний, застарів або вже використаний." in text(wrong)


def test_the_private_page_needs_a_login(site: ExampleSite) -> None:
    page = Visitor(site).get("/private/")
    assert page.url == f"{site.url}/account/login/?next=/private/"


def test_two_factor_login_with_the_code_from_the_sandbox_box(site: ExampleSite) -> None:
    site.add_user_with_phone("bob", "bob-password", "+380671234567")
    visitor = Visitor(site)

    page = visitor.post(
        "/account/login/?next=/private/",
        {
            "login_view-current_step": "auth",
            "auth-username": "bob",
            "auth-password": "bob-password",
        },
    )
    assert "Sandbox only" in text(page)
    done = visitor.post(
        "/account/login/?next=/private/",
        {"login_view-current_step": "token", "token-otp_token": sandbox_code(page)},
    )

    assert done.url == f"{site.url}/private/"
    assert "bob, you logged in with a password and a code." in text(done)


def test_without_debug_the_sandbox_box_stays_hidden(tmp_path: Path) -> None:
    from tests.contrib.example_site import clean_env, copy_project

    project = copy_project(tmp_path)
    probe = ExampleSite(url="", project=project, env=clean_env(DJANGO_DEBUG="0"))
    out = probe.shell(
        "from demo.templatetags.demo_sandbox import sandbox_in_use; print(sandbox_in_use())"
    )
    assert out.strip().splitlines()[-1] == "False"


def test_turning_two_factor_on_with_a_phone_as_the_home_page_says(site: ExampleSite) -> None:
    visitor = Visitor(site)
    visitor.post(
        "/account/login/",
        {"login_view-current_step": "auth", "auth-username": "admin", "auth-password": "admin"},
    )
    assert "Permission Denied" in text(visitor.get("/private/"))  # no second factor yet

    setup = "/account/two_factor/setup/"
    visitor.post(setup, {"setup_view-current_step": "welcome"})
    visitor.post(setup, {"setup_view-current_step": "method", "method-method": "sms"})
    page = visitor.post(setup, {"setup_view-current_step": "sms", "sms-number": "067 000 1122"})
    assert "Sandbox only" in text(page)
    done = visitor.post(
        setup, {"setup_view-current_step": "validation", "validation-token": sandbox_code(page)}
    )

    assert done.url == f"{site.url}/account/two_factor/setup/complete/"
    assert "admin, you logged in with a password and a code." in text(visitor.get("/private/"))
