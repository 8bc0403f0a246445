"""Reading a reply: its body within a size cap, then decoded into a :class:`~..base.RawReply`.

Every HTTP status becomes a reply; judging what it means (an API error, a refusal) is
the client's work. What is checked here is only what transport can tell: a body larger
than the cap is refused before it is all read, and a body that is not JSON is kept as
text, scrubbed of the API key, for error messages.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Mapping
from typing import Any

import requests

from django_smsfly.backends.base import TEXT_LIMIT, RawReply, redact_and_cut, redact_text
from django_smsfly.exceptions import SmsFlyBadReply

#: Default cap on a reply body; SMS-fly's largest replies (price lists) are a few KiB.
DEFAULT_MAX_REPLY_BYTES = 4 * 1024 * 1024

_CHUNK_SIZE = 64 * 1024
_CHARSET_RE = re.compile(r"charset\s*=\s*[\"']?([\w.:-]+)", re.IGNORECASE)


def read_body(
    response: requests.Response, *, limit: int, action: str, host: str, key: str | None
) -> bytes:
    """The whole (decompressed) body, refusing to hold more than ``limit`` bytes.

    Raises :class:`~django_smsfly.exceptions.SmsFlyBadReply` for a larger body: as soon
    as its ``Content-Length`` says so, or else once more than ``limit`` bytes came in.
    """
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(action, host, key, limit, response.status_code)
    buffer = bytearray()
    for chunk in response.iter_content(chunk_size=_CHUNK_SIZE):
        buffer += chunk
        if len(buffer) > limit:
            raise _too_large(action, host, key, limit, response.status_code)
    return bytes(buffer)


def make_reply(status: int, headers: Mapping[str, str], raw: bytes, key: str | None) -> RawReply:
    """The reply as backends return it: the JSON body decoded, or else its text."""
    lower_headers = {name.lower(): value for name, value in headers.items()}
    body: Any = None
    text = ""
    if raw.strip():
        try:
            # JSON is decoded whatever the Content-Type says: PHP servers often label it
            # text/html. json.loads on bytes detects UTF-8/16/32 and a UTF-8 BOM.
            body = json.loads(raw)
        except (ValueError, RecursionError):  # JSONDecodeError, UnicodeDecodeError, [[[[...
            body = None
    if body is None and raw:
        encoding = _charset(lower_headers.get("content-type", ""))
        # The whole body (at most max_reply_bytes) is decoded and scrubbed before it is
        # cut: a key echoed across the cut would otherwise leave its start behind.
        text = redact_and_cut(raw.decode(encoding, errors="replace"), key, TEXT_LIMIT)
    return RawReply(http_status=status, body=body, text=text, headers=lower_headers)


def _too_large(
    action: str, host: str, key: str | None, limit: int, http_status: int
) -> SmsFlyBadReply:
    message = f"{action}: the reply from {host} is larger than {limit} bytes"
    return SmsFlyBadReply(redact_text(message, key), http_status=http_status, action=action)


def _charset(content_type: str) -> str:
    match = _CHARSET_RE.search(content_type)
    if match:
        try:
            return codecs.lookup(match.group(1)).name
        except LookupError:
            pass
    return "utf-8"
