"""The client's address, for the per-address limit, and the network that limit counts.

By default the address is ``REMOTE_ADDR``: what the connection came from. Behind
proxies that is the proxy's address, and the client's is in a header the proxies add
to (``X-Forwarded-For``): ``SMSFLY["VERIFICATION"]["TRUSTED_PROXIES"]`` says how many
proxies of the site's own add to it, and the address is read that many places from the
right. Entries further left were written by the client and are never believed: a bot
could put a new address there with every request.
"""

from __future__ import annotations

import ipaddress

from django.http import HttpRequest

#: The prefix an IPv6 client is counted by: a subscriber gets a whole /64 (or more),
#: so counting single IPv6 addresses would limit nobody.
IPV6_PREFIX = 64


def client_ip(
    request: HttpRequest | None, *, trusted_proxies: int = 0, header: str = ""
) -> str | None:
    """The client's address, or ``None`` without a request (or a usable address).

    ``trusted_proxies``: how many proxies in front of the site append to ``header``
    (``X-Forwarded-For``); ``0`` reads ``REMOTE_ADDR`` only.
    """
    if request is None:
        return None
    remote = parse_address(request.META.get("REMOTE_ADDR"))
    if trusted_proxies <= 0 or not header:
        return remote
    hops = [hop.strip() for hop in str(request.headers.get(header, "")).split(",")]
    hops = [hop for hop in hops if hop]
    if not hops:
        return remote  # no proxy added to it: a request straight to the site
    # The n-th address from the right was added by the outermost of our n proxies: the
    # address it saw. With fewer entries every one is a proxy's: the leftmost is best.
    return (
        parse_address(hops[-trusted_proxies] if len(hops) >= trusted_proxies else hops[0])
        or remote
    )


def parse_address(value: object) -> str | None:
    """An IP address as written by a server or a proxy (``203.0.113.5``,
    ``203.0.113.5:41000``, ``[2001:db8::1]:443``), normalized; ``None`` if it is none.

    An IPv4 address mapped into IPv6 (``::ffff:203.0.113.5``) is the IPv4 address.
    """
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text.startswith("[") and "]" in text:  # [IPv6]:port
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # IPv4:port
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def network_of(address: str | None) -> str:
    """What the per-address limit counts: the IPv4 address, or the IPv6 /64 network
    (``2001:db8:1:2::/64``); ``""`` without an address."""
    if not address:
        return ""
    parsed = ipaddress.ip_address(address)
    if isinstance(parsed, ipaddress.IPv4Address):
        return str(parsed)
    return str(ipaddress.ip_network(f"{parsed}/{IPV6_PREFIX}", strict=False))
