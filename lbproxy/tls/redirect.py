# -*- test-case-name: tests.test_tls_proxy -*-
"""
C{tls.redirect_http}: the plain listeners answer every request with
C{308 Permanent Redirect} to the same URL over HTTPS.  308 (unlike 301)
keeps the method and body, so a redirected POST stays a POST.
"""

from __future__ import annotations

import re
from typing import Optional

from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from lbproxy.observe.accesslog import AccessLog, format_line
from lbproxy.frontend.reply import local_response
from lbproxy.frontend.target import split_target

__all__ = ["RedirectResource", "https_location"]

_HOST = re.compile(rb"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(:[0-9]{1,5})?$")


def https_location(host: Optional[bytes], port: int, uri: bytes) -> Optional[bytes]:
    """
    The HTTPS URL for a plain request.

    @param host: The request's C{Host} (or absolute-form authority), port
        included or not; L{None} if it sent none.
    @param port: The HTTPS port; left out of the URL when it is 443.
    @param uri: The request target.
    @return: C{https://host[:port]/path?query}, or L{None} when there is
        no usable host or target (answer 400).
    """
    split = split_target(uri)
    if split is None:
        return None
    authority, path, query = split
    if authority is not None:
        host = authority
    if not host:
        return None
    match = _HOST.match(host)
    if match is None:
        return None
    name = match.group(1).lower().rstrip(b".")
    if not name:
        return None
    location = b"https://" + name
    if port != 443:
        location += b":%d" % (port,)
    location += path
    if query is not None:
        location += b"?" + query
    return location


class RedirectResource(Resource):
    """
    Answers every request with a redirect to HTTPS.
    """

    isLeaf = True

    def __init__(self, port: int, clock, accessLog: Optional[AccessLog] = None) -> None:
        """
        @param port: The HTTPS port redirects point to.
        @param clock: An L{IReactorTime}, for access log timings.
        @param accessLog: Where access log lines go, or L{None}.
        """
        Resource.__init__(self)
        self._port = port
        self._clock = clock
        self._accessLog = accessLog

    def getChild(self, path, request):
        return self

    def render(self, request):
        start = self._clock.seconds()
        hosts = request.requestHeaders.getRawHeaders(b"Host") or []
        location = None
        if len(hosts) <= 1:
            location = https_location(hosts[0] if hosts else None, self._port, request.uri)
        if location is None:
            code, sent = 400, local_response(request, 400, b"Bad Request")
        else:
            code = 308
            sent = local_response(
                request, 308, b"Permanent Redirect", [(b"Location", location)]
            )
        if self._accessLog is not None:
            self._accessLog.write(
                format_line(
                    getattr(request.getClientAddress(), "host", "-"),
                    request.method.decode("latin-1"),
                    request.uri.decode("latin-1"),
                    request.clientproto.decode("latin-1"),
                    code,
                    sent,
                    hosts[0].decode("latin-1") if hosts else None,
                    None,
                    None,
                    self._clock.seconds() - start,
                    None,
                )
            )
        return NOT_DONE_YET
