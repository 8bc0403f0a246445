"""The django-otp device app: ``INSTALLED_APPS += ["django_smsfly.contrib.otp"]``."""

from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SmsFlyOTPConfig(AppConfig):
    """The app of :class:`~.models.SmsFlyDevice`, labelled ``smsfly_otp``."""

    name = "django_smsfly.contrib.otp"
    label = "smsfly_otp"
    verbose_name = _("SMS-fly one-time passwords")
    default_auto_field = "django.db.models.BigAutoField"
