"""The ``demo`` app of the example site."""

from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DemoConfig(AppConfig):
    """The example site's pages (see the package's docstring)."""

    name = "demo"
    verbose_name = _("Demo pages")
