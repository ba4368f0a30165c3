# -*- test-case-name: tests.test_cache_stage -*-
"""
Revalidations and background refreshes: a conditional GET of the cache's
own (L{lbproxy.cache.fetch.Fetch}) leads a flight for the key, and its
outcome updates the store and lands (or hands over) the flight.
"""

from __future__ import annotations

from typing import Optional

from lbproxy.cache.answer import stored_headers, updated_head
from lbproxy.cache.directives import header_values, parse_cache_control
from lbproxy.cache.fetch import Fetch
from lbproxy.cache.freshness import (
    forbids_stale, freshness_lifetime, is_static, refusal, window, worthless,
)
from lbproxy.cache.key import vary_names
from lbproxy.cache.store import Entry

__all__ = ["Revalidator"]

#: Not sent on the cache's own fetches: the client's conditionals and
#: ranges (the cache asks with its own validators, for the whole body).
_NOT_FETCHED = frozenset(
    [b"if-none-match", b"if-modified-since", b"if-match", b"if-unmodified-since",
     b"if-range", b"range"]
)
#: Backend answers that count as errors for C{stale-if-error} (RFC 5861).
_ERRORS = frozenset([500, 502, 503, 504])


class Revalidator:
    """
    One route's revalidations.
    """

    def __init__(self, shared, pool, connections, responseTimeout: float, options,
                 compresses: bool) -> None:
        """
        @param shared: the L{lbproxy.cache.shared.SharedCache}.
        @param pool: the route's pool.
        @param connections: the backend L{ConnectionPool}.
        @param options: the route's L{lbproxy.config.cache.RouteCache}.
        @param compresses: whether the route compresses (then a changed
            response is fetched again through the chain, to be stored as the
            chain makes it).
        """
        self._shared = shared
        self._store = shared.store
        self._coalescer = shared.coalescer
        self._clock = shared.clock
        self._pool = pool
        self._connections = connections
        self._timeout = responseTimeout
        self._staticTtl = options.static_ttl
        self._swr = options.stale_while_revalidate
        self._sie = options.stale_if_error
        self._compresses = compresses

    def fetch(self, key: bytes, context, entry: Entry) -> Fetch:
        """
        Lead a new flight for C{key} with a conditional GET for C{entry},
        with the request's headers (its own conditionals left out).

        @return: the L{Fetch}, for the caller to start (once it waits).
        """
        headers = [(n, v) for n, v in context.headers or () if n.lower() not in _NOT_FETCHED]
        etag = entry.etag
        if etag is not None:
            # A compressed variant's ETag was weakened by lbproxy; the
            # backend may compare strings exactly, so the strong form goes too.
            if etag.startswith(b"W/"):
                etag += b", " + etag[2:]
            headers.append((b"If-None-Match", etag))
        if entry.lastModified is not None:
            headers.append((b"If-Modified-Since", entry.lastModified))
        flight = self._coalescer.lead(key, None)
        path = context.rawPath
        fetch = Fetch(
            self._pool, self._connections, self._clock, self._timeout, context.target, headers,
            self._store.maxObject, lambda f: self._fetched(f, flight, entry, path),
        )
        flight.leader = fetch
        return fetch

    def _fetched(self, fetch: Fetch, flight, entry: Entry, path: bytes) -> None:
        store = self._store
        if fetch.error is None and fetch.status == 304 and store.holds(entry):
            oldSize = entry.size
            entry.setHeaders(updated_head(entry.headers, fetch.headers))
            entry.requestTime = fetch.requestTime
            entry.responseTime = fetch.responseTime
            self.describe(entry, path)
            store.resized(entry, oldSize)
            flight.outcome = "REVALIDATED"
            flight.entry = entry
            self._coalescer.landed(flight)
            return
        if fetch.error is None and fetch.status not in _ERRORS and fetch.status != 304:
            store.discard(entry)
            stored = None if self._compresses else self._storeFetched(fetch, entry, path)
            if stored is not None:
                flight.outcome = "MISS"
                flight.entry = stored
                self._coalescer.landed(flight)
                return
            # A waiter fetches it again through the chain, to be stored as
            # the chain makes it (compressed).
            self._coalescer.failed(flight)
            return
        now = self._clock.seconds()
        if (store.holds(entry) and not forbids_stale(entry.cc)
                and entry.age(now) - entry.lifetime <= entry.sie):
            flight.outcome = "STALE"
            flight.entry = entry
            self._coalescer.landed(flight)
            return
        self._coalescer.failed(flight)

    def describe(self, entry: Entry, path: bytes) -> None:
        """
        Read an entry's directives, lifetime and stale windows from its head.
        """
        cc = parse_cache_control(header_values(entry.headers, b"cache-control"))
        entry.cc = cc
        entry.lifetime, _ = freshness_lifetime(
            entry.status, cc, entry.headers, entry.responseTime, self._staticTtl,
            is_static(path, entry.headers),
        )
        entry.swr = window(cc, "stale-while-revalidate", self._swr)
        entry.sie = window(cc, "stale-if-error", self._sie)

    def _storeFetched(self, fetch: Fetch, old: Entry, path: bytes) -> Optional[Entry]:
        """
        Store a new response a revalidation got, if it may be.
        """
        cc = parse_cache_control(header_values(fetch.headers, b"cache-control"))
        if refusal(b"GET", fetch.status, {}, False, cc, fetch.headers) is not None:
            return None
        names = vary_names(fetch.headers)
        if names != old.varyNames:
            return None
        entry = Entry(
            old.key, names, old.variant, fetch.status, fetch.reason,
            stored_headers(fetch.headers), fetch.body, fetch.requestTime, fetch.responseTime,
            0.0, cc,
        )
        self.describe(entry, path)
        if worthless(entry.lifetime, entry.headers):
            return None
        stored = self._store.put(entry)
        self._shared.count("stored" if stored else "too_large")
        return entry if stored else None
