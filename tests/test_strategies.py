"""
Tests for the balancing strategies beyond round robin
(L{lbproxy.balance.leastconn}, L{lbproxy.balance.twochoices},
L{lbproxy.balance.hashring}): properties over thousands of seeded picks.
"""

from __future__ import annotations

import heapq
import math
import random
from collections import Counter
from dataclasses import dataclass
from typing import Optional

from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from lbproxy.balance.hashring import HashRing, parse_hash_key
from lbproxy.balance.leastconn import LeastConnections
from lbproxy.balance.pool import Pool
from lbproxy.balance.strategy import IStrategy
from lbproxy.balance.twochoices import TwoChoices


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    weight: int = 1
    health_check_endpoint: Optional[str] = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.address}"


def make_pool(balance, weights, seed=1, **options) -> Pool:
    targets = [Target("http", f"10.0.0.{i + 1}", 80, weight=w) for i, w in enumerate(weights)]
    options.setdefault("random", random.Random(seed))
    return Pool("p", targets, balance, options=options)


class Client:
    """
    Only a client address (the cheap context of many hashed keys).
    """

    __slots__ = ("clientIp",)

    def __init__(self, clientIp):
        self.clientIp = clientIp


class Context:
    """
    What a strategy reads of a request.
    """

    def __init__(self, clientIp="192.0.2.1", path="/", headers=None, cookies=None):
        from twisted.web.http_headers import Headers

        self.clientIp = clientIp
        self.path = path
        headers = dict(headers or {})
        if cookies:
            headers[b"Cookie"] = [b"; ".join(k + b"=" + v for k, v in cookies.items())]

        class Request:
            requestHeaders = Headers(headers)
            uri = path.encode("ascii")

        self.request = Request()


def simulate(pool: Pool, requests: int, seed: int, durations=(0.1, 5.0), rate=2.0):
    """
    Requests arriving at C{rate} per second, each holding its target for a
    random time between C{durations}: the picks' counts by host.
    """
    rng = random.Random(seed)
    now = 0.0
    running = []
    counts = Counter()
    for _ in range(requests):
        now += rng.expovariate(rate)
        while running and running[0][0] <= now:
            _, _, member = heapq.heappop(running)
            member.state.inflight -= 1
        member = pool.pick((), now, None)
        counts[member.target.host] += 1
        member.state.inflight += 1
        heapq.heappush(running, (now + rng.uniform(*durations), id(member) + rng.random(), member))
    return counts


class InterfaceTests(SynchronousTestCase):
    def test_provides(self):
        for balance, kind in (
            ("least_conn", LeastConnections), ("random", TwoChoices), ("hash", HashRing)
        ):
            strategy = make_pool(balance, [1, 1]).strategy
            self.assertIsInstance(strategy, kind)
            verifyObject(IStrategy, strategy)

    def test_noneUsable(self):
        for balance in ("least_conn", "random", "hash"):
            p = make_pool(balance, [1, 1])
            for m in p.members:
                m.up = False
            self.assertIsNone(p.pick((), 0.0, Context()))
            self.assertIsNone(p.pick((), 0.0, None))

    def test_exclude(self):
        for balance in ("least_conn", "random", "hash"):
            p = make_pool(balance, [1, 1, 1])
            for _ in range(50):
                chosen = p.pick(p.members[:2], 0.0, Context())
                self.assertIs(chosen, p.members[2])

    def test_maxInflight(self):
        for balance in ("least_conn", "random", "hash"):
            targets = [Target("http", f"h{i}", 80) for i in range(2)]
            p = Pool("p", targets, balance, maxInflight=1, options={"random": random.Random(3)})
            p.members[0].inflight = 1
            for _ in range(20):
                self.assertIs(p.pick((), 0.0, Context()), p.members[1])
            p.members[1].inflight = 1
            self.assertIsNone(p.pick((), 0.0, Context()))

    def test_weightZeroNeverPicked(self):
        """
        A member of weight 0 takes no new requests, whatever the strategy.
        """
        for balance in ("round_robin", "least_conn", "random", "hash"):
            p = make_pool(balance, [0, 1, 2])
            seen = Counter()
            for i in range(600):
                m = p.pick((), 0.0, Context(clientIp=f"198.51.100.{i % 250}"))
                seen[m.target.host] += 1
                if balance != "round_robin":
                    m.state.inflight += i % 2
            self.assertNotIn("10.0.0.1", seen, balance)
            self.assertEqual(len(seen), 2, balance)


