"""
TLS passthrough by SNI in memory: the ClientHello reader (whole,
fragmented across reads and records, malformed, without SNI), the
configuration, and the listener's choice between relaying and
terminating, with its timeout.
"""

from __future__ import annotations

import struct

from OpenSSL import SSL
from twisted.internet.address import IPv4Address
from twisted.internet.protocol import Factory, Protocol
from twisted.trial.unittest import SynchronousTestCase

from lbproxy.config import ConfigError, parse_config
from lbproxy.relay.connect import BackendConnector
from lbproxy.tls.passthrough import PassthroughFactory
from lbproxy.relay.tcp import pool_lookup
from lbproxy.testing import AbortableTransport, ProxyHarness, _endpoint
from lbproxy.tls.clienthello import ClientHelloReader, MalformedHello


def client_hello(name=None) -> bytes:
    """
    A real ClientHello, from OpenSSL.
    """
    context = SSL.Context(SSL.TLS_METHOD)
    connection = SSL.Connection(context, None)
    if name is not None:
        connection.set_tlsext_host_name(name.encode("ascii"))
    connection.set_connect_state()
    try:
        connection.do_handshake()
    except SSL.WantReadError:
        pass
    return connection.bio_read(65536)


def split_records(hello: bytes, size: int) -> bytes:
    """
    The same handshake message carried in records of C{size} bytes.
    """
    message = hello[5:]
    out = b""
    for start in range(0, len(message), size):
        piece = message[start : start + size]
        out += struct.pack("!BBBH", 22, 3, 1, len(piece)) + piece
    return out


class ClientHelloTests(SynchronousTestCase):
    def read(self, data: bytes, step: int = 0) -> ClientHelloReader:
        reader = ClientHelloReader()
        if not step:
            self.assertTrue(reader.feed(data))
            return reader
        for start in range(0, len(data), step):
            done = reader.feed(data[start : start + step])
            self.assertEqual(done, start + step >= len(data))
        return reader

    def test_serverName(self):
        hello = client_hello("DB.example.com")
        reader = self.read(hello)
        self.assertEqual(reader.serverName, "db.example.com")
        self.assertEqual(reader.received, hello)

    def test_noServerName(self):
        self.assertIsNone(self.read(client_hello()).serverName)

    def test_fragmentedReads(self):
        """
        A ClientHello arriving a byte at a time is read when complete.
        """
        hello = client_hello("a.internal.example")
        reader = self.read(hello, step=1)
        self.assertEqual(reader.serverName, "a.internal.example")
        self.assertEqual(reader.received, hello)

    def test_fragmentedRecords(self):
        """
        A ClientHello split over several records (RFC 8446 5.1).
        """
        data = split_records(client_hello("db.example.com"), 40)
        self.assertEqual(self.read(data).serverName, "db.example.com")
        self.assertEqual(self.read(data, step=7).serverName, "db.example.com")

    def test_notTLS(self):
        for data in [
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
            b"\x16\x02\x00\x00\x10",
            b"\x16\x03\x01\x00\x00",
            b"\x16\x03\x01\x00\x05\x02\x00\x00\x01\x00",
            b"\x17\x03\x03\x00\x05hello",
        ]:
            self.assertRaises(MalformedHello, ClientHelloReader().feed, data)

    def test_malformedBody(self):
        """
        A ClientHello whose inner lengths do not add up.
        """
        hello = bytearray(client_hello("db.example.com"))
        # The session id length byte, past version and random.
        hello[5 + 4 + 2 + 32] = 0xFF
        self.assertRaises(MalformedHello, ClientHelloReader().feed, bytes(hello))
        body = b"\x03\x03" + b"\x00" * 32 + b"\x00" + b"\x00\x02\x13\x01" + b"\x01\x00" + b"\x00\x05\x00\x00\x00\x01\x00"
        message = b"\x01" + len(body).to_bytes(3, "big") + body
        record = struct.pack("!BBBH", 22, 3, 1, len(message)) + message
        self.assertRaises(MalformedHello, ClientHelloReader().feed, record)

    def test_tooLarge(self):
        record = b"\x16\x03\x01\x00\x04\x01\x10\x00\x00"
        self.assertRaises(MalformedHello, ClientHelloReader().feed, record)


TLS_CONFIG = {
    "pools": {
        "pg": {"targets": ["10.5.0.1:5432"]},
        "web": {"targets": ["10.6.0.1:80"]},
        "secure": {"targets": ["https://10.7.0.1:443"]},
    },
    "routes": [{"path": "/", "pool": "web"}],
    "tls": {
        "listen": "tcp:8443",
        "certificates": [{"cert": "c.pem", "key": "k.pem"}],
        "passthrough": {"db.example.com": "pg", "*.internal.example": "pg"},
    },
}


