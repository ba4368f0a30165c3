# -*- test-case-name: tests.test_compress -*-
"""
Response compression, gzip or brotli as C{Accept-Encoding} prefers, for
the route's compressible types; every piece of the body is encoded and
flushed as it arrives (L{lbproxy.wire.codecs}).

Never compressed: a local answer, a response to HEAD, a status without a
body, a 206, a body already encoded, one with C{Cache-Control:
no-transform}, or one whose declared length is below C{min_size}.  A
compressible response gets C{Vary: Accept-Encoding} whichever coding it
is sent with; a compressed one loses its length (it is relayed chunked;
one sent as it is keeps its length) and its strong C{ETag} becomes weak.
"""

from __future__ import annotations

from lbproxy.pipeline.chain import Stage
from lbproxy.pipeline.context import RequestContext
from lbproxy.policy.encoding import TypeMatcher, choose_coding
from lbproxy.wire.codecs import available, new_encoder

__all__ = ["Compress"]

_NO_BODY = frozenset([204, 206, 304])


class Compress(Stage):
    """
    @param config: the route's L{lbproxy.config.cache.CompressConfig}.
    """

    name = "compress"
    # A body it encodes loses its length (cleared in the head part); one it
    # leaves alone keeps it.
    keepsLength = True

    def __init__(self, config) -> None:
        self._types = TypeMatcher(config.types)
        self._minSize = config.min_size
        self._level = config.level
        self._offered = available()

    def responseHead(self, context: RequestContext, headers):
        if context.status:
            return headers  # a local answer: short, and not through the body part
        request = context.request
        code = request.code
        if code < 200 or code in _NO_BODY:
            return headers
        contentType = None
        vary = None
        for index, (name, value) in enumerate(headers):
            low = name.lower()
            if low == b"content-type":
                contentType = value
            elif low == b"content-encoding":
                if value.strip().lower() != b"identity":
                    return headers
            elif low == b"cache-control":
                if b"no-transform" in value.lower():
                    return headers
            elif low == b"vary":
                vary = index if vary is None else vary
        if not self._types(contentType):
            return headers
        length = context.responseLength
        if length is not None and length < self._minSize:
            return headers
        if vary is None:
            headers.append((b"Vary", b"Accept-Encoding"))
        elif b"accept-encoding" not in b",".join(
            v.lower() for n, v in headers if n.lower() == b"vary"
        ).replace(b" ", b"").split(b","):
            name, value = headers[vary]
            headers[vary] = (name, value + b", Accept-Encoding")
        if request.method == b"HEAD":
            return headers
        coding = choose_coding(
            request.requestHeaders.getRawHeaders(b"accept-encoding"), self._offered
        )
        if coding is None:
            return headers
        context.encoder = new_encoder(coding, self._level)
        context.responseLength = None
        out = []
        for name, value in headers:
            if name.lower() == b"etag" and not value.startswith(b"W/"):
                value = b"W/" + value
            elif name.lower() == b"content-encoding":
                continue
            out.append((name, value))
        out.append((b"Content-Encoding", coding))
        return out

    def responseBody(self, context: RequestContext, data: bytes, last: bool) -> bytes:
        encoder = context.encoder
        if encoder is None:
            return data
        encoded = encoder.encode(data) if data else b""
        if last:
            encoded += encoder.finish()
            context.encoder = None
        return encoded
