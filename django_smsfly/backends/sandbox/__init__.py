"""The sandbox: an in-process simulator of SMS-fly's JSON API v2.04.

Point the app at it with ``SMSFLY = {"BACKEND": "django_smsfly.backends.sandbox.SandboxBackend"}``
and nothing leaves the process: requests are validated as SMS-fly validates them, balances are
debited, message ids are issued and delivery statuses move forward with time. Faults (HTTP 429,
403, 422, 5xx, API error codes, timeouts, dropped connections, broken, malformed or huge
replies) can be injected to rehearse failures.
:mod:`django_smsfly.backends.sandbox_server` serves the same simulator over real HTTP.

Options (``SMSFLY["BACKEND_OPTIONS"]``, or keyword arguments of :class:`Simulator`):

``api_key``
    The key requests must carry; ``None`` (default) accepts any non-empty key.
``balance`` / ``viber_balance``
    Starting SMS and Viber balances (default ``1000.000`` and ``500.000``).
``speed``
    How much faster than real time statuses move (``10`` = ten times faster; 0.01–10000).
``latency``
    Seconds to sleep on every request, to make benchmarks look like a network (default 0).
``rate_limit`` / ``burst``
    Requests per second allowed (token bucket holding ``burst`` tokens, default
    ``rate_limit``); more are refused with HTTP 429. Off by default.
``sources``
    Sender names per channel, e.g. ``{"sms": ["MyShop"]}``; channels not given keep the
    defaults (SMS ``InfoCenter``, ``SMS-fly``; Viber ``Promo``, ``SMS-fly``).
``prices``
    ``channel -> mcc -> mnc -> price`` replacing the built-in prices of the channels given
    (Ukraine ``255`` and Poland ``260``; other countries have no route: ``INVROUTE``).
``test_numbers``
    Whether the built-in test numbers below apply (default ``True``).
``state_file``
    A path through which the processes of one site share the account (balances and
    refunds still due); ``None`` (the default): each process has its own.

Test numbers: any Ukrainian number (``380`` + 9 digits) ending in

======== =========================================================================
``0001`` every channel ends ``UNDELIV`` (:attr:`Outcome.UNDELIVERED`)
``0002`` Viber fails, the SMS fallback is delivered (:attr:`Outcome.NO_VIBER`)
``0003`` never delivered; each channel ends ``EXPIRED`` after its ttl (:attr:`Outcome.EXPIRED`)
``0004`` SENDMESSAGE is refused with ``INVRECIPIENT`` (:attr:`Outcome.REJECTED`)
``0005`` every channel is ``STOPED`` (:attr:`Outcome.STOPPED`)
``0006`` SENDMESSAGE is refused with ``ERRPHONES``: the number is on the stop list
         (:attr:`Outcome.STOP_LISTED`)
======== =========================================================================

Every other number is delivered. :data:`.TEST_NUMBERS` lists one example of each.

Timeline, in seconds after the send divided by ``speed``: SMS ``ACCEPTD`` → ``INPROGRESS``
(1) → ``SENT`` (3) → ``DELIVRD`` (6); Viber ``ACCEPTD`` → ``SENT`` (2) → ``DELIVRD`` (5) →
``VIEWED`` (15). A fallback channel waits as ``ACCEPTD`` and starts when the channel before it
fails (``UNDELIV`` at 5 s, or ``EXPIRED`` after its ttl); once a channel is delivered, the
channels after it end ``REFUND`` and their cost is credited back. ``STOPED`` comes at 1 s.

A message's status is a pure function of its id and the time: the id encodes when it was
sent, its channels, ttls, outcome and the speed (see :class:`MessagePlan`), so any process
running a sandbox answers GETMESSAGESTATUS for ids another process issued.

Money: an SMS costs the recipient network's price times its parts
(:func:`~django_smsfly.segments.count_segments`) and is taken from the SMS balance (the
one GETBALANCE reports); a Viber message costs a flat price from the Viber balance.
Viber replies carry a ``label`` (:func:`viber_label`). A ``ttl`` left out means 1440
minutes.
"""

# The package's layout, one part per module; import from the package itself, which is
# the API (the modules may move things between them):
#   backend    SandboxBackend, the in-process transport
#   simulator  Simulator, the thread-safe face that runs each request; get_simulator()
#   state      what a simulator remembers: options, balances, refunds, rules, records
#   clock      the simulator's time, frozen and advanced by tests
#   actions    the request envelope and one handler per API action
#   plan       MessagePlan: the status timeline carried in a message id
#   outcomes   Outcome, the test numbers and the rules that choose outcomes
#   faults     Fault, faults injected for coming requests, the rate limit's token bucket
#   replies    SimulatedReply, and the refusals and spoiled replies faults become
#   options    SandboxOptions, their defaults and normalization
#   wire       channel names, money, dates, error replies and JSON bodies, as on the wire

from __future__ import annotations

from django_smsfly.backends.sandbox.actions import viber_label
from django_smsfly.backends.sandbox.backend import SandboxBackend
from django_smsfly.backends.sandbox.faults import (
    DEEP_JSON_DEPTH,
    DEFAULT_HUGE_SIZE,
    DEFAULT_TIMEOUT_DELAY,
    UNLISTED_STATUS,
    Fault,
)
from django_smsfly.backends.sandbox.options import SandboxOptions
from django_smsfly.backends.sandbox.outcomes import TEST_NUMBERS, Outcome
from django_smsfly.backends.sandbox.plan import MessagePlan
from django_smsfly.backends.sandbox.replies import SimulatedReply
from django_smsfly.backends.sandbox.simulator import Simulator, get_simulator
from django_smsfly.backends.sandbox.state import RecordedRequest, SentMessage
from django_smsfly.backends.sandbox.wire import API_PATH

__all__ = [
    "API_PATH",
    "DEEP_JSON_DEPTH",
    "DEFAULT_HUGE_SIZE",
    "DEFAULT_TIMEOUT_DELAY",
    "TEST_NUMBERS",
    "UNLISTED_STATUS",
    "Fault",
    "MessagePlan",
    "Outcome",
    "RecordedRequest",
    "SandboxBackend",
    "SandboxOptions",
    "SentMessage",
    "SimulatedReply",
    "Simulator",
    "get_simulator",
    "viber_label",
]
