"""What every backend provides: carry one API request body and bring back the reply.

A backend knows nothing of actions' meaning beyond what transport needs (which actions
are safe to repeat). It receives the complete request body the client built — the same
dict whichever backend is used — and returns the HTTP status with the decoded JSON
reply, or raises a :class:`~django_smsfly.exceptions.SmsFlyTransportError`
whose verdict says whether the request may have reached SMS-fly.

HTTP error statuses are *returned*, not raised: the client turns every reply into a
result or an exception in one place. A backend only raises when there is no reply at all.
"""

from __future__ import annotations

import abc
import datetime as dt
import email.utils
import functools
import html
import json
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import quote, quote_plus

#: Actions that only read: repeating one can never change anything on the server.
READ_ONLY_ACTIONS = frozenset(
    {
        "GETBALANCE",
        "GETBALANCEEXT",
        "GETSOURCES",
        "GETPRICELIST",
        "GETPRICE",
        "GETMESSAGESTATUS",
    }
)


@dataclass(frozen=True)
class RawReply:
    """One reply as a backend received it."""

    http_status: int
    #: The decoded JSON body (normally a dict with ``success``); ``None`` when the body
    #: was empty or not JSON.
    body: Any
    #: When :attr:`body` is ``None``: the start of the raw body (at most 500 characters),
    #: for error messages. Empty otherwise.
    text: str = ""
    #: Response headers that matter to callers (e.g. ``Retry-After``), lower-case keys.
    headers: Mapping[str, str] = field(default_factory=dict)


class BaseBackend(abc.ABC):
    """Base class for backends. Subclasses implement :meth:`send`.

    Backends are thread-safe and long-lived: one instance serves every request of a
    client, so connection pools and simulated state are shared.

    A backend declares what it is through class attributes, so callers ask it instead
    of guessing from its dotted path.
    """

    #: Whether requests need a real API key (the sandbox accepts any, or none).
    requires_api_key: ClassVar[bool] = True
    #: Whether messages sent through this backend reach real phones.
    reaches_phones: ClassVar[bool] = True

    def __init__(
        self,
        *,
        api_url: str = "",
        timeout: tuple[float, float] = (5.0, 30.0),
        user_agent: str = "",
        max_retries: int = 3,
        retry_backoff: float = 0.5,
        max_retry_wait: float = 30.0,
        mask_recipients: bool = False,
    ) -> None:
        #: Where requests go (the HTTP backend) or what the sandbox pretends to be.
        self.api_url = api_url
        #: (connect, read) timeouts in seconds.
        self.timeout = timeout
        self.user_agent = user_agent
        #: How many times a request that is safe to repeat may be repeated.
        self.max_retries = max_retries
        #: Seconds before the first retry, doubled for each further one.
        self.retry_backoff = retry_backoff
        #: Cap on a single wait, including a server's ``Retry-After``.
        self.max_retry_wait = max_retry_wait
        #: Whether log lines show recipients' numbers masked (``MASK_RECIPIENTS``).
        self.mask_recipients = mask_recipients

    @abc.abstractmethod
    def send(self, body: Mapping[str, Any]) -> RawReply:
        """Carry one request body (``{"auth": ..., "action": ..., "data": ...}``)."""

    def close(self) -> None:  # noqa: B027 - optional hook, most backends hold nothing
        """Release pooled connections or other resources."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.api_url or 'in-process'}>"


REDACTED = "***"

#: Digits shown at each end of a masked number.
KEEP_START = 6
KEEP_END = 2


def mask_recipient(number: str) -> str:
    """``380501234567`` → ``380501****67``; short or odd values are masked whole."""
    text = str(number)
    if len(text) <= KEEP_START + KEEP_END:
        return "*" * len(text)
    return text[:KEEP_START] + "*" * (len(text) - KEEP_START - KEEP_END) + text[-KEEP_END:]


def mask_body(body: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a request body whose ``data.recipient`` is masked (for log lines)."""
    safe = dict(body)
    data = safe.get("data")
    if isinstance(data, Mapping) and "recipient" in data:
        safe["data"] = {**data, "recipient": mask_recipient(str(data["recipient"]))}
    return safe


