# -*- test-case-name: tests.test_pipeline,tests.test_requesthardening -*-
"""
The request target and Host (RFC 9112 3.2, 3.2.2; RFC 9110 7.2): only
origin-form and absolute-form targets of visible ASCII without C{"#"},
one valid Host, the authority of an absolute-form target replacing Host.
Otherwise C{400} and close.
"""

from __future__ import annotations

from typing import Optional

from lbproxy.frontend.target import UNSAFE_TARGET, split_target, valid_host
from lbproxy.pipeline.chain import Stage
from lbproxy.pipeline.context import LocalReply, RequestContext
from lbproxy.runtime.routing import normalize_host

BAD_REQUEST = LocalReply(400, b"Bad Request", close=True)


class RequestTarget(Stage):
    """
    Sets C{hostHeader}, C{host}, C{rawPath} and C{query}.
    """

    name = "request_target"

    def request(self, context: RequestContext) -> Optional[LocalReply]:
        request = context.request
        uri = request.uri
        hosts = request.requestHeaders.getRawHeaders(b"Host")
        split = split_target(uri) if request.method != b"CONNECT" else None
        if split is None or (hosts is not None and len(hosts) > 1):
            return BAD_REQUEST
        authority, rawPath, query = split
        if UNSAFE_TARGET.search(uri) is not None:
            # Only visible ASCII in a request target (RFC 9112 3.2); a raw
            # backslash means "/" to some backends but not to lbproxy; "#"
            # starts a fragment, which is never sent (RFC 9112 3.2).
            return BAD_REQUEST
        hostHeader = hosts[0] if hosts else None
        if hostHeader is None and request.clientproto == b"HTTP/1.1":
            # Every HTTP/1.1 request has a Host, whatever its target's form
            # (RFC 9112 3.2); an absolute-form authority then replaces it.
            return BAD_REQUEST
        if authority is not None:
            # RFC 9112 3.2.2: the authority of an absolute-form target wins.
            hostHeader = authority
            request.requestHeaders.setRawHeaders(b"Host", [authority])
        if hostHeader is not None and not valid_host(hostHeader):
            return BAD_REQUEST
        context.hostHeader = hostHeader
        context.host = normalize_host(hostHeader.decode("latin-1") if hostHeader else None)
        context.rawPath = rawPath
        context.query = query
        return None
