# -*- test-case-name: tests.test_tcp -*-
"""
C{[[tcp]]} services: every connection to the listener is relayed, byte
for byte, to a target of the service's pool.

Reading from the client waits until the backend is connected (so a
refused target is retried on the next before any client byte is sent);
then an optional PROXY protocol header goes first and the two are joined
in a L{lbproxy.relay.pipe.Relay}.  No usable target: the client is
closed at once.  Beyond C{max_connections}, new clients are closed as
they come.
"""

from __future__ import annotations

from typing import Callable, List, Optional

from twisted.application.internet import StreamServerEndpointService
from twisted.application.service import MultiService
from twisted.internet.interfaces import IHalfCloseableProtocol
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from zope.interface import implementer

from lbproxy.relay.connect import Attempt, BackendConnector
from lbproxy.relay.pipe import CLIENT, SERVER, Relay
from lbproxy.upstream.connections import default_endpoint
from lbproxy.wire.proxyheader import proxy_header

__all__ = ["TCPServiceFactory", "RelayedClient", "pool_lookup", "relay_to_pool", "tcp_services"]

log = Logger()


def _address(address):
    return (getattr(address, "host", None), getattr(address, "port", 0))


def relay_to_pool(factory, client: "RelayedClient", ahead: bytes = b"") -> None:
    """
    Connect C{client} (paused) to a target of C{factory}'s pool and relay.

    @param factory: what the client came through: its C{connector}, its
        C{clock}, C{idleTimeout}, C{sendProxy}, C{name}, and C{relays}
        (the set of relays running).
    @param ahead: client bytes read already (a TLS ClientHello) to send
        first.
    """
    transport = client.transport

    def connected(server, member):
        if client.gone:
            attempt.release()
            server.transport.abortConnection()
            return
        relay = Relay(factory.clock, factory.idleTimeout, ended)
        client.relay = relay
        factory.relays.add(relay)
        if factory.sendProxy is not None:
            server.transport.write(
                proxy_header(
                    factory.sendProxy, _address(transport.getPeer()), _address(transport.getHost())
                )
            )
        early = server.attach(relay.half(SERVER))
        relay.join(transport, server.transport, ahead + client.takeEarly(), early)
        transport.resumeProducing()
        if client.eof:
            relay.readLost(CLIENT)
        if server.eof:
            relay.readLost(SERVER)
        lost = server._lost
        if lost is not None:
            relay.lost(SERVER, lost)

    def failed(why: str) -> None:
        log.warn("{name}: closing a client: {why}", name=factory.name, why=why)
        if not client.gone:
            transport.loseConnection()

    def ended(relay: Relay) -> None:
        factory.relays.discard(relay)
        attempt.release()
        log.info(
            "{name}: connection from {client} to {target} ended after {duration:.3f}s: "
            "{up} bytes up, {down} bytes down ({reason})",
            name=factory.name,
            client=client.peer,
            target=attempt.member.target.address if attempt.member is not None else "-",
            duration=relay.duration,
            up=relay.up,
            down=relay.down,
            reason=relay.reason,
        )

    attempt = Attempt(connected, failed)
    client.attempt = attempt
    factory.connector.connect(attempt)


@implementer(IHalfCloseableProtocol)
class RelayedClient(Protocol):
    """
    A client connection of a relaying listener: paused until its backend
    is connected, then one side of a relay.

    @ivar eof: whether the client ended its sending before the join.
    """

    relay: Optional[Relay] = None
    attempt: Optional[Attempt] = None
    gone = False
    eof = False
    peer = "-"

    def __init__(self) -> None:
        self._early: List[bytes] = []

    def connectionMade(self) -> None:
        factory = self.factory
        self.peer = str(getattr(self.transport.getPeer(), "host", "-"))
        if factory.active >= factory.maxConnections:
            log.warn(
                "{name}: {count} connections (max_connections): closing a new one",
                name=factory.name,
                count=factory.active,
            )
            self.gone = True
            self.transport.abortConnection()
            return
        factory.active += 1
        self.transport.pauseProducing()
        relay_to_pool(factory, self)

    def takeEarly(self) -> bytes:
        early, self._early = b"".join(self._early), []
        return early

    def dataReceived(self, data: bytes) -> None:
        relay = self.relay
        if relay is not None:
            relay.received(CLIENT, data)
        else:
            self._early.append(data)

    def readConnectionLost(self) -> None:
        if self.relay is not None:
            self.relay.readLost(CLIENT)
        else:
            self.eof = True

    def writeConnectionLost(self) -> None:
        pass

    def connectionLost(self, reason=None) -> None:  # type: ignore[override]
        if self.gone:
            return
        self.gone = True
        self.factory.active -= 1
        if self.relay is not None:
            self.relay.lost(CLIENT, reason)
        elif self.attempt is not None:
            self.attempt.cancel()


class TCPServiceFactory(Factory):
    """
    The factory of one C{[[tcp]]} service's listener.

    @ivar active: client connections open now.
    @ivar relays: the relays running.
    """

    protocol = RelayedClient
    noisy = False

    def __init__(self, service, clock, connector: BackendConnector) -> None:
        """
        @param service: the L{lbproxy.config.tcp.TCPService}.
        """
        self.name = "tcp %s" % (service.listen,)
        self.clock = clock
        self.connector = connector
        self.idleTimeout = service.idle_timeout
        self.sendProxy = service.send_proxy
        self.maxConnections = service.max_connections
        self.active = 0
        self.relays: set = set()

    def closeAll(self) -> None:
        """
        Drop every relayed connection (the service stops).
        """
        for relay in list(self.relays):
            relay.abort()


class _TCPServices(MultiService):
    def __init__(self, factories) -> None:
        MultiService.__init__(self)
        self.factories = factories

    def stopService(self):
        d = MultiService.stopService(self)
        for factory in self.factories:
            factory.closeAll()
        return d


def pool_lookup(core) -> Callable[[str], object]:
    """
    C{poolFor(name)} for a L{lbproxy.app.wiring.ProxyCore}: the pool of
    that name in the runtime in service (looked up per connection, so a
    reload applies to new connections and leaves running ones alone).
    """
    resource = core.resource
    return lambda name: resource.runtime.pools[name]


def tcp_services(
    config, reactor, core, listen, endpointFactory=default_endpoint
) -> MultiService:
    """
    A service running every C{[[tcp]]} listener of C{config} (a reload
    that changes them can stop this one and start another).

    @param core: the L{lbproxy.app.wiring.ProxyCore}: its runtime's pools
        and its health checker (passive checks).
    @param listen: C{listen(reactor, description)}: the server endpoint
        for a listen string.
    @param endpointFactory: makes backend endpoints, C{(reactor, target,
        timeout)}.
    """
    poolFor = pool_lookup(core)
    health = core.health
    factories = []
    services = []
    for service in config.tcp:
        connector = BackendConnector(
            reactor, service.pool, poolFor, endpointFactory, config.server.connect_timeout, health
        )
        factory = TCPServiceFactory(service, reactor, connector)
        factories.append(factory)
        listener = StreamServerEndpointService(listen(reactor, service.listen), factory)
        listener._raiseSynchronously = True
        services.append(listener)
    parent = _TCPServices(factories)
    for listener in services:
        listener.setServiceParent(parent)
    return parent
