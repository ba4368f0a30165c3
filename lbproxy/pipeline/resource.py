# -*- test-case-name: tests.test_proxy -*-
"""
The resource at the root of lbproxy's site: every request goes into the
current runtime's entry chain (see L{lbproxy.pipeline.chain}).

L{ProxyResource} subclasses L{ReverseProxyResource} for its place in the
resource tree only; forwarding is lbproxy's own (HTTP/1.1, pooled
connections, streaming both ways, see L{lbproxy.upstream.exchange}).
"""

from __future__ import annotations

from twisted.web.proxy import ReverseProxyResource
from twisted.web.server import NOT_DONE_YET

from lbproxy.pipeline.context import RequestContext
from lbproxy.runtime.snapshot import Runtime

__all__ = ["ProxyResource"]


class ProxyResource(ReverseProxyResource):
    """
    Dispatches every request to the current runtime.

    @ivar runtime: the current L{Runtime}; replaced as a whole (one
        assignment) on reload.  A request keeps the runtime it started on.
    """

    isLeaf = True

    def __init__(self, runtime: Runtime, clock) -> None:
        """
        @param runtime: the routes, pools and chains.
        @param clock: an L{IReactorTime} for request timings.
        """
        ReverseProxyResource.__init__(self, "", 0, b"", reactor=clock)
        self.runtime = runtime
        self._clock = clock

    def getChild(self, path, request):
        return self

    def render(self, request):
        runtime = self.runtime
        runtime.entry.run(RequestContext(request, runtime, self._clock.seconds()))
        return NOT_DONE_YET
