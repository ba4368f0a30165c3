"""
Tests for L{lbproxy.frontend.writebatch}: a Twisted TCP transport over one end of a
socket pair (no network), on a memory reactor whose clock decides when a
turn ends.
"""

from __future__ import annotations

import socket

from twisted.internet import tcp
from twisted.internet.error import ConnectionLost
from twisted.internet.protocol import Protocol
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from lbproxy.frontend.writebatch import BatchedWrites, batch_writes


class Recorder(Protocol):
    def __init__(self) -> None:
        self.lost = []

    def connectionLost(self, reason) -> None:
        self.lost.append(reason)


class BatchedWritesTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()
        ours, self.peer = socket.socketpair()
        ours.setblocking(False)
        self.peer.setblocking(False)
        self.addCleanup(self.peer.close)
        self.protocol = Recorder()
        self.transport = tcp.Server(ours, self.protocol, ("127.0.0.1", 1), None, 1, self.reactor)
        self.addCleanup(ours.close)
        self.assertTrue(batch_writes(self.transport))

    def received(self) -> bytes:
        data = b""
        while True:
            try:
                chunk = self.peer.recv(1 << 20)
            except BlockingIOError:
                return data
            if not chunk:
                return data
            data += chunk

    def test_oneSendPerTurn(self) -> None:
        """
        Writes in one turn are kept until the turn ends, then sent in
        order; the reactor is never asked to watch the socket.
        """
        self.assertIsInstance(self.transport, BatchedWrites)
        self.transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
        self.transport.writeSequence([b"he", b"llo"])
        self.assertEqual(self.received(), b"")
        self.assertNotIn(self.transport, self.reactor.getWriters())
        self.reactor.advance(0)
        self.assertEqual(self.received(), b"HTTP/1.1 200 OK\r\n\r\nhello")
        self.assertNotIn(self.transport, self.reactor.getWriters())
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_loseConnectionKeepsData(self) -> None:
        """
        Closing after a write: the pending bytes go to Twisted's buffer
        first, ahead of the close.
        """
        self.transport.write(b"last words")
        self.transport.loseConnection()
        self.assertEqual(self.transport._tempDataBuffer, [b"last words"])
        self.assertTrue(self.transport.disconnecting)
        self.reactor.advance(0)
        self.transport.doWrite()
        self.assertEqual(self.received(), b"last words")

    def test_abortDropsData(self) -> None:
        """
        An aborted connection sends nothing more.
        """
        self.transport.write(b"never")
        self.transport.abortConnection()
        self.reactor.advance(0)
        self.assertEqual(self.received(), b"")

    def test_queuedGoesBehind(self) -> None:
        """
        While Twisted's buffer holds bytes, writes join it behind them
        (order kept), and Twisted sends them when the socket allows.
        """
        self.transport.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        big = b"x" * (4 << 20)
        self.transport.write(big)
        self.reactor.advance(0)
        # The kernel took part; the rest waits in Twisted's buffer and the
        # reactor watches the socket.
        self.assertIn(self.transport, self.reactor.getWriters())
        self.transport.write(b"tail")
        self.assertIsNone(self.transport._batch)
        data = b""
        while not data.endswith(b"tail"):
            data += self.received()
            self.transport.doWrite()
        self.assertEqual(data, big + b"tail")

    def test_notBytes(self) -> None:
        """
        Anything but bytes is refused as Twisted refuses it.
        """
        self.assertRaises(TypeError, self.transport.write, "text")

    def test_lostConnectionDropsBatch(self) -> None:
        """
        A connection lost with bytes pending: they are dropped, and the
        flush at the end of the turn does nothing.
        """
        self.transport.write(b"gone")
        self.transport.connectionLost(Failure(ConnectionLost("lost")))
        self.reactor.advance(0)
        self.assertEqual(self.received(), b"")
        self.assertEqual(len(self.protocol.lost), 1)

    def test_othersLeftAlone(self) -> None:
        """
        Transports that are not Twisted's TCP ones are not changed.
        """
        transport = StringTransport()
        self.assertFalse(batch_writes(transport))
        self.assertIs(type(transport), StringTransport)

    def test_afterLoseWriteConnection(self) -> None:
        """
        After a half-close was asked for, writes go Twisted's way (which
        decides what to do with them), never batched.
        """
        self.transport.write(b"before")
        self.transport.loseWriteConnection()
        self.assertEqual(self.transport._tempDataBuffer, [b"before"])
        self.transport.write(b"after")
        self.assertIsNone(self.transport._batch)

    def test_twice(self) -> None:
        """
        A transport already batched stays as it is.
        """
        cls = type(self.transport)
        self.assertTrue(batch_writes(self.transport))
        self.assertIs(type(self.transport), cls)