class LeastConnectionsTests(SynchronousTestCase):
    def test_fewestInflight(self):
        p = make_pool("least_conn", [1, 1, 1])
        a, b, c = p.members
        a.inflight, b.inflight, c.inflight = 3, 1, 2
        self.assertIs(p.pick(), b)

    def test_relativeToWeight(self):
        """
        4 in flight on weight 4 is less loaded than 2 on weight 1.
        """
        p = make_pool("least_conn", [4, 1])
        a, b = p.members
        a.inflight, b.inflight = 4, 2
        self.assertIs(p.pick(), a)
        a.inflight = 9
        self.assertIs(p.pick(), b)

    def test_idleTargetsShare(self):
        """
        Identical idle targets take turns: one at a time, five targets
        get exactly a fifth each (none starves behind the first).
        """
        p = make_pool("least_conn", [1] * 5)
        counts = Counter(p.pick().target.host for _ in range(1500))
        self.assertEqual(set(counts.values()), {300})

    def test_idleWeighted(self):
        p = make_pool("least_conn", [3, 1])
        hosts = [p.pick().target.host for _ in range(400)]
        self.assertEqual(Counter(hosts), {"10.0.0.1": 300, "10.0.0.2": 100})

    def test_neverStarves(self):
        """
        Five identical targets, 1,500 requests with uneven response times:
        each gets at least half its fair share (seeds 1 to 10).
        """
        for seed in range(1, 11):
            p = make_pool("least_conn", [1] * 5)
            counts = simulate(p, 1500, seed)
            self.assertEqual(sum(counts.values()), 1500)
            self.assertGreaterEqual(min(counts[m.target.host] for m in p.members), 150, (seed, counts))

    def test_slowStart(self):
        """
        A member in its ramp counts with the ramp's part of its weight.
        """
        p = make_pool("least_conn", [1, 1])
        a, b = p.members
        b.startRamp(0.0, 100.0)
        a.inflight, b.inflight = 2, 1
        # b at 10 % of its weight: 1 in flight is like 10 on a.
        self.assertIs(p.pick((), 10.0), a)
        self.assertIs(p.pick((), 200.0), b)


class TwoChoicesTests(SynchronousTestCase):
    def test_lessLoadedOfTwo(self):
        """
        With two members, the less loaded one always wins.
        """
        p = make_pool("random", [1, 1])
        a, b = p.members
        a.inflight = 5
        self.assertEqual({p.pick() for _ in range(100)}, {b})

    def test_neverStarves(self):
        for seed in range(1, 11):
            p = make_pool("random", [1] * 5, seed=seed)
            counts = simulate(p, 1500, seed)
            self.assertGreaterEqual(min(counts[m.target.host] for m in p.members), 150, (seed, counts))

    def test_weighted(self):
        """
        Idle members of weights 3 and 1: the draw follows the weights (the
        first of the two drawn wins a tie), within 3 % over 10,000 picks.
        """
        p = make_pool("random", [3, 1, 0], seed=7)
        counts = Counter(p.pick().target.host for _ in range(10000))
        # P(a first) = 3/4; P(b first) = 1/4.
        self.assertLessEqual(abs(counts["10.0.0.1"] / 10000 - 0.75), 0.03)
        self.assertNotIn("10.0.0.3", counts)

    def test_single(self):
        p = make_pool("random", [1])
        self.assertIs(p.pick(), p.members[0])


class HashKeyTests(SynchronousTestCase):
    def test_parse(self):
        self.assertEqual(parse_hash_key("client_ip"), ("client_ip", None))
        self.assertEqual(parse_hash_key("uri"), ("uri", None))
        self.assertEqual(parse_hash_key("header:X-User"), ("header", b"X-User"))
        self.assertEqual(parse_hash_key("cookie:sid"), ("cookie", b"sid"))
        for bad in ("body", "header:", "cookie", "query:x"):
            self.assertRaises(ValueError, parse_hash_key, bad)


