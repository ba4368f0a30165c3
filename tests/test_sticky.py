"""
Tests for sticky sessions: L{lbproxy.balance.sticky} (the signed cookie,
the strategy) and L{lbproxy.stages.sticky} through the whole proxy in
memory.
"""

from __future__ import annotations

import random
import re

from twisted.trial.unittest import SynchronousTestCase

from lbproxy.balance.pool import Pool
from lbproxy.balance.sticky import StickyCodec, StickyMark
from lbproxy.config import parse_config
from lbproxy.testing import ProxyHarness
from tests.test_strategies import Context, Target

SECRET = b"0123456789abcdef-secret"


def sticky_pool(weights, balance="round_robin", secret=SECRET, maxInflight=0):
    targets = [Target("http", f"10.0.0.{i + 1}", 80, weight=w) for i, w in enumerate(weights)]
    return Pool(
        "p", targets, balance, maxInflight=maxInflight,
        options={"random": random.Random(1)},
        sticky={"name": "lb", "ttl": 3600, "secret": secret},
    )


class StickyContext(Context):
    def __init__(self, cookie=None, **kw):
        super().__init__(cookies={b"lb": cookie} if cookie is not None else {}, **kw)
        self.sticky = StickyMark()


def _otherSecret():
    other = sticky_pool([1, 1, 1], secret=b"another secret, same length")
    return other.sticky.value(other.members[0], 100.0)


class CodecTests(SynchronousTestCase):
    def setUp(self):
        self.pool = sticky_pool([1, 1, 1])
        self.codec = self.pool.sticky

    def test_roundTrip(self):
        for member in self.pool.members:
            value = self.codec.value(member, 1000.0)
            self.assertEqual(self.codec.read(value, 1000.0), (member, True))
            self.assertEqual(self.codec.read(value, 1000.0 + 1799), (member, True))
            # Past half its life: still valid, but to be renewed.
            self.assertEqual(self.codec.read(value, 1000.0 + 1800), (member, False))

    def test_opaque(self):
        """
        The cookie does not show the target's address or port.
        """
        value = self.codec.value(self.pool.members[0], 0.0)
        self.assertNotIn(b"10.0.0.1", value)
        self.assertNotIn(b"80", value.split(b".")[0])
        self.assertRegex(value.decode("ascii"), r"\A[A-Za-z0-9_-]{12}\.[0-9a-z]+\.[A-Za-z0-9_-]{16}\Z")

    def test_forged(self):
        """
        A cookie altered in any part, signed with another secret, or made
        up, names no target.
        """
        value = self.codec.value(self.pool.members[0], 100.0)
        token, issued, mac = value.split(b".")
        other = self.codec.value(self.pool.members[1], 100.0)
        forgeries = [
            other.split(b".")[0] + b"." + issued + b"." + mac,  # another target's token
            token + b".2t." + mac,  # another time (100 is "2s")
            token + b"." + issued + b"." + mac[:-1] + (b"A" if mac[-1:] != b"A" else b"B"),
            _otherSecret(),
            b"10.0.0.1:80",
            b"", b"..", b"a.b.c.d", value + b".",
        ]
        for forged in forgeries:
            self.assertEqual(self.codec.read(forged, 100.0), (None, False), forged)
        self.assertEqual(self.codec.read(None, 100.0), (None, False))

    def test_expired(self):
        value = self.codec.value(self.pool.members[0], 100.0)
        self.assertEqual(self.codec.read(value, 100.0 + 3600), (None, False))
        # Issued (by another instance) a little in the future: fine; far: no.
        self.assertEqual(self.codec.read(value, 50.0)[0], self.pool.members[0])
        self.assertEqual(self.codec.read(value, 30.0), (None, False))

    def test_otherProcess(self):
        """
        Another process (another worker or instance, or this one after a
        reload) with the same secret reads the cookie, whatever the
        weights and the order of the targets now.
        """
        value = self.codec.value(self.pool.members[1], 10.0)
        targets = [Target("http", f"10.0.0.{i}", 80, weight=w) for i, w in ((3, 7), (2, 5), (9, 1))]
        other = Pool("p", targets, "least_conn", sticky={"name": "lb", "ttl": 3600, "secret": SECRET})
        member, fresh = other.sticky.read(value, 10.0)
        self.assertEqual(member.target.host, "10.0.0.2")
        self.assertIs(member, other.members[1])

    def test_setCookie(self):
        codec = StickyCodec(self.pool.members, "sess", 60, SECRET, secure=True)
        header = codec.setCookie(self.pool.members[0], 5.0)
        self.assertTrue(header.startswith(b"sess=" + codec.value(self.pool.members[0], 5.0) + b"; "))
        self.assertIn(b"; Max-Age=60; Path=/; Secure; HttpOnly; SameSite=Lax", header)


