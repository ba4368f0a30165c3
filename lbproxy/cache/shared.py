# -*- test-case-name: tests.test_cache_stage -*-
"""
The one shared cache of a proxy process: the store, the flights in
progress, the counters the metrics read, and the periodic collector on
the injected clock.  It outlives runtimes (a reload keeps what is stored).
"""

from __future__ import annotations

from typing import Dict

from twisted.internet.task import LoopingCall

from lbproxy.cache.coalesce import Coalescer
from lbproxy.cache.store import CacheStore

__all__ = ["COUNTERS", "SharedCache"]

#: The counters of L{SharedCache.counters}: the X-Cache labels, and
#: C{stored}, C{not_stored}, C{too_large}, C{invalidated}, C{collected},
#: C{purged}, C{fetches} (revalidations and background refreshes sent).
COUNTERS = (
    "HIT", "MISS", "STALE", "REVALIDATED", "BYPASS",
    "stored", "not_stored", "too_large", "invalidated", "collected", "purged", "fetches",
)

#: Seconds between two runs of the collector.
COLLECT_INTERVAL = 30.0


class SharedCache:
    """
    @ivar store: the L{CacheStore}.
    @ivar coalescer: the L{Coalescer}.
    @ivar clock: the injected L{IReactorTime}.
    @ivar counters: event counts since start, by name (L{COUNTERS}); the
        number of entries, bytes and evictions are L{stats}.
    """

    def __init__(self, clock, maxBytes: int, maxObject: int,
                 interval: float = COLLECT_INTERVAL) -> None:
        self.clock = clock
        self.store = CacheStore(maxBytes, maxObject)
        self.coalescer = Coalescer()
        self.counters: Dict[str, int] = dict.fromkeys(COUNTERS, 0)
        self._collector = LoopingCall(self.collect)
        self._collector.clock = clock
        self._interval = interval

    def start(self) -> None:
        """
        Start the periodic collector (first run after one interval).
        """
        if not self._collector.running:
            self._collector.start(self._interval, now=False)

    def stop(self) -> None:
        if self._collector.running:
            self._collector.stop()

    def count(self, name: str) -> None:
        self.counters[name] += 1

    def collect(self) -> int:
        """
        Remove expired entries now (the collector calls this).
        """
        removed = self.store.collect(self.clock.seconds())
        self.counters["collected"] += removed
        return removed

    def purge(self, prefix: bytes) -> int:
        """
        Remove every entry whose key (C{scheme://host/target}) starts with
        C{prefix}; for the admin API's C{POST /api/cache/purge}.

        @return: how many entries were removed.
        """
        removed = self.store.purge_prefix(prefix)
        self.counters["purged"] += removed
        return removed

    def stats(self) -> Dict[str, int]:
        """
        The counters, and the store's C{entries}, C{bytes}, C{max_bytes},
        C{evicted} and the flights in progress (C{inflight}, C{coalesced}).
        """
        stats = dict(self.counters)
        store = self.store
        stats.update(
            entries=len(store), bytes=store.bytes, max_bytes=store.maxBytes,
            evicted=store.evicted, inflight=len(self.coalescer),
            coalesced=self.coalescer.coalesced,
        )
        return stats
