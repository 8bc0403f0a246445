"""Django application configuration."""

from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _

from django_smsfly.checks import register_checks


class SmsFlyConfig(AppConfig):
    """Registers django-smsfly with Django and its system checks."""

    name = "django_smsfly"
    label = "django_smsfly"
    verbose_name = _("SMS-fly")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        register_checks()
        # The campaigns start their due ones in every sync_due pass (see tasks.py); they
        # import the models, which are loaded only by now.
        from django_smsfly.campaigns.tasks import register  # noqa: PLC0415

        register()
