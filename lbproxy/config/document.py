# -*- test-case-name: tests.test_config -*-
"""
A whole configuration document: reading the file, each section through
its own module, and the checks across sections (every route's pool
exists, listeners are not shared, workers need TCP listeners).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Dict, List, Mapping, Optional, Tuple

try:
    import tomllib
except ImportError:  # Python < 3.11
    import tomli as tomllib  # type: ignore[no-redef]

from lbproxy.config.access import AccessConfig, parse_access
from lbproxy.config.admin import AdminConfig, check_admin_listen, parse_admin
from lbproxy.config.cache import CacheConfig, parse_cache
from lbproxy.config.demo import DemoBackend, parse_demos
from lbproxy.config.errors import ConfigError, quote
from lbproxy.config.etcd import EtcdConfig, parse_etcd
from lbproxy.config.flat import parse_flat_form
from lbproxy.config.health import HealthConfig, parse_health
from lbproxy.config.passthrough import check_passthrough
from lbproxy.config.pools import Pool, parse_pool
from lbproxy.config.traffic import check_traffic
from lbproxy.config.ratelimit import RateLimitConfig, parse_rate_limit
from lbproxy.config.reader import Reader
from lbproxy.config.routes import Route, parse_route
from lbproxy.config.server import ServerConfig, parse_server
from lbproxy.config.tcp import TCPService, connect_checked, parse_tcp_services
from lbproxy.config.tls import TLSConfig, parse_tls

__all__ = ["Config", "load_config", "parse_config"]

_TOP_KEYS = (
    "access",
    "admin",
    "cache",
    "demo",
    "etcd",
    "health",
    "path_routes",
    "pools",
    "rate_limit",
    "routes",
    "server",
    "targets",
    "tcp",
    "tls",
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
    @ivar health: The C{[health]} defaults.
    @ivar tls: The C{[tls]} listeners, or L{None}.
    @ivar access: The global C{[access]} rules, or L{None}.
    @ivar rate_limit: The global C{[rate_limit]}, or L{None}.
    @ivar admin: The C{[admin]} listener, or L{None} (none runs).
    @ivar tcp: The C{[[tcp]]} services.
    @ivar cache: The C{[cache]} settings (defaults when absent).
    @ivar etcd: The C{[etcd]} source of shared pools and routes, or L{None}.
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
    admin: Optional[AdminConfig] = None
    tcp: Tuple[TCPService, ...] = ()
    cache: CacheConfig = CacheConfig()
    etcd: Optional[EtcdConfig] = None


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
    reader = Reader(path)
    top = reader.table(data, "", _TOP_KEYS)

    server = parse_server(top.get("server", {}), "server", reader)
    health = parse_health(top.get("health", {}), "health", reader, HealthConfig())

    pools: Dict[str, Pool] = {}
    if "pools" in top:
        for name, value in reader.table(top["pools"], "pools").items():
            pools[name] = parse_pool(name, value, reader, health)

    routes: List[Route] = []
    if "routes" in top:
        entries = reader.array(top["routes"], "routes", "[[routes]] tables")
        for index, value in enumerate(entries):
            routes.append(parse_route(value, f"routes[{index}]", reader))

    flat_pools, flat_routes = parse_flat_form(top, reader, pools, health)
    pools.update(flat_pools)
    routes.extend(flat_routes)
    check_traffic(reader, server, pools, routes)
    _check_pools(reader, server, pools, routes)

    used = {d: f"server.listen[{i}]" for i, d in enumerate(server.listen)}
    demo: Tuple[DemoBackend, ...] = ()
    if "demo" in top:
        demo = parse_demos(top["demo"], "demo", reader, used)

    tls = None
    if "tls" in top:
        used.update({d.listen: f"demo[{i}].listen" for i, d in enumerate(demo)})
        tls = parse_tls(top["tls"], "tls", reader, used)
        check_passthrough(reader, tls.passthrough, pools)
    _check_workers(reader, server, tls)
    tcp: Tuple[TCPService, ...] = ()
    if "tcp" in top:
        used.update({d.listen: f"demo[{i}].listen" for i, d in enumerate(demo)})
        if tls is not None:
            used.update({d: f"tls.listen[{i}]" for i, d in enumerate(tls.listen)})
        tcp = parse_tcp_services(top["tcp"], "tcp", reader, used, pools)
    relayed = [service.pool for service in tcp]
    if tls is not None:
        relayed += [pool for _, pool in tls.passthrough]
    if relayed:
        pools = connect_checked(pools, relayed)

    access = None
    if "access" in top:
        access = parse_access(top["access"], "access", reader)
    rate_limit = None
    if "rate_limit" in top:
        rate_limit = parse_rate_limit(top["rate_limit"], "rate_limit", reader)
    cache = parse_cache(top["cache"], "cache", reader) if "cache" in top else CacheConfig()

    etcd = parse_etcd(top["etcd"], "etcd", reader) if "etcd" in top else None

    admin = None
    if "admin" in top:
        admin = parse_admin(top["admin"], "admin", reader)
        if tls is not None:
            used.update({d: f"tls.listen[{i}]" for i, d in enumerate(tls.listen)})
        check_admin_listen(admin, used, reader)

    return Config(
        path=path,
        server=server,
        pools=MappingProxyType(pools),
        routes=tuple(routes),
        demo=demo,
        health=health,
        tls=tls,
        access=access,
        rate_limit=rate_limit,
        admin=admin,
        tcp=tcp,
        cache=cache,
        etcd=etcd,
    )


def _check_pools(
    reader: Reader, server: ServerConfig, pools: Mapping[str, Pool], routes: List[Route]
) -> None:
    """
    There is a pool, and every route's pool and the default pool exist.
    """
    if not pools:
        raise reader.fail(
            "",
            "no backends configured: add a [pools.NAME] table with "
            "targets, or [[targets]] entries",
        )
    known = ", ".join(sorted(pools))
    for index, route in enumerate(routes):
        if route.pool not in pools:
            raise reader.fail(
                f"routes[{index}].pool",
                f"no pool named {quote(route.pool)} (pools: {known})",
            )
    if server.default_pool is not None and server.default_pool not in pools:
        raise reader.fail(
            "server.default_pool",
            f"no pool named {quote(server.default_pool)} (pools: {known})",
        )


def _check_workers(reader: Reader, server: ServerConfig, tls: Optional[TLSConfig]) -> None:
    """
    Workers share listening sockets the main process binds: with more than
    one, plain TCP addresses only.
    """
    if server.workers <= 1:
        return
    shared = [(f"server.listen[{i}]", d) for i, d in enumerate(server.listen)]
    if tls is not None:
        shared += [(f"tls.listen[{i}]", d) for i, d in enumerate(tls.listen)]
    for key, description in shared:
        if not (description.startswith("tcp:") or description.startswith("tcp6:")):
            raise reader.fail(
                key,
                f"with workers > 1 listeners must be tcp: endpoints, got "
                f"{quote(description)}",
            )