class StickyStrategyTests(SynchronousTestCase):
    def test_firstVisit(self):
        """
        Without a cookie the pool's strategy chooses; the mark asks for a
        cookie naming the choice.
        """
        p = sticky_pool([1, 1])
        context = StickyContext()
        chosen = p.pick((), 10.0, context)
        self.assertIs(chosen, p.members[0])
        self.assertEqual(context.sticky.setCookie(), p.sticky.setCookie(chosen, 10.0))

    def test_pinned(self):
        """
        A valid cookie wins over the strategy; a fresh one is not set again.
        """
        p = sticky_pool([1, 1, 1])
        value = p.sticky.value(p.members[2], 0.0)
        for _ in range(10):
            context = StickyContext(value)
            self.assertIs(p.pick((), 10.0, context), p.members[2])
            self.assertIsNone(context.sticky.setCookie())

    def test_renewed(self):
        p = sticky_pool([1, 1])
        value = p.sticky.value(p.members[1], 0.0)
        context = StickyContext(value)
        self.assertIs(p.pick((), 2000.0, context), p.members[1])
        self.assertEqual(context.sticky.setCookie(), p.sticky.setCookie(p.members[1], 2000.0))

    def test_forgedRepinned(self):
        p = sticky_pool([1, 1])
        context = StickyContext(b"forged.0.AAAAAAAAAAAAAAAA")
        chosen = p.pick((), 0.0, context)
        self.assertIsNotNone(chosen)
        self.assertIsNotNone(context.sticky.setCookie())

    def test_downRepinned(self):
        """
        When the pinned target is down (or already tried for this request),
        the strategy chooses another and the answer re-pins the client.
        """
        p = sticky_pool([1, 1, 1])
        value = p.sticky.value(p.members[0], 0.0)
        p.members[0].up = False
        context = StickyContext(value)
        chosen = p.pick((), 1.0, context)
        self.assertIsNot(chosen, p.members[0])
        self.assertEqual(context.sticky.setCookie(), p.sticky.setCookie(chosen, 1.0))
        p.members[0].up = True
        context = StickyContext(value)
        self.assertIsNot(p.pick(p.members[:1], 1.0, context), p.members[0])

    def test_weightZeroKeepsSticky(self):
        """
        A target of weight 0 takes no new client but keeps those pinned to
        it.
        """
        p = sticky_pool([0, 1, 1])
        value = p.sticky.value(p.members[0], 0.0)
        for _ in range(5):
            self.assertIs(p.pick((), 1.0, StickyContext(value)), p.members[0])
        for _ in range(20):
            self.assertIsNot(p.pick((), 1.0, StickyContext()), p.members[0])

    def test_fullWaits(self):
        """
        A pinned target that is only full makes the request wait for room
        rather than lose its session.
        """
        p = sticky_pool([1, 1], maxInflight=1)
        value = p.sticky.value(p.members[0], 0.0)
        p.members[0].inflight = 1
        self.assertIsNone(p.pick((), 1.0, StickyContext(value)))
        self.assertTrue(p.saturated())

    def test_noMark(self):
        """
        Without a mark (a request on a route with no sticky stage, a
        unit test) the pool's strategy chooses.
        """
        p = sticky_pool([1, 1])
        self.assertEqual([p.pick().target.host for _ in range(2)], ["10.0.0.1", "10.0.0.2"])


CONFIG = {
    "pools": {
        "app": {
            "targets": ["10.3.0.1:80", "10.3.0.2:80", {"address": "10.3.0.3:80", "weight": 0}],
            "sticky": {"cookie": "srv", "ttl": 600, "secret": "a sticky secret of some length"},
        },
        "plain": {"targets": ["10.4.0.1:80"]},
    },
    "routes": [{"path": "/plain", "pool": "plain"}, {"path": "/", "pool": "app"}],
}

ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"


