# -*- test-case-name: tests.test_strategies -*-
"""
C{balance = "hash"}: consistent hashing on a key of the request, with
bounded loads.

Each member of weight M{w} owns C{POINTS * w / g} points (M{g}: the
greatest common divisor of the pool's weights; at most L{MAX_POINTS} per
member) on a ring of 64-bit places cut from BLAKE2b digests of
C{"<target url>#<n>"}, the same in every process and after every reload.
A thousand points per member keep each member's share of the ring within
a few per cent of its weight's.  A request's key (C{hash_key}: the
client address, a header, a cookie, the path or the whole request target)
is hashed to a place on the ring and goes to the owner of the next point,
so adding or removing one of N targets moves only the keys of the points
it gains or loses, about 1/N of them.

With C{hash_balance_factor} (bounded loads, as Mirrokni, Thorup and
Zadimoghaddam describe), no member takes a request that would bring it
above M{ceil(factor * (in flight + 1) * w / W)} (M{W}: the usable
members' weights added up; with equal weights, the average load times the
factor): the walk goes on along the ring to the next member with room, so
a hot key spills over to the same few neighbours instead of everywhere.

A member that is down, excluded or full is skipped the same way.  A
request without the key goes to a smooth weighted round robin of the same
members.

Pure: no Twisted, no I/O, no clock.
"""

from __future__ import annotations

import math
from array import array
from bisect import bisect
from functools import lru_cache, reduce
from hashlib import blake2b
from typing import TYPE_CHECKING, Collection, List, Optional, Sequence, Tuple

from zope.interface import implementer

from lbproxy.balance.context import key_reader
from lbproxy.balance.roundrobin import RoundRobin
from lbproxy.balance.strategy import IStrategy, PoolView

if TYPE_CHECKING:
    from lbproxy.balance.members import Member

__all__ = ["MAX_POINTS", "POINTS", "HashRing", "hash_key", "parse_hash_key", "ring_points"]

#: Points on the ring per unit of (reduced) weight.
POINTS = 1000

#: Most points one member owns.
MAX_POINTS = 40000


def hash_key(data: bytes) -> int:
    """
    The 64-bit place of C{data} on the ring.
    """
    return int.from_bytes(blake2b(data, digest_size=8).digest(), "big")


def parse_hash_key(text: str) -> Tuple[str, Optional[bytes]]:
    """
    C{"client_ip"}, C{"path"}, C{"uri"}, C{"header:NAME"} or
    C{"cookie:NAME"} as the source and name of L{key_reader}.

    @raise ValueError: for anything else.
    """
    if text in ("client_ip", "path", "uri"):
        return text, None
    source, colon, name = text.partition(":")
    if colon and source in ("header", "cookie") and name.strip() == name and name:
        return source, name.encode("ascii")
    raise ValueError(
        f"unknown hash key {text!r} (expected client_ip, path, uri, header:NAME or cookie:NAME)"
    )


@lru_cache(maxsize=1024)
def ring_points(url: str, count: int) -> Sequence[int]:
    """
    The C{count} places on the ring of the target at C{url}: eight cut
    from each 64-byte BLAKE2b digest of C{"<url>#<n>"}.  Cached, 8 bytes
    a place, for the next runtime: a reload does not hash them again (read
    them, never change them).
    """
    base = url.encode("utf-8") + b"#"
    places = array("Q")
    for n in range((count + 7) // 8):
        digest = blake2b(base + b"%d" % (n,), digest_size=64).digest()
        for i in range(0, min(8, count - n * 8) * 8, 8):
            places.append(int.from_bytes(digest[i : i + 8], "big"))
    return places


@implementer(IStrategy)
class HashRing:
    """
    Consistent hashing with bounded loads.

    @ivar points: the ring's sorted hashes.
    @ivar owners: the member owning each point.
    """

    def __init__(self, pool: PoolView) -> None:
        options = pool.options
        source, name = parse_hash_key(options.get("hash_key", "client_ip"))
        self._read = key_reader(source, name)
        self._factor: float = options.get("hash_balance_factor") or 0.0
        self._members = members = tuple(m for m in pool.members if m.weight)
        self._limit = pool.maxInflight
        self._fallback = RoundRobin(pool)
        ring: List[Tuple[int, int]] = []
        if members:
            unit = reduce(math.gcd, (m.weight for m in members))
            for index, member in enumerate(members):
                count = min(MAX_POINTS, POINTS * member.weight // unit)
                ring.extend((place, index) for place in ring_points(member.target.url, count))
        ring.sort()
        self.points = [place for place, _ in ring]
        self.owners = [members[index] for _, index in ring]

    def pick(
        self, exclude: Collection[Member], now: float, context: object = None
    ) -> Optional[Member]:
        key = self._read(context)
        if key is None:
            return self._fallback.pick(exclude, now, context)
        points = self.points
        if not points:
            return None
        limit = self._limit
        factor = self._factor
        if factor:
            inflight = 0
            weights = 0
            for member in self._members:
                state = member.state
                if state.up and not (exclude and member in exclude):
                    inflight += state.inflight
                    weights += member.weight
            if not weights:
                return None
            share = factor * (inflight + 1) / weights
        owners = self.owners
        count = len(points)
        start = bisect(points, hash_key(key))
        for step in range(count):
            member = owners[(start + step) % count]
            state = member.state
            if not state.up or (exclude and member in exclude):
                continue
            if limit and state.inflight >= limit:
                continue
            if factor and state.inflight >= math.ceil(share * member.weight):
                continue
            return member
        return None
