# -*- test-case-name: tests.test_traffic -*-
"""
The factories of the balancing and traffic-shaping stages for
L{lbproxy.pipeline.order}: a route gets a sticky stage only when a pool it
forwards to has sticky sessions, a score feedback stage only when one has
score-driven weights, and a mirror stage only with C{mirror}; other routes
pay nothing for any of them.
"""

from __future__ import annotations

from typing import Optional

from lbproxy.stages.mirror import MirrorStage
from lbproxy.stages.scores import ScoreFeedback, score_feedback
from lbproxy.stages.sticky import StickyStage
from lbproxy.upstream.mirror import Mirror

__all__ = ["mirror_stage", "score_stage", "sticky_stage"]


def _route_pools(scope):
    route = scope.route
    if route.split is not None and scope.pools is not None:
        return [scope.pools[name] for name, _ in route.split.arms]
    return [scope.pool]


def sticky_stage(scope) -> Optional[StickyStage]:
    """
    A L{StickyStage} if a pool of the route has sticky sessions.
    """
    for pool in _route_pools(scope):
        if pool is not None and pool.sticky is not None:
            return StickyStage()
    return None


def score_stage(scope) -> Optional[ScoreFeedback]:
    """
    A L{ScoreFeedback} if a pool of the route has score-driven weights
    fed by its responses.
    """
    return score_feedback(_route_pools(scope))


def mirror_stage(scope) -> Optional[MirrorStage]:
    """
    A L{MirrorStage} for a route with C{mirror}, where requests are
    forwarded (a chain built without backend connections mirrors
    nothing).
    """
    config = scope.route.mirror
    services = scope.services
    if config is None or scope.pools is None or services.connections is None:
        return None
    mirror = Mirror(config, scope.pools[config.pool], services.connections, services.clock)
    return MirrorStage(mirror, config.percent)
