"""SMS segment counting: GSM-7 160/153, UCS-2 70/67, two-place characters."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from django_smsfly.segments import GSM7_BASIC, GSM7_EXTENSION, Encoding, count_segments


@pytest.mark.parametrize(
    ("text", "encoding", "length", "parts"),
    [
        ("", Encoding.GSM7, 0, 0),
        ("Hello", Encoding.GSM7, 5, 1),
        ("a" * 160, Encoding.GSM7, 160, 1),
        ("a" * 161, Encoding.GSM7, 161, 2),
        ("a" * 306, Encoding.GSM7, 306, 2),
        ("a" * 307, Encoding.GSM7, 307, 3),
        ("€" * 80, Encoding.GSM7, 160, 1),  # extension characters take two places
        ("€" * 81, Encoding.GSM7, 162, 2),
        ("Привіт", Encoding.UCS2, 6, 1),
        ("ї" * 70, Encoding.UCS2, 70, 1),
        ("ї" * 71, Encoding.UCS2, 71, 2),
        ("ї" * 134, Encoding.UCS2, 134, 2),
        ("ї" * 135, Encoding.UCS2, 135, 3),
        ("Hi 😀", Encoding.UCS2, 5, 1),  # an emoji is a surrogate pair
        ("Code 1234, ваш код", Encoding.UCS2, 18, 1),  # one Cyrillic letter: all UCS-2
    ],
)
def test_counts(text: str, encoding: Encoding, length: int, parts: int) -> None:
    result = count_segments(text)
    assert (result.encoding, result.length, result.parts) == (encoding, length, parts)


def test_a_two_place_character_is_not_split_across_parts() -> None:
    # 152 letters then "€": the euro sign's two places do not fit part one's last place.
    text = "a" * 152 + "€" + "a" * 10
    result = count_segments(text)
    assert result.parts == 2
    assert result.remaining == 153 - (2 + 10)


def test_remaining_in_a_single_part() -> None:
    assert count_segments("Hello").remaining == 155
    assert count_segments("Привіт").remaining == 64


gsm_text = st.text(alphabet=sorted(GSM7_BASIC | GSM7_EXTENSION), max_size=700)


@given(gsm_text)
def test_gsm_parts_bound_the_length(text: str) -> None:
    result = count_segments(text)
    assert result.encoding is Encoding.GSM7
    if result.length <= 160:
        assert result.parts == (1 if text else 0)
    else:
        # Each part holds at most 153 places and, but for a two-place character that
        # did not fit, at least 152.
        assert 152 * (result.parts - 1) < result.length <= 153 * result.parts


@given(st.text(max_size=300))
def test_any_text_is_counted_without_error(text: str) -> None:
    result = count_segments(text)
    assert result.parts >= (1 if text else 0)
    assert 0 <= result.remaining <= result.per_part
