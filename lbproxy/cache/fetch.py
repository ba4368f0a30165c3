# -*- test-case-name: tests.test_cache_stage -*-
"""
A backend GET the cache sends on its own (a revalidation, a background
refresh): on lbproxy's backend connections, to a target of the route's
pool, with the route's response timeout, its body buffered up to the
cache's C{max_object}.  No client waits on its bytes, so nothing streams.
"""

from __future__ import annotations

from typing import Callable, List, Optional

from twisted.logger import Logger
from twisted.python.failure import Failure

from lbproxy.policy.headers import end_to_end
from lbproxy.wire.http1 import request_head

__all__ = ["Fetch"]

log = Logger()

#: Tries before giving up: a refused connection or a reset before any
#: response byte moves on to another target, as the exchange does.
ATTEMPTS = 3


class Fetch:
    """
    One GET and its outcome, told to C{onDone(fetch)} once.

    @ivar status: the response's status, or 0 if none arrived.
    @ivar reason: its reason phrase.
    @ivar headers: its end-to-end header pairs.
    @ivar body: its body, when complete.
    @ivar error: why no complete response arrived (L{None} if one did).
    @ivar tooLarge: whether the body went past C{maxBody}.
    @ivar requestTime: when the request was sent.
    @ivar responseTime: when the head arrived.
    @cvar upgrading: never: a 101 may not answer (the backend connection
        reads it per request).
    """

    upgrading = False

    def __init__(self, pool, connections, clock, responseTimeout: float, target: bytes,
                 headers, maxBody: int, onDone: Callable[["Fetch"], None]) -> None:
        self._pool = pool
        self._connections = connections
        self._clock = clock
        self._timeout = responseTimeout
        self._target = target
        self._headers = list(headers)
        self._maxBody = maxBody
        self._onDone: Optional[Callable] = onDone
        self._tried: List = []
        self._member = None
        self._conn = None
        self._timer = None
        self._parts: List[bytes] = []
        self._size = 0
        self.status = 0
        self.reason = b""
        self.headers: List = []
        self.body = b""
        self.error: Optional[str] = None
        self.tooLarge = False
        self.requestTime = 0.0
        self.responseTime = 0.0

    def start(self) -> None:
        self._attempt()

    def _attempt(self) -> None:
        if self._onDone is None:
            return
        if len(self._tried) >= ATTEMPTS:
            self._finish("no target answered")
            return
        member = self._pool.pick(self._tried, self._clock.seconds(), None)
        if member is None:
            self._finish("no usable target")
            return
        self._tried.append(member)
        self._member = member
        member.state.inflight += 1
        conn = self._connections.takeIdle(member.target)
        if conn is not None:
            self._connected(conn)
            return
        d = self._connections.connect(member.target)
        d.addCallbacks(self._connected, self._connectFailed)

    def _endAttempt(self) -> None:
        member, self._member = self._member, None
        if member is not None:
            member.state.inflight -= 1
            queue = self._pool.queue
            if queue.waiters:
                queue.wakeNext()

    def _connectFailed(self, reason: Failure) -> None:
        self._endAttempt()
        log.warn("cache fetch: connect failed: {reason}", reason=reason.getErrorMessage())
        self._attempt()

    def _connected(self, conn) -> None:
        if self._onDone is None:
            self._connections.release(conn)
            return
        self._conn = conn
        self.requestTime = self._clock.seconds()
        conn.send(self, b"GET", request_head(b"GET", self._target, self._headers), False)
        conn.endBody()
        self._timer = self._clock.callLater(self._timeout, self._timedOut)

    def _timedOut(self) -> None:
        self._timer = None
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.abort()
        self._endAttempt()
        self._finish("no response within %gs" % (self._timeout,))

    def _cancelTimer(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    # The connection's handler ---------------------------------------------

    def responseHead(self, version, code, reason, headers) -> None:
        self._cancelTimer()
        self.status = code
        self.reason = reason or b""
        self.headers = end_to_end(headers)
        self.responseTime = self._clock.seconds()

    def responseInterim(self, code, reason, headers) -> None:
        pass

    def responseBody(self, data: bytes) -> None:
        if self._onDone is None:
            return
        self._size += len(data)
        if self._size > self._maxBody:
            self.tooLarge = True
            conn, self._conn = self._conn, None
            if conn is not None:
                conn.abort()
            self._endAttempt()
            self._finish("response larger than max_object")
            return
        self._parts.append(data)

    def responseEnd(self) -> None:
        self._conn = None
        self._endAttempt()
        if self._onDone is None:
            return
        self.body = b"".join(self._parts)
        self._parts = []
        self._finish(None)

    def upstreamFailed(self, conn, reason: Failure) -> None:
        self._cancelTimer()
        self._conn = None
        self._endAttempt()
        if self._onDone is None:
            return
        if not conn.responseStarted:
            self.status = 0
            self._attempt()
            return
        self._finish("backend failed: %s" % (reason.getErrorMessage(),))

    def _finish(self, error: Optional[str]) -> None:
        self._cancelTimer()
        onDone, self._onDone = self._onDone, None
        if onDone is None:
            return
        if error is not None:
            self.error = error
        onDone(self)
