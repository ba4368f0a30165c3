# -*- test-case-name: tests.test_config -*-
"""
Load and validate lbproxy's TOML configuration.

Everything here is pure: a TOML file (or an already-parsed C{dict}) goes in,
an immutable, fully validated L{Config} comes out, or a L{ConfigError} that
names the file, the offending key and the reason.  Nothing binds, connects
or touches the reactor; listen strings are checked by I{constructing} their
endpoints with a dummy reactor.

The schema is documented for operators in C{docs/configuration.md}.
"""

from __future__ import annotations

import difflib
import os
import ipaddress
import math
import re
from collections.abc import Mapping as _MappingABC
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Dict, List, Mapping, Optional, Sequence, Set, Tuple
from urllib.parse import unquote

try:
    import tomllib
except ImportError:  # Python < 3.11
    import tomli as tomllib  # type: ignore[no-redef]
from twisted.internet.endpoints import serverFromString

from lbproxy.balance.pool import BALANCERS
from lbproxy.config.edge import (
    AccessConfig,
    CorsConfig,
    HeaderRulesConfig,
    RateLimitConfig,
    parse_access,
    parse_cors,
    parse_forwarded_header,
    parse_header_rules,
    parse_rate_limit,
    parse_trusted_proxies,
)
from lbproxy.config.errors import ConfigError
from lbproxy.config.errors import child_key as _child
from lbproxy.config.errors import describe as _describe
from lbproxy.config.errors import quote as _quote
from lbproxy.config.tls import POOL_TLS_KEYS, TLSConfig, UpstreamTLS, parse_pool_tls, parse_tls

__all__ = [
    "BALANCE_ALGORITHMS",
    "Config",
    "ConfigError",
    "DemoBackend",
    "HealthConfig",
    "Pool",
    "Route",
    "ServerConfig",
    "Target",
    "load_config",
    "parse_config",
]

#: The values accepted for C{pools.NAME.balance}.
BALANCE_ALGORITHMS: Tuple[str, ...] = tuple(sorted(BALANCERS))

_MAX_WEIGHT = 1000


@dataclass(frozen=True)
class Target:
    """
    One backend server.

    @ivar scheme: C{"http"} or C{"https"}.
    @ivar host: Lower-cased host name or IP literal (IPv6 without brackets).
    @ivar port: TCP port, 1 to 65535.
    @ivar weight: Relative share of requests, 1 to 1000.
    @ivar health_check_endpoint: Path probed by health checks (starts with
        C{"/"}), or L{None} for no probing.
    @ivar tls: For an C{https} target, its pool's TLS settings, or L{None}
        for the defaults (see L{lbproxy.config.tls.UpstreamTLS}).
    """

    scheme: str
    host: str
    port: int
    weight: int = 1
    health_check_endpoint: Optional[str] = None
    tls: Optional[UpstreamTLS] = None

    def __post_init__(self) -> None:
        # Read on every request: computed once (not a dataclass field).
        if ":" in self.host:
            address = f"[{self.host}]:{self.port}"
        else:
            address = f"{self.host}:{self.port}"
        object.__setattr__(self, "_address", address)

    @property
    def address(self) -> str:
        """
        C{"host:port"} (C{"[::1]:8080"} for IPv6); a target's identity.
        """
        return self._address

    @property
    def url(self) -> str:
        """
        C{"scheme://host:port"}, the base URL requests are forwarded to.
        """
        return f"{self.scheme}://{self.address}"


@dataclass(frozen=True)
class HealthConfig:
    """
    Health checking of a pool's targets: the C{[health]} defaults with a
    pool's C{[pools.NAME.health]} laid over them.

    @ivar interval: Seconds between two probes of one target.
    @ivar timeout: Seconds one probe may take.
    @ivar rise: Consecutive successful probes that bring a target back.
    @ivar fall: Consecutive failed probes that take a target out.
    @ivar path: Path probed with GET, or L{None}: then only targets with
        their own C{health_check_endpoint} are probed, the others are
        checked passively only.
    @ivar expect_status: Inclusive C{(low, high)} status ranges that count
        as healthy; 2xx and 3xx by default.
    @ivar host: C{Host} header for probes, or L{None} for the target's
        address.
    @ivar passive_fail: Consecutive connection failures (refused, connect
        timeout, reset before the response) that eject a target.
    @ivar ejection_time: Seconds of the first ejection; each further
        ejection in a row doubles it.
    @ivar max_ejection_time: The longest ejection.
    @ivar slow_start: Seconds over which a target that comes back ramps up
        from a trickle to its full share of requests; 0 for none.
    """

    interval: float = 5.0
    timeout: float = 2.0
    rise: int = 2
    fall: int = 3
    path: Optional[str] = None
    expect_status: Tuple[Tuple[int, int], ...] = ((200, 399),)
    host: Optional[str] = None
    passive_fail: int = 3
    ejection_time: float = 10.0
    max_ejection_time: float = 300.0
    slow_start: float = 0.0

    def healthy(self, code: int) -> bool:
        """
        Whether a probe answered with C{code} counts as a success.
        """
        return any(low <= code <= high for low, high in self.expect_status)


