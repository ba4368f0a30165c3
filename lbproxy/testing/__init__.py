"""
In-memory test helpers: a whole proxy on a L{MemoryReactorClock}, clients
as L{StringTransport}s feeding bytes into L{ProxyChannel}s, and backends as
L{StringTransport}s behind the connections the proxy opens.

Nothing here touches a socket or sleeps; time moves with
C{harness.reactor.advance(seconds)}.
"""

from __future__ import annotations

import io
from typing import List, Optional

from twisted.internet.address import IPv4Address
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure

from lbproxy.app.wiring import ProxyCore
from lbproxy.observe.accesslog import AccessLog
from lbproxy.config import Config, parse_config


def _endpoint(reactor, target, timeout):
    return TCP4ClientEndpoint(reactor, target.host, target.port, timeout=timeout)


class AbortableTransport(StringTransport):
    """
    A L{StringTransport} that remembers whether it was aborted (reset)
    rather than closed cleanly.
    """

    aborted = False

    def abortConnection(self) -> None:
        self.aborted = True
        StringTransport.loseConnection(self)


class Client:
    """
    One client connection into the proxy's site (a
    L{lbproxy.frontend.http.ProxySite}).
    """

    def __init__(self, site, address: str, port: int) -> None:
        self.transport = AbortableTransport(
            hostAddress=IPv4Address("TCP", "127.0.0.1", 8080),
            peerAddress=IPv4Address("TCP", address, port),
        )
        self.channel = site.buildProtocol(self.transport.getPeer())
        self.channel.makeConnection(self.transport)

    def send(self, data: bytes) -> None:
        self.channel.dataReceived(data)

    def received(self) -> bytes:
        return self.transport.value()

    def disconnect(self) -> None:
        """
        The client goes away.
        """
        from twisted.internet.error import ConnectionLost

        self.channel.connectionLost(Failure(ConnectionLost("client gone")))


class Backend:
    """
    The server end of one connection the proxy opened to a backend.
    """

    def __init__(self, host: str, port: int, protocol) -> None:
        self.host = host
        self.port = port
        self.address = "%s:%d" % (host, port)
        self.protocol = protocol
        self.transport = AbortableTransport(
            hostAddress=IPv4Address("TCP", host, port),
            peerAddress=IPv4Address("TCP", "127.0.0.1", 40000),
        )
        protocol.makeConnection(self.transport)

    def received(self) -> bytes:
        return self.transport.value()

    def respond(self, data: bytes) -> None:
        self.protocol.dataReceived(data)

    def close(self, reason: Optional[Failure] = None) -> None:
        """
        The backend closes the connection.
        """
        from twisted.internet.error import ConnectionDone

        self.transport.disconnecting = True
        self.protocol.connectionLost(reason or Failure(ConnectionDone()))


class ProxyHarness:
    """
    A proxy built from a configuration, running on a memory reactor.

    @ivar reactor: the L{MemoryReactorClock}; its C{tcpClients} are the
        backend connections the proxy has asked for.
    @ivar log: the access log's text.
    """

    def __init__(self, config, probeClient=None, endpointFactory=None) -> None:
        """
        @param config: a L{Config} or the C{dict} of a parsed TOML file.
        @param probeClient: the treq-like client for active health probes
            (the health checker is built but not started).
        @param endpointFactory: makes backend endpoints (e.g. an
            L{lbproxy.upstream.tls.UpstreamEndpoints} for TLS to targets);
            plain TCP on the memory reactor by default.
        """
        if not isinstance(config, Config):
            config = parse_config(config, "test.toml")
        self.config = config
        self.reactor = MemoryReactorClock()
        self.log = io.StringIO()
        #: The proxy's parts, wired as C{twistd lbproxy} wires them.
        self.core = core = ProxyCore(
            config, self.reactor, endpointFactory or _endpoint, probeClient,
            AccessLog(self.log, form=config.server.access_log_format),
        )
        self.connections = core.connections
        #: The targets' state, shared by every runtime built on it.
        self.registry = core.registry
        #: What runtimes are built with: C{build_runtime(config,
        #: harness.registry, harness.services)}, or C{harness.core.build(config)}.
        self.services = core.services
        self.health = core.health
        self.resource = core.resource
        self.site = core.site
        self._handled = 0
        self.backends: List[Backend] = []

    def client(self, address: str = "10.0.0.1", port: int = 50000) -> Client:
        return Client(self.site, address, port)

    def pending(self) -> List[str]:
        """
        The addresses of connection attempts not yet accepted or refused.
        """
        return [
            "%s:%d" % (host, port)
            for host, port, _, _, _ in self.reactor.tcpClients[self._handled :]
        ]

    def _next(self):
        if self._handled >= len(self.reactor.tcpClients):
            raise AssertionError("the proxy opened no new backend connection")
        host, port, factory, _, _ = self.reactor.tcpClients[self._handled]
        self._handled += 1
        return host, port, factory

    def takeConnection(self):
        """
        The oldest pending connection attempt, for the caller to complete
        (e.g. over TLS with L{twisted.test.iosim}).

        @return: C{(host, port, factory)}.
        """
        return self._next()

    def accept(self) -> Backend:
        """
        Let the oldest pending connection attempt succeed.
        """
        host, port, factory = self._next()
        backend = Backend(host, port, factory.buildProtocol(IPv4Address("TCP", host, port)))
        self.backends.append(backend)
        return backend

    def refuse(self) -> str:
        """
        Let the oldest pending connection attempt be refused.
        """
        host, port, factory = self._next()
        connector = self.reactor.connectors[self._handled - 1]
        factory.clientConnectionFailed(connector, Failure(ConnectionRefusedError()))
        return "%s:%d" % (host, port)

    def exchangeTimers(self) -> list:
        """
        Pending delayed calls other than the client channels' own timers.
        """
        return [
            call
            for call in self.reactor.getDelayedCalls()
            if "TimeoutMixin" not in repr(call) and "GuardedChannel" not in repr(call)
        ]

    def logLines(self) -> List[str]:
        return self.log.getvalue().splitlines()
