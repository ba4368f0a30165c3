# -*- test-case-name: tests.test_proxy -*-
"""
lbproxy's own health endpoint (C{server.health_endpoint}), answered
C{200} before routing and before any policy.
"""

from __future__ import annotations

from typing import Optional

from lbproxy.pipeline.chain import Stage
from lbproxy.pipeline.context import LocalReply, RequestContext

HEALTHY = LocalReply(200, b"OK")


class HealthEndpoint(Stage):
    name = "health_endpoint"

    def __init__(self, path: str) -> None:
        self._path = path

    def request(self, context: RequestContext) -> Optional[LocalReply]:
        if context.path == self._path:
            return HEALTHY
        return None