class HashRingTests(SynchronousTestCase):
    def test_sameKeySameTarget(self):
        p = make_pool("hash", [1] * 5, hash_key="header:X-User")
        for user in range(200):
            context = Context(headers={b"X-User": [b"u%d" % (user,)]})
            first = p.pick((), 0.0, context)
            self.assertEqual({p.pick((), 0.0, context) for _ in range(3)}, {first})

    def test_sources(self):
        """
        Keys from the client address, the path, the whole target, a
        header, a cookie.
        """
        for key, context, other in [
            ("client_ip", Context(clientIp="192.0.2.9"), Context(clientIp="192.0.2.9", path="/x")),
            ("path", Context(path="/a"), Context(path="/a", clientIp="192.0.2.200")),
            ("uri", Context(path="/a?q=1"), Context(path="/a?q=1", clientIp="192.0.2.7")),
            ("cookie:sid", Context(cookies={b"sid": b"s"}), Context(cookies={b"sid": b"s"}, clientIp="192.0.2.8")),
        ]:
            p = make_pool("hash", [1] * 20, hash_key=key)
            self.assertIs(p.pick((), 0.0, context), p.pick((), 0.0, other), key)

    def test_noKeyRoundRobin(self):
        """
        A request without the key goes round robin.
        """
        p = make_pool("hash", [1, 1, 1], hash_key="header:X-User")
        hosts = [p.pick((), 0.0, Context()).target.host for _ in range(6)]
        self.assertEqual(hosts, ["10.0.0.1", "10.0.0.2", "10.0.0.3"] * 2)
        self.assertEqual(p.pick((), 0.0, None).target.host, "10.0.0.1")

    def keysOn(self, weights, hosts=None, keys=100000):
        targets = [Target("http", h, 80, weight=w) for h, w in zip(hosts, weights)]
        ring = HashRing(Pool("p", targets, "round_robin"))
        result = []
        for k in range(keys):
            result.append(ring.pick((), 0.0, Client(f"k{k}")).target.host)
        return result

    def test_addingMovesLittle(self):
        """
        Adding one target to N moves at most 1/(N+1) + 2 % of 100,000
        keys, all of them to the new target.
        """
        for n in (4, 10):
            hosts = [f"10.1.0.{i}" for i in range(n + 1)]
            before = self.keysOn([1] * n, hosts[:n])
            after = self.keysOn([1] * (n + 1), hosts)
            moved = [(b, a) for b, a in zip(before, after) if b != a]
            share = len(moved) / len(before)
            self.assertLessEqual(share, 1 / (n + 1) + 0.02, n)
            self.assertGreater(share, 1 / (n + 1) - 0.04, n)
            self.assertEqual({a for _, a in moved}, {hosts[n]})

    def test_removingMovesOnlyItsKeys(self):
        hosts = [f"10.1.0.{i}" for i in range(8)]
        before = self.keysOn([1] * 8, hosts, keys=20000)
        after = self.keysOn([1] * 7, hosts[:7], keys=20000)
        for b, a in zip(before, after):
            if b != hosts[7]:
                self.assertEqual(a, b)

    def test_spread(self):
        """
        Each of 5 equal targets owns 20 % +- 4 % of the keys; weights
        2:1 give 2:1 +- 4 %.
        """
        hosts = [f"10.1.0.{i}" for i in range(5)]
        counts = Counter(self.keysOn([1] * 5, hosts, keys=50000))
        for host in hosts:
            self.assertLessEqual(abs(counts[host] / 50000 - 0.2), 0.04)
        counts = Counter(self.keysOn([2, 1], hosts[:2], keys=30000))
        self.assertLessEqual(abs(counts[hosts[0]] / 30000 - 2 / 3), 0.04)

    def test_downTargetKeysMove(self):
        """
        A target that is down loses its keys to the next on the ring; the
        others' keys stay where they are.
        """
        p = make_pool("hash", [1] * 5)
        contexts = [Context(clientIp=f"k{k}") for k in range(3000)]
        before = [p.pick((), 0.0, c) for c in contexts]
        p.members[0].up = False
        after = [p.pick((), 0.0, c) for c in contexts]
        for b, a in zip(before, after):
            if b is not p.members[0]:
                self.assertIs(a, b)
            else:
                self.assertIsNot(a, b)

    def test_boundedLoads(self):
        """
        With hash_balance_factor 1.25, whatever the keys (one hot client
        sends half the requests), no target ever holds more than
        ceil(1.25 x the average in flight) when it is given a request.
        """
        for seed in (1, 2, 3):
            rng = random.Random(seed)
            p = make_pool("hash", [1] * 5, hash_key="client_ip", hash_balance_factor=1.25)
            running = []
            now = 0.0
            for _ in range(5000):
                now += rng.expovariate(50.0)
                while running and running[0][0] <= now:
                    member = heapq.heappop(running)[2]
                    member.state.inflight -= 1
                client = "hot" if rng.random() < 0.5 else f"c{rng.randrange(1000)}"
                member = p.pick((), now, Context(clientIp=client))
                member.state.inflight += 1
                total = sum(m.inflight for m in p.members)
                self.assertLessEqual(member.inflight, math.ceil(1.25 * total / 5))
                heapq.heappush(running, (now + rng.uniform(0.05, 0.5), rng.random(), member))

    def test_unboundedHotKey(self):
        """
        Without a factor, a hot key stays on its target however loaded.
        """
        p = make_pool("hash", [1] * 3)
        context = Context(clientIp="hot")
        first = p.pick((), 0.0, context)
        first.inflight = 100
        self.assertIs(p.pick((), 0.0, context), first)

    def test_spillToNeighbour(self):
        """
        A hot key over its bound spills over to one neighbour on the ring,
        the same one each time, not everywhere.
        """
        p = make_pool("hash", [1] * 5, hash_balance_factor=1.25)
        context = Context(clientIp="hot")
        first = p.pick((), 0.0, context)
        first.inflight = 3
        others = {p.pick((), 0.0, context) for _ in range(5)}
        self.assertEqual(len(others), 1)
        self.assertNotIn(first, others)
