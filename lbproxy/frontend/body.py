# -*- test-case-name: tests.test_proxy -*-
"""
A client request's body on its way to a backend: buffered while a backend
connection is made (or, with a route's C{request_buffering}, until it is
read), then streamed with backpressure both ways.
"""

from __future__ import annotations

from typing import List, Optional

from twisted.internet.interfaces import IPushProducer
from zope.interface import implementer

__all__ = ["BODY_HIGH_WATER", "RequestBody"]


#: Body bytes buffered (waiting for a backend connection, or for the
#: backend to accept them) before reading from the client pauses.
BODY_HIGH_WATER = 256 * 1024


@implementer(IPushProducer)
class RequestBody:
    """
    A client request's body on its way to a backend.

    Bytes that arrive before a sink is attached (while connecting) are
    buffered up to L{BODY_HIGH_WATER}, after which the client is paused;
    a held body (L{hold}) is buffered up to the size it is held for.
    Once attached, bytes go straight to the sink; when the backend's socket
    buffer is full, its transport pauses this producer, which pauses
    reading from the client.

    @ivar length: the declared length, or L{None} for a chunked body.
    @ivar received: bytes received so far.
    @ivar complete: whether the whole body has arrived.
    @ivar limit: the most bytes accepted (0: no limit); beyond it nothing
        more is passed on and C{onTooLarge} is called once.
    @ivar onTooLarge: called when the body exceeds C{limit}.
    """

    limit = 0
    onTooLarge = None
    tooLarge = False
    #: While held (L{hold}): the bytes to buffer before C{_onHeld} is
    #: called, else 0.
    _holding = 0
    _onHeld = None

    def __init__(self, channel, length: Optional[int]) -> None:
        """
        @param channel: the request's C{inbound}: what C{pauseBody} and
            C{resumeBody} pause and resume reading the body from.
        @param length: the declared length, or L{None}.
        """
        self._channel = channel
        self.length = length
        self.received = 0
        self.complete = False
        self._buffer: List[bytes] = []
        self._buffered = 0
        self._sink = None
        self._registered = False
        self._pausedByBuffer = False
        self._pausedBySink = False

    @property
    def chunked(self) -> bool:
        return self.length is None

    def dataReceived(self, data: bytes) -> None:
        self.received += len(data)
        if self.limit and self.received > self.limit:
            # Enforced while streaming: not one byte past the limit is
            # passed on.
            if not self.tooLarge:
                self.tooLarge = True
                if self.onTooLarge is not None:
                    self.onTooLarge()
            return
        if self._sink is not None:
            self._sink.writeBody(data)
            return
        self._buffer.append(data)
        self._buffered += len(data)
        if self._holding:
            if self._buffered >= self._holding:
                self._release()
            return
        if self._buffered > BODY_HIGH_WATER and not self._pausedByBuffer:
            self._pausedByBuffer = True
            self._channel.pauseBody()

    def finished(self) -> None:
        self.complete = True
        if self._holding:
            self._release()
        elif self._sink is not None:
            self._detach().endBody()

    def hold(self, size: int, then) -> bool:
        """
        Buffer the body before it goes anywhere: until it is complete or
        C{size} bytes have arrived, then call C{then} (which attaches a
        sink as usual).  A body declared longer than C{size} is not held.

        @return: whether the body is held (else call C{then} now).
        """
        if self.complete or (self.length is not None and self.length > size):
            return False
        self._holding = size
        self._onHeld = then
        return True

    def _release(self) -> None:
        then, self._onHeld, self._holding = self._onHeld, None, 0
        if self._buffered > BODY_HIGH_WATER and not self._pausedByBuffer:
            self._pausedByBuffer = True
            self._channel.pauseBody()
        then()

    def attach(self, sink) -> None:
        """
        Send the body to C{sink} (an L{lbproxy.upstream.connections.UpstreamConnection}):
        what is buffered now, the rest as it arrives.
        """
        self._sink = sink
        buffered, self._buffer, self._buffered = self._buffer, [], 0
        for data in buffered:
            sink.writeBody(data)
        if self.complete:
            self._detach().endBody()
            return
        sink.transport.registerProducer(self, True)
        self._registered = True
        if self._pausedByBuffer:
            self._pausedByBuffer = False
            self._update()

    def detach(self) -> None:
        """
        Stop sending to the sink (the backend connection failed or the
        exchange ended early).
        """
        if self._sink is not None:
            self._detach()

    def _detach(self):
        sink, self._sink = self._sink, None
        if self._registered:
            self._registered = False
            if sink.transport is not None:
                sink.transport.unregisterProducer()
        if self._pausedBySink:
            self._pausedBySink = False
            self._update()
        return sink

    def _update(self) -> None:
        if self._pausedBySink or self._pausedByBuffer:
            self._channel.pauseBody()
        else:
            self._channel.resumeBody()

    # IPushProducer, driven by the backend connection's transport.

    def pauseProducing(self) -> None:
        self._pausedBySink = True
        self._update()

    def resumeProducing(self) -> None:
        self._pausedBySink = False
        self._update()

    def stopProducing(self) -> None:
        self._sink = None
