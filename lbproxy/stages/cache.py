# -*- test-case-name: tests.test_cache_stage -*-
"""
The shared cache in a route's chain (the rules are L{lbproxy.cache}).

Its request part looks the request up: a usable stored response is
answered at once (C{HIT}, C{STALE}); a miss leads a flight (forwarded, its
body stored while it streams to the client, through the body part) or
waits for the flight in progress for its key; a stale entry is
revalidated by a L{Fetch} of the cache's own, which the request (and any
other for the key) waits for.  Its done part ends a leader's flight that
stored nothing (one waiter takes over) and invalidates after unsafe
methods.
"""

from __future__ import annotations

from typing import List, Optional
from urllib.parse import urljoin, urlsplit

from lbproxy.cache.answer import answer, stored_headers
from lbproxy.cache.directives import header_values, parse_cache_control
from lbproxy.cache.freshness import (
    BACKGROUND, FRESH, STALE, freshness_lifetime, is_static, judge, refusal, window, worthless,
)
from lbproxy.cache.key import primary_key, variant, vary_names
from lbproxy.cache.revalidate import Revalidator
from lbproxy.cache.shared import SharedCache
from lbproxy.cache.store import Entry
from lbproxy.pipeline.chain import HELD, Stage
from lbproxy.pipeline.context import LocalReply, RequestContext

__all__ = ["CacheStage", "build_cache_stage"]

_READ = frozenset([b"GET", b"HEAD"])
_UNSAFE = frozenset([b"POST", b"PUT", b"DELETE", b"PATCH"])
_ONLY_IF_CACHED = LocalReply(504, b"Gateway Timeout")


class CacheState:
    """
    One request's dealings with the cache; also a waiter of a
    L{lbproxy.cache.coalesce.Flight}.
    """

    __slots__ = (
        "stage", "context", "key", "requestCC", "requestTime", "flight", "waiting",
        "watching", "candidate", "storing", "parts", "size", "status", "reason",
        "headers", "lifetime", "cc", "responseTime", "invalidate", "why",
    )

    def __init__(self, stage: "CacheStage", context: RequestContext, key: bytes,
                 requestCC, now: float) -> None:
        self.stage = stage
        self.context = context
        self.key = key
        self.requestCC = requestCC
        self.requestTime = now
        self.flight = None
        self.waiting = False
        self.watching = False
        self.candidate = False
        self.storing = False
        self.parts: List[bytes] = []
        self.size = 0
        self.invalidate = False
        self.why: Optional[str] = None

    # The waiter's part (see lbproxy.cache.coalesce) -------------------------

    def landed(self) -> None:
        flight = self.flight
        self.waiting = False
        self.flight = None
        self.stage._continue(self, self.stage._lookup(self, flight))

    def released(self) -> None:
        self.waiting = False
        self.flight = None
        self.stage._continue(self, self.stage._forward(self))

    def takeOver(self, flight) -> None:
        self.waiting = False
        self.flight = flight
        self.stage._continue(self, self.stage._forward(self))

    def clientGone(self, reason) -> None:
        if self.waiting:
            self.waiting = False
            flight, self.flight = self.flight, None
            self.stage._coalescer.leave(flight, self)
            context = self.context
            context.status = getattr(context.request, "rejected", None) or 499
            context.chain.finish(context)
        return None


