"""
Request coalescing: the pure bookkeeping, and concurrent misses through
the proxy in memory (one backend request; a waiter whose client leaves
is released at once; a failed leader hands over to exactly one waiter;
an uncacheable response releases every waiter at once).
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from lbproxy.cache.coalesce import Coalescer
from lbproxy.testing import ProxyHarness
from tests.cachehelp import config, parse, request, response

CACHED = b"200 OK\r\nCache-Control: max-age=60"


class _Waiter:
    def __init__(self, log, name):
        self.log = log
        self.name = name

    def landed(self):
        self.log.append(("landed", self.name))

    def released(self):
        self.log.append(("released", self.name))

    def takeOver(self, flight):
        self.log.append(("takeOver", self.name))


class CoalescerTests(SynchronousTestCase):
    def setUp(self):
        self.log = []
        self.c = Coalescer()
        self.flight = self.c.lead(b"k", "leader")
        self.waiters = [_Waiter(self.log, i) for i in range(3)]
        for w in self.waiters:
            self.assertIsNone(self.c.lead(b"k", w))
            self.c.wait(self.c.find(b"k"), w)

    def test_landed(self):
        self.c.landed(self.flight)
        self.assertEqual(self.log, [("landed", 0), ("landed", 1), ("landed", 2)])
        self.assertIsNone(self.c.find(b"k"))
        self.assertEqual(self.c.coalesced, 3)

    def test_release(self):
        self.c.leave(self.flight, self.waiters[1])
        self.c.release(self.flight)
        self.assertEqual(self.log, [("released", 0), ("released", 2)])
        self.assertEqual(len(self.c), 0)

    def test_failedHandsOverToOne(self):
        self.c.failed(self.flight)
        self.assertEqual(self.log, [("takeOver", 0)])
        self.assertIs(self.flight.leader, self.waiters[0])
        self.assertIs(self.c.find(b"k"), self.flight)
        self.c.failed(self.flight)
        self.c.failed(self.flight)
        self.assertEqual(self.log, [("takeOver", 0), ("takeOver", 1), ("takeOver", 2)])
        self.c.failed(self.flight)
        self.assertIsNone(self.c.find(b"k"))


class ProxyCoalescingTests(SynchronousTestCase):
    def proxy(self):
        proxy = ProxyHarness(config())
        self.addCleanup(lambda: proxy.services.cache and proxy.services.cache.stop())
        return proxy

    def test_oneBackendRequest(self):
        proxy = self.proxy()
        clients = [request(proxy) for _ in range(50)]
        self.assertEqual(len(proxy.pending()), 1)
        backend = proxy.accept()
        self.assertEqual(backend.received().count(b"GET /a "), 1)
        backend.respond(response(CACHED, b"payload" * 100))
        self.assertEqual(proxy.pending(), [])
        labels = []
        for client in clients:
            status, headers, body = parse(client.received())
            self.assertEqual((status, body), (200, b"payload" * 100))
            labels.append(headers[b"x-cache"][0])
        self.assertEqual(labels.count(b"MISS"), 1)
        self.assertEqual(labels.count(b"HIT"), 49)
        self.assertEqual(proxy.services.cache.stats()["coalesced"], 49)

    def test_thousandConcurrentColdMisses(self):
        proxy = self.proxy()
        clients = [request(proxy) for _ in range(1000)]
        self.assertEqual(len(proxy.pending()), 1)
        proxy.accept().respond(response(CACHED, b"x"))
        self.assertEqual(proxy.pending(), [])
        self.assertTrue(all(parse(c.received())[2] == b"x" for c in clients))

    def test_waiterLeavesAtOnce(self):
        proxy = self.proxy()
        request(proxy)
        gone = request(proxy)
        stays = request(proxy)
        gone.disconnect()
        self.assertIn(" 499 ", proxy.logLines()[-1])
        self.assertIn("cache=", proxy.logLines()[-1])
        proxy.accept().respond(response(CACHED, b"x"))
        self.assertEqual(gone.received(), b"")
        self.assertEqual(parse(stays.received())[2], b"x")
        self.assertEqual(len(proxy.services.cache.coalescer), 0)

    def test_leaderFailureOneTakesOver(self):
        proxy = self.proxy()
        leader = request(proxy)
        waiters = [request(proxy) for _ in range(5)]
        backend = proxy.accept()
        backend.respond(b"HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nContent-Length: 10\r\n\r\nab")
        backend.close()  # cut short: nothing stored
        self.assertIn(b"ab", leader.received())
        self.assertEqual(len(proxy.pending()), 1, "exactly one waiter takes over")
        self.assertTrue(all(w.received() == b"" for w in waiters))
        proxy.accept().respond(response(CACHED, b"0123456789"))
        self.assertEqual(proxy.pending(), [])
        for w in waiters:
            self.assertEqual(parse(w.received())[2], b"0123456789")

    def test_leaderClientGoneHandsOver(self):
        proxy = self.proxy()
        leader = request(proxy)
        waiter = request(proxy)
        proxy.accept()
        leader.disconnect()
        self.assertEqual(len(proxy.pending()), 1)
        proxy.accept().respond(response(CACHED, b"x"))
        self.assertEqual(parse(waiter.received())[2], b"x")

    def test_uncacheableReleasesEveryWaiter(self):
        proxy = self.proxy()
        request(proxy)
        waiters = [request(proxy) for _ in range(4)]
        backend = proxy.accept()
        backend.respond(b"HTTP/1.1 200 OK\r\nCache-Control: no-store\r\nContent-Length: 10\r\n\r\n")
        # Released at the head, before the body: all four at once.
        self.assertEqual(len(proxy.pending()), 4)
        for _ in range(4):
            proxy.accept().respond(response(b"200 OK\r\nCache-Control: no-store", b"own"))
        for w in waiters:
            status, headers, body = parse(w.received())
            self.assertEqual((body, headers[b"x-cache"]), (b"own", [b"MISS"]))

    def test_tooLargeReleasesWaiters(self):
        proxy = ProxyHarness(config(cacheTable={"max_object": 10, "max_bytes": 1000}))
        self.addCleanup(proxy.services.cache.stop)
        request(proxy)
        waiter = request(proxy)
        backend = proxy.accept()
        backend.respond(b"HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nContent-Length: 20\r\n\r\n")
        backend.respond(b"x" * 11)
        self.assertEqual(len(proxy.pending()), 1)
        proxy.accept().respond(response(CACHED, b"y" * 20))
        self.assertEqual(parse(waiter.received())[2], b"y" * 20)

    def test_rangeAndConditionalsDoNotLead(self):
        """
        A request with Range or a conditional goes alone (its 206 or 304
        could answer no one else); a plain one arriving meanwhile leads.
        """
        proxy = self.proxy()
        request(proxy, headers=b"Range: bytes=0-1\r\n")
        request(proxy, headers=b'If-None-Match: "x"\r\n')
        plain = request(proxy)
        self.assertEqual(len(proxy.pending()), 3)
        for _ in range(2):
            proxy.accept().respond(response(b"206 Partial Content\r\nContent-Range: bytes 0-1/5", b"ab"))
        proxy.accept().respond(response(CACHED, b"abcde"))
        self.assertEqual(parse(plain.received())[2], b"abcde")
        self.assertEqual(len(proxy.services.cache.store), 1)
