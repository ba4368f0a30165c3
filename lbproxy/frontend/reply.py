# -*- test-case-name: tests.test_proxy -*-
"""
Answers lbproxy writes itself (404, 429, 502, 503, ...), on HTTP/1.x and
HTTP/2 alike.
"""

from __future__ import annotations

__all__ = ["local_response"]


def local_response(request, code: int, phrase: bytes, headers=(), withBody: bool = True) -> int:
    """
    Answer a request from lbproxy itself (404, 502, 503, 504, ...) with a
    short plain-text body (or none).

    @param headers: more C{(name, value)} pairs to send.
    @return: the length of the body sent.
    """
    body = b"%d %s\n" % (code, phrase) if withBody else b""
    request.setResponseCode(code, phrase)
    out = request.responseHeaders
    out.removeHeader(b"Server")
    if body:
        out.setRawHeaders(b"Content-Type", [b"text/plain; charset=utf-8"])
    out.setRawHeaders(b"Content-Length", [b"%d" % (len(body),)])
    for name, value in headers:
        out.addRawHeader(name, value)
    if not request.bodyComplete:
        request.closeAfterResponse()
    request.write(body)
    request.finish()
    return len(body)
