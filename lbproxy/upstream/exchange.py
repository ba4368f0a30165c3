# -*- test-case-name: tests.test_proxy -*-
"""
One client request's way to a backend and back.

An L{Exchange} picks a target from the pool, gets a connection, sends the
request head and streams the body, relays the response with backpressure
(through the chain's body filters, if a stage has one), and handles every
way this can fail: docs/architecture.md's "Failures" table says what the
client gets in each case (retries, 502, 504, an aborted response that
never looks complete, 499 when the client goes away).
"""

from __future__ import annotations

from typing import List, Optional

from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure

from lbproxy.policy.headers import end_to_end
from lbproxy.health.checker import describe_failure
from lbproxy.upstream.framing import response_length, retract_head
from lbproxy.wire.http1 import request_head

from lbproxy.pipeline.context import LocalReply

log = Logger()

IDEMPOTENT = frozenset([b"GET", b"HEAD", b"OPTIONS", b"TRACE", b"PUT", b"DELETE"])

#: The clients informational (1xx) responses go on to.
_INTERIM_PROTOCOLS = frozenset([b"HTTP/1.1", b"HTTP/2"])


class Exchange:
    """
    Forwards one request to a pool and relays the answer.

    @ivar status: the status sent to the client (499 if it went away).
    @ivar sent: response body bytes relayed to the client.
    @ivar target: the address of the last target tried, or L{None}.
    @ivar upstreamTime: seconds from picking a target to the end of its
        response, or L{None}.
    """

    #: A 101 may not answer (lbproxy.terminals.upgrade says otherwise).
    upgrading = False

    def __init__(self, context, forward) -> None:
        """
        @param context: the request's L{lbproxy.pipeline.context.RequestContext}:
            the request, the target and headers to send, and the chain whose
            response hooks and done hooks this exchange runs.
        @param forward: the route's L{lbproxy.terminals.forward.Forward}:
            the pool to pick targets from, the response timeout, and the
            services (backend connections, clock, passive health checks).
        """
        request = context.request
        services = forward.services
        self._context = context
        self._request = request
        self._pool = forward.pool
        self._connections = services.connections
        self._clock = services.clock
        self._responseTimeout = forward.responseTimeout
        self._method = request.method
        self._health = services.health
        self._body = request.body
        self._filter = False
        if self._body is not None:
            self._body.onTooLarge = self._bodyTooLarge
        self._retrySafe = self._body is None and self._method in IDEMPOTENT
        self._tried: List = []
        self._member = None
        self._conn = None
        self._connecting: Optional[defer.Deferred] = None
        self._timer = None
        self._headSent = False
        self._freshRetried = False
        self._dropped = False
        self._queued = False
        self.done = False
        self.status = 0
        self.sent = 0
        self.target: Optional[str] = None
        self._upstreamStart: Optional[float] = None
        self.upstreamTime: Optional[float] = None
        request.notifyFinish().addErrback(self._clientGone)

    def start(self) -> None:
        if not self.done:
            # (After a held body, the request may have ended meanwhile.)
            self._attempt()

    # Choosing and connecting ------------------------------------------------

    def _attempt(self, member=None, fresh: bool = False) -> None:
        if member is None:
            member = self._pool.pick(self._tried, self._clock.seconds(), self._context)
            if member is None:
                if self._pool.saturated(self._tried):
                    self._enqueue()
                    return
                if self._tried:
                    self._localError(502, b"Bad Gateway")
                else:
                    self._localError(
                        503, b"Service Unavailable", [(b"Retry-After", self._pool.retryAfter)]
                    )
                return
            self._tried.append(member)
        self._member = member
        state = member.state
        state.inflight += 1
        state.requests += 1
        self.target = member.target.address
        if self._upstreamStart is None:
            self._upstreamStart = self._clock.seconds()
        if not fresh:
            # The common case, a kept-alive connection: no Deferred needed.
            conn = self._connections.takeIdle(member.target)
            if conn is not None:
                self._connected(conn)
                return
        d = self._connections.connect(member.target)
        self._connecting = d
        d.addCallbacks(self._connected, self._connectFailed)
        d.addErrback(self._internalError)

    def _endAttempt(self) -> None:
        member = self._member
        if member is not None:
            state = member.state
            state.inflight -= 1
            self._member = None
            # Room on a target: the oldest request waiting for some goes, in
            # this pool and in the others that count this target's requests.
            queue = self._pool.queue
            if queue.waiters:
                queue.wakeNext()
            others = state.queues
            if others:
                for other in others:
                    if other.waiters and other is not queue:
                        other.wakeNext()

    # Waiting for room (max_inflight): the pool's WaitQueue ------------------

    def _enqueue(self) -> None:
        if self._pool.queue.add(self, self._clock):
            self._queued = True
        else:
            self._localError(503, b"Service Unavailable", [(b"Retry-After", b"1")])

    def _leaveQueue(self) -> None:
        if self._queued:
            self._queued = False
            self._pool.queue.remove(self)

    def queueTimedOut(self) -> None:
        """
        Waited C{queue_timeout} for room in vain (the queue let go): 503.
        """
        self._queued = False
        if not self.done:
            self._localError(503, b"Service Unavailable", [(b"Retry-After", b"1")])

    def resume(self) -> None:
        """
        A member has room again (the queue let go): try once more.
        """
        self._queued = False
        if not self.done:
            self._attempt()

    def _dropConnect(self) -> None:
        """
        Abandon a connection attempt in progress (the exchange is ending).
        """
        d, self._connecting = self._connecting, None
        if d is not None:
            self._dropped = True
            d.cancel()

    def _connectFailed(self, reason: Failure) -> None:
        self._connecting = None
        member = self._member
        self._endAttempt()
        if self.done or self._dropped:
            # Cancelled by us: not the target's fault, nothing to retry.
            return
        self._passiveFailure(member, reason)
        log.warn("connect to {target} failed: {reason}", target=self.target, reason=_describe(reason))
        # Nothing reached the backend: any request may go to the next target.
        self._attempt()

    def _connected(self, conn) -> None:
        self._connecting = None
        if self.done or self._dropped:
            self._connections.release(conn)
            return
        self._conn = conn
        self._context.connected = self._clock.seconds()
        headers = list(self._context.headers)
        chunked = False
        if self._body is not None:
            if self._body.chunked:
                chunked = True
                headers.append((b"Transfer-Encoding", b"chunked"))
            else:
                headers.append((b"Content-Length", b"%d" % (self._body.length,)))
        elif self._method in (b"POST", b"PUT", b"PATCH"):
            headers.append((b"Content-Length", b"0"))
        conn.send(
            self, self._method, request_head(self._method, self._context.target, headers), chunked
        )
        if self._body is None:
            conn.endBody()
            self._requestSent()
        else:
            self._body.attach(self)

    # The body's sink: RequestBody writes through the exchange, which learns
    # when the request is completely sent.

    @property
    def transport(self):
        return self._conn.transport if self._conn is not None else None

    def writeBody(self, data: bytes) -> None:
        self._conn.writeBody(data)

    def endBody(self) -> None:
        conn = self._conn
        if conn is not None:
            conn.endBody()
            if not self._headSent:
                self._requestSent()

    def _requestSent(self) -> None:
        if self._conn is not None and not self.done and self._timer is None:
            self._timer = self._clock.callLater(self._responseTimeout, self._timedOut)

    def _cancelTimer(self) -> None:
        if self._timer is not None:
            if self._timer.active():
                self._timer.cancel()
            self._timer = None

    # Events from the backend connection ----------------------------------

    def responseHead(self, version, code, reason, headers) -> None:
        self._cancelTimer()
        if self.done:
            return
        if self._health is not None and self._member is not None:
            self._health.responded(self._member)
        request = self._request
        self._headSent = True
        self.status = code
        request.setResponseCode(code, reason or None)
        out = request.responseHeaders
        relayed = end_to_end(headers)
        context = self._context
        context.upstream = self.target
        context.responseLength = response_length(self._conn, headers)
        context.firstByte = self._clock.seconds()
        for hook in context.chain.headHooks:
            relayed = hook(context, relayed)
        for name, value in relayed:
            out.addRawHeader(name, value)
        # (A response-head hook whose body part changes the length clears it.)
        length = context.responseLength
        if context.chain.bodyFilters:
            self._filter = True
            length = length if context.chain.keepsLength else None
            out.removeHeader(b"Content-Length")
        if length is not None:
            out.setRawHeaders(b"Content-Length", [b"%d" % (length,)])
        if not request.bodyComplete:
            request.closeAfterResponse()
        request.registerProducer(self._conn, True)

    def responseInterim(self, code, reason, headers) -> None:
        """
        A 1xx (103 Early Hints...) goes on to HTTP/1.1 and HTTP/2 clients,
        without hop-by-hop headers; not 100 (lbproxy answers C{Expect}
        itself), never to HTTP/1.0 clients (which know no 1xx).
        """
        request = self._request
        if code != 100 and not self.done and request.clientproto in _INTERIM_PROTOCOLS:
            request.writeInterim(code, reason, end_to_end(headers))

    def responseBody(self, data: bytes) -> None:
        if self.done:
            return
        if self._filter:
            data = self._context.chain.filterBody(self._context, data, False)
        self.sent += len(data)
        if data:
            self._request.write(data)

    def responseEnd(self) -> None:
        if self.done:
            return
        request = self._request
        request.unregisterProducer()
        conn, self._conn = self._conn, None
        if self._body is not None and not self._body.complete:
            # The backend answered before reading the whole body: the
            # connection cannot carry another request.
            self._body.detach()
            conn.abort()
        if self._filter:
            tail = self._context.chain.filterBody(self._context, b"", True)
            self.sent += len(tail)
            if tail:
                request.write(tail)
        self._endAttempt()
        self._finishUpstream()
        self._end()
        request.finish()

    def upstreamFailed(self, conn, reason: Failure) -> None:
        self._cancelTimer()
        self._conn = None
        if self._body is not None:
            self._body.detach()
        member = self._member
        self._endAttempt()
        if self.done:
            return
        if self._headSent and not self._request.startedWriting:
            # The head goes out with the first body byte (or the end):
            # nothing reached the client yet, so it gets a whole 502.
            log.warn(
                "backend {target} failed before its response body: {reason}",
                target=self.target,
                reason=_describe(reason),
            )
            self._headSent = False
            retract_head(self._request)
            self._localError(502, b"Bad Gateway")
            return
        if self._headSent:
            log.warn(
                "backend {target} failed mid-response: {reason}",
                target=self.target,
                reason=_describe(reason),
            )
            # Logged as a bad gateway: the status the client got heads a
            # response that was cut short.
            self.status = 502
            self._abortClient()
            return
        if not conn.responseStarted and not conn.reused:
            self._passiveFailure(member, reason)
        if self._retrySafe and not conn.responseStarted:
            if conn.reused and not self._freshRetried:
                # Most likely a keep-alive race: the backend closed an idle
                # connection as we reused it. Same target, new connection.
                self._freshRetried = True
                self._attempt(member, fresh=True)
                return
            log.warn(
                "backend {target} failed before responding: {reason}; retrying",
                target=self.target,
                reason=_describe(reason),
            )
            self._attempt()
            return
        log.warn("backend {target} failed: {reason}", target=self.target, reason=_describe(reason))
        self._localError(502, b"Bad Gateway")

    def _bodyTooLarge(self) -> None:
        """
        The body went past its route's C{max_body_size} while streaming:
        the backend never gets a complete request, the client gets 413.
        """
        self._giveUp(413, b"Payload Too Large")

    def _timedOut(self) -> None:
        self._timer = None
        if self.done:
            return
        self._abandonUpstream()
        log.warn(
            "backend {target} sent no response within {timeout}s",
            target=self.target,
            timeout=self._responseTimeout,
        )
        self._localError(504, b"Gateway Timeout")

    def _abandonUpstream(self) -> None:
        """
        Give up on the backend side of this exchange: no timer, no connect
        in progress, no more body, the connection (if any) aborted so it is
        never reused half-way through a request.
        """
        self._cancelTimer()
        self._dropConnect()
        conn, self._conn = self._conn, None
        if self._body is not None:
            self._body.detach()
        if conn is not None:
            conn.abort()
        self._endAttempt()

    def _passiveFailure(self, member, reason: Failure) -> None:
        if self._health is not None and member is not None:
            self._health.connectionFailed(self._pool, member, describe_failure(reason))

    # Endings ----------------------------------------------------------------

    def _internalError(self, reason: Failure) -> None:
        log.failure("proxying to {target} failed", reason, target=self.target)
        self._giveUp(502, b"Bad Gateway")

    def _giveUp(self, code: int, phrase: bytes) -> None:
        """
        Abandon the backend and answer C{code} locally if no byte of the
        backend's response reached the client yet; else cut the client's
        response (it can never look complete).
        """
        if self.done:
            return
        self._abandonUpstream()
        if self._headSent and not self._request.startedWriting:
            self._headSent = False
            retract_head(self._request)
        if self._headSent:
            self._abortClient()
        else:
            self._localError(code, phrase)

    def _localError(self, code: int, phrase: bytes, headers=()) -> None:
        """
        Answer the client from lbproxy (502, 503, 504, 413), through the
        chain's response hooks, and end.
        """
        self._finishUpstream()
        self.done = True
        context = self._context
        context.upstream = self.target
        context.chain.respondLocally(context, LocalReply(code, phrase, headers))
        self.status = context.status
        self.sent = context.sent
        self._end()

    def _abortClient(self) -> None:
        request = self._request
        if request.producer is not None:
            request.unregisterProducer()
        self._finishUpstream()
        self._end()
        # HTTP/1.1: close after what arrived if the client can tell the body
        # is short, else reset; HTTP/2: reset the stream.
        request.abortResponse()

    def _clientGone(self, reason: Failure) -> None:
        if self.done:
            return None
        # 499 (as nginx logs it) unless the channel refused the request,
        # e.g. a malformed or too slow body (400, 408).
        self.status = getattr(self._request, "rejected", None) or 499
        self._abandonUpstream()
        self._finishUpstream()
        self._end()
        return None

    def _finishUpstream(self) -> None:
        if self._upstreamStart is not None and self.upstreamTime is None:
            self.upstreamTime = self._clock.seconds() - self._upstreamStart

    def _end(self) -> None:
        self.done = True
        self._cancelTimer()
        self._leaveQueue()
        context = self._context
        context.status = self.status
        context.sent = self.sent
        context.upstream = self.target
        context.upstreamTime = self.upstreamTime
        # For the access log's durations and the metrics (lbproxy.observe).
        context.entry = self._tried[-1].state if self._tried else None
        context.tries = len(self._tried) + self._freshRetried
        context.upstreamStart = self._upstreamStart
        context.chain.finish(context)


def _describe(reason: Failure) -> str:
    value = reason.value
    text = str(value) or value.__class__.__name__
    return text.strip()
