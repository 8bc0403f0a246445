"""The SMS gateway for django-two-factor-auth: its tokens sent through django-smsfly.

Nothing here imports django-two-factor-auth: two-factor calls :class:`Gateway` with its
device (anything with a ``number``) and the token it made.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured

from django_smsfly.contrib.codes import check_sent, explain
from django_smsfly.exceptions import SmsFlyValidationError
from django_smsfly.models import Verification
from django_smsfly.verification import Throttled, flow

__all__ = ["PURPOSE", "Gateway", "send_token"]

#: The purpose two-factor's codes are counted under by the verification limits.
PURPOSE = "two_factor"


class Gateway:
    """``TWO_FACTOR_SMS_GATEWAY = "django_smsfly.contrib.two_factor.Gateway"``.

    Each token goes out as a sensitive message (kept masked in every record: only the
    request to SMS-fly carries it), in the active language, with the text and the
    limits of :mod:`django_smsfly.verification` (``SMSFLY["VERIFICATION"]``): the
    allowed countries, the resend cooldown and the hourly and daily caps. When the
    token cannot be sent, :class:`~django_smsfly.contrib.codes.CodeNotSent` says why;
    the views in :mod:`django_smsfly.contrib.two_factor.views` show it as a form error.

    SMS-fly makes no voice calls: leave ``TWO_FACTOR_CALL_GATEWAY`` unset (then
    two-factor offers no "phone call" method); pointing it here raises
    :class:`~django.core.exceptions.ImproperlyConfigured` on the first call.
    """

    def send_sms(self, device: Any, token: str) -> None:
        """Send ``token`` to ``device.number``; raise ``CodeNotSent`` if it was not sent."""
        try:
            verification = send_token(device.number, str(token))
        except (SmsFlyValidationError, Throttled) as error:
            raise explain(error) from error
        check_sent(verification.message)

    def make_call(self, device: Any, token: str) -> None:
        """SMS-fly cannot call: a configuration mistake, raised as one."""
        raise ImproperlyConfigured(
            "SMS-fly sends text messages only: unset TWO_FACTOR_CALL_GATEWAY (it must not "
            "point to django_smsfly.contrib.two_factor.Gateway)."
        )


def send_token(recipient: object, token: str, *, purpose: str = PURPOSE) -> Verification:
    """Send a code another app made (two-factor's token) as ``send_code`` sends its own.

    The same steps as :func:`~django_smsfly.verification.send_code`, the drawing of
    the code left out (:func:`~django_smsfly.verification.flow.deliver`): the country
    must be allowed, the limits must admit it, the row keeps only the code's keyed
    hash, and the text is ``SMSFLY["VERIFICATION"]``'s, sent as a sensitive SMS.
    Without a request no per-address limit applies. Raises ``SmsFlyValidationError`` or
    ``Throttled`` as ``send_code`` does.
    """
    return flow.deliver(recipient, token, purpose=purpose)
