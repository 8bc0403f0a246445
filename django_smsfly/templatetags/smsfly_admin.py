"""Template filters of the app's admin pages: ``{% load smsfly_admin %}``."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import template

from django_smsfly.admin.display import language_switch, money

register = template.Library()


@register.filter(name="smsfly_money")
def smsfly_money(value: Decimal | int | float | str | None) -> str:
    """An amount as the admin writes money (see :func:`django_smsfly.admin.display.money`)."""
    return money(value)


@register.inclusion_tag("admin/django_smsfly/language_switch.html", takes_context=True)
def smsfly_language_switch(context: template.Context) -> dict[str, Any]:
    """The admin's language switch (see :func:`django_smsfly.admin.display.language_switch`)."""
    request = context.get("request")
    return {
        "switch": language_switch(request),
        "csrf_token": context.get("csrf_token"),
    }
