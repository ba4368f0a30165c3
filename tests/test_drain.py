"""
Tests for L{lbproxy.app.drain}: after a reload, connections busy on
removed routes or pools drain and are then closed while the others are
untouched; a graceful shutdown closes idle connections at once, lets the
busy ones finish, and cuts what is left at C{drain_timeout}, logged as
cut by the proxy (503), not as a client that went away (499).
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from lbproxy.app.drain import CUT_STATUS, LiveConnections, route_exists
from lbproxy.app.reload import parse_text
from lbproxy.testing import ProxyHarness

from tests.test_reload import BASE, NEW, OK, get


class Relay:
    """
    A long-lived connection that is not an HTTP channel (as a WebSocket
    relay would be).
    """

    def __init__(self, keys):
        self.keys = keys
        self.aborted = False
        self.closing = False

    def drainKeys(self):
        return self.keys

    def closeWhenIdle(self):
        self.closing = True
        return not self.keys

    def abortNow(self):
        self.aborted = True


class DrainTestCase(SynchronousTestCase):
    def setUp(self):
        self.harness = ProxyHarness(parse_text(BASE, "lbproxy.toml"))
        self.core = self.harness.core
        self.live = self.core.live
        self.reactor = self.harness.reactor

    def drainTimers(self):
        return [
            call for call in self.reactor.getDelayedCalls()
            if "_sweepOnce" in repr(call) or "abortAll" in repr(call)
        ]

    def busy(self, path, port):
        client = self.harness.client(port=port)
        client.send(get(path))
        return client, self.harness.accept()


class ReloadDrainTests(DrainTestCase):
    def test_channelsFollowed(self):
        """
        Every client connection is followed while open.
        """
        client = self.harness.client()
        self.assertEqual(list(self.live), [client.channel])
        client.disconnect()
        self.assertEqual(len(self.live), 0)

    def test_removedRouteDrains(self):
        """
        A request on a removed route gets C{drain_timeout}, then its
        connection is cut (logged 503); a request on a route that still
        exists, and an idle connection, are untouched.
        """
        old, oldBackend = self.busy(b"/old/download", 50001)
        kept, keptBackend = self.busy(b"/", 50002)
        idle = self.harness.client(port=50003)
        runtime = self.core.apply(parse_text(NEW, "lbproxy.toml"))
        self.assertEqual(self.live.drainRemoved(runtime, 10), 1)
        self.reactor.advance(9.9)
        self.assertFalse(old.transport.aborted)
        self.reactor.advance(0.2)
        self.assertTrue(old.transport.aborted)
        self.assertFalse(kept.transport.aborted)
        self.assertFalse(idle.transport.aborted)
        old.disconnect()
        self.assertIn(f'"GET /old/download HTTP/1.1" {CUT_STATUS} ', self.harness.log.getvalue())
        keptBackend.respond(OK)
        self.assertTrue(kept.received().startswith(b"HTTP/1.1 200 OK"))

    def test_finishedInTime(self):
        """
        A request on a removed route that finishes within the drain time
        is not touched.
        """
        old, backend = self.busy(b"/old/x", 50001)
        runtime = self.core.apply(parse_text(NEW, "lbproxy.toml"))
        self.live.drainRemoved(runtime, 10)
        backend.respond(OK)
        self.reactor.advance(11)
        self.assertFalse(old.transport.aborted)
        self.assertTrue(old.received().startswith(b"HTTP/1.1 200 OK"))

    def test_routeIdentity(self):
        """
        A route exists in a runtime when one equal to it (same settings)
        and its pool are there.
        """
        old = self.core.runtime
        route = old.config.routes[1]
        new = self.core.apply(parse_text(NEW, "lbproxy.toml"))
        self.assertTrue(route_exists((route, "web"), new))
        self.assertFalse(route_exists((old.config.routes[0], "old"), new))
        self.assertFalse(route_exists((route, "old"), new))
        self.assertTrue(route_exists((None, ""), new))

    def test_otherConnections(self):
        """
        Any connection offering C{drainKeys} follows the same rule.
        """
        old = self.core.runtime
        survivor = Relay([(old.config.routes[1], "web")])
        doomed = Relay([(old.config.routes[0], "old")])
        self.live.opened(survivor)
        self.live.opened(doomed)
        runtime = self.core.apply(parse_text(NEW, "lbproxy.toml"))
        self.assertEqual(self.live.drainRemoved(runtime, 5), 1)
        self.reactor.advance(5)
        self.assertEqual((survivor.aborted, doomed.aborted), (False, True))


class HTTP2Tests(SynchronousTestCase):
    """
    An HTTP/2 connection's keys are its open streams' requests.
    """

    def test_streams(self):
        from lbproxy.app.drain import channel_keys

        class Compiled:
            route = "r"

            class pool:
                name = "web"

        class Request:
            lbRoute = Compiled

        class Stream:
            _request = Request()

        class Connection:
            streams = {1: Stream(), 3: Stream()}

        self.assertEqual(channel_keys(Connection()), [("r", "web"), ("r", "web")])
        Connection.streams = {}
        self.assertEqual(channel_keys(Connection()), [])


class ShutdownTests(DrainTestCase):
    def test_nothingOpen(self):
        self.successResultOf(LiveConnections(self.reactor).shutdown(30))

    def test_graceful(self):
        """
        Idle connections close at once; a busy one finishes its response
        (with C{Connection: close}) and closes; then the shutdown is done.
        """
        idle = self.harness.client(port=50001)
        busy, backend = self.busy(b"/", 50002)
        d = self.live.shutdown(30)
        self.assertTrue(idle.transport.disconnecting)
        idle.disconnect()
        self.assertNoResult(d)
        backend.respond(OK)
        response = busy.received()
        self.assertTrue(response.startswith(b"HTTP/1.1 200 OK"))
        self.assertIn(b"Connection: close", response)
        self.assertTrue(busy.transport.disconnecting)
        busy.disconnect()
        self.successResultOf(d)
        self.assertEqual(self.drainTimers(), [])

    def test_deadline(self):
        """
        After C{drain_timeout}, what still runs is cut and logged as cut
        (503), and the shutdown is done.
        """
        busy, backend = self.busy(b"/", 50001)
        d = self.live.shutdown(20)
        self.reactor.advance(19.9)
        self.assertNoResult(d)
        self.reactor.advance(0.2)
        self.successResultOf(d)
        self.assertTrue(busy.transport.aborted)
        busy.disconnect()
        self.assertIn(f'"GET / HTTP/1.1" {CUT_STATUS} ', self.harness.log.getvalue())

    def test_secondSignal(self):
        """
        L{LiveConnections.abortAll} (a second SIGTERM) cuts at once.
        """
        busy, backend = self.busy(b"/", 50001)
        d = self.live.shutdown(30)
        self.live.abortAll()
        self.successResultOf(d)
        self.assertTrue(busy.transport.aborted)
        self.assertEqual(self.drainTimers(), [])

    def test_lateConnection(self):
        """
        A connection accepted while stopping is served once, then closed.
        """
        busy, backend = self.busy(b"/", 50001)
        self.live.shutdown(30)
        late = self.harness.client(port=50002)
        self.assertFalse(late.channel.persistent)
        self.live.abortAll()


SERVICE = """
[server]
listen = "tcp:18080:interface=127.0.0.1"
access_log = false
drain_timeout = 12

