# -*- test-case-name: tests.test_pipeline -*-
"""
The terminal of a runtime's entry chain: pick the route by host and path
and go on through its chain (or the chain for requests no route matches).
"""

from __future__ import annotations

from lbproxy.pipeline.chain import Chain, Terminal
from lbproxy.pipeline.context import RequestContext


class RouteRequest(Terminal):
    name = "route"

    def __init__(self, match, unrouted: Chain) -> None:
        """
        @param match: C{match(host, path)} returns the compiled route, or
            L{None} (the runtime's L{lbproxy.runtime.snapshot.Runtime.match}).
        @param unrouted: the chain for requests no route matches.
        """
        self._match = match
        self._unrouted = unrouted

    def __call__(self, context: RequestContext) -> None:
        route = self._match(context.host, context.path)
        if route is None:
            self._unrouted.run(context)
        else:
            context.route = route
            # What a reload drain asks of the request (lbproxy.app.drain).
            context.request.lbRoute = route
            route.chain.run(context)
