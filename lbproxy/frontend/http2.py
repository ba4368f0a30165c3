# -*- test-case-name: tests.test_tls_proxy -*-
"""
HTTP/2 to clients, on Twisted's own HTTP/2 server (C{twisted.web._http2},
built on the C{h2} package), with the same resource, routing and
proxying as HTTP/1.1.

L{NegotiatingChannel} is the protocol a TLS listener's site builds: it
speaks HTTP/1.1 through a L{ProxyChannel} and switches to a
L{ProxyH2Connection} when ALPN chose C{h2}.  (Twisted's own switch,
C{_GenericHTTPChannelProtocol}, knows neither lbproxy's channel nor the
reactor lbproxy runs on.)

Under HTTP/2 a request's C{channel} is a stream (C{H2Stream}), not a
L{ProxyChannel}.  L{StreamInbound}, set on every stream as C{inbound},
gives L{lbproxy.frontend.http.ProxyRequest} the same controls it uses on an
HTTP/1.1 connection:

  - pausing the request body is pausing the stream, which stops returning
    flow-control credit to the client, so the client stops sending;
  - a response that ends before the request body ends the stream with
    C{END_STREAM} and then C{RST_STREAM(NO_ERROR)} (RFC 9113 section 8.1),
    so the rest of the body is never delivered;
  - a response that cannot be completed resets the stream.

A request with a body is processed as soon as its C{HEADERS} arrive, as
on HTTP/1.1, so the body streams to the backend.
"""

from __future__ import annotations

from typing import Optional

from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.interfaces import IProtocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from lbproxy.frontend.h2guard import (
    FrameBudget,
    FrameCounter,
    H2Limits,
    connectTarget,
    isExtendedConnect,
)
from lbproxy.frontend.http import ProxyChannel

try:
    import h2.errors
    import h2.exceptions

    # Private module: Twisted's HTTP/2 server has no public import path
    # (twisted.web.server reaches it through _genericHTTPChannelProtocol).
    # Without it, HTTPS listeners would offer HTTP/1.1 only.
    from twisted.web._http2 import H2Connection
except ImportError:  # pragma: no cover - h2 is an install requirement
    H2_AVAILABLE = False
    H2Connection = object  # type: ignore[assignment,misc]
else:
    H2_AVAILABLE = True

__all__ = ["H2_AVAILABLE", "NegotiatingChannel", "ProxyH2Connection", "StreamInbound"]


class StreamInbound:
    """
    What a request controls of the HTTP/2 stream it arrived on.

    @ivar request: The stream's request.
    @ivar abandoned: Whether the response ended before the request body,
        so the stream is reset once the response is sent.
    @ivar persistent: Ignored: an HTTP/2 connection outlives its streams.
    """

    persistent = True
    abandoned = False
    request = None
    #: A request of a method Twisted assumes has no body (GET, HEAD), with
    #: no content-length, whose stream has not ended: if DATA comes, the
    #: request has a body after all.
    bodyUnannounced = False

    def __init__(self, connection: "ProxyH2Connection", stream) -> None:
        self._connection = connection
        self._stream = stream

    @property
    def transport(self):
        """
        The connection's transport (the TLS connection).
        """
        return self._connection.transport

    def _active(self) -> bool:
        return self._connection.streams.get(self._stream.streamID) is self._stream

    def pauseBody(self) -> None:
        """
        Stop passing on request body data and stop granting the client
        more flow-control window.
        """
        if self._stream.producing:
            self._stream.pauseProducing()

    def resumeBody(self) -> None:
        if not self._stream.producing and self._active():
            self._stream.resumeProducing()

    def abandonInput(self) -> None:
        """
        The response is complete before the request body: after the
        response's last frame, reset the stream so that the client stops
        sending.
        """
        self.abandoned = True

    def abortResponse(self, framed: bool) -> None:
        """
        The response cannot be completed: reset the stream with
        C{INTERNAL_ERROR}, so the client never takes what it got for the
        whole response (an HTTP/2 stream that ends cleanly looks complete,
        framed or not).
        """
        if self._active():
            self._connection.resetStream(
                self._stream.streamID, h2.errors.ErrorCodes.INTERNAL_ERROR
            )


