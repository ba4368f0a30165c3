# -*- test-case-name: tests.test_proxy -*-
"""
How a backend's response is framed toward the client, and how a response
head that was set but not yet written is taken back for a local answer.
"""

from __future__ import annotations

from typing import Optional

from lbproxy.wire.http1 import ProtocolError, content_length

__all__ = ["response_length", "retract_head"]


def response_length(conn, headers) -> Optional[int]:
    """
    The length to announce to the client for a backend's response.

    @param conn: the backend connection; its C{responseLength} is the
        length it frames the body by, or L{None}.
    @param headers: the backend's response headers, C{(name, value)} pairs.
    @return: the body's length, or L{None} when the body is not framed by a
        length (chunked, until close).  A response without a body (HEAD,
        204, 304) has no framing length, but its C{Content-Length} still
        passes on.
    """
    length = conn.responseLength
    if length is not None:
        return length
    for name, _ in headers:
        if name.lower() == b"transfer-encoding":
            return None
    try:
        return content_length(headers)
    except ProtocolError:
        return None


def retract_head(request) -> None:
    """
    Forget a backend's response head (set on C{request}, not yet written)
    so that lbproxy can answer locally instead.  C{Connection: close}
    (from C{closeAfterResponse}) still holds.
    """
    if request.producer is not None:
        request.unregisterProducer()
    out = request.responseHeaders
    for name, _ in list(out.getAllRawHeaders()):
        if name.lower() != b"connection":
            out.removeHeader(name)
