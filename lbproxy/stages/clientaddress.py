# -*- test-case-name: tests.test_clientaddr -*-
"""
The client behind trusted proxies (C{server.trusted_proxies}): the
connection's peer, or the client that C{X-Forwarded-For} or C{Forwarded}
names when the peer is trusted.  Without trusted proxies there is no such
stage and the client is the peer.
"""

from __future__ import annotations

from typing import Optional

from lbproxy.pipeline.chain import Stage
from lbproxy.pipeline.context import LocalReply, RequestContext
from lbproxy.policy.clientaddr import ClientAddressResolver


class TrustedClientAddress(Stage):
    """
    Sets C{trusted} and C{clientIp}.
    """

    name = "client_address"

    def __init__(self, resolver: ClientAddressResolver) -> None:
        self._resolver = resolver

    def request(self, context: RequestContext) -> Optional[LocalReply]:
        peer = context.peer
        resolver = self._resolver
        if resolver.isTrusted(peer):
            headers = context.request.requestHeaders
            context.trusted = True
            context.clientIp = resolver.resolve(
                peer,
                headers.getRawHeaders(b"X-Forwarded-For") or (),
                headers.getRawHeaders(b"Forwarded") or (),
            )
        return None
