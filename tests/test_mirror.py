"""
Tests for mirroring (L{lbproxy.upstream.mirror}, L{lbproxy.stages.mirror}),
in memory: copies reach the mirror pool, bodies included up to the cap,
and nothing the mirror does reaches the client.
"""

from __future__ import annotations

import random

from twisted.trial.unittest import SynchronousTestCase

from lbproxy.testing import ProxyHarness

PRIMARY = "10.8.0.1:80"
SHADOW = "10.9.0.1:80"


def config(**mirror):
    settings = {"pool": "shadow"}
    settings.update(mirror)
    return {
        "server": {"response_timeout": 30.0},
        "pools": {"main": {"targets": [PRIMARY]}, "shadow": {"targets": [SHADOW]}},
        "routes": [{"path": "/plain", "pool": "main"}, {"path": "/", "pool": "main", "mirror": settings}],
    }


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"


class MirrorTests(SynchronousTestCase):
    def setUp(self):
        self.proxy = ProxyHarness(config(timeout=2.0, max_inflight=2, max_body=16))
        self.stage = self.stageOf(self.proxy)
        self.mirror = self.stage.mirror

    def stageOf(self, proxy):
        chain = proxy.resource.runtime.match("h", "/").chain
        return [s for s in chain.stages if s.name == "mirror"][0]

    def timers(self):
        """
        Pending timers other than the clients' and the idle connections'.
        """
        return [c for c in self.proxy.exchangeTimers() if "_expireIdle" not in repr(c)]

    def acceptAll(self):
        backends = {}
        while self.proxy.pending():
            backend = self.proxy.accept()
            backends.setdefault(backend.address, []).append(backend)
        return backends

    def test_copy(self):
        """
        A request goes to the primary and a copy to the mirror pool; the
        client gets the primary's answer whatever the mirror answers.
        """
        client = self.proxy.client()
        client.send(b"GET /a?b=1 HTTP/1.1\r\nHost: h\r\nX-Thing: 1\r\n\r\n")
        backends = self.acceptAll()
        primary, shadow = backends[PRIMARY][0], backends[SHADOW][0]
        self.assertTrue(shadow.received().startswith(b"GET /a?b=1 HTTP/1.1\r\n"))
        self.assertIn(b"X-Thing: 1\r\n", shadow.received())
        self.assertIn(b"X-Forwarded-For: 10.0.0.1\r\n", shadow.received())
        shadow.respond(b"HTTP/1.1 500 Oops\r\nContent-Length: 4\r\n\r\nfail")
        primary.respond(OK)
        response = client.received()
        self.assertTrue(response.startswith(b"HTTP/1.1 200 OK\r\n"), response)
        self.assertTrue(response.endswith(b"\r\n\r\nhello"))
        self.assertEqual(
            self.mirror.stats.asDict(),
            dict(chosen=1, sent=1, completed=1, failed=0, timedOut=0, dropped=0, skipped=0),
        )
        self.assertEqual(self.mirror.inflight, 0)
        self.assertEqual(self.timers(), [])
        # The mirror's connection is kept alive for the next copy.
        shadowTarget = self.proxy.resource.runtime.pools["shadow"].members[0].target
        self.assertEqual(self.proxy.connections.idleCount(shadowTarget), 1)

    def test_silentMirror(self):
        """
        A mirror that never answers changes nothing for the client; its
        copy is abandoned at the mirror's timeout.
        """
        client = self.proxy.client()
        client.send(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        backends = self.acceptAll()
        backends[PRIMARY][0].respond(OK)
        self.assertTrue(client.received().endswith(b"hello"))
        self.assertEqual(self.mirror.inflight, 1)
        self.proxy.reactor.advance(2.0)
        self.assertTrue(backends[SHADOW][0].transport.aborted)
        self.assertEqual(self.mirror.stats.timedOut, 1)
        self.assertEqual(self.mirror.inflight, 0)
        self.assertEqual(self.proxy.registry.entries()[1].inflight, 0)

    def test_deadMirror(self):
        client = self.proxy.client()
        client.send(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        # The copy asked first (the stage runs before forwarding).
        self.assertEqual(self.proxy.pending(), [SHADOW, PRIMARY])
        self.proxy.refuse()
        self.proxy.accept().respond(OK)
        self.assertTrue(client.received().startswith(b"HTTP/1.1 200 OK"))
        self.assertEqual(self.mirror.stats.failed, 1)
        self.assertEqual(self.mirror.inflight, 0)
        self.assertEqual(self.timers(), [])

    def test_connectTimeout(self):
        """
        A mirror that does not accept the connection: the copy ends at its
        own timeout (before the connect timeout), nothing left behind.
        """
        client = self.proxy.client()
        client.send(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        self.proxy.takeConnection()  # the mirror's, never completed
        self.proxy.accept().respond(OK)
        self.assertTrue(client.received().endswith(b"hello"))
        self.proxy.reactor.advance(2.0)
        self.assertEqual(self.mirror.stats.timedOut, 1)
        self.assertEqual(self.timers(), [])

    def test_cap(self):
        """
        Beyond max_inflight copies in progress, copies are dropped and
        counted; the requests themselves go on.
        """
        clients = []
        for _ in range(5):
            client = self.proxy.client()
            client.send(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
            clients.append(client)
        backends = self.acceptAll()
        self.assertEqual(len(backends[SHADOW]), 2)
        self.assertEqual(len(backends[PRIMARY]), 5)
        for primary in backends[PRIMARY]:
            primary.respond(OK)
        for client in clients:
            self.assertTrue(client.received().endswith(b"hello"))
        stats = self.mirror.stats
        self.assertEqual((stats.chosen, stats.sent, stats.dropped), (5, 2, 3))
        self.proxy.reactor.advance(2.0)
        self.assertEqual(self.mirror.inflight, 0)

    def test_body(self):
        """
        A body up to max_body goes with the copy, once it has all arrived.
        """
        client = self.proxy.client()
        client.send(b"POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n01234")
        backends = self.acceptAll()
        self.assertNotIn(SHADOW, backends)
        client.send(b"56789")
        backends.update(self.acceptAll())
        shadow = backends[SHADOW][0].received()
        self.assertTrue(shadow.startswith(b"POST /up HTTP/1.1\r\n"))
        self.assertIn(b"\r\nContent-Length: 10\r\n", shadow)
        self.assertEqual(shadow.lower().count(b"content-length"), 1)
        self.assertTrue(shadow.endswith(b"\r\n\r\n0123456789"))
        self.assertTrue(backends[PRIMARY][0].received().endswith(b"\r\n\r\n0123456789"))

    def test_chunkedBody(self):
        client = self.proxy.client()
        client.send(
            b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
        )
        shadow = self.acceptAll()[SHADOW][0].received()
        self.assertIn(b"\r\nContent-Length: 5\r\n", shadow)
        self.assertNotIn(b"transfer-encoding", shadow.lower())
        self.assertTrue(shadow.endswith(b"\r\n\r\nabcde"))

    def test_bodyTooLong(self):
        """
        A body over max_body is not copied: declared too long, not even
        started; chunked, abandoned when it passes the cap.
        """
        client = self.proxy.client()
        client.send(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 17\r\n\r\n" + b"x" * 17)
        self.assertEqual(list(self.acceptAll()), [PRIMARY])
        client = self.proxy.client()
        client.send(b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n")
        client.send(b"10\r\n" + b"y" * 16 + b"\r\n1\r\nz\r\n0\r\n\r\n")
        self.assertEqual(list(self.acceptAll()), [PRIMARY])
        self.assertEqual(self.mirror.stats.skipped, 2)
        self.assertEqual(self.mirror.inflight, 0)
        self.assertEqual(
            [c for c in self.proxy.exchangeTimers() if "MirrorCopy" in repr(c)], []
        )

    def test_percent(self):
        proxy = ProxyHarness(config(percent=25))
        stage = self.stageOf(proxy)
        stage._random = random.Random(3).random
        for _ in range(400):
            proxy.client().send(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        shadow = [a for a in proxy.pending() if a == SHADOW]
        self.assertLessEqual(abs(len(shadow) / 400 - 0.25), 0.06)
        self.assertEqual(stage.mirror.stats.chosen, len(shadow))

    def test_otherRoutes(self):
        """
        A route without mirror has no mirror stage.
        """
        names = self.proxy.resource.runtime.match("h", "/plain").chain.names()
        self.assertNotIn("mirror", names)
        client = self.proxy.client()
        client.send(b"GET /plain HTTP/1.1\r\nHost: h\r\n\r\n")
        self.assertEqual(self.proxy.pending(), [PRIMARY])


class BufferedRouteTests(SynchronousTestCase):
    """
    A mirrored route with C{request_buffering}: the copy gets the body the
    primary gets.
    """

    def test_body(self):
        data = config(max_body=100)
        data["routes"][1]["request_buffering"] = "1k"
        proxy = ProxyHarness(data)
        client = proxy.client()
        client.send(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 6\r\n\r\nabc")
        self.assertEqual(proxy.pending(), [])
        client.send(b"def")
        backends = {}
        while proxy.pending():
            backend = proxy.accept()
            backends[backend.address] = backend
        self.assertEqual(sorted(backends), [PRIMARY, SHADOW])
        for backend in backends.values():
            self.assertTrue(backend.received().endswith(b"\r\n\r\nabcdef"), backend.received())


class RouteLimitTests(SynchronousTestCase):
    def test_overRouteLimit(self):
        """
        A chunked body that goes past the route's max_body_size (the
        primary answers 413) is not copied, truncated or otherwise.
        """
        data = config(max_body=1000)
        data["routes"][1]["max_body_size"] = 4
        proxy = ProxyHarness(data)
        stage = [s for s in proxy.resource.runtime.match("h", "/").chain.stages if s.name == "mirror"][0]
        client = proxy.client()
        client.send(b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n")
        client.send(b"3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n")
        self.assertIn(b" 413 ", client.received())
        self.assertNotIn(SHADOW, proxy.pending())
        self.assertEqual((stage.mirror.stats.skipped, stage.mirror.inflight), (1, 0))


class UpgradeTests(SynchronousTestCase):
    def test_notCopied(self):
        """
        A WebSocket handshake on a mirrored route is not copied.
        """
        proxy = ProxyHarness(config())
        client = proxy.client()
        client.send(
            b"GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        self.assertEqual(proxy.pending(), [PRIMARY])
