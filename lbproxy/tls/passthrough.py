# -*- test-case-name: tests.test_passthrough -*-
"""
TLS passthrough by SNI on the TLS listeners: the first bytes of every
connection are read as a ClientHello (L{lbproxy.tls.clienthello}); when
its server name is one of C{tls.passthrough}'s, the connection is relayed
undecrypted to that pool (as a C{[[tcp]]} service would, ClientHello
first); any other name, or none, is terminated by lbproxy as before (the
bytes read go to the TLS protocol as if nothing had read them).

A ClientHello that does not parse, or that is not complete within
C{client_header_timeout}, closes the connection.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple

from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger

from lbproxy.relay.connect import BackendConnector
from lbproxy.relay.tcp import RelayedClient, pool_lookup
from lbproxy.tls.clienthello import ClientHelloReader, MalformedHello
from lbproxy.tls.sni import CertificateNames, SNIMap
from lbproxy.upstream.connections import default_endpoint

__all__ = ["PassthroughFactory", "with_passthrough"]

log = Logger()


class _PoolRelay:
    """
    What a passthrough connection to one pool is relayed with (the
    attributes L{lbproxy.relay.tcp.relay_to_pool} reads).
    """

    sendProxy = None

    def __init__(self, owner: "PassthroughFactory", connector: BackendConnector) -> None:
        self._owner = owner
        self.name = "passthrough to %s" % (connector.poolName,)
        self.connector = connector
        self.clock = owner.clock
        self.idleTimeout = owner.idleTimeout
        self.relays = owner.relays
        self.maxConnections = owner.maxConnections

    @property
    def active(self) -> int:
        return self._owner.active

    @active.setter
    def active(self, value: int) -> None:
        self._owner.active = value


class SniffingProtocol(Protocol):
    """
    Reads the ClientHello, then hands the connection on: to a
    L{RelayedClient} (passthrough) or to the TLS listener's protocol.
    """

    inner = None
    _timer = None

    def __init__(self, factory: "PassthroughFactory", addr) -> None:
        self._factory = factory
        self._addr = addr
        self._hello = ClientHelloReader()

    def connectionMade(self) -> None:
        timeout = self._factory.helloTimeout
        if timeout > 0:
            self._timer = self._factory.clock.callLater(timeout, self._timedOut)

    def dataReceived(self, data: bytes) -> None:
        inner = self.inner
        if inner is not None:
            inner.dataReceived(data)
            return
        try:
            done = self._hello.feed(data)
        except MalformedHello as e:
            log.info(
                "closing a TLS connection from {peer}: {why}",
                peer=getattr(self.transport.getPeer(), "host", "-"),
                why=str(e),
            )
            self._cancelTimer()
            self.transport.abortConnection()
            return
        if done:
            self._cancelTimer()
            self._handOn(self._hello.serverName, self._hello.received)

    def _handOn(self, serverName: Optional[str], received: bytes) -> None:
        factory = self._factory
        relay = factory.routes.match(serverName)
        transport = self.transport
        if relay is not None:
            inner = RelayedClient()
            inner.factory = relay
            inner._early.append(received)
            received = b""
        else:
            inner = factory.tlsFactory.buildProtocol(self._addr)
            if inner is None:
                transport.loseConnection()
                return
        self.inner = inner
        # The transport delivers to the new protocol directly where it can
        # (a TCP transport's protocol attribute), else through this one.
        if getattr(transport, "protocol", None) is self:
            transport.protocol = inner
        inner.makeConnection(transport)
        if received:
            inner.dataReceived(received)

    def connectionLost(self, reason=None) -> None:  # type: ignore[override]
        self._cancelTimer()
        if self.inner is not None:
            self.inner.connectionLost(reason)

    def _cancelTimer(self) -> None:
        timer, self._timer = self._timer, None
        if timer is not None and timer.active():
            timer.cancel()

    def _timedOut(self) -> None:
        self._timer = None
        if self.inner is None:
            log.info(
                "closing a TLS connection from {peer}: no ClientHello within {timeout}s",
                peer=getattr(self.transport.getPeer(), "host", "-"),
                timeout=self._factory.helloTimeout,
            )
            self.transport.abortConnection()


class PassthroughFactory(Factory):
    """
    Wraps a TLS listener's factory: passthrough by server name, the rest
    terminated by C{tlsFactory}.

    @ivar routes: an L{SNIMap} of server names to pools' relay settings.
    @ivar active: passthrough connections open now.
    @ivar relays: the relays running.
    """

    noisy = False

    def __init__(
        self,
        tlsFactory,
        routes: List[Tuple[str, BackendConnector]],
        clock,
        helloTimeout: float,
        idleTimeout: float,
        maxConnections: int,
    ) -> None:
        """
        @param routes: C{(server name or "*.domain", connector)} pairs.
        """
        self.tlsFactory = tlsFactory
        self.clock = clock
        self.helloTimeout = helloTimeout
        self.idleTimeout = idleTimeout
        self.maxConnections = maxConnections
        self.active = 0
        self.relays: set = set()
        relays: Dict[str, _PoolRelay] = {}
        entries = []
        for name, connector in routes:
            relay = relays.get(connector.poolName)
            if relay is None:
                relay = relays[connector.poolName] = _PoolRelay(self, connector)
            entries.append((CertificateNames([name]), relay))
        self.routes = SNIMap(entries)

    def doStart(self) -> None:
        self.tlsFactory.doStart()

    def doStop(self) -> None:
        self.tlsFactory.doStop()

    def buildProtocol(self, addr):
        return SniffingProtocol(self, addr)

    def closeAll(self) -> None:
        for relay in list(self.relays):
            relay.abort()


def with_passthrough(config, reactor, core, listeners, endpointFactory=default_endpoint):
    """
    The TLS listeners C{(description, factory)} of
    L{lbproxy.tls.edge.TLSEdge.listeners}, each factory wrapped in a
    L{PassthroughFactory} when C{tls.passthrough} names any server.
    """
    tls = config.tls
    if tls is None or not tls.passthrough:
        return listeners
    server = config.server
    poolFor = pool_lookup(core)
    connectors: Dict[str, BackendConnector] = {}
    routes = []
    for name, pool in tls.passthrough:
        connector = connectors.get(pool)
        if connector is None:
            connector = connectors[pool] = BackendConnector(
                reactor, pool, poolFor, endpointFactory, server.connect_timeout, core.health
            )
        routes.append((name, connector))
    return [
        (
            description,
            PassthroughFactory(
                factory,
                routes,
                reactor,
                server.client_header_timeout,
                server.websocket_idle_timeout,
                server.max_connections,
            ),
        )
        for description, factory in listeners
    ]
