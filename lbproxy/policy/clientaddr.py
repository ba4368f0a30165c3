# -*- test-case-name: tests.test_clientaddr -*-
"""
Who the client is: the address of the peer, or of the client named by
trusted proxies in front of lbproxy (C{X-Forwarded-For} or RFC 7239
C{Forwarded}). (A PROXY protocol header, with C{proxy_protocol = true},
is read by Twisted's C{twisted.protocols.haproxy} before HTTP starts, and
becomes the peer.)

Pure: no Twisted, no I/O.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from typing import Iterator, List, Optional, Sequence, Union

from lbproxy.policy.access import Network, NetworkSet, parse_ip

__all__ = ["ClientAddressResolver"]

#: The walk through forwarded addresses stops after this many entries.
MAX_HOPS = 64


@lru_cache(maxsize=4096)
def _normalized(text: str) -> Optional[str]:
    """
    An address in canonical form (IPv4-mapped IPv6 as IPv4), or L{None}.
    """
    parsed = parse_ip(text)
    if parsed is None:
        return None
    version, value = parsed
    if version == 4:
        return str(ipaddress.IPv4Address(value))
    if "%" in text:
        return str(ipaddress.IPv6Address(text))
    return str(ipaddress.IPv6Address(value))


def _xff_entry(entry: bytes) -> Optional[str]:
    """
    The address in one C{X-Forwarded-For} item: C{"192.0.2.1"},
    C{"192.0.2.1:4711"}, C{"2001:db8::1"}, C{"[2001:db8::1]"} or
    C{"[2001:db8::1]:4711"}; L{None} for anything else.
    """
    try:
        text = entry.decode("ascii")
    except UnicodeDecodeError:
        return None
    if text.startswith("["):
        end = text.find("]")
        if end == -1:
            return None
        rest = text[end + 1 :]
        if rest and not _is_port(rest[1:] if rest[0] == ":" else ""):
            return None
        text = text[1:end]
        if "." in text and ":" not in text:
            return None  # "[192.0.2.1]"
    elif text.count(":") == 1:
        text, _, port = text.partition(":")
        if not _is_port(port):
            return None
    if "%" in text:
        return None
    return _normalized(text)


def _is_port(text: str) -> bool:
    return 0 < len(text) <= 5 and text.isdigit() and text.isascii() and int(text) <= 65535


_TCHAR = frozenset(
    b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)


def _forwarded_elements(value: bytes) -> Iterator[Optional[bytes]]:
    """
    The C{for} parameter of each element of one C{Forwarded} value
    (RFC 7239 section 4), unquoted, left to right; L{None} for an element
    without a single C{for}.  A syntax error yields L{None} and ends the
    value: nothing after it can be told apart from the error.
    """
    i, n = 0, len(value)
    forValue: Optional[bytes] = None
    forCount = 0
    while True:
        # Optional whitespace, then a pair, an empty pair, or the end.
        while i < n and value[i] in b" \t":
            i += 1
        if i < n and value[i] not in b";,":
            start = i
            while i < n and value[i] in _TCHAR:
                i += 1
            name = value[start:i].lower()
            if not name or i >= n or value[i] != 0x3D:  # "="
                yield None
                return
            i += 1
            if i < n and value[i] == 0x22:  # '"'
                i += 1
                chars = bytearray()
                while True:
                    if i >= n:
                        yield None
                        return
                    c = value[i]
                    if c == 0x22:
                        i += 1
                        break
                    if c == 0x5C:  # backslash
                        i += 1
                        if i >= n:
                            yield None
                            return
                        c = value[i]
                    if c < 0x20 and c != 0x09 or c == 0x7F:
                        yield None
                        return
                    chars.append(c)
                    i += 1
                parameter = bytes(chars)
            else:
                start = i
                while i < n and value[i] in _TCHAR:
                    i += 1
                parameter = value[start:i]
                if not parameter:
                    yield None
                    return
            if name == b"for":
                forValue = parameter
                forCount += 1
            while i < n and value[i] in b" \t":
                i += 1
        if i >= n or value[i] == 0x2C:  # end of an element
            yield forValue if forCount == 1 else None
            if i >= n:
                return
            i += 1
            forValue, forCount = None, 0
            continue
        if value[i] == 0x3B:  # ";"
            i += 1
            continue
        yield None
        return


def _forwarded_node(node: bytes) -> Optional[str]:
    """
    The address of an RFC 7239 node (C{192.0.2.60},
    C{"192.0.2.60:4711"}, C{"[2001:db8::17]:4711"}); L{None} for
    C{unknown}, obfuscated identifiers and anything malformed.
    """
    try:
        text = node.decode("ascii")
    except UnicodeDecodeError:
        return None
    if text.startswith("["):
        end = text.find("]")
        if end == -1:
            return None
        rest = text[end + 1 :]
        address = text[1:end]
        if ":" not in address or "%" in address:
            return None
    else:
        address, colon, port = text.partition(":")
        rest = colon + port
        if ":" in port or not address[:1].isdigit():
            return None  # unbracketed IPv6, "unknown", "_hidden"
    if rest and not (rest[0] == ":" and _is_port(rest[1:])):
        return None
    return _normalized(address)


class ClientAddressResolver:
    """
    Decides which address is the client's.

    A peer that is not a trusted proxy is the client (the caller replaces
    any C{X-Forwarded-*} it sent).  A trusted peer's forwarding header is
    read from the right, the end its own proxy wrote: trusted addresses are
    skipped, and the first untrusted one is the client.  A malformed entry
    (and C{unknown} or an obfuscated identifier in C{Forwarded}) ends the
    walk: the client is then the last address that was good, a trusted
    proxy, since nothing to its left can be believed.  So is a header with
    only trusted addresses, or none at all.

    Only one header is believed, C{X-Forwarded-For} by default: the
    trusted proxy writes one of them and passes the other through, so a
    client could write anything in that one.

    @ivar trusted: The trusted proxies.
    @ivar header: C{"x-forwarded-for"} or C{"forwarded"}.
    """

    def __init__(
        self,
        trustedProxies: Sequence[Union[str, Network]],
        header: str = "x-forwarded-for",
    ) -> None:
        """
        @param trustedProxies: Networks or addresses of proxies whose
            forwarding header is believed.
        @param header: Which header they write.
        @raise ValueError: For a bad network or header.
        """
        if header not in ("x-forwarded-for", "forwarded"):
            raise ValueError(f"header must be x-forwarded-for or forwarded, not {header!r}")
        self.trusted = NetworkSet(trustedProxies)
        self.header = header

    def isTrusted(self, address: str) -> bool:
        """
        Whether C{address} is a trusted proxy.
        """
        return bool(self.trusted) and address in self.trusted

    def resolve(
        self,
        peerIp: str,
        xForwardedFor: Sequence[bytes] = (),
        forwarded: Sequence[bytes] = (),
    ) -> str:
        """
        The client's address.

        @param peerIp: The address of the connection's peer (or the source
            announced by a PROXY protocol header).
        @param xForwardedFor: The values of every C{X-Forwarded-For}
            header, in order.
        @param forwarded: The values of every C{Forwarded} header, in
            order.
        @return: The address in canonical form (an IPv4-mapped IPv6
            address as IPv4); C{peerIp} unchanged when it is not an
            address at all.
        """
        peer = _normalized(peerIp)
        if peer is None:
            return peerIp
        trusted = self.trusted
        if not trusted or not trusted.contains(parse_ip(peer)):
            return peer
        last = peer
        for address in self._entries(xForwardedFor, forwarded):
            if address is None:
                break
            last = address
            if not trusted.contains(parse_ip(address)):
                break
        return last

    def _entries(
        self, xForwardedFor: Sequence[bytes], forwarded: Sequence[bytes]
    ) -> Iterator[Optional[str]]:
        """
        The forwarded addresses, right to left, at most L{MAX_HOPS};
        L{None} for a malformed one.
        """
        count = 0
        if self.header == "x-forwarded-for":
            for value in reversed(xForwardedFor):
                for item in reversed(value.split(b",")):
                    item = item.strip(b" \t")
                    if not item:
                        continue  # empty list elements (RFC 9110 5.6.1)
                    count += 1
                    if count > MAX_HOPS:
                        return
                    yield _xff_entry(item)
        else:
            for value in reversed(forwarded):
                nodes: List[Optional[bytes]] = list(_forwarded_elements(value))
                for node in reversed(nodes):
                    count += 1
                    if count > MAX_HOPS:
                        return
                    yield None if node is None else _forwarded_node(node)
