"""Why a one-time code could not be sent, in words for the person waiting for it.

The integrations raise :class:`CodeNotSent` from whatever stopped a code: a number the
app refuses (:class:`~django_smsfly.exceptions.SmsFlyValidationError`, a country
outside ``ALLOWED_REGIONS`` included), a limit
(:class:`~django_smsfly.verification.Throttled`) or a message SMS-fly refused. Its
:attr:`~CodeNotSent.message` can be shown as it is: django-otp's forms show an
exception's text, and the two-factor views in :mod:`.two_factor.views` show it as a
form error.
"""

from __future__ import annotations

from django.utils.translation import gettext

from django_smsfly.exceptions import SmsFlyValidationError
from django_smsfly.models import Message
from django_smsfly.verification import Throttled

__all__ = ["CodeNotSent", "check_sent", "explain"]


class CodeNotSent(Exception):
    """A one-time code was not sent; :attr:`message` tells the user why, translated.

    :attr:`reason` is ``"refused"`` (the number), ``"throttled"`` (a limit; then
    :attr:`retry_after` is the wait in seconds) or ``"failed"`` (the message).
    """

    def __init__(self, message: str, *, reason: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason
        self.retry_after = retry_after


def explain(error: SmsFlyValidationError | Throttled) -> CodeNotSent:
    """The :class:`CodeNotSent` to raise for what ``send_code`` or ``send_sms`` raised."""
    if isinstance(error, Throttled):
        # Its text already says only when to try again, whatever the limit.
        return CodeNotSent(error.message, reason="throttled", retry_after=error.retry_after)
    return CodeNotSent(
        gettext("This number cannot receive a code: %(reason)s.") % {"reason": error.reason},
        reason="refused",
    )


def check_sent(message: Message | None) -> None:
    """Raise :class:`CodeNotSent` if SMS-fly refused the message carrying a code.

    A message whose outcome is unknown may have gone out, so the code may come: it is
    not an error to show (the delivery layer has logged it for an operator).
    """
    if message is not None and message.state == Message.State.FAILED:
        raise CodeNotSent(
            gettext("The text message with your code could not be sent. Try again later."),
            reason="failed",
        )