[pools.web]
targets = ["127.0.0.1:8081"]

[[routes]]
path = "/"
pool = "web"
"""


class ServiceStopTests(SynchronousTestCase):
    """
    L{ProxyService.stopService}: stop accepting first, then drain.
    """

    def test_stopDrains(self):
        from twisted.internet.address import IPv4Address

        from lbproxy.testing import Backend, Client
        from tests.test_tap import started_service

        service, reactor = started_service(self, SERVICE)
        self.assertEqual([p for p, _, _, _ in reactor.tcpServers], [18080])
        client = Client(service.site, "10.0.0.1", 50000)
        client.send(get(b"/"))
        host, port, factory, _, _ = reactor.tcpClients[0]
        backend = Backend(host, port, factory.buildProtocol(IPv4Address("TCP", host, port)))
        d = service.stopService()
        self.assertEqual(service.proxyListeners[0].parent, None)
        self.assertNoResult(d)
        reactor.advance(11)
        self.assertNoResult(d)
        backend.respond(OK)
        self.assertTrue(client.received().startswith(b"HTTP/1.1 200 OK"))
        reactor.advance(0.3)
        self.assertTrue(client.transport.disconnecting)
        client.disconnect()
        self.successResultOf(d)

    def test_stopCutsAtDrainTimeout(self):
        from tests.test_tap import started_service
        from lbproxy.testing import Client

        service, reactor = started_service(self, SERVICE)
        client = Client(service.site, "10.0.0.1", 50000)
        client.send(get(b"/"))
        d = service.stopService()
        reactor.advance(12.1)
        self.successResultOf(d)
        self.assertTrue(client.transport.aborted)
