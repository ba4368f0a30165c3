# -*- test-case-name: tests.test_balancing -*-
"""
C{balance = "round_robin"}: smooth weighted round robin, as nginx does it.

Each pick adds every candidate's weight to its current weight, takes the
candidate with the largest current weight (the earliest on a tie) and
subtracts the candidates' total weight from it.  Equal weights rotate A,
B, C, A, ...; weights 5, 1, 1 give a, a, b, a, c, a, a.  Members that are
down, excluded or full (C{maxInflight}) take no part in a pick and keep
their current weight, so the others stay in proportion and a member
coming back rejoins where it left off.  A member in a slow-start ramp
takes part with the part of its weight the ramp allows.  A member of
weight 0 takes no part at all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Collection, Optional

from zope.interface import implementer

from lbproxy.balance.strategy import IStrategy, PoolView

if TYPE_CHECKING:
    from lbproxy.balance.members import Member

__all__ = ["RoundRobin"]


@implementer(IStrategy)
class RoundRobin:
    """
    Smooth weighted round robin over a pool's members; the current
    weights are the members' C{current}.
    """

    def __init__(self, pool: PoolView) -> None:
        self._members = tuple(m for m in pool.members if m.weight)
        self._limit = pool.maxInflight

    def pick(
        self, exclude: Collection[Member], now: float, context: object = None
    ) -> Optional[Member]:
        best: Optional[Member] = None
        best_current = 0
        total = 0
        limit = self._limit
        for member in self._members:
            state = member.state
            if not state.up or (exclude and member in exclude):
                continue
            if limit and state.inflight >= limit:
                continue
            weight = member.scaled if state.rampStart is None else member.rampedWeight(now)
            current = member.current + weight
            member.current = current
            total += weight
            if best is None or current > best_current:
                best = member
                best_current = current
        if best is not None:
            best.current = best_current - total
        return best
