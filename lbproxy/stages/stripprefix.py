# -*- test-case-name: tests.test_routing -*-
"""
C{strip_prefix}: the backend gets the path without the route's prefix.
"""

from __future__ import annotations

from typing import Optional

from lbproxy.pipeline.chain import Stage
from lbproxy.pipeline.context import LocalReply, RequestContext
from lbproxy.runtime.routing import strip_prefix
from lbproxy.stages.path import forward_target


class StripPrefix(Stage):
    name = "strip_prefix"

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def request(self, context: RequestContext) -> Optional[LocalReply]:
        context.target = forward_target(strip_prefix(context.path, self.prefix), context.query)
        return None
