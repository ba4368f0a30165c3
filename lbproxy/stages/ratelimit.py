# -*- test-case-name: tests.test_ratelimit -*-
"""
A rate limit (global or the route's): C{429} with C{Retry-After} when the
client's bucket is empty.  Before the access rules, so that a flood cannot
make lbproxy verify passwords.
"""

from __future__ import annotations

from typing import Optional

from lbproxy.pipeline.chain import Stage
from lbproxy.pipeline.context import LocalReply, RequestContext
from lbproxy.policy.ratelimit import RateLimiter, retry_after


class RateLimit(Stage):
    name = "rate_limit"

    def __init__(self, limiter: RateLimiter) -> None:
        self.limiter = limiter

    def request(self, context: RequestContext) -> Optional[LocalReply]:
        delay = self.limiter.check(context.clientIp, context.start)
        if delay:
            return LocalReply(
                429, b"Too Many Requests", [(b"Retry-After", b"%d" % (retry_after(delay),))]
            )
        return None
