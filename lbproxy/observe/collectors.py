# -*- test-case-name: tests.test_metrics -*-
"""
Prometheus collectors that read lbproxy's counters when C{/metrics} is
scraped (nothing is computed on the request path).

Every label value is a name from the configuration: a route's index, a
pool's name, a target's address, a listener's description, or one of a
fixed set of reasons and states.  docs/observability.md lists every
metric.

To add metrics of a feature: keep its counters as plain integers on an
object the request path already holds, write a collector (an object with
C{collect()} yielding metric families from
C{prometheus_client.core}) and hand it to
L{lbproxy.observe.counters.Metrics.addCollector}; L{metrics_registry}
registers it with the others.
"""

from __future__ import annotations

from typing import Callable, Iterable, Iterator, Tuple

from prometheus_client.core import (
    CollectorRegistry,
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)

from lbproxy import __version__
from lbproxy.admin.status import target_status
from lbproxy.observe.counters import METHODS, STATUS_CLASSES, Histogram, Metrics
from lbproxy.observe.states import STATES, target_state

__all__ = ["ProxyCollector", "metrics_registry"]

#: C{(listener, protocol, open connections)} of every listener.
ConnectionCounts = Callable[[], Iterable[Tuple[str, str, int]]]


def _histogram(family: HistogramMetricFamily, labels, histogram: Histogram) -> None:
    family.add_metric(labels, histogram.cumulative(), histogram.total)


