# -*- test-case-name: tests.test_hygiene -*-
"""
A strict decoder for chunked request bodies (RFC 9112 section 7.1), used
by L{lbproxy.frontend.hygiene.GuardedChannel} in place of Twisted's.

Twisted's decoder accepts chunk sizes of any length; this one refuses
everything ambiguous, so that lbproxy and the backend cannot disagree on
where a body ends.
"""

from __future__ import annotations

# Private to Twisted, but what HTTPChannel expects a body decoder to raise:
# _MalformedChunkedDataError answers 400, _DataLoss marks a short body.
from twisted.web.http import _DataLoss, _MalformedChunkedDataError

from lbproxy.wire.http1 import MAX_CHUNK_SIZE_DIGITS

__all__ = ["MAX_LINE", "MAX_TRAILERS", "StrictChunkedDecoder"]

_HEX = frozenset(b"0123456789abcdefABCDEF")
#: Characters allowed in a chunk extension (token, "=", quoted-string
#: contents, separators and whitespace); no control characters.
_EXT_FORBIDDEN = frozenset(range(0, 32)) - {9} | {127}
#: The longest trailer section accepted (it is read and dropped).
MAX_TRAILERS = 16 * 1024
#: The longest chunk-size line (size and extensions) or trailer line, CRLF
#: not included.
MAX_LINE = 4096


class StrictChunkedDecoder:
    """
    A chunked body decoder for requests that refuses what is ambiguous:
    sizes that are not 1 to 16 hex digits, extensions with control
    characters, chunk data not followed by CRLF, oversized lines. Trailers
    are read and dropped (never taken as framing or routing headers).

    Same interface as Twisted's private C{_ChunkedTransferDecoder}:
    C{dataReceived} raising C{http._MalformedChunkedDataError}, and
    C{noMoreData}.
    """

    _SIZE, _DATA, _CRLF, _TRAILERS, _DONE = range(5)

    def __init__(self, dataCallback, finishCallback) -> None:
        self._dataCallback = dataCallback
        self._finishCallback = finishCallback
        self._state = self._SIZE
        self._buffer = b""
        self._remaining = 0
        self._trailerBytes = 0

    def dataReceived(self, data: bytes) -> None:
        data = self._buffer + data
        self._buffer = b""
        while data:
            state = self._state
            if state == self._DATA:
                if len(data) <= self._remaining:
                    self._remaining -= len(data)
                    self._dataCallback(data)
                    if not self._remaining:
                        self._state = self._CRLF
                    return
                piece, data = data[: self._remaining], data[self._remaining :]
                self._remaining = 0
                self._state = self._CRLF
                self._dataCallback(piece)
            elif state == self._DONE:
                raise RuntimeError("chunked body already complete")
            else:
                end = data.find(b"\r\n")
                if end < 0:
                    # The line so far (a last CR may start its CRLF).
                    if len(data) - data.endswith(b"\r") > MAX_LINE or b"\n" in data:
                        raise _MalformedChunkedDataError("chunk framing line invalid")
                    self._buffer = data
                    return
                if end > MAX_LINE:
                    # However the bytes arrived: in one read or many.
                    raise _MalformedChunkedDataError("chunk framing line too long")
                line, data = data[:end], data[end + 2 :]
                if self._line(line):
                    self._state = self._DONE
                    self._finishCallback(data)
                    return

    def _line(self, line: bytes) -> bool:
        """
        One CRLF-terminated framing line; returns whether the body ended.
        """
        if b"\n" in line or b"\r" in line:
            raise _MalformedChunkedDataError("bare CR or LF in chunk framing")
        state = self._state
        if state == self._CRLF:
            if line:
                raise _MalformedChunkedDataError("chunk data not followed by CRLF")
            self._state = self._SIZE
            return False
        if state == self._SIZE:
            size, _, extension = line.partition(b";")
            size = size.rstrip(b" \t")
            if not size or len(size) > MAX_CHUNK_SIZE_DIGITS or not _HEX.issuperset(size):
                raise _MalformedChunkedDataError("invalid chunk size")
            if _EXT_FORBIDDEN.intersection(extension):
                raise _MalformedChunkedDataError("control character in chunk extension")
            self._remaining = int(size, 16)
            self._state = self._DATA if self._remaining else self._TRAILERS
            return False
        # Trailers: read and dropped.
        if not line:
            return True
        self._trailerBytes += len(line) + 2
        if self._trailerBytes > MAX_TRAILERS or line[:1] in (b" ", b"\t"):
            raise _MalformedChunkedDataError("invalid trailers")
        return False

    def noMoreData(self) -> None:
        if self._state != self._DONE:
            raise _DataLoss()
