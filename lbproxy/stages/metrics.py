# -*- test-case-name: tests.test_metrics -*-
"""
Count every request, whatever answered it: integer increments on counter
objects this stage was built with (its route's, its pool's) and on the
registry entry of the target that answered, no lookup by anything the
client sent.
"""

from __future__ import annotations

from bisect import bisect_left

from lbproxy.observe.counters import BUCKETS, Metrics, method_class
from lbproxy.observe.outcome import outcome
from lbproxy.pipeline.chain import Stage
from lbproxy.pipeline.context import RequestContext

__all__ = ["MetricsStage"]


class MetricsStage(Stage):
    """
    The done part of every chain: one per chain, with its route's counters.
    """

    name = "metrics"

    def __init__(self, metrics: Metrics, route: str, pool: str, clock) -> None:
        """
        @param route: the route's label (see L{route_label}).
        @param pool: the pool's name, or C{"-"}.
        """
        self._route = metrics.route(route, pool)
        self._pool = metrics.pool(pool) if pool != "-" else None
        self._clock = clock

    def done(self, context: RequestContext) -> None:
        counters = self._route
        status = context.status
        statusClass = status // 100
        if statusClass > 5:
            statusClass = 0
        counters.requests[method_class(context.request.method) * 6 + statusClass] += 1
        # (Histogram.observe, inlined: this runs for every request.)
        duration = self._clock.seconds() - context.start
        histogram = counters.duration
        histogram.counts[bisect_left(BUCKETS, duration)] += 1
        histogram.total += duration
        counters.bytesOut += context.sent
        body = context.request.body
        if body is not None:
            counters.bytesIn += body.received
        entry = context.entry
        pool = self._pool
        upstream = context.upstreamTime
        if upstream is not None:
            bucket = bisect_left(BUCKETS, upstream)
        if pool is not None:
            if upstream is not None:
                histogram = pool.upstream
                histogram.counts[bucket] += 1
                histogram.total += upstream
            if context.tries > 1:
                pool.retries += context.tries - 1
        if context.local or (entry is None and status >= 400):
            # Rare: a local answer (404, 429, 403, 502, ...) by its reason.
            flag = outcome(context) or "local"
            local = counters.local
            local[flag] = local.get(flag, 0) + 1
        if entry is not None:
            target = entry.counters
            target.requests += 1
            if status >= 500:
                target.errors += 1
            if upstream is not None:
                histogram = target.latency
                histogram.counts[bucket] += 1
                histogram.total += upstream


def route_label(config, route) -> str:
    """
    The C{route} label of a route: its index among the configured routes,
    C{"default"} for C{server.default_pool}, C{"-"} outside any route (the
    entry chain's answers, requests no route matches).
    """
    if route is None:
        return "-"
    for index, configured in enumerate(config.routes):
        if configured is route:
            return str(index)
    return "default"


def metrics_stage(scope):
    """
    The metrics stage of the chain a L{lbproxy.pipeline.order.Scope}
    builds, or L{None} without metrics.
    """
    metrics = scope.services.metrics
    if metrics is None:
        return None
    pool = scope.pool.name if scope.pool is not None else "-"
    return MetricsStage(metrics, route_label(scope.config, scope.route), pool, scope.services.clock)
