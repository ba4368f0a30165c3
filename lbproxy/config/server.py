# -*- test-case-name: tests.test_config -*-
"""
The C{[server]} table: listeners, timeouts, client limits and what lbproxy
answers or adds itself.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

from lbproxy.config.clientaddr import parse_forwarded_header, parse_trusted_proxies
from lbproxy.config.errors import child_key, describe, quote
from lbproxy.config.http2 import Http2Config, parse_http2
from lbproxy.config.reader import Reader
from lbproxy.config.syntax import probe_path

__all__ = ["ServerConfig", "parse_server"]

_SERVER_KEYS = (
    "access_log",
    "access_log_format",
    "client_body_timeout",
    "client_header_timeout",
    "client_request_timeout",
    "connect_timeout",
    "default_pool",
    "drain_timeout",
    "encoded_slashes",
    "forwarded_header",
    "health_endpoint",
    "http2",
    "idle_timeout",
    "keepalive_timeout",
    "listen",
    "listen_backlog",
    "max_body_size",
    "max_connections",
    "max_header_size",
    "max_headers",
    "max_idle_per_target",
    "max_request_line",
    "proxy_protocol",
    "request_id_header",
    "response_timeout",
    "trusted_proxies",
    "watch",
    "websocket_idle_timeout",
    "workers",
)
_TIMEOUTS = (
    "connect_timeout",
    "response_timeout",
    "idle_timeout",
    "client_header_timeout",
    "client_body_timeout",
    "client_request_timeout",
    "keepalive_timeout",
    "drain_timeout",
    "websocket_idle_timeout",
)
#: Client limits, with their smallest value.
_LIMITS = (
    ("max_request_line", 256),
    ("max_header_size", 1024),
    ("max_headers", 8),
    ("max_connections", 1),
)
_MAX_WORKERS = 256
#: The largest listen backlog (the kernel caps it at net.core.somaxconn).
_MAX_BACKLOG = 65535
_REQUEST_ID_HEADER = re.compile(r"^[A-Za-z0-9-]+\Z")


@dataclass(frozen=True)
class ServerConfig:
    """
    The C{[server]} table.

    @ivar listen: Twisted server endpoint strings, at least one.
    @ivar connect_timeout: Seconds allowed to connect to a target.
    @ivar response_timeout: Seconds from sending a request to a target to
        receiving its response headers.
    @ivar access_log: C{"-"} for standard output, a file path, or L{None}
        for no access log.
    @ivar access_log_format: C{"text"}, C{"combined"} or C{"json"} (see
        L{lbproxy.observe.logformats}).
    @ivar default_pool: Pool for requests no route matches, or L{None} to
        answer those with 404.
    @ivar max_idle_per_target: Idle keep-alive connections kept per target.
    @ivar idle_timeout: Seconds an idle backend connection is kept.
    @ivar max_body_size: Largest request body in bytes (413 beyond); 0 is
        no limit, the default: bodies are streamed, so a limit protects
        the backends, not lbproxy's memory.
    @ivar max_request_line: Longest request line (414 beyond).
    @ivar max_header_size: Most bytes of header lines (431 beyond).
    @ivar max_headers: Most header lines (431 beyond).
    @ivar client_header_timeout: Seconds for a client to send a whole
        request head (408).
    @ivar client_body_timeout: Longest pause while a body is sent (408).
    @ivar client_request_timeout: Seconds for a whole request, head and
        body (408).
    @ivar keepalive_timeout: Seconds an idle client connection is kept.
    @ivar max_connections: Most client connections at once (503 beyond).
    @ivar encoded_slashes: C{"reject"} (400 for C{%2F}/C{%5C} in a path) or
        C{"keep"}.
    @ivar health_endpoint: Path answered by lbproxy itself (200) for outer
        load balancers and probes, or L{None}.
    @ivar trusted_proxies: Networks of proxies in front whose forwarding
        header is believed; from others, incoming C{X-Forwarded-*} and
        C{Forwarded} headers are replaced.
    @ivar forwarded_header: The header the trusted proxies write:
        C{"x-forwarded-for"} or C{"forwarded"}.
    @ivar request_id_header: The request id header, generated when absent,
        passed to the backend, logged and returned; L{None} for none.
    @ivar proxy_protocol: Expect a PROXY protocol (v1 or v2) header on every
        plain listener, e.g. behind an L4 load balancer.
    @ivar listen_backlog: The listen backlog (accept queue length) of every
        listener, unless its endpoint string sets C{backlog=}; Twisted's
        default of 50 makes a burst of connects wait for SYN retransmits.
    @ivar http2: Bounds per HTTP/2 client connection (C{[server.http2]}).
    @ivar websocket_idle_timeout: Seconds an upgraded connection (a
        WebSocket) may pass no byte either way before both sides are
        closed.
    @ivar workers: Processes serving the listeners (C{"auto"} in the file:
        one per CPU); more than one needs C{tcp:} listen strings.
    @ivar drain_timeout: Seconds requests in flight (and connections on a
        route or pool a reload removed) get to finish at shutdown or
        after a reload, before they are closed.
    @ivar watch: Reload when the configuration file changes.
    """

    listen: Tuple[str, ...] = ("tcp:8080",)
    connect_timeout: float = 5.0
    response_timeout: float = 30.0
    access_log: Optional[str] = "-"
    access_log_format: str = "text"
    default_pool: Optional[str] = None
    max_idle_per_target: int = 64
    idle_timeout: float = 60.0
    max_body_size: int = 0
    max_request_line: int = 8 * 1024
    max_header_size: int = 32 * 1024
    max_headers: int = 100
    client_header_timeout: float = 10.0
    client_body_timeout: float = 60.0
    client_request_timeout: float = 3600.0
    keepalive_timeout: float = 75.0
    max_connections: int = 10000
    encoded_slashes: str = "reject"
    health_endpoint: Optional[str] = "/.lbproxy/health"
    trusted_proxies: Tuple[str, ...] = ()
    forwarded_header: str = "x-forwarded-for"
    request_id_header: Optional[str] = "X-Request-Id"
    proxy_protocol: bool = False
    workers: int = 1
    listen_backlog: int = 511
    drain_timeout: float = 30.0
    watch: bool = False
    http2: Http2Config = Http2Config()
    websocket_idle_timeout: float = 3600.0


def parse_server(value: Any, key: str, reader: Reader) -> ServerConfig:
    """
    The C{[server]} table (at C{key}).
    """
    table = reader.table(value, key, _SERVER_KEYS)
    settings: Dict[str, Any] = {}

    if "listen" in table:
        settings["listen"] = reader.listen(table["listen"], child_key(key, "listen"))
    if "listen_backlog" in table:
        settings["listen_backlog"] = reader.integer(
            table["listen_backlog"], child_key(key, "listen_backlog"), 1, _MAX_BACKLOG
        )
    for name in _TIMEOUTS:
        if name in table:
            settings[name] = reader.positive_number(table[name], child_key(key, name))
    if "max_body_size" in table:
        settings["max_body_size"] = reader.size(
            table["max_body_size"], child_key(key, "max_body_size")
        )
    for name, minimum in _LIMITS:
        if name in table:
            settings[name] = reader.integer(table[name], child_key(key, name), minimum, 1 << 30)
    if "encoded_slashes" in table:
        mode_key = child_key(key, "encoded_slashes")
        mode = reader.string(table["encoded_slashes"], mode_key)
        if mode not in ("reject", "keep"):
            raise reader.fail(mode_key, f'expected "reject" or "keep", got {quote(mode)}')
        settings["encoded_slashes"] = mode
    if "trusted_proxies" in table:
        settings["trusted_proxies"] = parse_trusted_proxies(
            table["trusted_proxies"], child_key(key, "trusted_proxies"), reader
        )
    if "forwarded_header" in table:
        settings["forwarded_header"] = parse_forwarded_header(
            table["forwarded_header"], child_key(key, "forwarded_header"), reader
        )
    if "request_id_header" in table:
        settings["request_id_header"] = _request_id_header(
            table["request_id_header"], child_key(key, "request_id_header"), reader
        )
    if "workers" in table:
        settings["workers"] = _workers(table["workers"], child_key(key, "workers"), reader)
    if "proxy_protocol" in table:
        settings["proxy_protocol"] = reader.boolean(
            table["proxy_protocol"], child_key(key, "proxy_protocol")
        )
    if "watch" in table:
        settings["watch"] = reader.boolean(table["watch"], child_key(key, "watch"))
    if "health_endpoint" in table:
        endpoint = table["health_endpoint"]
        settings["health_endpoint"] = (
            None
            if endpoint is False
            else probe_path(endpoint, child_key(key, "health_endpoint"), reader)
        )
    if "access_log" in table:
        settings["access_log"] = _access_log(
            table["access_log"], child_key(key, "access_log"), reader
        )
    if "access_log_format" in table:
        settings["access_log_format"] = _choice(
            table["access_log_format"], child_key(key, "access_log_format"), reader,
            _LOG_FORMATS,
        )
    if "default_pool" in table:
        settings["default_pool"] = reader.nonempty_string(
            table["default_pool"], child_key(key, "default_pool")
        )
    if "max_idle_per_target" in table:
        settings["max_idle_per_target"] = reader.integer(
            table["max_idle_per_target"], child_key(key, "max_idle_per_target"), 0
        )
    if "http2" in table:
        settings["http2"] = parse_http2(table["http2"], child_key(key, "http2"), reader)
    return ServerConfig(**settings)


def _request_id_header(value: Any, key: str, reader: Reader) -> Optional[str]:
    if value is False:
        return None
    name = reader.nonempty_string(value, key)
    if not _REQUEST_ID_HEADER.match(name):
        raise reader.fail(
            key, f"not a header name: {quote(name)} (use letters, digits and -)"
        )
    return name


def _workers(value: Any, key: str, reader: Reader) -> int:
    if value == "auto":
        return max(1, os.cpu_count() or 1)
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= _MAX_WORKERS:
        return value
    raise reader.fail(
        key, f'expected a number from 1 to {_MAX_WORKERS} or "auto", got {describe(value)}'
    )


_LOG_FORMATS = ("text", "combined", "json")


def _choice(value: Any, key: str, reader: Reader, choices: Tuple[str, ...]) -> str:
    if value not in choices:
        raise reader.fail(
            key, "expected one of %s, got %s" % (", ".join(map(quote, choices)), describe(value))
        )
    return value


def _access_log(value: Any, key: str, reader: Reader) -> Optional[str]:
    if value is False:
        return None
    if not isinstance(value, str) or not value.strip():
        raise reader.fail(
            key,
            '"-" for standard output, a file path, or false to disable, '
            f"got {describe(value)}",
        )
    return value
