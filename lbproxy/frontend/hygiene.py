# -*- test-case-name: tests.test_hygiene -*-
"""
Request hygiene, limits and timeouts on the client side of HTTP/1.x.

L{GuardedChannel} is the part of lbproxy's channel that treats every byte
from a client as hostile until parsed. Twisted's C{HTTPChannel} already
rejects much (invalid header names, NUL/CR/LF in values, conflicting
framing headers, bad Content-Length values); this adds what it lets
through or handles too leniently:

  - obsolete line folding (Twisted joins it silently): 400;
  - a control character other than HTAB in a header line (Twisted
    refuses only NUL, CR and LF): 400;
  - a request head with bare-LF or bare-CR line endings (Twisted waits
    for a CRLF that never comes): 400 at once;
  - C{Transfer-Encoding: identity} (Twisted ignores it): 400;
  - C{Transfer-Encoding} in an HTTP/1.0 request (Twisted decodes it): 400;
  - chunk sizes with more than 16 hex digits (Twisted accepts them):
    400, through L{lbproxy.frontend.chunked.StrictChunkedDecoder};
  - a request line over C{max_request_line}: 414; a head over
    C{max_header_size} bytes or C{max_headers} lines: 431;
  - timeouts a drip-feeding client cannot reset: the whole head within
    C{header_timeout} (408), no gap longer than C{body_timeout} in the body
    (408), the whole request within C{request_timeout} (408), and an idle
    keep-alive connection closed after C{keepalive_timeout};
  - at most C{max_connections} client connections: beyond, 503 and close.

The limits are a L{lbproxy.frontend.limits.ClientLimits}.

Every rejection answers with a complete response and C{Connection: close},
closes the connection, and ignores anything the client sends after it.

Speed: a request head that arrives whole in one read and announces no
body (most GETs) is parsed in one pass by L{GuardedChannel._quickHead},
which takes only what is plainly valid and hands anything else to the
line-by-line parser above, where every rejection is made.
"""

from __future__ import annotations

import re
from typing import Optional

from twisted.internet.error import ConnectionLost
from twisted.python.failure import Failure
from twisted.web.http import HTTPChannel

from lbproxy.frontend.chunked import StrictChunkedDecoder
from lbproxy.frontend.limits import ClientLimits
from lbproxy.frontend.writebatch import batch_writes
from lbproxy.policy.headers import FIELD_CONTROL
from lbproxy.wire.http1 import header_name_lower, is_token

# For the one-pass parse of common request heads (GuardedChannel._quickHead).
_VISIBLE = re.compile(rb"[\x21-\x7e]+\Z")
#: Heads with these take the line-by-line path: they frame a body or ask
#: for 100 Continue.
_SLOW_PATH_HEADERS = frozenset([b"content-length", b"transfer-encoding", b"expect"])


def _response(code: int, phrase: bytes, extra: bytes = b"") -> bytes:
    body = b"%d %s\n" % (code, phrase)
    return (
        b"HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"Content-Length: %d\r\nConnection: close\r\n%s\r\n%s"
        % (code, phrase, len(body), extra, body)
    )


