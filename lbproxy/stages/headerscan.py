# -*- test-case-name: tests.test_proxy -*-
"""
The one pass over the request headers: the pairs to forward, and the few
values later stages read (C{Origin}, the incoming request id), so that no
stage scans the headers again.
"""

from __future__ import annotations

from typing import Optional

from lbproxy.pipeline.chain import Stage
from lbproxy.pipeline.context import LocalReply, RequestContext


class ScanHeaders(Stage):
    """
    Sets C{pairs}, C{origin}, C{requestId} (as sent, unchecked) and
    C{proto}.

    C{Expect} is dropped (lbproxy answers it), and so is every name with
    C{"_"}, as nginx does, since backends may read them as C{"-"}.
    """

    name = "scan_headers"

    def __init__(self, requestIdHeader: Optional[str]) -> None:
        self._idName = (
            requestIdHeader.lower().encode("ascii") if requestIdHeader is not None else None
        )

    def request(self, context: RequestContext) -> Optional[LocalReply]:
        request = context.request
        idName = self._idName
        origin = requestId = None
        pairs = []
        for name, values in request.requestHeaders.getAllRawHeaders():
            lower = name.lower()
            if lower == b"origin":
                origin = values[0]
            elif lower == idName:
                requestId = values[0]
            elif lower == b"expect" or b"_" in name:
                continue
            for value in values:
                pairs.append((name, value))
        context.pairs = pairs
        context.origin = origin
        context.requestId = requestId
        context.proto = b"https" if request.isSecure() else b"http"
        return None