class ConfigTests(SynchronousTestCase):
    def fails(self, passthrough, fragment):
        tls = dict(TLS_CONFIG["tls"], passthrough=passthrough)
        error = self.assertRaises(ConfigError, parse_config, dict(TLS_CONFIG, tls=tls), "t.toml")
        self.assertIn(fragment, str(error))

    def test_parsed(self):
        try:
            config = parse_config(TLS_CONFIG, "t.toml")
        except ConfigError as e:
            self.fail(str(e))
        self.assertEqual(
            config.tls.passthrough, (("db.example.com", "pg"), ("*.internal.example", "pg"))
        )

    def test_errors(self):
        self.fails({"db.example.com": "nope"}, 'no pool named "nope"')
        self.fails({"db.example.com": "secure"}, "host:port")
        self.fails({"bad name!": "pg"}, "tls.passthrough")
        self.fails({"a.*.example": "pg"}, "tls.passthrough")
        self.fails({"x": 3}, "tls.passthrough")


class RecordingProtocol(Protocol):
    def __init__(self):
        self.data = b""

    def dataReceived(self, data):
        self.data += data


class ListenerTests(SynchronousTestCase):
    def setUp(self):
        self.proxy = ProxyHarness({k: v for k, v in TLS_CONFIG.items() if k != "tls"})
        connector = BackendConnector(
            self.proxy.reactor, "pg", pool_lookup(self.proxy.core), _endpoint, 2.0, None
        )
        self.terminated = []
        tlsFactory = Factory.forProtocol(RecordingProtocol)
        original = tlsFactory.buildProtocol

        def build(addr):
            protocol = original(addr)
            self.terminated.append(protocol)
            return protocol

        tlsFactory.buildProtocol = build
        self.factory = PassthroughFactory(
            tlsFactory,
            [("db.example.com", connector), ("*.internal.example", connector)],
            self.proxy.reactor,
            10.0,
            300.0,
            100,
        )

    def connect(self):
        transport = AbortableTransport(
            hostAddress=IPv4Address("TCP", "10.0.0.1", 8443),
            peerAddress=IPv4Address("TCP", "10.0.0.9", 50000),
        )
        protocol = self.factory.buildProtocol(transport.getPeer())
        protocol.makeConnection(transport)
        return protocol, transport

    def test_passthrough(self):
        """
        A ClientHello for a passthrough name: the pool's target gets it
        byte for byte, and the connection is relayed from there.
        """
        for name in ["db.example.com", "x.internal.example"]:
            hello = client_hello(name)
            protocol, transport = self.connect()
            protocol.dataReceived(hello[:10])
            self.assertEqual(self.proxy.pending(), [])
            protocol.dataReceived(hello[10:])
            backend = self.proxy.accept()
            self.assertEqual(backend.received(), hello)
            backend.respond(b"server-hello")
            self.assertEqual(transport.value(), b"server-hello")
            protocol.dataReceived(b"more")
            self.assertEqual(backend.received(), hello + b"more")
        self.assertEqual(self.terminated, [])
        self.assertEqual(self.factory.active, 2)

    def test_terminated(self):
        """
        Any other name, or none: the TLS listener's protocol gets every
        byte, as if nothing had read them.
        """
        for name in ["www.example.com", "a.b.internal.example", None]:
            hello = client_hello(name)
            protocol, transport = self.connect()
            protocol.dataReceived(hello[:3])
            protocol.dataReceived(hello[3:] + b"next")
            protocol.dataReceived(b"after")
            self.assertEqual(self.terminated[-1].data, hello + b"nextafter")
        self.assertEqual(self.proxy.pending(), [])

    def test_malformed(self):
        protocol, transport = self.connect()
        protocol.dataReceived(b"GET / HTTP/1.1\r\n\r\n")
        self.assertTrue(transport.aborted)
        self.assertEqual(self.terminated, [])
        self.assertEqual(self.proxy.reactor.getDelayedCalls(), [])

    def test_tooSlow(self):
        """
        No whole ClientHello within C{client_header_timeout}: closed.
        """
        protocol, transport = self.connect()
        protocol.dataReceived(client_hello("db.example.com")[:20])
        self.proxy.reactor.advance(9.9)
        self.assertFalse(transport.aborted)
        self.proxy.reactor.advance(0.1)
        self.assertTrue(transport.aborted)
        self.assertEqual(self.proxy.pending(), [])


class WiringTests(SynchronousTestCase):
    def test_listenerWrapped(self):
        """
        With C{tls.passthrough}, the TLS listener's factory reads the
        ClientHello first; without, it is the TLS factory itself.
        """
        import os

        from twisted.internet.testing import MemoryReactorClock

        from lbproxy.app.service import ProxyService

        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        tls = dict(TLS_CONFIG["tls"], listen="tcp:18443", certificates=[
            {"cert": "c.pem", "key": "k.pem", "self_signed": ["www.example.com"]}])
        data = dict(TLS_CONFIG, server={"listen": "tcp:18080"}, tls=tls)
        for passthrough, wrapped in [(tls["passthrough"], True), ({}, False)]:
            data["tls"] = dict(tls, passthrough=passthrough)
            config = parse_config(data, os.path.join(directory, "lbproxy.toml"))
            reactor = MemoryReactorClock()
            service = ProxyService(config, reactor)
            service.privilegedStartService()
            service.startService()
            self.addCleanup(service.stopService)
            factories = {port: factory for port, factory, _, _ in reactor.tcpServers}
            self.assertEqual(isinstance(factories[18443], PassthroughFactory), wrapped)
            self.assertNotIsInstance(factories[18080], PassthroughFactory)
