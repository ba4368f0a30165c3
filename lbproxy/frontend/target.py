# -*- test-case-name: tests.test_proxy,tests.test_requesthardening -*-
"""
Request-target and Host helpers (RFC 9112 3.2, RFC 9110 7.2): pure, bytes
in, answers out.
"""

from __future__ import annotations

import re

__all__ = ["REQUEST_ID", "UNSAFE_TARGET", "split_target", "valid_host"]


#: Bytes that may not appear in a request target: controls, space, DEL,
#: non-ASCII, the backslash, and C{"#"} (a fragment is never part of a
#: request target, RFC 9112 3.2; a backend that cut it off would see
#: another path than the one lbproxy routed and checked).
UNSAFE_TARGET = re.compile(rb"[^\x21-\x7e]|[\\#]")

#: An incoming request id is kept only if it is a plain token.
REQUEST_ID = re.compile(rb"^[A-Za-z0-9._:@+=/-]{1,200}$")

_HOST = re.compile(
    rb"^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9!$&'()*+,;=._~%-]+)(?::([0-9]{1,5}))?$"
)


def valid_host(value: bytes) -> bool:
    """
    Whether a Host header (or absolute-form authority) is a plain
    C{host[:port]}: a registered name or IPv4 address, or an IPv6 literal
    in brackets, with an optional numeric port; no user info, spaces or
    other characters.
    """
    match = _HOST.match(value)
    if match is None:
        return False
    port = match.group(1)
    return port is None or int(port) <= 65535


def split_target(uri: bytes):
    """
    Split a request target into (authority, path, query).

    @return: C{(authority or None, path, query or None)}, or L{None} if the
        target is neither origin-form (C{/path?q}) nor absolute-form
        (C{http://host/path?q}).
    """
    authority = None
    if not uri.startswith(b"/"):
        lower = uri[:8].lower()
        if lower.startswith(b"http://"):
            rest = uri[7:]
        elif lower.startswith(b"https://"):
            rest = uri[8:]
        else:
            return None
        slash = rest.find(b"/")
        question = rest.find(b"?")
        ends = [i for i in (slash, question) if i >= 0]
        end = min(ends) if ends else len(rest)
        authority, uri = rest[:end], rest[end:]
        if not authority or b"@" in authority:
            return None
        if not uri.startswith(b"/"):
            uri = b"/" + uri
    path, question, query = uri.partition(b"?")
    return authority, path, (query if question else None)
