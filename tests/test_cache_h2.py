"""
The cache and compression over HTTP/2 (in memory, with real TLS
handshakes, as L{tests.test_tls_proxy}): a hit is answered on its stream,
a compressed response too.
"""

from __future__ import annotations

import gzip
from dataclasses import replace

from twisted.internet.ssl import Certificate

from lbproxy.config.cache import CompressConfig, RouteCache
from lbproxy.testing import ProxyHarness
from lbproxy.testing.tls import PKI
from lbproxy.tls.edge import TLSEdge
from lbproxy.tls.material import load_tls_material
from tests import test_tls_proxy
from tests.test_tls_proxy import TLSProxyTestCase, config

BODY = b"<p>" + b"cached over h2 " * 100 + b"</p>"


class CacheHTTP2Tests(TLSProxyTestCase):
    h2 = test_tls_proxy.HTTP2Tests.h2

    def setUp(self) -> None:
        self.pki = PKI(self.mktemp())
        base = config(self.pki, **self.tls)
        routes = tuple(replace(r, cache=RouteCache(), compress=CompressConfig(min_size=10))
                       for r in base.routes)
        self.config = replace(base, routes=routes)
        self.proxy = ProxyHarness(self.config)
        self.addCleanup(lambda: self.proxy.services.cache.stop())
        material = load_tls_material(self.config, self.pki.now)
        self.edge = TLSEdge(self.config, self.proxy.reactor, material)
        [(description, self.factory)] = self.edge.listeners(self.proxy.site)
        with open(self.pki.caPath, "rb") as f:
            self.ca = Certificate.loadPEM(f.read())

    def test_hitOnItsStream(self) -> None:
        client, pump = self.h2()
        first = client.request(b"GET", b"/page", b"www.mango.com")
        pump.flush()
        backend = self.proxy.accept()
        backend.respond(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nCache-Control: max-age=60"
                        b"\r\nContent-Length: %d\r\n\r\n%s" % (len(BODY), BODY))
        pump.flush()
        self.assertEqual(client.header(first, b"x-cache"), b"MISS")
        self.assertEqual(client.responses[first]["body"], BODY)
        self.proxy.reactor.advance(4)
        second = client.request(b"GET", b"/page", b"www.mango.com")
        pump.flush()
        self.assertEqual(self.proxy.pending(), [])
        self.assertEqual(client.header(second, b":status"), b"200")
        self.assertEqual(client.header(second, b"x-cache"), b"HIT")
        self.assertEqual(client.header(second, b"age"), b"4")
        self.assertEqual(client.responses[second]["body"], BODY)
        self.assertTrue(client.responses[second]["ended"])
        self.assertIn('"GET /page HTTP/2" 200 %d' % (len(BODY),), self.proxy.logLines()[-1])

    def test_compressedOnItsStream(self) -> None:
        client, pump = self.h2()
        stream = client.request(b"GET", b"/z", b"www.mango.com",
                                headers=[(b"accept-encoding", b"gzip")])
        pump.flush()
        self.proxy.accept().respond(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nCache-Control: no-store"
            b"\r\nContent-Length: %d\r\n\r\n%s" % (len(BODY), BODY))
        pump.flush()
        self.assertEqual(client.header(stream, b"content-encoding"), b"gzip")
        self.assertEqual(gzip.decompress(client.responses[stream]["body"]), BODY)
