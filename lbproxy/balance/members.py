# -*- test-case-name: tests.test_balancing -*-
"""
A pool's member: one target in one pool, that is the target's shared
L{TargetState <lbproxy.runtime.targets.TargetState>} (up, in flight,
health, slow start) plus what is the pool's own (its weight, and a
strategy's per-member state).

Pure: no Twisted, no I/O, no clock.
"""

from __future__ import annotations

from typing import Collection, Optional, Protocol

from lbproxy.runtime.targets import TargetState

__all__ = ["SCALE", "Member", "TargetLike"]

#: Weights are kept multiplied by this, so that a slow-start ramp can give
#: a target of weight 1 a fraction of its share.
SCALE = 100


class TargetLike(Protocol):
    """
    What a L{Member} needs of its target (L{lbproxy.config.Target}).
    """

    @property
    def weight(self) -> int: ...

    @property
    def address(self) -> str: ...


class Member:
    """
    One target in one pool.

    Members compare and hash by identity, so a set or tuple of them can be
    passed as C{exclude} to L{lbproxy.balance.pool.Pool.pick}.

    @ivar target: the target as the pool configures it.
    @ivar state: the target's shared L{TargetState}.
    @ivar weight: the target's weight in this pool; 0 for a target being
        retired, which strategies never choose for a new client (a sticky
        session pinned to it still goes there).
    @ivar scaled: the weight times L{SCALE}, what weighted strategies add up.
    @ivar current: the current weight of smooth weighted round robin
        (L{lbproxy.balance.roundrobin}).
    @ivar factor: what score-driven weights multiply the weight by
        (L{lbproxy.balance.scores}); 1 without them.
    """

    __slots__ = ("target", "state", "weight", "scaled", "current", "factor")

    def __init__(self, target: TargetLike, state: Optional[TargetState] = None) -> None:
        """
        @param target: the configured target.
        @param state: its entry in a L{lbproxy.runtime.targets.TargetRegistry};
            a state of its own if L{None}.
        @raise ValueError: if its weight is not an integer of at least 0
            (0: the member takes no new clients, see L{Member.weight}).
        """
        weight = target.weight
        if isinstance(weight, bool) or not isinstance(weight, int) or weight < 0:
            raise ValueError(f"target weight must be an integer of at least 0, not {weight!r}")
        self.target = target
        self.state = state if state is not None else TargetState(target)
        self.weight = weight
        self.scaled = weight * SCALE
        self.current = 0
        self.factor = 1.0

    # The shared state, as attributes of the member (not for the hot path,
    # which reads member.state once).

    @property
    def up(self) -> bool:
        return self.state.up

    @up.setter
    def up(self, value: bool) -> None:
        self.state.up = value

    @property
    def inflight(self) -> int:
        return self.state.inflight

    @inflight.setter
    def inflight(self, value: int) -> None:
        self.state.inflight = value

    @property
    def health(self):
        return self.state.health

    @health.setter
    def health(self, value) -> None:
        self.state.health = value

    def startRamp(self, now: float, length: float) -> None:
        """
        Start the target's slow-start ramp (see L{TargetState.startRamp}).
        """
        self.state.startRamp(now, length)

    def rampedWeight(self, now: float) -> int:
        """
        The scaled weight at C{now} of a member whose target is in a
        slow-start ramp (C{state.rampStart} is set); the ramp ends once
        it is over.
        """
        state = self.state
        elapsed = now - state.rampStart
        if elapsed >= state.rampLength or elapsed < 0:
            state.rampStart = None
            return self.scaled
        return max(1, int(self.scaled * elapsed / state.rampLength))

    def eligible(self, exclude: Collection[Member] = (), limit: int = 0) -> bool:
        """
        Whether a strategy may pick this member: its target is up, it is
        not excluded, and it has fewer than C{limit} requests in flight (0:
        no limit).  (Round robin does this inline.)
        """
        state = self.state
        return (
            state.up
            and not (exclude and self in exclude)
            and not (limit and state.inflight >= limit)
        )

    def __repr__(self) -> str:
        return (
            f"<Member {getattr(self.target, 'address', self.target)}"
            f" weight={self.weight} up={self.state.up} inflight={self.state.inflight}>"
        )
