"""Which network addresses may be fetched: the policy every page fetch and every redirect hop
is checked against, and the page cache too.

Cloud metadata addresses, link-local addresses and the other special-purpose ranges of IANA's
registries are never fetched. Private networks and loopback are fetched only when the user
allows them (`network.allow_private_hosts`, or one host at a time in `network.allowed_hosts`).
An IPv6 address that stands for an IPv4 one (mapped, 6to4, NAT64) is judged as that address.
"""

from __future__ import annotations

import ipaddress

IP = ipaddress.IPv4Address | ipaddress.IPv6Address

# Cloud metadata services: never fetched, whatever is allowed.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean
        "169.254.170.2",  # AWS ECS task metadata
        "169.254.169.253",  # AWS DNS
        "fd00:ec2::254",  # AWS over IPv6
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud
    )
)
# Private networks: fetched only with network.allow_private_hosts (or network.allowed_hosts).
PRIVATE_NETWORKS = tuple(
    ipaddress.ip_network(n)
    for n in (
        "127.0.0.0/8",
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",  # shared address space (carrier NAT, tailnets)
        "::1/128",
        "fc00::/7",  # unique local
    )
)
# Special-purpose ranges (IANA's IPv4 and IPv6 special-purpose registries) that are not
# private networks: never fetched.
SPECIAL_NETWORKS = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",
        "169.254.0.0/16",  # link-local: where metadata services live
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",
        "198.51.100.0/24",
        "203.0.113.0/24",  # documentation
        "192.31.196.0/24",
        "192.52.193.0/24",
        "192.88.99.0/24",
        "192.175.48.0/24",
        "198.18.0.0/15",  # benchmarking
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, and broadcast
        "::/128",
        "100::/64",  # discard
        "2001::/23",  # IETF protocol assignments (Teredo, ORCHID, ...)
        "2001:db8::/32",
        "3fff::/20",  # documentation
        "5f00::/16",  # segment routing
        "fe80::/10",  # link-local
        "fec0::/10",  # site-local (deprecated)
        "ff00::/8",  # multicast
    )
)


def embedded_ipv4(ip: IP) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, 6to4, NAT64), if any: a request
    to it reaches that IPv4 host, so it is judged as that host."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in ipaddress.ip_network("64:ff9b::/96") or ip in ipaddress.ip_network("64:ff9b:1::/48"):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def address_problem(ip: IP, allow_private: bool) -> str | None:
    """Why an address may not be fetched, or None when it may."""
    inner = embedded_ipv4(ip)
    if inner is not None:
        problem = address_problem(inner, allow_private)
        return f"{problem} (embedded in {ip})" if problem else None
    if ip in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if any(ip in net for net in PRIVATE_NETWORKS):
        if allow_private:
            return None
        return "a private or loopback address (set network.allow_private_hosts to allow it)"
    if ip.is_link_local:
        return "a link-local address (where cloud metadata services live)"
    if any(ip in net for net in SPECIAL_NETWORKS) or not ip.is_global:
        return "a special-purpose (reserved) address"
    return None
