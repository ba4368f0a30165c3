# -*- test-case-name: tests.test_proxy -*-
"""
The client side of HTTP: a channel and request that hand a request to the
resource as soon as its headers are complete, and stream its body as it
arrives instead of spooling it to a temporary file first.

Stock C{twisted.web} calls C{render} only after the whole body has been
received. Here L{ProxyChannel.allHeadersReceived} starts processing at once;
body bytes then flow through a L{RequestBody} to the backend connection,
with backpressure in both directions.
"""

from __future__ import annotations

import io
from typing import Optional

from twisted.web import server
from twisted.python import failure
from twisted.web.http import RESPONSES, HTTPChannel, datetimeToString
from twisted.web.http_headers import Headers
from twisted.web.server import Request as _Request, Site as _Site

from lbproxy.frontend.body import RequestBody
from lbproxy.frontend.hygiene import GuardedChannel
from lbproxy.frontend.limits import ClientLimits
from lbproxy.frontend.target import valid_host

_dateCache = [-1, b""]


def _httpDate(seconds: float) -> bytes:
    """
    The HTTP date of C{seconds}, formatted at most once a second.
    """
    whole = int(seconds)
    if whole != _dateCache[0]:
        _dateCache[0] = whole
        _dateCache[1] = datetimeToString(whole)
    return _dateCache[1]