class StickyProxyTests(SynchronousTestCase):
    """
    Sticky sessions through the proxy, in memory.
    """

    def setUp(self):
        self.proxy = ProxyHarness(CONFIG)

    def get(self, cookie=None, path=b"/"):
        """
        One request: the backend address it went to and the cookie set.
        """
        client = self.proxy.client()
        extra = b"Cookie: srv=" + cookie + b"\r\n" if cookie else b""
        client.send(b"GET " + path + b" HTTP/1.1\r\nHost: h\r\n" + extra + b"\r\n")
        backend = self.proxy.accept()
        backend.respond(ANSWER)
        response = client.received()
        self.assertIn(b" 200 OK\r\n", response)
        match = re.search(rb"\r\nSet-Cookie: srv=([^;\r]*)", response)
        return backend.address, match.group(1) if match else None

    def test_staysUntilDown(self):
        address, cookie = self.get()
        self.assertIsNotNone(cookie)
        for _ in range(6):
            self.assertEqual(self.get(cookie), (address, None))
        # The backend behind it is taken out (health): the client moves,
        # and is pinned to its new target.
        state = next(s for s in self.proxy.registry.entries() if s.target.address == address)
        state.up = False
        moved, newCookie = self.get(cookie)
        self.assertNotEqual(moved, address)
        self.assertIsNotNone(newCookie)
        self.assertEqual(self.get(newCookie), (moved, None))

    def test_newClientsShare(self):
        """
        Clients without a cookie are spread by the strategy, never to the
        target of weight 0.
        """
        seen = {self.get()[0] for _ in range(6)}
        self.assertEqual(seen, {"10.3.0.1:80", "10.3.0.2:80"})

    def test_forgedCookie(self):
        address, cookie = self.get(b"AAAAAAAAAAAA.0.AAAAAAAAAAAAAAAA")
        self.assertIsNotNone(cookie)

    def test_weightZeroKeepsItsClients(self):
        """
        A cookie naming the weight-0 target (issued while it had weight)
        still goes there.
        """
        pool = self.proxy.resource.runtime.pools["app"]
        value = pool.sticky.value(pool.members[2], self.proxy.reactor.seconds())
        self.assertEqual(self.get(value), ("10.3.0.3:80", None))

    def test_reloadKeepsSessions(self):
        """
        A reload that changes the weights, the strategy and the order of
        the targets keeps every client on its target.
        """
        pinned = {}
        for _ in range(4):
            address, cookie = self.get()
            pinned[cookie] = address
        pool = dict(CONFIG["pools"]["app"])
        pool["targets"] = [
            {"address": "10.3.0.2:80", "weight": 5}, "10.3.0.1:80", "10.3.0.3:80",
        ]
        pool["balance"] = "least_conn"
        data = dict(CONFIG, pools=dict(CONFIG["pools"], app=pool))
        self.proxy.resource.runtime = self.proxy.core.build(parse_config(data, "t.toml"))
        for cookie, address in pinned.items():
            self.assertEqual(self.get(cookie), (address, None))

    def test_otherRoutesUntouched(self):
        """
        A route whose pool has no sticky sessions has no sticky stage and
        sets no cookie.
        """
        self.assertEqual(self.get(path=b"/plain"), ("10.4.0.1:80", None))
        names = self.proxy.resource.runtime.match("h", "/plain").chain.names()
        self.assertNotIn("sticky", names)
        self.assertIn("sticky", self.proxy.resource.runtime.match("h", "/").chain.names())


class CachedStickyTests(SynchronousTestCase):
    """
    A cached route to a sticky pool: the cookie is set per client and
    never stored with a cached response.
    """

    def test_cookieNotCached(self):
        proxy = ProxyHarness(
            {
                "cache": {"max_bytes": "16m"},
                "pools": {"app": {"targets": ["10.3.0.1:80", "10.3.0.2:80"], "sticky": {}}},
                "routes": [{"path": "/", "pool": "app", "cache": {}}],
            }
        )
        first = proxy.client()
        first.send(b"GET /page HTTP/1.1\r\nHost: h\r\n\r\n")
        proxy.accept().respond(
            b"HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nContent-Length: 2\r\n\r\nok"
        )
        self.assertIn(b"\r\nSet-Cookie: lb=", first.received())
        second = proxy.client("10.0.0.2")
        second.send(b"GET /page HTTP/1.1\r\nHost: h\r\n\r\n")
        self.assertEqual(proxy.pending(), [])
        answer = second.received()
        self.assertIn(b"X-Cache: HIT", answer)
        self.assertNotIn(b"Set-Cookie", answer)
