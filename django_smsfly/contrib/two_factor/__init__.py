"""django-two-factor-auth with its text messages sent through django-smsfly.

Settings::

    TWO_FACTOR_SMS_GATEWAY = "django_smsfly.contrib.two_factor.Gateway"
    # TWO_FACTOR_CALL_GATEWAY stays unset: SMS-fly makes no voice calls.

URLs: include :mod:`django_smsfly.contrib.two_factor.urls` in place of
``two_factor.urls`` (the same paths and names), so that a code that cannot be sent is
shown on two-factor's pages as a form error instead of an HTTP 500::

    from django_smsfly.contrib.two_factor import urls as two_factor_urls

    urlpatterns = [path("", include(two_factor_urls)), ...]

Only :class:`Gateway` is imported here: two-factor loads it by its dotted path, and it
needs nothing of two-factor itself. The views live in :mod:`.views`.
"""

from __future__ import annotations

from django_smsfly.contrib.two_factor.gateway import PURPOSE, Gateway

__all__ = ["PURPOSE", "Gateway"]
