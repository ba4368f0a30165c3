# -*- test-case-name: tests.test_http1 -*-
"""
HTTP/1.1 wire format for the backend side: request heads out, responses in.

L{ResponseParser} takes bytes and calls a handler; it does no I/O and knows
no reactor, so every framing case is testable with plain byte strings.
"""

from __future__ import annotations

import re
from typing import Dict, List, Optional, Sequence, Tuple, Union

HeaderList = List[Tuple[bytes, bytes]]

#: Largest response head (status line and headers) accepted from a backend.
MAX_HEAD = 64 * 1024
#: Most digits a chunk-size line may have (16 hex digits is 2**64).
MAX_CHUNK_SIZE_DIGITS = 16
#: Longest reason phrase relayed; a longer one is replaced (by an empty
#: one, for which the client side writes the code's standard phrase).
MAX_REASON = 512

#: A token (RFC 9110 5.6.2): methods, header names, coding names. "\\Z",
#: not "$", which would also match before a trailing newline.
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
_HEX = frozenset(b"0123456789abcdefABCDEF")
_HEAD_END = re.compile(b"\n\r?\n")
#: What a response head may not hold anywhere: a control character other
#: than HTAB (and the LF and CR ending lines), DEL, or a CR not followed by
#: LF. Reason phrases (RFC 9112 4) and field values (RFC 9110 5.5) are
#: HTAB, SP, VCHAR and obs-text; field names are tokens anyway.
_BAD_OCTET = re.compile(b"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]|\r(?!\n)")


class ProtocolError(Exception):
    """
    The backend sent something that is not a valid HTTP/1.x response.
    """


def request_head(
    method: bytes, target: bytes, headers: Sequence[Tuple[bytes, bytes]]
) -> bytes:
    """
    Serialize a request line and headers, ending with the empty line.

    Values must already be free of CR/LF/NUL (the client side rejects them
    before a request gets here).
    """
    parts = [method, b" ", target, b" HTTP/1.1\r\n"]
    for name, value in headers:
        parts += (name, b": ", value, b"\r\n")
    parts.append(b"\r\n")
    return b"".join(parts)


def chunk(data: bytes) -> bytes:
    """
    One chunk of a chunked body; nothing for empty data (an empty chunk
    would end the body).
    """
    if not data:
        return b""
    return b"%x\r\n%s\r\n" % (len(data), data)


LAST_CHUNK = b"0\r\n\r\n"


# Parser states.
_HEAD = 0
_LENGTH = 1
_CHUNK_SIZE = 2
_CHUNK_DATA = 3
_CHUNK_CRLF = 4
_TRAILERS = 5
_UNTIL_CLOSE = 6
_DONE = 7


