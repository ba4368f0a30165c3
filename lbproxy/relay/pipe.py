# -*- test-case-name: tests.test_relay -*-
"""
The one byte relay: two connections joined, bytes passed on unchanged,
with flow control both ways and an idle timeout.

Flow control: each side's transport gets a streaming producer that stands
for the I{other} side's reading. When a transport's write buffer fills
(a slow reader), Twisted pauses that producer, which stops reading from
the other connection; when the buffer drains, reading resumes. So at most
a transport's buffer (64 KiB) per direction is held, however fast one
side sends and however slowly the other reads.

Endings: when one side's connection is lost, the other is closed once
what it still has to write is written.  A side whose protocol is
half-closeable (a C{[[tcp]]} service, TLS passthrough) may instead just
end its sending (a FIN): the other side's sending is ended in turn, and
each connection is closed once it is done both ways, so a client may
send a request, shut down its sending side and still read the answer.

A relay holds its two transports, the clock and a callback, nothing of a
runtime: a configuration reload leaves it running.
"""

from __future__ import annotations

from typing import Callable, Optional

from twisted.internet.interfaces import IPushProducer
from twisted.internet.protocol import Protocol
from twisted.logger import Logger
from zope.interface import implementer

__all__ = ["Relay", "RelayHalf", "CLIENT", "SERVER"]

log = Logger()

#: The two sides of a relay: the connection that came to lbproxy, and the
#: one lbproxy opened to a backend.
CLIENT = 0
SERVER = 1


@implementer(IPushProducer)
class _ReaderOf:
    """
    Registered on one side's transport: reading from the other side, which
    the transport pauses when its write buffer is full.
    """

    def __init__(self, relay: "Relay", side: int) -> None:
        self._relay = relay
        self._side = side

    def pauseProducing(self) -> None:
        self._relay._pauseReading(self._side)

    def resumeProducing(self) -> None:
        self._relay._resumeReading(self._side)

    def stopProducing(self) -> None:
        # The consumer's connection is going away; its connectionLost tells
        # the relay.
        pass


