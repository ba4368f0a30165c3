# -*- test-case-name: tests.test_proxy -*-
"""
Keep-alive HTTP/1.1 connections to backend targets.

L{UpstreamConnection} carries one request at a time and hands the response
to whoever sent it (an L{lbproxy.upstream.exchange.Exchange}); L{ConnectionPool}
opens connections with a connect timeout and keeps a bounded number of idle
ones per target, each closed after an idle timeout.
"""

from __future__ import annotations

from collections import deque
from typing import Callable, Deque, Dict, Optional

from twisted.internet import defer
from twisted.internet.endpoints import (
    HostnameEndpoint,
    TCP4ClientEndpoint,
    TCP6ClientEndpoint,
)
from twisted.internet.error import ConnectError, ConnectionDone, TimeoutError
from twisted.internet.interfaces import IPushProducer, IStreamClientEndpoint
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from lbproxy.config import Target
from lbproxy.frontend.writebatch import batch_writes
from lbproxy.tls.failures import tls_failure
from lbproxy.wire.http1 import LAST_CHUNK, ProtocolError, ResponseParser, chunk

log = Logger()


def _poolKey(target: Target):
    """
    Which idle connections may serve C{target}: those to the same address,
    made with the same TLS settings (an https target's CA and client
    certificate come from its pool, which may differ between pools).
    """
    if target.scheme == "http" and target.tls is None:
        return target.address
    return (target.scheme, target.address, target.tls)


class ConnectTimeout(ConnectError):
    """
    The backend did not accept the connection within C{connect_timeout}.
    """


def default_endpoint(reactor, target: Target, timeout: float) -> IStreamClientEndpoint:
    """
    A client endpoint for a target: direct for IP literals, resolving
    otherwise.
    """
    if ":" in target.host:
        return TCP6ClientEndpoint(reactor, target.host, target.port, timeout=timeout)
    if target.host.replace(".", "").isdigit():
        return TCP4ClientEndpoint(reactor, target.host, target.port, timeout=timeout)
    return HostnameEndpoint(reactor, target.host.encode("ascii"), target.port, timeout=timeout)


