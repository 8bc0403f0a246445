""":class:`SmsFlyDevice`: a django-otp device whose codes come by SMS."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.http import HttpRequest
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django_otp.models import Device, ThrottlingMixin, TimestampMixin

from django_smsfly.backends.base import mask_recipient
from django_smsfly.conf import smsfly_settings
from django_smsfly.contrib.codes import check_sent, explain
from django_smsfly.exceptions import SmsFlyValidationError
from django_smsfly.validation import normalize_recipient
from django_smsfly.verification import Throttled, check_code, send_code

__all__ = ["SmsFlyDevice"]


class SmsFlyDevice(TimestampMixin, ThrottlingMixin, Device):  # type: ignore[misc]
    """A phone that receives one-time codes by SMS (django-otp's device protocol).

    :meth:`generate_challenge` sends a code with
    :func:`~django_smsfly.verification.send_code` and :meth:`verify_token` checks it
    with :func:`~django_smsfly.verification.check_code`, under a purpose of the
    device's own (:attr:`purpose`): a code sent for one device never passes for
    another. The code is never stored here, nor anywhere (only its keyed hash, in the
    :class:`~django_smsfly.models.Verification` row), and every setting of
    ``SMSFLY["VERIFICATION"]`` applies: its length, lifetime, tries, the resend
    cooldown, the hourly and daily caps and the allowed countries.

    On top of a code's own tries (``MAX_ATTEMPTS``), django-otp's throttling makes each
    wrong token double the wait before the next is even checked (1, 2, 4... seconds
    times ``OTP_SMSFLY_THROTTLE_FACTOR``, default 1; 0 turns it off), whichever code it
    was for; a right one resets it.
    """

    #: The phone number, as international digits without ``+`` (``380501234567``).
    number = models.CharField(
        _("phone number"),
        max_length=20,
        help_text=_("A mobile number; without a country code it is read as a local one."),
    )

    class Meta:
        verbose_name = _("SMS device")
        verbose_name_plural = _("SMS devices")

    def __str__(self) -> str:
        return f"{self.name} ({self.masked_number})"

    @property
    def purpose(self) -> str:
        """The verification purpose of this device's codes (``otp:<id>``)."""
        if self.pk is None:
            raise ValueError("save the device before sending or checking its codes")
        return f"otp:{self.pk}"

    @property
    def masked_number(self) -> str:
        """The number with its middle digits hidden, for messages and lists."""
        return "+" + mask_recipient(self.number.lstrip("+"))

    def clean(self) -> None:
        """Store the number as international digits; refuse what is not a mobile number."""
        super().clean()
        try:
            self.number = normalize_recipient(self.number, smsfly_settings.DEFAULT_REGION)
        except SmsFlyValidationError as error:
            raise ValidationError({"number": error.reason}) from error

    def generate_challenge(self, request: HttpRequest | None = None) -> str:
        """Send a new code by SMS; return what to tell the user ("sent by SMS to …").

        ``request`` (optional; django-otp's forms call this without one) lets the
        per-address limit count the client. Raises
        :class:`~django_smsfly.contrib.codes.CodeNotSent` with the reason in words when
        no code was sent: a number refused, a limit reached, the message refused.
        """
        try:
            verification = send_code(self.number, purpose=self.purpose, request=request)
        except (SmsFlyValidationError, Throttled) as error:
            raise explain(error) from error
        check_sent(verification.message)
        return gettext("sent by SMS to %(number)s") % {"number": self.masked_number}

    def verify_token(self, token: Any) -> bool:
        """Whether ``token`` is the last code sent to this device, unused and in time."""
        allowed, _details = self.verify_is_allowed()
        if not allowed:
            return False
        if check_code(self.number, str(token), purpose=self.purpose):
            self.throttle_reset(commit=False)
            self.set_last_used_timestamp(commit=False)
            self.save()
            return True
        self.throttle_increment()
        return False

    def get_throttle_factor(self) -> int:
        """``OTP_SMSFLY_THROTTLE_FACTOR`` (default 1): django-otp's doubling waits."""
        return int(getattr(settings, "OTP_SMSFLY_THROTTLE_FACTOR", 1))
