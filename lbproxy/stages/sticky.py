# -*- test-case-name: tests.test_sticky -*-
"""
The sticky-session stage of a route whose pool (or one of whose split
pools) has C{sticky}: it gives the request a
L{StickyMark <lbproxy.balance.sticky.StickyMark>}, which the pool's
L{Sticky <lbproxy.balance.sticky.Sticky>} strategy fills, and sets the
cookie on the answer when the client has none, a stale one, or was
re-pinned.
"""

from __future__ import annotations

from typing import Optional

from lbproxy.balance.sticky import StickyMark
from lbproxy.pipeline.chain import Stage
from lbproxy.pipeline.context import HeaderList, LocalReply, RequestContext

__all__ = ["StickyStage"]


class StickyStage(Stage):
    name = "sticky"

    def request(self, context: RequestContext) -> Optional[LocalReply]:
        context.sticky = StickyMark()
        return None

    def responseHead(self, context: RequestContext, headers: HeaderList) -> HeaderList:
        mark = context.sticky
        if mark is not None:
            cookie = mark.setCookie()
            if cookie is not None:
                headers.append((b"Set-Cookie", cookie))
        return headers
