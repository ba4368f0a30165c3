# -*- test-case-name: tests.test_tcp -*-
"""
The C{[[tcp]]} entries: layer 4 services that relay every connection's
bytes, unchanged, to a target of a pool.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Dict, List, Mapping, Optional, Tuple

from lbproxy.config.errors import child_key, quote
from lbproxy.config.reader import Reader

__all__ = [
    "TCPService", "check_relay_pool", "connect_checked", "parse_tcp_services",
    "SEND_PROXY_VERSIONS",
]

_TCP_KEYS = ("idle_timeout", "listen", "max_connections", "pool", "send_proxy")

#: The PROXY protocol versions C{send_proxy} accepts.
SEND_PROXY_VERSIONS = ("v1", "v2")


@dataclass(frozen=True)
class TCPService:
    """
    One C{[[tcp]]} entry.

    @ivar listen: A Twisted server endpoint string.
    @ivar pool: The pool whose targets get the connections (its balance,
        health checks and passive ejection apply).
    @ivar idle_timeout: Seconds without a byte either way after which both
        connections are closed.
    @ivar send_proxy: C{"v1"} or C{"v2"} to send the backend a PROXY
        protocol header first, or L{None}.
    @ivar max_connections: Most client connections at once; more are
        closed as they come.
    """

    listen: str
    pool: str
    idle_timeout: float = 3600.0
    send_proxy: Optional[str] = None
    max_connections: int = 10000


def parse_tcp_services(
    value: Any, key: str, reader: Reader, used: Mapping[str, str], pools: Mapping[str, Any]
) -> Tuple[TCPService, ...]:
    """
    The C{[[tcp]]} array of tables.

    @param used: Endpoint strings already listened on, mapped to the key
        that names them; a service may not reuse one.
    @param pools: The configured pools by name: each service's pool must
        be one, with plain (not C{https://}) targets.
    """
    entries = reader.array(value, key, "[[tcp]] tables")
    services: List[TCPService] = []
    listens: Dict[str, str] = dict(used)
    for index, entry in enumerate(entries):
        entry_key = f"{key}[{index}]"
        table = reader.table(entry, entry_key, _TCP_KEYS)
        listen_key = child_key(entry_key, "listen")
        listen = reader.unused_endpoint(
            reader.required(table, entry_key, "listen"), listen_key, listens
        )
        pool_key = child_key(entry_key, "pool")
        pool = reader.nonempty_string(reader.required(table, entry_key, "pool"), pool_key)
        check_relay_pool(
            pools, pool, pool_key, reader, "a TCP service relays bytes as they are"
        )
        settings: Dict[str, Any] = {"listen": listen, "pool": pool}
        if "idle_timeout" in table:
            settings["idle_timeout"] = reader.positive_number(
                table["idle_timeout"], child_key(entry_key, "idle_timeout")
            )
        if "max_connections" in table:
            settings["max_connections"] = reader.integer(
                table["max_connections"], child_key(entry_key, "max_connections"), 1, 1 << 30
            )
        if "send_proxy" in table:
            proxy_key = child_key(entry_key, "send_proxy")
            version = reader.string(table["send_proxy"], proxy_key)
            if version not in SEND_PROXY_VERSIONS:
                raise reader.fail(proxy_key, f'expected "v1" or "v2", got {quote(version)}')
            settings["send_proxy"] = version
        services.append(TCPService(**settings))
    return tuple(services)


def connect_checked(pools: Mapping[str, Any], names) -> Dict[str, Any]:
    """
    C{pools} with those named in C{names} (the pools of C{[[tcp]]}
    services and TLS passthrough) checked by a TCP connect when their
    health settings name no HTTP path (and no target has its own).
    """
    out = dict(pools)
    for name in set(names):
        pool = out[name]
        health = pool.health
        if health.path is None and not any(t.health_check_endpoint for t in pool.targets):
            out[name] = replace(pool, health=replace(health, connect_check=True))
    return out


def check_relay_pool(pools: Mapping[str, Any], pool: str, key: str, reader: Reader,
                     why: str) -> None:
    """
    C{pool} (named at C{key}) exists and a byte relay may use it: its
    targets are plain C{host:port}, since the relay never speaks HTTP or
    TLS to them itself.

    @param why: what the relay does, for the error ("a TCP service relays
        bytes as they are").
    """
    if pool not in pools:
        known = ", ".join(sorted(pools))
        raise reader.fail(key, f"no pool named {quote(pool)} (pools: {known})")
    for target in pools[pool].targets:
        if target.scheme != "http":
            raise reader.fail(
                key,
                f"pool {quote(pool)} has the target {quote(target.url)}: {why}, "
                "so its targets are host:port",
            )
