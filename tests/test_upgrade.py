"""
HTTP upgrades (WebSocket handshakes) in memory: which requests ask to
switch protocols, which headers go where, the 101 switch to a relay, and
the relay's flow control and idle timeout.
"""

from __future__ import annotations

from twisted.internet.error import ConnectionDone
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from lbproxy.config import parse_config
from lbproxy.policy.headers import asks_upgrade, upgrade_value
from lbproxy.testing import ProxyHarness
from lbproxy.wire.http1 import ProtocolError, ResponseParser

CONFIG = {
    "server": {"websocket_idle_timeout": 300.0, "response_timeout": 10.0},
    "pools": {"ws": {"targets": ["10.1.0.1:8081"]}},
    "routes": [
        {"path": "/chat", "pool": "ws"},
        {"path": "/private", "pool": "ws", "access": {"deny": ["0.0.0.0/0"]}},
    ],
}

HANDSHAKE = (
    b"GET /chat HTTP/1.1\r\nHost: example.com\r\nConnection: keep-alive, Upgrade\r\n"
    b"Upgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Sec-WebSocket-Version: 13\r\n\r\n"
)
SWITCH = (
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
)


def head_lines(data: bytes):
    return data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")


class PolicyTests(SynchronousTestCase):
    """
    The pure rules: C{Connection} must list C{upgrade}; C{Upgrade} must
    name a protocol other than C{h2c}.
    """

    def test_asks(self):
        self.assertTrue(asks_upgrade([b"Upgrade"]))
        self.assertTrue(asks_upgrade([b"keep-alive, upgrade"]))
        self.assertTrue(asks_upgrade([b"close", b"UPGRADE"]))
        self.assertFalse(asks_upgrade([b"keep-alive"]))
        self.assertFalse(asks_upgrade([b"close"]))
        self.assertFalse(asks_upgrade([b"upgrades"]))

    def test_value(self):
        self.assertEqual(upgrade_value([b"websocket"]), b"websocket")
        self.assertEqual(upgrade_value([b" websocket ", b"foo/2"]), b"websocket, foo/2")
        self.assertIsNone(upgrade_value(None))
        self.assertIsNone(upgrade_value([b"  "]))
        self.assertIsNone(upgrade_value([b"h2c"]))
        self.assertIsNone(upgrade_value([b"websocket, H2C"]))
        self.assertIsNone(upgrade_value([b"websocket,,x"]))


class ParserTests(SynchronousTestCase):
    """
    The response parser takes a 101 only for a request that asked to
    upgrade, and stops there.
    """

    class Handler:
        def __init__(self):
            self.switched = None

        def responseSwitched(self, version, reason, headers, rest):
            self.switched = (version, reason, headers, rest)

    def test_switched(self):
        handler = self.Handler()
        parser = ResponseParser(handler)
        parser.expect(b"GET", True)
        parser.feed(SWITCH + b"\x81\x00rest")
        version, reason, headers, rest = handler.switched
        self.assertEqual((version, reason, rest), (b"HTTP/1.1", b"Switching Protocols", b"\x81\x00rest"))
        self.assertIn((b"Upgrade", b"websocket"), headers)
        self.assertTrue(parser.done)
        self.assertFalse(parser.keepAlive)

    def test_unasked(self):
        parser = ResponseParser(self.Handler())
        parser.expect(b"GET")
        self.assertRaises(ProtocolError, parser.feed, SWITCH)


