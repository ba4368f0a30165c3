"""
Tests for L{lbproxy.balance.pool}.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import List, Optional

from twisted.trial.unittest import SynchronousTestCase

from lbproxy.balance.pool import Member, Pool


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
        A weight below 1 is refused.
        """
        for w in [0, -1]:
            self.assertRaises(ValueError, Member, Target("http", "a", 80, weight=w))


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
