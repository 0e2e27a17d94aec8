"""Which client addresses count together in a limit: IPv4 per address, IPv6 per /64.

One IPv6 subscriber usually holds a whole /64 (often far more), so counting single IPv6
addresses would give one attacker 2^64 fresh counters. Every limit on client addresses asks
``bucket`` for its counter's name.
"""

from __future__ import annotations

import ipaddress

IPV6_PREFIX = 64


def bucket(ip: str | None) -> str:
    """The name of the counter an address belongs to: ``203.0.113.7`` or ``2001:db8:1:2::/64``."""
    if not ip:
        # An address that could not be read shares one counter rather than escaping the limit.
        return "unknown"
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return "unknown"
    if address.version == 6:
        if address.ipv4_mapped is not None:  # ::ffff:203.0.113.7 is that IPv4 address
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/{IPV6_PREFIX}", strict=False))
    return str(address)