def redact_body(body: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a request body safe to log: the API key replaced by ``***``."""
    safe = dict(body)
    auth = safe.get("auth")
    if isinstance(auth, Mapping):
        safe["auth"] = {k: (REDACTED if k == "key" else v) for k, v in auth.items()}
    return safe


#: How much of a reply's text is kept for error messages (characters).
TEXT_LIMIT = 500

#: The shortest start of the secret that :func:`redact_and_cut` removes from the end of
#: a text. Shorter endings match ordinary text by chance (one in 62 for one character of
#: a random key) and tell little: three characters are under 18 bits of a 36-character key.
MIN_SECRET_PIECE = 4


def redact_text(text: str, secret: str | None) -> str:
    """``text`` with every occurrence of ``secret`` replaced by ``***``.

    Also in the forms a server may echo it in (see :func:`_written_forms`) and in any
    case: an echo may change it (an error code is upper-cased), and percent-encoding is
    written ``%2f`` as well as ``%2F``.
    """
    if secret:
        text = _secret_pattern(secret).sub(REDACTED, text)
    return text


def redact_and_cut(text: str, secret: str | None, limit: int = TEXT_LIMIT) -> str:
    """The first ``limit`` characters of ``text``, with ``secret`` scrubbed out first.

    The one way to keep the start of a text that came from a server. Scrubbing must come
    first: a cut across the secret leaves its start behind, which scrubbing no longer
    recognises. ``text`` may itself be such a cut, made by code that did not scrub (a
    backend's :attr:`RawReply.text`), so a result that ends in the first
    :data:`MIN_SECRET_PIECE` or more characters of the secret loses them too.
    """
    text = redact_text(text, secret)[:limit]
    if secret:
        for size in range(min(len(secret) - 1, len(text)), MIN_SECRET_PIECE - 1, -1):
            if text[-size:].casefold() == secret[:size].casefold():
                return text[:-size]
    return text


def _written_forms(secret: str) -> set[str]:
    """``secret`` as is and as a server may echo it: percent-encoded (a query string, a
    form), JSON-escaped (PHP's ``json_encode`` also writes ``/`` as ``\\/``) and
    HTML-escaped.

    A key of letters, digits and ``-._~`` reads the same in every form, so for such a
    key this is the key alone; the other forms are here because ``API_KEY`` takes any
    string. (A JSON reply that decodes is scrubbed after decoding, in its own form.)
    """
    in_json = json.dumps(secret)[1:-1]
    return {
        secret,
        quote(secret, safe=""),
        quote_plus(secret, safe=""),
        in_json,
        in_json.replace("/", "\\/"),
        json.dumps(secret, ensure_ascii=False)[1:-1],
        html.escape(secret),
    }


@functools.lru_cache(maxsize=16)
def _secret_pattern(secret: str) -> re.Pattern[str]:
    # Longest form first, so that a form containing another is replaced whole.
    forms = sorted(_written_forms(secret), key=len, reverse=True)
    return re.compile("|".join(re.escape(form) for form in forms), re.IGNORECASE)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return max(0.0, (when - dt.datetime.now(dt.timezone.utc)).total_seconds())


# -- sensitive texts ------------------------------------------------------------------------
#
# A message sent with ``sensitive=True`` (a one-time code) may have its text only in the
# request body. While such a request is made, the client names its secrets here, and
# everything that writes a text down — the HTTP backend's log lines, replies and errors
# the client reads — conceals them. A context variable rather than an argument: every
# layer between the client and the log line sees it without passing it along, and it
# belongs to this thread (or task) alone.

#: A word that holds a digit: what a secret in a text looks like (``123456``, ``A7X9``).
SECRET_WORD = re.compile(r"\w*\d\w*")
#: What stands for each character of a concealed word.
MASK = "\u2022"

_concealed: ContextVar[tuple[str, ...]] = ContextVar("django_smsfly_concealed", default=())


def mask_text(text: str) -> str:
    """``Your code: 123456`` → ``Your code: ••••••``: every word holding a digit masked.

    What a sensitive message's record keeps: enough for support to see which message
    it was, not enough to use it.
    """
    return SECRET_WORD.sub(lambda match: MASK * len(match.group()), text)


def secret_words(text: str) -> tuple[str, ...]:
    """The secrets of a sensitive text: its words that hold a digit, else the whole text."""
    words = tuple(dict.fromkeys(SECRET_WORD.findall(text)))
    return words or ((text,) if text.strip() else ())


@contextmanager
def concealing(texts: Iterable[str]) -> Iterator[None]:
    """Conceal the secrets of ``texts`` in everything written down inside the block."""
    secrets = tuple(word for text in texts for word in secret_words(text))
    token = _concealed.set(_concealed.get() + secrets)
    try:
        yield
    finally:
        _concealed.reset(token)


def concealed() -> tuple[str, ...]:
    """The secrets being concealed now (empty outside :func:`concealing`)."""
    return _concealed.get()


def conceal(text: str) -> str:
    """``text`` with every concealed secret masked (no-op outside :func:`concealing`)."""
    for secret in concealed():
        text = text.replace(secret, MASK * len(secret))
    return text


def conceal_body(body: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a request body safe to log while secrets are concealed: the message
    texts masked (and any secret elsewhere, e.g. in a Viber button's caption)."""
    safe = dict(body)
    data = safe.get("data")
    if not concealed() or not isinstance(data, Mapping):
        return safe
    safe["data"] = {
        name: {k: _concealed_value(k, v) for k, v in value.items()}
        if isinstance(value, Mapping)
        else value
        for name, value in data.items()
    }
    return safe


def _concealed_value(name: str, value: Any) -> Any:
    if not isinstance(value, str):
        return value
    return conceal(mask_text(value) if name == "text" else value)
