"""Fixtures for browser tests: the admin served on 127.0.0.1, driven in headless Chromium.

Every test in this package is marked ``browser`` (``make test`` runs them on one leg only:
Django 6.1 on SQLite). They need the ``playwright`` package and Debian's Chromium at
``/usr/bin/chromium``; without either they are skipped with the reason, unless
``SMSFLY_REQUIRE_BROWSER=1`` is set (CI sets it), in which case they fail.

Fixtures
--------

``live_server``
    pytest-django's live server, started once for this package on ``127.0.0.1`` (the only
    host the browser may reach). It serves the admin's static files (CSS, JavaScript, and
    the app's own), and its middleware is the test settings' plus ``LocaleMiddleware`` as
    in the example project, so a browser's language chooses the admin's. Using it makes a
    test transactional: the server thread sees what the test writes. ``live_server.url``
    is ``http://127.0.0.1:<port>``.
``browser``
    The Chromium :class:`~playwright.sync_api.Browser`, launched once for this package.
``new_page(locale="en-US")``
    A fresh page in a fresh context (no cookies) with a 1280×800 viewport and the given
    browser language (its ``Accept-Language``). Requests to any host other than
    127.0.0.1 are aborted and recorded in ``blocked_requests``; a test that leaves one
    there fails.
``page``
    ``new_page()``: an English browser, not logged in.
``log_in(page, username="admin", password="password")``
    Logs in through the admin's login form and waits for the admin's index; a refused
    login raises ``AssertionError`` with the form's error.
``language``
    ``"en"`` or ``"uk"``: a test that asks for it runs once in each of the admin's
    languages (``helpers.LOCALES``).
``operator_page(language="en")``
    A fresh page whose browser asks for ``language``, logged in as pytest-django's
    ``admin_user`` (a superuser, ``admin`` / ``password``), the admin answering in that
    language. Call it twice for two operators side by side.
``logged_in_page``
    ``operator_page()``: an English operator's page.
``compose_page(language="en")``
    ``operator_page(language)`` on the compose page (the message add form).
``url``
    ``url("admin:django_smsfly_message_change", pk)`` is the absolute URL of a named page.
``sandbox``
    The process-wide SMS-fly simulator (the live server's too), with its clock frozen:
    ``sandbox.advance(10)`` makes ten seconds pass for SMS-fly.
``screenshot(page, name)``
    Saves the page as ``docs/_static/screenshots/<name>.png`` when
    ``SMSFLY_SCREENSHOTS=1`` is set; otherwise does nothing.

A test of a new admin page, for example::

    @pytest.mark.django_db(transaction=True)
    def test_the_balance_panel(logged_in_page, url, screenshot):
        logged_in_page.goto(url("admin:django_smsfly_message_changelist"))
        expect(logged_in_page.locator(".smsfly-balance")).to_contain_text("1000.000")
        screenshot(logged_in_page, "balance-panel")

(``transaction=True`` is implied by ``live_server``; writing it keeps the reason visible.)
Playwright's synchronous API runs an event loop in the test's thread, which Django takes
for an async context; ``DJANGO_ALLOW_ASYNC_UNSAFE`` is set while the browser runs so
that tests may use the ORM between browser steps (the server itself runs in its own
thread, untouched by this).
"""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from django.conf import settings as django_settings
from django.core.cache import cache
from django.test import override_settings
from django.urls import reverse
from pytest_django.live_server_helper import LiveServer

from django_smsfly.backends.sandbox import Simulator, get_simulator
from tests.browser.helpers import LOCALES, OpenPage

if TYPE_CHECKING:  # pragma: no cover
    from playwright.sync_api import Browser, Page, ViewportSize

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    # Belt and braces with the request routing below: no host name resolves, so nothing
    # the browser does on its own (outside any page) can leave the machine either.
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
]
ALLOWED_HOST = "127.0.0.1"
VIEWPORT: ViewportSize = {"width": 1280, "height": 800}
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "_static" / "screenshots"
#: Milliseconds Playwright waits for a page or an element before failing.
TIMEOUT_MS = 15_000


