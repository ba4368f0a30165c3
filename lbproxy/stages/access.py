# -*- test-case-name: tests.test_access -*-
"""
Access rules (global or the route's): addresses, blocked paths
(C{403}), methods (C{405} with C{Allow}), basic auth (C{401} with
C{WWW-Authenticate}).  A CORS preflight is held to the address and path
rules only.
"""

from __future__ import annotations

from typing import Optional

from twisted.web import http

from lbproxy.pipeline.chain import Stage
from lbproxy.pipeline.context import LocalReply, RequestContext
from lbproxy.policy.access import AccessPolicy


class Access(Stage):
    name = "access"

    def __init__(self, policy: AccessPolicy) -> None:
        self.policy = policy

    def request(self, context: RequestContext) -> Optional[LocalReply]:
        request = context.request
        if context.preflight:
            denial = self.policy.checkClient(context.clientIp, context.path)
        else:
            denial = self.policy.check(
                context.clientIp, request.method, context.path, request.getHeader(b"Authorization")
            )
        if denial is None:
            return None
        return LocalReply(
            denial.status, http.RESPONSES.get(denial.status, b"Forbidden"), denial.headers
        )
