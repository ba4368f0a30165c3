# -*- test-case-name: tests.test_chunked,tests.test_hygiene -*-
"""
A strict decoder for chunked request bodies (RFC 9112 section 7.1), used
by L{lbproxy.frontend.hygiene.GuardedChannel} in place of Twisted's.

Twisted's decoder accepts chunk sizes of any length; this one refuses
everything ambiguous, so that lbproxy and the backend cannot disagree on
where a body ends. It is also cheap per chunk (a read is scanned in
place), and refuses bodies made mostly of framing, whose cost is per
chunk rather than per byte. C{python -m bench.chunked_cpu} measures it.
"""

from __future__ import annotations

import re

# Private to Twisted, but what HTTPChannel expects a body decoder to raise:
# _MalformedChunkedDataError answers 400, _DataLoss marks a short body.
from twisted.web.http import _DataLoss, _MalformedChunkedDataError

from lbproxy.wire.http1 import MAX_CHUNK_SIZE_DIGITS

__all__ = ["FRAMING_RATIO", "MAX_LINE", "MAX_TRAILERS", "MIN_FRAMING", "StrictChunkedDecoder"]

#: A chunk-size line, CRLF excluded (RFC 9112 7.1): 1 to 16 hex digits,
#: optional whitespace, and extensions without control characters (tab
#: allowed).
_SIZE_LINE = re.compile(
    rb"([0-9a-fA-F]{1,%d})[ \t]*(?:;[^\x00-\x08\x0a-\x1f\x7f]*)?" % (MAX_CHUNK_SIZE_DIGITS,)
)
#: The longest trailer section accepted (it is read and dropped).
MAX_TRAILERS = 16 * 1024
#: The longest chunk-size line (size and extensions) or trailer line, CRLF
#: not included.
MAX_LINE = 4096
#: Framing bytes (size lines and the CRLF after each chunk's data) a body
#: may have before L{FRAMING_RATIO} applies.
MIN_FRAMING = 64 * 1024
#: Past L{MIN_FRAMING}, a body whose framing bytes exceed this many times
#: its payload bytes is refused: many tiny chunks cost CPU per chunk, not
#: per byte.
FRAMING_RATIO = 1

_SIZE, _DATA, _CRLF, _TRAILERS, _DONE = range(5)


class StrictChunkedDecoder:
    """
    A chunked body decoder for requests that refuses what is ambiguous:
    sizes that are not 1 to 16 hex digits, extensions with control
    characters, chunk data not followed by CRLF, lines over L{MAX_LINE}
    bytes, framing that outweighs the payload (L{FRAMING_RATIO}). Trailers
    are read and dropped (never taken as framing or routing headers).

    Each read is scanned in place, and the chunk data it holds is passed on
    in one piece: the cost of a chunk is a few comparisons, not a callback
    and a copy of the rest of the read.

    Same interface as Twisted's private C{_ChunkedTransferDecoder}:
    C{dataReceived} raising C{http._MalformedChunkedDataError}, and
    C{noMoreData}.

    @ivar maxFramingRatio: L{FRAMING_RATIO} (0: no limit).
    """

    maxFramingRatio = FRAMING_RATIO

    def __init__(self, dataCallback, finishCallback) -> None:
        self._dataCallback = dataCallback
        self._finishCallback = finishCallback
        self._state = _SIZE
        self._buffer = b""
        self._remaining = 0
        self._trailerBytes = 0
        # Framing bytes, and the payload bytes the size lines announced.
        self._framing = 0
        self._payload = 0

    def dataReceived(self, data: bytes) -> None:
        if self._buffer:
            data = self._buffer + data
            self._buffer = b""
        pieces = []
        append = pieces.append
        find = data.find
        match = _SIZE_LINE.fullmatch
        state = self._state
        framing = self._framing
        payload = self._payload
        pos = 0
        size = len(data)
        try:
            while pos < size:
                if state == _SIZE:
                    end = find(b"\r\n", pos, pos + MAX_LINE + 2)
                    if end < 0:
                        self._partialLine(data, pos)
                        break
                    line = match(data, pos, end)
                    if line is None:
                        raise _MalformedChunkedDataError("invalid chunk-size line")
                    remaining = int(line.group(1), 16)
                    # The size line, and the CRLF after the data.
                    framing += end - pos + (4 if remaining else 2)
                    payload += remaining
                    if (
                        framing > MIN_FRAMING
                        and self.maxFramingRatio
                        and framing > self.maxFramingRatio * payload
                    ):
                        raise _MalformedChunkedDataError("chunk framing outweighs the payload")
                    pos = end + 2
                    if not remaining:
                        state = _TRAILERS
                        continue
                    stop = pos + remaining
                    if data.startswith(b"\r\n", stop):
                        # The whole chunk is here (the common case).
                        append(data[pos:stop])
                        pos = stop + 2
                        continue
                    self._remaining = remaining
                    state = _DATA
                elif state == _DATA:
                    stop = pos + self._remaining
                    if stop >= size:
                        append(data[pos:] if pos else data)
                        self._remaining = stop - size
                        if not self._remaining:
                            state = _CRLF
                        break
                    append(data[pos:stop])
                    self._remaining = 0
                    pos = stop
                    state = _CRLF
                elif state == _CRLF:
                    if data.startswith(b"\r\n", pos):
                        pos += 2
                        state = _SIZE
                    elif pos == size - 1 and data[pos] == 13:
                        # The CR of the CRLF; its LF is still to come.
                        self._buffer = data[pos:]
                        break
                    else:
                        raise _MalformedChunkedDataError("chunk data not followed by CRLF")
                elif state == _TRAILERS:
                    end = find(b"\r\n", pos, pos + MAX_LINE + 2)
                    if end < 0:
                        self._partialLine(data, pos)
                        break
                    if end == pos:
                        # The empty line: the body is complete.
                        self._state = _DONE
                        if pieces:
                            self._dataCallback(b"".join(pieces))
                        self._finishCallback(data[end + 2 :])
                        return
                    self._trailer(data[pos:end])
                    pos = end + 2
                else:
                    raise RuntimeError("chunked body already complete")
        finally:
            self._framing = framing
            self._payload = payload
        self._state = state
        if pieces:
            self._dataCallback(b"".join(pieces))

    def _partialLine(self, data: bytes, pos: int) -> None:
        """
        Keep the start of a framing line, C{data[pos:]}, that has no CRLF
        yet; refuse it if it cannot become a valid line.
        """
        rest = data[pos:]
        # A CR at its end may start the CRLF.
        length = len(rest) - rest.endswith(b"\r")
        if length > MAX_LINE or b"\n" in rest or rest.find(b"\r", 0, length) >= 0:
            raise _MalformedChunkedDataError("chunk framing line invalid")
        self._buffer = rest

    def _trailer(self, line: bytes) -> None:
        """
        One trailer line, CRLF excluded: counted, checked, dropped.
        """
        if b"\r" in line or b"\n" in line:
            raise _MalformedChunkedDataError("bare CR or LF in a trailer")
        self._trailerBytes += len(line) + 2
        if self._trailerBytes > MAX_TRAILERS or line[:1] in (b" ", b"\t"):
            raise _MalformedChunkedDataError("invalid trailers")

    def noMoreData(self) -> None:
        if self._state != _DONE:
            raise _DataLoss()
