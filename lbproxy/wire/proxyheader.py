# -*- test-case-name: tests.test_tcp -*-
"""
The PROXY protocol header (HAProxy's, versions 1 and 2) that lbproxy
sends a backend first on a relayed connection (C{send_proxy}), so that the
backend learns the client's address.  Pure: addresses in, bytes out.
"""

from __future__ import annotations

import ipaddress
import struct
from typing import Optional, Tuple

__all__ = ["V2_SIGNATURE", "proxy_header"]

#: The twelve bytes every version 2 header starts with.
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"

_V2_PROXY = 0x21  # version 2, command PROXY
_V2_LOCAL = 0x20  # version 2, command LOCAL (no addresses)
_TCP4 = 0x11
_TCP6 = 0x21


def _parse(host: Optional[str]):
    if host is None:
        return None
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None


def proxy_header(
    version: str, source: Tuple[Optional[str], int], destination: Tuple[Optional[str], int]
) -> bytes:
    """
    The header for a connection from C{source} to C{destination}.

    @param version: C{"v1"} (text) or C{"v2"} (binary).
    @param source: the client's C{(host, port)}.
    @param destination: the address the client connected to,
        C{(host, port)}.
    @return: the header; when the addresses are not both IPv4 or both
        IPv6 (e.g. a UNIX socket), C{PROXY UNKNOWN} (v1) or the LOCAL
        command (v2), which tell the backend to use the connection's own
        addresses.
    """
    src, dst = _parse(source[0]), _parse(destination[0])
    if src is not None and dst is not None and src.version != dst.version:
        # An IPv4 client on an IPv6 socket is written as IPv6 (mapped).
        if src.version == 4:
            src = ipaddress.IPv6Address("::ffff:" + str(src))
        else:
            dst = ipaddress.IPv6Address("::ffff:" + str(dst))
    known = src is not None and dst is not None
    if version == "v1":
        if not known:
            return b"PROXY UNKNOWN\r\n"
        family = "TCP4" if src.version == 4 else "TCP6"
        line = f"PROXY {family} {src} {dst} {source[1]} {destination[1]}\r\n"
        return line.encode("ascii")
    if version != "v2":
        raise ValueError(f"unknown PROXY protocol version {version!r}")
    if not known:
        return V2_SIGNATURE + struct.pack("!BBH", _V2_LOCAL, 0, 0)
    if src.version == 4:
        body = src.packed + dst.packed + struct.pack("!HH", source[1], destination[1])
        family = _TCP4
    else:
        body = src.packed + dst.packed + struct.pack("!HH", source[1], destination[1])
        family = _TCP6
    return V2_SIGNATURE + struct.pack("!BBH", _V2_PROXY, family, len(body)) + body
