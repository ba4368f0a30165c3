"""
C{[[tcp]]} services in memory: configuration, the PROXY protocol header,
connecting with retries, relaying with flow control, limits and timeouts.
"""

from __future__ import annotations

import struct

from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from lbproxy.config import ConfigError, parse_config
from lbproxy.relay.connect import BackendConnector
from lbproxy.relay.tcp import TCPServiceFactory, pool_lookup
from lbproxy.testing import AbortableTransport, ProxyHarness, _endpoint
from lbproxy.wire.proxyheader import V2_SIGNATURE, proxy_header

CONFIG = {
    "server": {"connect_timeout": 2.0},
    "pools": {
        "pg": {"targets": ["10.5.0.1:5432", "10.5.0.2:5432"], "health": {"passive_fail": 1}},
        "web": {"targets": ["https://10.6.0.1:443"]},
    },
    "routes": [{"path": "/", "pool": "pg"}],
    "tcp": [{"listen": "tcp:15432", "pool": "pg", "idle_timeout": 60, "max_connections": 2}],
}


class ConfigTests(SynchronousTestCase):
    def fails(self, tcp, fragment):
        config = dict(CONFIG, tcp=tcp)
        error = self.assertRaises(ConfigError, parse_config, config, "t.toml")
        self.assertIn(fragment, str(error))

    def test_parsed(self):
        service = parse_config(CONFIG, "t.toml").tcp[0]
        self.assertEqual(
            (service.listen, service.pool, service.idle_timeout, service.max_connections),
            ("tcp:15432", "pg", 60.0, 2),
        )
        self.assertIsNone(service.send_proxy)
        self.assertEqual(parse_config(dict(CONFIG, tcp=[]), "t.toml").tcp, ())

    def test_errors(self):
        self.fails([{"listen": "tcp:1"}], "tcp[0]")
        self.fails([{"listen": "tcp:1", "pool": "nope"}], 'no pool named "nope"')
        self.fails([{"listen": "tcp:1", "pool": "web"}], "host:port")
        self.fails([{"listen": "tcp:1", "pool": "pg", "send_proxy": "v3"}], '"v1" or "v2"')
        self.fails([{"listen": "tcp:1", "pool": "pg", "idle": 3}], "tcp[0]")
        self.fails(
            [{"listen": "tcp:1", "pool": "pg"}, {"listen": "tcp:1", "pool": "pg"}],
            "already used",
        )
        self.fails([{"listen": "tcp:8080", "pool": "pg"}], "already used by server.listen")


class ProxyHeaderTests(SynchronousTestCase):
    def test_v1(self):
        self.assertEqual(
            proxy_header("v1", ("10.0.0.9", 50000), ("10.0.0.1", 15432)),
            b"PROXY TCP4 10.0.0.9 10.0.0.1 50000 15432\r\n",
        )
        self.assertEqual(
            proxy_header("v1", ("::1", 5), ("::2", 6)), b"PROXY TCP6 ::1 ::2 5 6\r\n"
        )
        self.assertEqual(proxy_header("v1", (None, 0), ("::2", 6)), b"PROXY UNKNOWN\r\n")

    def test_v2(self):
        header = proxy_header("v2", ("10.0.0.9", 50000), ("10.0.0.1", 15432))
        self.assertEqual(header[:12], V2_SIGNATURE)
        self.assertEqual(header[12:16], b"\x21\x11\x00\x0c")
        self.assertEqual(header[16:], bytes([10, 0, 0, 9, 10, 0, 0, 1]) + struct.pack("!HH", 50000, 15432))
        six = proxy_header("v2", ("::1", 1), ("10.0.0.1", 2))
        self.assertEqual(six[12:16], b"\x21\x21\x00\x24")
        self.assertEqual(len(six), 16 + 36)
        self.assertEqual(proxy_header("v2", ("/tmp/s", 0), ("x", 0)), V2_SIGNATURE + b"\x20\x00\x00\x00")


class HalfClosingTransport(AbortableTransport):
    """
    Remembers a half-close.
    """

    writeClosed = False

    def loseWriteConnection(self):
        self.writeClosed = True


