# -*- test-case-name: tests.test_tcp -*-
"""
Connecting a relayed client to a target of a pool: pick a target with
the pool's strategy, connect within C{connect_timeout}, and on a refused
or timed-out connect try the next target (nothing of the client's was
sent yet, so this is always safe), feeding passive health checks as
HTTP requests do.  Used by C{[[tcp]]} services and TLS passthrough.

The connected client's bytes go nowhere until the caller joins the two
connections in a L{lbproxy.relay.pipe.Relay}.
"""

from __future__ import annotations

from typing import Callable, List, Optional

from twisted.internet import defer
from twisted.internet.interfaces import IHalfCloseableProtocol
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from zope.interface import implementer

from lbproxy.health.checker import describe_failure

__all__ = ["Attempt", "BackendConnector", "ServerSide"]

log = Logger()


@implementer(IHalfCloseableProtocol)
class ServerSide(Protocol):
    """
    The connection to the backend: bytes and its end go to C{half}, set
    when the relay is joined (bytes before that are kept).

    @ivar eof: whether the backend ended its sending before the join.
    """

    half = None
    eof = False

    def __init__(self) -> None:
        self._early: List[bytes] = []
        self._lost = None

    def readConnectionLost(self) -> None:
        if self.half is not None:
            self.half.relay.readLost(self.half.side)
        else:
            self.eof = True

    def writeConnectionLost(self) -> None:
        pass

    def dataReceived(self, data: bytes) -> None:
        if self.half is not None:
            self.half.dataReceived(data)
        else:
            self._early.append(data)

    def connectionLost(self, reason=None) -> None:  # type: ignore[override]
        if self.half is not None:
            self.half.connectionLost(reason)
        else:
            self._lost = reason or True

    def attach(self, half) -> bytes:
        """
        From now on, send bytes to C{half}.

        @return: the bytes that arrived before.
        """
        self.half = half
        early, self._early = b"".join(self._early), []
        return early


class _ServerFactory(Factory):
    noisy = False
    protocol = ServerSide


class BackendConnector:
    """
    Connects to a pool's targets, trying the next one when a connect
    fails.  It holds no runtime: the pool is looked up by name in the
    current runtime at each connection (C{poolFor}).
    """

    def __init__(
        self,
        reactor,
        poolName: str,
        poolFor: Callable[[str], object],
        endpointFactory,
        connectTimeout: float,
        health=None,
    ) -> None:
        """
        @param poolFor: C{poolFor(name)}, the runtime pool of that name in
            the runtime now in service.
        @param endpointFactory: C{(reactor, target, timeout) ->
            IStreamClientEndpoint}.
        @param health: the L{lbproxy.health.checker.HealthChecker}, told of
            failed connects (passive ejection) and good ones, or L{None}.
        """
        self._reactor = reactor
        self.poolName = poolName
        self._poolFor = poolFor
        self._endpointFactory = endpointFactory
        self.connectTimeout = connectTimeout
        self._health = health

    def connect(self, attempt: "Attempt") -> None:
        attempt.start(self)


class Attempt:
    """
    One client's way to a backend: the targets tried, the connect under
    way.  C{onConnected(protocol, member)} gets the L{ServerSide} and the
    pool member (whose C{state.inflight} counts this connection until
    L{release}); C{onFailed(message)} is called when no target is left.

    @ivar member: the member connected to, once connected.
    """

    def __init__(
        self,
        onConnected: Callable[[ServerSide, object], None],
        onFailed: Callable[[str], None],
    ) -> None:
        self._onConnected = onConnected
        self._onFailed = onFailed
        self._tried: List = []
        self._pending: Optional[defer.Deferred] = None
        self._cancelled = False
        self.member = None
        self._connector: Optional[BackendConnector] = None

    def start(self, connector: BackendConnector) -> None:
        self._connector = connector
        self._next()

    def _next(self) -> None:
        connector = self._connector
        reactor = connector._reactor
        try:
            pool = connector._poolFor(connector.poolName)
        except KeyError:
            self._onFailed(f"no pool named {connector.poolName!r} any more")
            return
        member = pool.pick(self._tried, reactor.seconds(), None)
        if member is None:
            self._onFailed(
                "no usable target in pool %s (%d tried)" % (connector.poolName, len(self._tried))
            )
            return
        self._tried.append(member)
        member.state.inflight += 1
        target = member.target
        endpoint = connector._endpointFactory(reactor, target, connector.connectTimeout)
        d = self._pending = endpoint.connect(_ServerFactory())
        timer = reactor.callLater(connector.connectTimeout, d.cancel)

        def done(result):
            self._pending = None
            if timer.active():
                timer.cancel()
            return result

        def connected(protocol):
            if self._cancelled:
                member.state.inflight -= 1
                protocol.transport.abortConnection()
                return
            if connector._health is not None:
                connector._health.responded(member)
            self.member = member
            self._onConnected(protocol, member)

        def failed(reason):
            member.state.inflight -= 1
            if self._cancelled:
                return
            why = describe_failure(reason)
            if reason.check(defer.CancelledError):
                why = "no connection within %gs" % (connector.connectTimeout,)
            if connector._health is not None:
                connector._health.connectionFailed(pool, member, why)
            log.warn("connect to {target} failed: {why}", target=target.address, why=why)
            self._next()

        d.addBoth(done)
        d.addCallbacks(connected, failed)
        d.addErrback(lambda f: log.failure("relay connect failed", f))

    def cancel(self) -> None:
        """
        The client went away: stop connecting.
        """
        self._cancelled = True
        d, self._pending = self._pending, None
        if d is not None:
            d.cancel()

    def release(self) -> None:
        """
        The relayed connection ended: it no longer counts on its target.
        """
        member, self.member = self.member, None
        if member is not None:
            member.state.inflight -= 1
