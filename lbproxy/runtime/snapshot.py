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

from lbproxy.policy.access import AccessPolicy
from lbproxy.balance.pool import Pool
from lbproxy.policy.clientaddr import ClientAddressResolver
from lbproxy.config import Config, Route
from lbproxy.policy.cors import CorsPolicy
from lbproxy.runtime.policies import (
    build_access_policy,
    build_client_address_resolver,
    build_cors_policy,
    build_header_rules,
    build_rate_limiter,
)
from lbproxy.policy.headerrules import HeaderRules
from lbproxy.policy.ratelimit import RateLimiter
from lbproxy.runtime.routing import RouteTable


class Policies:
    """
    The edge policies that apply to a request, global ones first: rate
    limits, then access rules (so a flood cannot make lbproxy verify
    passwords), then CORS and header rules of the route.

    @ivar limiters: L{RateLimiter}s to pass, in order.
    @ivar access: L{AccessPolicy}s to pass, in order.
    @ivar cors: the route's L{CorsPolicy}, or L{None}.
    @ivar headers: the route's L{HeaderRules}, or L{None}.
    """

    def __init__(
        self,
        limiters: Tuple[RateLimiter, ...] = (),
        access: Tuple[AccessPolicy, ...] = (),
        cors: Optional[CorsPolicy] = None,
        headers: Optional[HeaderRules] = None,
    ) -> None:
        self.limiters = limiters
        self.access = access
        self.cors = cors
        self.headers = headers


class Runtime:
    """
    @ivar config: the validated configuration this was built from.
    @ivar routes: the compiled route table.
    @ivar pools: runtime pools by name.
    @ivar defaultRoute: the route for requests no route matches, or L{None}.
    @ivar health: each pool's health settings by name.
    @ivar clientAddress: finds the client behind trusted proxies.
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
            runtime.maxInflight = pool.max_inflight
            runtime.queueSize = pool.queue_size
            runtime.queueTimeout = pool.queue_timeout
            self.pools[name] = runtime
        self.health = {name: pool.health for name, pool in config.pools.items()}

        default = config.server.default_pool
        self.defaultRoute: Optional[Route] = (
            Route(pool=default) if default is not None else None
        )
        server = config.server
        self.clientAddress: Optional[ClientAddressResolver] = (
            build_client_address_resolver(server.trusted_proxies, server.forwarded_header)
            if server.trusted_proxies
            else None
        )
        globalLimiter = (
            build_rate_limiter(config.rate_limit) if config.rate_limit is not None else None
        )
        globalAccess = build_access_policy(config.access) if config.access is not None else None
        self._policies: Dict[int, Policies] = {}
        routes = list(config.routes)
        if self.defaultRoute is not None:
            routes.append(self.defaultRoute)
        for route in routes:
            # (A RateLimiter has a length, its number of clients: test for
            # None, not truth.)
            limiters = [globalLimiter] if globalLimiter is not None else []
            if route.rate_limit is not None:
                limiters.append(build_rate_limiter(route.rate_limit))
            access = [globalAccess] if globalAccess is not None else []
            if route.access is not None:
                access.append(build_access_policy(route.access))
            self._policies[id(route)] = Policies(
                tuple(limiters),
                tuple(access),
                build_cors_policy(route.cors) if route.cors is not None else None,
                build_header_rules(route.headers) if route.headers is not None else None,
            )
        self.unrouted = Policies(
            (globalLimiter,) if globalLimiter is not None else (),
            (globalAccess,) if globalAccess is not None else (),
        )

    def policies(self, route: Route) -> Policies:
        """
        The policies of a route that L{route} returned.
        """
        return self._policies[id(route)]

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