class ServiceTests(SynchronousTestCase):
    def setUp(self, **changes):
        tcp = dict(CONFIG["tcp"][0], **changes)
        self.proxy = ProxyHarness(dict(CONFIG, tcp=[tcp]))
        config = self.proxy.config
        connector = BackendConnector(
            self.proxy.reactor, "pg", pool_lookup(self.proxy.core), _endpoint, 2.0, self.proxy.health
        )
        self.factory = TCPServiceFactory(config.tcp[0], self.proxy.reactor, connector)

    def client(self, port=50000):
        transport = HalfClosingTransport(
            hostAddress=IPv4Address("TCP", "10.0.0.1", 15432),
            peerAddress=IPv4Address("TCP", "10.0.0.9", port),
        )
        protocol = self.factory.buildProtocol(transport.getPeer())
        protocol.makeConnection(transport)
        return protocol, transport

    def test_relay(self):
        """
        The client is not read until the backend is connected; then bytes
        go both ways unchanged, early ones first.
        """
        protocol, transport = self.client()
        self.assertEqual(transport.producerState, "paused")
        protocol.dataReceived(b"startup")
        backend = self.proxy.accept()
        self.assertEqual(transport.producerState, "producing")
        self.assertEqual(backend.received(), b"startup")
        backend.respond(b"R")
        self.assertEqual(transport.value(), b"R")
        protocol.dataReceived(b"Q")
        self.assertEqual(backend.received(), b"startupQ")
        self.assertEqual(self.factory.active, 1)
        member = self.proxy.resource.runtime.pools["pg"].members[0]
        self.assertEqual(member.state.inflight, 1)
        backend.close()
        self.assertTrue(transport.disconnecting)
        protocol.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(self.factory.active, 0)
        self.assertEqual(member.state.inflight, 0)
        self.assertEqual(self.factory.relays, set())
        self.assertEqual(self.proxy.reactor.getDelayedCalls(), [])

    def test_halfClose(self):
        """
        A client that ends its sending still gets the answer: the backend's
        sending side is ended in turn, and each side is closed once it is
        done both ways.
        """
        protocol, transport = self.client()
        protocol.dataReceived(b"request")
        protocol.readConnectionLost()
        host, port, factory = self.proxy.takeConnection()
        backendTransport = HalfClosingTransport(
            hostAddress=IPv4Address("TCP", host, port),
            peerAddress=IPv4Address("TCP", "127.0.0.1", 40000),
        )
        backend = factory.buildProtocol(None)
        backend.makeConnection(backendTransport)
        self.assertEqual(backendTransport.value(), b"request")
        self.assertTrue(backendTransport.writeClosed)
        self.assertFalse(transport.disconnecting)
        backend.dataReceived(b"answer")
        self.assertEqual(transport.value(), b"answer")
        # (Through the endpoint's wrapper, as the reactor would call it.)
        backend.readConnectionLost()
        self.assertTrue(transport.writeClosed)
        self.assertTrue(transport.disconnecting)
        self.assertTrue(backendTransport.disconnecting)

    def test_sendProxy(self):
        """
        With C{send_proxy}, the backend gets the header before any client
        byte.
        """
        self.setUp(send_proxy="v1")
        protocol, transport = self.client()
        protocol.dataReceived(b"hello")
        backend = self.proxy.accept()
        self.assertEqual(backend.received(), b"PROXY TCP4 10.0.0.9 10.0.0.1 50000 15432\r\nhello")

    def test_retryRefused(self):
        """
        A refused connect goes to the next target (the refused one is
        ejected by passive checks); nothing is lost.
        """
        protocol, transport = self.client()
        protocol.dataReceived(b"first")
        self.assertEqual(self.proxy.refuse(), "10.5.0.1:5432")
        backend = self.proxy.accept()
        self.assertEqual(backend.address, "10.5.0.2:5432")
        self.assertEqual(backend.received(), b"first")
        members = self.proxy.resource.runtime.pools["pg"].members
        self.assertFalse(members[0].state.up)
        self.assertEqual(members[0].state.inflight, 0)

    def test_noTarget(self):
        """
        Every target refused: the client is closed at once.
        """
        protocol, transport = self.client()
        self.proxy.refuse()
        self.proxy.refuse()
        self.assertTrue(transport.disconnecting)
        self.assertEqual(self.proxy.pending(), [])

    def test_connectTimeout(self):
        """
        A target that does not accept within C{connect_timeout} counts as
        refused.
        """
        protocol, transport = self.client()
        self.proxy.reactor.advance(2.0)
        self.assertEqual(len(self.proxy.reactor.tcpClients), 2)

    def test_clientGoneWhileConnecting(self):
        protocol, transport = self.client()
        protocol.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(self.factory.active, 0)
        self.assertEqual(self.proxy.reactor.getDelayedCalls(), [])

    def test_maxConnections(self):
        self.client(1)
        self.client(2)
        protocol, transport = self.client(3)
        self.assertTrue(transport.aborted)
        self.assertEqual(self.factory.active, 2)
        self.assertEqual(len(self.proxy.reactor.tcpClients), 2)

    def test_idleTimeout(self):
        protocol, transport = self.client()
        backend = self.proxy.accept()
        self.proxy.reactor.advance(59)
        protocol.dataReceived(b"x")
        self.proxy.reactor.advance(59)
        self.assertFalse(transport.aborted)
        self.proxy.reactor.advance(1)
        self.assertTrue(transport.aborted)
        self.assertTrue(backend.transport.aborted)

    def test_flowControl(self):
        """
        A backend that cannot take more pauses reading the client, and the
        other way round.
        """
        protocol, transport = self.client()
        backend = self.proxy.accept()
        backend.transport.producer.pauseProducing()
        self.assertEqual(transport.producerState, "paused")
        backend.transport.producer.resumeProducing()
        self.assertEqual(transport.producerState, "producing")
        transport.producer.pauseProducing()
        self.assertEqual(backend.transport.producerState, "paused")
        transport.producer.resumeProducing()
        self.assertEqual(backend.transport.producerState, "producing")


