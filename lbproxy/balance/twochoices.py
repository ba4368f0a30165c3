# -*- test-case-name: tests.test_strategies -*-
"""
C{balance = "random"}: the power of two random choices.

Two distinct usable members are drawn at random, each with a probability
proportional to its weight (the slow-start ramp's part of it while it
ramps), and the one with fewer requests in flight per unit of weight
takes the request (the first drawn on a tie).  This spreads load nearly
as well as least connections while needing no shared view of every
member, and it never sends a burst to the one least loaded member the
way a strict least-connections choice among many balancers can.

The random source is the pool's C{options["random"]} (a
C{random.Random}, seeded in tests), else one of its own.

Pure: no Twisted, no I/O, no clock.
"""

from __future__ import annotations

import random as _random
from typing import TYPE_CHECKING, Collection, List, Optional

from zope.interface import implementer

from lbproxy.balance.strategy import IStrategy, PoolView

if TYPE_CHECKING:
    from lbproxy.balance.members import Member

__all__ = ["TwoChoices"]


@implementer(IStrategy)
class TwoChoices:
    """
    Power of two choices, weighted.
    """

    def __init__(self, pool: PoolView) -> None:
        self._members = tuple(m for m in pool.members if m.weight)
        self._limit = pool.maxInflight
        rng = pool.options.get("random")
        self._random = (rng if rng is not None else _random.Random()).random
        # Reused by every pick: no allocation per request.
        self._candidates: List[Member] = []
        self._weights: List[int] = []

    def pick(
        self, exclude: Collection[Member], now: float, context: object = None
    ) -> Optional[Member]:
        limit = self._limit
        candidates = self._candidates
        weights = self._weights
        del candidates[:], weights[:]
        total = 0
        for member in self._members:
            state = member.state
            if not state.up or (exclude and member in exclude):
                continue
            if limit and state.inflight >= limit:
                continue
            weight = member.scaled if state.rampStart is None else member.rampedWeight(now)
            candidates.append(member)
            weights.append(weight)
            total += weight
        count = len(candidates)
        if count < 2:
            return candidates[0] if count else None
        first = self._draw(total, -1)
        # The second draw is among the others: weights without the first's.
        second = self._draw(total - weights[first], first)
        a, b = candidates[first], candidates[second]
        # Fewer in flight per unit of weight; the first drawn on a tie.
        if b.state.inflight * weights[first] < a.state.inflight * weights[second]:
            return b
        return a

    def _draw(self, total: int, skip: int) -> int:
        """
        The index of a candidate drawn with probability proportional to its
        weight, leaving out the one at C{skip}.
        """
        weights = self._weights
        point = self._random() * total
        last = -1
        for index, weight in enumerate(weights):
            if index == skip:
                continue
            last = index
            point -= weight
            if point < 0:
                return index
        return last
