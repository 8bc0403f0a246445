"""Template filters of the app's admin pages: ``{% load smsfly_admin %}``."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import template
from django.utils.safestring import SafeString, mark_safe

from django_smsfly.admin.display import language_switch, money

register = template.Library()


@register.filter(name="smsfly_money")
def smsfly_money(value: Decimal | int | float | str | None) -> str:
    """An amount as the admin writes money (see :func:`django_smsfly.admin.display.money`)."""
    return money(value)


@register.filter(name="smsfly_percent")
def smsfly_percent(share: Decimal | float | None) -> SafeString | str:
    """A share (``0.765``) in per cent as the admin's overviews write it (``77&nbsp;%``),
    or ``—`` when there is none (no final outcome yet to count it from)."""
    if share is None:
        return "—"
    # Rounded as ``{% widthratio share 1 100 %}`` rounds it (a float, halves to even).
    return mark_safe(f"{round(float(share) * 100)}&nbsp;%")  # noqa: S308 - a number only


@register.inclusion_tag("admin/django_smsfly/language_switch.html", takes_context=True)
def smsfly_language_switch(context: template.Context) -> dict[str, Any]:
    """The admin's language switch (see :func:`django_smsfly.admin.display.language_switch`)."""
    request = context.get("request")
    return {
        "switch": language_switch(request),
        "csrf_token": context.get("csrf_token"),
    }
