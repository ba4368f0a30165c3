# -*- test-case-name: tests.test_config -*-
"""
The C{[[routes]]} entries: which requests go to which pool, and the edge
policies of each route.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any, Dict, Optional
from urllib.parse import unquote

from lbproxy.config.access import AccessConfig, parse_access
from lbproxy.config.cors import CorsConfig, parse_cors
from lbproxy.config.errors import child_key, quote
from lbproxy.config.headers import HeaderRulesConfig, parse_header_rules
from lbproxy.config.ratelimit import RateLimitConfig, parse_rate_limit
from lbproxy.config.reader import Reader
from lbproxy.config.syntax import hostname_problem, path_prefix_problem

__all__ = ["Route", "parse_route", "parse_route_path"]

_ROUTE_KEYS = (
    "access",
    "cors",
    "headers",
    "host",
    "max_body_size",
    "path",
    "pool",
    "rate_limit",
    "request_buffering",
    "strip_prefix",
)
#: A route's policy tables, in the order they are read.
_POLICIES = (
    ("access", parse_access),
    ("rate_limit", parse_rate_limit),
    ("cors", parse_cors),
    ("headers", parse_header_rules),
)


@dataclass(frozen=True)
class Route:
    """
    Send matching requests to a pool.

    @ivar pool: Name of a pool in L{lbproxy.config.document.Config.pools}.
    @ivar host: Lower-cased host without port or trailing dot (IPv6 without
        brackets); an exact name or a wildcard C{"*.example.com"}.  L{None}
        matches any host.
    @ivar path: Normalized path prefix: starts with C{"/"}, no repeated
        slashes, no dot-segments, no trailing slash (except C{"/"} itself).
    @ivar strip_prefix: Remove C{path} from the request path before
        forwarding.
    @ivar max_body_size: Largest request body in bytes for this route (413
        beyond), or L{None} for C{server.max_body_size}; 0 is no limit.
    @ivar access: The route's firewall rules (after the global ones).
    @ivar rate_limit: The route's per-client rate limit (after the global
        one).
    @ivar cors: CORS for the route, preflights answered by lbproxy.
    @ivar headers: Request and response header rules.
    @ivar request_buffering: Bodies up to this many bytes are read whole
        before a backend is chosen (so a slow client holds no backend
        connection); a longer body streams once this much is buffered; 0
        streams every body as it arrives (the default).
    """

    pool: str
    host: Optional[str] = None
    path: str = "/"
    strip_prefix: bool = False
    max_body_size: Optional[int] = None
    access: Optional[AccessConfig] = None
    rate_limit: Optional[RateLimitConfig] = None
    cors: Optional[CorsConfig] = None
    headers: Optional[HeaderRulesConfig] = None
    request_buffering: int = 0


def parse_route(value: Any, key: str, reader: Reader) -> Route:
    """
    One C{[[routes]]} entry.  Its pool is not looked up here: the document
    checks every route's pool once all pools are known.
    """
    table = reader.table(value, key, _ROUTE_KEYS)
    settings: Dict[str, Any] = {}
    settings["pool"] = reader.nonempty_string(
        reader.required(table, key, "pool"), child_key(key, "pool")
    )
    if "host" in table:
        settings["host"] = _route_host(table["host"], child_key(key, "host"), reader)
    if "path" in table:
        settings["path"] = parse_route_path(table["path"], child_key(key, "path"), reader)
    if "strip_prefix" in table:
        settings["strip_prefix"] = reader.boolean(
            table["strip_prefix"], child_key(key, "strip_prefix")
        )
    if "max_body_size" in table:
        settings["max_body_size"] = reader.size(
            table["max_body_size"], child_key(key, "max_body_size")
        )
    if "request_buffering" in table:
        settings["request_buffering"] = _request_buffering(
            table["request_buffering"], child_key(key, "request_buffering"), reader
        )
    for name, parse in _POLICIES:
        if name in table:
            settings[name] = parse(table[name], child_key(key, name), reader)
    return Route(**settings)


#: The most a route may buffer of one request body (in memory).
MAX_REQUEST_BUFFERING = 64 * 1024 * 1024


def _request_buffering(value: Any, key: str, reader: Reader) -> int:
    if value is False:
        return 0
    size = reader.size(value, key)
    if size > MAX_REQUEST_BUFFERING:
        raise reader.fail(
            key, f"at most 64 MiB (bodies are buffered in memory), got {size} bytes"
        )
    return size


def parse_route_path(value: Any, key: str, reader: Reader) -> str:
    """
    A route's path prefix, normalized: repeated slashes merged, the
    trailing one dropped; dot-segments, queries and fragments refused.
    """
    path = reader.string(value, key)
    problem = path_prefix_problem(path)
    if problem:
        raise reader.fail(key, problem)
    for segment in path.split("/"):
        if unquote(segment) in (".", ".."):
            raise reader.fail(key, f'path {quote(path)} must not contain "." or ".." segments')
    path = re.sub("/{2,}", "/", path)
    if len(path) > 1 and path.endswith("/"):
        path = path[:-1]
    return path


def _route_host(value: Any, key: str, reader: Reader) -> str:
    """
    Normalize a route's host: lower case, no port, no trailing dot;
    C{"*."} is allowed only as a prefix.
    """
    text = reader.string(value, key)
    name = text.strip().lower()
    if not name:
        raise reader.fail(key, "must not be empty (omit host to match any host)")
    if any(c.isspace() for c in name):
        raise reader.fail(key, f"host {quote(text)} must not contain spaces")

    if name.startswith("["):
        end = name.find("]")
        literal = name[1:end] if end != -1 else ""
        rest = name[end + 1 :] if end != -1 else ""
        try:
            address = ipaddress.IPv6Address(literal)
        except ValueError:
            raise reader.fail(key, f"invalid IPv6 host {quote(text)}") from None
        if rest and not (rest.startswith(":") and rest[1:].isdigit()):
            raise reader.fail(key, f"invalid port in host {quote(text)}")
        # Stored without brackets, as the router reduces Host headers.
        return str(address)

    if name.count(":") > 1:
        try:
            return str(ipaddress.IPv6Address(name))
        except ValueError:
            raise reader.fail(
                key,
                'IPv6 hosts must be in brackets, e.g. "[::1]" or "[::1]:8080", '
                f"got {quote(text)}",
            ) from None
    name, colon, port = name.partition(":")
    if colon and not (port.isascii() and port.isdigit()):
        raise reader.fail(key, f"invalid port in host {quote(text)}")
    if name.endswith("."):
        name = name[:-1]
    if name == "*":
        raise reader.fail(
            key,
            f'invalid host {quote(text)}: a bare "*" is not a host pattern; '
            'omit host to match any host, or use "*.example.com"',
        )
    wildcard = name.startswith("*.")
    rest = name[2:] if wildcard else name
    if "*" in rest:
        raise reader.fail(
            key,
            f'invalid host {quote(text)}: "*" is only allowed as a leading '
            '"*." (e.g. "*.example.com")',
        )
    problem = hostname_problem(rest)
    if problem:
        raise reader.fail(key, f"invalid host {quote(text)}: {problem}")
    return "*." + rest if wildcard else rest