@pytest.hookimpl(tryfirst=True)  # before -m selects by markers
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test of this package ``browser``."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.browser)


class _NoPlaywright(pytest.File):
    """A test module that cannot be imported without Playwright: one item says so."""

    def collect(self) -> Iterator[pytest.Item]:
        yield _NoPlaywrightItem.from_parent(self, name="browser tests")


class _NoPlaywrightItem(pytest.Item):
    def runtest(self) -> None:
        _skip_or_fail(_unavailable() or "")

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"{self.path.name}: {self.name}"


def pytest_pycollect_makemodule(
    module_path: Path, parent: pytest.Collector
) -> pytest.Collector | None:
    """Without Playwright the test modules cannot even be imported: skip them (or fail)."""
    if _playwright_missing():
        return _NoPlaywright.from_parent(parent, path=module_path)
    return None


def _playwright_missing() -> bool:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return True
    return False


def _skip_or_fail(reason: str) -> None:
    if os.environ.get("SMSFLY_REQUIRE_BROWSER") == "1":
        pytest.fail(f"SMSFLY_REQUIRE_BROWSER=1, but {reason}", pytrace=False)
    pytest.skip(reason)


def _unavailable() -> str | None:
    """Why the browser cannot run here, or ``None``."""
    if _playwright_missing():
        return "playwright is not installed (pip install 'django-smsfly[browser]')"
    if not os.access(CHROMIUM, os.X_OK):
        return f"{CHROMIUM} is missing (apt-get install chromium)"
    return None


@pytest.fixture(scope="package")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    """Headless Chromium, started once for the package; skipped or failed if unavailable."""
    reason = _unavailable()
    if reason is not None:
        _skip_or_fail(reason)
    from playwright.sync_api import sync_playwright

    home = tmp_path_factory.mktemp("chromium-home")
    # A home of its own: nothing is read from or left in the user's Chromium profile.
    # (Playwright gives each launch a fresh temporary --user-data-dir as well.)
    env: dict[str, str | float | bool] = {
        **os.environ,
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_CACHE_HOME": str(home / "cache"),
    }
    with pytest.MonkeyPatch.context() as patch:
        # Playwright's event loop makes Django see an async context in this thread.
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS, env=env
            )
            yield chromium
            chromium.close()


@pytest.fixture(scope="package")
def live_server() -> Iterator[LiveServer]:
    """The site on 127.0.0.1, with static files and LocaleMiddleware (see the module doc)."""
    from django.contrib.staticfiles.handlers import StaticFilesHandler

    middleware = list(django_settings.MIDDLEWARE)
    session = middleware.index("django.contrib.sessions.middleware.SessionMiddleware")
    middleware.insert(session + 1, "django.middleware.locale.LocaleMiddleware")
    server = LiveServer(ALLOWED_HOST, start=False)
    # The static files of every app (the admin's and ours), found as runserver finds them.
    server.thread.static_handler = StaticFilesHandler
    # The handler reads these when the server thread builds it, inside start().
    with override_settings(MIDDLEWARE=middleware, STATIC_URL="/static/"):
        server.start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _browser_settings(settings: Any) -> None:
    """Static files under /static/, where the live server serves them; quick passwords."""
    settings.STATIC_URL = "/static/"
    # Every login hashes a password; the default hasher takes most of a second for it.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    # The balance and the sender names are cached (for a minute, five minutes); every
    # test starts from an empty cache so that it sees the sandbox as it set it up.
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def url(live_server: LiveServer) -> Callable[..., str]:
    """``url("admin:...", *args)``: the absolute URL of a named page on the live server."""

    def absolute(name: str, *args: Any) -> str:
        return f"{live_server.url}{reverse(name, args=args)}"

    return absolute


