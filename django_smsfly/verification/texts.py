"""The text that carries a code: the site's own (``TEXT``) or the built-in one, in the
language asked for, with the site's name."""

from __future__ import annotations

import math
from contextlib import AbstractContextManager, nullcontext

from django.apps import apps
from django.contrib.sites.shortcuts import get_current_site
from django.core.exceptions import ImproperlyConfigured, ObjectDoesNotExist
from django.http import HttpRequest
from django.utils import translation
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from django_smsfly.verification.config import VerificationConfig

#: The built-in text (``TEXT = None``), translated into the active language. One short
#: SMS: a Ukrainian text with the site's name stays within one 70-character part.
DEFAULT_TEXT = _("Your code for %(site)s: %(code)s. Do not share it with anyone.")


def site_name(config: VerificationConfig, request: HttpRequest | None = None) -> str:
    """``SITE_NAME``; else the current site's name (``django.contrib.sites``); else
    "our site" in the active language."""
    if config.site_name:
        return config.site_name
    if apps.is_installed("django.contrib.sites"):
        try:
            return str(get_current_site(request).name)
        except (ImproperlyConfigured, ObjectDoesNotExist):
            pass  # no SITE_ID and no request, or no such site: no name to give
    # Translators: the site's name where it has none, as in "Your code for our site".
    return gettext("our site")


def render(
    config: VerificationConfig,
    code: str,
    *,
    request: HttpRequest | None = None,
    language: str | None = None,
) -> str:
    """The text with ``code`` in it, in ``language`` (default: the active language)."""
    with _language(language):
        template = str(config.text if config.text is not None else DEFAULT_TEXT)
        values = {
            "code": code,
            "site": site_name(config, request),
            "minutes": math.ceil(config.ttl.total_seconds() / 60),
        }
        return template % values


def _language(language: str | None) -> AbstractContextManager[None]:
    return translation.override(language) if language else nullcontext()
