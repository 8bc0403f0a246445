"""Sending a code and checking it: :func:`send_code` and :func:`check_code`.

Sending, step by step; nothing is sent unless every step passes::

    number, country = read_number(recipient)  # SmsFlyValidationError if it is none
    check_region(...)                         # outside ALLOWED_REGIONS: recorded, raised
    estimate(...)                             # the cost, with a DAILY_SPEND_LIMIT only
    ticket = take_places(...)                 # the limits: recorded, Throttled
    verification = write(...)                 # the row, with the code's hash only
    send(...)                                 # services.send_message(sensitive=True)

Checking takes one of the code's tries with a single conditional UPDATE *before* the
code is compared, so however many checks run at once no more than ``MAX_ATTEMPTS``
guesses are ever compared; the right code then marks the row verified with another
conditional UPDATE that only one check can win.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import phonenumbers
from django.core.exceptions import ImproperlyConfigured
from django.db.models import F
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _

from django_smsfly import services
from django_smsfly.channels import Channel
from django_smsfly.exceptions import SmsFlyValidationError
from django_smsfly.models import Message, Verification
from django_smsfly.privacy import display_recipient
from django_smsfly.validation import (
    SmsContent,
    ViberContent,
    normalize_recipient,
    validate_channels,
)
from django_smsfly.verification import codes, config, texts
from django_smsfly.verification.clientip import client_ip, network_of
from django_smsfly.verification.config import VerificationConfig
from django_smsfly.verification.limits import Ask, Throttled, Ticket, admit

logger = logging.getLogger("django_smsfly")

#: The longest purpose (the column's width).
PURPOSE_MAX = 64


def send_code(
    recipient: object,
    *,
    purpose: str = "verify",
    request: HttpRequest | None = None,
    channels: Iterable[Channel | str] | str | None = None,
    language: str | None = None,
) -> Verification:
    """Send a one-time code to ``recipient`` and return its :class:`Verification` row.

    ``purpose`` keeps codes for different uses apart (``"login"``, ``"reset"``): a code
    is good for its own purpose only. ``request`` gives the client's address for the
    per-address limit (and the current site's name); ``channels`` is ``"sms"`` (the
    default), ``"viber"``, or ``["viber", "sms"]`` for Viber with an SMS fallback;
    ``language`` the language of the text (default: the active one).

    Raises :class:`~django_smsfly.exceptions.SmsFlyValidationError` for a number that
    is not a valid mobile number or is in a country outside ``ALLOWED_REGIONS``, and
    :class:`Throttled` when a limit refuses; nothing is sent then. A send that fails
    (SMS-fly refused it, or its outcome is unknown) still returns the row, linked to its
    message: ``verification.message.state`` tells.
    """
    return deliver(
        recipient, None, purpose=purpose, request=request, channels=channels, language=language
    )


def deliver(
    recipient: object,
    code: str | None,
    *,
    purpose: str,
    request: HttpRequest | None = None,
    channels: Iterable[Channel | str] | str | None = None,
    language: str | None = None,
) -> Verification:
    """:func:`send_code`'s steps, for a code drawn here (``code=None``) or one another
    app made (django-two-factor-auth's token): the country must be allowed, the limits
    must admit it, the row keeps only the code's keyed hash, and the text goes out as a
    sensitive message. Raises as :func:`send_code` does."""
    conf = config.current()
    number, country = read_number(recipient, conf)
    purpose = _purpose(purpose)
    order = validate_channels(channels if channels is not None else [Channel.SMS])
    address = client_ip(request, trusted_proxies=conf.trusted_proxies, header=conf.ip_header)
    ask = Ask(recipient=number, purpose=purpose, network=network_of(address), now=timezone.now())
    check_region(ask, conf, country=country, address=address)
    if conf.daily_spend_limit is not None:
        ask = dataclasses.replace(ask, cost=estimate(ask, order, conf, request, language))
    ticket = take_places(ask, conf, country=country, address=address)
    if code is None:
        code = codes.new_code(conf.code_length)
    verification = write(ask, code, conf, country=country, address=address)
    send(verification, ticket, code, order, conf, request=request, language=language)
    return verification


def read_number(recipient: object, conf: VerificationConfig) -> tuple[str, str]:
    """The number as international digits and its country (ISO 3166, ``""`` if none).

    Raises :class:`SmsFlyValidationError` for what is not a valid mobile number.
    """
    number = normalize_recipient(recipient, conf.default_region)
    region = phonenumbers.region_code_for_number(phonenumbers.parse(f"+{number}"))
    # "001" (a number of no country, as +882) or None: no country to allow.
    return number, region if isinstance(region, str) and len(region) == 2 else ""


def _purpose(purpose: object) -> str:
    if not isinstance(purpose, str) or not purpose.strip() or len(purpose) > PURPOSE_MAX:
        raise SmsFlyValidationError(
            _("must be a non-empty string of at most %(max)d characters") % {"max": PURPOSE_MAX},
            field="purpose",
        )
    return purpose


def check_region(ask: Ask, conf: VerificationConfig, *, country: str, address: str | None) -> None:
    """Refuse (and record) a number outside ``ALLOWED_REGIONS``, before any request."""
    if country in conf.allowed_regions:
        return
    refuse(ask, Verification.Refusal.REGION, country=country, address=address)
    raise SmsFlyValidationError(
        _("one-time codes are not sent to numbers in %(country)s")
        % {"country": country or _("this country")},
        field="recipient",
    )


def take_places(
    ask: Ask, conf: VerificationConfig, *, country: str, address: str | None
) -> Ticket:
    """Take the request's places under the limits, or record the refusal and raise
    :class:`Throttled`."""
    try:
        return admit(ask, conf)
    except Throttled as exc:
        refuse(ask, exc.reason, country=country, address=address)
        raise


def refuse(ask: Ask, reason: str, *, country: str, address: str | None) -> Verification:
    """Record a refused request (no code) for the fraud guard page."""
    logger.info(
        "A one-time code for %s (%s) was refused: %s.",
        display_recipient(ask.recipient),
        ask.purpose,
        reason,
    )
    return Verification.objects.create(
        recipient=ask.recipient,
        country=country,
        purpose=ask.purpose,
        created_at=ask.now,
        client_ip=address,
        client_network=ask.network,
        refusal=reason,
    )


def content(order: tuple[Channel, ...], text: str) -> dict[str, Any]:
    """The ``sms``/``viber`` content of a code's message over ``order``."""
    return {
        "sms": SmsContent(text=text) if Channel.SMS in order else None,
        "viber": ViberContent(text=text) if Channel.VIBER in order else None,
    }


def estimate(
    ask: Ask,
    order: tuple[Channel, ...],
    conf: VerificationConfig,
    request: HttpRequest | None,
    language: str | None,
) -> Decimal | None:
    """What the code's message will cost at most (every channel paid), from SMS-fly's
    price list (cached for an hour); ``None`` if the list has no price for it.

    The text is priced with zeros for the code: the same length and alphabet, so the
    same number of SMS parts, and no code is drawn for a request that may be refused.
    """
    text = texts.render(conf, "0" * conf.code_length, request=request, language=language)
    return services.estimate_cost(ask.recipient, channels=order, **content(order, text)).most


def write(
    ask: Ask, code: str, conf: VerificationConfig, *, country: str, address: str | None
) -> Verification:
    """Write the row of a code about to be sent: its hash, never the code."""
    return Verification.objects.create(
        recipient=ask.recipient,
        country=country,
        purpose=ask.purpose,
        code_hash=codes.code_hash(code, recipient=ask.recipient, purpose=ask.purpose),
        created_at=ask.now,
        expires_at=ask.now + conf.ttl,
        client_ip=address,
        client_network=ask.network,
        cost=ask.cost,
    )


def send(
    verification: Verification,
    ticket: Ticket,
    code: str,
    order: tuple[Channel, ...],
    conf: VerificationConfig,
    *,
    request: HttpRequest | None,
    language: str | None,
) -> Message:
    """Send the code's text as a sensitive message and link the message to the row.

    A message refused before any request was made (a validation error, a setting
    missing) gives the limits their places back and takes the row away, and the error
    is raised. Otherwise the message is linked, whatever its outcome.
    """
    text = texts.render(conf, code, request=request, language=language)
    try:
        message = services.send_message(
            verification.recipient,
            channels=order,
            **content(order, text),
            metadata={"verification": verification.pk, "purpose": verification.purpose},
            created_by=getattr(request, "user", None),
            sensitive=True,
        )
    except (SmsFlyValidationError, ImproperlyConfigured):
        ticket.release()
        Verification.objects.filter(pk=verification.pk).delete()
        raise
    Verification.objects.filter(pk=verification.pk).update(message=message)
    verification.message = message
    if message.state in (Message.State.FAILED, Message.State.UNKNOWN):
        logger.warning(
            "The one-time code for %s (%s) may not have been sent: its message #%s is %s.",
            display_recipient(verification.recipient),
            verification.purpose,
            message.pk,
            message.state,
        )
    return message


def check_code(recipient: object, code: object, *, purpose: str = "verify") -> bool:
    """Whether ``code`` is the code last sent to ``recipient`` for ``purpose``.

    True once: the code is then used up. False for a wrong code (each costs one of the
    ``MAX_ATTEMPTS`` tries; after them the right code fails too), an expired or used
    one, an older code than the last one sent, and for anything that is not a code at
    all: a number, a blank, letters. Never raises for what a user typed.
    """
    conf = config.current()
    try:
        number = normalize_recipient(recipient, conf.default_region)
    except SmsFlyValidationError:
        return False
    cleaned = codes.clean_code(code)
    if cleaned is None or not isinstance(purpose, str):
        return False
    now = timezone.now()
    latest = (
        Verification.objects.filter(recipient=number, purpose=purpose, refusal="")
        # A code whose message failed never reached the user: the one before still works.
        .exclude(message__state=Message.State.FAILED)
        .order_by("-created_at", "-pk")
        .first()
    )
    if latest is None:
        return False
    live = Verification.objects.filter(pk=latest.pk, verified_at__isnull=True, expires_at__gt=now)
    # Take one try first: only MAX_ATTEMPTS guesses are ever compared, however many
    # checks run at once.
    if not live.filter(attempts__lt=conf.max_attempts).update(attempts=F("attempts") + 1):
        return False
    if not codes.matches(cleaned, latest.code_hash, recipient=number, purpose=purpose):
        return False
    # One use: of the checks that got this far with the right code, one marks it.
    # (Its own try is counted already, hence "<=".)
    return bool(live.filter(attempts__lte=conf.max_attempts).update(verified_at=now))