@dataclass(frozen=True)
class Pool:
    """
    A named group of interchangeable targets.

    @ivar name: The pool's name, as in C{[pools.NAME]}.
    @ivar targets: At least one target, with distinct addresses.
    @ivar balance: The balancing algorithm, one of L{BALANCE_ALGORITHMS}.
        C{"round_robin"} is smooth weighted round robin.
    @ivar health: How the pool's targets are checked.
    @ivar max_inflight: Most requests in progress on one target (0: no
        limit); more wait in the pool's queue.
    @ivar queue_size: Most requests waiting for a target with room; beyond,
        503.
    @ivar queue_timeout: Seconds a request waits in the queue before 503.
    """

    name: str
    targets: Tuple[Target, ...]
    balance: str = "round_robin"
    health: HealthConfig = HealthConfig()
    max_inflight: int = 0
    queue_size: int = 100
    queue_timeout: float = 10.0


@dataclass(frozen=True)
class Route:
    """
    Send matching requests to a pool.

    @ivar pool: Name of a pool in L{Config.pools}.
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
    @ivar default_pool: Pool for requests no route matches, or L{None} to
        answer those with 404.
    @ivar max_idle_per_target: Idle keep-alive connections kept per target.
    @ivar idle_timeout: Seconds an idle backend connection is kept.
    @ivar max_body_size: Largest request body in bytes (413 beyond); 0 is
        no limit.
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
    @ivar workers: Processes serving the listeners (C{"auto"} in the file:
        one per CPU); more than one needs C{tcp:} listen strings.
    """

    listen: Tuple[str, ...] = ("tcp:8080",)
    connect_timeout: float = 5.0
    response_timeout: float = 30.0
    access_log: Optional[str] = "-"
    default_pool: Optional[str] = None
    max_idle_per_target: int = 64
    idle_timeout: float = 60.0
    max_body_size: int = 1024 * 1024
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


@dataclass(frozen=True)
class DemoBackend:
    """
    A small demo HTTP server that lbproxy starts itself, so that the shipped
    configuration works with nothing else running.

    @ivar name: The demo's name.
    @ivar listen: A Twisted server endpoint string.
    @ivar text: The body it answers every request with; when empty, it
        defaults to C{"This is the NAME application."}.
    """

    name: str
    listen: str
    text: str = ""

    def __post_init__(self) -> None:
        if not self.text:
            object.__setattr__(
                self, "text", f"This is the {self.name} application."
            )


@dataclass(frozen=True)
class Config:
    """
    A whole, validated configuration.

    @ivar path: The file it came from.
    @ivar server: The C{[server]} settings.
    @ivar pools: Read-only mapping of pool name to L{Pool}, in file order;
        pools built from the flat C{[[targets]]}/C{[[path_routes]]} form come
        last.
    @ivar routes: Routes in file order: C{[[routes]]}, then one per
        C{[[path_routes]]} entry, then the flat form's catch-all route.
    @ivar demo: Demo backends to start.
    """

    path: str
    server: ServerConfig
    pools: Mapping[str, Pool]
    routes: Tuple[Route, ...]
    demo: Tuple[DemoBackend, ...] = ()
    health: HealthConfig = HealthConfig()
    tls: Optional[TLSConfig] = None
    access: Optional[AccessConfig] = None
    rate_limit: Optional[RateLimitConfig] = None


def load_config(path: str) -> Config:
    """
    Read, parse and validate a TOML configuration file.

    @param path: The file to read.
    @return: The validated configuration.
    @raise ConfigError: If the file cannot be read, is not valid TOML, or
        does not describe a valid configuration.
    """
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise ConfigError(path, "", "file not found") from None
    except IsADirectoryError:
        raise ConfigError(path, "", "is a directory, not a file") from None
    except PermissionError:
        raise ConfigError(path, "", "permission denied") from None
    except OSError as e:
        raise ConfigError(path, "", f"cannot read file: {e.strerror or e}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(
            path, "", f"not UTF-8 text (bad byte at offset {e.start})"
        ) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(path, "", f"TOML syntax error: {e}") from None
    return parse_config(data, path)


def parse_config(data: Mapping[str, Any], path: str = "<config>") -> Config:
    """
    Validate an already-parsed configuration.

    @param data: The parsed TOML document.
    @param path: The file name to use in errors and in L{Config.path}.
    @return: The validated configuration.
    @raise ConfigError: If C{data} does not describe a valid configuration.
    """
    return _Parser(path).parse(data)


# -- validation --------------------------------------------------------------

_TOP_KEYS = (
    "access",
    "demo",
    "health",
    "path_routes",
    "pools",
    "rate_limit",
    "routes",
    "server",
    "targets",
    "tls",
)
_SERVER_KEYS = (
    "access_log",
    "client_body_timeout",
    "client_header_timeout",
    "client_request_timeout",
    "connect_timeout",
    "default_pool",
    "encoded_slashes",
    "forwarded_header",
    "health_endpoint",
    "idle_timeout",
    "keepalive_timeout",
    "listen",
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
    "workers",
)
_SIZE = re.compile(r"^\s*(\d+)\s*(?:([kmg])i?)?b?\s*$", re.IGNORECASE)
_POOL_KEYS = (
    "balance",
    "health",
    "max_inflight",
    "queue_size",
    "queue_timeout",
    "targets",
) + POOL_TLS_KEYS
_HEALTH_KEYS = (
    "ejection_time",
    "expect_status",
    "fall",
    "host",
    "interval",
    "max_ejection_time",
    "passive_fail",
    "path",
    "rise",
    "slow_start",
    "timeout",
)
_TARGET_KEYS = ("address", "health_check_endpoint", "weight")
_ROUTE_KEYS = (
    "access",
    "cors",
    "headers",
    "host",
    "max_body_size",
    "path",
    "pool",
    "rate_limit",
    "strip_prefix",
)
_DEMO_KEYS = ("listen", "name", "text")
_PATH_ROUTE_KEYS = ("address", "path")

