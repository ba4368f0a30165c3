# -*- test-case-name: tests.test_mirror -*-
"""
The mirror stage of a route with C{mirror = {...}}: a share of the
requests (C{percent}) is copied to the mirror pool
(L{lbproxy.upstream.mirror.Mirror}).  It runs after the forwarded headers
are built, so a copy carries what the primary gets, and answers nothing.
Requests to switch protocols (WebSocket handshakes) are not copied.
"""

from __future__ import annotations

import random as _random
from typing import Callable, Optional

from lbproxy.pipeline.chain import Stage
from lbproxy.pipeline.context import LocalReply, RequestContext
from lbproxy.upstream.mirror import Mirror

__all__ = ["MirrorStage"]


class MirrorStage(Stage):
    """
    @ivar mirror: the route's L{Mirror}.
    """

    name = "mirror"

    def __init__(
        self, mirror: Mirror, percent: float, random: Optional[Callable[[], float]] = None
    ) -> None:
        self.mirror = mirror
        self._share = percent / 100.0
        self._random = random if random is not None else _random.Random().random

    def request(self, context: RequestContext) -> Optional[LocalReply]:
        # A request to switch protocols (a WebSocket) is never copied: a
        # relay cannot be mirrored.
        if context.upgrade is not None:
            return None
        if self._share >= 1.0 or self._random() < self._share:
            request = context.request
            self.mirror.copy(request.method, context.target, context.headers, request.body)
        return None
