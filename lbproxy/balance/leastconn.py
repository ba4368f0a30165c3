# -*- test-case-name: tests.test_strategies -*-
"""
C{balance = "least_conn"}: the member with the fewest requests in flight
relative to its weight.

A member's load is C{inflight / weight} (compared by cross-multiplying,
no division); its weight is the slow-start ramp's part of it while it
ramps.  Members with the same lowest load are chosen among by smooth
weighted round robin (the members' C{current}, as in
L{lbproxy.balance.roundrobin}), so identical idle targets take turns
instead of the first one in the list taking every request whenever the
pool is quiet, and idle targets of weights 3 and 1 share 3:1.

Pure: no Twisted, no I/O, no clock.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Collection, Optional

from zope.interface import implementer

from lbproxy.balance.strategy import IStrategy, PoolView

if TYPE_CHECKING:
    from lbproxy.balance.members import Member

__all__ = ["LeastConnections"]


@implementer(IStrategy)
class LeastConnections:
    """
    Fewest in flight per unit of weight; smooth weighted round robin among
    the least loaded.
    """

    def __init__(self, pool: PoolView) -> None:
        self._members = tuple(m for m in pool.members if m.weight)
        self._limit = pool.maxInflight

    def pick(
        self, exclude: Collection[Member], now: float, context: object = None
    ) -> Optional[Member]:
        limit = self._limit
        # First pass: the lowest load, as the fraction inflight / weight.
        low_inflight = -1
        low_weight = 1
        for member in self._members:
            state = member.state
            if not state.up or (exclude and member in exclude):
                continue
            inflight = state.inflight
            if limit and inflight >= limit:
                continue
            weight = member.scaled if state.rampStart is None else member.rampedWeight(now)
            if low_inflight < 0 or inflight * low_weight < low_inflight * weight:
                low_inflight = inflight
                low_weight = weight
        if low_inflight < 0:
            return None
        # Second pass: smooth weighted round robin among those as low.
        best: Optional[Member] = None
        best_current = 0
        total = 0
        for member in self._members:
            state = member.state
            if not state.up or (exclude and member in exclude):
                continue
            inflight = state.inflight
            if limit and inflight >= limit:
                continue
            weight = member.scaled if state.rampStart is None else member.rampedWeight(now)
            if inflight * low_weight != low_inflight * weight:
                continue
            current = member.current + weight
            member.current = current
            total += weight
            if best is None or current > best_current:
                best = member
                best_current = current
        if best is not None:
            best.current = best_current - total
        return best
