"""Shared fixtures."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
import responses

from django_smsfly.backends.http import HTTPBackend
from django_smsfly.client import SmsFlyClient
from tests.recorders import recording
from tests.task_backends import DUMMY

if TYPE_CHECKING:
    from django_smsfly.backends.sandbox import Simulator

API_URL = "https://sms-fly.ua/api/v2/api.php"
API_KEY = "0123456789abcdef0123456789abcdef0123"  # 36 characters, like a real key
#: The key of :func:`http_site`: no digits, so no code a test looks for can hide in it.
HTTP_SITE_KEY = "http-site-test-key"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "frozen_sandbox: the sandbox fixture's clock stands still from the start"
    )


@pytest.fixture
def sandbox(request: pytest.FixtureRequest) -> Simulator:
    """The process-wide sandbox the app sends to (fresh for each test); its clock stands
    still in a test marked ``frozen_sandbox``."""
    from django_smsfly.backends.sandbox import get_simulator

    simulator = get_simulator()
    if request.node.get_closest_marker("frozen_sandbox") is not None:
        simulator.freeze()
    return simulator


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    """`responses` active for the test; unmatched requests fail instead of leaving."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


@pytest.fixture
def client(mocked: responses.RequestsMock) -> Iterator[SmsFlyClient]:
    """A client on the real HTTP backend, with retries that do not sleep."""
    waits: list[float] = []
    backend = HTTPBackend(api_url=API_URL, timeout=(2.0, 5.0), sleep=waits.append)
    smsfly = SmsFlyClient(API_KEY, backend=backend, sms_source="InfoCenter", viber_source="Promo")
    yield smsfly
    smsfly.close()


@pytest.fixture(autouse=True)
def _fresh_sandbox() -> Iterator[None]:
    """Each test starts with the process-wide sandbox, shared client and cache as new
    (the admin caches balances and sender names; each test asks the sandbox afresh)."""
    from django.core.cache import cache

    from django_smsfly.backends.sandbox import get_simulator
    from django_smsfly.services import reset_client

    get_simulator().reset()
    reset_client()
    cache.clear()
    yield
    reset_client()
    cache.clear()


@pytest.fixture
def dummy_tasks(settings: Any) -> Iterator[Any]:
    """Tasks are recorded, not run (the test plays the worker); the task backend, empty."""
    from django_smsfly import taskcompat

    settings.TASKS = {"default": {"BACKEND": DUMMY}}
    backend = taskcompat.get_backend("default")
    backend.clear()
    yield backend
    backend.clear()


@pytest.fixture
def operator_user(db: None) -> Any:
    """A superuser who works in the admin."""
    from django.contrib.auth.models import User

    return User.objects.create_superuser("operator", "op@example.com", "pw")


@pytest.fixture
def operator(operator_user: Any) -> Any:
    """Django's test client logged in as :func:`operator_user` (``client`` in this suite
    is the SMS-fly client)."""
    from django.test import Client

    browser = Client()
    browser.force_login(operator_user)
    return browser


@pytest.fixture
def failures() -> Iterator[list[dict[str, Any]]]:
    """What ``message_failed`` was sent with during the test, one dict a send."""
    from django_smsfly.signals import message_failed

    with recording(message_failed) as recorder:
        yield recorder.calls


@pytest.fixture
def http_site(settings: Any) -> Iterator[Simulator]:
    """The app on the HTTP backend (no retries), against the sandbox served on 127.0.0.1;
    the served sandbox's simulator."""
    from django_smsfly.backends.sandbox import Simulator
    from django_smsfly.backends.sandbox_server import SandboxServer

    simulator = Simulator(api_key=HTTP_SITE_KEY)
    with SandboxServer(simulator) as server:
        settings.SMSFLY = {
            **settings.SMSFLY,
            "BACKEND": "django_smsfly.backends.http.HTTPBackend",
            "API_URL": server.url,
            "API_KEY": HTTP_SITE_KEY,
            "MAX_RETRIES": 0,
        }
        yield simulator
