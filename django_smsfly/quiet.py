"""Quiet hours: when a campaign message may not reach a phone (``SMSFLY["QUIET_HOURS"]``).

The window is read in the recipient's time zone, told by the number's country (Ukraine:
Europe/Kyiv), so a mailing started late in the evening waits until morning where the
phone is, not where the server is.
"""

from __future__ import annotations

import datetime as dt
import functools
import zoneinfo

import phonenumbers
from django.conf import settings

from django_smsfly.conf import smsfly_settings

#: Zones for the countries SMS-fly serves, by ISO 3166 code; other countries take the
#: first zone ``phonenumbers`` knows for the number, else the site's ``TIME_ZONE``.
COUNTRY_ZONES = {"UA": ("Europe/Kyiv", "Europe/Kiev"), "PL": ("Europe/Warsaw",)}


def zone_for(recipient: str) -> dt.tzinfo:
    """The time zone of a number (international digits without +)."""
    try:
        number = phonenumbers.parse("+" + recipient)
    except phonenumbers.NumberParseException:
        return _site_zone()
    region = phonenumbers.region_code_for_number(number)
    names: tuple[str, ...] = COUNTRY_ZONES.get(region or "", ())
    if not names:
        names = _zones_of(number)
    for name in names:
        zone = _zone(name)
        if zone is not None:
            return zone
    return _site_zone()


def quiet_until(recipient: str, now: dt.datetime) -> dt.datetime | None:
    """The end of the quiet window if ``now`` is inside it for this recipient, else
    ``None`` (also when no ``QUIET_HOURS`` are set). ``now`` must be aware."""
    hours = smsfly_settings.QUIET_HOURS
    if hours is None:
        return None
    start: dt.time = hours["START"]
    end: dt.time = hours["END"]
    zone = zone_for(recipient)
    local = now.astimezone(zone)
    clock = local.time().replace(tzinfo=None)
    if start < end:  # a window within one day: 13:00-15:00
        if not start <= clock < end:
            return None
        day = local.date()
    elif clock >= start:  # across midnight, evening side: 21:00-09:00 at 22:30
        day = local.date() + dt.timedelta(days=1)
    elif clock < end:  # across midnight, morning side: at 06:00
        day = local.date()
    else:
        return None
    return dt.datetime.combine(day, end, tzinfo=zone).astimezone(dt.timezone.utc)


def _zones_of(number: phonenumbers.PhoneNumber) -> tuple[str, ...]:
    try:
        # Not at the top: the "lite" build of phonenumbers has no time zone data.
        from phonenumbers import timezone as number_zones  # noqa: PLC0415
    except ImportError:  # a build of phonenumbers without its time zone data
        return ()
    zones = number_zones.time_zones_for_number(number)
    return tuple(zone for zone in zones if "/" in zone)


@functools.lru_cache(maxsize=64)
def _zone(name: str) -> dt.tzinfo | None:
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None


def _site_zone() -> dt.tzinfo:
    return _zone(str(getattr(settings, "TIME_ZONE", "UTC") or "UTC")) or dt.timezone.utc
