# -*- test-case-name: tests.test_balancing -*-
"""
A pool: its members, its settings, its wait queue, and the choice among
its members, which it leaves to its strategy (L{lbproxy.balance.strategy}).

Pure: no Twisted, no I/O, no clock.  The health checker keeps each
member's target up or down; the proxy maintains the in-flight counts and
calls L{Pool.pick} for every request.
"""

from __future__ import annotations

from typing import Collection, Dict, List, Mapping, Optional, Sequence, Tuple

from lbproxy.balance.members import SCALE, Member, TargetLike
from lbproxy.balance.queue import WaitQueue
from lbproxy.balance.scores import ScoredStrategy, ScoreWeighter
from lbproxy.balance.sticky import Sticky, StickyCodec
from lbproxy.balance.strategies import BALANCERS, STRATEGIES
from lbproxy.balance.strategy import IStrategy
from lbproxy.runtime.targets import TargetState

__all__ = ["BALANCERS", "Member", "Pool"]


class Pool:
    """
    A pool's members and its balancing.

    @ivar name: the pool's name.
    @ivar members: one L{Member} per target, in configuration order.
    @ivar balance: the balancing name, a key of
        L{lbproxy.balance.strategies.STRATEGIES}.
    @ivar strategy: the pool's L{IStrategy}.
    @ivar retryAfter: the C{Retry-After} value (seconds, as bytes) of a 503
        when no member is usable.
    @ivar maxInflight: most requests in progress on one member's target; 0
        for no limit.
    @ivar queue: the L{WaitQueue} of requests waiting for a member with
        room (with C{maxInflight}).
    @ivar options: the strategy's settings (none for round robin).
    @ivar sticky: the pool's L{StickyCodec} with sticky sessions, else
        L{None}.
    @ivar weighter: the pool's L{ScoreWeighter} with score-driven weights,
        else L{None}.
    """

    def __init__(
        self,
        name: str,
        targets: Sequence[TargetLike],
        balance: str = "round_robin",
        *,
        states: Optional[Sequence[TargetState]] = None,
        retryAfter: bytes = b"5",
        maxInflight: int = 0,
        queueSize: int = 100,
        queueTimeout: float = 10.0,
        options: Optional[Mapping[str, object]] = None,
        sticky: Optional[Mapping[str, object]] = None,
        weights=None,
    ) -> None:
        """
        @param name: the pool's name.
        @param targets: L{lbproxy.config.Target}-like objects.
        @param balance: one of L{BALANCERS}.
        @param states: each target's entry in a
            L{lbproxy.runtime.targets.TargetRegistry}, in the same order; a
            state of its own for each target if L{None}.
        @param queueSize: most requests waiting for room.
        @param queueTimeout: seconds a request waits for room at most.
        @param options: the strategy's settings (C{hash_key},
            C{hash_balance_factor}, C{random}).
        @param sticky: for sticky sessions, the L{StickyCodec} arguments
            after the members (C{name}, C{ttl}, C{secret}, ...).
        @param weights: for score-driven weights, the pool's
            L{lbproxy.config.balancing.ScoreWeights}.
        @raise ValueError: for an unknown balance or a bad weight.
        """
        factory = STRATEGIES.get(balance)
        if factory is None:
            raise ValueError(f"pool {name!r}: unknown balance {balance!r}")
        if states is None:
            members = tuple(Member(t) for t in targets)
        else:
            if len(states) != len(targets):
                raise ValueError(f"pool {name!r}: {len(targets)} targets, {len(states)} states")
            members = tuple(Member(t, s) for t, s in zip(targets, states))
        self.name = name
        self.balance = balance
        self.members: Tuple[Member, ...] = members
        self.retryAfter = retryAfter
        self.maxInflight = maxInflight
        self.queue = WaitQueue(queueSize, queueTimeout)
        self.options = dict(options or {})
        self.strategy: IStrategy = factory(self)
        self.sticky: Optional[StickyCodec] = None
        if sticky is not None:
            self.sticky = StickyCodec(members, **sticky)
            self.strategy = Sticky(self.strategy, self.sticky, maxInflight)
        self.weighter: Optional[ScoreWeighter] = None
        if weights is not None:
            self.weighter = ScoreWeighter(members, weights, name)
            self.strategy = ScoredStrategy(self.strategy, self.weighter)
        self._pick = self.strategy.pick

    def __repr__(self) -> str:
        return f"<Pool {self.name!r} {self.balance} members={len(self.members)}>"

    def pick(
        self, exclude: Collection[Member] = (), now: float = 0.0, context: object = None
    ) -> Optional[Member]:
        """
        Choose the member for the next request (L{IStrategy.pick}).

        @param exclude: members not to choose, e.g. those already tried for
            this request.
        @param now: the current time, for members in a slow-start ramp.
        @param context: the request (L{lbproxy.balance.context.RequestInfo}),
            or L{None}.
        @return: the chosen member among those up, not excluded and with
            room, or L{None} when there is none.
        """
        return self._pick(exclude, now, context)

    def describe(self) -> List[Dict[str, object]]:
        """
        Each member's state, for the status page and the admin API: its
        address, registry ident, configured and effective weight (score-
        driven weights change the latter), score, whether it is up and its
        requests in flight.
        """
        scores = {}
        if self.weighter is not None:
            scores = {m: self.weighter.score(m) for m in self.weighter.members}
        return [
            {
                "target": member.target.address,
                "ident": member.state.ident,
                "weight": member.weight,
                "effective_weight": round(member.scaled / SCALE, 2),
                "score": scores.get(member),
                "up": member.state.up,
                "inflight": member.state.inflight,
            }
            for member in self.members
        ]

    def saturated(self, exclude: Collection[Member] = ()) -> bool:
        """
        Whether a member that could be picked is only held back by
        C{maxInflight}: the request should wait for room, not fail.
        """
        if not self.maxInflight:
            return False
        for member in self.members:
            if member.state.up and not (exclude and member in exclude):
                return True
        return False

    def usable(self) -> bool:
        """
        @return: whether any member is up.
        """
        for member in self.members:
            if member.state.up:
                return True
        return False
