"""
The cache's pure rules: Cache-Control and dates, what may be stored, the
freshness lifetime, age arithmetic (RFC 9111 section 4.2.3), what a request
may be answered with, and the cache key with Vary.
"""

from __future__ import annotations

import random

from twisted.trial.unittest import SynchronousTestCase

from lbproxy.cache.directives import (
    delta_seconds, format_http_date, parse_cache_control, parse_http_date,
)
from lbproxy.cache.freshness import (
    BACKGROUND, FRESH, STALE, VALIDATE, current_age, freshness_lifetime, is_static, judge,
    refusal, window, worthless,
)
from lbproxy.cache.key import primary_key, variant, vary_names

T0 = 1_700_000_000.0


def cc(text: str):
    return parse_cache_control([text.encode()])


def date(t: float) -> bytes:
    return format_http_date(t)


class DirectiveTests(SynchronousTestCase):
    def test_parse(self):
        d = parse_cache_control([b'Max-Age=60, no-cache="Set-Cookie, X", public', b"s-maxage=5"])
        self.assertEqual(d, {"max-age": "60", "no-cache": "Set-Cookie, X", "public": None,
                             "s-maxage": "5"})

    def test_firstWins(self):
        self.assertEqual(delta_seconds(cc("max-age=10, max-age=100"), "max-age"), 10)

    def test_invalidDeltaIgnored(self):
        for text in ("max-age=-1", "max-age=abc", "max-age", "max-age=1.5"):
            self.assertIsNone(delta_seconds(cc(text), "max-age"), text)

    def test_hugeDeltaCapped(self):
        self.assertEqual(delta_seconds(cc("max-age=99999999999999"), "max-age"), 2147483648)

    def test_dates(self):
        self.assertEqual(parse_http_date(b"Sun, 06 Nov 1994 08:49:37 GMT"), 784111777.0)
        self.assertEqual(parse_http_date(b"Sunday, 06-Nov-94 08:49:37 GMT"), 784111777.0)
        self.assertEqual(parse_http_date(b"Sun Nov  6 08:49:37 1994"), 784111777.0)
        self.assertIsNone(parse_http_date(b"0"))
        self.assertIsNone(parse_http_date(b""))
        self.assertEqual(parse_http_date(date(T0)), T0)


class RefusalTests(SynchronousTestCase):
    """
    RFC 9111 section 3: what a shared cache must not store.
    """

    def refused(self, headers=(), status=200, method=b"GET", requestCC="", authorized=False):
        headers = list(headers)
        respCC = parse_cache_control([v for n, v in headers if n.lower() == b"cache-control"])
        return refusal(method, status, cc(requestCC), authorized, respCC, headers)

    def test_storable(self):
        self.assertIsNone(self.refused([(b"Cache-Control", b"max-age=60")]))

    def test_methodAndStatus(self):
        self.assertIn("GET", self.refused(method=b"POST"))
        for status in (206, 304, 101):
            self.assertIn("status", self.refused([(b"Cache-Control", b"max-age=1")], status))

    def test_noStorePrivate(self):
        self.assertIn("no-store", self.refused([(b"Cache-Control", b"no-store, max-age=9")]))
        self.assertIn("private", self.refused([(b"Cache-Control", b"private, max-age=9")]))
        self.assertIn("request", self.refused([(b"Cache-Control", b"max-age=9")],
                                              requestCC="no-store"))

    def test_varyStar(self):
        self.assertEqual(self.refused([(b"Vary", b"Accept, *")]), "Vary: *")

    def test_authorization(self):
        self.assertIn("Authorization", self.refused([(b"Cache-Control", b"max-age=9")],
                                                    authorized=True))
        for allowed in ("public, max-age=9", "s-maxage=9", "must-revalidate, max-age=9"):
            self.assertIsNone(self.refused([(b"Cache-Control", allowed.encode())],
                                           authorized=True), allowed)

    def test_setCookie(self):
        headers = [(b"Cache-Control", b"max-age=9"), (b"Set-Cookie", b"a=b")]
        self.assertIn("Set-Cookie", self.refused(headers))
        self.assertIsNone(self.refused([(b"Cache-Control", b"public, max-age=9"),
                                        (b"Set-Cookie", b"a=b")]))

    def test_statusNeedsExplicitFreshness(self):
        self.assertIn("explicit", self.refused([(b"Last-Modified", date(T0))], status=302))
        self.assertIsNone(self.refused([(b"Cache-Control", b"max-age=5")], status=302))
        self.assertIsNone(self.refused([(b"Last-Modified", date(T0))], status=404))


