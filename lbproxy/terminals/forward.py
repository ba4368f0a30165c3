# -*- test-case-name: tests.test_proxy -*-
"""
The terminal of a route: forward the request to the route's pool through
an L{lbproxy.upstream.exchange.Exchange}.
"""

from __future__ import annotations

from lbproxy.pipeline.chain import Terminal
from lbproxy.pipeline.context import RequestContext
from lbproxy.upstream.exchange import Exchange


class Forward(Terminal):
    """
    @ivar pool: the runtime pool (L{lbproxy.balance.pool.Pool}).
    @ivar services: the L{lbproxy.runtime.services.Services}: backend
        connections, clock, passive health checks.
    @ivar responseTimeout: seconds to wait for a response head.
    """

    name = "forward"

    def __init__(self, pool, services, responseTimeout: float) -> None:
        self.pool = pool
        self.services = services
        self.responseTimeout = responseTimeout

    def __call__(self, context: RequestContext) -> None:
        context.pool = self.pool.name
        exchange = Exchange(context, self)
        request = context.request
        if request.body is not None:
            request.sendContinue()
        exchange.start()