class ProxyCollector:
    """
    The metrics of one proxy process.
    """

    def __init__(
        self,
        metrics: Metrics,
        registry,
        runtime: Callable[[], object],
        clock,
        connections: ConnectionCounts = lambda: (),
    ) -> None:
        """
        @param metrics: the process's L{Metrics}.
        @param registry: the L{lbproxy.runtime.targets.TargetRegistry}.
        @param runtime: returns the runtime in service (its pools'
            weights, its configuration).
        @param clock: for target states (slow start, ejections).
        @param connections: the open client connections per listener.
        """
        self._metrics = metrics
        self._registry = registry
        self._runtime = runtime
        self._clock = clock
        self._connections = connections

    def collect(self) -> Iterator:
        yield from self._requests()
        yield from self._targets()
        yield from self._process()

    def _requests(self) -> Iterator:
        metrics = self._metrics
        requests = CounterMetricFamily(
            "lbproxy_requests", "Requests by route, pool, method and status class.",
            labels=["route", "pool", "method", "status_class"],
        )
        duration = HistogramMetricFamily(
            "lbproxy_request_duration_seconds",
            "Time from a request's dispatch to its end, by route.", labels=["route", "pool"],
        )
        bytesIn = CounterMetricFamily(
            "lbproxy_request_body_bytes", "Request body bytes received.", labels=["route", "pool"]
        )
        bytesOut = CounterMetricFamily(
            "lbproxy_response_body_bytes", "Response body bytes sent.", labels=["route", "pool"]
        )
        local = CounterMetricFamily(
            "lbproxy_local_responses",
            "Answers lbproxy gave itself (rate limited, forbidden, no route, no target, "
            "upstream failed...), by reason.",
            labels=["route", "pool", "reason"],
        )
        for counters in list(metrics.routes.values()):
            labels = [counters.route, counters.pool]
            for index, count in enumerate(counters.requests):
                if count:
                    method, status = divmod(index, len(STATUS_CLASSES))
                    requests.add_metric(labels + [METHODS[method], STATUS_CLASSES[status]], count)
            _histogram(duration, labels, counters.duration)
            bytesIn.add_metric(labels, counters.bytesIn)
            bytesOut.add_metric(labels, counters.bytesOut)
            for reason, count in sorted(counters.local.items()):
                local.add_metric(labels + [reason], count)
        upstream = HistogramMetricFamily(
            "lbproxy_upstream_duration_seconds",
            "Time from picking a target to the end of its response, by pool.", labels=["pool"],
        )
        retries = CounterMetricFamily(
            "lbproxy_retries", "Attempts after a request's first, by pool.", labels=["pool"]
        )
        for pool in list(metrics.pools.values()):
            _histogram(upstream, [pool.name], pool.upstream)
            retries.add_metric([pool.name], pool.retries)
        yield from (requests, duration, bytesIn, bytesOut, local, upstream, retries)

    def _targets(self) -> Iterator:
        now = self._clock.seconds()
        labels = ["pool", "target"]
        inflight = GaugeMetricFamily(
            "lbproxy_target_inflight", "Requests in progress on a target.", labels=labels
        )
        state = GaugeMetricFamily(
            "lbproxy_target_state", "1 for a target's current state, 0 for the others.",
            labels=labels + ["state"],
        )
        requests = CounterMetricFamily(
            "lbproxy_target_requests", "Requests that ended on a target.", labels=labels
        )
        errors = CounterMetricFamily(
            "lbproxy_target_errors", "Requests that ended on a target with a 5xx.", labels=labels
        )
        changes = CounterMetricFamily(
            "lbproxy_target_state_changes", "State changes of a target, by new state and cause.",
            labels=labels + ["state", "cause"],
        )
        latency = HistogramMetricFamily(
            "lbproxy_target_upstream_duration_seconds", "Upstream times of a target.",
            labels=labels,
        )
        probes = HistogramMetricFamily(
            "lbproxy_health_probe_duration_seconds", "Active health probe times of a target.",
            labels=labels,
        )
        results = CounterMetricFamily(
            "lbproxy_health_probes", "Active health probes by result.",
            labels=labels + ["result"],
        )
        ejections = CounterMetricFamily(
            "lbproxy_passive_ejections", "Passive ejections (connection failures).",
            labels=labels,
        )
        for entry in self._registry.entries():
            # An entry shared by pools checked alike is one series, its
            # pools joined.
            names = [",".join(entry.pools), entry.target.address]
            counters = entry.counters
            inflight.add_metric(names, entry.inflight)
            current = target_state(entry, now)
            for name in STATES:
                state.add_metric(names + [name], 1 if name == current else 0)
            requests.add_metric(names, counters.requests)
            errors.add_metric(names, counters.errors)
            for (new, cause), count in sorted(counters.changes.items()):
                changes.add_metric(names + [new, cause], count)
            _histogram(latency, names, counters.latency)
            health = entry.health
            if health is not None and health.probed:
                _histogram(probes, names, counters.probes)
                results.add_metric(names + ["success"], health.probesOk)
                results.add_metric(names + ["failure"], health.probesFailed)
            if health is not None:
                ejections.add_metric(names, health.totalEjections)
        weight = GaugeMetricFamily(
            "lbproxy_target_weight", "A target's configured weight in a pool.", labels=labels
        )
        effective = GaugeMetricFamily(
            "lbproxy_target_effective_weight",
            "A target's weight now: 0 when it is not up, less during slow start.",
            labels=labels,
        )
        runtime = self._runtime()
        for pool in runtime.pools.values():
            for member in pool.members:
                names = [pool.name, member.target.address]
                weight.add_metric(names, member.weight)
                effective.add_metric(names, target_status(member, now)["effective_weight"])
        yield from (
            inflight, state, weight, effective, requests, errors, changes, latency, probes,
            results, ejections,
        )

    def _process(self) -> Iterator:
        metrics = self._metrics
        info = GaugeMetricFamily("lbproxy_info", "lbproxy's version.", labels=["version"])
        info.add_metric([__version__], 1)
        connections = GaugeMetricFamily(
            "lbproxy_open_connections", "Open client connections by listener and protocol.",
            labels=["listener", "protocol"],
        )
        for listener, protocol, count in self._connections():
            connections.add_metric([listener, protocol], count)
        rejected = CounterMetricFamily(
            "lbproxy_rejected_connections",
            "Connections refused before a request existed, by reason.", labels=["reason"],
        )
        for reason, count in sorted(metrics.rejections.items()):
            rejected.add_metric([reason], count)
        reloads = CounterMetricFamily(
            "lbproxy_reloads", "Reloads by what was reloaded and outcome.",
            labels=["what", "outcome"],
        )
        for (what, outcome), count in sorted(metrics.reloads.items()):
            reloads.add_metric([what, outcome], count)
        handshakes = CounterMetricFamily(
            "lbproxy_tls_handshakes", "Completed TLS handshakes by protocol version.",
            labels=["version"],
        )
        for version, count in sorted(metrics.tlsHandshakes.items()):
            handshakes.add_metric([version], count)
        failures = CounterMetricFamily(
            "lbproxy_tls_handshake_failures", "Failed TLS handshakes."
        )
        failures.add_metric([], metrics.tlsFailures)
        yield from (info, connections, rejected, reloads, handshakes, failures)


def metrics_registry(collector: ProxyCollector, metrics: Metrics) -> CollectorRegistry:
    """
    A Prometheus registry with lbproxy's collector and every collector
    added to C{metrics} (L{Metrics.addCollector}).
    """
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    for extra in metrics.collectors:
        registry.register(extra)
    return registry
