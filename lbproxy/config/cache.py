# -*- test-case-name: tests.test_cache_config -*-
"""
The C{[cache]} table (the shared cache's memory) and a route's C{cache}
and C{compress} settings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Tuple

from lbproxy.config.errors import child_key
from lbproxy.config.reader import Reader

__all__ = [
    "CacheConfig", "CompressConfig", "DEFAULT_COMPRESS_TYPES", "RouteCache",
    "parse_cache", "parse_route_cache", "parse_route_compress",
]


@dataclass(frozen=True)
class CacheConfig:
    """
    @ivar max_bytes: memory for every entry (heads and bodies); least
        recently used entries go beyond it.
    @ivar max_object: the largest body stored; larger ones stream through.
    """

    max_bytes: int = 256 << 20
    max_object: int = 8 << 20


@dataclass(frozen=True)
class RouteCache:
    """
    A route's cache settings (C{cache = true} or a table).

    @ivar static_ttl: seconds of freshness for static resources (style
        sheets, scripts, images, fonts) that carry no freshness
        information; 0: none.
    @ivar stale_while_revalidate: seconds a stale response may answer while
        one background request refreshes it, unless the response says
        otherwise (RFC 5861).
    @ivar stale_if_error: seconds a stale response may answer when the
        backend fails, unless the response says otherwise.
    """

    static_ttl: float = 0.0
    stale_while_revalidate: float = 0.0
    stale_if_error: float = 0.0


#: Compressed unless a route names its own types.
DEFAULT_COMPRESS_TYPES: Tuple[str, ...] = (
    "text/*", "application/json", "application/javascript", "application/xml",
    "application/xhtml+xml", "application/rss+xml", "application/atom+xml",
    "application/manifest+json", "application/ld+json", "application/wasm",
    "image/svg+xml", "font/ttf", "font/otf", "application/vnd.ms-fontobject",
)


@dataclass(frozen=True)
class CompressConfig:
    """
    A route's compression (C{compress = true} or a table).

    @ivar types: media types compressed (C{"text/*"} matches every
        C{text/} type).
    @ivar min_size: responses with a known length below this are sent as
        they are.
    @ivar level: the gzip level and brotli quality (1 to 9), or L{None}
        for the defaults (gzip 6, brotli 5).
    """

    types: Tuple[str, ...] = DEFAULT_COMPRESS_TYPES
    min_size: int = 1024
    level: Optional[int] = None


def parse_cache(value: Any, key: str, reader: Reader) -> CacheConfig:
    table = reader.table(value, key, ("max_bytes", "max_object"))
    settings = {}
    for name in ("max_bytes", "max_object"):
        if name in table:
            size = reader.size(table[name], child_key(key, name))
            if size <= 0:
                raise reader.fail(child_key(key, name), "must be greater than 0")
            settings[name] = size
    config = CacheConfig(**settings)
    if config.max_object > config.max_bytes:
        raise reader.fail(
            child_key(key, "max_object"),
            f"must not be larger than max_bytes ({config.max_bytes})",
        )
    return config


def _seconds(value: Any, key: str, reader: Reader) -> float:
    number = reader.number(value, key)
    if number < 0 or number != number or number == float("inf"):
        raise reader.fail(key, f"must be a finite number of seconds, at least 0, got {number!r}")
    return float(number)


def parse_route_cache(value: Any, key: str, reader: Reader) -> Optional[RouteCache]:
    """
    C{true}, C{false} or C{{ static_ttl, stale_while_revalidate,
    stale_if_error }}.
    """
    if isinstance(value, bool):
        return RouteCache() if value else None
    names = ("static_ttl", "stale_while_revalidate", "stale_if_error")
    table = reader.table(value, key, names)
    return RouteCache(**{
        name: _seconds(table[name], child_key(key, name), reader)
        for name in names if name in table
    })


def parse_route_compress(value: Any, key: str, reader: Reader) -> Optional[CompressConfig]:
    """
    C{true}, C{false} or C{{ types, min_size, level }}.
    """
    if isinstance(value, bool):
        return CompressConfig() if value else None
    table = reader.table(value, key, ("types", "min_size", "level"))
    settings: dict = {}
    if "types" in table:
        typesKey = child_key(key, "types")
        types = []
        for index, item in enumerate(reader.array(table["types"], typesKey, '["text/*"]')):
            text = reader.nonempty_string(item, f"{typesKey}[{index}]").strip().lower()
            major, slash, minor = text.partition("/")
            if not slash or not major or not minor or major == "*" or " " in text:
                raise reader.fail(
                    f"{typesKey}[{index}]",
                    f'expected a media type such as "text/html" or "text/*", got "{text}"',
                )
            types.append(text)
        if not types:
            raise reader.fail(typesKey, "must name at least one media type")
        settings["types"] = tuple(types)
    if "min_size" in table:
        settings["min_size"] = reader.size(table["min_size"], child_key(key, "min_size"))
    if "level" in table:
        settings["level"] = reader.integer(table["level"], child_key(key, "level"), 1, 9)
    return CompressConfig(**settings)