class ProxyRequest(server.Request):
    """
    A request processed as soon as its headers are complete.

    @ivar body: the streaming body, or L{None} for a request without one.
    """

    # Never parse form bodies; the body is not ours to read.
    _parsePOSTFormSubmission = False
    # A proxy adds no Content-Type of its own to a backend's response.
    defaultContentType = None
    body: Optional[RequestBody] = None
    _early = False
    #: Set by the channel when the client sent C{Expect: 100-continue}.
    expectContinue = False
    #: The status a rejecting channel answered, for the access log.
    rejected: Optional[int] = None

    @property
    def inbound(self):
        """
        The controls of the connection the request came on: the
        L{ProxyChannel} for HTTP/1.x, the stream's
        L{lbproxy.frontend.h2inbound.StreamInbound} for HTTP/2 (L{None} once the client
        is gone).  Both offer C{pauseBody}, C{resumeBody}, C{abandonInput},
        C{abortResponse}, C{persistent} and C{transport}.
        """
        channel = self.channel
        return getattr(channel, "inbound", channel)

    def gotLength(self, length: Optional[int]) -> None:
        # The content file stays empty: bytes go to self.body instead.
        self.content = io.BytesIO()
        self.body = RequestBody(self.inbound, length) if length != 0 else None

    def handleContentChunk(self, data: bytes) -> None:
        if self.body is not None and not self.finished:
            self.body.dataReceived(data)

    def headersReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        """
        Called by L{ProxyChannel} once the request head is complete: process
        the request now, with the body still to come.
        """
        self._early = True
        self._begin(command, path, version)

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        # The whole body has arrived.
        if not self._early:
            self._begin(command, path, version)
        elif self.body is not None:
            self.body.finished()

    def parseCookies(self) -> None:
        # A proxy passes cookies on; it never needs them parsed.
        pass

    def _begin(self, command: bytes, path: bytes, version: bytes) -> None:
        """
        What C{Request.requestReceived} and C{process} do, less what a
        proxy never uses: no query or form parsing into C{args}, no
        resource traversal (the site's resource answers every path), no
        C{Server} header; C{Date} is added when the response starts, if the
        backend sent none (L{write}).
        """
        self.method, self.uri, self.clientproto = command, path, version
        self.path = path.split(b"?", 1)[0]
        self.args = {}
        site = self.site = self.channel.site
        self.prepath = []
        self.postpath = []
        self.sitepath = []
        if self.path == b"*":
            self._handleStar()
            return
        try:
            self.render(site.resource)
        except BaseException:
            self.processingFailed(failure.Failure())

    def write(self, data: bytes) -> None:
        if not self.startedWriting and not self.responseHeaders.hasHeader(b"Date"):
            # Formatted at most once a second; a backend's own Date is kept.
            self.responseHeaders.setRawHeaders(
                b"Date", [_httpDate(self.site.reactor.seconds())]
            )
        server.Request.write(self, data)

    def writeInterim(self, code: int, reason: bytes, headers) -> None:
        """
        Write an informational (1xx) response head before the final
        response: on HTTP/1.1 a status line and fields; on HTTP/2 a HEADERS
        frame with C{:status} and no END_STREAM (RFC 9113 8.1), which the
        C{h2} library allows before the final response's.  (The caller
        leaves HTTP/1.0 clients out.)

        @param reason: the phrase, or empty for the code's standard one.
        @param headers: C{(name, value)} pairs, hop-by-hop ones removed.
        """
        channel = self.channel
        if channel is None or self.startedWriting:
            return
        if self.clientproto.startswith(b"HTTP/2"):
            # Twisted's H2Stream.writeHeaders sends one HEADERS frame (it
            # takes Headers, as Request.write gives it; h2 lowercases the
            # names); a stream the client reset is skipped there.
            fields = Headers()
            for name, value in headers:
                fields.addRawHeader(name, value)
            channel.writeHeaders(self.clientproto, b"%d" % (code,), b"", fields)
            return
        if channel.transport is None:
            return
        parts = [b"HTTP/1.1 %d " % (code,), reason or RESPONSES.get(code, b""), b"\r\n"]
        for name, value in headers:
            parts += (name, b": ", value, b"\r\n")
        parts.append(b"\r\n")
        channel.transport.write(b"".join(parts))

    @property
    def bodyComplete(self) -> bool:
        return self.body is None or self.body.complete

    def sendContinue(self) -> None:
        """
        The request is accepted: if the client waits for C{100 Continue}
        before sending its body, tell it to go on.
        """
        if self.expectContinue and not self.startedWriting and self.channel is not None:
            self.expectContinue = False
            self.channel.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def _handleStar(self) -> None:
        # (Named like Twisted's Request._handleStar, which it replaces along
        # with Request.process; only _begin calls it.)
        # Asterisk-form is for OPTIONS only (RFC 9112 3.2.4): answered here,
        # never forwarded; any other method with "*" is malformed, and so
        # is an HTTP/1.1 request without Host (RFC 9112 3.2), or one with
        # several or a bad one, as for any other target
        # (lbproxy.stages.target).
        hosts = self.requestHeaders.getRawHeaders(b"Host")
        if (
            self.method != b"OPTIONS"
            or (hosts is None and self.clientproto == b"HTTP/1.1")
            or (hosts is not None and (len(hosts) > 1 or not valid_host(hosts[0])))
        ):
            self.closeAfterResponse()
            self.setResponseCode(400, b"Bad Request")
        self.responseHeaders.removeHeader(b"Server")
        self.setHeader(b"Content-Length", b"0")
        self.finish()

    def closeAfterResponse(self) -> None:
        """
        Make this the connection's last response (C{Connection: close}),
        e.g. because the response starts before the request body is read.
        """
        self.inbound.persistent = False
        if not self.startedWriting and not self.clientproto.startswith(b"HTTP/2"):
            self.responseHeaders.setRawHeaders(b"Connection", [b"close"])

    def abortResponse(self) -> None:
        """
        The response cannot be completed (the backend failed after its
        head): end it so that the client cannot take it for complete.
        """
        inbound = self.inbound
        if inbound is not None:
            inbound.abortResponse(
                bool(self.chunked) or self.responseHeaders.hasHeader(b"Content-Length")
            )

    def finish(self) -> None:
        if not self.bodyComplete:
            # The response is done before the request body arrived: the rest
            # of the body must not be read as a next request. Close after
            # this response.
            self.inbound.abandonInput()
            if self.body is not None:
                self.body.detach()
        return _Request.finish(self)


