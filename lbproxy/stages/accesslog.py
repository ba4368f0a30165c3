# -*- test-case-name: tests.test_accesslog -*-
"""
One access log line per request, whatever answered it.
"""

from __future__ import annotations

from lbproxy.observe.accesslog import AccessLog, format_line
from lbproxy.pipeline.chain import Stage
from lbproxy.pipeline.context import RequestContext


class AccessLogStage(Stage):
    name = "access_log"

    def __init__(self, log: AccessLog, clock) -> None:
        self._log = log
        self._clock = clock

    def done(self, context: RequestContext) -> None:
        request = context.request
        host = context.hostHeader
        requestId = context.requestId
        self._log.write(
            format_line(
                context.clientIp,
                request.method.decode("latin-1"),
                request.uri.decode("latin-1"),
                request.clientproto.decode("latin-1"),
                context.status,
                context.sent,
                host.decode("latin-1") if host is not None else None,
                context.pool,
                context.upstream,
                self._clock.seconds() - context.start,
                context.upstreamTime,
                requestId.decode("ascii") if requestId is not None else None,
                context.cacheStatus,
            )
        )