class GuardedChannel(HTTPChannel):
    """
    The hygiene, limits and timeouts of lbproxy's HTTP/1.x channel.

    @ivar limits: the L{ClientLimits}, set by the factory.
    @ivar rejected: the status of the rejection that closed this
        connection, or L{None}.
    """

    # Twisted's private names used here, on purpose: HTTPChannel has no
    # public hooks for what hygiene needs, so these follow its internals and
    # a Twisted release may rename them (tests/test_hygiene.py then fails):
    #   - _HTTPChannel__first_line (1 before a request line, 0 in headers):
    #     which limit a long line breaks (414 or 431), and the quick path;
    #   - _buffer (LineReceiver's partial line): bare LF and CR detection, and
    #     whether a request has started when the header timer fires;
    #   - _handlingRequest, _command, _path, _version: the quick path fills
    #     what HTTPChannel.lineReceived would have (and _version refuses
    #     Transfer-Encoding in HTTP/1.0);
    #   - _maybeChooseTransferDecoder, _failChooseTransferDecoder,
    #     _transferDecoder, _finishRequestBody: the strict chunked decoder
    #     replaces Twisted's and Transfer-Encoding: identity is refused;
    #   - _respondToBadRequestAndDisconnect: Twisted's 400s become lbproxy's
    #     rejections (complete response, then the rest ignored);
    #   - Request._disconnected: a request already gone is not told twice.
    limits = ClientLimits()
    rejected: Optional[int] = None
    _discarding = False
    # One timer serves the phases that never overlap ("header", "body",
    # "idle"): re-armed with reset(), not cancelled and recreated for every
    # request. The request deadline, for bodies only, is a second one.
    _timer = None
    _phase: Optional[str] = None
    _deadlineTimer = None
    _requestStarted = 0.0
    _headerBytes = 0
    _headerLines = 0
    _counted = False

    # Connection life ---------------------------------------------------------

    def connectionMade(self) -> None:
        # Writes sent once per reactor turn (see lbproxy.frontend.writebatch).
        batch_writes(self.transport)
        limits = self.limits
        # lbproxy's own limits decide; Twisted's must not trigger first.
        self.MAX_LENGTH = max(limits.max_request_line, limits.max_header_size)
        self.totalHeadersSize = limits.max_request_line + limits.max_header_size + 4096
        self.maxHeaders = limits.max_headers + 1
        HTTPChannel.connectionMade(self)
        factory = getattr(self, "factory", None)
        if factory is not None:
            factory.openConnections = getattr(factory, "openConnections", 0) + 1
            self._counted = True
            # Followed for reload drains and graceful shutdown (lbproxy.app.drain).
            live = getattr(factory, "liveConnections", None)
            if live is not None:
                live.opened(self)
            if factory.openConnections > limits.max_connections:
                self._reject(503, b"Service Unavailable", b"Retry-After: 1\r\n")
                return
        self._arm("header", limits.header_timeout)

    def connectionLost(self, reason) -> None:
        self._cancelTimers()
        if self._counted:
            self._counted = False
            self.factory.openConnections -= 1
            live = getattr(self.factory, "liveConnections", None)
            if live is not None:
                live.closed(self)
        HTTPChannel.connectionLost(self, reason)

    def _arm(self, phase: str, seconds: float) -> None:
        """
        Time the C{phase} out after C{seconds} (0: never).
        """
        if seconds <= 0:
            self._phase = None
            return
        self._phase = phase
        timer = self._timer
        if timer is not None and timer.active():
            timer.reset(seconds)
        else:
            self._timer = self.callLater(seconds, self._timedOut)

    def _disarm(self) -> None:
        # The timer may stay scheduled: it does nothing outside a phase.
        self._phase = None

    def _timedOut(self) -> None:
        self._timer = None
        phase, self._phase = self._phase, None
        if phase == "header":
            self._headerTimedOut()
        elif phase == "body":
            self._bodyTimedOut()
        elif phase == "idle":
            self._idleTimedOut()

    def _now(self) -> float:
        return self.factory.reactor.seconds()

    def _cancelTimers(self) -> None:
        self._phase = None
        for name in ("_timer", "_deadlineTimer"):
            timer = getattr(self, name)
            if timer is not None:
                if timer.active():
                    timer.cancel()
                setattr(self, name, None)

    # Rejections --------------------------------------------------------------

    def _reject(self, code: int, phrase: bytes, extra: bytes = b"") -> None:
        """
        Answer C{code} and close; ignore whatever the client sends next.
        """
        if self._discarding:
            return
        self._discarding = True
        self.rejected = code
        self._cancelTimers()
        request = self.requests[-1] if self.requests else None
        observer = getattr(getattr(self, "factory", None), "onReject", None)
        if observer is not None:
            # Logged here unless a request already went down the pipeline.
            observer(self, code, any(getattr(r, "_early", False) for r in self.requests))
        if request is None or not request.startedWriting:
            self.transport.write(_response(code, phrase, extra))
        self.persistent = False
        self.loseConnection()
        # A request already being forwarded (its body was streaming) must
        # not go on: tell it now, not when the close completes, so nothing
        # more reaches the backend.
        for request in list(self.requests):
            # (Request._disconnected: Twisted's, set once connectionLost ran.)
            if getattr(request, "_early", False) and not request._disconnected:
                # Logged with the status the client got, not as gone (499).
                request.rejected = code
                request.connectionLost(Failure(ConnectionLost("request rejected")))

    def _respondToBadRequestAndDisconnect(self) -> None:
        # Twisted's private hook for every 400 it finds while parsing.
        self._reject(400, b"Bad Request")

    def lineLengthExceeded(self, line: bytes) -> None:
        # HTTPChannel's private (name-mangled) "waiting for a request line".
        if self._HTTPChannel__first_line:
            self._reject(414, b"URI Too Long")
        else:
            self._reject(431, b"Request Header Fields Too Large")

    # Parsing ---------------------------------------------------------------

    def dataReceived(self, data: bytes) -> None:
        if self._discarding:
            return
        phase = self._phase
        if phase == "idle":
            # The first byte of the next request: the head is due in time.
            self._arm("header", self.limits.header_timeout)
        elif phase == "body":
            self._timer.reset(self.limits.body_timeout)
        # Twisted internals (see the class): no partial line buffered, a
        # request line expected, no request in progress.
        while (
            self.line_mode
            and not self._buffer
            and self._HTTPChannel__first_line == 1
            and not self._handlingRequest
            and self.persistent
        ):
            end = self._quickHead(data)
            if end is None:
                break
            data = data[end:]
            if not data or self._discarding:
                return
            if self._phase == "idle":
                # The request was answered at once; another one follows.
                self._arm("header", self.limits.header_timeout)
        HTTPChannel.dataReceived(self, data)
        if self.line_mode and not self._discarding:
            # What is left is part of a line, without its CRLF. A bare LF in
            # it, or a CR not at its end (so not the start of a CRLF):
            # Twisted would wait for a CRLF that never comes.
            rest = self._buffer
            if rest and (b"\n" in rest or rest.find(b"\r", 0, len(rest) - 1) >= 0):
                self._reject(400, b"Bad Request")

    def _quickHead(self, data: bytes) -> Optional[int]:
        """
        Take a whole request head from the start of C{data} in one pass, if
        it is complete, well-formed, within the limits and announces no
        body: the common case, parsed here without Twisted's line-by-line
        machinery. Anything else (a partial head, a body, C{Expect}, any
        doubt) returns L{None} and goes the line-by-line way, where every
        check and rejection lives; this accepts nothing that way refuses.

        @return: the offset just past the head, or L{None}.
        """
        end = data.find(b"\r\n\r\n")
        if end < 0:
            return None
        head = data[:end]
        lines = head.split(b"\r\n")
        separators = len(lines) - 1
        if head.count(b"\r") != separators or head.count(b"\n") != separators:
            # A bare CR or LF somewhere.
            return None
        if FIELD_CONTROL.search(head) is not None:
            # Another control character (NUL included) somewhere.
            return None
        limits = self.limits
        requestLine = lines[0]
        if (
            len(requestLine) > limits.max_request_line
            or separators > limits.max_headers
            or end - len(requestLine) > limits.max_header_size
        ):
            return None
        parts = requestLine.split(b" ")
        if len(parts) != 3:
            return None
        method, target, version = parts
        if (
            (version != b"HTTP/1.1" and version != b"HTTP/1.0")
            or not is_token(method)
            or _VISIBLE.match(target) is None
        ):
            return None
        pairs = []
        for line in lines[1:]:
            name, colon, value = line.partition(b":")
            # Also refuses a name with spaces (before the colon, or a folded
            # line) and a line without a colon.
            lower = header_name_lower(name) if colon else None
            if lower is None:
                return None
            if lower in _SLOW_PATH_HEADERS:
                return None
            pairs.append((name, value.strip(b" \t")))
        request = self.requestFactory(self, len(self.requests))
        self.requests.append(request)
        # The state HTTPChannel.lineReceived leaves after a request line
        # (Twisted's private names), for allHeadersReceived and what follows.
        self._HTTPChannel__first_line = 0
        self._command, self._path, self._version = method, target, version
        add = request.requestHeaders.addRawHeader
        for name, value in pairs:
            add(name, value)
        self.allHeadersReceived()
        if not self._discarding:
            self.allContentReceived()
        return end + 4

    def rawDataReceived(self, data: bytes) -> None:
        if self._discarding:
            return
        HTTPChannel.rawDataReceived(self, data)

    def lineReceived(self, line: bytes) -> None:
        if self._discarding:
            return
        if b"\r" in line or b"\n" in line:
            # A bare CR or LF inside a line (RFC 9112 2.2). Twisted 26.10
            # rejects it in header values, but Twisted 25.5 (the newest for
            # Python 3.9, so for PyPy) passes it on: check it here.
            self._reject(400, b"Bad Request")
            return
        limits = self.limits
        if self._HTTPChannel__first_line:
            if line:
                if len(line) > limits.max_request_line:
                    self._reject(414, b"URI Too Long")
                    return
                self._headerBytes = 0
                self._headerLines = 0
                self._requestStarted = self._now() if limits.request_timeout > 0 else 0.0
        elif line:
            self._headerBytes += len(line) + 2
            self._headerLines += 1
            if self._headerBytes > limits.max_header_size or self._headerLines > limits.max_headers:
                self._reject(431, b"Request Header Fields Too Large")
                return
            if line[0] in b" \t":
                # Obsolete line folding (RFC 9112 5.2): reject, never join.
                self._reject(400, b"Bad Request")
                return
            if FIELD_CONTROL.search(line) is not None:
                # A control character other than HTAB (RFC 9110 5.5);
                # Twisted refuses only NUL (and CR and LF, above).
                self._reject(400, b"Bad Request")
                return
        HTTPChannel.lineReceived(self, line)

    def _maybeChooseTransferDecoder(self, header: bytes, data: bytes) -> bool:
        # Twisted's private hook choosing the body decoder, and its
        # _failChooseTransferDecoder (Twisted 24.10 and later); without
        # them, identity and over-long chunk sizes would pass
        # (tests.test_hygiene.MalformedTests).
        if header == b"Transfer-Encoding" and (
            data.lower() != b"chunked" or self._version != b"HTTP/1.1"
        ):
            # Only "chunked" is accepted; Twisted ignores "identity". In an
            # HTTP/1.0 request the framing is faulty (RFC 9112 6.1): an
            # HTTP/1.0 hop may not have understood it.
            return self._failChooseTransferDecoder()
        if not HTTPChannel._maybeChooseTransferDecoder(self, header, data):
            return False
        if header == b"Transfer-Encoding":
            self._transferDecoder = StrictChunkedDecoder(
                self.requests[-1].handleContentChunk, self._finishRequestBody
            )
        return True

    def allHeadersReceived(self) -> None:
        limits = self.limits
        if self.length != 0:
            self._arm("body", limits.body_timeout)
            if limits.request_timeout > 0:
                # The whole request (head included) within request_timeout.
                left = self._requestStarted + limits.request_timeout - self._now()
                self._deadlineTimer = self.callLater(max(left, 0), self._requestTimedOut)
        else:
            self._disarm()
        HTTPChannel.allHeadersReceived(self)

    def allContentReceived(self) -> None:
        if self._discarding:
            return
        self._bodySuspended = False
        if self._phase == "body":
            self._disarm()
        timer, self._deadlineTimer = self._deadlineTimer, None
        if timer is not None and timer.active():
            timer.cancel()
        HTTPChannel.allContentReceived(self)

    def requestDone(self, request) -> None:
        if self.persistent and not self._discarding:
            # Idle until the next request starts (set before the base class
            # replays pipelined bytes, which cancel it at once).
            self._arm("idle", self.limits.keepalive_timeout)
        HTTPChannel.requestDone(self, request)

    # Timeouts ----------------------------------------------------------------

    def _headerTimedOut(self) -> None:
        if self._HTTPChannel__first_line and not self._buffer:
            # Nothing of a request arrived: just close.
            self._discarding = True
            self._cancelTimers()
            self.loseConnection()
        else:
            self._reject(408, b"Request Timeout")

    _bodySuspended = False

    def suspendBodyTimer(self) -> None:
        """
        lbproxy paused reading the body: the client is not slow.
        """
        if self._phase == "body":
            self._disarm()
            self._bodySuspended = True

    def resumeBodyTimer(self) -> None:
        if self._bodySuspended and not self._discarding:
            self._bodySuspended = False
            self._arm("body", self.limits.body_timeout)

    def _bodyTimedOut(self) -> None:
        self._reject(408, b"Request Timeout")

    def _requestTimedOut(self) -> None:
        self._deadlineTimer = None
        self._reject(408, b"Request Timeout")

    def _idleTimedOut(self) -> None:
        self._discarding = True
        self._cancelTimers()
        self.loseConnection()
