# -*- test-case-name: tests.test_balancing -*-
"""
What a balancing strategy may know of the request it chooses a target for.

The pipeline's L{lbproxy.pipeline.context.RequestContext} provides
L{RequestInfo}; a strategy is given L{None} when nothing is known (a unit
test, a retry outside a request).  Strategies that hash or stick on
something of the request read it with a function from L{key_reader},
chosen once when the pool is built, not per request.
"""

from __future__ import annotations

from typing import Callable, Optional, Protocol

__all__ = ["KEY_SOURCES", "RequestInfo", "key_reader", "read_cookie"]


class RequestInfo(Protocol):
    """
    The request, as a strategy sees it.

    @ivar clientIp: the client's address (behind trusted proxies, the
        client they name).
    @ivar path: the normalized request path.
    @ivar request: the Twisted request: C{requestHeaders}, C{uri}.
    """

    clientIp: str
    path: str
    request: object


#: The parts of a request a key may come from.
KEY_SOURCES = ("client_ip", "path", "uri", "header", "cookie")

KeyReader = Callable[[Optional[RequestInfo]], Optional[bytes]]


def key_reader(source: str, name: Optional[bytes] = None) -> KeyReader:
    """
    A function that reads a key (for a hash, a sticky session) from a
    request: its client address, its path, its whole request target as
    sent (C{uri}), the first value of a header or a cookie; L{None} when
    the request has none, or without a request.

    @param source: one of L{KEY_SOURCES}.
    @param name: the header's or cookie's name.
    @raise ValueError: for an unknown source, or a header or cookie
        without a name.
    """
    if source == "client_ip":
        return _clientIp
    if source == "path":
        return _path
    if source == "uri":
        return _uri
    if source not in KEY_SOURCES:
        raise ValueError(f"unknown key source {source!r}")
    if not name:
        raise ValueError(f"a {source} key needs a name")
    if source == "header":

        def header(context: Optional[RequestInfo]) -> Optional[bytes]:
            if context is None:
                return None
            values = context.request.requestHeaders.getRawHeaders(name)
            return values[0] if values else None

        return header

    def cookie(context: Optional[RequestInfo]) -> Optional[bytes]:
        if context is None:
            return None
        return read_cookie(context.request.requestHeaders, name)

    return cookie


def read_cookie(headers, name: bytes) -> Optional[bytes]:
    """
    The value of the cookie C{name} in the C{Cookie} headers of
    C{headers} (a L{twisted.web.http_headers.Headers}), or L{None}.  (The
    proxy's requests do not parse cookies: only what balances on one
    reads it, here.)
    """
    values = headers.getRawHeaders(b"cookie")
    if not values:
        return None
    for value in values:
        for pair in value.split(b";"):
            key, equals, found = pair.partition(b"=")
            if equals and key.strip() == name:
                return found.strip().strip(b'"')
    return None


def _clientIp(context: Optional[RequestInfo]) -> Optional[bytes]:
    if context is None:
        return None
    return context.clientIp.encode("ascii", "replace")


def _path(context: Optional[RequestInfo]) -> Optional[bytes]:
    if context is None:
        return None
    return context.path.encode("utf-8", "surrogateescape")


def _uri(context: Optional[RequestInfo]) -> Optional[bytes]:
    if context is None:
        return None
    return context.request.uri
