"""Recipients: phone number objects are accepted as they are; a text that holds more
than one number is refused, never cut down to its first number.

The findings: ``send_sms(device.number, …)`` refused django-phonenumber-field's
``PhoneNumber`` ("expected a phone number string"), and ``str(number)`` failed too when
the field prints numbers in national format; ``0501234567;0671234567`` and ``call
380501234567 now`` were sent to the first number found.
"""

from __future__ import annotations

from typing import Any

import phonenumbers
import pytest
from phonenumber_field.phonenumber import PhoneNumber as FieldPhoneNumber

from django_smsfly import services
from django_smsfly.backends.sandbox import Simulator
from django_smsfly.exceptions import SmsFlyValidationError
from django_smsfly.models import Message
from django_smsfly.validation import normalize_recipient

pytestmark = pytest.mark.django_db


def test_a_phonenumbers_object_is_sent_to(sandbox: Simulator) -> None:
    number = phonenumbers.parse("050 123 4567", "UA")
    message = services.send_sms(number, "Hi")
    assert message.recipient == "380501234567"
    assert sandbox.requests_for("SENDMESSAGE")[0].body["data"]["recipient"] == "380501234567"


@pytest.mark.parametrize("number_format", ["E164", "INTERNATIONAL", "NATIONAL", "RFC3966"])
def test_a_phonenumber_field_number_is_sent_to_whatever_format_it_prints_in(
    sandbox: Simulator, settings: Any, number_format: str
) -> None:
    settings.PHONENUMBER_DEFAULT_FORMAT = number_format
    number = FieldPhoneNumber.from_string("+48 601 234 567")
    message = services.send_viber(number, text="Hi", sms_text="Hi")
    assert message.recipient == "48601234567"


def test_a_phonenumber_fields_model_value_is_sent_to(sandbox: Simulator) -> None:
    from phonenumber_field.modelfields import PhoneNumberField

    field = PhoneNumberField(region="UA")
    value = field.to_python("0671234567")
    assert isinstance(value, FieldPhoneNumber)
    assert services.send_sms(value, "Hi").recipient == "380671234567"


def test_an_object_with_an_extension_or_an_invalid_number_is_refused(sandbox: Simulator) -> None:
    with_extension = phonenumbers.parse("+380501234567 ext. 9", "UA")
    with pytest.raises(SmsFlyValidationError, match="extension"):
        services.send_sms(with_extension, "Hi")
    invalid = phonenumbers.PhoneNumber(country_code=380, national_number=12)
    with pytest.raises(SmsFlyValidationError, match="not a valid phone number"):
        services.send_sms(invalid, "Hi")
    assert not Message.objects.exists()
    assert sandbox.requests_for("SENDMESSAGE") == []


@pytest.mark.parametrize(
    "text",
    [
        "0501234567;0671234567",
        "0501234567, 0671234567",
        "0501234567 0671234567",
        "call 380501234567 now",
        "0501234567 ext. 9",
        "+380501234567 (mobile)",
        "tel:+380501234567",
    ],
)
def test_a_text_with_more_than_one_number_is_refused_not_cut(
    sandbox: Simulator, text: str
) -> None:
    with pytest.raises(SmsFlyValidationError) as caught:
        services.send_sms(text, "Hi")
    assert caught.value.field == "recipient"
    assert not Message.objects.exists()
    assert sandbox.requests_for("SENDMESSAGE") == []


@pytest.mark.parametrize(
    "text",
    ["+380 (50) 123-45-67", "050 123 4567", "380501234567", "0038 050 123 45 67", "050.123.45.67"],
)
def test_every_usual_way_of_writing_one_number_still_works(text: str) -> None:
    assert normalize_recipient(text) == "380501234567"
