"""How the admin writes amounts, and offers its languages.

SMS-fly prices come with three decimals (``0.479``) and costs are stored with four;
the admin shows every amount with :data:`MONEY_PLACES` decimals in the active
language's format (``0.479`` in English, ``0,479`` in Ukrainian), so a price, a
message's cost, a day's spend and a balance read alike. Templates use the
``smsfly_money`` filter of ``{% load smsfly_admin %}``, which calls :func:`money`.

:func:`language_switch` is what the switch in the admin's header shows
(``{% smsfly_language_switch %}``): the site's languages, the active one marked, as a
form to Django's ``set_language`` view.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django.conf import settings
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils import formats, translation
from django.utils.translation import get_language_info

#: Decimals of every amount the admin shows (SMS-fly's prices have three).
MONEY_PLACES = 3
#: What an amount that is not known reads as.
MISSING = "—"

_QUANTUM = Decimal(1).scaleb(-MONEY_PLACES)


def money(value: Decimal | int | float | str | None) -> str:
    """``value`` with :data:`MONEY_PLACES` decimals, rounded half up, localized.

    ``None`` (and anything that is not a finite number) reads as :data:`MISSING`.
    """
    if value is None or value == "":
        return MISSING
    try:
        amount = Decimal(str(value))
        if not amount.is_finite():
            return MISSING
        rounded = amount.quantize(_QUANTUM, rounding=ROUND_HALF_UP)
    except (InvalidOperation, ArithmeticError):
        return MISSING
    return formats.number_format(rounded, MONEY_PLACES)


@dataclass(frozen=True)
class Language:
    """A language the switch offers."""

    code: str
    #: Its name in itself (``Українська``), as a speaker looks for it.
    name: str
    current: bool


@dataclass(frozen=True)
class LanguageSwitch:
    """What the admin's language switch shows, and where it posts."""

    #: Django's ``set_language`` view.
    action: str
    #: Where the browser comes back to.
    next: str
    languages: tuple[Language, ...]


def language_switch(request: HttpRequest | None) -> LanguageSwitch | None:
    """The language switch of an admin page, or ``None`` when there is none to show.

    It is shown when the site has more than one language in ``LANGUAGES`` and Django's
    ``set_language`` view is installed (``path("i18n/", include("django.conf.urls.i18n"))``).
    The site needs ``LocaleMiddleware`` too, to read the chosen language back from the
    cookie that view sets.
    """
    if request is None or len(settings.LANGUAGES) < 2:
        return None
    try:
        action = reverse("set_language")
    except NoReverseMatch:
        return None
    active = (translation.get_language() or settings.LANGUAGE_CODE).lower()
    languages = []
    for code, name in settings.LANGUAGES:
        try:
            local = str(get_language_info(code)["name_local"])
        except KeyError:  # a language Django knows nothing of: named as the settings name it
            local = str(name)
        is_active = code.lower() in (active, active.split("-")[0])
        languages.append(Language(code=code, name=local, current=is_active))
    return LanguageSwitch(action=action, next=request.get_full_path(), languages=tuple(languages))
