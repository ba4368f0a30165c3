# -*- test-case-name: tests.test_pipeline -*-
"""
What the stages of one request share: one L{RequestContext} per request,
and the L{LocalReply} a stage returns to answer the request itself.
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

__all__ = ["LocalReply", "RequestContext"]

HeaderList = List[Tuple[bytes, bytes]]


class LocalReply:
    """
    An answer lbproxy gives itself instead of forwarding (400, 404, 429, a
    CORS preflight, ...).  Immutable by convention: stages keep the common
    ones as constants.

    @ivar code: the status code.
    @ivar phrase: the reason phrase.
    @ivar headers: more C{(name, value)} pairs to send.
    @ivar body: whether to send the short plain-text body.
    @ivar close: whether the connection is closed after the answer (the
        request was malformed, or its body will not be read).
    """

    __slots__ = ("code", "phrase", "headers", "body", "close")

    def __init__(
        self,
        code: int,
        phrase: bytes,
        headers: Sequence[Tuple[bytes, bytes]] = (),
        body: bool = True,
        close: bool = False,
    ) -> None:
        self.code = code
        self.phrase = phrase
        self.headers = headers
        self.body = body
        self.close = close

    def __repr__(self) -> str:
        return f"<LocalReply {self.code} {self.phrase!r}>"


class RequestContext:
    """
    One request on its way through the pipeline.  The dispatcher fills the
    first fields; each stage sets what it learns (the client address, the
    request id, the headers to forward, ...) so that no later stage has to
    find it again.

    @ivar request: the L{lbproxy.frontend.http.ProxyRequest}.
    @ivar runtime: the L{lbproxy.runtime.snapshot.Runtime} the request
        started on; it finishes on it even if a reload swaps in another.
    @ivar start: when the request was dispatched (the runtime's clock).
    @ivar chain: the L{lbproxy.pipeline.chain.Chain} running the request
        (the runtime's entry chain, then its route's chain); its response
        hooks and done hooks apply to whatever answer the request gets.
    @ivar hostHeader: the C{Host} (or absolute-form authority) as sent.
    @ivar host: the normalized host, or L{None}.
    @ivar rawPath: the path of the request target as sent.
    @ivar query: the query, without C{"?"}, or L{None}.
    @ivar path: the normalized path (routing, policies).
    @ivar target: the request target to send the backend (path and query).
    @ivar peer: the address of the connection's peer.
    @ivar clientIp: the client's address: the peer, or the client a trusted
        proxy names.
    @ivar trusted: whether the peer is a trusted proxy.
    @ivar route: the L{lbproxy.runtime.snapshot.CompiledRoute}, once routed.
    @ivar pairs: the request headers to forward, once scanned.
    @ivar origin: the C{Origin} header, once scanned.
    @ivar requestId: the request id, once chosen.
    @ivar preflight: whether the request is a CORS preflight.
    @ivar proto: C{b"http"} or C{b"https"}, once the forwarded headers are
        built.
    @ivar variables: the header rules' template variables, once needed.
    @ivar headers: the header pairs sent to the backend.
    @ivar pool: the name of the pool the request was forwarded to.
    @ivar upstream: the address of the last target tried.
    @ivar upstreamTime: seconds from picking a target to the end of its
        response.
    @ivar status: the status sent (499: the client went away).
    @ivar sent: response body bytes sent.
    @ivar upgrade: the C{Upgrade} value of a request that asks to switch
        protocols (a WebSocket), as forwarded, else L{None}.
    @ivar cache: the cache stage's state of the request, or L{None}.
    @ivar cacheStatus: the C{X-Cache} label (C{"HIT"}, C{"MISS"}, ...) for
        the access log and metrics, or L{None} on a route without a cache.
    @ivar encoder: the compression stage's encoder of the response, or
        L{None}.
    @ivar responseLength: the length the backend's response declared, or
        L{None} (chunked, close-delimited), for the response-head hooks.
    @ivar sticky: the request's L{lbproxy.balance.sticky.StickyMark} on a
        route with sticky sessions, else L{None}.
    @ivar member: the pool member chosen last, where the pool notes it
        (score-driven weights), else L{None}.
    @ivar local: whether lbproxy answered itself (L{Chain.respondLocally}).
    @ivar entry: the registry entry (L{lbproxy.runtime.targets.TargetState})
        of the last target tried, or L{None}.
    @ivar tries: targets tried (a retry on a fresh connection counts).
    @ivar upstreamStart: when the first target was picked, or L{None}.
    @ivar connected: when the last attempt had its connection, or L{None}.
    @ivar firstByte: when the backend's response head arrived, or L{None}.
    """

    __slots__ = (
        "request", "runtime", "start", "chain", "hostHeader", "host", "rawPath", "query",
        "path", "target", "peer", "clientIp", "trusted", "route", "pairs", "origin",
        "requestId", "preflight", "proto", "variables", "headers", "pool", "upstream",
        "upstreamTime", "status", "sent", "upgrade", "cache", "cacheStatus", "encoder",
        "responseLength", "sticky", "member", "local", "entry", "tries", "upstreamStart",
        "connected", "firstByte",
    )

    def __init__(self, request, runtime, start: float) -> None:
        self.request = request
        self.runtime = runtime
        self.start = start
        self.chain = None
        self.hostHeader: Optional[bytes] = None
        self.host: Optional[str] = None
        self.rawPath = b""
        self.query: Optional[bytes] = None
        self.path = ""
        self.target = b""
        # A peer without an IP address (a UNIX socket) matches no network.
        peer = getattr(request.getClientAddress(), "host", "-")
        self.peer: str = peer
        self.clientIp: str = peer
        self.trusted = False
        self.route = None
        self.pairs: Optional[HeaderList] = None
        self.origin: Optional[bytes] = None
        self.requestId: Optional[bytes] = None
        self.preflight = False
        self.proto: Optional[bytes] = None
        self.variables: Optional[dict] = None
        self.headers: Optional[HeaderList] = None
        self.pool: Optional[str] = None
        self.upstream: Optional[str] = None
        self.upstreamTime: Optional[float] = None
        self.status = 0
        self.sent = 0
        self.upgrade: Optional[bytes] = None
        self.cache = None
        self.cacheStatus: Optional[str] = None
        self.encoder = None
        self.responseLength: Optional[int] = None
        self.sticky = None
        self.member = None
        self.local = False
        self.entry = None
        self.tries = 0
        self.upstreamStart: Optional[float] = None
        self.connected: Optional[float] = None
        self.firstByte: Optional[float] = None

    def __repr__(self) -> str:
        return f"<RequestContext {self.request.method!r} {self.request.uri!r}>"
