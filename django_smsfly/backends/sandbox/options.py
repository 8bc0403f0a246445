"""The sandbox's options: their types, defaults, and how each given value is checked and
normalized (see :mod:`django_smsfly.backends.sandbox` for what each one does)."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, TypedDict, cast

from django_smsfly.backends.sandbox.wire import CHANNELS, MONEY, SMS, VIBER

__all__ = [
    "OPTION_NAMES",
    "SandboxOptions",
    "decimal_option",
    "default_options",
    "normalize_option",
    "over_defaults",
    "pop_options",
]


class SandboxOptions(TypedDict, total=False):
    """Options of :class:`Simulator` (and of :class:`SandboxBackend` via ``BACKEND_OPTIONS``)."""

    api_key: str | None
    balance: Decimal | str | int | float
    viber_balance: Decimal | str | int | float
    speed: float
    latency: float
    rate_limit: float | None
    burst: int | None
    sources: Mapping[str, Sequence[str]]
    prices: Mapping[str, Mapping[str, Mapping[str, Decimal | str | int | float]]]
    test_numbers: bool
    state_file: str | os.PathLike[str] | None


_DEFAULT_SOURCES: dict[str, tuple[str, ...]] = {
    SMS: ("InfoCenter", "SMS-fly"),
    VIBER: ("Promo", "SMS-fly"),
}

# Prices per segment (SMS) or per message (Viber), mcc -> mnc -> price, in the account's
# currency. "99" stands for the smaller Ukrainian networks.
_DEFAULT_PRICES: dict[str, dict[str, dict[str, str]]] = {
    SMS: {
        "255": {"01": "0.479", "03": "0.478", "06": "0.477", "07": "0.476", "99": "0.495"},
        "260": {"01": "0.210", "02": "0.210", "03": "0.205", "06": "0.199"},
    },
    VIBER: {
        "255": dict.fromkeys(("01", "03", "06", "07", "99"), "0.750"),
        "260": dict.fromkeys(("01", "02", "03", "06"), "0.420"),
    },
}


def default_options() -> dict[str, Any]:
    """Every option at its default, normalized (a new copy each call)."""
    return {
        "api_key": None,
        "balance": Decimal("1000.000"),
        "viber_balance": Decimal("500.000"),
        "speed": 1.0,
        "latency": 0.0,
        "rate_limit": None,
        "burst": None,
        "sources": dict(_DEFAULT_SOURCES),
        "prices": {
            channel: {
                mcc: {mnc: Decimal(p) for mnc, p in by_mnc.items()}
                for mcc, by_mnc in table.items()
            }
            for channel, table in _DEFAULT_PRICES.items()
        },
        "test_numbers": True,
        "state_file": None,
    }


def decimal_option(name: str, value: object) -> Decimal:
    """``value`` as an amount of money: a finite number >= 0 with three decimal places."""
    if isinstance(value, bool) or not isinstance(value, Decimal | int | float | str):
        raise TypeError(f"{name} must be a number, not {type(value).__name__}")
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"{name}: {value!r} is not a number") from None
    if not number.is_finite() or number < 0:
        raise ValueError(f"{name} must be a finite number >= 0")
    return number.quantize(MONEY, rounding=ROUND_HALF_UP)


def _float_option(name: str, value: object, low: float, high: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise TypeError(f"{name} must be a number, not {type(value).__name__}")
    number = float(value)
    if not low <= number <= high:
        raise ValueError(f"{name} must be between {low} and {high}")
    return number


def _api_key(value: object, current: Mapping[str, Any]) -> str | None:
    if value is not None and (not isinstance(value, str) or not value):
        raise ValueError("api_key must be a non-empty string or None")
    return value


def _burst(value: object, current: Mapping[str, Any]) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError("burst must be an integer >= 1 or None")
    return value


def _sources(value: object, current: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    # Channels not given keep the sender names they have.
    sources = dict(current["sources"])
    for channel, names in _channel_map("sources", value).items():
        if isinstance(names, str) or not all(isinstance(n, str) for n in names):
            raise TypeError(f"sources[{channel!r}] must be a list of sender names")
        sources[channel] = tuple(names)
    return sources


def _prices(value: object, current: Mapping[str, Any]) -> dict[str, Any]:
    # Channels not given keep their price tables; a channel given is replaced whole.
    prices = dict(current["prices"])
    for channel, table in _channel_map("prices", value).items():
        prices[channel] = {
            str(mcc): {str(mnc): decimal_option("price", p) for mnc, p in by_mnc.items()}
            for mcc, by_mnc in table.items()
        }
    return prices


def _state_file(value: object) -> str | None:
    """``None``, or the path of the file the account is shared through, as a string."""
    if value is None:
        return None
    if not isinstance(value, str | os.PathLike) or not str(value):
        raise TypeError("state_file must be a path or None")
    return os.fspath(value)


def _channel_map(name: str, value: object) -> Mapping[str, Any]:
    if not isinstance(value, Mapping) or not set(value) <= set(CHANNELS):
        raise ValueError(f"{name} must map 'sms' and/or 'viber' to values")
    return value


# One normalizer per option: (value given, options so far) -> the value kept.
_NORMALIZERS: dict[str, Callable[[Any, Mapping[str, Any]], Any]] = {
    "api_key": _api_key,
    "balance": lambda value, _: decimal_option("balance", value),
    "viber_balance": lambda value, _: decimal_option("viber_balance", value),
    "speed": lambda value, _: round(_float_option("speed", value, 0.01, 10_000.0), 2),
    "latency": lambda value, _: _float_option("latency", value, 0.0, 60.0),
    "rate_limit": lambda value, _: (
        None if value is None else _float_option("rate_limit", value, 0.001)
    ),
    "burst": _burst,
    "sources": _sources,
    "prices": _prices,
    "test_numbers": lambda value, _: bool(value),
    "state_file": lambda value, _: _state_file(value),
}

#: The name of every option.
OPTION_NAMES = frozenset(_NORMALIZERS)


def normalize_option(name: str, value: Any, current: Mapping[str, Any]) -> Any:
    """The value option ``name`` keeps when given ``value``; ``current`` holds the
    options so far (tables given for some channels keep the others' entries).

    Raises :exc:`TypeError` or :exc:`ValueError` for a value the option cannot take.
    """
    return _NORMALIZERS[name](value, current)


def pop_options(kwargs: dict[str, Any]) -> SandboxOptions:
    """Take the sandbox's options out of ``kwargs``, leaving every other argument."""
    options = {name: kwargs.pop(name) for name in list(kwargs) if name in OPTION_NAMES}
    return cast("SandboxOptions", options)


def over_defaults(options: SandboxOptions) -> SandboxOptions:
    """Every option: those given, and the defaults for the rest.

    A ``sources`` or ``prices`` table given for some channels keeps the defaults of the
    others.
    """
    full = default_options()
    given: Mapping[str, Any] = options
    for name, value in given.items():
        is_table = name in {"sources", "prices"} and isinstance(value, Mapping)
        full[name] = {**full[name], **value} if is_table else value
    return cast("SandboxOptions", full)
