# -*- test-case-name: tests.test_scores -*-
"""
The feedback of score-driven weights (L{lbproxy.balance.scores}), on a
route whose pool (or one of whose split pools) has C{weights}: a score
header on a backend's response becomes its target's score (and is not
passed on to the client: it is for the balancer), and with
C{from = "latency"} each exchange's upstream time goes into the target's
moving average.
"""

from __future__ import annotations

from typing import Optional, Sequence

from lbproxy.balance.scores import observe_latency, parse_score
from lbproxy.pipeline.chain import Stage
from lbproxy.pipeline.context import HeaderList, RequestContext

__all__ = ["ScoreFeedback", "score_feedback"]

_NO_ANSWER = frozenset([499, 502, 503, 504])


class ScoreFeedback(Stage):
    """
    @ivar headers: the lower-case score header names read, maybe none.
    @ivar latency: whether upstream times are averaged.
    """

    name = "score_feedback"

    def __init__(self, headers: Sequence[str], latency: bool) -> None:
        self.headers = frozenset(h.lower().encode("ascii") for h in headers)
        self.latency = latency
        if not self.headers:
            self.responseHead = None
        if not latency:
            self.done = None

    def responseHead(self, context: RequestContext, headers: HeaderList) -> HeaderList:
        member = context.member
        names = self.headers
        kept = []
        for name, value in headers:
            if name.lower() in names:
                score = parse_score(value)
                if member is not None and score is not None:
                    member.state.score = score
            else:
                kept.append((name, value))
        return kept

    def done(self, context: RequestContext) -> None:
        member = context.member
        seconds = context.upstreamTime
        # Only exchanges the backend answered say how fast it is (not a
        # 502, 503, 504, or a client that went away).
        if member is not None and seconds is not None and context.status not in _NO_ANSWER:
            observe_latency(member.state, seconds)


def score_feedback(pools) -> Optional[ScoreFeedback]:
    """
    The stage for a route forwarding to C{pools} (runtime pools), or
    L{None} when none has score-driven weights fed by requests.
    """
    headers = []
    latency = False
    for pool in pools:
        weighter = getattr(pool, "weighter", None)
        if weighter is None:
            continue
        config = weighter.config
        if config.source == "header":
            headers.append(config.name)
        elif config.source == "latency":
            latency = True
    if not headers and not latency:
        return None
    return ScoreFeedback(headers, latency)
