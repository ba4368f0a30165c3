# -*- test-case-name: tests.test_proxy -*-
"""
The whole running configuration as one object: routes, pools and their
runtime state, and the settings the request path reads.

A reload (a later feature) builds a new L{Runtime} and swaps it in; nothing
patches a running one in place.
"""

from __future__ import annotations

import math
from typing import Dict, Optional, Tuple

from lbproxy.balancing import Pool
from lbproxy.config import Config, Route
from lbproxy.routing import RouteTable


class Runtime:
    """
    @ivar config: the validated configuration this was built from.
    @ivar routes: the compiled route table.
    @ivar pools: runtime pools by name.
    @ivar defaultRoute: the route for requests no route matches, or L{None}.
    @ivar health: each pool's health settings by name.
    """

    def __init__(self, config: Config) -> None:
        self.config = config
        self.routes = RouteTable(config.routes)
        self.pools: Dict[str, Pool] = {}
        for name, pool in config.pools.items():
            runtime = Pool(name, pool.targets, pool.balance)
            # A client turned away with 503 may retry after one probe
            # interval, the soonest a target can come back.
            runtime.retryAfter = b"%d" % (max(1, math.ceil(pool.health.interval)),)
            self.pools[name] = runtime
        self.health = {name: pool.health for name, pool in config.pools.items()}
        default = config.server.default_pool
        self.defaultRoute: Optional[Route] = (
            Route(pool=default) if default is not None else None
        )

    def route(self, host: Optional[str], path: str) -> Optional[Tuple[Route, Pool]]:
        """
        The route and pool for a request, or L{None} (answer 404).

        @param host: the normalized host, or L{None}.
        @param path: the normalized path.
        """
        route = self.routes.match(host, path) or self.defaultRoute
        if route is None:
            return None
        return route, self.pools[route.pool]
