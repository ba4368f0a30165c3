# -*- test-case-name: tests.test_headerrules -*-
"""
The request id (C{server.request_id_header}): an incoming id is kept if it
is a plain token, else one is generated; it is forwarded, logged and
returned on every answer, local ones included.
"""

from __future__ import annotations

from typing import Optional

from lbproxy.frontend.target import REQUEST_ID
from lbproxy.pipeline.chain import Stage
from lbproxy.pipeline.context import HeaderList, LocalReply, RequestContext
from lbproxy.policy.headerrules import new_request_id


class RequestId(Stage):
    """
    Sets C{requestId}.
    """

    name = "request_id"

    def __init__(self, header: str, forward: bool = True) -> None:
        """
        @param header: the header's name.
        @param forward: whether the id is also forwarded (the stage of a
            route); else only answers and the log carry it.
        """
        self._header = header.encode("ascii")
        self._lower = self._header.lower()
        if not forward:
            self.request = None  # type: ignore[assignment]

    def request(self, context: RequestContext) -> Optional[LocalReply]:
        requestId = context.requestId
        if requestId is None or not REQUEST_ID.match(requestId):
            requestId = context.requestId = new_request_id()
            lower = self._lower
            pairs = [(n, v) for n, v in context.pairs if n.lower() != lower]
            pairs.append((self._header, requestId))
            context.pairs = pairs
        return None

    def responseHead(self, context: RequestContext, headers: HeaderList) -> HeaderList:
        requestId = context.requestId
        if requestId is None or not REQUEST_ID.match(requestId):
            # Answered before this stage's request part ran (a 400, 404,
            # 429, ...): keep the client's id if it is a plain token.
            requestId = context.request.requestHeaders.getRawHeaders(self._header, [None])[0]
            if requestId is None or not REQUEST_ID.match(requestId):
                requestId = new_request_id()
            context.requestId = requestId
        lower = self._lower
        headers = [(n, v) for n, v in headers if n.lower() != lower]
        headers.append((self._header, requestId))
        return headers