@pytest.fixture
def blocked_requests() -> Iterator[list[str]]:
    """URLs the browser tried to reach beyond 127.0.0.1 (aborted). Must end up empty."""
    blocked: list[str] = []
    yield blocked
    assert not blocked, f"the browser tried to reach other hosts: {blocked}"


@pytest.fixture
def new_page(browser: Browser, blocked_requests: list[str]) -> Iterator[Callable[..., Page]]:
    """A factory of fresh pages, each in its own context: ``new_page(locale="uk-UA")``."""
    from playwright.sync_api import Route

    contexts = []

    def guard(route: Route) -> None:
        if urllib.parse.urlsplit(route.request.url).hostname == ALLOWED_HOST:
            route.continue_()
        else:
            blocked_requests.append(route.request.url)
            route.abort("blockedbyclient")

    def make(*, locale: str = "en-US") -> Page:
        context = browser.new_context(locale=locale, viewport=VIEWPORT)
        context.set_default_timeout(TIMEOUT_MS)
        context.route("**/*", guard)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_page: Callable[..., Page]) -> Page:
    """A fresh English page, not logged in."""
    return new_page()


@pytest.fixture
def log_in(url: Callable[..., str]) -> Callable[..., None]:
    """``log_in(page, username, password)``: through the admin's login form."""

    def submit(page: Page, username: str = "admin", password: str = "password") -> None:  # noqa: S107 - pytest-django's admin_user
        page.goto(url("admin:login"))
        page.fill("#id_username", username)
        page.fill("#id_password", password)
        page.click("input[type=submit]")
        # The admin's index, or the login form again with its error.
        page.wait_for_selector("#site-name, .errornote")
        if page.locator(".errornote").count():
            raise AssertionError(f"login failed: {page.inner_text('.errornote')}")

    return submit


@pytest.fixture(params=sorted(LOCALES))
def language(request: pytest.FixtureRequest) -> str:
    """The admin's language for the test: a test that asks for it runs in each."""
    return str(request.param)


@pytest.fixture
def operator_page(
    new_page: Callable[..., Page], admin_user: Any, log_in: Callable[..., None]
) -> OpenPage:
    """``operator_page("uk")``: a fresh page of a logged-in operator in that language."""
    from playwright.sync_api import expect

    def open_page(language: str = "en") -> Page:
        page = new_page(locale=LOCALES[language])
        log_in(page, admin_user.username, "password")
        # The browser's language chose the admin's: the tests of either rely on it.
        expect(page.locator("html")).to_have_attribute("lang", language)
        return page

    return open_page


@pytest.fixture
def logged_in_page(operator_page: OpenPage) -> Page:
    """An English page logged in as pytest-django's ``admin_user`` (``admin`` / ``password``)."""
    return operator_page()


@pytest.fixture
def compose_page(operator_page: OpenPage, url: Callable[..., str]) -> OpenPage:
    """``compose_page("uk")``: ``operator_page("uk")`` on the compose page."""

    def open_page(language: str = "en") -> Page:
        page = operator_page(language)
        page.goto(url("admin:django_smsfly_message_add"))
        return page

    return open_page


@pytest.fixture
def sandbox() -> Simulator:
    """The simulator behind the live server, its clock frozen (``sandbox.advance(s)``)."""
    simulator = get_simulator()
    simulator.freeze()
    return simulator


@pytest.fixture
def screenshot() -> Callable[..., Path | None]:
    """``screenshot(page, name)``: docs/_static/screenshots/<name>.png if SMSFLY_SCREENSHOTS=1."""

    def save(page: Page, name: str, *, full_page: bool = False) -> Path | None:
        if os.environ.get("SMSFLY_SCREENSHOTS") != "1":
            return None
        page.wait_for_load_state("load")  # after a submit, not a half-drawn page
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=full_page, animations="disabled")
        return path

    return save
