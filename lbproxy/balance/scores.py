# -*- test-case-name: tests.test_scores -*-
"""
Score-driven weights (a pool's C{weights = { from = ... }}): each member's
effective weight follows a score its target earns, so a busier or slower
backend gets less traffic without anyone editing the configuration.

Scores (higher is better) come from
  - C{"header"}: a number the backend puts on its responses (the route's
    L{lbproxy.stages.scores.ScoreFeedback} stage reads it into the target's
    C{score});
  - C{"probe"}: a number in the health probe's JSON body (the health
    checker keeps the body, C{probeBody});
  - C{"latency"}: the inverse of an exponentially weighted moving average
    of the target's upstream time (the same stage feeds C{latency}).

Every C{interval} seconds (on the pool's picks: L{ScoredStrategy} checks
the time it is given, so an idle pool costs nothing) each usable member's
score is divided by the mean score of the usable members that have one;
that ratio, clamped to [C{min}, C{max}], is the target factor; the
member's factor moves C{smoothing} of the way there, and its effective
weight is its configured weight times its factor.  A member without a
score yet keeps factor 1.  The factor is kept on the target's registry
entry too (per pool name), so the pool of a reloaded configuration
starts from it.  The clamp keeps every healthy target in the
rotation and no target above C{max} times its share.

Pure: no Twisted, no I/O, no clock (the time is passed in).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Collection, List, Optional

from zope.interface import implementer

from lbproxy.balance.members import SCALE
from lbproxy.balance.strategy import IStrategy

if TYPE_CHECKING:
    from lbproxy.balance.members import Member

__all__ = [
    "LATENCY_ALPHA", "ScoreWeighter", "ScoredStrategy", "observe_latency", "parse_score",
    "probe_score",
]

#: The weight of a new upstream time in a target's latency average.
LATENCY_ALPHA = 0.2

#: Lowest latency counted (seconds): a target answering in no time is not
#: infinitely better.
_LATENCY_FLOOR = 0.0005


def parse_score(value: Optional[bytes]) -> Optional[float]:
    """
    A score header's value as a finite number of at least 0, or L{None}.
    """
    if not value:
        return None
    try:
        score = float(value.strip())
    except ValueError:
        return None
    if not (0 <= score < float("inf")):
        return None
    return score


def probe_score(body: Optional[bytes], field: str) -> Optional[float]:
    """
    The number at C{field} (dots for nested objects: C{"load.score"}) of a
    probe's JSON body, or L{None}.
    """
    if not body:
        return None
    try:
        value = json.loads(body)
    except ValueError:
        return None
    for part in field.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return parse_score(repr(value).encode("ascii"))


def observe_latency(state, seconds: float) -> None:
    """
    Fold one upstream time into a target's latency average.
    """
    previous = state.latency
    state.latency = seconds if previous is None else previous + LATENCY_ALPHA * (seconds - previous)


class ScoreWeighter:
    """
    Recomputes a pool's effective weights from its members' scores.

    @ivar members: the pool's members (weight 0 ones stay at 0).
    @ivar nextAt: when the next recomputation is due, or L{None} before the
        first pick.
    """

    def __init__(self, members, config, pool: str = "") -> None:
        """
        @param config: the pool's L{lbproxy.config.balancing.ScoreWeights}.
        @param pool: the pool's name: each target keeps its factor in this
            pool (C{state.factors}), so a reload starts where the running
            configuration left off instead of at the configured weights.
        """
        self.members = tuple(m for m in members if m.weight)
        self.config = config
        self.nextAt: Optional[float] = None
        self._field = config.field
        self._pool = pool
        for member in self.members:
            factors = member.state.factors
            if factors is not None and pool in factors:
                self._set(member, factors[pool])

    def _set(self, member: Member, factor: float) -> None:
        member.factor = factor
        member.scaled = max(1, int(round(member.weight * SCALE * factor)))
        state = member.state
        if state.factors is None:
            state.factors = {}
        state.factors[self._pool] = factor

    def score(self, member: Member) -> Optional[float]:
        """
        The member's current score, or L{None} when it has none yet.
        """
        state = member.state
        source = self.config.source
        if source == "latency":
            latency = state.latency
            if latency is None:
                return None
            return 1.0 / max(latency, _LATENCY_FLOOR)
        if source == "probe":
            return probe_score(state.probeBody, self._field)
        return state.score

    def due(self, now: float) -> None:
        """
        Recompute if an interval has passed since the last time.
        """
        if self.nextAt is None:
            self.nextAt = now + self.config.interval
        elif now >= self.nextAt:
            self.nextAt = now + self.config.interval
            self.recompute()

    def recompute(self) -> None:
        config = self.config
        scores: List[tuple] = []
        for member in self.members:
            if member.state.up:
                score = self.score(member)
                if score is not None:
                    scores.append((member, score))
        if not scores:
            return
        mean = sum(score for _, score in scores) / len(scores)
        low, high, smoothing = config.min, config.max, config.smoothing
        for member, score in scores:
            wanted = score / mean if mean > 0 else 1.0
            wanted = min(high, max(low, wanted))
            self._set(member, member.factor + smoothing * (wanted - member.factor))


@implementer(IStrategy)
class ScoredStrategy:
    """
    A pool's strategy with score-driven weights: recomputes the weights
    when an interval is due, then lets the wrapped strategy choose (it
    reads the members' C{scaled} weights), and notes the choice on the
    request (C{context.member}) for the feedback stage.
    """

    def __init__(self, inner: IStrategy, weighter: ScoreWeighter) -> None:
        self.inner = inner
        self.weighter = weighter

    def pick(self, exclude: Collection[Member], now: float, context=None) -> Optional[Member]:
        weighter = self.weighter
        if weighter.nextAt is None or now >= weighter.nextAt:
            weighter.due(now)
        chosen = self.inner.pick(exclude, now, context)
        if context is not None and hasattr(context, "member"):
            context.member = chosen
        return chosen
