"""The demo's pages.

``verify_phone`` is the recipe for a site's own "verify your phone" page on
:func:`~django_smsfly.verification.send_code` and
:func:`~django_smsfly.verification.check_code`: every way a code can fail to go out is
shown to the visitor in words (a limit with its wait, a refused number, a failed
message), and a wrong code never says more than "wrong, expired or used up".
"""

from __future__ import annotations

import phonenumbers
from django.contrib import messages
from django.forms import Form
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods
from django.views.generic import TemplateView
from two_factor.views import OTPRequiredMixin

from demo.forms import CodeForm, PhoneForm
from django_smsfly.exceptions import SmsFlyValidationError
from django_smsfly.models import Message
from django_smsfly.verification import Throttled, check_code, send_code

#: Session keys: the number the last code went to, and the number proved.
SENT_TO = "demo_verify_sent_to"
VERIFIED = "demo_verify_verified"


def shown(digits: str) -> str:
    """International digits (``380501234567``) as people write them: ``+380 50 123 4567``."""
    number = phonenumbers.parse(f"+{digits}")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def home(request: HttpRequest) -> HttpResponse:
    """What there is to try."""
    verified = request.session.get(VERIFIED)
    return render(request, "demo/home.html", {"verified": verified and shown(verified)})


@require_http_methods(["GET", "POST"])
def verify_phone(request: HttpRequest) -> HttpResponse:
    """Step one: a number, and a code sent to it. Step two: the code, checked."""
    sent_to: str | None = request.session.get(SENT_TO)
    phone_form = PhoneForm()
    code_form = CodeForm()
    action = request.POST.get("action") if request.method == "POST" else None
    if action == "send":
        phone_form = PhoneForm(request.POST)
        if phone_form.is_valid() and send(request, phone_form, phone_form.cleaned_data["number"]):
            return redirect("demo:verify")
    elif action == "resend" and sent_to:
        # Errors on the way are told as messages: the code's form stays as it was.
        send(request, None, sent_to)
        return redirect("demo:verify")
    elif action == "check" and sent_to:
        code_form = CodeForm(request.POST)
        if code_form.is_valid():
            if check_code(sent_to, code_form.cleaned_data["code"]):
                del request.session[SENT_TO]
                request.session[VERIFIED] = sent_to
                messages.success(
                    request, _("%(number)s is verified.") % {"number": shown(sent_to)}
                )
                return redirect("demo:verify")
            # One answer for every way a code fails: nothing to learn by guessing.
            code_form.add_error(
                "code", _("This code is wrong, expired or used up. Check it, or send a new code.")
            )
    elif action == "change":
        request.session.pop(SENT_TO, None)
        return redirect("demo:verify")
    verified = request.session.get(VERIFIED)
    return render(
        request,
        "demo/verify.html",
        {
            "phone_form": phone_form,
            "code_form": code_form,
            "sent_to": sent_to and shown(sent_to),
            "verified": verified and shown(verified),
            # The sandbox box (DEBUG and the sandbox only) shows the text sent here.
            "sandbox_number": sent_to,
        },
    )


def send(request: HttpRequest, form: Form | None, number: str) -> bool:
    """Send a code to ``number``; on failure tell why (on ``form``, else as a message)."""
    try:
        verification = send_code(number, request=request)
    except Throttled as error:
        # Its text says when to try again ("... Try again in 42 seconds.").
        problem = str(error)
    except SmsFlyValidationError as error:
        # Not a mobile number, or one in a country the site sends no codes to.
        problem = _("This number cannot receive a code: %(reason)s.") % {"reason": error.reason}
    else:
        message = verification.message
        if message is None or message.state != Message.State.FAILED:
            request.session[SENT_TO] = verification.recipient
            messages.success(
                request,
                _("We sent a code to %(number)s.") % {"number": shown(verification.recipient)},
            )
            return True
        problem = _("The text message could not be sent. Try again later.")
    if form is None:
        messages.error(request, problem)
    else:
        form.add_error(None, problem)
    return False


class PrivateView(OTPRequiredMixin, TemplateView):  # type: ignore[misc]
    """A page for users who logged in with a code (two-factor's ``OTPRequiredMixin``):
    anonymous visitors are sent to the login, users without a second factor are told
    to set one up."""

    template_name = "demo/private.html"