class ProxyChannel(GuardedChannel):
    """
    An L{twisted.web.http.HTTPChannel} that starts processing at the end of the headers
    and lets a streaming body pause reading from the client; hygiene,
    limits and timeouts come from L{GuardedChannel}.
    """

    _bodyPaused = False
    _host = None

    def getHost(self):
        # Asked for by every request (Request.__init__): one getsockname()
        # per connection, not per request.
        host = self._host
        if host is None:
            host = self._host = GuardedChannel.getHost(self)
        return host

    def allHeadersReceived(self) -> None:
        GuardedChannel.allHeadersReceived(self)
        if self.length != 0:
            # A body follows: process now and stream it. (Without a body,
            # the request is complete already and takes the usual path.)
            request = self.requests[-1]
            # The request line HTTPChannel keeps (private names) until the
            # whole request arrived; lbproxy starts at the end of the head.
            request.headersReceived(self._command, self._path, self._version)

    def allContentReceived(self) -> None:
        if self._discarding:
            return
        if self._bodyPaused:
            self._bodyPaused = False
        GuardedChannel.allContentReceived(self)

    def abandonInput(self) -> None:
        """
        The current request was answered before its body was read: close
        the connection after the response and ignore what the client still
        sends.
        """
        self.persistent = False
        self._discarding = True

    def abortResponse(self, framed: bool) -> None:
        """
        End a response that cannot be completed.

        @param framed: Whether the response declared its length (or is
            chunked), so a clean close shows the client it is short; a
            close-delimited body would look complete, so the connection is
            reset instead.
        """
        if self.transport is None:
            return
        if framed:
            self.loseConnection()
        else:
            self.transport.abortConnection()

    # _networkProducer (the transport, as HTTPChannel's private producer) and
    # _waitingForTransport (HTTPChannel paused itself for a slow client):
    # Twisted's own, used to stop reading the body without taking over the
    # channel's producer; if renamed, streaming uploads lose backpressure
    # (tests.test_proxy.BodyTests).
    def pauseBody(self) -> None:
        if not self._bodyPaused:
            self._bodyPaused = True
            self._networkProducer.pauseProducing()
            # lbproxy stopped reading, not the client: its body timeout
            # waits too.
            self.suspendBodyTimer()

    def resumeBody(self) -> None:
        if self._bodyPaused:
            self._bodyPaused = False
            self.resumeBodyTimer()
            # A connection rejected or given up (its close under way) is not
            # read again: the body's end is not wanted.
            if not self._waitingForTransport and not self._discarding:
                self._networkProducer.resumeProducing()

    def _send100Continue(self) -> None:
        # Overrides HTTPChannel's private hook (called on Expect:
        # 100-continue). Not yet: only once the request has passed every
        # check (see ProxyRequest.sendContinue), so that a refused client is
        # not invited to send its body first.
        if self.requests:
            self.requests[-1].expectContinue = True

    def writeHeaders(self, version, code, reason, headers) -> None:
        # One write of one joined buffer: Twisted's writes a sequence of a
        # few dozen small pieces, each type-checked on its way.
        parts = [version, b" ", code, b" ", reason, b"\r\n"]
        for name, values in headers.getAllRawHeaders():
            for value in values:
                parts += (name, b": ", value, b"\r\n")
        parts.append(b"\r\n")
        self.transport.write(b"".join(parts))

    def resumeProducing(self) -> None:
        HTTPChannel.resumeProducing(self)
        if self._bodyPaused:
            self._networkProducer.pauseProducing()


class ProxySite(server.Site):
    """
    A L{server.Site} speaking through L{ProxyChannel} and L{ProxyRequest}.
    lbproxy writes its own access log, so the Site's is off.
    """

    protocol = ProxyChannel
    requestFactory = ProxyRequest
    #: C{(channel, code, dispatched)} on every rejection (observe/rejections).
    onReject = None

    def __init__(self, resource, limits: ClientLimits = ClientLimits(), **kwargs) -> None:
        _Site.__init__(self, resource, **kwargs)
        self.limits = limits
        self.openConnections = 0
        # GuardedChannel's timeouts replace Twisted's idle timeout, which any
        # byte resets (a drip-feeding client would keep it alive forever).
        self.timeOut = None

    def buildProtocol(self, addr):
        protocol = _Site.buildProtocol(self, addr)
        protocol.limits = self.limits
        return protocol

    def log(self, request) -> None:
        pass
