"""What the browser tests share besides their fixtures (those are in ``conftest.py``).

``LOCALES``
    The admin's languages, each with the browser language that asks for it.
``MESSAGE_PAGE``
    The address of a message's own page, whatever its primary key.
``translated(language, text)``
    ``text`` as the admin shows it in ``language``.
``sync_pass()``
    One pass of the background status sync over every message.
``viber_then_sms(**fields)``
    An unsaved Viber-then-SMS message row, for a page that shows stored messages.
``OpenPage``
    The type of the ``operator_page`` and ``compose_page`` fixtures.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING, Any, Protocol

from django.utils import timezone, translation
from django.utils.translation import gettext

from django_smsfly import services
from django_smsfly.models import Message

if TYPE_CHECKING:  # pragma: no cover
    from playwright.sync_api import Page

#: The admin's languages, and the browser language (``Accept-Language``) that asks for each.
LOCALES = {"en": "en-US", "uk": "uk-UA"}
#: The address of a message's own page, whatever its primary key.
MESSAGE_PAGE = re.compile(r"/admin/django_smsfly/message/\d+/change/$")


class OpenPage(Protocol):
    """``open_page("uk")``: a fresh page, logged in, whose browser asks for ``language``."""

    def __call__(self, language: str = "en") -> Page: ...


def translated(language: str, text: str) -> str:
    """``text`` as the admin shows it in ``language`` (English until it is translated)."""
    with translation.override(language):
        return gettext(text)


def sync_pass() -> None:
    """What the sync loop does in the background: ask SMS-fly about every message now."""
    # Every message is made due at once, rather than after its scheduled next check.
    Message.objects.update(next_check_at=timezone.now() - dt.timedelta(seconds=1))
    services.sync_statuses()


def viber_then_sms(**fields: Any) -> Message:
    """An unsaved message to 380501234567, Viber then SMS, accepted; ``fields`` override."""
    content = {"viber": {"source": "Shop", "text": "Hi"}, "sms": {"source": "Shop", "text": "Hi"}}
    defaults = {
        "recipient": "380501234567",
        "channels": "viber,sms",
        "content": content,
        "state": "accepted",
    }
    return Message(**{**defaults, **fields})
