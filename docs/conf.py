"""Sphinx configuration for django-smsfly's documentation.

Build with ``make docs`` (or ``sphinx-build -W -b html docs docs/_build/html``). The
build needs no network: intersphinx is deliberately not used.
"""

from __future__ import annotations

import sys
from pathlib import Path

# The package is imported from this checkout, not from an installed copy.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import django
from django.conf import settings

# autodoc imports modules that need Django's settings and app registry; a minimal site
# is enough (no database is touched while the documentation is built).
if not settings.configured:
    settings.configure(
        INSTALLED_APPS=[
            "django.contrib.admin",
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.sessions",
            "django.contrib.messages",
            "django_smsfly",
        ],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        USE_TZ=True,
        TIME_ZONE="Europe/Kyiv",
        SMSFLY={"BACKEND": "django_smsfly.backends.sandbox.SandboxBackend"},
    )
django.setup()

import django_smsfly  # noqa: E402

project = "django-smsfly"
author = "django-smsfly contributors"
project_copyright = "django-smsfly contributors"
release = django_smsfly.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.viewcode",
]

exclude_patterns = ["_build"]
nitpicky = False
default_role = "code"

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_default_options = {
    "members": True,
    "show-inheritance": True,
}

html_theme = "furo"
html_title = f"django-smsfly {release}"
html_static_path: list[str] = []
