# -*- test-case-name: tests.test_balancing -*-
"""
The runtime state of a pool's targets, and the choice among them.

Pure: no Twisted, no I/O, no clock.  The health checker sets
L{Member.up}; the proxy maintains L{Member.inflight} and calls
L{Pool.pick} for every request.
"""

from __future__ import annotations

from collections import deque
from typing import Collection, Deque, Optional, Protocol, Sequence, Tuple

__all__ = ["BALANCERS", "Member", "Pool"]

#: The balance names L{Pool} accepts.
BALANCERS = frozenset({"round_robin"})

#: Weights are kept multiplied by this, so that a slow-start ramp can give
#: a target of weight 1 a fraction of its share.
_SCALE = 100


class _TargetLike(Protocol):
    """
    What a L{Member} needs of its target (L{lbproxy.config.Target}).
    """

    @property
    def weight(self) -> int: ...


class Member:
    """
    The mutable runtime state of one target in one pool.

    Members compare and hash by identity, so a set or tuple of them can be
    passed as C{exclude} to L{Pool.pick}.

    @ivar target: the configured target.
    @ivar up: whether the target may be picked; set by health checking.
    @ivar inflight: requests in progress on the target, maintained by the
        proxy.
    @ivar health: the target's L{lbproxy.health.state.TargetHealth}, set by the
        health checker.
    @ivar _weight: the target's weight, times L{_SCALE}.
    @ivar _current: the current weight of smooth weighted round robin.
    """

    __slots__ = (
        "target", "up", "inflight", "health", "_weight", "_current", "_rampStart", "_rampLength"
    )

    def __init__(self, target: _TargetLike) -> None:
        """
        @param target: the configured target.
        @raise ValueError: if its weight is not a positive integer.
        """
        weight = target.weight
        if isinstance(weight, bool) or not isinstance(weight, int) or weight < 1:
            raise ValueError(f"target weight must be a positive integer, not {weight!r}")
        self.target = target
        self.up = True
        self.inflight = 0
        self.health = None
        self._weight = weight * _SCALE
        self._current = 0
        self._rampStart: Optional[float] = None
        self._rampLength = 0.0

    def startRamp(self, now: float, length: float) -> None:
        """
        Slow start: from C{now}, the member's share grows linearly from
        almost nothing to its full weight over C{length} seconds (no ramp if
        C{length} is 0), so a target that just came back is not flooded.
        """
        if length > 0:
            self._rampStart = now
            self._rampLength = length

    def _effectiveWeight(self, now: float) -> int:
        elapsed = now - self._rampStart
        if elapsed >= self._rampLength or elapsed < 0:
            self._rampStart = None
            return self._weight
        return max(1, int(self._weight * elapsed / self._rampLength))

    def __repr__(self) -> str:
        return (
            f"<Member {getattr(self.target, 'address', self.target)}"
            f" weight={self._weight // _SCALE} up={self.up} inflight={self.inflight}>"
        )


class Pool:
    """
    A pool's members and its balancing.

    C{"round_robin"} is smooth weighted round robin as nginx does it: each
    pick adds every candidate's weight to its current weight, takes the
    candidate with the largest current weight (the earliest on a tie) and
    subtracts the candidates' total weight from it.  Equal weights rotate
    A, B, C, A, ...; weights 5, 1, 1 give a, a, b, a, c, a, a.  Members
    that are down or excluded take no part in a pick and keep their current
    weight, so the others stay in proportion and a member coming back up
    rejoins where it left off.

    @ivar name: the pool's name.
    @ivar members: one L{Member} per target, in configuration order.
    @ivar balance: the balancing name.
    """

    def __init__(
        self, name: str, targets: Sequence[_TargetLike], balance: str = "round_robin"
    ) -> None:
        """
        @param name: the pool's name.
        @param targets: L{lbproxy.config.Target}-like objects.
        @param balance: one of L{BALANCERS}.
        @raise ValueError: for an unknown balance or a bad weight.
        """
        if balance not in BALANCERS:
            raise ValueError(f"pool {name!r}: unknown balance {balance!r}")
        self.name = name
        self.balance = balance
        self.members: Tuple[Member, ...] = tuple(Member(t) for t in targets)
        #: The C{Retry-After} value (seconds, as bytes) of a 503 when no
        #: member is usable.
        self.retryAfter = b"5"
        #: Most requests in progress on one member; 0 for no limit.
        self.maxInflight = 0
        #: Requests waiting for a member with room, oldest first, at most
        #: C{queueSize}, each at most C{queueTimeout} seconds.
        self.waiting: Deque = deque()
        self.queueSize = 100
        self.queueTimeout = 10.0

    def __repr__(self) -> str:
        return f"<Pool {self.name!r} {self.balance} members={len(self.members)}>"

    def pick(self, exclude: Collection[Member] = (), now: float = 0.0) -> Optional[Member]:
        """
        Choose the member for the next request.

        @param exclude: members not to choose, e.g. those already tried for
            this request.
        @param now: the current time, for members in a slow-start ramp.
        @return: the chosen member among those up and not excluded, or
            L{None} when there is none.
        """
        best: Optional[Member] = None
        best_current = 0
        total = 0
        limit = self.maxInflight
        for member in self.members:
            if not member.up or (exclude and member in exclude):
                continue
            if limit and member.inflight >= limit:
                continue
            weight = member._weight if member._rampStart is None else member._effectiveWeight(now)
            current = member._current + weight
            member._current = current
            total += weight
            if best is None or current > best_current:
                best = member
                best_current = current
        if best is not None:
            best._current = best_current - total
        return best

    def saturated(self, exclude: Collection[Member] = ()) -> bool:
        """
        Whether a member that could be picked is only held back by
        C{maxInflight}: the request should wait for room, not fail.
        """
        if not self.maxInflight:
            return False
        for member in self.members:
            if member.up and not (exclude and member in exclude):
                return True
        return False

    def usable(self) -> bool:
        """
        @return: whether any member is up.
        """
        for member in self.members:
            if member.up:
                return True
        return False
