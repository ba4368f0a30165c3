# -*- test-case-name: tests.test_cache_store -*-
"""
Stored responses and the byte-bounded LRU that holds them, without the
reactor (times are passed in).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple

from lbproxy.cache.directives import Directives, header_values, parse_http_date
from lbproxy.cache.freshness import current_age
from lbproxy.cache.key import HeaderGetter, variant

__all__ = ["CacheStore", "Entry", "ENTRY_OVERHEAD"]

#: Bytes counted for an entry beyond its head and body (the objects that
#: hold it), so that many tiny entries cannot exceed C{max_bytes}.
ENTRY_OVERHEAD = 256


class Entry:
    """
    One stored response.

    @ivar key: the primary key (L{lbproxy.cache.key.primary_key}).
    @ivar varyNames: the request headers it varies on.
    @ivar variant: the values of those headers it was stored for.
    @ivar status: the status code.
    @ivar reason: the reason phrase.
    @ivar headers: the end-to-end header pairs, as stored.
    @ivar body: the body.
    @ivar requestTime: when the request that got it was sent.
    @ivar responseTime: when its head arrived.
    @ivar dateValue: its C{Date}, or L{None}.
    @ivar ageValue: its C{Age}, or 0.
    @ivar lifetime: its freshness lifetime in seconds.
    @ivar cc: its C{Cache-Control} directives.
    @ivar swr: its C{stale-while-revalidate} window in seconds.
    @ivar sie: its C{stale-if-error} window in seconds.
    @ivar size: the bytes it is counted for.
    """

    __slots__ = (
        "key", "varyNames", "variant", "status", "reason", "headers", "body",
        "requestTime", "responseTime", "dateValue", "ageValue", "lifetime", "cc",
        "swr", "sie", "size", "etag", "lastModified",
    )

    def __init__(
        self, key: bytes, varyNames: Tuple[bytes, ...], variant: tuple, status: int,
        reason: bytes, headers: Sequence[Tuple[bytes, bytes]], body: bytes,
        requestTime: float, responseTime: float, lifetime: float, cc: Directives,
        swr: float = 0.0, sie: float = 0.0,
    ) -> None:
        self.key = key
        self.varyNames = varyNames
        self.variant = variant
        self.status = status
        self.reason = reason
        self.body = body
        self.requestTime = requestTime
        self.responseTime = responseTime
        self.lifetime = lifetime
        self.cc = cc
        self.swr = swr
        self.sie = sie
        self.setHeaders(headers)

    def setHeaders(self, headers: Sequence[Tuple[bytes, bytes]]) -> None:
        """
        Store a new head (a new response, or a 304's update) and read what
        the rules need from it.
        """
        self.headers = list(headers)
        dates = header_values(self.headers, b"date")
        self.dateValue = parse_http_date(dates[0]) if dates else None
        ages = header_values(self.headers, b"age")
        self.ageValue = float(ages[0]) if ages and ages[0].strip().isdigit() else 0.0
        etags = header_values(self.headers, b"etag")
        self.etag = etags[0] if etags else None
        modified = header_values(self.headers, b"last-modified")
        self.lastModified = modified[0] if modified else None
        self.size = (
            ENTRY_OVERHEAD + len(self.body) + len(self.key)
            + sum(len(n) + len(v) + 4 for n, v in self.headers)
        )

    def age(self, now: float) -> float:
        """
        Its current age (RFC 9111 section 4.2.3).
        """
        return current_age(self.ageValue, self.dateValue, self.requestTime, self.responseTime, now)

    def discardAt(self) -> float:
        """
        When the collector removes it: once stale beyond both stale windows,
        and, when it has a validator, a further lifetime (so that a request
        soon after can still be answered by a 304 instead of a transfer).
        """
        start = self.responseTime - self.age(self.responseTime)
        keep = self.lifetime + max(self.swr, self.sie)
        if self.etag is not None or self.lastModified is not None:
            keep += max(self.lifetime, 60.0)
        return start + keep

    def __repr__(self) -> str:
        return f"<Entry {self.key!r} {self.variant!r} {self.status} {len(self.body)}B>"


class CacheStore:
    """
    Entries by primary key and variant, least recently used first, bounded
    by bytes (heads and bodies).

    @ivar maxBytes: the bound on L{bytes}.
    @ivar maxObject: the largest entry stored.
    @ivar bytes: the bytes counted for every entry.
    @ivar evicted: entries removed to make room, since start.
    """

    def __init__(self, maxBytes: int, maxObject: int) -> None:
        self.maxBytes = maxBytes
        self.maxObject = maxObject
        self.bytes = 0
        self.evicted = 0
        self._lru: "OrderedDict[Tuple[bytes, tuple], Entry]" = OrderedDict()
        self._byKey: Dict[bytes, List[Entry]] = {}

    def __len__(self) -> int:
        return len(self._lru)

    def lookup(self, key: bytes, get: HeaderGetter) -> Optional[Entry]:
        """
        The entry stored for C{key} whose variant matches the request
        (C{get}: its headers), most recently used from now on; or L{None}.
        """
        for entry in self._byKey.get(key, ()):
            if not entry.varyNames or entry.variant == variant(entry.varyNames, get):
                self._lru.move_to_end((key, entry.variant))
                return entry
        return None

    def peek(self, key: bytes) -> List[Entry]:
        """
        Every variant stored for C{key}, without touching the LRU order.
        """
        return list(self._byKey.get(key, ()))

    def fits(self, size: int) -> bool:
        """
        Whether a body of C{size} bytes may be stored at all.
        """
        return size <= self.maxObject and size <= self.maxBytes

    def put(self, entry: Entry) -> bool:
        """
        Store an entry (replacing the same variant; a response that varies
        on other headers than the stored ones replaces them all, its C{Vary}
        being the origin's latest word), then evict least recently used
        entries until the store is within L{maxBytes}.

        @return: whether it was stored (not if larger than C{max_object}).
        """
        if len(entry.body) > self.maxObject or entry.size > self.maxBytes:
            return False
        for old in self._byKey.get(entry.key, ()):
            if old.varyNames != entry.varyNames or old.variant == entry.variant:
                self._remove(old)
        self._byKey.setdefault(entry.key, []).insert(0, entry)
        self._lru[(entry.key, entry.variant)] = entry
        self.bytes += entry.size
        while self.bytes > self.maxBytes:
            _, oldest = self._lru.popitem(last=False)
            self._lru[(oldest.key, oldest.variant)] = oldest  # for _remove
            self._remove(oldest)
            self.evicted += 1
        return True

    def resized(self, entry: Entry, oldSize: int) -> None:
        """
        An entry's head was replaced (a 304 updated it): count its new size.
        """
        self.bytes += entry.size - oldSize

    def _remove(self, entry: Entry) -> None:
        stored = self._lru.pop((entry.key, entry.variant), None)
        if stored is None:
            return
        self.bytes -= stored.size
        variants = self._byKey.get(entry.key)
        if variants is not None:
            variants[:] = [e for e in variants if e is not stored]
            if not variants:
                del self._byKey[entry.key]

    def discard(self, entry: Entry) -> bool:
        """
        Remove one entry if it is still stored.

        @return: whether it was.
        """
        stored = self._lru.get((entry.key, entry.variant)) is entry
        if stored:
            self._remove(entry)
        return stored

    def holds(self, entry: Entry) -> bool:
        return self._lru.get((entry.key, entry.variant)) is entry

    def remove(self, key: bytes) -> int:
        """
        Remove every variant of C{key} (invalidation).

        @return: how many entries were removed.
        """
        variants = list(self._byKey.get(key, ()))
        for entry in variants:
            self._remove(entry)
        return len(variants)

    def purge_prefix(self, prefix: bytes) -> int:
        """
        Remove every entry whose key starts with C{prefix}
        (C{b"http://example.com/static/"}; C{b""} empties the store).

        @return: how many entries were removed.
        """
        keys = [key for key in self._byKey if key.startswith(prefix)]
        return sum(self.remove(key) for key in keys)

    def collect(self, now: float) -> int:
        """
        Remove the entries past L{Entry.discardAt}.

        @return: how many were removed.
        """
        expired = [entry for entry in self._lru.values() if entry.discardAt() <= now]
        for entry in expired:
            self._remove(entry)
        return len(expired)

    def entries(self) -> List[Entry]:
        """
        Every entry, least recently used first.
        """
        return list(self._lru.values())
