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
    @ivar requestBuffering: bytes of a request body read before a backend
        is chosen (the route's C{request_buffering}); 0 for none.
    """

    name = "forward"

    def __init__(
        self, pool, services, responseTimeout: float, requestBuffering: int = 0
    ) -> None:
        self.pool = pool
        self.services = services
        self.responseTimeout = responseTimeout
        self.requestBuffering = requestBuffering

    def __call__(self, context: RequestContext) -> None:
        context.pool = self.pool.name
        exchange = Exchange(context, self)
        request = context.request
        body = request.body
        if body is not None:
            request.sendContinue()
            if self.requestBuffering and body.hold(self.requestBuffering, exchange.start):
                # The exchange starts once the body is read (or this much
                # of it is).
                return
        exchange.start()
