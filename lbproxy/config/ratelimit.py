# -*- test-case-name: tests.test_edgeconfig -*-
"""
A C{rate_limit} table, global (C{[rate_limit]}) or a route's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional
from urllib.parse import urlsplit

from lbproxy.config.errors import child_key, quote
from lbproxy.config.reader import Reader

__all__ = ["RateLimitConfig", "parse_rate_limit"]

_MAX_RATE = 1_000_000.0
_MAX_BURST = 1_000_000
_RATE_LIMIT_KEYS = ("burst", "rate", "shared")


@dataclass(frozen=True)
class RateLimitConfig:
    """
    A C{rate_limit} table.

    @ivar rate: Requests per second per client address, sustained.
    @ivar burst: Requests a client may make at once after a quiet spell.
    @ivar shared: A C{redis://host:port/db} URL whose buckets every proxy
        of a fleet shares, or L{None} (this process's own buckets).
    """

    rate: float
    burst: int
    shared: Optional[str] = None


def parse_rate_limit(value: Any, key: str, reader: Reader) -> Optional[RateLimitConfig]:
    """
    A C{rate_limit} table: C{rate} (requests per second per client,
    required) and C{burst} (default: one second's worth, at least 1).

    @return: The limit, or L{None} for C{rate_limit = false} (a route
        turning the global limit off).
    """
    if value is False:
        return None
    table = reader.table(value, key, _RATE_LIMIT_KEYS)
    rate_key = child_key(key, "rate")
    rate = reader.number(reader.required(table, key, "rate"), rate_key)
    if not (math.isfinite(rate) and 0 < rate <= _MAX_RATE):
        raise reader.fail(
            rate_key, f"must be greater than 0 and at most {_MAX_RATE:g}, got {rate!r}"
        )
    if "burst" in table:
        burst = reader.integer(table["burst"], child_key(key, "burst"), 1, _MAX_BURST)
    else:
        burst = max(1, math.ceil(rate))
    shared = None
    if "shared" in table:
        shared = _redis_url(table["shared"], child_key(key, "shared"), reader)
    return RateLimitConfig(rate=float(rate), burst=burst, shared=shared)


def _redis_url(value: Any, key: str, reader: Reader) -> str:
    """
    C{redis://[:password@]host[:port][/db]}.
    """
    url = reader.nonempty_string(value, key)
    try:
        parts = urlsplit(url)
        parts.port
    except ValueError as e:
        raise reader.fail(key, f"not a URL ({e})") from None
    db = parts.path.strip("/")
    if parts.scheme != "redis" or not parts.hostname or (db and not db.isdigit()):
        raise reader.fail(key, f'expected "redis://host:port/db", got {quote(url)}')
    return url
