# -*- test-case-name: tests.test_logformats -*-
"""
A short flag saying why a request did not end in a plain forwarded
answer: the access log's C{reason} and the metrics' local answers by
reason.  Read from what the request's context already says (its status,
whether lbproxy answered itself, whether it was routed), once it is done.
"""

from __future__ import annotations

from typing import Optional

__all__ = ["outcome"]

#: Local answers by status: why lbproxy answered itself.
_LOCAL = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "no_route",
    405: "method_not_allowed",
    408: "client_timeout",
    413: "body_too_large",
    414: "uri_too_long",
    421: "misdirected",
    429: "rate_limited",
    431: "headers_too_large",
    502: "upstream_failed",
    503: "no_target",
    504: "upstream_timeout",
}


def outcome(context) -> Optional[str]:
    """
    The flag of a finished request, or L{None} for a response the backend
    gave and the client got whole (whatever its status).

    @param context: a finished L{lbproxy.pipeline.context.RequestContext}.
    """
    status = context.status
    if status == 499:
        return "client_gone"
    if context.local:
        if status == 502 and context.entry is not None and context.firstByte is None:
            return "upstream_refused" if context.connected is None else "upstream_failed"
        if status < 400:
            return "local"
        return _LOCAL.get(status, "local_error")
    rejected = getattr(context.request, "rejected", None)
    if rejected is not None:
        # Cut by the channel while forwarded: a body too slow or malformed
        # (408, 400), or a drain at shutdown or reload (503, app/drain.py).
        return "proxy_shutdown" if rejected == 503 else _LOCAL.get(rejected, "rejected")
    if context.entry is None:
        # Ended without an answer of its own: refused by the channel.
        return _LOCAL.get(status, "rejected") if status else None
    if status == 502:
        # The backend's response was cut short (see Exchange.upstreamFailed).
        return "upstream_reset"
    return None
