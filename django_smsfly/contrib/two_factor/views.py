"""django-two-factor-auth's views, showing a code that could not be sent as a form error.

Two-factor's own views ask the device for a challenge and let whatever the gateway
raises through: its login view and its backup-phone view answer an HTTP 500 when the
number is refused, a limit is reached or the message fails, and its setup wizard moves
on to the token step with a general warning. These subclasses catch
:class:`~django_smsfly.contrib.codes.CodeNotSent` (what :class:`.Gateway` raises) and
keep the user on the step they were on, with the reason as the form's error. Anything
else raised behaves as in two-factor. :mod:`django_smsfly.contrib.two_factor.urls` puts
them in place of two-factor's own.
"""

from __future__ import annotations

import logging
from typing import Any

from django.forms import BaseForm
from django.http import HttpResponse
from two_factor.plugins.phonenumber.views import PhoneSetupView as TwoFactorPhoneSetupView
from two_factor.views import LoginView as TwoFactorLoginView
from two_factor.views import SetupView as TwoFactorSetupView

from django_smsfly.contrib.codes import CodeNotSent

__all__ = ["LoginView", "PhoneSetupView", "SetupView"]

logger = logging.getLogger(__name__)


def show_error(form: BaseForm, error: CodeNotSent) -> None:
    """Add ``error`` to ``form`` as an error of the whole form (bound or not)."""
    if not hasattr(form, "cleaned_data"):
        # An unbound form has none, and add_error needs it (two-factor does the same).
        form.cleaned_data = {}
    form.add_error(None, error.message)


class LoginView(TwoFactorLoginView):  # type: ignore[misc]
    """Two-factor's login; a code that could not be sent is an error on the token step."""

    def render(self, form: BaseForm | None = None, **kwargs: Any) -> HttpResponse:
        """Render the step; two-factor first asks the device for a challenge on the token
        step, and when that fails the step is shown without one, with the reason."""
        form = form or self.get_form()
        try:
            response: HttpResponse = super().render(form, **kwargs)
        except CodeNotSent as error:
            show_error(form, error)
            # Two-factor's render would ask for a challenge again: render past it.
            response = super(TwoFactorLoginView, self).render(form, **kwargs)
        return response


class SetupView(TwoFactorSetupView):  # type: ignore[misc]
    """Two-factor's setup wizard; a number that cannot get a code stays on its step."""

    def render_next_step(self, form: BaseForm, **kwargs: Any) -> HttpResponse:
        """Before the token step, send the code: if it cannot be, the number's step is shown
        again with the reason (two-factor would go on with a general warning)."""
        if self.steps.next != "validation":
            return super().render_next_step(form, **kwargs)  # type: ignore[no-any-return]
        try:
            self.get_device().generate_challenge()
        except CodeNotSent as error:
            show_error(form, error)
            return self.render(form)  # type: ignore[no-any-return]
        except Exception:
            # As two-factor does for any other failure: go on, with its warning.
            logger.exception("Could not generate challenge")
            kwargs["challenge_succeeded"] = False
        else:
            kwargs["challenge_succeeded"] = True
        # Two-factor's own render_next_step would send a second code: go past it.
        return super(TwoFactorSetupView, self).render_next_step(form, **kwargs)  # type: ignore[no-any-return]


class PhoneSetupView(TwoFactorPhoneSetupView):  # type: ignore[misc]
    """Two-factor's "add a backup phone"; a number that cannot get a code stays on its step."""

    def render_next_step(self, form: BaseForm, **kwargs: Any) -> HttpResponse:
        """Send the code before the token step; if it cannot be, show the number again."""
        try:
            return super().render_next_step(form, **kwargs)  # type: ignore[no-any-return]
        except CodeNotSent as error:
            # Raised before the wizard moved on: the number's step is still the current one.
            show_error(form, error)
            return self.render(form)  # type: ignore[no-any-return]