class ProxyH2Connection(H2Connection):  # type: ignore[misc,valid-type]
    """
    An HTTP/2 connection whose streams carry L{StreamInbound}s and whose
    requests with bodies are processed as soon as their headers arrive.

    Frames are counted before they are parsed (L{FrameCounter}); past the
    bounds of L{limits} the client gets C{GOAWAY(ENHANCE_YOUR_CALM)} and
    the connection closes.

    @cvar limits: The bounds on client resets and control frames.
    @ivar calmedFor: Why the connection was closed for going over a
        bound, or L{None}.
    """

    limits = H2Limits()
    calmedFor: Optional[str] = None
    _log = Logger()

    def __init__(self, reactor) -> None:
        H2Connection.__init__(self, reactor)
        self._siteRequestFactory = None
        if reactor is None:  # pragma: no cover - lbproxy always passes one
            from twisted.internet import reactor
        limits = self.limits
        self._frames = FrameCounter()
        self._resets = FrameBudget(reactor, limits.resets, limits.interval)
        self._controls = FrameBudget(reactor, limits.controlFrames, limits.interval)

    def dataReceived(self, data: bytes) -> None:
        if self.calmedFor is not None:
            # GOAWAY sent: nothing more is read.
            return
        resets, control = self._frames.feed(data)
        if resets and self._resets.spend(resets):
            self._enhanceYourCalm("stream resets")
            return
        if control and self._controls.spend(control):
            self._enhanceYourCalm("control frames")
            return
        H2Connection.dataReceived(self, data)

    def writeDataToStream(self, streamID: int, data: bytes) -> None:
        # A client downloading sends WINDOW_UPDATEs (control frames) in
        # proportion to what it gets: each chunk sent, and each 8 KiB of
        # it, pays for one.
        self._controls.credit(1 + (len(data) >> 13))
        H2Connection.writeDataToStream(self, streamID, data)

    def _enhanceYourCalm(self, what: str) -> None:
        """
        Send C{GOAWAY(ENHANCE_YOUR_CALM)} and close: the client went over
        a bound.  Its streams end as if the connection were lost (their
        backend requests are abandoned).  (Twisted's own C{_terminate}
        does the same but is not in every supported version.)
        """
        self.calmedFor = what
        self._log.info(
            "HTTP/2 client {peer}: too many {what}; GOAWAY(ENHANCE_YOUR_CALM)",
            peer=self.transport.getPeer(),
            what=what,
        )
        try:
            self.conn.close_connection(error_code=h2.errors.ErrorCodes.ENHANCE_YOUR_CALM)
        except h2.exceptions.H2Error:  # pragma: no cover - closed already
            pass
        if self._tryToWriteControlData():
            self.transport.loseConnection()
            # Timers stay: a client that does not read is still timed out.
            self.connectionLost(
                Failure(ConnectionLost("too many " + what)), _cancelTimeouts=False
            )

    # H2Connection builds each stream's request through requestFactory.
    @property
    def requestFactory(self):
        return self._newRequest

    @requestFactory.setter
    def requestFactory(self, factory) -> None:
        self._siteRequestFactory = factory

    def _newRequest(self, stream, queued: bool = False):
        inbound = StreamInbound(self, stream)
        stream.inbound = inbound
        inbound.request = self._siteRequestFactory(stream, queued=queued)
        return inbound.request

    # H2Connection's private event handlers (_requestReceived,
    # _requestDataReceived, _requestEnded, _requestAborted, _requestDone),
    # its _stillProducing flag and _tryToWriteControlData are extended here:
    # Twisted offers no public hook per stream event.  If one changed,
    # streaming request bodies, flow control after an early response, or
    # resets would break (tests.test_tls_proxy's HTTP/2 tests).
    def _requestReceived(self, event) -> None:
        if not self._stillProducing:
            # The connection was closed earlier in this read.
            return
        if isExtendedConnect(event.headers):
            # No stream, no request: lbproxy has no tunnel to offer.
            self._refuse(event, b"501")
            return
        H2Connection._requestReceived(self, event)
        stream = self.streams.get(event.stream_id)
        if stream is None:
            return
        if stream.path is None:
            # A CONNECT (the only request without :path; h2 checks): its
            # target is the authority, as on an HTTP/1.1 request line, and
            # the pipeline answers 400 as it does there.  (Twisted would
            # begin the request with no path and fail.)
            stream.path = connectTarget(event.headers) or b""
        request = stream.inbound.request
        # RFC 9113 8.2.3: an HTTP/2 client may split Cookie into several
        # fields; an HTTP/1.1 backend must get them as one.
        cookies = request.requestHeaders.getRawHeaders(b"cookie")
        if cookies is not None and len(cookies) > 1:
            request.requestHeaders.setRawHeaders(b"cookie", [b"; ".join(cookies)])
        if event.stream_ended is not None:
            # HEADERS ended the stream: there is no body, whatever the
            # method (Twisted assumes one for methods but GET and HEAD).
            request.gotLength(0)
        elif getattr(request, "body", None) is not None:
            request.headersReceived(stream.command, stream.path, b"HTTP/2")
        elif not request.requestHeaders.hasHeader(b"content-length"):
            # A GET or HEAD: Twisted assumes no body and would drop one.
            # Whether there is one, the first DATA tells.
            stream.inbound.bodyUnannounced = True

    def _refuse(self, event, status: bytes) -> None:
        """
        Answer a request's stream C{status} with no body, without making a
        stream or request of it; reset the stream (C{NO_ERROR}) if the
        client has not ended it, so that it sends no body.  Its later
        frames find no stream, as for a stream whose response is over.
        """
        streamID = event.stream_id
        try:
            self.conn.send_headers(
                streamID, [(b":status", status), (b"content-length", b"0")], end_stream=True
            )
            if event.stream_ended is None:
                self.conn.reset_stream(streamID, error_code=h2.errors.ErrorCodes.NO_ERROR)
        except h2.exceptions.H2Error:
            return
        self._tryToWriteControlData()

    def _requestDataReceived(self, event) -> None:
        if event.stream_id not in self.streams:
            # The stream's response is over and its state gone; the data
            # still counts against the connection's window.
            self._acknowledge(event.stream_id, event.flow_controlled_length)
            return
        inbound = self.streams[event.stream_id].inbound
        if inbound.bodyUnannounced and event.data:
            # A GET or HEAD with a body after all, of no declared length:
            # processed now, the body forwarded chunked, as on HTTP/1.1.
            inbound.bodyUnannounced = False
            stream, request = inbound._stream, inbound.request
            request.gotLength(None)
            request.headersReceived(stream.command, stream.path, b"HTTP/2")
        H2Connection._requestDataReceived(self, event)

    def _requestEnded(self, event) -> None:
        if event.stream_id in self.streams:
            H2Connection._requestEnded(self, event)

    def _requestAborted(self, event) -> None:
        # Replaces Twisted's: it looks the stream up with streams[...],
        # a KeyError when the stream's state is gone (its response is
        # over, or its connection was closed earlier in the same read),
        # and Twisted 26's reset token bucket there closes the connection
        # in the middle of a read, which makes the next reset of that
        # read fail so.  lbproxy counts resets itself (dataReceived), the
        # same on every Twisted version.
        stream = self.streams.get(event.stream_id)
        if stream is None:
            return
        stream.connectionLost(
            Failure(ConnectionLost("Stream reset with code %s" % (event.error_code,)))
        )
        self._requestDone(event.stream_id)

    def _requestDone(self, streamID: int) -> None:
        stream = self.streams.get(streamID)
        inbound = getattr(stream, "inbound", None)
        if stream is not None and not stream.producing and self._stillProducing:
            # Body data held back while the stream was paused still holds
            # flow-control credit, the connection's included: hand it over
            # (the finished request drops it) so the credit comes back.
            stream.resumeProducing()
        H2Connection._requestDone(self, streamID)
        if inbound is not None and inbound.abandoned and self._stillProducing:
            try:
                self.conn.reset_stream(streamID, error_code=h2.errors.ErrorCodes.NO_ERROR)
            except h2.exceptions.H2Error:
                # Closed already (the client reset it, or ended its side).
                return
            self._tryToWriteControlData()

    def timeoutConnection(self) -> None:
        H2Connection.timeoutConnection(self)
        self._releaseTransport()

    def connectionLost(self, reason, *args, **kwargs) -> None:
        H2Connection.connectionLost(self, reason, *args, **kwargs)
        self._releaseTransport()

    def _releaseTransport(self) -> None:
        """
        Twisted's HTTP/2 connection closes its transport (idle timeout, the
        client's GOAWAY, a protocol error) while still registered as the
        transport's producer, and a TLS transport does not close while a
        producer is registered: unregister, so that the close goes ahead.
        """
        transport = self.transport
        if transport is not None and getattr(transport, "disconnecting", False):
            transport.unregisterProducer()

    def resetStream(self, streamID: int, code: int) -> None:
        """
        Reset a stream with an error code (Twisted's own reset always says
        C{NO_ERROR}) and forget it; what was queued for it is dropped.
        """
        try:
            self.conn.reset_stream(streamID, error_code=code)
        except h2.exceptions.H2Error:
            pass
        if self._tryToWriteControlData() and streamID in self.streams:
            self._requestDone(streamID)

    def _acknowledge(self, streamID: int, length: int) -> None:
        try:
            self.conn.acknowledge_received_data(length, streamID)
        except h2.exceptions.H2Error:
            return
        self._tryToWriteControlData()


