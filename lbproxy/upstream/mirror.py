# -*- test-case-name: tests.test_mirror -*-
"""
Mirroring: copies of requests sent to another pool, fire and forget.

A L{Mirror} belongs to one route (its C{mirror = {...}}).  A copy
(L{MirrorCopy}) is sent once the original request's body has arrived
(bodies up to C{max_body}), through the shared backend
L{lbproxy.upstream.connections.ConnectionPool}, to a target of the
mirror pool chosen by that pool's strategy.  Its answer is read and
thrown away.  Nothing about a copy reaches the client: it has its own
timeout (C{timeout}, counted from the original request), the number of
copies in progress is capped (C{max_inflight}; copies over the cap are
not made, and counted), and its failures are counted, not logged one by
one.
"""

from __future__ import annotations

from typing import List, Optional

from twisted.logger import Logger

from lbproxy.wire.http1 import request_head

log = Logger()

__all__ = ["Mirror", "MirrorCopy", "MirrorStats"]

_BODY_METHODS = frozenset([b"POST", b"PUT", b"PATCH"])


class MirrorStats:
    """
    What a L{Mirror} did (for the status page and metrics).

    @ivar chosen: requests chosen for copying (C{percent}).
    @ivar sent: copies sent to a target.
    @ivar completed: copies answered (any status).
    @ivar failed: copies whose connection or response failed, or with no
        usable target in the mirror pool.
    @ivar timedOut: copies abandoned at C{timeout}.
    @ivar dropped: copies not made because C{max_inflight} were in
        progress.
    @ivar skipped: copies not made because the body was over C{max_body}
        (a copy whose client went away before the end of its body times
        out).
    """

    __slots__ = ("chosen", "sent", "completed", "failed", "timedOut", "dropped", "skipped")

    def __init__(self) -> None:
        self.chosen = 0
        self.sent = 0
        self.completed = 0
        self.failed = 0
        self.timedOut = 0
        self.dropped = 0
        self.skipped = 0

    def asDict(self) -> dict:
        return {name: getattr(self, name) for name in self.__slots__}


class Mirror:
    """
    One route's mirroring.

    @ivar pool: the mirror's runtime pool.
    @ivar inflight: copies in progress.
    @ivar stats: its L{MirrorStats}.
    """

    def __init__(self, config, pool, connections, clock) -> None:
        """
        @param config: the route's L{lbproxy.config.traffic.Mirror}.
        @param pool: the runtime pool copies go to.
        @param connections: the backend L{ConnectionPool}.
        @param clock: an C{IReactorTime}.
        """
        self.pool = pool
        self.connections = connections
        self.clock = clock
        self.timeout = config.timeout
        self.maxBody = config.max_body
        self.maxInflight = config.max_inflight
        self.inflight = 0
        self.stats = MirrorStats()

    def copy(self, method: bytes, target: bytes, headers, body) -> Optional[MirrorCopy]:
        """
        Start a copy of a request chosen for mirroring.

        @param headers: the header pairs forwarded to the primary.
        @param body: the request's L{lbproxy.frontend.http.RequestBody}, or
            L{None}.
        @return: the copy, or L{None} when none is made (over the cap, body
            too long).
        """
        stats = self.stats
        stats.chosen += 1
        if body is not None and (
            not self.maxBody or (body.length is not None and body.length > self.maxBody)
        ):
            stats.skipped += 1
            return None
        if self.inflight >= self.maxInflight:
            stats.dropped += 1
            return None
        return MirrorCopy(self, method, target, headers, body)


class MirrorCopy:
    """
    One copy on its way; the handler of its backend connection's events.
    """

    #: Read by the backend connection: a copy never switches protocols.
    upgrading = False

    def __init__(self, mirror: Mirror, method: bytes, target: bytes, headers, body) -> None:
        self._mirror = mirror
        self._method = method
        self._target = target
        self._headers = headers
        self._body = body
        self._chunks: List[bytes] = []
        self._size = 0
        self._member = None
        self._conn = None
        self._connecting = None
        self.done = False
        mirror.inflight += 1
        self._timer = mirror.clock.callLater(mirror.timeout, self._timedOut)
        if body is None:
            self._send()
        else:
            body.addTap(self.bodyData)

    def bodyData(self, data: bytes, last: bool) -> None:
        """
        A piece of the original request's body (C{last}: the end of it).
        """
        if self.done:
            return
        self._size += len(data)
        if self._size > self._mirror.maxBody:
            self._end("skipped")
            return
        if data:
            self._chunks.append(data)
        if last:
            if self._body.tooLarge:
                # Over the route's max_body_size: the primary got a 413,
                # the copy would be a truncated body.
                self._end("skipped")
            else:
                self._send()

    def _send(self) -> None:
        mirror = self._mirror
        pool = mirror.pool
        member = pool.pick((), mirror.clock.seconds(), None)
        if member is None:
            self._end("failed")
            return
        self._member = member
        member.state.inflight += 1
        mirror.stats.sent += 1
        conn = mirror.connections.takeIdle(member.target)
        if conn is not None:
            self._connected(conn)
            return
        d = self._connecting = mirror.connections.connect(member.target)
        d.addCallbacks(self._connected, self._connectFailed)
        d.addErrback(self._internalError)

    def _internalError(self, reason) -> None:
        log.failure("mirroring to {target} failed", reason, target=self._target)
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.abort()
        self._end("failed")

    def _connectFailed(self, reason) -> None:
        self._connecting = None
        self._end("failed")

    def _connected(self, conn) -> None:
        self._connecting = None
        if self.done:
            self._mirror.connections.release(conn)
            return
        self._conn = conn
        headers = list(self._headers)
        body = b"".join(self._chunks)
        self._chunks = []
        if body or self._method in _BODY_METHODS:
            headers.append((b"Content-Length", b"%d" % (len(body),)))
        conn.send(self, self._method, request_head(self._method, self._target, headers), False)
        if body:
            conn.writeBody(body)
        conn.endBody()

    # The connection's handler ------------------------------------------

    def responseHead(self, version, code, reason, headers) -> None:
        pass

    def responseInterim(self, code, reason, headers) -> None:
        pass

    def responseBody(self, data: bytes) -> None:
        pass

    def responseEnd(self) -> None:
        self._conn = None
        self._end("completed")

    def upstreamFailed(self, conn, reason) -> None:
        self._conn = None
        self._end("failed")

    # Endings -----------------------------------------------------------

    def _timedOut(self) -> None:
        self._timer = None
        if self.done:
            return
        d, self._connecting = self._connecting, None
        conn, self._conn = self._conn, None
        self._end("timedOut")
        if d is not None:
            d.cancel()
        if conn is not None:
            conn.abort()

    def _end(self, outcome: str) -> None:
        if self.done:
            return
        self.done = True
        mirror = self._mirror
        stats = mirror.stats
        setattr(stats, outcome, getattr(stats, outcome) + 1)
        mirror.inflight -= 1
        if self._member is not None:
            self._member.state.inflight -= 1
            self._member = None
        timer, self._timer = self._timer, None
        if timer is not None and timer.active():
            timer.cancel()