class CacheStage(Stage):
    """
    @ivar shared: the process's L{SharedCache}.
    """

    name = "cache"
    keepsLength = True  # its body part is a tee

    def __init__(self, shared: SharedCache, options, pool, connections,
                 responseTimeout: float, compresses: bool) -> None:
        """
        @param options: the route's L{lbproxy.config.cache.RouteCache}.
        @param pool: the route's pool (for revalidations).
        @param connections: the backend L{ConnectionPool}.
        @param compresses: whether the route compresses (then a changed
            response found by a revalidation is fetched again through the
            chain, to be stored compressed).
        """
        self.shared = shared
        self._store = shared.store
        self._coalescer = shared.coalescer
        self._clock = shared.clock
        self._staticTtl = options.static_ttl
        self._swr = options.stale_while_revalidate
        self._sie = options.stale_if_error
        self._pool = pool
        self._hooks: Optional[tuple] = None
        self._revalidator = Revalidator(
            shared, pool, connections, responseTimeout, options, compresses
        )

    # Request ----------------------------------------------------------------

    def request(self, context: RequestContext) -> Optional[LocalReply]:
        request = context.request
        method = request.method
        now = self._clock.seconds()
        if method not in _READ or context.upgrade is not None:
            # (An upgrade, a WebSocket, is a GET that stores nothing.)
            context.cacheStatus = "BYPASS"
            self.shared.count("BYPASS")
            if method in _UNSAFE:
                state = CacheState(self, context, self._key(context, context.proto), {}, now)
                state.invalidate = True
                context.cache = state
            return None
        requestCC = parse_cache_control(request.requestHeaders.getRawHeaders(b"cache-control") or ())
        state = CacheState(self, context, self._key(context, context.proto), requestCC, now)
        context.cache = state
        if "no-store" in requestCC:
            context.cacheStatus = "BYPASS"
            self.shared.count("BYPASS")
            return None
        return self._lookup(state)

    def _key(self, context: RequestContext, proto: Optional[bytes]) -> bytes:
        target = context.rawPath
        if context.query is not None:
            target += b"?" + context.query
        return primary_key(proto or b"http", context.hostHeader or b"", target)

    def _lookup(self, state: CacheState, landed=None) -> Optional[LocalReply]:
        """
        Answer from the store, wait, or go on; C{landed}: the flight this
        request waited for, whose stored response answers it as it is.
        """
        request = state.context.request
        entry = self._store.lookup(state.key, request.requestHeaders.getRawHeaders)
        onlyCached = "only-if-cached" in state.requestCC
        if entry is not None:
            age = entry.age(self._clock.seconds())
            if landed is not None and landed.entry is entry:
                return self._serve(state, entry, age, landed.outcome or "HIT")
            verdict = judge(age, entry.lifetime, entry.cc, state.requestCC, entry.swr)
            if verdict == FRESH:
                return self._serve(state, entry, age, "HIT")
            if verdict == STALE:
                return self._serve(state, entry, age, "STALE")
            if verdict == BACKGROUND:
                if self._coalescer.find(state.key) is None:
                    self._refresh(state, entry).start()
                return self._serve(state, entry, age, "STALE")
            if onlyCached:
                return self._gatewayTimeout(state)
            flight = self._coalescer.find(state.key)
            if flight is not None:
                return self._wait(state, flight)
            fetch = self._refresh(state, entry)
            reply = self._wait(state, self._coalescer.find(state.key), coalesced=False)
            fetch.start()
            return reply
        if onlyCached:
            return self._gatewayTimeout(state)
        headers = request.requestHeaders
        if (request.method != b"GET" or headers.hasHeader(b"if-none-match")
                or headers.hasHeader(b"if-modified-since") or headers.hasHeader(b"range")):
            # Forwarded alone: a HEAD stores nothing, and the backend may
            # answer a conditional with a 304, a range with a 206, neither
            # for storing nor for the others waiting.
            return self._forward(state, candidate=False)
        flight = self._coalescer.lead(state.key, state)
        if flight is not None:
            state.flight = flight
            return self._forward(state)
        return self._wait(state, self._coalescer.find(state.key))

    def _forward(self, state: CacheState, candidate: bool = True) -> None:
        context = state.context
        state.candidate = candidate and context.request.method == b"GET"
        context.cacheStatus = "MISS"
        self.shared.count("MISS")
        return None

    def _gatewayTimeout(self, state: CacheState) -> LocalReply:
        state.context.cacheStatus = "MISS"
        self.shared.count("MISS")
        return _ONLY_IF_CACHED

    def _wait(self, state: CacheState, flight, coalesced: bool = True) -> LocalReply:
        self._coalescer.wait(flight, state, coalesced)
        # Logged so if its client leaves while it waits (counted once
        # answered).
        state.context.cacheStatus = "MISS"
        state.flight = flight
        state.waiting = True
        if not state.watching:
            state.watching = True
            state.context.request.notifyFinish().addErrback(state.clientGone)
        return HELD

    def _continue(self, state: CacheState, result: Optional[LocalReply]) -> None:
        """
        Carry out a lookup's result for a request that was held.
        """
        context = state.context
        if result is None:
            context.chain.resume(context, self)
        elif result is not HELD:
            context.chain.reply(context, result)

    def _serve(self, state: CacheState, entry: Entry, age: float, label: str) -> LocalReply:
        context = state.context
        hooks = self._hooks
        if hooks is None:
            hooks = self._hooks = context.chain.hooksBefore(self)
        context.cacheStatus = label
        context.pool = self._pool.name
        self.shared.count(label)
        request = context.request
        context.sent = answer(request, entry, age, label.encode("ascii"), hooks, context)
        context.status = request.code
        context.chain.finish(context)
        return HELD

    def _refresh(self, state: CacheState, entry: Entry):
        """
        A flight led by a conditional GET of the cache's own for C{entry};
        returns the L{Fetch}, for the caller to start.
        """
        self.shared.count("fetches")
        return self._revalidator.fetch(state.key, state.context, entry)

    # Response ---------------------------------------------------------------

    def responseHead(self, context: RequestContext, headers):
        state = context.cache
        if state is not None and state.candidate and not context.status:
            # A backend's response to a request that may store it.
            self._consider(state, headers)
        label = context.cacheStatus
        if label is not None:
            headers.append((b"X-Cache", label.encode("ascii")))
        return headers

    def _consider(self, state: CacheState, headers) -> None:
        context = state.context
        request = context.request
        status = request.code
        now = self._clock.seconds()
        cc = parse_cache_control(header_values(headers, b"cache-control"))
        authorized = request.requestHeaders.hasHeader(b"authorization")
        why = refusal(b"GET", status, state.requestCC, authorized, cc, headers)
        lifetime = 0.0
        if why is None:
            lifetime, _ = freshness_lifetime(
                status, cc, headers, now, self._staticTtl, is_static(context.rawPath, headers)
            )
            if worthless(lifetime, headers):
                why = "no freshness information and no validator"
        if why is not None:
            state.why = why
            self.shared.count("not_stored")
            self._release(state)
            return
        state.storing = True
        state.status = status
        state.reason = request.code_message
        state.headers = stored_headers(headers)
        state.lifetime = lifetime
        state.cc = cc
        state.responseTime = now

    def _release(self, state: CacheState) -> None:
        flight = state.flight
        if flight is not None and flight.leader is state:
            state.flight = None
            self._coalescer.release(flight)

    def responseBody(self, context: RequestContext, data: bytes, last: bool) -> bytes:
        state = context.cache
        if state is None or not state.storing:
            return data
        if data:
            state.parts.append(data)
            state.size += len(data)
            if state.size > self._store.maxObject:
                # Too large to keep: it streams on, nothing is stored.
                state.storing = False
                state.parts = []
                state.why = "larger than max_object"
                self.shared.count("too_large")
                self._release(state)
                return data
        if last:
            self._commit(state)
        return data

    def _commit(self, state: CacheState) -> None:
        state.storing = False
        context = state.context
        names = vary_names(state.headers)
        entry = Entry(
            state.key, names, variant(names, context.request.requestHeaders.getRawHeaders),
            state.status, state.reason, state.headers, b"".join(state.parts),
            state.requestTime, state.responseTime, state.lifetime, state.cc,
            window(state.cc, "stale-while-revalidate", self._swr),
            window(state.cc, "stale-if-error", self._sie),
        )
        state.parts = []
        stored = self._store.put(entry)
        self.shared.count("stored" if stored else "too_large")
        flight = state.flight
        if flight is not None and flight.leader is state:
            state.flight = None
            if stored:
                flight.entry = entry
                self._coalescer.landed(flight)
            else:
                self._coalescer.release(flight)

    def done(self, context: RequestContext) -> None:
        state = context.cache
        if state is None:
            return
        if state.invalidate:
            if 200 <= context.status < 400:
                self._invalidate(context, state)
            return
        flight = state.flight
        if flight is not None and flight.leader is state and flight.open:
            # The leader's exchange ended without storing: a failure (or
            # its client went away); the oldest waiter fetches instead.
            state.flight = None
            self._coalescer.failed(flight)

    def _invalidate(self, context: RequestContext, state: CacheState) -> None:
        """
        RFC 9111 section 4.4: the target, and the same-host URIs in
        C{Location} and C{Content-Location}, for both schemes.
        """
        host = (context.hostHeader or b"").lower()
        targets = [state.key.split(b"://", 1)[1][len(host):]]
        base = b"http://" + host + context.rawPath
        out = context.request.responseHeaders
        for name in (b"location", b"content-location"):
            for value in out.getRawHeaders(name) or ():
                parts = urlsplit(urljoin(base, value.strip()))
                if parts.netloc.lower() != host:
                    continue
                targets.append((parts.path or b"/") + (b"?" + parts.query if parts.query else b""))
        removed = 0
        for target in targets:
            for scheme in (b"http", b"https"):
                removed += self._store.remove(primary_key(scheme, host, target))
        self.shared.counters["invalidated"] += removed


def build_cache_stage(scope) -> Optional[CacheStage]:
    """
    The cache stage of a route with C{cache} set (the process's
    L{SharedCache} is made with the first, from C{[cache]}).
    """
    route = scope.route
    options = getattr(route, "cache", None)
    if options is None:
        return None
    services = scope.services
    shared = services.cache
    if shared is None:
        settings = scope.config.cache
        shared = services.cache = SharedCache(
            services.clock, settings.max_bytes, settings.max_object
        )
        shared.start()
    return CacheStage(
        shared, options, scope.pool, services.connections, scope.server.response_timeout,
        getattr(route, "compress", None) is not None,
    )
