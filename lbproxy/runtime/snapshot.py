# -*- test-case-name: tests.test_proxy -*-
"""
The whole running configuration as one object: routes with their chains
of stages, pools, and the settings the request path reads.

A reload (a later feature) builds a new L{Runtime} and swaps it in
(L{build_runtime}); nothing patches a running one in place.  What must
outlive a runtime, the state of each target, is in a
L{lbproxy.runtime.targets.TargetRegistry} that every runtime's pools share.
"""

from __future__ import annotations

from typing import Dict, Optional

from lbproxy.balance.pool import Pool
from lbproxy.config import Config, Route
from lbproxy.runtime.chains import CompiledRoute, build_chains
from lbproxy.runtime.pools import build_pools
from lbproxy.runtime.services import Services
from lbproxy.runtime.routing import RouteTable
from lbproxy.runtime.targets import TargetRegistry


class Runtime:
    """
    @ivar config: the validated configuration this was built from.
    @ivar routes: the compiled route table.
    @ivar pools: runtime pools by name, on the registry's entries.
    @ivar defaultRoute: the route for requests no route matches, or L{None}.
    @ivar entry: the L{lbproxy.pipeline.chain.Chain} every request starts
        with; its terminal routes.
    @ivar unrouted: the chain of requests no route matches.
    """

    def __init__(
        self, config: Config, registry: TargetRegistry, services: Optional[Services] = None
    ) -> None:
        """
        @param registry: where the pools' members find their targets'
            state (see also L{build_runtime}).
        """
        self.config = config
        self.routes = RouteTable(config.routes)
        self.pools: Dict[str, Pool] = build_pools(config, registry)

        default = config.server.default_pool
        self.defaultRoute: Optional[Route] = (
            Route(pool=default) if default is not None else None
        )
        routes = list(config.routes)
        if self.defaultRoute is not None:
            routes.append(self.defaultRoute)
        self.entry, self.unrouted, self._compiled = build_chains(
            config, self.pools, routes, services or Services(None), self.match
        )

    def match(self, host: Optional[str], path: str) -> Optional[CompiledRoute]:
        """
        The compiled route for a request, or L{None} (the unrouted chain
        answers it).

        @param host: the normalized host, or L{None}.
        @param path: the normalized path.
        """
        route = self.routes.match(host, path) or self.defaultRoute
        if route is None:
            return None
        return self._compiled[id(route)]


def build_runtime(
    config: Config, registry: TargetRegistry, services: Optional[Services] = None
) -> Runtime:
    """
    The runtime of a configuration, on C{registry}'s entries: the targets
    it shares with the runtime it replaces keep their state (health,
    ejections, in-flight counts, slow start), new ones start fresh, and
    those it drops are retired (no longer probed; the requests on them
    finish on the old runtime).  Swapping it in is one assignment::

        resource.runtime = build_runtime(config, registry, services)
    """
    runtime = Runtime(config, registry, services)
    registry.retain(
        (pool.name, member.state) for pool in runtime.pools.values() for member in pool.members
    )
    return runtime
