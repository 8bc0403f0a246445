"""One-time form tokens: a page that sends does it once, however often its form is posted.

A double click, a browser that posts the form again on reload, or *back* and *submit*
would otherwise send a message twice. A page that sends puts a token in a hidden field
when it draws its form (:func:`issue`); the POST hands it back and :func:`redeem` turns
it into an idempotency key. The key is what the send is recorded under
(``Message.idempotency_key``), so every POST of one drawn form finds the message the
first one made instead of sending another.

A token is a random nonce signed with the site's ``SECRET_KEY`` together with the user
it was drawn for and the page it belongs to: it cannot be guessed or made up, and one
user's token is refused for another (or for another page). It expires after
:data:`MAX_AGE`, well after any operator finishes a form.
"""

from __future__ import annotations

import secrets
from typing import Any

from django import forms
from django.core import signing
from django.utils.translation import gettext_lazy as _

__all__ = ["MAX_AGE", "FormTokenError", "TokenField", "issue", "redeem"]

#: How long a drawn form's token is good for (seconds): a working day.
MAX_AGE = 12 * 60 * 60
_SALT = "django_smsfly.admin.formtokens"


class FormTokenError(ValueError):
    """The token is missing, made up, someone else's, or expired; the message says which
    in words an operator understands."""


def _owner(user: Any) -> str:
    return str(getattr(user, "pk", "") or "")


def issue(user: Any, purpose: str) -> str:
    """A fresh token for a form drawn for ``user`` on the page ``purpose`` names."""
    nonce = secrets.token_urlsafe(18)
    return signing.dumps({"n": nonce, "u": _owner(user), "p": purpose}, salt=_SALT)


def redeem(token: str, user: Any, purpose: str) -> str:
    """The idempotency key of a posted ``token`` (``"<purpose>:<nonce>"``).

    Raises :class:`FormTokenError` for a token that is missing, not signed by this site,
    drawn for another user or page, or expired.
    """
    if not token:
        raise FormTokenError(_("The form has no one-time token."))
    try:
        data = signing.loads(token, salt=_SALT, max_age=MAX_AGE)
    except signing.SignatureExpired:
        raise FormTokenError(_("The form was opened too long ago.")) from None
    except signing.BadSignature:
        raise FormTokenError(_("The form's one-time token is not one this site issued.")) from None
    if not isinstance(data, dict) or not isinstance(data.get("n"), str):
        raise FormTokenError(_("The form's one-time token is not one this site issued."))
    if data.get("u") != _owner(user) or data.get("p") != purpose:
        raise FormTokenError(_("The form was opened by another user or on another page."))
    return f"{purpose}:{data['n']}"


class TokenField(forms.CharField):
    """The hidden field that carries a form's one-time token (checked by the form, which
    knows the user: see :func:`redeem`)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("widget", forms.HiddenInput)
        super().__init__(**kwargs)
