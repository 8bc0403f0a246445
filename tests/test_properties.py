# ruff: noqa: PT017 - a property either holds for the result or for the error raised
"""Property tests: validators, the segment counter, the status merger and the reply parser.

Each property states what a user relies on for *any* input hypothesis can think of:
bad input is refused with :class:`SmsFlyValidationError` and nothing else, valid input
is never refused, and whatever SMS-fly replies, only :class:`SmsFlyError` subclasses
escape the client.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import phonenumbers
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from django_smsfly.backends.base import BaseBackend, RawReply
from django_smsfly.channels import Channel
from django_smsfly.client import SmsFlyClient
from django_smsfly.exceptions import SmsFlyError, SmsFlyValidationError
from django_smsfly.segments import GSM7_BASIC, GSM7_EXTENSION, Encoding, count_segments
from django_smsfly.statuses import DeliveryStatus, advance, overall
from django_smsfly.validation import SmsContent, ViberContent, normalize_recipient

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# -- recipients ------------------------------------------------------------------------------

#: Ukrainian mobile operator codes (Kyivstar, Vodafone, lifecell, 3mob...).
UA_MOBILE_CODES = ["50", "63", "66", "67", "68", "73", "91", "92", "93", "94", "95", "96"]
UA_MOBILE_CODES += ["97", "98", "99"]


@st.composite
def ua_mobile(draw: st.DrawFn) -> tuple[str, str]:
    """A valid Ukrainian mobile number: ``(canonical digits, one of its written forms)``."""
    code = draw(st.sampled_from(UA_MOBILE_CODES))
    rest = draw(st.text("0123456789", min_size=7, max_size=7))
    assume(rest[0] != "0")  # subscriber numbers do not start with 0
    canonical = f"380{code}{rest}"
    assume(phonenumbers.is_valid_number(phonenumbers.parse("+" + canonical)))
    sep = draw(st.sampled_from(["", " ", "-", "."]))
    national = f"0{code}{sep}{rest[:3]}{sep}{rest[3:5]}{sep}{rest[5:]}"
    forms = [
        canonical,
        "+" + canonical,
        "00" + canonical,
        f"+380 ({code}) {rest[:3]}-{rest[3:5]}-{rest[5:]}",
        f"+38{sep}0{code}{sep}{rest}",
        national,
        f" {national} ",
    ]
    return canonical, draw(st.sampled_from(forms))


@SETTINGS
@given(ua_mobile())
def test_every_written_form_of_a_valid_mobile_number_is_accepted(number: tuple[str, str]) -> None:
    canonical, written = number
    assert normalize_recipient(written) == canonical
    # Normalizing is idempotent: the stored form reads back as itself.
    assert normalize_recipient(canonical) == canonical


@SETTINGS
@given(st.one_of(st.text(max_size=60), st.integers(), st.none(), st.booleans(), st.floats()))
@example("")
@example("+")
@example("0" * 41)
@example("380\x00501234567")
def test_any_recipient_is_normalized_or_refused_with_a_validation_error(value: Any) -> None:
    try:
        result = normalize_recipient(value)
    except SmsFlyValidationError as exc:
        assert exc.field == "recipient"
        return
    assert result.isdigit()
    assert 8 <= len(result) <= 15
    parsed = phonenumbers.parse("+" + result)
    assert phonenumbers.is_valid_number(parsed)


# -- message content -------------------------------------------------------------------------


class _NoNetwork(BaseBackend):
    """Preparing a message makes no request; a request here would be a bug."""

    def send(self, body: Mapping[str, Any]) -> RawReply:
        raise AssertionError("prepare() must not send")


_client = SmsFlyClient(
    "k" * 36, backend=_NoNetwork(), sms_source="InfoCenter", viber_source="Promo"
)


anything = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.text(max_size=40),
    st.lists(st.integers(), max_size=2),
)


@SETTINGS
@given(
    text=st.one_of(st.text(max_size=2000), anything),
    ttl=st.one_of(st.none(), st.integers(-5, 2000), anything),
    source=st.one_of(st.none(), st.text(max_size=20), anything),
    flash=st.booleans(),
)
def test_any_sms_content_is_prepared_or_refused_with_a_validation_error(
    text: Any, ttl: Any, source: Any, flash: bool
) -> None:
    try:
        prepared = _client.prepare(
            "380501234567",
            channels=[Channel.SMS],
            sms=SmsContent(text=text, ttl=ttl, source=source, flash=flash),
        )
    except SmsFlyValidationError as exc:
        assert exc.field
        return
    block = prepared.data["sms"]
    assert isinstance(block["text"], str)
    assert block["text"].strip()


@SETTINGS
@given(
    text=st.text(min_size=1, max_size=1000).filter(str.strip),
    ttl=st.one_of(st.none(), st.integers(1, 1440)),
)
def test_valid_sms_content_is_never_refused(text: str, ttl: int | None) -> None:
    assume("\x00" not in text)
    prepared = _client.prepare(
        "380501234567", channels=[Channel.SMS], sms=SmsContent(text=text, ttl=ttl)
    )
    assert prepared.data["sms"]["text"] == text


@SETTINGS
@given(
    text=st.one_of(st.none(), st.text(max_size=1200)),
    image=st.one_of(st.none(), st.sampled_from(["https://example.com/a.png", "ftp://x", "x"])),
    caption=st.one_of(st.none(), st.text(max_size=40)),
    url=st.one_of(st.none(), st.sampled_from(["https://example.com/", "javascript:alert(1)"])),
)
def test_any_viber_content_is_prepared_or_refused_with_a_validation_error(
    text: str | None, image: str | None, caption: str | None, url: str | None
) -> None:
    content = ViberContent(text=text, image=image, button_caption=caption, button_url=url)
    try:
        prepared = _client.prepare("380501234567", channels=[Channel.VIBER], viber=content)
    except SmsFlyValidationError as exc:
        assert exc.field
        return
    block = prepared.data["viber"]
    # What is sent is one of the combinations SMS-fly allows.
    assert block.get("text") or block.get("image")
    assert ("button" in block) == bool(caption and url)


# -- segments --------------------------------------------------------------------------------

gsm_text = st.text(alphabet=sorted(GSM7_BASIC | GSM7_EXTENSION), max_size=1000)


@SETTINGS
@given(st.one_of(gsm_text, st.text(max_size=1000)))
def test_segment_count_is_consistent(text: str) -> None:
    result = count_segments(text)
    gsm = all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in text)
    assert result.encoding is (Encoding.GSM7 if gsm else Encoding.UCS2)
    if not text:
        assert result.parts == 0
        return
    single = 160 if gsm else 70
    multi = 153 if gsm else 67
    if result.length <= single:
        assert result.parts == 1
    else:
        # Each part holds at most `multi` places, and a part is only started when the
        # next character does not fit: never more parts than needed plus the splits
        # forced by two-place characters at a boundary.
        assert result.parts * multi >= result.length
        assert (result.parts - 1) * (multi - 1) < result.length
    assert 0 <= result.remaining < result.per_part or result.remaining == result.per_part


@SETTINGS
@given(gsm_text, gsm_text)
def test_more_text_never_takes_fewer_parts(a: str, b: str) -> None:
    assert count_segments(a + b).parts >= count_segments(a).parts


# -- status merger ---------------------------------------------------------------------------

statuses = st.sampled_from(list(DeliveryStatus))


@SETTINGS
@given(st.lists(statuses, min_size=1, max_size=12))
def test_a_status_never_moves_back_and_a_final_status_stays(
    reported: list[DeliveryStatus],
) -> None:
    current = DeliveryStatus.QUEUED
    for new in reported:
        moved = advance(current, new)
        assert moved.rank >= current.rank
        if current.is_final and (current, new) != (
            DeliveryStatus.DELIVERED,
            DeliveryStatus.VIEWED,  # the one step after a final status: read on Viber
        ):
            assert moved is current
        current = moved


@SETTINGS
@given(st.lists(st.tuples(st.sampled_from(["viber", "sms"]), statuses), min_size=1, max_size=2))
def test_overall_status_tells_the_truth(channels: list[tuple[str, DeliveryStatus]]) -> None:
    status, via = overall(channels)
    delivered = [name for name, s in channels if s.is_success]
    if delivered:
        assert status.is_success
        assert via in delivered
    else:
        assert via is None
        assert not status.is_success
    if all(s.is_failure for _, s in channels):
        assert status.is_failure


# -- the reply parser ------------------------------------------------------------------------

json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**63), 2**63),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=30),
        st.sampled_from(["DELIVRD", "ACCEPTD", "REFUND", "1.5", "2026-01-01 10:00:00", "sms"]),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(
            st.sampled_from(
                [
                    "success",
                    "date",
                    "data",
                    "error",
                    "code",
                    "description",
                    "messageID",
                    "sms",
                    "viber",
                    "status",
                    "cost",
                    "balance",
                    "date",
                    "list",
                    "x",
                ]
            ),
            children,
            max_size=6,
        ),
    ),
    max_leaves=25,
)

replies = st.one_of(
    json_values,
    st.fixed_dictionaries({"success": st.sampled_from([0, 1, "1", True]), "data": json_values}),
    st.fixed_dictionaries(
        {
            "success": st.just(0),
            "error": st.fixed_dictionaries(
                {
                    "code": st.one_of(st.text(max_size=20), st.integers()),
                    "description": json_values,
                }
            ),
        }
    ),
)


class ReplyingBackend(BaseBackend):
    """Answers every request with one scripted reply."""

    def __init__(self, reply: RawReply) -> None:
        super().__init__(api_url="http://127.0.0.1:9/", timeout=(1.0, 1.0))
        self.reply = reply

    def send(self, body: Mapping[str, Any]) -> RawReply:
        return self.reply


OPERATIONS = {
    "balance": lambda c: c.get_balance(),
    "balance_ext": lambda c: c.get_balance_ext(),
    "sources": lambda c: c.get_sources(),
    "prices": lambda c: c.get_price_list(),
    "send": lambda c: c.send_sms("380501234567", "Hi"),
    "send_viber": lambda c: c.send_viber("380501234567", text="Hi", sms_text="Hi"),
    "status": lambda c: c.get_message_status("FAPI00000000000001"),
}


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
@SETTINGS
@given(
    body=replies,
    http_status=st.sampled_from([200, 200, 200, 400, 401, 403, 404, 422, 429, 500, 502, 503]),
    raw=st.booleans(),
)
def test_any_reply_gives_a_result_or_an_smsfly_error(
    operation: str, body: Any, http_status: int, raw: bool
) -> None:
    """Whatever comes back — any JSON, any status, decoded or as text — the caller gets a
    result or an SmsFlyError subclass: never a KeyError, TypeError or the like."""
    if raw:
        reply = RawReply(http_status=http_status, body=None, text=json.dumps(body)[:500])
    else:
        reply = RawReply(http_status=http_status, body=body)
    client = SmsFlyClient("k" * 36, backend=ReplyingBackend(reply), sms_source="InfoCenter")
    try:
        OPERATIONS[operation](client)
    except SmsFlyError as exc:
        assert "k" * 36 not in str(exc)
        assert "k" * 36 not in repr(exc)
