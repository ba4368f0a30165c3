# -*- test-case-name: tests.test_pipeline -*-
"""
The long-lived parts a runtime's chains are built with: they outlive any
one L{lbproxy.runtime.snapshot.Runtime} and are shared by all.
"""

from __future__ import annotations

__all__ = ["Services"]


class Services:
    """
    @ivar clock: an L{IReactorTime}.
    @ivar connections: the backend L{lbproxy.upstream.connections.ConnectionPool},
        or L{None} where nothing is forwarded (a unit test of the chains).
    @ivar health: the L{lbproxy.health.checker.HealthChecker} told of
        passive failures, or L{None}.
    @ivar accessLog: the L{lbproxy.observe.accesslog.AccessLog}, or L{None}.
    @ivar cache: the L{lbproxy.cache.shared.SharedCache}, made with the first
        chain of a route with a cache; L{None} until then.
    @ivar metrics: the L{lbproxy.observe.counters.Metrics}, or L{None}.
    @ivar redis: the Redis connections of shared rate limits, by URL
        (L{lbproxy.stages.sharedlimit}), made with the first chain that
        needs each.
    """

    __slots__ = ("clock", "connections", "health", "accessLog", "cache", "metrics", "redis")

    def __init__(
        self, clock, connections=None, health=None, accessLog=None, metrics=None
    ) -> None:
        self.clock = clock
        self.connections = connections
        self.health = health
        self.accessLog = accessLog
        self.cache = None
        self.metrics = metrics
        self.redis = {}
