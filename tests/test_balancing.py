"""
Tests for L{lbproxy.balance}: pools, members, strategies, the wait queue.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from typing import Dict, List, Optional

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from lbproxy.balance.context import KEY_SOURCES, key_reader
from lbproxy.balance.members import SCALE, Member
from lbproxy.balance.pool import Pool
from lbproxy.balance.queue import WaitQueue
from lbproxy.balance.roundrobin import RoundRobin
from lbproxy.balance.strategies import BALANCERS, STRATEGIES
from lbproxy.balance.strategy import IStrategy
from lbproxy.runtime.targets import TargetState


@dataclass(frozen=True)
class Target:
    """
    Stand-in with the shape of L{lbproxy.config.Target}.
    """

    scheme: str
    host: str
    port: int
    weight: int = 1
    health_check_endpoint: Optional[str] = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


def pool(*weights: int) -> Pool:
    """
    A pool with targets named a, b, c, ... of the given weights.
    """
    return Pool(
        "p", [Target("http", chr(ord("a") + i), 80, weight=w) for i, w in enumerate(weights)]
    )


def picks(p: Pool, n: int, exclude=()) -> List[Optional[str]]:
    """
    The hosts of the next C{n} picks (L{None} for no pick).
    """
    result: List[Optional[str]] = []
    for _ in range(n):
        m = p.pick(exclude)
        result.append(None if m is None else m.target.host)
    return result


class MemberTests(SynchronousTestCase):
    """
    Tests for L{Member}.
    """

    def test_defaults(self) -> None:
        """
        A new member is up with nothing in flight.
        """
        t = Target("http", "a", 80)
        m = Member(t)
        self.assertIs(m.target, t)
        self.assertTrue(m.up)
        self.assertEqual(m.inflight, 0)
        self.assertIn("a:80", repr(m))

    def test_badWeight(self) -> None:
        """
        A weight below 0 is refused; 0 (a retired target) is not.
        """
        for w in [-1, True, 1.5]:
            self.assertRaises(ValueError, Member, Target("http", "a", 80, weight=w))
        self.assertEqual(Member(Target("http", "a", 80, weight=0)).scaled, 0)


class PoolTests(SynchronousTestCase):
    """
    Tests for L{Pool}.
    """

    def test_members(self) -> None:
        """
        A pool has one member per target, in order.
        """
        targets = [Target("http", "a", 80), Target("https", "b", 443, weight=3)]
        p = Pool("web", targets)
        self.assertEqual(p.name, "web")
        self.assertIsInstance(p.members, tuple)
        self.assertEqual([m.target for m in p.members], targets)

    def test_unknownBalance(self) -> None:
        """
        An unknown balance name is refused.
        """
        self.assertRaises(ValueError, Pool, "p", [Target("http", "a", 80)], "random_ish")

    def test_equalWeightsRotate(self) -> None:
        """
        Equal weights give plain rotation in member order.
        """
        self.assertEqual(picks(pool(1, 1, 1), 7), list("abcabca"))
        self.assertEqual(picks(pool(4, 4), 4), list("abab"))

    def test_nginxSequence(self) -> None:
        """
        Weights 5, 1, 1 give nginx's smooth sequence, repeated.
        """
        self.assertEqual(picks(pool(5, 1, 1), 14), list("aabacaa" * 2))

    def test_twoToOne(self) -> None:
        """
        Weights 2:1 interleave and give exact proportions over every full
        cycle.
        """
        p = pool(2, 1)
        self.assertEqual(picks(p, 6), list("abaaba"))
        counts = Counter(picks(p, 3000))
        self.assertEqual(counts, {"a": 2000, "b": 1000})

    def test_proportions(self) -> None:
        """
        Over a whole cycle every member gets exactly its weight.
        """
        weights = (3, 7, 1, 5)
        p = pool(*weights)
        counts = Counter(picks(p, sum(weights) * 10))
        self.assertEqual(counts, {"a": 30, "b": 70, "c": 10, "d": 50})

    def test_singleMember(self) -> None:
        """
        A single member is always picked, whatever its weight, until it
        is down.
        """
        p = pool(3)
        self.assertEqual(picks(p, 4), list("aaaa"))
        p.members[0].up = False
        self.assertIsNone(p.pick())
        p.members[0].up = True
        self.assertEqual(picks(p, 2), list("aa"))

    def test_empty(self) -> None:
        """
        A pool without targets picks nothing and is not usable.
        """
        p = Pool("empty", [])
        self.assertIsNone(p.pick())
        self.assertFalse(p.usable())

    def test_skipDown(self) -> None:
        """
        Members that are down are skipped; the rest keep rotating.
        """
        p = pool(1, 1, 1)
        p.members[1].up = False
        self.assertEqual(picks(p, 6), list("acacac"))

    def test_skipDownWeighted(self) -> None:
        """
        With a member down, the others keep their relative weights.
        """
        p = pool(5, 1, 1)
        p.members[0].up = False
        self.assertEqual(picks(p, 4), list("bcbc"))
        p = pool(2, 1, 7)
        p.members[2].up = False
        self.assertEqual(Counter(picks(p, 300)), {"a": 200, "b": 100})

    def test_allDown(self) -> None:
        """
        With every member down, nothing is picked and the pool is not
        usable.
        """
        p = pool(1, 2)
        self.assertTrue(p.usable())
        for m in p.members:
            m.up = False
        self.assertIsNone(p.pick())
        self.assertFalse(p.usable())

    def test_usable(self) -> None:
        """
        A pool is usable while any member is up.
        """
        p = pool(1, 1)
        p.members[0].up = False
        self.assertTrue(p.usable())

    def test_comingBackUp(self) -> None:
        """
        A member coming back up rejoins the rotation and gets its share.
        """
        p = pool(1, 1, 1)
        self.assertEqual(picks(p, 2), list("ab"))
        p.members[0].up = False
        # a's frozen current weight may give c one extra turn at first
        # (as in nginx), but b and c share evenly.
        counts = Counter(picks(p, 101))
        self.assertEqual(set(counts), {"b", "c"})
        self.assertLessEqual(abs(counts["b"] - counts["c"]), 1)
        p.members[0].up = True
        self.assertEqual(set(picks(p, 3)), {"a", "b", "c"})
        self.assertEqual(Counter(picks(p, 300)), {"a": 100, "b": 100, "c": 100})

    def test_exclude(self) -> None:
        """
        Excluded members are not picked: a retry goes elsewhere.
        """
        p = pool(1, 1, 1)
        first = p.pick()
        assert first is not None
        self.assertEqual(first.target.host, "a")
        retry = p.pick(exclude=(first,))
        assert retry is not None
        self.assertEqual(retry.target.host, "b")
        self.assertIsNone(p.pick(exclude=set(p.members)))
        # Excluding a down member, or one twice, changes nothing more.
        p.members[2].up = False
        self.assertEqual(p.pick(exclude=[p.members[0], p.members[0]]).target.host, "b")

    def test_excludeKeepsFairness(self) -> None:
        """
        Excluding a member for one pick does not cost it its share.
        """
        p = pool(1, 1)
        a, b = p.members
        counts = Counter()
        for i in range(100):
            m = p.pick(exclude=(a,) if i == 0 else ())
            counts[m.target.host] += 1
        self.assertEqual(counts, {"a": 50, "b": 50})

    def test_excludeOnlyUsable(self) -> None:
        """
        Excluding the only member that is up leaves nothing.
        """
        p = pool(1, 1)
        p.members[1].up = False
        self.assertIsNone(p.pick(exclude=(p.members[0],)))

    def test_pickDoesNotTouchInflight(self) -> None:
        """
        Picking leaves C{inflight} to the proxy.
        """
        p = pool(1)
        m = p.pick()
        assert m is not None
        self.assertEqual(m.inflight, 0)


class SlowStartTests(SynchronousTestCase):
    """
    A member in a slow-start ramp gets a growing share of the picks.
    """

    def assertClose(self, actual: float, expected: float, delta: float) -> None:
        self.assertTrue(abs(actual - expected) <= delta, f"{actual} not within {delta} of {expected}")

    def test_ramp(self):
        """
        Over the ramp the returning member's share grows from almost nothing
        to its full (equal) share, then stays there.
        """
        p = pool(1, 1)
        a, b = p.members
        a.startRamp(100.0, 10.0)

        def shareOfA(now: float, picks: int = 1000) -> float:
            chosen = [p.pick(now=now) for _ in range(picks)]
            return chosen.count(a) / picks

        self.assertLess(shareOfA(100.0), 0.02)
        self.assertClose(shareOfA(102.5), 0.2, 0.02)
        self.assertClose(shareOfA(105.0), 1 / 3, 0.02)
        self.assertClose(shareOfA(110.0), 0.5, 0.01)
        self.assertClose(shareOfA(200.0), 0.5, 0.01)

    def test_noRamp(self):
        """
        A ramp of 0 seconds changes nothing.
        """
        p = pool(1, 1)
        p.members[0].startRamp(0.0, 0.0)
        chosen = [p.pick(now=0.0).target.host for _ in range(4)]
        self.assertEqual(chosen, ["a", "b", "a", "b"])


class RoundRobinPropertyTests(SynchronousTestCase):
    """
    Smooth weighted round robin through L{IStrategy}, over seeded random
    pools.
    """

    SEEDS = range(40)

    def randomPool(self, rng: random.Random) -> Pool:
        weights = [rng.randint(1, 9) for _ in range(rng.randint(1, 6))]
        return pool(*weights)

    def assertEveryWindow(self, chosen: List[Member], weights: Dict[Member, int]) -> None:
        """
        Every run of C{sum(weights)} consecutive picks holds each member
        exactly its weight of times.
        """
        window = sum(weights.values())
        for start in range(len(chosen) - window + 1):
            counts = Counter(chosen[start : start + window])
            self.assertEqual(dict(counts), weights, f"window at {start}")

    def test_windows(self) -> None:
        """
        Over every window of sum(weights) picks, each target gets exactly
        its weight.
        """
        for seed in self.SEEDS:
            rng = random.Random(seed)
            p = self.randomPool(rng)
            strategy = p.strategy
            verifyObject(IStrategy, strategy)
            total = sum(m.weight for m in p.members)
            chosen = [strategy.pick((), 0.0, None) for _ in range(total * 3)]
            self.assertEveryWindow(chosen, {m: m.weight for m in p.members})

    def test_downSkipped(self) -> None:
        """
        Members that are down are never picked; the others get exactly their
        weights over every window of their total.
        """
        for seed in self.SEEDS:
            rng = random.Random(seed)
            p = self.randomPool(rng)
            down = {m for m in p.members if rng.random() < 0.4}
            for m in down:
                m.state.up = False
            up = {m: m.weight for m in p.members if m not in down}
            chosen = [p.pick() for _ in range(sum(up.values()) * 3 or 5)]
            if not up:
                self.assertEqual(set(chosen), {None})
                continue
            self.assertEveryWindow(chosen, up)

    def test_excludedSkipped(self) -> None:
        """
        Members excluded from a pick (tried already), down, or at the
        pool's C{maxInflight} are never picked; a pick returns L{None} only
        when no member is left.
        """
        for seed in self.SEEDS:
            rng = random.Random(seed)
            weights = [rng.randint(1, 9) for _ in range(rng.randint(1, 6))]
            p = Pool("p", [Target("http", f"h{i}", 80, weight=w) for i, w in enumerate(weights)],
                     maxInflight=2)
            for _ in range(200):
                for m in p.members:
                    m.state.up = rng.random() < 0.8
                    m.state.inflight = rng.randint(0, 2)
                exclude = [m for m in p.members if rng.random() < 0.3]
                eligible = [m for m in p.members if m.eligible(exclude, 2)]
                chosen = p.pick(exclude)
                if eligible:
                    self.assertIn(chosen, eligible)
                else:
                    self.assertIsNone(chosen)
                self.assertEqual(p.saturated(exclude), any(
                    m.state.up and m not in exclude for m in p.members))

    def test_sharedState(self) -> None:
        """
        Two pools whose members share a target's state see it go down
        together; each keeps its own weights and rotation.
        """
        a, b = Target("http", "a", 80), Target("http", "b", 80, weight=2)
        first = Pool("one", [a, b])
        second = Pool("two", [Target("http", "a", 80, weight=3), b],
                      states=[m.state for m in first.members])
        self.assertEqual([m.weight for m in second.members], [3, 2])
        self.assertEqual(picks(second, 5), list("ababa"))
        self.assertEqual(picks(first, 3), list("bab"))
        first.members[0].up = False
        self.assertFalse(second.members[0].up)
        self.assertEqual(picks(second, 2), list("bb"))


class StrategyTableTests(SynchronousTestCase):
    """
    A strategy is chosen by name, given the pool once and the request at
    every pick.
    """

    def test_table(self) -> None:
        """
        The table maps each balance name to a factory; the config accepts
        exactly these names.
        """
        from lbproxy.balance import pool as poolModule
        from lbproxy.config import BALANCE_ALGORITHMS

        self.assertEqual(STRATEGIES["round_robin"], RoundRobin)
        self.assertEqual(BALANCERS, frozenset(STRATEGIES))
        self.assertIs(poolModule.BALANCERS, BALANCERS)
        self.assertEqual(set(BALANCE_ALGORITHMS), set(BALANCERS))
        self.assertIsInstance(pool(1).strategy, RoundRobin)

    def test_newStrategy(self) -> None:
        """
        A strategy added to the table is built with the pool and receives
        the request context.
        """
        seen = []

        @implementer(IStrategy)
        class Last:
            def __init__(self, p: Pool) -> None:
                self.members = p.members

            def pick(self, exclude, now, context):
                seen.append(context)
                for member in reversed(self.members):
                    if member.eligible(exclude):
                        return member
                return None

        STRATEGIES["last"] = Last
        self.addCleanup(STRATEGIES.pop, "last")
        p = Pool("p", [Target("http", "a", 80), Target("http", "b", 80)], "last")
        context = object()
        self.assertEqual(p.pick((), 0.0, context).target.host, "b")
        self.assertEqual(p.pick(p.members[1:]).target.host, "a")
        self.assertEqual(seen, [context, None])

    def test_keyReaders(self) -> None:
        """
        Keys from the client address, the path, a header or a cookie; none
        without a request.
        """
        from twisted.web.http_headers import Headers

        class Request:
            requestHeaders = Headers(
                {b"X-User": [b"alice", b"bob"], b"Cookie": [b"a=1; sid=s1", b"sid=s2"]}
            )

        class Context:
            clientIp = "192.0.2.7"
            path = "/caf\u00e9"
            request = Request()

        context = Context()
        self.assertEqual(key_reader("client_ip")(context), b"192.0.2.7")
        self.assertEqual(key_reader("path")(context), "/caf\u00e9".encode("utf-8"))
        self.assertEqual(key_reader("header", b"x-user")(context), b"alice")
        self.assertIsNone(key_reader("header", b"X-None")(context))
        self.assertEqual(key_reader("cookie", b"sid")(context), b"s1")
        self.assertIsNone(key_reader("cookie", b"other")(context))
        self.assertIsNone(key_reader("cookie", b"si")(context))
        self.assertEqual(key_reader("cookie", b"a")(context), b"1")
        for source in KEY_SOURCES:
            self.assertIsNone(key_reader(source, b"n")(None))
        self.assertRaises(ValueError, key_reader, "body")
        self.assertRaises(ValueError, key_reader, "header")


class Waiter:
    def __init__(self, name: str) -> None:
        self.name = name
        self.done = False
        self.events: List[str] = []

    def resume(self) -> None:
        self.events.append("resume")

    def queueTimedOut(self) -> None:
        self.events.append("timeout")


class WaitQueueTests(SynchronousTestCase):
    """
    Tests for L{WaitQueue}.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.queue = WaitQueue(size=2, timeout=5.0)

    def test_fifo(self) -> None:
        """
        Waiters are resumed oldest first, one per wake; a full queue refuses
        more.
        """
        a, b, c = Waiter("a"), Waiter("b"), Waiter("c")
        self.assertTrue(self.queue.add(a, self.clock))
        self.assertTrue(self.queue.add(b, self.clock))
        self.assertFalse(self.queue.add(c, self.clock))
        self.assertEqual(len(self.queue), 2)
        self.queue.wakeNext()
        self.assertEqual((a.events, b.events), (["resume"], []))
        self.queue.wakeNext()
        self.assertEqual(b.events, ["resume"])
        self.queue.wakeNext()
        self.assertEqual(len(self.queue), 0)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_timeout(self) -> None:
        """
        A waiter leaves after the timeout, on the given clock.
        """
        a = Waiter("a")
        self.queue.add(a, self.clock)
        self.clock.advance(4.9)
        self.assertEqual(a.events, [])
        self.clock.advance(0.1)
        self.assertEqual(a.events, ["timeout"])
        self.assertEqual(len(self.queue), 0)
        self.queue.wakeNext()
        self.assertEqual(a.events, ["timeout"])

    def test_remove(self) -> None:
        """
        A removed waiter is neither resumed nor timed out; removing one not
        in the queue does nothing.
        """
        a, b = Waiter("a"), Waiter("b")
        self.queue.add(a, self.clock)
        self.queue.add(b, self.clock)
        self.queue.remove(a)
        self.queue.remove(a)
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        self.queue.wakeNext()
        self.assertEqual((a.events, b.events), ([], ["resume"]))

    def test_skipDone(self) -> None:
        """
        A waiter that ended meanwhile is skipped: the next one gets the
        room.
        """
        a, b = Waiter("a"), Waiter("b")
        self.queue.add(a, self.clock)
        self.queue.add(b, self.clock)
        a.done = True
        self.queue.wakeNext()
        self.assertEqual((a.events, b.events), ([], ["resume"]))
        self.assertEqual(self.clock.getDelayedCalls(), [])


class MemberStateTests(SynchronousTestCase):
    """
    A member is a target's shared state plus its pool's weight.
    """

    def test_sharedState(self) -> None:
        t = Target("http", "a", 80, weight=4)
        state = TargetState(t)
        m = Member(t, state)
        self.assertIs(m.state, state)
        m.up = False
        m.inflight = 3
        self.assertEqual((state.up, state.inflight), (False, 3))
        m.startRamp(10.0, 10.0)
        self.assertEqual(state.rampStart, 10.0)
        self.assertEqual(m.rampedWeight(15.0), 4 * SCALE // 2)
        self.assertEqual(m.rampedWeight(20.0), 4 * SCALE)
        self.assertIsNone(state.rampStart)

    def test_eligible(self) -> None:
        m = Member(Target("http", "a", 80))
        self.assertTrue(m.eligible())
        self.assertFalse(m.eligible([m]))
        m.inflight = 2
        self.assertTrue(m.eligible((), 3))
        self.assertFalse(m.eligible((), 2))
        m.up = False
        self.assertFalse(m.eligible())
