# -*- test-case-name: tests.test_tls_proxy -*-
"""
TLS listeners: a request whose host the certificate chosen by the client's
SNI does not cover gets C{421 Misdirected Request} (RFC 9110 15.5.20).
Built only when the configuration has TLS listeners.
"""

from __future__ import annotations

from typing import Optional

from lbproxy.pipeline.chain import Stage
from lbproxy.pipeline.context import LocalReply, RequestContext
from lbproxy.tls.peer import misdirected

MISDIRECTED = LocalReply(421, b"Misdirected Request")


class Misdirected(Stage):
    name = "misdirected"

    def request(self, context: RequestContext) -> Optional[LocalReply]:
        if misdirected(context.request, context.host):
            return MISDIRECTED
        return None