@implementer(IPushProducer)
class UpstreamConnection(Protocol):
    """
    One connection to a backend, carrying one request at a time.

    As a push producer it lets the client side pause reading the response
    when the client is slow (backpressure).

    @ivar target: the backend this connects to.
    @ivar reused: whether the current request runs on a connection that
        already carried one (its failure before any response byte may be a
        keep-alive race, not a backend fault).
    @ivar bytesSent: whether any byte of the current request was written.
    """

    _handler = None
    _bodyChunked = False
    _requestDone = True
    _responseDone = True
    _failed = False

    def __init__(self, pool: "ConnectionPool", target: Target) -> None:
        self._pool = pool
        self.target = target
        self._parser = ResponseParser(self)
        self.reused = False
        self.requests = 0
        self.connected = False

    def connectionMade(self) -> None:
        self.connected = True
        batch_writes(self.transport)

    # Sending -------------------------------------------------------------

    def send(self, handler, method: bytes, head: bytes, chunked: bool) -> None:
        """
        Start a request. C{head} is complete (request line, headers, empty
        line); a body follows through L{writeBody} and L{endBody} unless the
        caller ends it at once.

        @param handler: receives C{responseHead}, C{responseBody},
            C{responseEnd} and C{upstreamFailed(connection, reason)}.
        @param chunked: whether the body is sent with chunked framing.
        """
        self._handler = handler
        self._bodyChunked = chunked
        self._requestDone = False
        self._responseDone = False
        self.reused = self.requests > 0
        self.requests += 1
        # A handler that forwards a request to switch protocols says so
        # (Exchange.upgrading): only then may a 101 answer.
        self._parser.expect(method, handler.upgrading)
        self.transport.write(head)

    def writeBody(self, data: bytes) -> None:
        if self._bodyChunked:
            self.transport.write(chunk(data))
        else:
            self.transport.write(data)

    def endBody(self) -> None:
        """
        The request is completely sent.
        """
        if self._bodyChunked:
            self.transport.write(LAST_CHUNK)
        self._requestDone = True
        self._maybeRelease()

    # Receiving -----------------------------------------------------------

    def dataReceived(self, data: bytes) -> None:
        try:
            self._parser.feed(data)
        except ProtocolError as e:
            self._fail(Failure(e))

    def responseHead(self, version, code, reason, headers) -> None:
        if self._handler is not None:
            self._handler.responseHead(version, code, reason, headers)

    def responseInterim(self, code, reason, headers) -> None:
        if self._handler is not None:
            self._handler.responseInterim(code, reason, headers)

    def responseSwitched(self, version, reason, headers, rest: bytes) -> None:
        # The connection leaves HTTP for good: never pooled again; the
        # handler takes it over (lbproxy.terminals.upgrade).
        self._failed = True
        self._responseDone = True
        handler, self._handler = self._handler, None
        if handler is not None:
            handler.responseSwitched(self, reason, headers, rest)
        else:
            self.abort()

    def responseBody(self, data: bytes) -> None:
        if self._handler is not None:
            self._handler.responseBody(data)

    def responseEnd(self) -> None:
        self._responseDone = True
        handler, self._handler = self._handler, None
        # Back to the pool first: finishing the client's response may start
        # its next (pipelined) request at once, which can then reuse this.
        self._maybeRelease()
        if handler is not None:
            handler.responseEnd()

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        self.connected = False
        if not self._responseDone:
            try:
                # Only a clean close ends a close-delimited body; a reset
                # (or a TLS connection closed without close_notify, which
                # Twisted reports as ConnectionLost) truncates it.
                self._parser.eof(reason is None or reason.check(ConnectionDone) is not None)
            except ProtocolError as e:
                # A failed TLS handshake says why (certificate not trusted,
                # another name) rather than just "closed".
                self._fail(tls_failure(reason) or Failure(e))
            else:
                return
        self._pool._lost(self)

    def _fail(self, reason: Failure) -> None:
        """
        The response cannot be completed: tell the handler once and drop the
        connection.
        """
        if self._failed:
            return
        self._failed = True
        handler, self._handler = self._handler, None
        self._responseDone = True
        self.abort()
        if handler is not None:
            handler.upstreamFailed(self, reason)

    def _maybeRelease(self) -> None:
        if self._requestDone and self._responseDone and not self._failed:
            self._pool._release(self, self._parser.keepAlive)

    @property
    def responseLength(self) -> Optional[int]:
        """
        The Content-Length framing the current response's body, if any.
        """
        return self._parser.length

    @property
    def responseStarted(self) -> bool:
        """
        Whether any byte of the response to the current request arrived.
        """
        return self._parser.started

    def abort(self) -> None:
        """
        Drop the connection at once (the request is abandoned).
        """
        self._handler = None
        self._failed = True
        if self.transport is not None and self.connected:
            self.connected = False
            self.transport.abortConnection()
            self._pool._lost(self)

    # IPushProducer: the client side pauses us when it cannot keep up.

    def pauseProducing(self) -> None:
        if self.connected:
            self.transport.pauseProducing()

    def resumeProducing(self) -> None:
        if self.connected:
            self.transport.resumeProducing()

    def stopProducing(self) -> None:
        self.abort()


class _ConnectionFactory(Factory):
    noisy = False

    def __init__(self, pool: "ConnectionPool", target: Target) -> None:
        self._pool = pool
        self._target = target

    def buildProtocol(self, addr):
        return UpstreamConnection(self._pool, self._target)


