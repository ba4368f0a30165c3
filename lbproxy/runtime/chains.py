# -*- test-case-name: tests.test_pipeline -*-
"""
Build a runtime's chains once, when the configuration is built: the entry
chain, one chain per route (the default route included) and the chain for
requests no route matches (see L{lbproxy.pipeline.order}).
"""

from __future__ import annotations

from typing import Dict, Tuple

from lbproxy.config import Config, Route
from lbproxy.pipeline.chain import Chain
from lbproxy.pipeline.order import ENTRY, ROUTE, UNROUTED, Scope, shared_policies, stages_for
from lbproxy.runtime.services import Services
from lbproxy.terminals.notfound import NotFound
from lbproxy.terminals.route import RouteRequest
from lbproxy.terminals.upgrade import ForwardOrUpgrade

__all__ = ["CompiledRoute", "build_chains"]


class CompiledRoute:
    """
    A route as the request path uses it.

    @ivar route: the configured L{Route}.
    @ivar pool: the runtime pool it forwards to.
    @ivar chain: its L{Chain}, ending in L{ForwardOrUpgrade}.
    """

    __slots__ = ("route", "pool", "chain")

    def __init__(self, route: Route, pool, chain: Chain) -> None:
        self.route = route
        self.pool = pool
        self.chain = chain

    def __repr__(self) -> str:
        return f"<CompiledRoute {self.route.host!r} {self.route.path!r} -> {self.pool.name}>"


def build_chains(
    config: Config, pools, routes, services: Services, match
) -> Tuple[Chain, Chain, Dict[int, CompiledRoute]]:
    """
    @param pools: the runtime pools by name.
    @param routes: the configured routes, the default route last if any.
    @param match: C{match(host, path)}, the runtime's route lookup, for the
        entry chain's terminal.
    @return: the entry chain, the unrouted chain, and the compiled routes
        by C{id()} of their configured route.
    """
    shared = shared_policies(config, services)
    server = config.server
    unrouted = Chain(stages_for(Scope(UNROUTED, config, services, shared)), NotFound())
    compiled: Dict[int, CompiledRoute] = {}
    for route in routes:
        pool = pools[route.pool]
        scope = Scope(ROUTE, config, services, shared, route, pool)
        terminal = ForwardOrUpgrade(
            pool,
            services,
            server.response_timeout,
            route.request_buffering,
            server.websocket_idle_timeout,
        )
        compiled[id(route)] = CompiledRoute(route, pool, Chain(stages_for(scope), terminal))
    entry = Chain(
        stages_for(Scope(ENTRY, config, services, shared)), RouteRequest(match, unrouted)
    )
    return entry, unrouted, compiled

