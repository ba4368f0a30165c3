# -*- test-case-name: tests.test_proxy -*-
"""
The whole running configuration as one object: routes with their chains
of stages, pools, and the settings the request path reads.

A reload (a later feature) builds a new L{Runtime} and swaps it in; nothing
patches a running one in place.
"""

from __future__ import annotations

import math
from typing import Dict, Optional

from lbproxy.balance.pool import Pool
from lbproxy.config import Config, Route
from lbproxy.runtime.chains import CompiledRoute, build_chains
from lbproxy.runtime.services import Services
from lbproxy.runtime.routing import RouteTable


class Runtime:
    """
    @ivar config: the validated configuration this was built from.
    @ivar routes: the compiled route table.
    @ivar pools: runtime pools by name.
    @ivar defaultRoute: the route for requests no route matches, or L{None}.
    @ivar health: each pool's health settings by name.
    @ivar entry: the L{lbproxy.pipeline.chain.Chain} every request starts
        with; its terminal routes.
    @ivar unrouted: the chain of requests no route matches.
    """

    def __init__(self, config: Config, services: Optional[Services] = None) -> None:
        self.config = config
        self.routes = RouteTable(config.routes)
        self.pools: Dict[str, Pool] = {}
        for name, pool in config.pools.items():
            runtime = Pool(name, pool.targets, pool.balance)
            # A client turned away with 503 may retry after one probe
            # interval, the soonest a target can come back.
            runtime.retryAfter = b"%d" % (max(1, math.ceil(pool.health.interval)),)
            runtime.maxInflight = pool.max_inflight
            runtime.queueSize = pool.queue_size
            runtime.queueTimeout = pool.queue_timeout
            self.pools[name] = runtime
        self.health = {name: pool.health for name, pool in config.pools.items()}

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
