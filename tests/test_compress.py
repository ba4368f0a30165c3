"""
Compression: Accept-Encoding negotiation with q-values, the types and
cases never compressed, Vary and ETag, streaming with every piece flushed,
the codecs, and compressed variants stored by the cache.
"""

from __future__ import annotations

import gzip
import random
import zlib

from twisted.trial.unittest import SynchronousTestCase

from lbproxy.policy.encoding import TypeMatcher, choose_coding
from lbproxy.testing import ProxyHarness
from lbproxy.wire.codecs import BROTLI, GZIP, available, new_encoder
from tests.cachehelp import config, parse, request, response

try:
    import brotli as _brotli
except ImportError:  # PyPy
    import brotlicffi as _brotli  # type: ignore[no-redef]

BOTH = (BROTLI, GZIP)
HTML = b"<html>" + b"lorem ipsum dolor sit amet " * 100 + b"</html>"


class NegotiationTests(SynchronousTestCase):
    def choose(self, value):
        return choose_coding([value] if value is not None else None, BOTH)

    def test_cases(self):
        self.assertIsNone(self.choose(None))
        self.assertIsNone(self.choose(b""))
        self.assertEqual(self.choose(b"gzip"), GZIP)
        self.assertEqual(self.choose(b"x-gzip"), GZIP)
        self.assertEqual(self.choose(b"gzip, deflate, br"), BROTLI)
        self.assertEqual(self.choose(b"br;q=0.5, gzip;q=0.8"), GZIP)
        self.assertEqual(self.choose(b"br;q=0, gzip"), GZIP)
        self.assertEqual(self.choose(b"*"), BROTLI)
        self.assertEqual(self.choose(b"*;q=0.1, br;q=0"), GZIP)
        self.assertIsNone(self.choose(b"identity"))
        self.assertIsNone(self.choose(b"gzip;q=0, br;q=0"))
        self.assertIsNone(self.choose(b"gzip;q=abc"))
        self.assertEqual(choose_coding([b"br"], (GZIP,)), None)

    def test_types(self):
        match = TypeMatcher(["text/*", "application/json"])
        self.assertTrue(match(b"text/html; charset=utf-8"))
        self.assertTrue(match(b"Application/JSON"))
        self.assertFalse(match(b"image/png"))
        self.assertFalse(match(None))


class CodecTests(SynchronousTestCase):
    def test_roundTripsWithFlushes(self):
        rng = random.Random(15)
        for coding in available():
            data = bytes(rng.getrandbits(5) + 65 for _ in range(20000))
            encoder = new_encoder(coding)
            out = b""
            decoder = zlib.decompressobj(31) if coding == GZIP else _brotli.Decompressor()
            position = 0
            while position < len(data):
                size = rng.randint(1, 3000)
                piece = encoder.encode(data[position:position + size])
                position += size
                # Every piece is decodable at once: nothing is held back.
                got = decoder.decompress(piece) if coding == GZIP else decoder.process(piece)
                out += got
                self.assertEqual(out, data[:position], coding)
            tail = encoder.finish()
            out += decoder.decompress(tail) if coding == GZIP else decoder.process(tail)
            self.assertEqual(out, data)

    def test_brotliAvailable(self):
        self.assertEqual(available(), (BROTLI, GZIP))