class ResponseParser:
    """
    Incremental parser of one HTTP/1.x response at a time.

    The handler gets:
      - C{responseHead(version, code, reason, headers)} once per final
        response,
      - C{responseInterim(code, reason, headers)} for each 1xx interim
        response before it, if the handler has that method,
      - C{responseSwitched(version, reason, headers, rest)} for a 101 to a
        request that asked to upgrade (L{expect} with C{upgrade}); C{rest}
        is what followed the head in the same read, the other protocol's
        first bytes, and the parser is done (a 101 to any other request
        is an error),
      - C{responseBody(data)} for each piece of body,
      - C{responseEnd()} when the body is complete.

    @ivar keepAlive: after C{responseEnd}, whether the connection may carry
        another request (HTTP/1.1 without C{Connection: close}, and a body
        delimited by length or chunking).
    """

    def __init__(self, handler) -> None:
        self._handler = handler
        #: C{responseInterim(code, reason, headers)}, if the handler has it.
        self._interim = getattr(handler, "responseInterim", None)
        self._state = _DONE
        self._buffer = b""
        self._remaining = 0
        self._isHead = False
        self._upgrade = False
        self.keepAlive = False
        self.started = False
        #: The current response's Content-Length when it frames the body
        #: (not chunked, not HEAD/204/304), else L{None}.
        self.length: Optional[int] = None

    def expect(self, method: bytes, upgrade: bool = False) -> None:
        """
        Prepare for the response to a request with this method.

        @param upgrade: whether the request asked to switch protocols, so
            that a 101 may answer it.
        """
        self._state = _HEAD
        self._buffer = b""
        self._isHead = method == b"HEAD"
        self._upgrade = upgrade
        self.keepAlive = False
        self.started = False
        self.length = None

    @property
    def done(self) -> bool:
        return self._state == _DONE

    def feed(self, data: bytes) -> None:
        """
        Parse more bytes from the backend.

        @raise ProtocolError: on malformed input or bytes after the response.
        """
        if self._buffer:
            data = self._buffer + data
            self._buffer = b""
        if data:
            self.started = True
        while data:
            state = self._state
            if state == _LENGTH:
                if len(data) < self._remaining:
                    self._remaining -= len(data)
                    self._handler.responseBody(data)
                    return
                piece, data = data[: self._remaining], data[self._remaining :]
                self._remaining = 0
                if piece:
                    self._handler.responseBody(piece)
                self._finish(data)
                return
            elif state == _CHUNK_DATA:
                if len(data) <= self._remaining:
                    self._remaining -= len(data)
                    self._handler.responseBody(data)
                    if self._remaining == 0:
                        self._state = _CHUNK_CRLF
                    return
                piece, data = data[: self._remaining], data[self._remaining :]
                self._remaining = 0
                self._state = _CHUNK_CRLF
                self._handler.responseBody(piece)
            elif state == _UNTIL_CLOSE:
                self._handler.responseBody(data)
                return
            elif state == _HEAD:
                data = self._parseHead(data)
            elif state in (_CHUNK_SIZE, _CHUNK_CRLF, _TRAILERS):
                end = data.find(b"\n")
                if end < 0:
                    if len(data) > MAX_HEAD:
                        raise ProtocolError("chunk framing line too long")
                    self._buffer = data
                    return
                line, data = data[:end].rstrip(b"\r"), data[end + 1 :]
                if self._chunkLine(line):
                    self._finish(data)
                    return
            else:
                raise ProtocolError("data after the end of the response")

    def eof(self, clean: bool = True) -> None:
        """
        The backend closed the connection.

        @param clean: whether it closed cleanly (a FIN): only that ends a
            body delimited by the close; a reset cuts it short.
        @raise ProtocolError: if the response was incomplete.
        """
        if self._state == _UNTIL_CLOSE:
            if not clean:
                raise ProtocolError("connection lost during a close-delimited body")
            self._state = _DONE
            self.keepAlive = False
            self._handler.responseEnd()
        elif self._state != _DONE:
            raise ProtocolError("connection closed before the response was complete")

    def _finish(self, rest: bytes) -> None:
        """
        The response is complete; C{rest} came after it in the same read.
        Those bytes are not a response to anything (one request at a time
        is sent): they are dropped, never parsed as the next response
        (the handler may send the next request on this connection from
        C{responseEnd}), and the connection is not kept alive.
        """
        if rest:
            self.keepAlive = False
        self._state = _DONE
        self._handler.responseEnd()

    def _chunkLine(self, line: bytes) -> bool:
        """
        One chunk framing line; whether it ended the response.
        """
        if self._state == _CHUNK_CRLF:
            if line:
                raise ProtocolError("chunk data not followed by CRLF")
            self._state = _CHUNK_SIZE
        elif self._state == _CHUNK_SIZE:
            size = line.split(b";", 1)[0].strip(b" \t")
            if (
                not size
                or len(size) > MAX_CHUNK_SIZE_DIGITS
                or not _HEX.issuperset(size)
            ):
                raise ProtocolError("invalid chunk size %r" % (line[:40],))
            self._remaining = int(size, 16)
            self._state = _TRAILERS if self._remaining == 0 else _CHUNK_DATA
        else:
            # Trailers are read and dropped: lbproxy does not forward them.
            return not line
        return False

    def _parseHead(self, data: bytes) -> bytes:
        # The head ends at the first empty line, whether lines end in CRLF
        # or a bare LF.
        end = _HEAD_END.search(data)
        if end is None:
            if len(data) > MAX_HEAD:
                raise ProtocolError("response head too large")
            self._buffer = data
            return b""
        head, rest = data[: end.start()], data[end.end() :]
        if head.endswith(b"\r"):
            head = head[:-1]
        if len(head) > MAX_HEAD:
            raise ProtocolError("response head too large")
        lines = head.split(b"\n")
        status = lines[0]
        version, code, reason = _statusLine(status.rstrip(b"\r"))
        # One scan of the whole head for control characters.
        bad = _BAD_OCTET.search(head)
        if bad is not None and bad.start() < len(status):
            # In the reason phrase (the version and code are checked
            # already): not relayed.
            reason = b""
            bad = _BAD_OCTET.search(head, len(status))
        if bad is not None:
            raise ProtocolError("control character in the response head")
        if len(reason) > MAX_REASON:
            reason = b""
        headers = _headerLines(lines[1:])
        if 100 <= code < 200:
            if code == 101:
                if not self._upgrade:
                    raise ProtocolError("unexpected 101 Switching Protocols")
                # The connection speaks another protocol from here on.
                self._state = _DONE
                self.keepAlive = False
                self._handler.responseSwitched(version, reason, headers, rest)
                return b""
            # Interim response (100 Continue, 103 Early Hints): passed on
            # to a handler that wants it, then the final one follows.
            if self._interim is not None:
                self._interim(code, reason, headers)
            return rest
        self._frame(version, code, headers)
        self._handler.responseHead(version, code, reason, headers)
        if self._state == _DONE:
            self._finish(rest)
            return b""
        return rest

    def _frame(self, version: bytes, code: int, headers: HeaderList) -> None:
        connection = b""
        lengths = []
        codings: List[bytes] = []
        for name, value in headers:
            lower = name.lower()
            if lower == b"content-length":
                lengths.append(value)
            elif lower == b"transfer-encoding":
                codings += [c.strip().lower() for c in value.split(b",")]
            elif lower == b"connection":
                connection += b"," + value.lower()
        tokens = {t.strip() for t in connection.split(b",")}
        if version == b"HTTP/1.1":
            self.keepAlive = b"close" not in tokens
        else:
            self.keepAlive = b"keep-alive" in tokens
        if self._isHead or code in (204, 304):
            self._state = _DONE
            return
        if codings:
            if codings[-1] == b"chunked":
                self._state = _CHUNK_SIZE
            else:
                self._state = _UNTIL_CLOSE
                self.keepAlive = False
            if lengths:
                # Both given: chunking wins, but do not trust this
                # connection with another request.
                self.keepAlive = False
            return
        if lengths:
            length = _contentLength(lengths)
            self.length = length
            self._remaining = length
            self._state = _LENGTH if length else _DONE
            return
        self._state = _UNTIL_CLOSE
        self.keepAlive = False


