# -*- test-case-name: tests.test_proxy -*-
"""
The resource at the root of lbproxy's site: route each request to a pool
and hand it to an L{Exchange}.

L{ProxyResource} subclasses L{ReverseProxyResource} for its place in the
resource tree only; forwarding is lbproxy's own (HTTP/1.1, pooled
connections, streaming both ways, see L{lbproxy.upstream.exchange}).
"""

from __future__ import annotations

from typing import Optional

from twisted.web import http
from twisted.web.proxy import ReverseProxyResource
from twisted.web.server import NOT_DONE_YET

from lbproxy.observe.accesslog import AccessLog, format_line
from lbproxy.frontend.reply import local_response
from lbproxy.upstream.exchange import Exchange
from lbproxy.policy.headerrules import new_request_id
from lbproxy.policy.headers import forwarded_request_headers
from lbproxy.policy.ratelimit import retry_after
from lbproxy.runtime.routing import BadPath, normalize_host, normalize_request_path, strip_prefix
from lbproxy.runtime.snapshot import Runtime
from lbproxy.tls.peer import misdirected
from lbproxy.upstream.connections import ConnectionPool
from lbproxy.frontend.target import REQUEST_ID, UNSAFE_TARGET, split_target, valid_host


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
        @param health: the L{lbproxy.health.checker.HealthChecker} told of
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
        # One runtime for the whole request, even if a reload swaps it.
        runtime = self.runtime
        server = runtime.config.server
        hosts = request.requestHeaders.getRawHeaders(b"Host")
        split = split_target(request.uri) if request.method != b"CONNECT" else None
        if split is None or (hosts is not None and len(hosts) > 1):
            self._reject(request, start, 400, b"Bad Request")
            return NOT_DONE_YET
        authority, rawPath, query = split
        if UNSAFE_TARGET.search(request.uri) is not None:
            # Only visible ASCII in a request target (RFC 9112 3.2); a raw
            # backslash means "/" to some backends but not to lbproxy.
            self._reject(request, start, 400, b"Bad Request")
            return NOT_DONE_YET
        hostHeader = hosts[0] if hosts else None
        if hostHeader is None and request.clientproto == b"HTTP/1.1" and authority is None:
            self._reject(request, start, 400, b"Bad Request")
            return NOT_DONE_YET
        if authority is not None:
            # RFC 9112 3.2.2: the authority of an absolute-form target wins.
            hostHeader = authority
            request.requestHeaders.setRawHeaders(b"Host", [authority])
        if hostHeader is not None and not valid_host(hostHeader):
            self._reject(request, start, 400, b"Bad Request")
            return NOT_DONE_YET
        host = normalize_host(hostHeader.decode("latin-1") if hostHeader else None)
        if misdirected(request, host):
            # TLS: the certificate SNI chose does not cover this host.
            self._local(request, start, 421, b"Misdirected Request", hostHeader)
            return NOT_DONE_YET
        try:
            path = normalize_request_path(
                rawPath.decode("latin-1"), server.encoded_slashes == "reject"
            )
        except BadPath:
            self._reject(request, start, 400, b"Bad Request", hostHeader)
            return NOT_DONE_YET
        if path == server.health_endpoint:
            self._local(request, start, 200, b"OK", hostHeader)
            return NOT_DONE_YET
        found = runtime.route(host, path)
        policies = runtime.policies(found[0]) if found is not None else runtime.unrouted
        # A peer without an IP address (a UNIX socket) matches no network.
        peer = getattr(request.getClientAddress(), "host", "-")
        resolver = runtime.clientAddress
        trusted = resolver is not None and resolver.isTrusted(peer)
        clientIp = peer
        if trusted:
            clientIp = resolver.resolve(
                peer,
                request.requestHeaders.getRawHeaders(b"X-Forwarded-For") or (),
                request.requestHeaders.getRawHeaders(b"Forwarded") or (),
            )
        for limiter in policies.limiters:
            delay = limiter.check(clientIp, start)
            if delay:
                self._local(
                    request, start, 429, b"Too Many Requests", hostHeader,
                    [(b"Retry-After", b"%d" % (retry_after(delay),))],
                )
                return NOT_DONE_YET
        # One pass over the headers: what is forwarded, and the few values
        # the checks below read.
        idHeaderName = server.request_id_header
        idName = idHeaderName.lower().encode("ascii") if idHeaderName is not None else None
        origin = requestId = None
        pairs = []
        for name, values in request.requestHeaders.getAllRawHeaders():
            lower = name.lower()
            if lower == b"origin":
                origin = values[0]
            elif lower == idName:
                requestId = values[0]
            elif lower == b"expect" or b"_" in name:
                # Expect was answered here; names with "_" are dropped, as
                # nginx does, since backends may read them as "-".
                continue
            for value in values:
                pairs.append((name, value))
        preflight = policies.cors is not None and policies.cors.isPreflight(
            request.method, pairs
        )
        if policies.access:
            authorization = request.getHeader(b"Authorization")
            for policy in policies.access:
                if preflight:
                    # Browsers send no credentials with a preflight: only
                    # the address and path rules apply to it.
                    denial = policy.checkClient(clientIp, path)
                else:
                    denial = policy.check(clientIp, request.method, path, authorization)
                if denial is not None:
                    phrase = http.RESPONSES.get(denial.status, b"Forbidden")
                    self._local(request, start, denial.status, phrase, hostHeader, denial.headers)
                    return NOT_DONE_YET
        if found is None:
            self._local(request, start, 404, b"Not Found", hostHeader)
            return NOT_DONE_YET
        route, pool = found
        body = request.body
        if body is not None:
            limit = server.max_body_size if route.max_body_size is None else route.max_body_size
            if limit:
                if body.length is not None and body.length > limit:
                    self._reject(request, start, 413, b"Payload Too Large", hostHeader)
                    return NOT_DONE_YET
                body.limit = limit
        cors = policies.cors
        if preflight:
            # Answered here, without bothering the backend.
            status, corsHeaders = cors.preflight(
                origin,
                request.getHeader(b"Access-Control-Request-Method"),
                request.getHeader(b"Access-Control-Request-Headers"),
            )
            self._local(request, start, status, http.RESPONSES.get(status, b""),
                        hostHeader, corsHeaders, body=False)
            return NOT_DONE_YET
        if route.strip_prefix:
            path = strip_prefix(path, route.path)
        target = path.encode("latin-1")
        if query is not None:
            target += b"?" + query
        proto = self._proto or (b"https" if request.isSecure() else b"http")
        if idName is not None:
            if requestId is None or not REQUEST_ID.match(requestId):
                # Generated when absent (or not a plain token), passed on,
                # logged and returned.
                requestId = new_request_id()
                pairs = [(n, v) for n, v in pairs if n.lower() != idName]
                pairs.append((idHeaderName.encode("ascii"), requestId))
        rules = policies.headers
        variables = None
        if rules is not None:
            variables = {
                "client_ip": clientIp.encode("ascii", "replace"),
                "request_id": requestId or b"",
                "host": hostHeader or b"",
                "scheme": proto,
                "method": request.method,
                "path": target,
                "pool": pool.name.encode("utf-8"),
            }
            pairs = rules.applyRequest(pairs, variables)
        headers = forwarded_request_headers(
            pairs, peer.encode("ascii", "replace"), proto, hostHeader, trusted
        )
        idHeader = (idHeaderName.encode("ascii"), requestId) if requestId is not None else None

        def relay(responseHeaders, targetAddress):
            if rules is not None:
                variables["target"] = (targetAddress or "").encode("ascii", "replace")
                responseHeaders = rules.applyResponse(responseHeaders, variables)
            if cors is not None and origin is not None:
                responseHeaders = cors.applyResponse(responseHeaders, origin)
            if idHeader is not None:
                responseHeaders = [(n, v) for n, v in responseHeaders if n.lower() != idName]
                responseHeaders.append(idHeader)
            return responseHeaders

        def done(exchange: Exchange) -> None:
            self.active.discard(exchange)
            self._log(request, start, exchange.status, exchange.sent, hostHeader,
                      pool.name, exchange.target, exchange.upstreamTime, requestId, clientIp)

        exchange = Exchange(
            request,
            pool,
            self._connections,
            self._clock,
            server.response_timeout,
            request.method,
            target,
            headers,
            done,
            self.health,
            relay,
        )
        self.active.add(exchange)
        if body is not None:
            request.sendContinue()
        exchange.start()
        return NOT_DONE_YET

    def _reject(self, request, start: float, code: int, phrase: bytes, host=None) -> None:
        """
        Refuse a malformed or unacceptable request: answer and close.
        """
        request.closeAfterResponse()
        self._local(request, start, code, phrase, host)

    def _local(
        self, request, start: float, code: int, phrase: bytes, host=None, headers=(), body=True
    ) -> None:
        sent = local_response(request, code, phrase, headers, body)
        self._log(request, start, code, sent, host, None, None, None)

    def _log(
        self, request, start, status, sent, host, pool, target, upstream, requestId=None,
        client=None,
    ) -> None:
        if self._accessLog is None:
            return
        if client is None:
            client = getattr(request.getClientAddress(), "host", "-")
        self._accessLog.write(
            format_line(
                client,
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
                requestId.decode("ascii") if requestId is not None else None,
            )
        )