class CompressStageTests(SynchronousTestCase):
    def fetch(self, head, body=HTML, accept=b"gzip", compress=True, method=b"GET", cache=None):
        proxy = ProxyHarness(config(cache=cache, compress=compress))
        headers = b"Accept-Encoding: " + accept + b"\r\n" if accept is not None else b""
        client = request(proxy, headers=headers, method=method)
        proxy.accept().respond(response(head, body))
        return parse(client.received())

    def test_gzip(self):
        status, headers, body = self.fetch(b'200 OK\r\nContent-Type: text/html\r\nETag: "abc"')
        self.assertEqual(headers[b"content-encoding"], [b"gzip"])
        self.assertEqual(headers[b"vary"], [b"Accept-Encoding"])
        self.assertEqual(headers[b"etag"], [b'W/"abc"'])
        self.assertNotIn(b"content-length", headers)
        self.assertEqual(gzip.decompress(body), HTML)
        self.assertLess(len(body), len(HTML) // 5)

    def test_brotli(self):
        status, headers, body = self.fetch(b"200 OK\r\nContent-Type: application/json",
                                           accept=b"gzip, br")
        self.assertEqual(headers[b"content-encoding"], [b"br"])
        self.assertEqual(_brotli.decompress(body), HTML)

    def test_notAccepted(self):
        status, headers, body = self.fetch(b"200 OK\r\nContent-Type: text/html", accept=None)
        self.assertEqual(body, HTML)
        self.assertNotIn(b"content-encoding", headers)
        self.assertEqual(headers[b"vary"], [b"Accept-Encoding"])

    def test_neverCompressed(self):
        cases = [
            (b"200 OK\r\nContent-Type: image/png", HTML),
            (b"200 OK\r\nContent-Type: text/html\r\nContent-Encoding: gzip", HTML),
            (b"200 OK\r\nContent-Type: text/html\r\nCache-Control: no-transform", HTML),
            (b"200 OK\r\nContent-Type: text/html", b"<p>short</p>"),
            (b"206 Partial Content\r\nContent-Type: text/html\r\nContent-Range: bytes 0-9/99", HTML),
            (b"204 No Content\r\nContent-Type: text/html", b""),
        ]
        for head, body in cases:
            status, headers, got = self.fetch(head, body)
            self.assertEqual(got, body, head)
            # Only what the backend said (once), nothing added.
            self.assertEqual(len(headers.get(b"content-encoding", [])),
                             head.count(b"Content-Encoding"), head)
            if not head.startswith(b"204"):
                # Sent as it is: its length kept, not chunked.
                self.assertEqual(headers[b"content-length"], [b"%d" % len(body)], head)
                self.assertNotIn(b"transfer-encoding", headers)

    def test_head(self):
        status, headers, body = self.fetch(b"200 OK\r\nContent-Type: text/html", method=b"HEAD")
        self.assertNotIn(b"content-encoding", headers)
        self.assertEqual(headers[b"vary"], [b"Accept-Encoding"])

    def test_varyMerged(self):
        status, headers, body = self.fetch(b"200 OK\r\nContent-Type: text/html\r\nVary: Cookie")
        self.assertEqual(headers[b"vary"], [b"Cookie, Accept-Encoding"])

    def test_localAnswerUntouched(self):
        proxy = ProxyHarness(config(cache=None, compress=True))
        client = request(proxy, headers=b"Accept-Encoding: gzip\r\n")
        proxy.refuse()
        status, headers, body = parse(client.received())
        self.assertEqual(status, 502)
        self.assertNotIn(b"content-encoding", headers)

    def test_routeWithoutCompressHasNoStage(self):
        proxy = ProxyHarness(config(cache=None))
        chain = proxy.resource.runtime.match("h", "/").chain
        self.assertNotIn("compress", chain.names())
        self.assertEqual(chain.bodyFilters, ())

    def test_streamingFlushesEachPiece(self):
        """
        An event stream: each event reaches the client, decodable, as soon
        as the backend sends it.
        """
        proxy = ProxyHarness(config(cache=None, compress=True))
        client = request(proxy, b"/events", b"Accept-Encoding: gzip\r\n")
        backend = proxy.accept()
        backend.respond(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                        b"Transfer-Encoding: chunked\r\n\r\n")
        decoder = zlib.decompressobj(31)
        seen = 0
        for n in range(3):
            event = b"data: event %d\n\n" % (n,)
            backend.respond(b"%x\r\n%s\r\n" % (len(event), event))
            raw = client.received()
            head, _, chunks = raw.partition(b"\r\n\r\n")
            self.assertIn(b"Content-Encoding: gzip", head)
            status, headers, body = parse(raw)
            text = decoder.decompress(body[seen:])
            seen = len(body)
            self.assertEqual(text, event)
        backend.respond(b"0\r\n\r\n")
        self.assertTrue(client.received().endswith(b"0\r\n\r\n"))


class CompressedVariantTests(SynchronousTestCase):
    def test_cachedPerEncoding(self):
        proxy = ProxyHarness(config(compress=True))
        self.addCleanup(proxy.services.cache.stop)
        head = b"200 OK\r\nContent-Type: text/html\r\nCache-Control: max-age=60"
        for accept in (b"gzip", b"br", None):
            headers = b"Accept-Encoding: " + accept + b"\r\n" if accept else b""
            client = request(proxy, headers=headers)
            proxy.accept().respond(response(head, HTML))
            self.assertEqual(parse(client.received())[1][b"x-cache"], [b"MISS"])
        self.assertEqual(len(proxy.services.cache.store), 3)
        gz = parse(request(proxy, headers=b"Accept-Encoding: gzip\r\n").received())
        br = parse(request(proxy, headers=b"Accept-Encoding: br\r\n").received())
        plain = parse(request(proxy).received())
        self.assertEqual(proxy.pending(), [])
        self.assertEqual((gz[1][b"x-cache"], gz[1][b"content-encoding"]), ([b"HIT"], [b"gzip"]))
        self.assertEqual(gzip.decompress(gz[2]), HTML)
        self.assertEqual(int(gz[1][b"content-length"][0]), len(gz[2]))
        self.assertEqual(_brotli.decompress(br[2]), HTML)
        self.assertEqual(plain[2], HTML)
        self.assertNotIn(b"content-encoding", plain[1])