class Relay:
    """
    Joins a client connection and a server connection.

    @ivar up: bytes relayed from the client to the server.
    @ivar down: bytes relayed from the server to the client.
    @ivar started: when the relay was joined (clock seconds).
    @ivar ended: when both sides were closed, or L{None}.
    @ivar reason: why it ended: C{"client closed"}, C{"server closed"},
        C{"idle timeout"} or C{"stopped"}.
    @ivar paused: per side, whether reading from it is paused by the relay.
    """

    def __init__(
        self,
        clock,
        idleTimeout: float,
        onEnd: Optional[Callable[["Relay"], None]] = None,
    ) -> None:
        """
        @param clock: an C{IReactorTime}.
        @param idleTimeout: seconds without a byte either way after which
            both connections are closed (0: never).
        @param onEnd: called once with this relay when both sides are
            closed.
        """
        self._clock = clock
        self.idleTimeout = idleTimeout
        self._onEnd = onEnd
        self._transports = [None, None]
        self._open = [False, False]
        self._eof = [False, False]
        self._writeClosed = [False, False]
        self.paused = [False, False]
        self.up = 0
        self.down = 0
        self.started = clock.seconds()
        self.ended: Optional[float] = None
        self.reason: Optional[str] = None
        self._last = self.started
        self._timer = None

    @property
    def duration(self) -> float:
        end = self.ended if self.ended is not None else self._clock.seconds()
        return end - self.started

    def join(self, client, server, toServer: bytes = b"", toClient: bytes = b"") -> None:
        """
        Start relaying between two connected transports.

        @param toServer: client bytes that arrived before the join (read
            ahead by the protocol that had the connection before).
        @param toClient: server bytes that arrived before the join.
        """
        self._transports = [client, server]
        self._open = [True, True]
        for side in (CLIENT, SERVER):
            self._transports[side].registerProducer(_ReaderOf(self, 1 - side), True)
        if self.idleTimeout > 0:
            self._timer = self._clock.callLater(self.idleTimeout, self._checkIdle)
        if toServer:
            self.received(CLIENT, toServer)
        if toClient:
            self.received(SERVER, toClient)

    def half(self, side: int) -> "RelayHalf":
        """
        A protocol that feeds this relay's C{side}.
        """
        return RelayHalf(self, side)

    # Bytes ---------------------------------------------------------------

    def received(self, side: int, data: bytes) -> None:
        """
        Bytes that arrived from C{side}: on to the other side.
        """
        other = 1 - side
        if not self._open[other]:
            return
        if side == CLIENT:
            self.up += len(data)
        else:
            self.down += len(data)
        self._last = self._clock.seconds()
        self._transports[other].write(data)

    def _pauseReading(self, side: int) -> None:
        if self._open[side] and not self.paused[side]:
            self.paused[side] = True
            self._transports[side].pauseProducing()

    def _resumeReading(self, side: int) -> None:
        if self._open[side] and self.paused[side]:
            self.paused[side] = False
            self._transports[side].resumeProducing()

    # Endings -------------------------------------------------------------

    def lost(self, side: int, reason=None) -> None:
        """
        C{side}'s connection is closed: the other is closed too, once
        what it still has to write is written.
        """
        if not self._open[side]:
            return
        self._open[side] = False
        if self.reason is None:
            self.reason = "client closed" if side == CLIENT else "server closed"
        other = 1 - side
        if self._open[other]:
            transport = self._transports[other]
            transport.unregisterProducer()
            if self.paused[other]:
                self.paused[other] = False
                transport.resumeProducing()
            transport.loseConnection()
        else:
            self._finish()

    def readLost(self, side: int) -> None:
        """
        C{side} sends no more (a half-close): end the other side's
        sending once its buffer is written; close each side that is done
        both ways.
        """
        if not self._open[side] or self._eof[side]:
            return
        self._eof[side] = True
        if self.reason is None:
            self.reason = "client closed" if side == CLIENT else "server closed"
        other = 1 - side
        if self._open[other] and not self._writeClosed[other]:
            self._writeClosed[other] = True
            self._transports[other].loseWriteConnection()
        for each in (CLIENT, SERVER):
            if self._open[each] and self._eof[each] and self._writeClosed[each]:
                self._transports[each].loseConnection()

    def abort(self, why: str = "stopped") -> None:
        """
        Drop both connections at once.
        """
        if self.reason is None:
            self.reason = why
        for side in (CLIENT, SERVER):
            if self._open[side]:
                self._transports[side].abortConnection()

    def _checkIdle(self) -> None:
        self._timer = None
        if self.ended is not None:
            return
        left = self._last + self.idleTimeout - self._clock.seconds()
        if left > 0:
            self._timer = self._clock.callLater(left, self._checkIdle)
            return
        log.info(
            "relay idle for {timeout}s: closing (up {up} bytes, down {down} bytes)",
            timeout=self.idleTimeout,
            up=self.up,
            down=self.down,
        )
        self.abort("idle timeout")

    def _finish(self) -> None:
        self.ended = self._clock.seconds()
        timer, self._timer = self._timer, None
        if timer is not None and timer.active():
            timer.cancel()
        self._transports = [None, None]
        onEnd, self._onEnd = self._onEnd, None
        if onEnd is not None:
            onEnd(self)


class RelayHalf(Protocol):
    """
    The protocol of one side of a relay: what it reads goes to the relay.
    """

    def __init__(self, relay: Relay, side: int) -> None:
        self.relay = relay
        self.side = side

    def dataReceived(self, data: bytes) -> None:
        self.relay.received(self.side, data)

    def connectionLost(self, reason=None) -> None:  # type: ignore[override]
        self.relay.lost(self.side, reason)
