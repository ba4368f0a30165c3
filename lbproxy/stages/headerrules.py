# -*- test-case-name: tests.test_headerrules -*-
"""
The route's header rules (C{headers = {...}}): request rules on what is
forwarded, response rules on every answer.
"""

from __future__ import annotations

from typing import Optional

from lbproxy.pipeline.chain import Stage
from lbproxy.pipeline.context import HeaderList, LocalReply, RequestContext
from lbproxy.policy.headerrules import HeaderRules


class HeaderRulesStage(Stage):
    """
    Sets C{variables} (the rules' template values).
    """

    name = "header_rules"

    def __init__(self, rules: HeaderRules, pool: str) -> None:
        self.rules = rules
        self._pool = pool.encode("utf-8")

    def _variables(self, context: RequestContext) -> dict:
        request = context.request
        variables = context.variables = {
            "client_ip": context.clientIp.encode("ascii", "replace"),
            "request_id": context.requestId or b"",
            "host": context.hostHeader or b"",
            "scheme": context.proto or (b"https" if request.isSecure() else b"http"),
            "method": request.method,
            "path": context.target,
            "pool": self._pool,
        }
        return variables

    def request(self, context: RequestContext) -> Optional[LocalReply]:
        context.pairs = self.rules.applyRequest(context.pairs, self._variables(context))
        return None

    def responseHead(self, context: RequestContext, headers: HeaderList) -> HeaderList:
        variables = context.variables
        if variables is None:
            variables = self._variables(context)
        variables["target"] = (context.upstream or "").encode("ascii", "replace")
        return self.rules.applyResponse(headers, variables)
