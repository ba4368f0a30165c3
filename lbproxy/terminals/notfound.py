# -*- test-case-name: tests.test_pipeline -*-
"""
The terminal for requests no route matches: C{404}, after the global
policies have had their say.
"""

from __future__ import annotations

from lbproxy.pipeline.chain import Terminal
from lbproxy.pipeline.context import LocalReply, RequestContext

NOT_FOUND = LocalReply(404, b"Not Found")


class NotFound(Terminal):
    name = "not_found"

    def __call__(self, context: RequestContext) -> None:
        context.chain.reply(context, NOT_FOUND)
