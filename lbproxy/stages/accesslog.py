# -*- test-case-name: tests.test_accesslog -*-
"""
One access log line per request, whatever answered it, in the log's
format (L{lbproxy.observe.logformats}).
"""

from __future__ import annotations

from lbproxy.observe.accesslog import AccessLog
from lbproxy.observe.logformats import FORMATS, Stamp
from lbproxy.pipeline.chain import Stage
from lbproxy.pipeline.context import RequestContext


class AccessLogStage(Stage):
    name = "access_log"

    def __init__(self, log: AccessLog, clock) -> None:
        self._write = log.write
        self._format = FORMATS[log.format]
        self._clock = clock
        self._stamp = Stamp()

    def done(self, context: RequestContext) -> None:
        self._write(self._format(context, self._clock.seconds(), self._stamp))
