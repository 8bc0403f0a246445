"""The HTTP backend: carries request bodies to SMS-fly over HTTPS with :mod:`requests`.

One :class:`requests.Session` per backend instance keeps connections alive and pooled
across threads. Every HTTP status is *returned* as a :class:`~.base.RawReply`; only a
missing reply raises, with a verdict that says whether SMS-fly may have acted:

* :class:`~django_smsfly.exceptions.SmsFlyConnectionError` (``NOT_SENT``) — no
  connection was made: refused, DNS failure, connect timeout, TLS handshake failure.
* :class:`~django_smsfly.exceptions.SmsFlyTimeout` (``UNKNOWN``) — the request went out
  and no reply came in time.
* :class:`~django_smsfly.exceptions.SmsFlyTransportError` (``UNKNOWN``) — the connection
  broke after the request went out (reset, closed, truncated reply).
* :class:`~django_smsfly.exceptions.SmsFlyBadReply` (``UNKNOWN``) — the reply was too
  large or could not be decoded.

Retries happen only where repeating cannot duplicate anything: read-only actions are
retried after any transport failure and after HTTP 429/502/503/504; every other action
(``SENDMESSAGE``) only when the request certainly did not arrive (a failed connection or
an HTTP 429).

Every line it logs goes to the ``django_smsfly.http`` logger.
"""

# The package's layout, one concept per module; import from the package itself, which
# is the API (the modules may move things between them):
#   backend   HTTPBackend: the pooled session, and send(), one POST per attempt
#   retrying  RetryPolicy: which failures are repeated, backoff and Retry-After
#   replies   reading a reply within its size cap and decoding it into a RawReply
#   failures  a requests/urllib3/socket error turned into one of ours, with its verdict
#   options   checks of the constructor's arguments (URL, timeouts, counts)

from __future__ import annotations

from django_smsfly.backends.http.backend import HTTPBackend
from django_smsfly.backends.http.replies import DEFAULT_MAX_REPLY_BYTES
from django_smsfly.backends.http.retrying import (
    RETRY_STATUSES_ANY,
    RETRY_STATUSES_READ_ONLY,
)

__all__ = [
    "DEFAULT_MAX_REPLY_BYTES",
    "RETRY_STATUSES_ANY",
    "RETRY_STATUSES_READ_ONLY",
    "HTTPBackend",
]