class LifetimeTests(SynchronousTestCase):
    def lifetime(self, headers, status=200, staticTtl=0.0, static=False):
        respCC = parse_cache_control([v for n, v in headers if n.lower() == b"cache-control"])
        return freshness_lifetime(status, respCC, headers, T0, staticTtl, static)

    def test_order(self):
        self.assertEqual(self.lifetime([(b"Cache-Control", b"max-age=10, s-maxage=20")]),
                         (20.0, "s-maxage"))
        self.assertEqual(self.lifetime([(b"Cache-Control", b"max-age=10"),
                                        (b"Expires", date(T0 + 100))]), (10.0, "max-age"))

    def test_expiresAgainstDate(self):
        headers = [(b"Date", date(T0 - 50)), (b"Expires", date(T0 + 50))]
        self.assertEqual(self.lifetime(headers), (100.0, "expires"))
        self.assertEqual(self.lifetime([(b"Expires", date(T0 + 30))]), (30.0, "expires"))
        self.assertEqual(self.lifetime([(b"Expires", b"0")]), (0.0, "expires"))

    def test_heuristic(self):
        headers = [(b"Date", date(T0)), (b"Last-Modified", date(T0 - 1000))]
        self.assertEqual(self.lifetime(headers), (100.0, "heuristic"))
        old = [(b"Date", date(T0)), (b"Last-Modified", date(T0 - 10 ** 8))]
        self.assertEqual(self.lifetime(old), (86400.0, "heuristic"))
        # Not for a status that is not heuristically cacheable.
        self.assertEqual(self.lifetime(headers, status=302), (0.0, "none"))

    def test_staticTtl(self):
        self.assertEqual(self.lifetime([], staticTtl=300, static=True), (300.0, "static_ttl"))
        self.assertEqual(self.lifetime([], staticTtl=300, static=False), (0.0, "none"))
        # Explicit freshness wins over static_ttl.
        self.assertEqual(self.lifetime([(b"Cache-Control", b"max-age=5")], 200, 300, True)[0], 5)

    def test_isStatic(self):
        self.assertTrue(is_static(b"/a/b.css?v=1", []))
        self.assertTrue(is_static(b"/font.WOFF2", []))
        self.assertTrue(is_static(b"/x", [(b"Content-Type", b"image/png")]))
        self.assertFalse(is_static(b"/x.html", [(b"Content-Type", b"text/html")]))

    def test_worthless(self):
        self.assertTrue(worthless(0, []))
        self.assertFalse(worthless(0, [(b"ETag", b'"a"')]))
        self.assertFalse(worthless(5, []))


class AgeTests(SynchronousTestCase):
    """
    RFC 9111 section 4.2.3, over many random inputs.
    """

    def test_properties(self):
        rng = random.Random(15)
        for _ in range(5000):
            requestTime = T0 + rng.uniform(0, 1000)
            responseTime = requestTime + rng.uniform(0, 5)
            dateValue = responseTime - rng.uniform(-10, 60)
            ageValue = rng.choice([0.0, float(rng.randint(0, 500))])
            now = responseTime + rng.uniform(0, 10000)
            age = current_age(ageValue, dateValue, requestTime, responseTime, now)
            resident = now - responseTime
            # Never less than what any one clue says.
            self.assertGreaterEqual(age + 1e-9, ageValue + (responseTime - requestTime) + resident)
            self.assertGreaterEqual(age + 1e-9, responseTime - dateValue + resident)
            self.assertGreaterEqual(age + 1e-9, resident)
            # And it grows one second per second.
            later = current_age(ageValue, dateValue, requestTime, responseTime, now + 7)
            self.assertAlmostEqual(later - age, 7)

    def test_example(self):
        # Date 10 s before the response arrived, Age 3, one second in flight:
        # max(10, 3 + 1) + 20 s resident.
        self.assertEqual(current_age(3, T0 - 10, T0 - 1, T0, T0 + 20), 30)
        # No Date: only Age and the delay.
        self.assertEqual(current_age(3, None, T0 - 1, T0, T0 + 20), 24)


class JudgeTests(SynchronousTestCase):
    def test_freshAndStale(self):
        self.assertEqual(judge(5, 10, {}, {}, 0), FRESH)
        self.assertEqual(judge(10, 10, {}, {}, 0), VALIDATE)

    def test_responseNoCache(self):
        self.assertEqual(judge(0, 100, cc("no-cache"), {}, 0), VALIDATE)

    def test_requestDirectives(self):
        self.assertEqual(judge(5, 100, {}, cc("no-cache"), 0), VALIDATE)
        self.assertEqual(judge(5, 100, {}, cc("max-age=4"), 0), VALIDATE)
        self.assertEqual(judge(5, 100, {}, cc("max-age=5"), 0), FRESH)
        self.assertEqual(judge(5, 100, {}, cc("min-fresh=94"), 0), FRESH)
        self.assertEqual(judge(5, 100, {}, cc("min-fresh=95"), 0), VALIDATE)
        self.assertEqual(judge(150, 100, {}, cc("max-stale=50"), 0), STALE)
        self.assertEqual(judge(151, 100, {}, cc("max-stale=50"), 0), VALIDATE)
        self.assertEqual(judge(10 ** 6, 100, {}, cc("max-stale"), 0), STALE)

    def test_mustRevalidate(self):
        for directive in ("must-revalidate", "proxy-revalidate", "s-maxage=100"):
            self.assertEqual(judge(150, 100, cc(directive), cc("max-stale"), 60), VALIDATE)

    def test_staleWhileRevalidate(self):
        self.assertEqual(judge(130, 100, {}, {}, 30), BACKGROUND)
        self.assertEqual(judge(131, 100, {}, {}, 30), VALIDATE)

    def test_window(self):
        self.assertEqual(window(cc("stale-if-error=5"), "stale-if-error", 60), 5)
        self.assertEqual(window({}, "stale-if-error", 60), 60)


class KeyTests(SynchronousTestCase):
    def test_primary(self):
        self.assertEqual(primary_key(b"https", b"Example.COM:8443", b"/a?b=1"),
                         b"https://example.com:8443/a?b=1")

    def test_vary(self):
        names = vary_names([(b"Vary", b"Accept-Encoding, accept-language"), (b"vary", b"X")])
        self.assertEqual(names, (b"accept-encoding", b"accept-language", b"x"))
        headers = {b"accept-encoding": [b"gzip ,  br"], b"x": [b"1", b"2"]}
        self.assertEqual(variant(names, headers.get), (b"gzip,br", None, b"1,2"))
