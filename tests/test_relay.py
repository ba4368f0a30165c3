"""
The one relay (L{lbproxy.relay.pipe}) on its own: bytes and counts, flow
control through producers, endings (close, half-close, abort) and the
idle timeout, on string transports and a memory clock.
"""

from __future__ import annotations

from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from lbproxy.relay.pipe import CLIENT, SERVER, Relay
from lbproxy.testing import AbortableTransport


class Transport(AbortableTransport):
    writeClosed = False

    def loseWriteConnection(self):
        self.writeClosed = True


class RelayTests(SynchronousTestCase):
    def setUp(self):
        self.clock = Clock()
        self.ended = []
        self.relay = Relay(self.clock, 30.0, self.ended.append)
        self.client, self.server = Transport(), Transport()

    def join(self, toServer=b"", toClient=b""):
        self.relay.join(self.client, self.server, toServer, toClient)
        self.clientHalf = self.relay.half(CLIENT)
        self.serverHalf = self.relay.half(SERVER)

    def test_bytes(self):
        """
        Bytes pass unchanged both ways, those read before the join first,
        and are counted.
        """
        self.join(b"early-up", b"early-down")
        self.clientHalf.dataReceived(b"+up")
        self.serverHalf.dataReceived(b"+down")
        self.assertEqual(self.server.value(), b"early-up+up")
        self.assertEqual(self.client.value(), b"early-down+down")
        self.assertEqual((self.relay.up, self.relay.down), (11, 15))

    def test_producers(self):
        """
        Each transport's producer pauses and resumes reading the other
        side; a side paused twice is resumed once.
        """
        self.join()
        self.assertTrue(self.client.streaming and self.server.streaming)
        self.server.producer.pauseProducing()
        self.server.producer.pauseProducing()
        self.assertEqual(self.client.producerState, "paused")
        self.assertEqual(self.relay.paused, [True, False])
        self.server.producer.resumeProducing()
        self.assertEqual(self.client.producerState, "producing")
        self.client.producer.pauseProducing()
        self.assertEqual(self.server.producerState, "paused")
        self.client.producer.resumeProducing()
        self.assertEqual(self.server.producerState, "producing")
        # stopProducing leaves ending to connectionLost.
        self.client.producer.stopProducing()
        self.assertFalse(self.server.disconnecting)

    def test_closeOneSide(self):
        """
        One side lost: the other is unpaused, loses its producer and is
        closed after its buffer; the end is reported once both are gone.
        """
        self.join()
        self.server.producer.pauseProducing()
        self.clock.advance(4)
        self.serverHalf.connectionLost(Failure(ConnectionDone()))
        self.assertTrue(self.client.disconnecting)
        self.assertFalse(self.client.aborted)
        self.assertIsNone(self.client.producer)
        self.assertEqual(self.client.producerState, "producing")
        self.assertEqual(self.ended, [])
        # Late bytes from the closing side go nowhere.
        self.clientHalf.dataReceived(b"late")
        self.assertEqual(self.relay.up, 0)
        self.clock.advance(1)
        self.clientHalf.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(self.ended, [self.relay])
        self.assertEqual(self.relay.reason, "server closed")
        self.assertEqual(self.relay.duration, 5.0)
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.clientHalf.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(len(self.ended), 1)

    def test_halfClose(self):
        """
        A side that ends its sending: the other's sending is ended, and
        each side is closed once done both ways.
        """
        self.join()
        self.relay.readLost(CLIENT)
        self.assertTrue(self.server.writeClosed)
        self.assertFalse(self.client.disconnecting or self.server.disconnecting)
        self.serverHalf.dataReceived(b"answer")
        self.assertEqual(self.client.value(), b"answer")
        self.relay.readLost(SERVER)
        self.assertTrue(self.client.writeClosed)
        self.assertTrue(self.client.disconnecting and self.server.disconnecting)
        self.assertEqual(self.relay.reason, "client closed")

    def test_idle(self):
        """
        The idle timeout counts from the last byte either way.
        """
        self.join()
        self.clock.advance(20)
        self.serverHalf.dataReceived(b"x")
        self.clock.advance(29)
        self.assertFalse(self.client.aborted)
        self.clock.advance(1)
        self.assertTrue(self.client.aborted and self.server.aborted)
        self.assertEqual(self.relay.reason, "idle timeout")

    def test_noIdleTimeout(self):
        relay = Relay(self.clock, 0)
        relay.join(self.client, self.server)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_abort(self):
        self.join()
        self.relay.abort()
        self.assertTrue(self.client.aborted and self.server.aborted)
        self.assertEqual(self.relay.reason, "stopped")
