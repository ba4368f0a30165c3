# -*- test-case-name: tests.test_proxy -*-
"""
The one pass over the request headers: the pairs to forward, and the few
values later stages read (C{Origin}, the incoming request id), so that no
stage scans the headers again.

The client's hop-by-hop fields are dropped here, before any stage adds
its own (the request id, header rules, C{X-Forwarded-*}): a client's
C{Connection} names what the client sent, never what lbproxy adds.

Over HTTP/2 a control character in a field value gets 400 here (the C{h2}
library refuses only NUL, CR and LF; over HTTP/1.x lbproxy's channel
refuses them all before a request is formed).
"""

from __future__ import annotations

from typing import Optional

from lbproxy.pipeline.chain import Stage
from lbproxy.pipeline.context import LocalReply, RequestContext
from lbproxy.policy.headers import (
    FIELD_CONTROL,
    asks_upgrade,
    request_drop_names,
    upgrade_value,
)
from lbproxy.stages.target import BAD_REQUEST


_UPGRADE = frozenset([b"upgrade"])


class ScanHeaders(Stage):
    """
    Sets C{pairs}, C{origin}, C{requestId} (as sent, unchecked) and
    C{proto}.

    Dropped, so neither forwarded nor read by a later stage: hop-by-hop
    and framing fields, every C{Proxy-*} field and every field the
    client's C{Connection} names (except C{Host}); C{Expect} (lbproxy
    answers it); and every name with C{"_"}, as nginx does, since backends
    may read them as C{"-"}.  A request id the client names in
    C{Connection} counts as not sent.

    A request to switch protocols (an HTTP/1.1 request without a body
    whose C{Connection} lists C{upgrade} and that has an C{Upgrade} field,
    other than C{h2c}) keeps its C{Upgrade} field and sets C{upgrade}; the
    route's terminal forwards it with C{Connection: upgrade}
    (L{lbproxy.terminals.upgrade}).  Any other request's C{Upgrade} is
    hop-by-hop and dropped.

    Refuses an HTTP/2 request with a control character other than HTAB in
    a field value (C{400}).
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
        headers = request.requestHeaders
        # HTTP/1.x heads were checked for controls by the channel.
        controls = FIELD_CONTROL.search if request.clientproto == b"HTTP/2" else None
        # (One lookup: Connection may come after the fields it names.)
        connection = headers.getRawHeaders(b"Connection")
        drop = request_drop_names(connection)
        upgrade = None
        if (
            connection is not None
            and asks_upgrade(connection)
            and request.body is None
            and request.clientproto == b"HTTP/1.1"
        ):
            upgrade = upgrade_value(headers.getRawHeaders(b"Upgrade"))
            if upgrade is not None:
                drop = drop - _UPGRADE
        for name, values in headers.getAllRawHeaders():
            if controls is not None:
                for value in values:
                    if controls(value) is not None:
                        return BAD_REQUEST
            lower = name.lower()
            if lower in drop or b"_" in name or lower.startswith(b"proxy-"):
                continue
            if lower == b"origin":
                origin = values[0]
            elif lower == idName:
                requestId = values[0]
            for value in values:
                pairs.append((name, value))
        context.pairs = pairs
        context.origin = origin
        context.upgrade = upgrade
        context.requestId = requestId
        context.proto = b"https" if request.isSecure() else b"http"
        return None