def content_length(headers: Sequence[Tuple[bytes, bytes]]) -> Optional[int]:
    """
    The valid C{Content-Length} of a header list, or L{None} if absent.

    @raise ProtocolError: for an invalid or conflicting value.
    """
    lengths = [v for n, v in headers if n.lower() == b"content-length"]
    return _contentLength(lengths) if lengths else None


def _contentLength(values: Sequence[bytes]) -> int:
    found = set()
    for value in values:
        for part in value.split(b","):
            part = part.strip()
            if not part.isdigit() or len(part) > 19:
                raise ProtocolError("invalid Content-Length %r" % (value[:40],))
            found.add(int(part))
    if len(found) != 1:
        raise ProtocolError("conflicting Content-Length values")
    return found.pop()


def _statusLine(line: bytes) -> Tuple[bytes, int, bytes]:
    parts = line.split(b" ", 2)
    if len(parts) < 2 or parts[0] not in (b"HTTP/1.1", b"HTTP/1.0"):
        raise ProtocolError("invalid status line %r" % (line[:80],))
    code = parts[1]
    if len(code) != 3 or not code.isdigit() or not b"100" <= code <= b"599":
        # Three digits, 100 to 599 (RFC 9110 15): 000, 099, 600 are not.
        raise ProtocolError("invalid status code %r" % (code[:10],))
    reason = parts[2] if len(parts) == 3 else b""
    return parts[0], int(code), reason


def is_token(value: Union[bytes, str]) -> bool:
    """
    Whether C{value} is an RFC 9110 token (a method, a header name): one or
    more of letters, digits and C{!#$%&'*+-.^_`|~}, nothing else.
    """
    if isinstance(value, str):
        value = value.encode("ascii", "replace")
    return _TOKEN.match(value) is not None


#: Header names already seen to be tokens, with their lower-case forms
#: (bounded): requests and responses repeat the same few names.
_knownNames: Dict[bytes, bytes] = {}
_MAX_KNOWN_NAMES = 1000


def header_name_lower(name: bytes) -> Optional[bytes]:
    """
    The lower-case form of a header name, or L{None} if it is not a token.
    """
    lower = _knownNames.get(name)
    if lower is None:
        if _TOKEN.match(name) is None:
            return None
        lower = name.lower()
        if len(_knownNames) < _MAX_KNOWN_NAMES:
            _knownNames[name] = lower
    return lower


def _headerLines(lines: Sequence[bytes]) -> HeaderList:
    headers = []
    for raw in lines:
        line = raw.rstrip(b"\r")
        if not line:
            continue
        name, sep, value = line.partition(b":")
        if not sep or header_name_lower(name) is None:
            if line[0] in b" \t":
                raise ProtocolError("obsolete header line folding")
            raise ProtocolError("invalid header line %r" % (line[:80],))
        # (Control characters were refused in _parseHead's scan.)
        value = value.strip(b" \t")
        headers.append((name, value))
    return headers