class ConnectionPool:
    """
    Connections to backends, kept alive between requests.

    Idle connections are reused newest first and closed after
    C{idleTimeout}; one timer serves them all (no timer per request).

    @ivar maxIdle: idle connections kept per target; more are closed.
    @ivar idleTimeout: seconds an idle connection is kept.
    """

    def __init__(
        self,
        reactor,
        connectTimeout: float,
        maxIdle: int = 32,
        idleTimeout: float = 60.0,
        endpointFactory: Optional[Callable[..., IStreamClientEndpoint]] = None,
    ) -> None:
        self._reactor = reactor
        self.connectTimeout = connectTimeout
        self.maxIdle = maxIdle
        self.idleTimeout = idleTimeout
        self._endpointFactory = endpointFactory or default_endpoint
        self._idle: Dict[object, Deque[UpstreamConnection]] = {}
        # Idle connections in the order they became idle, with that time.
        self._idleSince: Dict[UpstreamConnection, float] = {}
        self._sweep = None
        self._active: set = set()
        self._pending: set = set()
        self.opened = 0

    def takeIdle(self, target: Target) -> Optional[UpstreamConnection]:
        """
        An idle connection to C{target}, now in use, or L{None}.
        """
        idle = self._idle.get(_poolKey(target))
        while idle:
            conn = idle.pop()
            del self._idleSince[conn]
            if conn.connected:
                self._active.add(conn)
                return conn
        return None

    def connect(self, target: Target) -> defer.Deferred:
        """
        A new connection to C{target} (L{takeIdle} offers a kept-alive one).

        @return: a L{Deferred} firing with an L{UpstreamConnection}, or
            failing with L{ConnectTimeout} or the connect error.
        """
        endpoint = self._endpointFactory(self._reactor, target, self.connectTimeout)
        d = endpoint.connect(_ConnectionFactory(self, target))
        self._pending.add(d)
        timer = self._reactor.callLater(self.connectTimeout, d.cancel)

        def connected(conn):
            self.opened += 1
            self._active.add(conn)
            return conn

        def failed(reason):
            if reason.check(defer.CancelledError) and not timer.active():
                raise ConnectTimeout(
                    string="no connection to %s within %gs"
                    % (target.address, self.connectTimeout)
                )
            if reason.check(TimeoutError):
                raise ConnectTimeout(string=str(reason.value))
            return reason

        def done(result):
            self._pending.discard(d)
            if timer.active():
                timer.cancel()
            return result

        d.addBoth(done)
        d.addCallbacks(connected, failed)
        return d

    def release(self, conn: UpstreamConnection) -> None:
        """
        Give back a connection that was not used after all.
        """
        self._release(conn, True)

    def _release(self, conn: UpstreamConnection, keepAlive: bool) -> None:
        self._active.discard(conn)
        if not conn.connected:
            return
        idle = self._idle.setdefault(_poolKey(conn.target), deque())
        if not keepAlive or len(idle) >= self.maxIdle:
            conn.connected = False
            conn.transport.loseConnection()
            return
        # A slow client may have paused reading this connection's response:
        # an idle connection must read again (the next response, or the
        # backend closing it).
        conn.resumeProducing()
        idle.append(conn)
        now = self._reactor.seconds()
        self._idleSince[conn] = now
        if self._sweep is None:
            self._sweep = self._reactor.callLater(self.idleTimeout, self._expireIdle)

    def _expireIdle(self) -> None:
        """
        Close the connections idle for C{idleTimeout}; come back when the
        next one is due.
        """
        self._sweep = None
        now = self._reactor.seconds()
        for conn, since in list(self._idleSince.items()):
            due = since + self.idleTimeout
            if due > now:
                self._sweep = self._reactor.callLater(due - now, self._expireIdle)
                return
            del self._idleSince[conn]
            self._discardIdle(conn)
            if conn.connected:
                conn.connected = False
                conn.transport.loseConnection()

    def _discardIdle(self, conn: UpstreamConnection) -> None:
        idle = self._idle.get(_poolKey(conn.target))
        if idle is not None:
            try:
                idle.remove(conn)
            except ValueError:
                pass

    def _lost(self, conn: UpstreamConnection) -> None:
        self._active.discard(conn)
        if self._idleSince.pop(conn, None) is not None:
            self._discardIdle(conn)

    def idleCount(self, target: Target) -> int:
        return len(self._idle.get(_poolKey(target), ()))

    def closeAll(self) -> None:
        """
        Close idle connections, abort pending connects and active
        connections (used when the service stops).
        """
        for d in list(self._pending):
            d.cancel()
        if self._sweep is not None and self._sweep.active():
            self._sweep.cancel()
        self._sweep = None
        for conn in list(self._idleSince):
            if conn.connected:
                conn.connected = False
                conn.transport.loseConnection()
        self._idleSince.clear()
        self._idle.clear()
        for conn in list(self._active):
            conn.abort()
