# -*- test-case-name: tests.test_metrics -*-
"""
lbproxy's own counters: plain integers and bucket lists that the request
path increments on objects it already holds, read by the Prometheus
collectors (L{lbproxy.observe.collectors}) and the status page only when
someone looks.

Every label these counters end up with comes from the configuration: a
route's index, a pool's name, a target's address, a fixed reason name.
Nothing a client sends (Host, path, method beyond the fixed classes)
becomes a key, so a client cannot grow the number of series.

Pure: no reactor, no I/O, no imports from the rest of lbproxy.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Dict, List, Optional, Tuple

__all__ = [
    "BUCKETS",
    "METHODS",
    "Histogram",
    "Metrics",
    "PoolCounters",
    "RouteCounters",
    "STATUS_CLASSES",
    "TargetCounters",
    "method_class",
]

#: Latency bucket bounds in seconds (Prometheus C{le}); the last, +Inf, is
#: implicit.
BUCKETS: Tuple[float, ...] = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)

#: The method classes requests are counted by; anything else is C{OTHER}.
METHODS: Tuple[str, ...] = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "OTHER")

#: Status classes by index (C{status // 100}); 0 is "no status".
STATUS_CLASSES: Tuple[str, ...] = ("none", "1xx", "2xx", "3xx", "4xx", "5xx")


def method_class(method: bytes) -> int:
    """
    The index in L{METHODS} of a request method: a few comparisons, no
    lookup keyed by what the client sent.
    """
    if method == b"GET":
        return 0
    if method == b"HEAD":
        return 1
    if method == b"POST":
        return 2
    if method == b"PUT":
        return 3
    if method == b"DELETE":
        return 4
    if method == b"PATCH":
        return 5
    if method == b"OPTIONS":
        return 6
    return 7


class Histogram:
    """
    Counts of observations per bucket of L{BUCKETS} (the last one for
    anything larger), and their sum.

    @ivar counts: one count per bucket, not cumulative.
    @ivar total: the sum of the observed values.
    """

    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts: List[int] = [0] * (len(BUCKETS) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(BUCKETS, value)] += 1
        self.total += value

    @property
    def count(self) -> int:
        return sum(self.counts)

    def cumulative(self) -> List[Tuple[str, int]]:
        """
        C{(le, cumulative count)} pairs, +Inf last, as Prometheus wants.
        """
        out = []
        running = 0
        for bound, count in zip(BUCKETS + (float("inf"),), self.counts):
            running += count
            out.append(("+Inf" if bound == float("inf") else repr(bound), running))
        return out


def quantile(counts: List[int], q: float) -> Optional[float]:
    """
    The C{q} quantile of bucketed observations (by linear interpolation in
    the bucket that holds it, as Prometheus's C{histogram_quantile}), or
    L{None} without observations.  Past the last bound: the last bound.
    """
    total = sum(counts)
    if not total:
        return None
    rank = q * total
    running = 0
    lower = 0.0
    for index, count in enumerate(counts):
        if index == len(BUCKETS):
            return BUCKETS[-1]
        upper = BUCKETS[index]
        if count and running + count >= rank:
            return lower + (upper - lower) * (rank - running) / count
        running += count
        lower = upper
    return BUCKETS[-1]


class RouteCounters:
    """
    Requests of one route (its chain's metrics stage holds this object).

    @ivar route: the route's label (its index in the configuration,
        C{"default"} for C{server.default_pool}, C{"-"} for requests no
        route took).
    @ivar pool: the pool it forwards to (C{"-"} for none).
    @ivar requests: counts by C{method class * 6 + status class}.
    @ivar duration: the L{Histogram} of whole request times.
    @ivar bytesIn: request body bytes received.
    @ivar bytesOut: response body bytes sent.
    @ivar local: lbproxy's own answers by reason (see
        L{lbproxy.observe.outcome}): rate limited, forbidden, no target...
    """

    __slots__ = ("route", "pool", "requests", "duration", "bytesIn", "bytesOut", "local")

    def __init__(self, route: str, pool: str) -> None:
        self.route = route
        self.pool = pool
        self.requests: List[int] = [0] * (len(METHODS) * len(STATUS_CLASSES))
        self.duration = Histogram()
        self.bytesIn = 0
        self.bytesOut = 0
        self.local: Dict[str, int] = {}


class PoolCounters:
    """
    What happened in one pool, beyond its routes' requests.

    @ivar upstream: the L{Histogram} of upstream times (target picked to
        response complete).
    @ivar retries: attempts after the first.
    """

    __slots__ = ("name", "upstream", "retries")

    def __init__(self, name: str) -> None:
        self.name = name
        self.upstream = Histogram()
        self.retries = 0


class TargetCounters:
    """
    One target's requests, kept on its registry entry
    (L{lbproxy.runtime.targets.TargetState.counters}).

    @ivar requests: responses from it or attempts to it that ended a request.
    @ivar errors: those that ended in a 5xx.
    @ivar latency: the L{Histogram} of its upstream times.
    @ivar probes: the L{Histogram} of its health probe times.
    @ivar changes: state changes by C{(new state, cause)}.
    """

    __slots__ = ("requests", "errors", "latency", "probes", "changes")

    def __init__(self) -> None:
        self.requests = 0
        self.errors = 0
        self.latency = Histogram()
        self.probes = Histogram()
        self.changes: Dict[Tuple[str, str], int] = {}

    def changed(self, state: str, reason: str) -> None:
        key = (state, change_cause(reason))
        self.changes[key] = self.changes.get(key, 0) + 1


def change_cause(reason: str) -> str:
    """
    A short, bounded name for the free-text reason of a state change.
    """
    if reason.startswith("ejected"):
        return "passive_ejection"
    if "failed check" in reason or "first check failed" in reason:
        return "probe_failed"
    if "successful check" in reason:
        return "probe_passed"
    if "ejection" in reason:
        return "ejection_over"
    if "drain" in reason or "operator" in reason:
        return "operator"
    return "other"


class Metrics:
    """
    Every counter of one process, made once (in
    L{lbproxy.app.wiring.ProxyCore}) and kept across reloads, so counters
    only ever go up.

    Route and pool counters are found by name only while a runtime is
    built; requests then use the objects they were built with.

    @ivar rejections: connections refused before a request existed, by
        reason (C{bad_request}, C{uri_too_long}, C{headers_too_large},
        C{timeout}, C{connection_limit}).
    @ivar reloads: reloads by C{(what, outcome)}.
    @ivar tlsHandshakes: completed TLS handshakes by protocol version.
    @ivar tlsFailures: failed TLS handshakes.
    @ivar collectors: more Prometheus collectors to register (a feature
        with counters of its own adds its collector here).
    """

    def __init__(self) -> None:
        self.routes: Dict[Tuple[str, str], RouteCounters] = {}
        self.pools: Dict[str, PoolCounters] = {}
        self.rejections: Dict[str, int] = {}
        self.reloads: Dict[Tuple[str, str], int] = {}
        self.tlsHandshakes: Dict[str, int] = {}
        self.tlsFailures = 0
        self.collectors: List[object] = []

    def route(self, route: str, pool: str) -> RouteCounters:
        """
        The counters of a route (made on first use, when a chain is built).
        """
        counters = self.routes.get((route, pool))
        if counters is None:
            counters = self.routes[(route, pool)] = RouteCounters(route, pool)
        return counters

    def pool(self, name: str) -> PoolCounters:
        """
        The counters of a pool (made on first use, when a chain is built).
        """
        counters = self.pools.get(name)
        if counters is None:
            counters = self.pools[name] = PoolCounters(name)
        return counters

    def rejected(self, reason: str) -> None:
        """
        A connection was refused before a request existed.
        """
        self.rejections[reason] = self.rejections.get(reason, 0) + 1

    def reloaded(self, what: str, outcome: str) -> None:
        """
        A reload of C{what} (C{"configuration"}, C{"certificates"}) ended
        with C{outcome} (C{"success"}, C{"failure"}).
        """
        key = (what, outcome)
        self.reloads[key] = self.reloads.get(key, 0) + 1

    def handshake(self, version: Optional[str]) -> None:
        """
        A TLS handshake on an HTTPS listener completed with protocol
        C{version} (C{"TLSv1.3"}), or failed (L{None}).
        """
        if version is None:
            self.tlsFailures += 1
        else:
            self.tlsHandshakes[version] = self.tlsHandshakes.get(version, 0) + 1

    def addCollector(self, collector) -> None:
        """
        Serve one more Prometheus collector (an object with C{collect()}
        yielding metric families) on C{/metrics}.
        """
        self.collectors.append(collector)
