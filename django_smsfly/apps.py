"""Django application configuration."""

from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SmsFlyConfig(AppConfig):
    """Registers django-smsfly with Django and its system checks."""

    name = "django_smsfly"
    label = "django_smsfly"
    verbose_name = _("SMS-fly")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Importing the module registers the checks with Django's check framework.
        from django_smsfly import checks  # noqa: F401, PLC0415
