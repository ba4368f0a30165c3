# -*- test-case-name: tests.test_logformats -*-
"""
Connections refused before a request existed (a malformed head: 400; too
slow: 408; a request line or head too long: 414, 431; the connection
limit: 503): counted by reason and written to the access log, since no
request reaches the pipeline's access log stage.
"""

from __future__ import annotations

from lbproxy.observe.logformats import Stamp, rejection_line

__all__ = ["REASONS", "RejectionRecorder"]

#: A rejection's reason by its status.
REASONS = {
    400: "bad_request",
    408: "client_timeout",
    414: "uri_too_long",
    431: "headers_too_large",
    503: "connection_limit",
}


class RejectionRecorder:
    """
    The site's C{onReject} (see L{lbproxy.frontend.hygiene.GuardedChannel}).
    """

    def __init__(self, metrics, accessLog, clock) -> None:
        """
        @param metrics: the L{lbproxy.observe.counters.Metrics}.
        @param accessLog: the L{lbproxy.observe.accesslog.AccessLog}, or
            L{None}.
        """
        self._metrics = metrics
        self._log = accessLog
        self._clock = clock
        self._stamp = Stamp()

    def __call__(self, channel, code: int, dispatched: bool) -> None:
        """
        @param dispatched: whether a request of the connection is in the
            pipeline already (its own line says how it ended).
        """
        reason = REASONS.get(code, "rejected")
        self._metrics.rejected(reason)
        if dispatched or self._log is None:
            return
        peer = channel.transport.getPeer()
        self._log.write(
            rejection_line(
                self._log.format, self._clock.seconds(), self._stamp,
                getattr(peer, "host", "-"), code, reason,
            )
        )
