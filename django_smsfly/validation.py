"""Checking what will be sent, before anything is sent.

Every rule of the API document that can be checked locally is checked here, so bad
input costs nothing and fails with a :class:`~django_smsfly.exceptions.SmsFlyValidationError`
naming the field. The functions are pure (no settings, no I/O): the client passes in
the region and default sender names it was configured with. Error texts are in the
active language (``_`` from :mod:`django_smsfly.exceptions` also works without Django
settings, in English).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import phonenumbers
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator

from django_smsfly.channels import Channel
from django_smsfly.exceptions import SmsFlyValidationError, _
from django_smsfly.segments import count_segments

#: Message lifetime bounds, in minutes (document: 1 to 1440).
TTL_MIN, TTL_MAX = 1, 1440
VIBER_TEXT_MAX = 1000
BUTTON_CAPTION_MAX = 30
#: The most parts an SMS may take unless the caller says otherwise
#: (``SMSFLY["MAX_SMS_PARTS"]``).
MAX_SMS_PARTS = 10
#: The most characters one SMS part holds (GSM-7, one part): a text longer than
#: ``parts * SMS_PART_MAX`` needs more parts without counting them.
SMS_PART_MAX = 160

_MOBILE_TYPES = frozenset(
    {phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE}
)
_ContentT = TypeVar("_ContentT", "SmsContent", "ViberContent")
_https_url = URLValidator(schemes=["https"])
_web_url = URLValidator(schemes=["http", "https"])


@dataclass(frozen=True)
class SmsContent:
    """The SMS part of a message."""

    text: str
    #: Sender name; ``None`` takes the client's default (``SMSFLY["SMS_SOURCE"]``).
    source: str | None = None
    #: Lifetime in minutes (1–1440); ``None`` leaves SMS-fly's default.
    ttl: int | None = None
    #: A flash SMS is shown on screen at once and not stored.
    flash: bool = False


@dataclass(frozen=True)
class ViberContent:
    """The Viber part of a message.

    Allowed combinations: text; image; text and button; text, button and image.
    """

    text: str | None = None
    #: An ``https://`` URL of the picture to show. django-smsfly never fetches it.
    image: str | None = None
    button_caption: str | None = None
    button_url: str | None = None
    #: Sender name; ``None`` takes the client's default (``SMSFLY["VIBER_SOURCE"]``).
    source: str | None = None
    #: Lifetime in minutes (1–1440); ``None`` leaves SMS-fly's default.
    ttl: int | None = None


def check_storable(text: str, field: str) -> None:
    """Refuse characters no database column can hold: NUL (PostgreSQL refuses it) and
    unpaired surrogates (not encodable as UTF-8)."""
    if "\x00" in text:
        raise SmsFlyValidationError(
            _("contains a NUL character (\\x00), which cannot be stored or sent"), field=field
        )
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise SmsFlyValidationError(
            _("contains a character that is not valid Unicode text"), field=field
        ) from None


def check_sms_parts(text: str, max_parts: int = MAX_SMS_PARTS, field: str = "sms.text") -> None:
    """Refuse an SMS text longer than ``max_parts`` parts, before it is stored or sent."""
    if len(text) > max_parts * SMS_PART_MAX:
        parts = None  # certainly too long: not worth counting a huge text
    else:
        parts = count_segments(text).parts
        if parts <= max_parts:
            return
    if parts is None:
        message = _(
            "is too long: %(length)d characters, more than the %(max)d SMS parts allowed "
            "(SMSFLY['MAX_SMS_PARTS'])"
        ) % {"length": len(text), "max": max_parts}
    else:
        message = _(
            "is too long: %(parts)d SMS parts, at most %(max)d are allowed "
            "(SMSFLY['MAX_SMS_PARTS'])"
        ) % {"parts": parts, "max": max_parts}
    raise SmsFlyValidationError(message, field=field)


def check_region(
    recipient: str, allowed: Iterable[str] | None, *, field: str = "recipient"
) -> None:
    """Refuse a number (international digits) in a country outside ``allowed``."""
    if allowed is None:
        return
    allowed = tuple(allowed)
    region = phonenumbers.region_code_for_number(phonenumbers.parse("+" + recipient))
    if region not in allowed:
        raise SmsFlyValidationError(
            _(
                "+%(number)s is in %(region)s; messages may only go to %(allowed)s "
                "(SMSFLY['ALLOWED_REGIONS'])"
            )
            % {"number": recipient, "region": region or "?", "allowed": ", ".join(allowed)},
            field=field,
        )


def normalize_recipient(value: object, region: str = "UA") -> str:
    """Return a mobile number as international digits without ``+`` (``380501234567``).

    Accepts any written form (``+380 (50) 123-45-67``, ``050 123 4567``,
    ``380501234567``), an integer, and a phone number object: ``phonenumbers``'
    ``PhoneNumber`` and django-phonenumber-field's (anything with ``country_code`` and
    ``national_number``), whatever format it would print in. A number without a
    country code is read in ``region``. Raises :class:`SmsFlyValidationError` for
    anything that is not one valid mobile number — a text with two numbers, words around
    the number or an extension is refused, never cut down to its first number.
    """
    if _is_number_object(value):
        number = _copy_number(value)
        shown = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        return _mobile_digits(number if phonenumbers.is_valid_number(number) else None, shown)
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise SmsFlyValidationError(_("expected a phone number string"), field="recipient")
    text = str(value).strip()
    if not text:
        raise SmsFlyValidationError(_("a recipient is required"), field="recipient")
    if len(text) > 40:
        raise SmsFlyValidationError(_("is not a phone number"), field="recipient")
    digits = sum(ch.isdigit() for ch in text)
    if digits and (not _NUMBER_CHARACTERS.issuperset(text) or digits > 17):
        # Letters ("call … now", "ext. 9") or separators (";", ",") around the digits,
        # or digits enough for two numbers: not one number, and never cut to one.
        raise SmsFlyValidationError(
            _("%(number)r is not one phone number: give a single number, without words")
            % {"number": text},
            field="recipient",
        )
    return _mobile_digits(_parse_phone(text, region), text)


#: What a written phone number may consist of: digits and the usual punctuation.
_NUMBER_CHARACTERS = frozenset("0123456789+-()./ \t\u00a0\u2009\u2010\u2011\u2012\u2013")


def _is_number_object(value: object) -> bool:
    return isinstance(value, phonenumbers.PhoneNumber) or (
        isinstance(getattr(value, "country_code", None), int)
        and isinstance(getattr(value, "national_number", None), int)
    )


def _copy_number(value: Any) -> phonenumbers.PhoneNumber:
    """A plain ``phonenumbers.PhoneNumber`` with the object's number (no extension)."""
    number = phonenumbers.PhoneNumber(
        country_code=value.country_code,
        national_number=value.national_number,
        italian_leading_zero=getattr(value, "italian_leading_zero", None),
        number_of_leading_zeros=getattr(value, "number_of_leading_zeros", None),
    )
    if getattr(value, "extension", None):
        raise SmsFlyValidationError(
            _("%(number)r has an extension: a text message needs a mobile number")
            % {"number": phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)},
            field="recipient",
        )
    return number


