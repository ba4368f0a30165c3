# -*- test-case-name: tests.test_balancing -*-
"""
How a pool chooses among its members: a strategy, one per pool, chosen by
the pool's C{balance} name (L{lbproxy.balance.strategies.STRATEGIES}).

A new algorithm is one module: a class whose constructor takes the
L{lbproxy.balance.pool.Pool} (its C{members}, C{maxInflight} and
C{options}, read once: a pool never changes its membership) and whose
C{pick} provides L{IStrategy}, plus its line in the table.

What a strategy may learn of the request is in
L{lbproxy.balance.context}.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Protocol, Sequence

from zope.interface import Interface

__all__ = ["IStrategy", "PoolView", "StrategyFactory"]


class PoolView(Protocol):
    """
    What a strategy reads of its L{lbproxy.balance.pool.Pool}, once, when
    it is made.
    """

    @property
    def members(self) -> Sequence[Any]: ...

    @property
    def maxInflight(self) -> int: ...

    @property
    def options(self) -> Mapping[str, Any]: ...


class IStrategy(Interface):
    """
    The balancing of one pool.
    """

    def pick(exclude, now, context):
        """
        Choose the member for the next request, among the pool's members
        whose target is up, that are not excluded and have fewer than the
        pool's C{maxInflight} requests in flight (when it has a limit):
        see L{lbproxy.balance.members.Member.eligible}.

        Called for every request, and again for each retry: no allocation,
        no lookup by name, no I/O.

        @param exclude: a collection of members not to choose (those
            already tried for this request), often empty.
        @type exclude: C{Collection[Member]}
        @param now: the current time, for members in a slow-start ramp
            (L{lbproxy.balance.members.Member.rampedWeight}).
        @type now: L{float}
        @param context: what is known of the request
            (L{lbproxy.balance.context.RequestInfo}), or L{None} for
            nothing.
        @return: the chosen L{lbproxy.balance.members.Member}, or L{None}
            when none is eligible.
        """


#: What L{lbproxy.balance.strategies.STRATEGIES} maps a balance name to:
#: called once with the pool, it returns the pool's L{IStrategy}.
StrategyFactory = Callable[[PoolView], IStrategy]