class UpgradeTests(SynchronousTestCase):
    def setUp(self):
        self.proxy = ProxyHarness(CONFIG)

    def handshake(self, request=HANDSHAKE):
        client = self.proxy.client()
        client.send(request)
        backend = self.proxy.accept()
        return client, backend

    def test_forwardedHeaders(self):
        """
        An upgrade request reaches the backend with its C{Upgrade} field
        and C{Connection: upgrade}; the client's other C{Connection} tokens
        stay behind.
        """
        client, backend = self.handshake()
        lines = head_lines(backend.received())
        self.assertEqual(lines[0], b"GET /chat HTTP/1.1")
        self.assertIn(b"Upgrade: websocket", lines)
        self.assertIn(b"Connection: upgrade", lines)
        self.assertIn(b"sec-websocket-key: dghlihnhbxbszsbub25jzq==", [l.lower() for l in lines])
        self.assertEqual([l for l in lines if l.lower().startswith(b"connection")], [b"Connection: upgrade"])

    def test_notAnUpgrade(self):
        """
        C{Upgrade} without C{Connection: upgrade}, over HTTP/1.0, or for
        h2c is hop-by-hop: dropped, and no C{Connection: upgrade} is sent.
        """
        for request in [
            b"GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n",
            b"GET /chat HTTP/1.0\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
            b"GET /chat HTTP/1.1\r\nHost: x\r\nConnection: upgrade, HTTP2-Settings\r\n"
            b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n",
            b"POST /chat HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: websocket\r\n"
            b"Content-Length: 2\r\n\r\nhi",
        ]:
            client, backend = self.handshake(request)
            head = backend.received().split(b"\r\n\r\n", 1)[0].lower()
            self.assertNotIn(b"upgrade", head, request)
            self.assertNotIn(b"http2-settings", head)

    def test_switch(self):
        """
        A 101 goes to the client with the backend's handshake fields, then
        bytes flow both ways unchanged, including those that came with
        the 101 and those the client sent before it.
        """
        client, backend = self.handshake()
        client.send(b"early-frame")
        backend.respond(SWITCH + b"server-hello")
        response = client.received()
        head, _, rest = response.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        self.assertEqual(lines[0], b"HTTP/1.1 101 Switching Protocols")
        self.assertIn(b"Upgrade: websocket", lines)
        self.assertIn(b"Connection: Upgrade", lines)
        self.assertIn(b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", lines)
        self.assertFalse([l for l in lines if l.lower().startswith(b"transfer-encoding")])
        self.assertEqual(rest, b"server-hello")
        self.assertTrue(backend.received().endswith(b"\r\n\r\nearly-frame"))
        client.transport.clear()
        backend.transport.clear()
        client.send(b"\x81\x05hello")
        self.assertEqual(backend.received(), b"\x81\x05hello")
        backend.respond(b"\x81\x02ok")
        self.assertEqual(client.received(), b"\x81\x02ok")
        # Bytes that look like HTTP are not parsed as a next request.
        client.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(self.proxy.pending(), [])
        # The backend connection is never pooled.
        target = self.proxy.resource.runtime.pools["ws"].members[0].target
        self.assertEqual(self.proxy.connections.idleCount(target), 0)
        # No channel timer is left: a WebSocket outlives client_header_timeout.
        self.proxy.reactor.advance(200)
        self.assertFalse(client.transport.disconnecting)

    def test_endLogged(self):
        """
        When one side closes, the other is closed once its bytes are
        written; the access log gets one line (status 101, bytes sent down)
        when both are closed.
        """
        client, backend = self.handshake()
        backend.respond(SWITCH)
        client.send(b"12345")
        backend.respond(b"abc")
        self.proxy.reactor.advance(7)
        self.assertEqual(self.proxy.logLines(), [])
        backend.close()
        self.assertTrue(client.transport.disconnecting)
        client.channel.connectionLost(Failure(ConnectionDone()))
        lines = self.proxy.logLines()
        self.assertEqual(len(lines), 1)
        self.assertIn('"GET /chat HTTP/1.1" 101 3 ', lines[0])
        self.assertEqual(self.proxy.reactor.getDelayedCalls(), [])

    def test_outlivesSwap(self):
        """
        A runtime swap (a reload) while a WebSocket is open leaves it
        working, even when the new configuration drops its route and pool;
        new requests use the new runtime.
        """
        client, backend = self.handshake()
        backend.respond(SWITCH)
        config = dict(CONFIG, pools={"other": {"targets": ["10.9.0.1:80"]}},
                      routes=[{"path": "/", "pool": "other"}])
        self.proxy.core.swap(self.proxy.core.build(parse_config(config, "new.toml")))
        client.send(b"after swap")
        self.assertTrue(backend.received().endswith(b"after swap"))
        backend.respond(b"reply")
        self.assertTrue(client.received().endswith(b"reply"))
        other = self.proxy.client(port=50001)
        other.send(b"GET /chat HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(self.proxy.pending(), ["10.9.0.1:80"])
        backend.close()
        client.channel.connectionLost(Failure(ConnectionDone()))
        self.assertIn('"GET /chat HTTP/1.1" 101 5 ', self.proxy.logLines()[-1])

    def test_idleTimeout(self):
        """
        No byte either way for C{websocket_idle_timeout}: both sides are
        closed; traffic keeps it open.
        """
        client, backend = self.handshake()
        backend.respond(SWITCH)
        self.proxy.reactor.advance(200)
        client.send(b"x")
        self.proxy.reactor.advance(200)
        self.assertFalse(client.transport.aborted)
        self.proxy.reactor.advance(101)
        self.assertTrue(client.transport.aborted)
        self.assertTrue(backend.transport.aborted)

    def test_refused(self):
        """
        A backend that refuses the upgrade has its answer passed through;
        the connection stays HTTP.
        """
        client, backend = self.handshake()
        backend.respond(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 4\r\n\r\nnope")
        response = client.received()
        self.assertTrue(response.startswith(b"HTTP/1.1 403 Forbidden\r\n"))
        self.assertTrue(response.endswith(b"nope"))
        self.assertNotIn(b"upgrade", response.lower())
        client.transport.clear()
        client.send(b"GET /chat HTTP/1.1\r\nHost: x\r\n\r\n")
        backend.respond(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        self.assertTrue(client.received().startswith(b"HTTP/1.1 200 OK"))

    def test_unaskedSwitch(self):
        """
        A 101 to a request that did not ask to upgrade: the backend
        connection is closed and the client gets 502.
        """
        client, backend = self.handshake(b"GET /chat HTTP/1.1\r\nHost: x\r\n\r\n")
        backend.respond(SWITCH + b"junk")
        self.assertTrue(backend.transport.aborted)
        self.assertTrue(client.received().startswith(b"HTTP/1.1 502 "))

    def test_switchWithoutUpgrade(self):
        """
        A 101 without C{Upgrade}: 502, the backend connection closed.
        """
        client, backend = self.handshake()
        backend.respond(b"HTTP/1.1 101 Switching Protocols\r\n\r\n")
        self.assertTrue(backend.transport.aborted)
        self.assertTrue(client.received().startswith(b"HTTP/1.1 502 "))

    def test_stagesApply(self):
        """
        An upgrade request passes the route's stages: access rules refuse
        it before any backend is asked.
        """
        client = self.proxy.client()
        client.send(HANDSHAKE.replace(b"/chat", b"/private"))
        self.assertTrue(client.received().startswith(b"HTTP/1.1 403 "))
        self.assertEqual(self.proxy.pending(), [])

    def test_clientFlowControl(self):
        """
        When the backend's connection cannot take more, reading from the
        client pauses, and resumes when it drains; the same the other way.
        """
        client, backend = self.handshake()
        backend.respond(SWITCH)
        relayProducer = backend.transport.producer
        self.assertIsNotNone(relayProducer)
        self.assertTrue(backend.transport.streaming)
        relayProducer.pauseProducing()
        self.assertEqual(client.transport.producerState, "paused")
        relayProducer.resumeProducing()
        self.assertEqual(client.transport.producerState, "producing")
        client.transport.producer.pauseProducing()
        self.assertEqual(backend.transport.producerState, "paused")
        client.transport.producer.resumeProducing()
        self.assertEqual(backend.transport.producerState, "producing")