def _mobile_digits(number: phonenumbers.PhoneNumber | None, shown: str) -> str:
    """A valid ``number`` as international digits if it is a mobile number.

    ``None`` stands for a number that is not valid (checked once, by the caller).
    """
    if number is None:
        raise SmsFlyValidationError(
            _("%(number)r is not a valid phone number") % {"number": shown}, field="recipient"
        )
    if phonenumbers.number_type(number) not in _MOBILE_TYPES:
        raise SmsFlyValidationError(
            _("%(number)r is not a mobile number") % {"number": shown}, field="recipient"
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164).lstrip("+")


def _parse_phone(text: str, region: str) -> phonenumbers.PhoneNumber | None:
    """The first valid reading of ``text`` (national, then international), or ``None``."""
    candidates = [text]
    digits = "".join(ch for ch in text if ch.isdigit())
    # "380501234567" (the API's own form) and "00380..." carry their country code but
    # no "+": read them as international when the national reading is not valid.
    if not text.startswith("+") and digits:
        candidates.append("+" + (digits[2:] if digits.startswith("00") else digits))
    for candidate in candidates:
        try:
            number = phonenumbers.parse(candidate, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            return number
    return None


def validate_channels(channels: Iterable[Channel | str] | str) -> tuple[Channel, ...]:
    """Return channels as an ordered, duplicate-free tuple; the order is the fallback order."""
    if isinstance(channels, str | Channel):
        channels = [channels]
    result: list[Channel] = []
    for item in channels:
        try:
            channel = Channel(item)
        except ValueError:
            allowed = ", ".join(c.value for c in Channel)
            raise SmsFlyValidationError(
                _("unknown channel %(channel)r (allowed: %(allowed)s)")
                % {"channel": item, "allowed": allowed},
                field="channels",
            ) from None
        if channel in result:
            raise SmsFlyValidationError(
                _("%(channel)r is listed twice") % {"channel": channel.value}, field="channels"
            )
        result.append(channel)
    if not result:
        raise SmsFlyValidationError(_("at least one channel is required"), field="channels")
    return tuple(result)


def validate_ttl(ttl: object, field: str) -> int | None:
    """Return a lifetime in minutes, or ``None`` when not given."""
    if ttl is None:
        return None
    if isinstance(ttl, str) and ttl.strip().isdecimal() and ttl.strip().isascii():
        ttl = int(ttl.strip())  # "300" from a configuration file: a number of minutes
    if isinstance(ttl, bool) or not isinstance(ttl, int):
        raise SmsFlyValidationError(_("must be a whole number of minutes"), field=field)
    if not TTL_MIN <= ttl <= TTL_MAX:
        raise SmsFlyValidationError(
            _("must be between %(min)d and %(max)d minutes, not %(ttl)d")
            % {"min": TTL_MIN, "max": TTL_MAX, "ttl": ttl},
            field=field,
        )
    return ttl


def _source(source: str | None, default: str | None, channel: Channel) -> str:
    value = source if source is not None else default
    if not isinstance(value, str) or not value.strip():
        setting = "SMS_SOURCE" if channel is Channel.SMS else "VIBER_SOURCE"
        raise SmsFlyValidationError(
            _("no sender name: pass source= or set SMSFLY['%(setting)s']") % {"setting": setting},
            field=f"{channel.value}.source",
        )
    return value.strip()


def sms_block(
    content: SmsContent, default_source: str | None, max_parts: int = MAX_SMS_PARTS
) -> dict[str, Any]:
    """Validate SMS content and return the ``sms`` object of a SENDMESSAGE request."""
    if not isinstance(content.text, str) or not content.text.strip():
        raise SmsFlyValidationError(_("the SMS text must not be empty"), field="sms.text")
    check_storable(content.text, "sms.text")
    check_sms_parts(content.text, max_parts)
    block: dict[str, Any] = {"source": _source(content.source, default_source, Channel.SMS)}
    ttl = validate_ttl(content.ttl, "sms.ttl")
    if ttl is not None:
        block["ttl"] = ttl
    if content.flash:
        block["flash"] = 1
    block["text"] = content.text
    return block


def viber_block(content: ViberContent, default_source: str | None) -> dict[str, Any]:
    """Validate Viber content and return the ``viber`` object of a SENDMESSAGE request."""
    text = content.text
    if text is not None and (not isinstance(text, str) or not text.strip()):
        raise SmsFlyValidationError(_("the Viber text must not be empty"), field="viber.text")
    if text is not None:
        check_storable(text, "viber.text")
    if text is not None and len(text) > VIBER_TEXT_MAX:
        raise SmsFlyValidationError(
            _("at most %(max)d characters, got %(length)d")
            % {"max": VIBER_TEXT_MAX, "length": len(text)},
            field="viber.text",
        )
    has_button = content.button_caption is not None or content.button_url is not None
    if has_button:
        _check_button(content.button_caption, content.button_url)
    if content.image is not None:
        _check_url(content.image, _https_url, "viber.image")
    # The document allows: text; image; text+button; text+button+image.
    if text is None and content.image is None:
        raise SmsFlyValidationError(_("a Viber message needs a text or an image"), field="viber")
    if has_button and text is None:
        raise SmsFlyValidationError(_("a button needs a text beside it"), field="viber.button")
    if text is not None and content.image is not None and not has_button:
        raise SmsFlyValidationError(
            _(
                "text with an image needs a button too (allowed: text; image; text+button; "
                "text+button+image)"
            ),
            field="viber.image",
        )
    block: dict[str, Any] = {"source": _source(content.source, default_source, Channel.VIBER)}
    ttl = validate_ttl(content.ttl, "viber.ttl")
    if ttl is not None:
        block["ttl"] = ttl
    if text is not None:
        block["text"] = text
    if has_button:
        block["button"] = {"caption": content.button_caption, "url": content.button_url}
    if content.image is not None:
        block["image"] = content.image
    return block


def _check_button(caption: object, url: object) -> None:
    if not isinstance(caption, str) or not caption.strip():
        raise SmsFlyValidationError(_("a button needs a caption"), field="viber.button_caption")
    if len(caption) > BUTTON_CAPTION_MAX:
        raise SmsFlyValidationError(
            _("at most %(max)d characters, got %(length)d")
            % {"max": BUTTON_CAPTION_MAX, "length": len(caption)},
            field="viber.button_caption",
        )
    if url is None:
        raise SmsFlyValidationError(_("a button needs a URL"), field="viber.button_url")
    _check_url(url, _web_url, "viber.button_url")


def _check_url(value: object, validator: URLValidator, field: str) -> None:
    # Whole sentences per case, not "must be {expected}": translators need them whole.
    https_only = validator is _https_url
    if not isinstance(value, str):
        raise SmsFlyValidationError(
            _("must be an https:// URL")
            if https_only
            else _("must be an http:// or https:// URL"),
            field=field,
        )
    try:
        validator(value)
    except ValidationError:
        text = (
            _("must be an https:// URL, not %(value)r")
            if https_only
            else _("must be an http:// or https:// URL, not %(value)r")
        )
        raise SmsFlyValidationError(text % {"value": value[:80]}, field=field) from None


def build_send_data(
    recipient: object,
    *,
    channels: Iterable[Channel | str] | str,
    sms: SmsContent | None = None,
    viber: ViberContent | None = None,
    region: str = "UA",
    sms_source: str | None = None,
    viber_source: str | None = None,
    allowed_regions: Iterable[str] | None = None,
    max_sms_parts: int = MAX_SMS_PARTS,
) -> dict[str, Any]:
    """Validate a whole message and return the ``data`` object of a SENDMESSAGE request.

    Each listed channel needs its content; content for a channel that is not listed is
    refused too, since SMS-fly would silently ignore it. ``allowed_regions`` (``None``:
    any) are the countries the number may be in; an SMS text may take at most
    ``max_sms_parts`` parts.
    """
    order = validate_channels(channels)
    number = normalize_recipient(recipient, region)
    check_region(number, allowed_regions)
    data: dict[str, Any] = {
        "recipient": number,
        "channels": [c.value for c in order],
    }
    sms_content = _coerce(sms, SmsContent, Channel.SMS, order)
    viber_content = _coerce(viber, ViberContent, Channel.VIBER, order)
    for channel in order:
        if channel is Channel.VIBER and viber_content is not None:
            data["viber"] = viber_block(viber_content, viber_source)
        elif sms_content is not None:
            data["sms"] = sms_block(sms_content, sms_source, max_sms_parts)
    return data


def _coerce(
    content: object, kind: type[_ContentT], channel: Channel, order: tuple[Channel, ...]
) -> _ContentT | None:
    """Accept the content dataclass or a mapping of its fields; check it matches ``order``."""
    if channel in order and content is None:
        raise SmsFlyValidationError(
            _("the %(channel)r channel is listed but has no content") % {"channel": channel.value},
            field=channel.value,
        )
    if channel not in order and content is not None:
        raise SmsFlyValidationError(
            _("content given for %(channel)r, which is not among the channels")
            % {"channel": channel.value},
            field=channel.value,
        )
    if content is None or isinstance(content, kind):
        return content
    if isinstance(content, Mapping):
        try:
            return kind(**content)
        except TypeError as exc:
            raise SmsFlyValidationError(str(exc), field=channel.value) from None
    raise SmsFlyValidationError(
        _("expected %(kind)s or a dict, got %(type)s")
        % {"kind": kind.__name__, "type": type(content).__name__},
        field=channel.value,
    )


def sms_fallback(
    text: str | None, source: str | None = None, ttl: int | None = None
) -> SmsContent | None:
    """The SMS that follows a Viber message if Viber fails, or ``None`` without a text.

    Shared by every ``send_viber``: a fallback sender name or lifetime without a fallback
    text is a mistake worth telling, not something to drop silently.
    """
    if text is not None:
        return SmsContent(text=text, source=source, ttl=ttl)
    if source is not None or ttl is not None:
        raise SmsFlyValidationError(
            _("sms_source and sms_ttl need sms_text (the SMS fallback)"), field="sms_text"
        )
    return None
