"""The fraud guard's numbers: codes sent and verified, and refusals by reason and by
country, per day.

SMS pumping shows here as refusals piling up (for foreign countries, from a few
networks) and as a day whose sent codes are rarely verified: a bot asks for codes, a
person types them in. :func:`fraud_report` counts the last days in three grouped
queries; the admin's "Fraud guard" page draws it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from django.db.models import Count, Q, QuerySet
from django.db.models.functions import TruncDate
from django.utils import timezone

from django_smsfly.models import Verification

Refusal = Verification.Refusal

#: The most client networks :func:`fraud_report` lists.
TOP_NETWORKS = 10


def _share(part: int, whole: int) -> Decimal | None:
    if not whole:
        return None
    return (Decimal(part) / whole).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class GuardDay:
    """One local day: codes sent and verified, and refusals by reason."""

    day: dt.date
    sent: int = 0
    verified: int = 0
    #: Reason (a ``Verification.Refusal`` value) -> refused requests.
    refused: dict[str, int] = field(default_factory=dict)

    @property
    def refused_total(self) -> int:
        """Every refused request of the day."""
        return sum(self.refused.values())

    @property
    def conversion(self) -> Decimal | None:
        """Verified codes as a share of those sent; ``None`` without any sent."""
        return _share(self.verified, self.sent)

    def refused_by(self) -> list[int]:
        """The refusals in the order of ``Verification.Refusal`` (a table's columns)."""
        return [self.refused.get(reason.value, 0) for reason in Refusal]


@dataclass(frozen=True)
class CountryDay:
    """One country on one local day."""

    day: dt.date
    #: ISO 3166 code; ``""`` for a number of no country.
    country: str
    sent: int
    refused: int


@dataclass(frozen=True)
class NetworkCount:
    """A client network (an IPv4 address or an IPv6 /64) and its refused requests."""

    network: str
    refused: int


@dataclass(frozen=True)
class FraudReport:
    """The last days of codes, newest day first."""

    days: tuple[GuardDay, ...]
    #: Every country and day with codes sent or refused, newest day first, most refused
    #: first within a day.
    countries: tuple[CountryDay, ...]
    #: The networks refused most often over the period (at most :data:`TOP_NETWORKS`).
    networks: tuple[NetworkCount, ...]

    @property
    def sent(self) -> int:
        """Codes sent in the period."""
        return sum(day.sent for day in self.days)

    @property
    def verified(self) -> int:
        """Codes of the period that were verified."""
        return sum(day.verified for day in self.days)

    @property
    def refused(self) -> int:
        """Requests of the period that a limit or ``ALLOWED_REGIONS`` refused."""
        return sum(day.refused_total for day in self.days)

    @property
    def conversion(self) -> Decimal | None:
        """Verified codes as a share of those sent over the period."""
        return _share(self.verified, self.sent)

    def refused_by(self) -> list[int]:
        """The period's refusals in the order of ``Verification.Refusal``."""
        return [
            sum(values) for values in zip(*(day.refused_by() for day in self.days), strict=True)
        ]


def fraud_report(
    days: int = 30, *, today: dt.date | None = None, tz: dt.tzinfo | None = None
) -> FraudReport:
    """Count the verifications of the last ``days`` local days (in ``tz``, default the
    current time zone, ending with ``today``); days without any have zeros."""
    if days < 1:
        raise ValueError("days must be at least 1")
    zone = tz or timezone.get_current_timezone()
    last = today or timezone.localdate(timezone=zone)
    first = last - dt.timedelta(days=days - 1)
    period = _period(first, last, zone)
    local_day = TruncDate("created_at", tzinfo=zone)
    by_day: dict[dt.date, dict[str, int]] = {}
    sent: dict[dt.date, tuple[int, int]] = {}
    for row in (
        period.annotate(day=local_day)
        .values("day", "refusal")
        .annotate(count=Count("pk"), verified=Count("pk", filter=Q(verified_at__isnull=False)))
        .order_by()
    ):
        if row["refusal"]:
            by_day.setdefault(row["day"], {})[row["refusal"]] = row["count"]
        else:
            sent[row["day"]] = (row["count"], row["verified"])
    countries = [
        CountryDay(row["day"], row["country"], row["sent"], row["refused"])
        for row in period.annotate(day=local_day)
        .values("day", "country")
        .annotate(
            sent=Count("pk", filter=Q(refusal="")), refused=Count("pk", filter=~Q(refusal=""))
        )
        .order_by("-day", "-refused", "-sent", "country")
    ]
    networks = [
        NetworkCount(row["client_network"], row["count"])
        for row in period.exclude(refusal="")
        .exclude(client_network="")
        .values("client_network")
        .annotate(count=Count("pk"))
        .order_by("-count", "client_network")[:TOP_NETWORKS]
    ]
    return FraudReport(
        days=tuple(
            GuardDay(
                day=day,
                sent=sent.get(day, (0, 0))[0],
                verified=sent.get(day, (0, 0))[1],
                refused=by_day.get(day, {}),
            )
            for day in (last - dt.timedelta(days=n) for n in range(days))
        ),
        countries=tuple(countries),
        networks=tuple(networks),
    )


def _period(first: dt.date, last: dt.date, zone: dt.tzinfo) -> QuerySet[Verification]:
    start = timezone.make_aware(dt.datetime.combine(first, dt.time()), zone)
    end = timezone.make_aware(dt.datetime.combine(last + dt.timedelta(days=1), dt.time()), zone)
    return Verification.objects.filter(created_at__gte=start, created_at__lt=end)