@implementer(IProtocol)
class NegotiatingChannel:
    """
    The protocol of a TLS listener: HTTP/1.1 (a L{ProxyChannel}) unless
    the TLS handshake negotiated C{h2} through ALPN, then a
    L{ProxyH2Connection}.

    The choice is made on the first bytes after the handshake, by which
    time ALPN is settled.  Until then the L{ProxyChannel} is in place, so
    its idle timeout covers a client that never completes a handshake.

    Site and factory set C{factory}, C{requestFactory}, C{site},
    C{timeOut} and C{callLater} on the protocol they build; they are
    passed to whichever channel is in use.

    @ivar channel: The current channel.
    """

    factory = None
    requestFactory = None
    site = None
    timeOut = None
    callLater = None
    limits = None
    transport = None
    channel = None
    _decided = False
    _countedH2 = False
    _live = None

    def _configure(self, channel) -> None:
        channel.factory = self.factory
        channel.requestFactory = self.requestFactory
        channel.site = self.site
        channel.timeOut = self.timeOut
        if self.callLater is not None:
            channel.callLater = self.callLater

    def makeConnection(self, transport) -> None:
        self.transport = transport
        self.channel = ProxyChannel()
        self._configure(self.channel)
        if self.limits is not None:
            self.channel.limits = self.limits
        self.channel.makeConnection(transport)

    def connectionMade(self) -> None:
        pass

    def dataReceived(self, data: bytes) -> None:
        if not self._decided:
            self._decided = True
            if (
                getattr(self.transport, "negotiatedProtocol", None) == b"h2"
                and getattr(self.channel, "rejected", None) is None
            ):
                self._switchToH2()
        self.channel.dataReceived(data)

    def _switchToH2(self) -> None:
        old = self.channel
        # The HTTP/1.1 channel is done: it stops its timers and leaves the
        # site's connection count (this connection is counted again below,
        # as HTTP/2), and gives up being the transport's producer.
        old.connectionLost(Failure(ConnectionDone("switched to HTTP/2")))
        self.transport.unregisterProducer()
        channel = ProxyH2Connection(self.factory.reactor)
        self._configure(channel)
        if self.limits is not None:
            # The site's idle timeout is off (the HTTP/1.1 channel has its
            # own timers); an idle HTTP/2 connection closes after the
            # keep-alive timeout.
            channel.timeOut = self.limits.keepalive_timeout or None
        self.channel = channel
        if self.factory is not None and hasattr(self.factory, "openConnections"):
            self.factory.openConnections += 1
            self._countedH2 = True
        # Followed for reload drains and graceful shutdown (lbproxy.app.drain).
        self._live = getattr(self.factory, "liveConnections", None)
        if self._live is not None:
            self._live.opened(channel)
        channel.makeConnection(self.transport)
        self.transport.registerProducer(channel, True)

    def connectionLost(self, reason) -> None:
        if self._countedH2:
            self._countedH2 = False
            self.factory.openConnections -= 1
        if self._live is not None:
            self._live.closed(self.channel)
            self._live = None
        if self.channel is not None:
            self.channel.connectionLost(reason)

    def logPrefix(self) -> str:
        return "HTTP/2" if isinstance(self.channel, ProxyH2Connection) else "HTTP/1.1"

    @property
    def negotiated(self) -> Optional[bytes]:
        """
        C{b"h2"} or C{b"http/1.1"} once the first bytes arrived, else
        L{None}.
        """
        if not self._decided:
            return None
        return b"h2" if isinstance(self.channel, ProxyH2Connection) else b"http/1.1"