class ConnectCheckTests(SynchronousTestCase):
    """
    A pool of a TCP service without an HTTP health path is checked by a
    TCP connect.
    """

    def test_marked(self):
        config = parse_config(CONFIG, "t.toml")
        self.assertTrue(config.pools["pg"].health.connect_check)
        withPath = dict(CONFIG, pools=dict(CONFIG["pools"], pg={
            "targets": ["10.5.0.1:5432"], "health": {"path": "/up"}}))
        self.assertFalse(parse_config(withPath, "t.toml").pools["pg"].health.connect_check)
        noTCP = {k: v for k, v in CONFIG.items() if k != "tcp"}
        self.assertFalse(parse_config(noTCP, "t.toml").pools["pg"].health.connect_check)

    def test_probes(self):
        """
        Probes connect (and hang up); refused connects take the target out
        after C{fall} of them, accepted ones bring it back after C{rise}.
        """
        config = dict(CONFIG, pools=dict(CONFIG["pools"], pg={
            "targets": ["10.5.0.1:5432"], "health": {"interval": 1, "timeout": 0.5, "fall": 2, "rise": 1}}))
        proxy = ProxyHarness(config)
        proxy.health.startService()
        self.addCleanup(proxy.health.stopService)
        entry = proxy.resource.runtime.pools["pg"].members[0].state
        self.assertTrue(entry.health.probed)
        for _ in range(2):
            proxy.reactor.advance(1)
            self.assertEqual(proxy.pending(), ["10.5.0.1:5432"])
            proxy.refuse()
        self.assertFalse(entry.up)
        proxy.reactor.advance(1)
        backend = proxy.accept()
        self.assertTrue(backend.transport.disconnecting)
        self.assertTrue(entry.up)


class WiringTests(SynchronousTestCase):
    """
    C{twistd lbproxy} listens for every C{[[tcp]]} service (with the
    configured backlog) and relays its connections.
    """

    def test_listens(self):
        from lbproxy.app.service import ProxyService
        from twisted.internet.testing import MemoryReactorClock

        config = parse_config(
            dict(CONFIG, server={"listen": "tcp:18080", "listen_backlog": 77}), "t.toml"
        )
        reactor = MemoryReactorClock()
        service = ProxyService(config, reactor)
        service.privilegedStartService()
        service.startService()
        self.addCleanup(service.stopService)
        listening = {port: (factory, backlog) for port, factory, backlog, _ in reactor.tcpServers}
        self.assertEqual(sorted(listening), [15432, 18080])
        factory, backlog = listening[15432]
        self.assertIsInstance(factory, TCPServiceFactory)
        self.assertEqual(backlog, 77)
        self.assertEqual(factory.maxConnections, 2)
