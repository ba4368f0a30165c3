# -*- test-case-name: tests.test_routing -*-
"""
The path, normalized once for routing and every policy
(L{lbproxy.runtime.routing.normalize_request_path}); a malformed one gets
C{400} and close.
"""

from __future__ import annotations

from typing import Optional

from lbproxy.pipeline.chain import Stage
from lbproxy.pipeline.context import LocalReply, RequestContext
from lbproxy.runtime.routing import BadPath, normalize_request_path
from lbproxy.stages.target import BAD_REQUEST


def forward_target(path: str, query) -> bytes:
    """
    The request target the backend gets: C{path} and, if any, C{query}.
    """
    target = path.encode("latin-1")
    if query is not None:
        target += b"?" + query
    return target


class NormalizePath(Stage):
    """
    Sets C{path}, and C{target} (what the backend gets unless a later stage
    rewrites it: the normalized path and the query).
    """

    name = "normalize_path"

    def __init__(self, rejectEncodedSlashes: bool) -> None:
        self._rejectEncodedSlashes = rejectEncodedSlashes

    def request(self, context: RequestContext) -> Optional[LocalReply]:
        try:
            path = normalize_request_path(
                context.rawPath.decode("latin-1"), self._rejectEncodedSlashes
            )
        except BadPath:
            return BAD_REQUEST
        context.path = path
        context.target = forward_target(path, context.query)
        return None
