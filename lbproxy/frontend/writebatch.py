# -*- test-case-name: tests.test_writebatch -*-
"""
TCP writes collected during one turn of the reactor and sent together at
the start of the next, without asking the reactor to watch the socket.

A Twisted TCP transport buffers every C{write} and asks the reactor to
watch its socket for writability (an C{epoll_ctl}); on the next turn the
reactor reports it writable, the transport sends, and it stops watching
(another C{epoll_ctl}). A proxy writes once per read on each side, so
that is two system calls and one more event dispatch per write. On
127.0.0.1 they cost a plain Twisted byte relay a third of its
throughput.

Here a write to a transport with nothing queued is kept in a list; the
first such write in a turn schedules one C{callLater(0)}, which sends
every transport's list with one C{send} each, before the reactor polls
again. Writes stay batched per turn (a backend still receives the
requests of one turn together, as before, rather than one wake-up per
request, which measured slower than Twisted's own buffering), and
whatever the kernel does not take at once goes to Twisted's buffer as
usual, so backpressure (C{bufferSize}, producers) is unchanged.

Anything that relies on Twisted's buffer (C{loseConnection},
C{loseWriteConnection}) first moves the pending list into it;
C{abortConnection} and a lost connection drop it, as they drop Twisted's
buffer.
"""

from __future__ import annotations

import weakref
from typing import Dict, List, Optional

from twisted.internet import tcp
from twisted.logger import Logger

log = Logger()

#: What a non-blocking C{send} raises when the kernel takes nothing now.
_RETRY_LATER = (BlockingIOError, InterruptedError)


class TurnFlusher:
    """
    Sends, once per reactor turn, what L{BatchedWrites} transports of one
    reactor collected.
    """

    def __init__(self, reactor) -> None:
        self._reactor = reactor
        self._waiting: List["BatchedWrites"] = []
        self._call = None

    def add(self, transport: "BatchedWrites") -> None:
        self._waiting.append(transport)
        if self._call is None:
            self._call = self._reactor.callLater(0, self.flush)

    def flush(self) -> None:
        self._call = None
        waiting, self._waiting = self._waiting, []
        for transport in waiting:
            try:
                transport.flushBatch()
            except Exception:
                log.failure("sending batched writes")


_flushers: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def flusher_for(reactor) -> TurnFlusher:
    flusher = _flushers.get(reactor)
    if flusher is None:
        flusher = _flushers[reactor] = TurnFlusher(reactor)
    return flusher


class BatchedWrites:
    """
    A mixin for L{twisted.internet.tcp.Connection} classes: writes made
    while nothing is queued are collected and sent once per reactor turn
    (see the module's docstring).
    """

    _batch: Optional[List[bytes]] = None
    #: The reactor's L{TurnFlusher}, set by L{batch_writes}.
    _flusher: TurnFlusher

    def write(self, data: bytes) -> None:
        batch = self._batch
        if type(data) is bytes:
            if batch is not None:
                if data:
                    batch.append(data)
                return
            # _writeDisconnecting and _tempDataLen are FileDescriptor's
            # private state (a half-close pending, bytes of writes not yet
            # joined into dataBuffer); no public attribute says "nothing
            # queued".  Were they renamed, batching would stop with an
            # AttributeError on every write (tests.test_writebatch).
            if (
                data
                and self.connected
                and not self.disconnecting
                and not self._writeDisconnecting
                and not self.TLS
                and not self.dataBuffer
                and not self._tempDataLen
            ):
                self._batch = [data]
                self._flusher.add(self)
                return
        # Not bytes (Twisted raises its TypeError), or already queued.
        super().write(data)  # type: ignore[misc]

    def writeSequence(self, iovec) -> None:
        for data in iovec:
            self.write(data)

    def flushBatch(self) -> None:
        """
        Send what was collected: at once as far as the kernel takes it, the
        rest through Twisted's buffer.
        """
        batch, self._batch = self._batch, None
        if not batch:
            return
        data = batch[0] if len(batch) == 1 else b"".join(batch)
        if self.connected and not self.disconnecting and not self.dataBuffer and not self._tempDataLen:
            try:
                sent = self.socket.send(data)
            except _RETRY_LATER:
                sent = 0
            except OSError:
                # Twisted's buffered path meets the same error when it
                # tries, and closes the connection the usual way.
                sent = 0
            if sent == len(data):
                return
            data = data[sent:]
        super().write(data)  # type: ignore[misc]

    def _spill(self) -> None:
        # Into Twisted's buffer, ahead of anything written after.
        batch, self._batch = self._batch, None
        if batch:
            super().write(b"".join(batch))  # type: ignore[misc]

    def loseConnection(self, *args, **kwargs):
        self._spill()
        return super().loseConnection(*args, **kwargs)  # type: ignore[misc]

    def loseWriteConnection(self):
        self._spill()
        return super().loseWriteConnection()  # type: ignore[misc]

    def abortConnection(self):
        self._batch = None
        return super().abortConnection()  # type: ignore[misc]

    def connectionLost(self, reason):
        self._batch = None
        return super().connectionLost(reason)  # type: ignore[misc]


_batchedClasses: Dict[type, type] = {}


def batch_writes(transport) -> bool:
    """
    Make C{transport}'s writes batched (L{BatchedWrites}) if it is one of
    Twisted's TCP transports, or wraps one directly (TLS); others are left
    alone. Call it from C{connectionMade}, before anything is written.

    @return: whether a transport was changed.
    """
    for candidate in (transport, getattr(transport, "transport", None)):
        if isinstance(candidate, BatchedWrites):
            return True
        cls = type(candidate)
        if cls in (tcp.Server, tcp.Client):
            batched = _batchedClasses.get(cls)
            if batched is None:
                batched = _batchedClasses[cls] = type("Batched" + cls.__name__, (BatchedWrites, cls), {})
            # The same object, with the write methods above: its state
            # (socket, buffers, producer) is untouched.
            candidate.__class__ = batched
            candidate._flusher = flusher_for(candidate.reactor)
            return True
    return False
