# -*- test-case-name: tests.test_tls_proxy -*-
"""
What a request controls of the HTTP/2 stream it arrived on: L{StreamInbound},
set by L{lbproxy.frontend.http2.ProxyH2Connection} on every stream as
C{inbound}, gives L{lbproxy.frontend.http.ProxyRequest} the controls it
uses on an HTTP/1.1 connection (pause the body, abandon it, reset the
response).
"""

from __future__ import annotations

import h2.errors

__all__ = ["StreamInbound"]


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

    def __init__(self, connection, stream) -> None:
        """
        @param connection: the L{lbproxy.frontend.http2.ProxyH2Connection}.
        @param stream: the C{H2Stream}.
        """
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

    def windowExhausted(self) -> None:
        """
        The stream's send window is exhausted: pause its producer (as
        Twisted's C{H2Stream.flowControlBlocked} does) and park it until
        the client gives credit.
        """
        stream = self._stream
        type(stream).flowControlBlocked(stream)
        self._connection._windowExhausted(stream)

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
