# -*- test-case-name: tests.test_proxy -*-
"""
The body limit (the route's C{max_body_size}, else the server's): a
declared C{Content-Length} over it gets C{413} and close; a body that
grows past it while streaming is cut by the L{lbproxy.frontend.body.RequestBody}
(the exchange answers C{413} or aborts).
"""

from __future__ import annotations

from typing import Optional

from lbproxy.pipeline.chain import Stage
from lbproxy.pipeline.context import LocalReply, RequestContext

TOO_LARGE = LocalReply(413, b"Payload Too Large", close=True)


class BodyLimit(Stage):
    name = "body_limit"

    def __init__(self, limit: int) -> None:
        self.limit = limit

    def request(self, context: RequestContext) -> Optional[LocalReply]:
        body = context.request.body
        if body is not None:
            if body.length is not None and body.length > self.limit:
                return TOO_LARGE
            body.limit = self.limit
        return None
