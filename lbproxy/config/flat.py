# -*- test-case-name: tests.test_config -*-
"""
The flat form of a configuration: top-level C{[[targets]]} and
C{[[path_routes]]}, without C{[pools.NAME]} or C{[[routes]]}, turned into
pools and routes.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Set, Tuple

from lbproxy.config.errors import child_key, quote
from lbproxy.config.health import HealthConfig
from lbproxy.config.pools import Pool
from lbproxy.config.reader import Reader
from lbproxy.config.routes import Route, parse_route_path
from lbproxy.config.targets import Target, parse_target, parse_target_entry

__all__ = ["FLAT_DEFAULT_POOL", "parse_flat_form"]

#: The pool built from the flat form's C{[[targets]]}.
FLAT_DEFAULT_POOL = "default"

_PATH_ROUTE_KEYS = ("address", "path")


def parse_flat_form(
    top: Mapping[str, Any],
    reader: Reader,
    pools: Mapping[str, Pool],
    health: HealthConfig,
) -> Tuple[Dict[str, Pool], List[Route]]:
    """
    Build pools and routes from top-level C{[[targets]]} and
    C{[[path_routes]]}: one single-target pool and route per path route,
    then a C{"default"} pool of the remaining targets behind a catch-all
    route.

    @param top: The whole document.
    @param pools: The pools of C{[pools.NAME]} tables, whose names the
        built pools must not take.
    @param health: The C{[health]} settings, for the built pools.
    @return: The new pools by name, and their routes.
    """
    targets: List[Target] = []
    seen: Dict[str, int] = {}
    if "targets" in top:
        entries = reader.array(top["targets"], "targets", "[[targets]] tables")
        for index, entry in enumerate(entries):
            entry_key = f"targets[{index}]"
            target = parse_target_entry(entry, entry_key, reader)
            if target.address in seen:
                raise reader.fail(
                    entry_key if isinstance(entry, str) else child_key(entry_key, "address"),
                    f"duplicate target {quote(target.address)} "
                    f"(also targets[{seen[target.address]}])",
                )
            seen[target.address] = index
            targets.append(target)

    new_pools: Dict[str, Pool] = {}
    routes: List[Route] = []
    routed: Set[str] = set()
    if "path_routes" in top:
        entries = reader.array(top["path_routes"], "path_routes", "[[path_routes]] tables")
        for index, entry in enumerate(entries):
            key = f"path_routes[{index}]"
            table = reader.table(entry, key, _PATH_ROUTE_KEYS)
            path = parse_route_path(
                reader.required(table, key, "path"), child_key(key, "path"), reader
            )
            address_key = child_key(key, "address")
            address = reader.string(reader.required(table, key, "address"), address_key)
            target = parse_target(address, address_key, reader)
            if target.address in seen:
                target = targets[seen[target.address]]
            routed.add(target.address)
            name = key
            if name in pools:
                raise reader.fail(
                    child_key("pools", name),
                    f"this pool name is reserved for the pool built from "
                    f"[[path_routes]] entry {index}",
                )
            new_pools[name] = Pool(name=name, targets=(target,), health=health)
            routes.append(Route(pool=name, path=path))

    remaining = tuple(t for t in targets if t.address not in routed)
    if remaining:
        if FLAT_DEFAULT_POOL in pools:
            raise reader.fail(
                child_key("pools", FLAT_DEFAULT_POOL),
                'conflicts with the "default" pool built from [[targets]]; '
                "rename this pool or move those targets into it",
            )
        new_pools[FLAT_DEFAULT_POOL] = Pool(
            name=FLAT_DEFAULT_POOL, targets=remaining, health=health
        )
        routes.append(Route(pool=FLAT_DEFAULT_POOL, path="/"))
    return new_pools, routes
