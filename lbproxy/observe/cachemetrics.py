# -*- test-case-name: tests.test_metrics -*-
"""
The shared response cache's metrics, read at scrape time from its counters
(C{services.cache}: a C{SharedCache} with C{counters} and C{stats()}, made
with the first chain of a route with a cache).  Without a cache it yields
nothing; every label value is one of the cache's fixed counter names.
"""

from __future__ import annotations

from typing import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

__all__ = ["CacheCollector"]

#: X-Cache labels: how a request on a cached route was answered.
RESULTS = ("HIT", "MISS", "STALE", "REVALIDATED", "BYPASS")


class CacheCollector:
    def __init__(self, services) -> None:
        """
        @param services: the L{lbproxy.runtime.services.Services} whose
            C{cache} (if any) is read.
        """
        self._services = services

    def collect(self) -> Iterator:
        cache = getattr(self._services, "cache", None)
        if cache is None:
            return
        stats = cache.stats()
        results = CounterMetricFamily(
            "lbproxy_cache_responses", "Requests on cached routes by X-Cache result.",
            labels=["result"],
        )
        events = CounterMetricFamily(
            "lbproxy_cache_events",
            "Cache events: stored, not_stored, too_large, invalidated, collected, purged, "
            "fetches (revalidations and background refreshes sent).",
            labels=["event"],
        )
        for name, count in sorted(cache.counters.items()):
            if name in RESULTS:
                results.add_metric([name.lower()], count)
            else:
                events.add_metric([name], count)
        yield results
        yield events
        for name, kind, text in (
            ("entries", GaugeMetricFamily, "Responses stored."),
            ("bytes", GaugeMetricFamily, "Bytes stored."),
            ("max_bytes", GaugeMetricFamily, "The cache's size limit in bytes."),
            ("inflight", GaugeMetricFamily, "Fetches in progress that requests wait on."),
            ("evicted", CounterMetricFamily, "Entries evicted to stay within the limit."),
            ("coalesced", CounterMetricFamily, "Requests that waited on another's fetch."),
        ):
            if name in stats:
                family = kind("lbproxy_cache_" + name, text)
                family.add_metric([], stats[name])
                yield family
