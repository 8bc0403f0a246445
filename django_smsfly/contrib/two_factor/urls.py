"""django-two-factor-auth's URLs with :mod:`.views` in place of its login and phone setup.

Include it instead of ``two_factor.urls``: the same paths, names and namespace
(``two_factor``), so every ``reverse("two_factor:login")`` and template keeps working::

    from django_smsfly.contrib.two_factor import urls as two_factor_urls

    urlpatterns = [
        path("", include(two_factor_urls)),
        ...
    ]
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from django.urls import URLPattern, URLResolver
from two_factor import urls as two_factor_urls

from django_smsfly.contrib.two_factor.views import LoginView, PhoneSetupView, SetupView

__all__ = ["app_name", "urlpatterns"]

#: Two-factor's URL names whose views are replaced, and the views that replace them.
REPLACED: Mapping[str, Callable[..., Any]] = {
    "login": LoginView.as_view(),
    "setup": SetupView.as_view(),
    "phone_create": PhoneSetupView.as_view(),
}


def replace_views(
    patterns: Iterable[URLPattern | URLResolver],
) -> list[URLPattern | URLResolver]:
    """``patterns`` with the views named in :data:`REPLACED` swapped, paths unchanged.

    Two-factor keeps its phone plugin's URLs in an include without a namespace of its
    own (they are ``two_factor:phone_create``...): those are swapped too.
    """
    return [_replace(entry) for entry in patterns]


def _replace(entry: URLPattern | URLResolver) -> URLPattern | URLResolver:
    if isinstance(entry, URLPattern) and entry.name is not None and entry.name in REPLACED:
        return URLPattern(entry.pattern, REPLACED[entry.name], entry.default_args, entry.name)
    if isinstance(entry, URLResolver) and entry.namespace is None:
        return URLResolver(
            entry.pattern,
            replace_views(entry.url_patterns),
            entry.default_kwargs,
            entry.app_name,
            entry.namespace,
        )
    return entry


_patterns, app_name = two_factor_urls.urlpatterns
urlpatterns = replace_views(_patterns)
