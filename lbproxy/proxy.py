# -*- test-case-name: tests.test_proxy -*-
"""
The resource at the root of lbproxy's site: route each request to a pool
and hand it to an L{Exchange}.

L{ProxyResource} subclasses L{ReverseProxyResource} for its place in the
resource tree only; forwarding is lbproxy's own (HTTP/1.1, pooled
connections, streaming both ways, see L{lbproxy.exchange}).
"""

from __future__ import annotations

from typing import Callable, Optional

from twisted.web.proxy import ReverseProxyResource
from twisted.web.server import NOT_DONE_YET

from lbproxy.accesslog import AccessLog, format_line
from lbproxy.exchange import Exchange, local_response
from lbproxy.headers import forwarded_request_headers
from lbproxy.routing import normalize_host, normalize_path, strip_prefix
from lbproxy.runtime import Runtime
from lbproxy.upstream import ConnectionPool


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


class ProxyResource(ReverseProxyResource):
    """
    Routes every request by Host and path and forwards it.

    @ivar runtime: the current L{Runtime}; replaced as a whole on reload.
    @ivar active: exchanges in progress.
    """

    isLeaf = True

    def __init__(
        self,
        runtime: Runtime,
        connections: ConnectionPool,
        clock,
        accessLog: Optional[AccessLog] = None,
        proto: Optional[bytes] = None,
        health=None,
    ) -> None:
        """
        @param runtime: routes and pools.
        @param connections: backend connections.
        @param clock: an L{IReactorTime} for timeouts and timings.
        @param accessLog: where access log lines go, or L{None}.
        @param proto: force C{X-Forwarded-Proto} (else from the transport).
        @param health: the L{lbproxy.healthcheck.HealthChecker} told of
            connection failures and responses (passive checks), or L{None}.
        """
        ReverseProxyResource.__init__(self, "", 0, b"", reactor=clock)
        self.runtime = runtime
        self._connections = connections
        self._clock = clock
        self._accessLog = accessLog
        self._proto = proto
        self.health = health
        self.active: set = set()

    def getChild(self, path, request):
        return self

    def render(self, request):
        start = self._clock.seconds()
        hosts = request.requestHeaders.getRawHeaders(b"Host")
        split = split_target(request.uri)
        if split is None or (hosts is not None and len(hosts) > 1):
            self._local(request, start, 400, b"Bad Request")
            return NOT_DONE_YET
        authority, rawPath, query = split
        hostHeader = hosts[0] if hosts else None
        if hostHeader is None and request.clientproto == b"HTTP/1.1" and authority is None:
            self._local(request, start, 400, b"Bad Request")
            return NOT_DONE_YET
        if authority is not None:
            # RFC 9112 3.2.2: the authority of an absolute-form target wins.
            hostHeader = authority
            request.requestHeaders.setRawHeaders(b"Host", [authority])
        host = normalize_host(hostHeader.decode("latin-1") if hostHeader else None)
        path = normalize_path(rawPath.decode("latin-1"))
        found = self.runtime.route(host, path)
        if found is None:
            self._local(request, start, 404, b"Not Found", hostHeader)
            return NOT_DONE_YET
        route, pool = found
        if route.strip_prefix:
            path = strip_prefix(path, route.path)
        target = path.encode("latin-1")
        if query is not None:
            target += b"?" + query
        proto = self._proto or (b"https" if request.isSecure() else b"http")
        pairs = [
            (name, value)
            for name, values in request.requestHeaders.getAllRawHeaders()
            if name.lower() != b"expect"
            for value in values
        ]
        headers = forwarded_request_headers(
            pairs, request.getClientAddress().host.encode("ascii"), proto, hostHeader
        )

        def done(exchange: Exchange) -> None:
            self.active.discard(exchange)
            self._log(request, start, exchange.status, exchange.sent, hostHeader,
                      pool.name, exchange.target, exchange.upstreamTime)

        exchange = Exchange(
            request,
            pool,
            self._connections,
            self._clock,
            self.runtime.config.server.response_timeout,
            request.method,
            target,
            headers,
            done,
            self.health,
        )
        self.active.add(exchange)
        exchange.start()
        return NOT_DONE_YET

    def _local(self, request, start: float, code: int, phrase: bytes, host=None) -> None:
        sent = local_response(request, code, phrase)
        self._log(request, start, code, sent, host, None, None, None)

    def _log(self, request, start, status, sent, host, pool, target, upstream) -> None:
        if self._accessLog is None:
            return
        client = request.getClientAddress()
        self._accessLog.write(
            format_line(
                getattr(client, "host", "-"),
                request.method.decode("latin-1"),
                request.uri.decode("latin-1"),
                request.clientproto.decode("latin-1"),
                status,
                sent,
                host.decode("latin-1") if host is not None else None,
                pool,
                target,
                self._clock.seconds() - start,
                upstream,
            )
        )
