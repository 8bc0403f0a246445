"""The limits on sending codes, and the counters every process shares to keep them.

Before a code is sent, :func:`admit` checks these limits, in this order (the reason a
refusal names, and the setting):

1. ``cooldown``: the last code to the number for the same purpose was sent less than
   ``RESEND_COOLDOWN`` seconds ago;
2. ``recipient``: ``MAX_PER_RECIPIENT_PER_HOUR`` codes went to the number in the last
   hour, whatever their purpose;
3. ``ip``: ``MAX_PER_IP_PER_HOUR`` codes were asked for from the client's address (an
   IPv6 client: its /64 network) in the last hour;
4. ``daily``: ``MAX_PER_DAY`` codes went out today, for the whole site;
5. ``spend``: their estimated cost today and this code's would pass
   ``DAILY_SPEND_LIMIT``.

Only the cooldown is per purpose: a bot that varies the purpose still meets every other
limit. A refused request takes nothing from any limit (it is recorded for the fraud
guard page instead), so a bot cannot lock the site out by asking; what it asks for
with the number of somebody else still counts against that number.

Where the counts live:

* **A shared cache** — ``RATE_LIMIT_CACHE``, else the ``default`` cache, when it is
  one every process reaches (Redis, Memcached, the database cache...): each request
  takes its place with the cache's atomic operations (``add`` for the cooldown,
  ``incr`` for the counts), so two requests arriving together cannot both take the last
  place. Hourly limits are counted in one-minute buckets over the last 60 (a sliding
  hour); the daily ones per day of the site's time zone.
* **The database** — when that cache is kept in each process (the local-memory or the
  dummy cache, so a count there would be one process's), or when it fails: the
  limits count the :class:`~django_smsfly.models.Verification` rows, which every
  process shares. Exact, but a count is read before the row is written, so requests
  arriving at the same instant may each pass a limit before seeing the others.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, Decimal
from typing import Protocol

from django.core.cache import BaseCache, caches
from django.core.cache.backends.dummy import DummyCache
from django.core.cache.backends.locmem import LocMemCache
from django.db.models import Sum
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.utils.translation import ngettext

from django_smsfly.conf import smsfly_settings
from django_smsfly.exceptions import SmsFlyError, Verdict
from django_smsfly.models import Verification
from django_smsfly.verification.config import VerificationConfig

logger = logging.getLogger("django_smsfly")

Refusal = Verification.Refusal

HOUR = dt.timedelta(hours=1)
#: The cache counts an hour in buckets this long: a sliding hour, to the minute.
BUCKET_SECONDS = 60
#: Money is counted in the cache in these units (the cost column's precision).
COST_UNIT = Decimal("0.0001")


class Throttled(SmsFlyError):
    """A limit refused to send a code; nothing was sent. Try again in :attr:`retry_after`.

    :attr:`reason` names the limit (a :class:`~django_smsfly.models.Verification.Refusal`
    value: ``cooldown``, ``recipient``, ``ip``, ``daily``, ``spend``). The message says
    only when to try again, whatever the limit, so it can be shown to the user as it is.
    """

    default_code = "THROTTLED"
    verdict = Verdict.NOT_SENT
    transient = True

    def __init__(self, reason: str, retry_after: int) -> None:
        super().__init__(
            ngettext(
                "Too many codes were asked for. Try again in %(seconds)d second.",
                "Too many codes were asked for. Try again in %(seconds)d seconds.",
                retry_after,
            )
            % {"seconds": retry_after}
        )
        #: Which limit refused (a ``Verification.Refusal`` value).
        self.reason = str(reason)
        #: Whole seconds (at least 1) until a request may pass this limit again.
        self.retry_after = retry_after

    def __repr__(self) -> str:
        return f"Throttled(reason={self.reason!r}, retry_after={self.retry_after})"


@dataclass(frozen=True)
class Ask:
    """A request for a code, as the limits see it."""

    recipient: str
    purpose: str
    #: :func:`~django_smsfly.verification.clientip.network_of` the client; ``""``
    #: without a request.
    network: str
    now: dt.datetime
    #: The estimated cost, when ``DAILY_SPEND_LIMIT`` is set.
    cost: Decimal | None = None


@dataclass
class Ticket:
    """The places a request took in the counters: given back if its code is not sent."""

    undo: list[Callable[[], object]] = field(default_factory=list)

    def release(self) -> None:
        """Give every place back (the send failed before a request was made)."""
        for step in reversed(self.undo):
            try:
                step()
            except Exception:  # a counter left one too high errs on the safe side
                logger.warning("A verification counter could not be given back.", exc_info=True)
        self.undo.clear()


class Counters(Protocol):
    """Where the limits are counted."""

    def admit(self, ask: Ask, config: VerificationConfig) -> Ticket:
        """Take a place under every limit, or raise :class:`Throttled` taking none."""
        ...


def retry_seconds(wait: dt.timedelta | float) -> int:
    """A wait as the whole seconds to tell the user: rounded up, at least 1."""
    seconds = wait.total_seconds() if isinstance(wait, dt.timedelta) else wait
    return max(1, math.ceil(seconds))


def day_of(now: dt.datetime) -> tuple[dt.date, dt.datetime, dt.datetime]:
    """``now``'s day, its start and the next day's start, in the site's time zone
    (``TIME_ZONE``, whatever zone a request activated): the day the daily limits count."""
    zone = timezone.get_default_timezone()
    day = timezone.localtime(now, zone).date()
    start = timezone.make_aware(dt.datetime.combine(day, dt.time()), zone)
    end = timezone.make_aware(dt.datetime.combine(day + dt.timedelta(days=1), dt.time()), zone)
    return day, start, end


# -- in the database ------------------------------------------------------------------------


class DatabaseCounters:
    """The limits counted over the :class:`~django_smsfly.models.Verification` rows."""

    def admit(self, ask: Ask, config: VerificationConfig) -> Ticket:
        sent = Verification.objects.filter(refusal="")
        now = ask.now
        if config.resend_cooldown:
            last = (
                sent.filter(recipient=ask.recipient, purpose=ask.purpose)
                .order_by("-created_at")
                .values_list("created_at", flat=True)
                .first()
            )
            if last is not None and last + config.resend_cooldown > now:
                raise Throttled(
                    Refusal.COOLDOWN, retry_seconds(last + config.resend_cooldown - now)
                )
        hourly = [
            (Refusal.RECIPIENT, {"recipient": ask.recipient}, config.max_per_recipient_per_hour)
        ]
        if ask.network:
            hourly.append(
                (Refusal.IP, {"client_network": ask.network}, config.max_per_ip_per_hour)
            )
        for reason, scope, limit in hourly:
            if limit is None:
                continue
            # The newest `limit` codes of the hour: with that many, the oldest of them
            # must leave the hour first.
            recent = list(
                sent.filter(**scope, created_at__gt=now - HOUR)
                .order_by("-created_at")
                .values_list("created_at", flat=True)[:limit]
            )
            if len(recent) >= limit:
                raise Throttled(reason, retry_seconds(recent[-1] + HOUR - now))
        _day, start, end = day_of(now)
        today = sent.filter(created_at__gte=start)
        if config.max_per_day is not None and today.count() >= config.max_per_day:
            raise Throttled(Refusal.DAILY, retry_seconds(end - now))
        if config.daily_spend_limit is not None:
            spent = today.aggregate(spent=Sum("cost"))["spent"] or Decimal(0)
            if ask.cost is None or spent + ask.cost > config.daily_spend_limit:
                raise Throttled(Refusal.SPEND, retry_seconds(end - now))
        # The request's place is its row, written next: nothing to give back here.
        return Ticket()


# -- in a shared cache ------------------------------------------------------------------------


class CacheUnavailable(Exception):
    """The shared cache failed; the database counts instead."""


class CacheCounters:
    """The limits counted in a cache every process shares, with its atomic operations."""

    def __init__(self, cache: BaseCache) -> None:
        self.cache = cache

    def admit(self, ask: Ask, config: VerificationConfig) -> Ticket:
        ticket = Ticket()
        try:
            self._admit(ask, config, ticket)
        except Throttled:
            ticket.release()
            raise
        except Exception as exc:  # each cache library raises its own errors
            ticket.release()
            raise CacheUnavailable(f"{type(exc).__name__}: {exc}") from exc
        return ticket

    def _admit(self, ask: Ask, config: VerificationConfig, ticket: Ticket) -> None:
        now = ask.now
        if config.resend_cooldown:
            self._cooldown(ask, config.resend_cooldown, ticket)
        hourly = [(Refusal.RECIPIENT, ask.recipient, config.max_per_recipient_per_hour)]
        if ask.network:
            hourly.append((Refusal.IP, ask.network, config.max_per_ip_per_hour))
        for reason, scope, limit in hourly:
            if limit is not None:
                self._hour(reason, scope, limit, now, ticket)
        day, _start, end = day_of(now)
        if config.max_per_day is not None:
            self._add_up(
                Refusal.DAILY,
                f"day:{day}",
                amount=1,
                limit=config.max_per_day,
                wait=end - now,
                ticket=ticket,
            )
        if config.daily_spend_limit is not None:
            if ask.cost is None:
                raise Throttled(Refusal.SPEND, retry_seconds(end - now))
            self._add_up(
                Refusal.SPEND,
                f"spend:{day}",
                amount=_units(ask.cost),
                limit=_units(config.daily_spend_limit),
                wait=end - now,
                ticket=ticket,
            )

    def _key(self, kind: str, scope: str) -> str:
        # Numbers and addresses go into keys hashed: a cache is no place to list them.
        digest = salted_hmac(
            "django_smsfly.verification.counter", scope, algorithm="sha256"
        ).hexdigest()[:32]
        return f"smsfly:otp:{kind}:{digest}"

    def _cooldown(self, ask: Ask, cooldown: dt.timedelta, ticket: Ticket) -> None:
        key = self._key("cooldown", f"{ask.recipient}\x1f{ask.purpose}")
        until = (ask.now + cooldown).timestamp()
        if self.cache.add(key, until, timeout=math.ceil(cooldown.total_seconds())):
            ticket.undo.append(lambda: self.cache.delete(key))
            return
        stored = self.cache.get(key)
        left = stored - ask.now.timestamp() if isinstance(stored, int | float) else 0
        raise Throttled(Refusal.COOLDOWN, retry_seconds(left or cooldown.total_seconds()))

    def _hour(self, reason: str, scope: str, limit: int, now: dt.datetime, ticket: Ticket) -> None:
        buckets = int(HOUR.total_seconds()) // BUCKET_SECONDS
        current = int(now.timestamp()) // BUCKET_SECONDS
        numbers = range(current - buckets + 1, current + 1)
        prefix = self._key(reason, scope)
        keys = [f"{prefix}:{number}" for number in numbers]
        mine = keys[-1]
        self.cache.add(mine, 0, timeout=int(HOUR.total_seconds()) + 2 * BUCKET_SECONDS)
        taken = self.cache.incr(mine)  # our place: atomic, whoever else asks now
        earlier = self.cache.get_many(keys[:-1])
        counts = [int(earlier.get(key, 0)) for key in keys[:-1]] + [taken - 1]
        if sum(counts) < limit:
            ticket.undo.append(lambda: self.cache.decr(mine))
            return
        self.cache.decr(mine)
        # Wait until enough of the hour's codes have left it for one more to fit.
        excess = sum(counts) - limit + 1
        for number, count in zip(numbers, counts, strict=True):
            excess -= count
            if excess <= 0:
                leaves = (number + buckets) * BUCKET_SECONDS
                raise Throttled(reason, retry_seconds(leaves - now.timestamp()))
        raise Throttled(reason, retry_seconds(HOUR))  # pragma: no cover - counts moved meanwhile

    def _add_up(
        self,
        reason: str,
        name: str,
        *,
        amount: int,
        limit: int,
        wait: dt.timedelta,
        ticket: Ticket,
    ) -> None:
        key = self._key(reason, name)
        self.cache.add(key, 0, timeout=2 * 86400)  # outlives its day, then goes
        if self.cache.incr(key, amount) <= limit:
            ticket.undo.append(lambda: self.cache.decr(key, amount))
            return
        self.cache.decr(key, amount)
        raise Throttled(reason, retry_seconds(wait))


def _units(amount: Decimal) -> int:
    return int((amount / COST_UNIT).to_integral_value(rounding=ROUND_CEILING))


# -- which -------------------------------------------------------------------------------------

#: Caches whose contents each process keeps to itself: counts there are not shared.
PROCESS_LOCAL = (LocMemCache, DummyCache)


def shared_cache() -> BaseCache | None:
    """The cache the counters live in (``RATE_LIMIT_CACHE``, else ``default``), or
    ``None`` when it is one each process keeps to itself."""
    alias: str = smsfly_settings.RATE_LIMIT_CACHE or "default"
    try:
        cache = caches[alias]
    except Exception:  # no such cache (smsfly.E006 reports it): the database counts
        return None
    return None if isinstance(cache, PROCESS_LOCAL) else cache


def counters() -> Counters:
    """The counters in use: the shared cache if there is one, else the database."""
    cache = shared_cache()
    return DatabaseCounters() if cache is None else CacheCounters(cache)


def admit(ask: Ask, config: VerificationConfig) -> Ticket:
    """Take a place under every limit for ``ask``, or raise :class:`Throttled`.

    When the shared cache fails, the database counts instead (and a warning is logged):
    a cache outage neither lets codes through unchecked nor stops them.
    """
    chosen = counters()
    try:
        return chosen.admit(ask, config)
    except CacheUnavailable as exc:
        logger.warning("The verification counters' cache failed (%s); counting rows instead.", exc)
        return DatabaseCounters().admit(ask, config)
