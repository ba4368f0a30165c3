# -*- test-case-name: tests.test_headers -*-
"""
The headers the backend gets: C{X-Forwarded-For}, C{-Proto} and C{-Host}
in (L{lbproxy.policy.headers.forwarded_request_headers}).  The client's
hop-by-hop fields are already out (L{lbproxy.stages.headerscan}).
"""

from __future__ import annotations

from typing import Optional

from lbproxy.pipeline.chain import Stage
from lbproxy.pipeline.context import LocalReply, RequestContext
from lbproxy.policy.headers import forwarded_request_headers


class Forwarded(Stage):
    """
    Sets C{headers}.
    """

    name = "forwarded"

    def request(self, context: RequestContext) -> Optional[LocalReply]:
        context.headers = forwarded_request_headers(
            context.pairs,
            context.peer.encode("ascii", "replace"),
            context.proto,
            context.hostHeader,
            context.trusted,
        )
        return None
