# -*- test-case-name: tests.test_cors -*-
"""
CORS on a route with C{cors}: two stages around the access rules.

L{CorsDetect} (before the access rules) notes whether the request is a
preflight, which browsers send without credentials, so that the access
rules hold it to the address and path rules only.  L{CorsPreflight}
(after the body limit) answers a preflight itself, and adds the CORS
response headers to every other answer for a request with C{Origin}.
"""

from __future__ import annotations

from typing import Optional

from twisted.web import http

from lbproxy.pipeline.chain import Stage
from lbproxy.pipeline.context import HeaderList, LocalReply, RequestContext
from lbproxy.policy.cors import CorsPolicy


class CorsDetect(Stage):
    """
    Sets C{preflight}.
    """

    name = "cors_detect"

    def __init__(self, policy: CorsPolicy) -> None:
        self._policy = policy

    def request(self, context: RequestContext) -> Optional[LocalReply]:
        context.preflight = self._policy.isPreflight(context.request.method, context.pairs)
        return None


class CorsPreflight(Stage):
    name = "cors_preflight"

    def __init__(self, policy: CorsPolicy) -> None:
        self._policy = policy

    def request(self, context: RequestContext) -> Optional[LocalReply]:
        if not context.preflight:
            return None
        request = context.request
        status, headers = self._policy.preflight(
            context.origin,
            request.getHeader(b"Access-Control-Request-Method"),
            request.getHeader(b"Access-Control-Request-Headers"),
        )
        return LocalReply(status, http.RESPONSES.get(status, b""), headers, body=False)

    def responseHead(self, context: RequestContext, headers: HeaderList) -> HeaderList:
        if context.preflight:
            # The preflight answer carries its own CORS headers.
            return headers
        origin = context.origin
        if context.pairs is None:
            # Answered before the headers were scanned (e.g. a 429).
            origin = context.request.getHeader(b"Origin")
        if origin is None:
            return headers
        return self._policy.applyResponse(headers, origin)
