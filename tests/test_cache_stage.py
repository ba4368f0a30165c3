"""
The cache stage in a route's chain, in memory on a Clock: hits and misses,
HEAD from GET, Vary, every response and request directive, Authorization
and Set-Cookie, revalidation and 304s, client conditionals, invalidation,
stale-while-revalidate, stale-if-error, static_ttl, max_object, X-Cache
and the access log.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from lbproxy.testing import ProxyHarness
from tests.cachehelp import config, parse, request, response, xcache

CACHED = b"200 OK\r\nCache-Control: max-age=60\r\nContent-Type: text/plain"


class CacheTestCase(SynchronousTestCase):
    def proxy(self, **kw) -> ProxyHarness:
        proxy = ProxyHarness(config(**kw))
        self.addCleanup(lambda: proxy.services.cache and proxy.services.cache.stop())
        return proxy

    def miss(self, proxy, head=CACHED, body=b"hello", path=b"/a", headers=b""):
        """
        A request the backend answers; return (client, backend).
        """
        client = request(proxy, path, headers)
        backend = proxy.accept()
        backend.respond(response(head, body))
        return client, backend

    def assertNoBackend(self, proxy):
        self.assertEqual(proxy.pending(), [])


class HitMissTests(CacheTestCase):
    def test_missThenHit(self):
        proxy = self.proxy()
        first, backend = self.miss(proxy, body=b"0123456789" * 100)
        status, headers, body = parse(first.received())
        self.assertEqual((status, headers[b"x-cache"], body), (200, [b"MISS"], b"0123456789" * 100))
        # The tee keeps the length: not relayed chunked.
        self.assertEqual(headers[b"content-length"], [b"1000"])
        proxy.reactor.advance(7)
        second = request(proxy)
        self.assertNoBackend(proxy)
        status, headers, body = parse(second.received())
        self.assertEqual(body, b"0123456789" * 100)
        self.assertEqual(headers[b"x-cache"], [b"HIT"])
        self.assertEqual(headers[b"age"], [b"7"])
        self.assertEqual(headers[b"content-length"], [b"1000"])
        self.assertEqual(headers[b"cache-control"], [b"max-age=60"])
        self.assertIn("cache=MISS", proxy.logLines()[0])
        self.assertIn("cache=HIT", proxy.logLines()[1])
        self.assertIn(" 200 1000 ", proxy.logLines()[1])
        self.assertEqual(proxy.services.cache.counters["HIT"], 1)

    def test_ageFromBackend(self):
        proxy = self.proxy()
        self.miss(proxy, head=CACHED + b"\r\nAge: 50")
        proxy.reactor.advance(5)
        self.assertEqual(parse(request(proxy).received())[1][b"age"], [b"55"])
        proxy.reactor.advance(6)
        client = request(proxy)
        self.assertEqual(proxy.pending(), ["10.1.0.1:80"], "stale at age 61")
        self.assertEqual(client.received(), b"")

    def test_headFromGet(self):
        proxy = self.proxy()
        self.miss(proxy)
        head = request(proxy, method=b"HEAD")
        self.assertNoBackend(proxy)
        status, headers, body = parse(head.received())
        self.assertEqual((status, body, headers[b"content-length"]), (200, b"", [b"5"]))
        self.assertEqual(headers[b"x-cache"], [b"HIT"])

    def test_headMissNotStored(self):
        proxy = self.proxy()
        client = request(proxy, method=b"HEAD")
        proxy.accept().respond(response(b"200 OK\r\nCache-Control: max-age=60"))
        self.assertEqual(xcache(client.received()), b"MISS")
        request(proxy)
        self.assertEqual(len(proxy.pending()), 1)

    def test_keyHasHostAndTarget(self):
        proxy = self.proxy()
        self.miss(proxy, path=b"/a?x=1")
        request(proxy, b"/a?x=2")
        self.assertEqual(len(proxy.pending()), 1)
        client = proxy.client(port=7)
        client.send(b"GET /a?x=1 HTTP/1.1\r\nHost: other\r\n\r\n")
        self.assertEqual(len(proxy.pending()), 2)

    def test_routeWithoutCacheHasNoStage(self):
        proxy = ProxyHarness(config(cache=None))
        self.assertNotIn("cache", proxy.resource.runtime.match("h", "/").chain.names())
        self.assertIsNone(proxy.services.cache)


class VaryTests(CacheTestCase):
    def test_variants(self):
        proxy = self.proxy()
        head = CACHED + b"\r\nVary: Accept-Language"
        self.miss(proxy, head, b"english", headers=b"Accept-Language: en\r\n")
        self.miss(proxy, head, b"french", headers=b"Accept-Language: fr\r\n")
        en = request(proxy, headers=b"Accept-Language: en\r\n")
        fr = request(proxy, headers=b"Accept-Language: fr\r\n")
        self.assertNoBackend(proxy)
        self.assertEqual(parse(en.received())[2], b"english")
        self.assertEqual(parse(fr.received())[2], b"french")
        request(proxy)  # no Accept-Language: another variant
        self.assertEqual(len(proxy.pending()), 1)

    def test_varyStarNeverStored(self):
        proxy = self.proxy()
        self.miss(proxy, CACHED + b"\r\nVary: *")
        request(proxy)
        self.assertEqual(len(proxy.pending()), 1)
        self.assertEqual(proxy.services.cache.counters["not_stored"], 1)


class ResponseDirectiveTests(CacheTestCase):
    def assertNotStored(self, head, headers=b""):
        proxy = self.proxy()
        self.miss(proxy, head, headers=headers)
        request(proxy, headers=headers)
        self.assertEqual(len(proxy.pending()), 1, head)

    def test_noStore(self):
        self.assertNotStored(b"200 OK\r\nCache-Control: no-store, max-age=60")

    def test_private(self):
        self.assertNotStored(b"200 OK\r\nCache-Control: private, max-age=60")

    def test_noFreshnessNoValidator(self):
        self.assertNotStored(b"200 OK")

    def test_authorization(self):
        self.assertNotStored(CACHED, headers=b"Authorization: Basic eDp5\r\n")
        proxy = self.proxy()
        self.miss(proxy, b"200 OK\r\nCache-Control: public, max-age=60",
                  headers=b"Authorization: Basic eDp5\r\n")
        request(proxy, headers=b"Authorization: Basic eDp5\r\n")
        self.assertNoBackend(proxy)

    def test_setCookie(self):
        self.assertNotStored(CACHED + b"\r\nSet-Cookie: s=1")
        proxy = self.proxy()
        first, _ = self.miss(proxy, b"200 OK\r\nCache-Control: public, max-age=60\r\nSet-Cookie: s=1")
        self.assertIn(b"set-cookie", parse(first.received())[1])
        hit = request(proxy)
        self.assertNoBackend(proxy)
        self.assertNotIn(b"set-cookie", parse(hit.received())[1], "never shared")

    def test_noCacheStoredAndRevalidated(self):
        proxy = self.proxy()
        self.miss(proxy, b'200 OK\r\nCache-Control: no-cache\r\nETag: "v1"')
        client = request(proxy)
        backend = proxy.accept()
        self.assertIn(b'If-None-Match: "v1"', backend.received())
        backend.respond(b'HTTP/1.1 304 Not Modified\r\nConnection: close\r\nETag: "v1"\r\n\r\n')
        status, headers, body = parse(client.received())
        self.assertEqual((status, body, headers[b"x-cache"]), (200, b"hello", [b"REVALIDATED"]))

    def test_mustRevalidateRefusesStale(self):
        for directive in (b"must-revalidate", b"proxy-revalidate", b"s-maxage=60"):
            proxy = self.proxy(cache={"stale_while_revalidate": 100, "stale_if_error": 100})
            self.miss(proxy, b"200 OK\r\nCache-Control: max-age=60, " + directive)
            proxy.reactor.advance(61)
            client = request(proxy, headers=b"Cache-Control: max-stale\r\n")
            self.assertEqual(len(proxy.pending()), 1, directive)
            proxy.refuse()
            # The revalidation failed and no stale answer is allowed: the
            # request goes on through the chain itself, and fails.
            proxy.refuse()
            self.assertEqual(parse(client.received())[0], 502, directive)


class RequestDirectiveTests(CacheTestCase):
    def stored(self, age=10, head=CACHED + b'\r\nETag: "e"'):
        proxy = self.proxy()
        self.miss(proxy, head)
        proxy.reactor.advance(age)
        return proxy

    def test_noCache(self):
        proxy = self.stored()
        request(proxy, headers=b"Cache-Control: no-cache\r\n")
        self.assertEqual(len(proxy.pending()), 1)

    def test_maxAge(self):
        proxy = self.stored()
        self.assertEqual(xcache(request(proxy, headers=b"Cache-Control: max-age=10\r\n").received()), b"HIT")
        request(proxy, headers=b"Cache-Control: max-age=9\r\n")
        self.assertEqual(len(proxy.pending()), 1)

    def test_minFresh(self):
        proxy = self.stored()
        self.assertEqual(xcache(request(proxy, headers=b"Cache-Control: min-fresh=49\r\n").received()), b"HIT")
        request(proxy, headers=b"Cache-Control: min-fresh=51\r\n")
        self.assertEqual(len(proxy.pending()), 1)

    def test_maxStale(self):
        proxy = self.stored(age=70)
        client = request(proxy, headers=b"Cache-Control: max-stale=20\r\n")
        self.assertNoBackend(proxy)
        self.assertEqual(xcache(client.received()), b"STALE")
        self.assertEqual(parse(client.received())[1][b"age"], [b"70"])
        request(proxy, headers=b"Cache-Control: max-stale=5\r\n")
        self.assertEqual(len(proxy.pending()), 1)

    def test_onlyIfCached(self):
        proxy = self.proxy()
        client = request(proxy, headers=b"Cache-Control: only-if-cached\r\n")
        self.assertEqual(parse(client.received())[0], 504)
        self.assertNoBackend(proxy)
        proxy = self.stored()
        client = request(proxy, headers=b"Cache-Control: only-if-cached\r\n")
        self.assertEqual(xcache(client.received()), b"HIT")

    def test_noStore(self):
        proxy = self.stored()
        client = request(proxy, headers=b"Cache-Control: no-store\r\n")
        proxy.accept().respond(response(CACHED, b"new"))
        self.assertEqual(xcache(client.received()), b"BYPASS")
        self.assertEqual(parse(request(proxy).received())[2], b"hello", "not replaced")


class ValidationTests(CacheTestCase):
    def test_304UpdatesHead(self):
        proxy = self.proxy()
        self.miss(proxy, CACHED + b'\r\nETag: "v1"\r\nX-Version: 1\r\nLast-Modified: Sun, 06 Nov 1994 08:49:37 GMT')
        proxy.reactor.advance(61)
        client = request(proxy)
        backend = proxy.accept()
        sent = backend.received()
        self.assertIn(b'If-None-Match: "v1"', sent)
        self.assertIn(b"If-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT", sent)
        backend.respond(b'HTTP/1.1 304 Not Modified\r\nConnection: close\r\nCache-Control: max-age=120\r\nETag: "v1"\r\nX-Version: 2\r\n\r\n')
        status, headers, body = parse(client.received())
        self.assertEqual((status, body), (200, b"hello"))
        self.assertEqual(headers[b"x-cache"], [b"REVALIDATED"])
        self.assertEqual(headers[b"x-version"], [b"2"])
        self.assertEqual(headers[b"age"], [b"0"])
        proxy.reactor.advance(100)
        hit = parse(request(proxy).received())[1]
        self.assertEqual((hit[b"x-cache"], hit[b"x-version"], hit[b"cache-control"]),
                         ([b"HIT"], [b"2"], [b"max-age=120"]))
        self.assertEqual(proxy.services.cache.store.bytes,
                         sum(e.size for e in proxy.services.cache.store.entries()))

    def test_changedResponseReplaces(self):
        proxy = self.proxy()
        self.miss(proxy, CACHED + b'\r\nETag: "v1"')
        proxy.reactor.advance(61)
        client = request(proxy)
        proxy.accept().respond(response(CACHED + b'\r\nETag: "v2"', b"world"))
        status, headers, body = parse(client.received())
        self.assertEqual((body, headers[b"x-cache"]), (b"world", [b"MISS"]))
        self.assertEqual(parse(request(proxy).received())[2], b"world")
        self.assertNoBackend(proxy)

    def test_clientConditionals(self):
        proxy = self.proxy()
        self.miss(proxy, CACHED + b'\r\nETag: "v1"\r\nLast-Modified: Sun, 06 Nov 1994 08:49:37 GMT')
        proxy.reactor.advance(3)
        for header in (b'If-None-Match: "v0", W/"v1"\r\n', b"If-None-Match: *\r\n",
                       b"If-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\n"):
            status, headers, body = parse(request(proxy, headers=header).received())
            self.assertEqual((status, body), (304, b""), header)
            self.assertEqual((headers[b"etag"], headers[b"age"], headers[b"x-cache"]),
                             ([b'"v1"'], [b"3"], [b"HIT"]))
        for header in (b'If-None-Match: "v0"\r\n',
                       b"If-Modified-Since: Sun, 06 Nov 1994 08:49:36 GMT\r\n"):
            self.assertEqual(parse(request(proxy, headers=header).received())[0], 200, header)
        self.assertNoBackend(proxy)


class InvalidationTests(CacheTestCase):
    def test_unsafeMethodInvalidates(self):
        proxy = self.proxy()
        self.miss(proxy, path=b"/a")
        self.miss(proxy, path=b"/b")
        self.miss(proxy, path=b"/c")
        self.miss(proxy, path=b"/d")
        client = request(proxy, b"/a", b"Content-Length: 0\r\n", method=b"POST")
        proxy.accept().respond(response(
            b"201 Created\r\nLocation: /b\r\nContent-Location: http://h/c?", b""))
        self.assertEqual(xcache(client.received()), b"BYPASS")
        for path in (b"/a", b"/b", b"/c"):
            request(proxy, path)
        # /a, /b (Location, relative) and /c (Content-Location, absolute,
        # same host; an empty query is no query) are gone; /d is not.
        self.assertEqual(len(proxy.pending()), 3)
        request(proxy, b"/d")
        self.assertEqual(len(proxy.pending()), 3)

    def test_otherHostAndFailureKeep(self):
        proxy = self.proxy()
        self.miss(proxy, path=b"/a")
        self.miss(proxy, path=b"/b")
        request(proxy, b"/b", method=b"DELETE")
        proxy.accept().respond(response(b"200 OK\r\nLocation: http://elsewhere/a"))
        request(proxy, b"/a")
        self.assertNoBackend(proxy)
        request(proxy, b"/a", method=b"PUT", headers=b"Content-Length: 0\r\n")
        proxy.accept().respond(response(b"500 Oops"))
        request(proxy, b"/a")
        self.assertNoBackend(proxy)
        self.assertEqual(proxy.services.cache.counters["invalidated"], 1)


class StaleTests(CacheTestCase):
    def test_staleWhileRevalidateOneRefresh(self):
        proxy = self.proxy(cache={"stale_while_revalidate": 30})
        self.miss(proxy, CACHED + b'\r\nETag: "v1"')
        proxy.reactor.advance(70)
        first = request(proxy)
        second = request(proxy)
        self.assertEqual(xcache(first.received()), b"STALE")
        self.assertEqual(xcache(second.received()), b"STALE")
        self.assertEqual(len(proxy.pending()), 1, "one background refresh")
        proxy.accept().respond(b'HTTP/1.1 304 Not Modified\r\nConnection: close\r\nETag: "v1"\r\n\r\n')
        self.assertEqual(xcache(request(proxy).received()), b"HIT")
        proxy.reactor.advance(60 + 31)
        request(proxy)
        self.assertEqual(len(proxy.pending()), 1, "beyond the window: validated first")

    def test_responseDirectiveWins(self):
        proxy = self.proxy(cache={"stale_while_revalidate": 30})
        self.miss(proxy, b"200 OK\r\nCache-Control: max-age=60, stale-while-revalidate=5")
        proxy.reactor.advance(70)
        client = request(proxy)
        self.assertEqual(client.received(), b"", "waits for the revalidation")

    def test_staleIfError(self):
        proxy = self.proxy(cache={"stale_if_error": 100})
        self.miss(proxy, CACHED + b'\r\nETag: "v1"')
        proxy.reactor.advance(70)
        client = request(proxy)
        proxy.refuse()
        status, headers, body = parse(client.received())
        self.assertEqual((status, body, headers[b"x-cache"]), (200, b"hello", [b"STALE"]))
        proxy.reactor.advance(10)
        client = request(proxy)
        proxy.accept().respond(response(b"503 Service Unavailable", b"down"))
        self.assertEqual(xcache(client.received()), b"STALE")
        proxy.reactor.advance(100)
        client = request(proxy)
        proxy.refuse()
        # Beyond the window: the request itself goes on and fails.
        proxy.refuse()
        self.assertEqual(parse(client.received())[0], 502)

    def test_staticTtl(self):
        proxy = self.proxy(cache={"static_ttl": 300})
        self.miss(proxy, b"200 OK\r\nContent-Type: text/css", path=b"/s/site.css")
        self.miss(proxy, b"200 OK\r\nContent-Type: text/html", path=b"/s/page.html")
        proxy.reactor.advance(299)
        self.assertEqual(xcache(request(proxy, b"/s/site.css").received()), b"HIT")
        request(proxy, b"/s/page.html")
        self.assertEqual(len(proxy.pending()), 1)


class LargeObjectTests(CacheTestCase):
    def test_overMaxObjectStreamsNotStored(self):
        proxy = self.proxy(cacheTable={"max_object": 1000, "max_bytes": 10000})
        client = request(proxy)
        backend = proxy.accept()
        backend.respond(b"HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nConnection: close\r\n"
                        b"Content-Length: 1500\r\n\r\n")
        backend.respond(b"a" * 900)
        backend.respond(b"b" * 600)
        status, headers, body = parse(client.received())
        self.assertEqual(body, b"a" * 900 + b"b" * 600)
        self.assertEqual(proxy.services.cache.counters["too_large"], 1)
        self.assertEqual(len(proxy.services.cache.store), 0)
        request(proxy)
        self.assertEqual(len(proxy.pending()), 1)


class VariantRevalidationTests(CacheTestCase):
    def test_otherVariantJudgedOnItsOwn(self):
        """
        A request waiting for another variant's revalidation is not answered
        with its own stale variant as if it had been revalidated.
        """
        proxy = self.proxy()
        head = CACHED + b'\r\nVary: Accept-Language\r\nETag: "e"'
        self.miss(proxy, head, b"english", headers=b"Accept-Language: en\r\n")
        self.miss(proxy, head, b"french", headers=b"Accept-Language: fr\r\n")
        proxy.reactor.advance(61)
        en = request(proxy, headers=b"Accept-Language: en\r\n")
        fr = request(proxy, headers=b"Accept-Language: fr\r\n")
        self.assertEqual(len(proxy.pending()), 1)
        proxy.accept().respond(b'HTTP/1.1 304 Not Modified\r\nConnection: close\r\nETag: "e"\r\n\r\n')
        self.assertEqual(xcache(en.received()), b"REVALIDATED")
        self.assertEqual(fr.received(), b"")
        self.assertEqual(len(proxy.pending()), 1, "fr is revalidated on its own")
        backend = proxy.accept()
        self.assertIn(b"Accept-Language: fr", backend.received())
        backend.respond(b'HTTP/1.1 304 Not Modified\r\nConnection: close\r\nETag: "e"\r\n\r\n')
        status, headers, body = parse(fr.received())
        self.assertEqual((body, headers[b"x-cache"]), (b"french", [b"REVALIDATED"]))


class StageOrderTests(CacheTestCase):
    def test_hitStillChecksAccess(self):
        """
        The cache comes after the access rules: a denied client gets 403,
        never the stored response.
        """
        proxy = self.proxy(access={"deny": ["10.9.9.9"]})
        self.miss(proxy)
        denied = proxy.client("10.9.9.9", 5)
        denied.send(b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n")
        self.assertEqual(parse(denied.received())[0], 403)
        self.assertEqual(xcache(request(proxy).received()), b"HIT")

    def test_headerRulesRunOnHits(self):
        proxy = self.proxy(headers={"response_set": {"X-Edge": "{client_ip}"}})
        self.miss(proxy)
        hit = proxy.client("10.0.0.7", 6)
        hit.send(b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n")
        headers = parse(hit.received())[1]
        self.assertEqual((headers[b"x-cache"], headers[b"x-edge"]), ([b"HIT"], [b"10.0.0.7"]))

    def test_chainOrder(self):
        proxy = self.proxy(compress=True, access={"deny": ["10.9.9.9"]},
                           headers={"response_set": {"X-A": "b"}})
        names = proxy.resource.runtime.match("h", "/").chain.names()
        self.assertEqual(names[names.index("access"):],
                         ("access", "header_rules", "forwarded", "cache", "compress", "access_log"))


class UpgradeTests(CacheTestCase):
    def test_webSocketThroughCachedCompressedRoute(self):
        """
        An upgrade on a route with the cache and compression is relayed as
        on any route: BYPASS, nothing stored, no flight, bytes unchanged.
        """
        proxy = self.proxy(compress=True)
        client = proxy.client()
        client.send(b"GET /chat HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                    b"Accept-Encoding: gzip\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                    b"Sec-WebSocket-Version: 13\r\n\r\n")
        self.assertEqual(len(proxy.services.cache.coalescer), 0)
        backend = proxy.accept()
        backend.respond(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                        b"Connection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
                        b"\r\n\r\nserver-hello")
        head, _, rest = client.received().partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 101 "), head)
        self.assertIn(b"X-Cache: BYPASS", head)
        self.assertNotIn(b"Content-Encoding", head)
        self.assertEqual(rest, b"server-hello")
        backend.transport.clear()
        client.send(b"\x81\x05hello")
        self.assertEqual(backend.received(), b"\x81\x05hello")
        self.assertEqual(len(proxy.services.cache.store), 0)
