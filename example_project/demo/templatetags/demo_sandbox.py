"""``{% sandbox_box %}``: in the demo, the text a code was sent in, since no phone gets it.

Shown only while the site runs in DEBUG mode on the sandbox backend, and only the last
text sent to the number the page is about (the ``sandbox_number`` in the context, or
the ``number`` of two-factor's ``device``). With a real API key nothing is shown: the
code is in the SMS, and nowhere else.
"""

from __future__ import annotations

from typing import Any

from django import template
from django.conf import settings

from django_smsfly.backends.sandbox import get_simulator
from django_smsfly.conf import smsfly_settings
from django_smsfly.exceptions import SmsFlyValidationError
from django_smsfly.validation import normalize_recipient

register = template.Library()


def sandbox_in_use() -> bool:
    """DEBUG mode, and messages go to the sandbox: nothing reaches a phone."""
    return bool(settings.DEBUG) and smsfly_settings.uses_sandbox


def last_text_to(number: object) -> str | None:
    """The text of the last message the sandbox accepted for ``number``, if any."""
    try:
        digits = normalize_recipient(number, smsfly_settings.DEFAULT_REGION)
    except SmsFlyValidationError:
        return None
    for message in reversed(get_simulator().messages):
        if message.recipient == digits:
            block = message.sms or message.viber or {}
            return str(block.get("text", ""))
    return None


@register.inclusion_tag("demo/sandbox_box.html", takes_context=True)
def sandbox_box(context: template.Context) -> dict[str, Any]:
    """The box, or nothing (see the module's docstring)."""
    if not sandbox_in_use():
        return {"text": None}
    number = context.get("sandbox_number") or getattr(context.get("device"), "number", None)
    return {"text": last_text_to(number) if number else None}
