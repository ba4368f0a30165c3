# -*- test-case-name: tests.test_http2_guard -*-
"""
What lbproxy refuses on an HTTP/2 connection, apart from Twisted's and
the C{h2} package's own checks; L{lbproxy.frontend.http2.ProxyH2Connection}
applies these.

Pure helpers: header lists in, decisions out.
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

__all__ = ["connectTarget", "isExtendedConnect"]

Fields = Sequence[Tuple[bytes, bytes]]


def isExtendedConnect(headers: Fields) -> bool:
    """
    Whether a request's header list is an extended C{CONNECT} (RFC 8441: a
    C{:protocol} pseudo-header, as WebSocket over HTTP/2 sends), which
    lbproxy does not support (it never advertises
    C{SETTINGS_ENABLE_CONNECT_PROTOCOL}).

    Only the pseudo-headers are looked at; they come first (RFC 9113
    8.3, which the C{h2} package enforces).
    """
    for name, _ in headers:
        if name == b":protocol":
            return True
        if not name.startswith(b":"):
            return False
    return False


def connectTarget(headers: Fields) -> Optional[bytes]:
    """
    The request target of a plain C{CONNECT}: its C{:authority}, as the
    authority-form of an HTTP/1.1 C{CONNECT} request line (RFC 9113
    8.5), or C{b""} if there is none.

    @return: L{None} if the request is not a C{CONNECT}.
    """
    method = None
    authority = b""
    for name, value in headers:
        if not name.startswith(b":"):
            break
        if name == b":method":
            method = value
        elif name == b":authority":
            authority = value
    return authority if method == b"CONNECT" else None