#: The pool built from the flat form's C{[[targets]]}.
_FLAT_DEFAULT_POOL = "default"

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_HOST_LABEL = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$")
_SCHEME_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://(.*)$", re.DOTALL)
_TARGET_FORMS = '"host:port", "http://host:port" or "https://host:port"'
_ENDPOINT_HINT = (
    'expected a Twisted endpoint string such as "tcp:8080" or '
    '"tcp:8080:interface=127.0.0.1"'
)


class _NoReactor:
    """
    Stands in for the reactor while endpoints are constructed to validate
    their description strings; constructing an endpoint does not use it.
    """


_NO_REACTOR = _NoReactor()


class _Parser:
    """
    Validates one parsed document; holds the file name for errors.

    @ivar _path: The file name errors are reported against.
    """

    def __init__(self, path: str) -> None:
        self._path = path

    # -- helpers -------------------------------------------------------------

    def _fail(self, key: str, reason: str) -> ConfigError:
        return ConfigError(self._path, key, reason)

    def _table(self, value: Any, key: str) -> Mapping[str, Any]:
        if not isinstance(value, _MappingABC):
            raise self._fail(key, f"expected a table, got {_describe(value)}")
        return value

    def _array(self, value: Any, key: str, example: str) -> Sequence[Any]:
        if not isinstance(value, (list, tuple)):
            raise self._fail(
                key, f"expected an array ({example}), got {_describe(value)}"
            )
        return value

    def _known_keys(self, table: Mapping[str, Any], key: str, known: Sequence[str]) -> None:
        for name in table:
            if name not in known:
                close = difflib.get_close_matches(str(name), known, n=1)
                hint = f'did you mean "{close[0]}"? ' if close else ""
                raise self._fail(
                    _child(key, str(name)),
                    f"unknown key ({hint}known: {', '.join(sorted(known))})",
                )

    def _required(self, table: Mapping[str, Any], key: str, name: str) -> Any:
        if name not in table:
            raise self._fail(_child(key, name), "required key is missing")
        return table[name]

    def _string(self, value: Any, key: str) -> str:
        if not isinstance(value, str):
            raise self._fail(key, f"expected a string, got {_describe(value)}")
        return value

    def _nonempty_string(self, value: Any, key: str) -> str:
        text = self._string(value, key)
        if not text.strip():
            raise self._fail(key, "must not be empty")
        return text

    def _boolean(self, value: Any, key: str) -> bool:
        if not isinstance(value, bool):
            raise self._fail(
                key, f"expected a boolean (true or false), got {_describe(value)}"
            )
        return value

    def _integer(
        self, value: Any, key: str, minimum: int, maximum: Optional[int] = None
    ) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._fail(key, f"expected an integer, got {_describe(value)}")
        if value < minimum or (maximum is not None and value > maximum):
            if maximum is None:
                wanted = f"at least {minimum}"
            else:
                wanted = f"from {minimum} to {maximum}"
            raise self._fail(key, f"must be {wanted}, got {value}")
        return value

    def _positive_number(self, value: Any, key: str) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self._fail(key, f"expected a number, got {_describe(value)}")
        if not math.isfinite(value):
            raise self._fail(key, f"must be a finite number, got {value!r}")
        if value <= 0:
            raise self._fail(key, f"must be greater than 0, got {value!r}")
        return float(value)

    def _endpoint(self, value: Any, key: str) -> str:
        """
        Validate a Twisted server endpoint string by constructing (not
        listening on) its endpoint.
        """
        description = self._string(value, key)
        if not description.strip():
            raise self._fail(key, f"empty endpoint string ({_ENDPOINT_HINT})")
        try:
            endpoint = serverFromString(_NO_REACTOR, description)
        except Exception as e:
            # ValueError (bad number, unknown type), TypeError (missing or
            # unexpected argument), KeyError, OSError (ssl: missing key or
            # certificate file), ...
            detail = str(e) or type(e).__name__
            raise self._fail(
                key,
                f"invalid endpoint {_quote(description)}: {detail} "
                f"({_ENDPOINT_HINT})",
            ) from None
        port = getattr(endpoint, "_port", None)
        if isinstance(port, int) and not 0 <= port <= 65535:
            raise self._fail(
                key,
                f"invalid endpoint {_quote(description)}: "
                f"port must be from 0 to 65535, got {port}",
            )
        return description

    # -- the document --------------------------------------------------------

    def parse(self, data: Any) -> Config:
        top = self._table(data, "")
        self._known_keys(top, "", _TOP_KEYS)

        server = self._server(top.get("server", {}))
        health = self._health(top.get("health", {}), "health", HealthConfig())

        pools: Dict[str, Pool] = {}
        if "pools" in top:
            for name, value in self._table(top["pools"], "pools").items():
                pools[name] = self._pool(name, value, health)

        routes: List[Route] = []
        if "routes" in top:
            entries = self._array(top["routes"], "routes", "[[routes]] tables")
            for index, value in enumerate(entries):
                routes.append(self._route(value, f"routes[{index}]"))

        flat_pools, flat_routes = self._flat_form(top, pools, health)
        pools.update(flat_pools)
        routes.extend(flat_routes)

        if not pools:
            raise self._fail(
                "",
                "no backends configured: add a [pools.NAME] table with "
                "targets, or [[targets]] entries",
            )

        known = ", ".join(sorted(pools))
        for index, route in enumerate(routes):
            if route.pool not in pools:
                raise self._fail(
                    f"routes[{index}].pool",
                    f"no pool named {_quote(route.pool)} (pools: {known})",
                )
        if server.default_pool is not None and server.default_pool not in pools:
            raise self._fail(
                "server.default_pool",
                f"no pool named {_quote(server.default_pool)} (pools: {known})",
            )

        demo: Tuple[DemoBackend, ...] = ()
        if "demo" in top:
            demo = self._demos(top["demo"], server)

        tls = None
        if "tls" in top:
            used = {d: f"server.listen[{i}]" for i, d in enumerate(server.listen)}
            used.update({d.listen: f"demo[{i}].listen" for i, d in enumerate(demo)})
            tls = parse_tls(self, top["tls"], used)

        if server.workers > 1:
            # Workers share listening sockets the main process binds:
            # plain TCP addresses only.
            shared = [(f"server.listen[{i}]", d) for i, d in enumerate(server.listen)]
            if tls is not None:
                shared += [(f"tls.listen[{i}]", d) for i, d in enumerate(tls.listen)]
            for key_, description in shared:
                if not (description.startswith("tcp:") or description.startswith("tcp6:")):
                    raise self._fail(
                        key_,
                        f"with workers > 1 listeners must be tcp: endpoints, got "
                        f"{_quote(description)}",
                    )

        access = None
        if "access" in top:
            access = parse_access(top["access"], "access", self._fail)
        rate_limit = None
        if "rate_limit" in top:
            rate_limit = parse_rate_limit(top["rate_limit"], "rate_limit", self._fail)

        return Config(
            path=self._path,
            server=server,
            pools=MappingProxyType(pools),
            routes=tuple(routes),
            demo=demo,
            health=health,
            tls=tls,
            access=access,
            rate_limit=rate_limit,
        )

    # -- [server] ------------------------------------------------------------

    def _server(self, value: Any) -> ServerConfig:
        key = "server"
        table = self._table(value, key)
        self._known_keys(table, key, _SERVER_KEYS)
        settings: Dict[str, Any] = {}

        if "listen" in table:
            settings["listen"] = self._listen(table["listen"], "server.listen")
        for name in (
            "connect_timeout",
            "response_timeout",
            "idle_timeout",
            "client_header_timeout",
            "client_body_timeout",
            "client_request_timeout",
            "keepalive_timeout",
        ):
            if name in table:
                settings[name] = self._positive_number(table[name], _child(key, name))
        if "max_body_size" in table:
            settings["max_body_size"] = self._size(
                table["max_body_size"], "server.max_body_size"
            )
        for name, minimum in (
            ("max_request_line", 256),
            ("max_header_size", 1024),
            ("max_headers", 8),
            ("max_connections", 1),
        ):
            if name in table:
                settings[name] = self._integer(
                    table[name], _child(key, name), minimum, 1 << 30
                )
        if "encoded_slashes" in table:
            mode = self._string(table["encoded_slashes"], "server.encoded_slashes")
            if mode not in ("reject", "keep"):
                raise self._fail(
                    "server.encoded_slashes",
                    f'expected "reject" or "keep", got {_quote(mode)}',
                )
            settings["encoded_slashes"] = mode
        if "trusted_proxies" in table:
            settings["trusted_proxies"] = parse_trusted_proxies(
                table["trusted_proxies"], "server.trusted_proxies", self._fail
            )
        if "forwarded_header" in table:
            settings["forwarded_header"] = parse_forwarded_header(
                table["forwarded_header"], "server.forwarded_header", self._fail
            )
        if "request_id_header" in table:
            value = table["request_id_header"]
            if value is False:
                settings["request_id_header"] = None
            else:
                name = self._nonempty_string(value, "server.request_id_header")
                if not _BARE_KEY.match(name) or "_" in name:
                    raise self._fail(
                        "server.request_id_header",
                        f"not a header name: {_quote(name)} (use letters, digits and -)",
                    )
                settings["request_id_header"] = name
        if "workers" in table:
            value = table["workers"]
            if value == "auto":
                settings["workers"] = max(1, os.cpu_count() or 1)
            elif isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 256:
                settings["workers"] = value
            else:
                raise self._fail(
                    "server.workers",
                    f'expected a number from 1 to 256 or "auto", got {_describe(value)}',
                )
        if "proxy_protocol" in table:
            settings["proxy_protocol"] = self._boolean(
                table["proxy_protocol"], "server.proxy_protocol"
            )
        if "health_endpoint" in table:
            value = table["health_endpoint"]
            if value is False:
                settings["health_endpoint"] = None
            else:
                settings["health_endpoint"] = self._probe_path(
                    value, "server.health_endpoint"
                )
        if "access_log" in table:
            settings["access_log"] = self._access_log(
                table["access_log"], "server.access_log"
            )
        if "default_pool" in table:
            settings["default_pool"] = self._nonempty_string(
                table["default_pool"], "server.default_pool"
            )
        if "max_idle_per_target" in table:
            settings["max_idle_per_target"] = self._integer(
                table["max_idle_per_target"], "server.max_idle_per_target", 0
            )
        return ServerConfig(**settings)

    def _size(self, value: Any, key: str) -> int:
        """
        A size in bytes: an integer, or a string with a unit (C{"512k"},
        C{"10m"}, C{"1g"}, powers of 1024); 0 means no limit.
        """
        if isinstance(value, int) and not isinstance(value, bool):
            if value < 0:
                raise self._fail(key, f"must be at least 0, got {value}")
            return value
        if isinstance(value, str):
            match = _SIZE.match(value)
            if match:
                unit = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
                return int(match.group(1)) * unit[(match.group(2) or "").lower()]
        raise self._fail(
            key,
            'expected a size in bytes (1048576) or with a unit ("512k", "10m", "1g"), '
            f"got {_describe(value)}",
        )

    def _listen(self, value: Any, key: str) -> Tuple[str, ...]:
        if isinstance(value, str):
            return (self._endpoint(value, key),)
        if not isinstance(value, (list, tuple)):
            raise self._fail(
                key,
                "expected an endpoint string or an array of them "
                f'(e.g. ["tcp:8080"]), got {_describe(value)}',
            )
        if not value:
            raise self._fail(key, "at least one endpoint is required")
        seen: Dict[str, int] = {}
        for index, item in enumerate(value):
            item_key = f"{key}[{index}]"
            description = self._endpoint(item, item_key)
            if description in seen:
                raise self._fail(
                    item_key,
                    f"endpoint {_quote(description)} is listed twice "
                    f"(also {key}[{seen[description]}])",
                )
            seen[description] = index
        return tuple(value)

    def _access_log(self, value: Any, key: str) -> Optional[str]:
        if value is False:
            return None
        if not isinstance(value, str) or not value.strip():
            raise self._fail(
                key,
                '"-" for standard output, a file path, or false to disable, '
                f"got {_describe(value)}",
            )
        return value

    # -- pools and targets ---------------------------------------------------

    def _pool(self, name: str, value: Any, health: HealthConfig) -> Pool:
        key = _child("pools", name)
        if not name.strip():
            raise self._fail(key, "pool name must not be empty")
        table = self._table(value, key)
        self._known_keys(table, key, _POOL_KEYS)

        targets_key = _child(key, "targets")
        entries = self._array(
            self._required(table, key, "targets"),
            targets_key,
            'e.g. targets = ["127.0.0.1:8081"]',
        )
        if not entries:
            raise self._fail(targets_key, "at least one target is required")
        targets: List[Target] = []
        seen: Dict[str, int] = {}
        for index, entry in enumerate(entries):
            entry_key = f"{targets_key}[{index}]"
            target = self._target_entry(entry, entry_key)
            if target.address in seen:
                raise self._fail(
                    entry_key,
                    f"duplicate target {_quote(target.address)} "
                    f"(also targets[{seen[target.address]}])",
                )
            seen[target.address] = index
            targets.append(target)

        balance = "round_robin"
        if "balance" in table:
            balance_key = _child(key, "balance")
            balance = self._string(table["balance"], balance_key)
            if balance not in BALANCE_ALGORITHMS:
                raise self._fail(
                    balance_key,
                    f"unknown balance {_quote(balance)} "
                    f"(allowed: {', '.join(BALANCE_ALGORITHMS)})",
                )
        if "health" in table:
            health = self._health(table["health"], _child(key, "health"), health)
        targets = list(parse_pool_tls(self, table, key, targets))
        queueing: Dict[str, Any] = {}
        for name_, minimum in (("max_inflight", 0), ("queue_size", 0)):
            if name_ in table:
                queueing[name_] = self._integer(table[name_], _child(key, name_), minimum, 1 << 20)
        if "queue_timeout" in table:
            queueing["queue_timeout"] = self._positive_number(
                table["queue_timeout"], _child(key, "queue_timeout")
            )
        return Pool(
            name=name, targets=tuple(targets), balance=balance, health=health, **queueing
        )

    # -- health checking -----------------------------------------------------

    def _health(self, value: Any, key: str, base: HealthConfig) -> HealthConfig:
        """
        A C{[health]} or C{[pools.NAME.health]} table, laid over C{base}.
        """
        table = self._table(value, key)
        self._known_keys(table, key, _HEALTH_KEYS)
        settings: Dict[str, Any] = {}
        for name in ("interval", "timeout", "ejection_time", "max_ejection_time"):
            if name in table:
                settings[name] = self._positive_number(table[name], _child(key, name))
        if "slow_start" in table:
            slow_key = _child(key, "slow_start")
            slow = table["slow_start"]
            if isinstance(slow, bool) or not isinstance(slow, (int, float)) or not (
                math.isfinite(slow) and 0 <= slow <= 3600
            ):
                raise self._fail(
                    slow_key, f"expected seconds from 0 to 3600, got {_describe(slow)}"
                )
            settings["slow_start"] = float(slow)
        for name in ("rise", "fall", "passive_fail"):
            if name in table:
                settings[name] = self._integer(table[name], _child(key, name), 1, 1000)
        if "path" in table:
            settings["path"] = self._probe_path(table["path"], _child(key, "path"))
        if "host" in table:
            host = self._nonempty_string(table["host"], _child(key, "host"))
            if any(c.isspace() or ord(c) < 32 for c in host):
                raise self._fail(_child(key, "host"), "must not contain whitespace")
            settings["host"] = host
        if "expect_status" in table:
            settings["expect_status"] = self._status_ranges(
                table["expect_status"], _child(key, "expect_status")
            )
        health = base.__class__(**{**base.__dict__, **settings})
        if health.timeout > health.interval:
            # Name the key written here (the other may come from [health]).
            if "timeout" in table:
                raise self._fail(
                    _child(key, "timeout"),
                    f"must not be longer than the interval ({health.interval:g}s), "
                    f"got {health.timeout:g}",
                )
            raise self._fail(
                _child(key, "interval"),
                f"must not be shorter than the probe timeout ({health.timeout:g}s), "
                f"got {health.interval:g}",
            )
        if health.max_ejection_time < health.ejection_time:
            if "max_ejection_time" in table:
                raise self._fail(
                    _child(key, "max_ejection_time"),
                    f"must not be shorter than ejection_time ({health.ejection_time:g}s), "
                    f"got {health.max_ejection_time:g}",
                )
            raise self._fail(
                _child(key, "ejection_time"),
                f"must not be longer than max_ejection_time "
                f"({health.max_ejection_time:g}s), got {health.ejection_time:g}",
            )
        return health

    def _probe_path(self, value: Any, key: str) -> str:
        path = self._string(value, key)
        if not path.startswith("/"):
            raise self._fail(key, f'must start with "/", got {_quote(path)}')
        if any(c.isspace() or ord(c) < 32 for c in path):
            raise self._fail(key, "must not contain whitespace")
        return path

    def _status_ranges(self, value: Any, key: str) -> Tuple[Tuple[int, int], ...]:
        """
        C{expect_status}: a status, a range C{"200-399"}, or an array of
        them.
        """
        items = value if isinstance(value, (list, tuple)) else [value]
        if not items:
            raise self._fail(key, "at least one status is required")
        ranges = []
        for index, item in enumerate(items):
            item_key = f"{key}[{index}]" if isinstance(value, (list, tuple)) else key
            if isinstance(item, int) and not isinstance(item, bool):
                low = high = item
            elif isinstance(item, str) and re.match(r"^\s*\d{3}\s*-\s*\d{3}\s*$", item):
                low, high = (int(part) for part in item.split("-"))
            else:
                raise self._fail(
                    item_key,
                    'expected a status code (200) or a range ("200-399"), '
                    f"got {_describe(item)}",
                )
            if not 100 <= low <= high <= 599:
                raise self._fail(
                    item_key, f"not a status range from 100 to 599: {low}-{high}"
                )
            ranges.append((low, high))
        return tuple(ranges)

    def _target_entry(self, value: Any, key: str) -> Target:
        """
        A target given as a string, or as a table with C{address}, C{weight}
        and C{health_check_endpoint}.
        """
        if isinstance(value, str):
            return self._target_string(value, key)
        if not isinstance(value, _MappingABC):
            raise self._fail(
                key,
                f"expected a target string ({_TARGET_FORMS}) or a table with "
                f"an address, got {_describe(value)}",
            )
        self._known_keys(value, key, _TARGET_KEYS)
        address_key = _child(key, "address")
        address = self._string(self._required(value, key, "address"), address_key)
        target = self._target_string(address, address_key)
        weight = 1
        if "weight" in value:
            weight = self._integer(value["weight"], _child(key, "weight"), 1, _MAX_WEIGHT)
        health = None
        if "health_check_endpoint" in value:
            health_key = _child(key, "health_check_endpoint")
            health = self._string(value["health_check_endpoint"], health_key)
            if not health.startswith("/"):
                raise self._fail(
                    health_key, f'must start with "/", got {_quote(health)}'
                )
            if any(c.isspace() for c in health):
                raise self._fail(health_key, "must not contain whitespace")
        return Target(
            scheme=target.scheme,
            host=target.host,
            port=target.port,
            weight=weight,
            health_check_endpoint=health,
        )

    def _target_string(self, text: str, key: str) -> Target:
        """
        Parse C{"host:port"}, C{"http://host[:port]"} or
        C{"https://host[:port]"}; IPv6 hosts go in brackets.
        """
        original = text
        text = text.strip()
        if not text:
            raise self._fail(key, f"empty target address (expected {_TARGET_FORMS})")
        if any(c.isspace() for c in text):
            raise self._fail(key, f"target {_quote(original)} contains whitespace")

        url = _SCHEME_URL.match(text)
        if url:
            scheme = url.group(1).lower()
            if scheme not in ("http", "https"):
                raise self._fail(
                    key,
                    f"unsupported scheme {_quote(scheme)} in target "
                    f"{_quote(original)} (use http or https)",
                )
            rest = url.group(2)
            cut = min([rest.find(c) for c in "/?#" if c in rest] or [len(rest)])
            authority, tail = rest[:cut], rest[cut:]
            if tail not in ("", "/"):
                raise self._fail(
                    key,
                    f"target {_quote(original)} must not have a path, query or "
                    "fragment: lbproxy forwards the client's own path",
                )
        else:
            if "://" in text:
                raise self._fail(
                    key, f"invalid scheme in target {_quote(original)} (use http or https)"
                )
            if any(c in text for c in "/?#"):
                raise self._fail(
                    key,
                    f"target {_quote(original)} must not have a path, query or "
                    f"fragment (expected {_TARGET_FORMS})",
                )
            scheme = None
            authority = text
        if "@" in authority:
            raise self._fail(
                key, f"target {_quote(original)} must not contain user information"
            )

        if authority.startswith("["):
            end = authority.find("]")
            if end == -1:
                raise self._fail(key, f"unclosed '[' in target {_quote(original)}")
            literal = authority[1:end]
            try:
                host = str(ipaddress.IPv6Address(literal))
            except ValueError:
                raise self._fail(
                    key, f"invalid IPv6 address {_quote(literal)} in target"
                ) from None
            after = authority[end + 1 :]
            if after == "":
                port_text: Optional[str] = None
            elif after.startswith(":"):
                port_text = after[1:]
            else:
                raise self._fail(
                    key,
                    f"unexpected {_quote(after)} after the IPv6 address in "
                    f'target {_quote(original)} (expected "[addr]:port")',
                )
        else:
            if authority.count(":") > 1:
                raise self._fail(
                    key,
                    f"target {_quote(original)}: IPv6 addresses must be in "
                    'brackets, e.g. "[::1]:8080"',
                )
            host, colon, port_text_or_empty = authority.partition(":")
            port_text = port_text_or_empty if colon else None
            host = host.lower()
            problem = _hostname_problem(host)
            if problem:
                raise self._fail(key, f"target {_quote(original)}: {problem}")

        if port_text is None:
            if scheme is None:
                raise self._fail(
                    key,
                    f"target {_quote(original)} has no port (expected "
                    '"host:port", e.g. "127.0.0.1:8080")',
                )
            port = 443 if scheme == "https" else 80
        else:
            port = self._port(port_text, key, original)
        return Target(scheme=scheme or "http", host=host, port=port)

    def _port(self, text: str, key: str, original: str) -> int:
        if not text:
            raise self._fail(
                key, f"target {_quote(original)} has an empty port after ':'"
            )
        if not (text.isascii() and text.isdigit()):
            raise self._fail(
                key,
                f"target {_quote(original)}: port must be a number from 1 to "
                f"65535, got {_quote(text)}",
            )
        port = int(text)
        if not 1 <= port <= 65535:
            raise self._fail(
                key,
                f"target {_quote(original)}: port must be from 1 to 65535, "
                f"got {port}",
            )
        return port

    # -- routes ----------------------------------------------------------------

    def _route(self, value: Any, key: str) -> Route:
        table = self._table(value, key)
        self._known_keys(table, key, _ROUTE_KEYS)
        pool_key = _child(key, "pool")
        pool = self._nonempty_string(self._required(table, key, "pool"), pool_key)
        host = None
        if "host" in table:
            host = self._route_host(table["host"], _child(key, "host"))
        path = "/"
        if "path" in table:
            path = self._route_path(table["path"], _child(key, "path"))
        strip_prefix = False
        if "strip_prefix" in table:
            strip_prefix = self._boolean(
                table["strip_prefix"], _child(key, "strip_prefix")
            )
        max_body_size = None
        if "max_body_size" in table:
            max_body_size = self._size(table["max_body_size"], _child(key, "max_body_size"))
        policies: Dict[str, Any] = {}
        for name, parse in (
            ("access", parse_access),
            ("rate_limit", parse_rate_limit),
            ("cors", parse_cors),
            ("headers", parse_header_rules),
        ):
            if name in table:
                policies[name] = parse(table[name], _child(key, name), self._fail)
        return Route(
            pool=pool,
            host=host,
            path=path,
            strip_prefix=strip_prefix,
            max_body_size=max_body_size,
            **policies,
        )

    def _route_host(self, value: Any, key: str) -> str:
        """
        Normalize a route's host: lower case, no port, no trailing dot;
        C{"*."} is allowed only as a prefix.
        """
        text = self._string(value, key)
        name = text.strip().lower()
        if not name:
            raise self._fail(key, "must not be empty (omit host to match any host)")
        if any(c.isspace() for c in name):
            raise self._fail(key, f"host {_quote(text)} must not contain spaces")

        if name.startswith("["):
            end = name.find("]")
            literal = name[1:end] if end != -1 else ""
            rest = name[end + 1 :] if end != -1 else ""
            try:
                address = ipaddress.IPv6Address(literal)
            except ValueError:
                raise self._fail(key, f"invalid IPv6 host {_quote(text)}") from None
            if rest and not (rest.startswith(":") and rest[1:].isdigit()):
                raise self._fail(key, f"invalid port in host {_quote(text)}")
            # Stored without brackets, as the router reduces Host headers.
            return str(address)

        if name.count(":") > 1:
            try:
                return str(ipaddress.IPv6Address(name))
            except ValueError:
                raise self._fail(
                    key,
                    'IPv6 hosts must be in brackets, e.g. "[::1]" or "[::1]:8080", '
                    f"got {_quote(text)}",
                ) from None
        name, colon, port = name.partition(":")
        if colon and not (port.isascii() and port.isdigit()):
            raise self._fail(key, f"invalid port in host {_quote(text)}")
        if name.endswith("."):
            name = name[:-1]
        if name == "*":
            raise self._fail(
                key,
                f'invalid host {_quote(text)}: a bare "*" is not a host pattern; '
                'omit host to match any host, or use "*.example.com"',
            )
        wildcard = name.startswith("*.")
        rest = name[2:] if wildcard else name
        if "*" in rest:
            raise self._fail(
                key,
                f'invalid host {_quote(text)}: "*" is only allowed as a leading '
                '"*." (e.g. "*.example.com")',
            )
        problem = _hostname_problem(rest)
        if problem:
            raise self._fail(key, f"invalid host {_quote(text)}: {problem}")
        return "*." + rest if wildcard else rest

    def _route_path(self, value: Any, key: str) -> str:
        """
        Normalize a path prefix: merge repeated slashes and drop the
        trailing one; refuse dot-segments, queries and fragments.
        """
        path = self._string(value, key)
        if not path.startswith("/"):
            raise self._fail(key, f'must start with "/", got {_quote(path)}')
        if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in path):
            raise self._fail(
                key, f"path {_quote(path)} must not contain whitespace or control characters"
            )
        if "?" in path or "#" in path:
            raise self._fail(
                key, f"path {_quote(path)} must not contain a query or fragment"
            )
        for segment in path.split("/"):
            if unquote(segment) in (".", ".."):
                raise self._fail(
                    key,
                    f'path {_quote(path)} must not contain "." or ".." segments',
                )
        path = re.sub("/{2,}", "/", path)
        if len(path) > 1 and path.endswith("/"):
            path = path[:-1]
        return path

    # -- the BWSS flat form ----------------------------------------------------

    def _flat_form(
        self, top: Mapping[str, Any], pools: Mapping[str, Pool], health: HealthConfig
    ) -> Tuple[Dict[str, Pool], List[Route]]:
        """
        Build pools and routes from top-level C{[[targets]]} and
        C{[[path_routes]]}: one single-target pool and route per path route,
        then a C{"default"} pool of the remaining targets behind a catch-all
        route.
        """
        targets: List[Target] = []
        seen: Dict[str, int] = {}
        if "targets" in top:
            entries = self._array(top["targets"], "targets", "[[targets]] tables")
            for index, entry in enumerate(entries):
                entry_key = f"targets[{index}]"
                target = self._target_entry(entry, entry_key)
                if target.address in seen:
                    raise self._fail(
                        entry_key if isinstance(entry, str)
                        else _child(entry_key, "address"),
                        f"duplicate target {_quote(target.address)} "
                        f"(also targets[{seen[target.address]}])",
                    )
                seen[target.address] = index
                targets.append(target)

        new_pools: Dict[str, Pool] = {}
        routes: List[Route] = []
        routed: Set[str] = set()
        if "path_routes" in top:
            entries = self._array(
                top["path_routes"], "path_routes", "[[path_routes]] tables"
            )
            for index, entry in enumerate(entries):
                key = f"path_routes[{index}]"
                table = self._table(entry, key)
                self._known_keys(table, key, _PATH_ROUTE_KEYS)
                path = self._route_path(self._required(table, key, "path"), _child(key, "path"))
                address_key = _child(key, "address")
                address = self._string(self._required(table, key, "address"), address_key)
                target = self._target_string(address, address_key)
                if target.address in seen:
                    target = targets[seen[target.address]]
                routed.add(target.address)
                name = key
                if name in pools:
                    raise self._fail(
                        _child("pools", name),
                        f"this pool name is reserved for the pool built from "
                        f"[[path_routes]] entry {index}",
                    )
                new_pools[name] = Pool(name=name, targets=(target,), health=health)
                routes.append(Route(pool=name, path=path))

        remaining = tuple(t for t in targets if t.address not in routed)
        if remaining:
            if _FLAT_DEFAULT_POOL in pools:
                raise self._fail(
                    _child("pools", _FLAT_DEFAULT_POOL),
                    'conflicts with the "default" pool built from [[targets]]; '
                    "rename this pool or move those targets into it",
                )
            new_pools[_FLAT_DEFAULT_POOL] = Pool(
                name=_FLAT_DEFAULT_POOL, targets=remaining, health=health
            )
            routes.append(Route(pool=_FLAT_DEFAULT_POOL, path="/"))
        return new_pools, routes

    # -- [[demo]] --------------------------------------------------------------

    def _demos(self, value: Any, server: ServerConfig) -> Tuple[DemoBackend, ...]:
        entries = self._array(value, "demo", "[[demo]] tables")
        demos: List[DemoBackend] = []
        names: Dict[str, int] = {}
        listens: Dict[str, str] = {
            description: f"server.listen[{index}]"
            for index, description in enumerate(server.listen)
        }
        for index, entry in enumerate(entries):
            key = f"demo[{index}]"
            table = self._table(entry, key)
            self._known_keys(table, key, _DEMO_KEYS)
            name_key = _child(key, "name")
            name = self._nonempty_string(self._required(table, key, "name"), name_key)
            if name in names:
                raise self._fail(
                    name_key, f"duplicate demo name {_quote(name)} (also demo[{names[name]}])"
                )
            names[name] = index
            listen_key = _child(key, "listen")
            listen = self._endpoint(self._required(table, key, "listen"), listen_key)
            if listen in listens:
                raise self._fail(
                    listen_key,
                    f"endpoint {_quote(listen)} is already used by {listens[listen]}",
                )
            listens[listen] = listen_key
            text = ""
            if "text" in table:
                text = self._string(table["text"], _child(key, "text"))
            demos.append(DemoBackend(name=name, listen=listen, text=text))
        return tuple(demos)


def _hostname_problem(host: str) -> Optional[str]:
    """
    Check a lower-cased DNS name or IPv4 literal.

    @return: What is wrong with C{host}, or L{None} if it is acceptable.
    """
    if not host:
        return "empty host"
    if len(host) > 253:
        return "host name is longer than 253 characters"
    labels = host.split(".")
    if labels[-1].isdigit():
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            return f"invalid IPv4 address {_quote(host)}"
        return None
    for label in labels:
        if not label:
            return f"empty label in host name {_quote(host)}"
        if not _HOST_LABEL.match(label):
            return (
                f"invalid host name {_quote(host)} (letters, digits, "
                '"-" and "_" only, separated by dots)'
            )
    return None

