"""
HTTP/2 requests and frames lbproxy refuses, in memory over real TLS:
C{CONNECT}, bodies on C{GET}/C{HEAD}, rapid reset and control-frame
floods (L{lbproxy.frontend.h2guard}).
"""

from __future__ import annotations

import h2.errors
import h2.exceptions
from hyperframe.frame import (
    DataFrame,
    PingFrame,
    PriorityFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)

from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.test.iosim import FakeTransport
from twisted.trial.unittest import SynchronousTestCase

from tests.test_tls_proxy import OK, TLSProxyTestCase
from lbproxy.frontend.http2 import CALMED_GRACE
from lbproxy.frontend.penalty import LONGEST, MEMORY, RepeatOffenders
from lbproxy.testing.tls import CLIENT_ADDRESS, SERVER_ADDRESS, H2Client


class H2GuardTestCase(TLSProxyTestCase):
    def h2(self, serverName="www.mango.com"):
        tls, client, pump = self.connect(serverName, alpn=(b"h2", b"http/1.1"), protocol=H2Client)
        pump.flush()
        self.assertEqual(tls.negotiatedProtocol, b"h2")
        return client, pump

    def configureBounds(self, http2: dict) -> None:
        """
        Serve with these C{[server.http2]} settings from now on.
        """
        self.server = {"http2": http2}
        H2GuardTestCase.setUp(self)

    def assertConnectionUsable(self, client, pump) -> None:
        """
        The connection still carries requests.
        """
        self.assertIsNone(client.lost)
        self.assertIsNone(client.goaway)
        stream = client.request(b"GET", b"/after", b"www.mango.com")
        pump.flush()
        while len(self.proxy.pending()) > 1:
            # Attempts for earlier requests, abandoned.
            self.proxy.takeConnection()
        backend = self.proxy.accept()
        self.assertTrue(backend.received().startswith(b"GET /after HTTP/1.1\r\n"))
        backend.respond(OK)
        pump.flush()
        self.assertEqual(client.responses[stream]["body"], b"hello")


def _h2TakesConnect() -> bool:
    """
    Whether the C{h2} package lets a server receive a plain C{CONNECT}
    (4.4 does; 4.3 calls it a protocol error for lack of C{:path}).
    """
    import h2.config
    import h2.connection

    client = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=True, validate_outbound_headers=False)
    )
    server = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
    client.initiate_connection()
    server.initiate_connection()
    client.send_headers(1, [(b":method", b"CONNECT"), (b":authority", b"h:443")])
    try:
        server.receive_data(client.data_to_send())
    except h2.exceptions.ProtocolError:
        return False
    return True


class ConnectTests(H2GuardTestCase):
    """
    C{CONNECT} is not proxied: 400 as on HTTP/1.1 (a tunnel is not a
    request lbproxy forwards), extended CONNECT (RFC 8441) 501.
    """

    def refusedByH2(self, client) -> bool:
        """
        With C{h2} before 4.4, C{h2} refuses a plain C{CONNECT} (no
        C{:path}) as a protocol error, before lbproxy sees it: then the
        client got C{GOAWAY(PROTOCOL_ERROR)} and nothing was forwarded.
        """
        if _h2TakesConnect():
            return False
        self.assertEqual(client.goaway, h2.errors.ErrorCodes.PROTOCOL_ERROR)
        self.assertIsNotNone(client.lost)
        self.assertEqual(self.proxy.pending(), [])
        return True

    def test_connect(self) -> None:
        """
        C{CONNECT} with only C{:authority} gets 400 on its stream, the
        same answer as an HTTP/1.1 C{CONNECT}; nothing reaches a backend
        and the connection carries on.  (With C{h2} before 4.4, C{h2}
        itself refuses it: C{GOAWAY(PROTOCOL_ERROR)}.)
        """
        client, pump = self.h2()
        stream = client.headers(
            [(b":method", b"CONNECT"), (b":authority", b"www.mango.com:443")], end=False
        )
        pump.flush()
        if self.refusedByH2(client):
            return
        self.assertEqual(client.header(stream, b":status"), b"400")
        self.assertTrue(client.responses[stream]["ended"])
        self.assertEqual(self.proxy.pending(), [])
        self.assertIn('"CONNECT www.mango.com:443 HTTP/2" 400', self.proxy.logLines()[-1])
        self.assertConnectionUsable(client, pump)

    def test_connectEnded(self) -> None:
        """
        The same when C{HEADERS} end the stream.
        """
        client, pump = self.h2()
        stream = client.headers([(b":method", b"CONNECT"), (b":authority", b"www.mango.com:443")])
        pump.flush()
        if self.refusedByH2(client):
            return
        self.assertEqual(client.header(stream, b":status"), b"400")
        self.assertConnectionUsable(client, pump)

    def test_extendedConnect(self) -> None:
        """
        Extended CONNECT (C{:protocol}, RFC 8441) gets 501 until WebSocket
        over HTTP/2 is supported; the server never advertises
        C{SETTINGS_ENABLE_CONNECT_PROTOCOL}.
        """
        client, pump = self.h2()
        self.assertNotIn(
            h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL,
            [k for k, v in client.conn.remote_settings.items() if v],
        )
        stream = client.headers(
            [
                (b":method", b"CONNECT"),
                (b":protocol", b"websocket"),
                (b":scheme", b"https"),
                (b":path", b"/chat"),
                (b":authority", b"www.mango.com"),
            ],
            end=False,
        )
        pump.flush()
        self.assertEqual(client.header(stream, b":status"), b"501")
        self.assertTrue(client.responses[stream]["ended"])
        self.assertEqual(self.proxy.pending(), [])
        # Refused by the HTTP/2 layer, before any request exists (as the
        # HTTP/1.1 channel's own refusals): reset so no body follows.
        self.assertEqual(client.responses[stream]["reset"], 0)
        self.assertEqual(self.proxy.logLines(), [])
        self.assertConnectionUsable(client, pump)


class RapidResetTests(H2GuardTestCase):
    """
    Client resets are counted per connection and interval; past the bound
    the connection gets C{GOAWAY(ENHANCE_YOUR_CALM)} and is closed.
    """

    def flood(self, client, pump, rounds: int, pause: float = 0.01) -> int:
        """
        Rounds of 100 requests, a pause, and 100 resets, until the server
        says GOAWAY.

        @return: The resets sent.
        """
        sent = 0
        for _ in range(rounds):
            if client.goaway is not None:
                break
            streams = [client.request(b"GET", b"/r", b"www.mango.com") for _ in range(100)]
            pump.flush()
            self.proxy.reactor.advance(pause)
            if client.goaway is not None:
                break
            for stream in streams:
                client.conn.reset_stream(stream)
            sent += len(streams)
            client._flush()
            pump.flush()
        return sent

    def test_rapidReset(self) -> None:
        """
        Rounds of 100 HEADERS, a 10 ms pause and 100 RST_STREAM: past
        the bound (200 in 10 s by default), GOAWAY(ENHANCE_YOUR_CALM) and
        the connection closes; no traceback, and every backend request is
        abandoned.
        """
        client, pump = self.h2()
        sent = self.flood(client, pump, 30)
        self.assertEqual(client.goaway, h2.errors.ErrorCodes.ENHANCE_YOUR_CALM)
        self.assertIsNotNone(client.lost)
        self.assertLessEqual(sent, 300)
        self.assertEqual(self.proxy.site.openConnections, 0)

    def test_resetsWithinBoundPerInterval(self) -> None:
        """
        The count starts again each interval: 100 resets every 10 s go on
        for as long as the client likes.
        """
        client, pump = self.h2()
        for _ in range(5):
            self.assertEqual(self.flood(client, pump, 1), 100)
            self.proxy.reactor.advance(10)
        self.assertConnectionUsable(client, pump)

    def test_configuredBound(self) -> None:
        """
        C{[server.http2] max_resets} and C{interval} set the bound: 300
        resets in 10 s pass under a bound of 400, and 100 every 2 s pass
        under 150 per 2 s, while the default (200 per 10 s) would refuse
        both.
        """
        self.configureBounds({"max_resets": 400})
        client, pump = self.h2()
        self.assertEqual(self.flood(client, pump, 3), 300)
        self.assertConnectionUsable(client, pump)
        self.configureBounds({"max_resets": 150, "interval": 2})
        client, pump = self.h2()
        for _ in range(5):
            self.assertEqual(self.flood(client, pump, 1), 100)
            self.proxy.reactor.advance(2)
        self.assertConnectionUsable(client, pump)
        self.flood(client, pump, 2)
        self.assertEqual(client.goaway, h2.errors.ErrorCodes.ENHANCE_YOUR_CALM)

    def test_resetOfFinishedStream(self) -> None:
        """
        A reset for a stream whose response is complete, while the client
        is still sending its body, is ignored; the connection goes on.
        """
        client, pump = self.h2(serverName=None)
        stream = client.request(b"POST", b"/", b"www.notmango.com", end=False)
        client.send(stream, b"some body")
        pump.flush()
        self.assertEqual(client.header(stream, b":status"), b"404")
        self.assertEqual(client.responses[stream]["reset"], 0)
        # (The client's h2 knows the stream is closed: a raw frame.)
        client.transport.write(RstStreamFrame(stream, error_code=8).serialize())
        pump.flush()
        self.assertConnectionUsable(client, pump)


class BodyWithoutLengthTests(H2GuardTestCase):
    """
    A C{GET} or C{HEAD} body without C{content-length} is forwarded
    chunked, as an HTTP/1.1 C{GET} with C{Transfer-Encoding: chunked} is
    (Twisted assumes no body for them and dropped it).
    """

    def test_getBodyForwarded(self) -> None:
        self.assertBodyForwarded(b"GET")

    def test_headBodyForwarded(self) -> None:
        self.assertBodyForwarded(b"HEAD")

    def assertBodyForwarded(self, method: bytes) -> None:
        client, pump = self.h2()
        stream = client.request(method, b"/q", b"www.mango.com", end=False)
        pump.flush()
        self.assertEqual(self.proxy.pending(), [])
        client.send(stream, b"hello")
        pump.flush()
        backend = self.proxy.accept()
        pump.flush()
        client.send(stream, b"!", end=True)
        pump.flush()
        sent = backend.received()
        self.assertTrue(sent.startswith(method + b" /q HTTP/1.1\r\n"), sent)
        self.assertIn(b"Transfer-Encoding: chunked\r\n", sent)
        self.assertTrue(sent.endswith(b"\r\n\r\n5\r\nhello\r\n1\r\n!\r\n0\r\n\r\n"), sent)
        backend.respond(OK if method == b"GET" else OK[: -len(b"hello")])
        pump.flush()
        self.assertEqual(client.header(stream, b":status"), b"200")

    def test_emptyDataIsNoBody(self) -> None:
        """
        C{HEADERS} without C{END_STREAM}, then an empty C{DATA} that ends
        the stream (as some clients send a C{GET}): no body.
        """
        client, pump = self.h2()
        stream = client.request(b"GET", b"/q", b"www.mango.com", end=False)
        client.send(stream, b"", end=True)
        pump.flush()
        head = self.proxy.accept().received()
        self.assertTrue(head.startswith(b"GET /q HTTP/1.1\r\n"), head)
        self.assertNotIn(b"Transfer-Encoding", head)
        self.assertNotIn(b"Content-Length", head)
        self.assertTrue(head.endswith(b"\r\n\r\n"))


class ControlFrameFloodTests(H2GuardTestCase):
    """
    Control frames are counted per connection and interval; past the
    bound (1,000 in 10 s by default) the connection gets
    C{GOAWAY(ENHANCE_YOUR_CALM)} and is closed.
    """

    def flood(self, client, pump, frame: bytes, count: int) -> None:
        """
        Send C{frame} C{count} times, 100 to a write.
        """
        while count > 0 and client.goaway is None:
            batch = min(count, 100)
            client.transport.write(frame * batch)
            count -= batch
            pump.flush()

    def assertCalmed(self, client) -> None:
        self.assertEqual(client.goaway, h2.errors.ErrorCodes.ENHANCE_YOUR_CALM)
        self.assertIsNotNone(client.lost)
        self.assertEqual(self.proxy.site.openConnections, 0)

    def test_settingsFlood(self) -> None:
        client, pump = self.h2()
        self.flood(client, pump, SettingsFrame(0).serialize(), 1100)
        self.assertCalmed(client)

    def test_pingFlood(self) -> None:
        client, pump = self.h2()
        self.flood(client, pump, PingFrame(0, opaque_data=b"12345678").serialize(), 1100)
        self.assertCalmed(client)

    def test_priorityFlood(self) -> None:
        client, pump = self.h2()
        self.flood(client, pump, PriorityFrame(1, depends_on=0, stream_weight=16).serialize(),
                   1100)
        self.assertCalmed(client)

    def test_windowUpdateFlood(self) -> None:
        client, pump = self.h2()
        self.flood(client, pump, WindowUpdateFrame(0, window_increment=1).serialize(), 1100)
        self.assertCalmed(client)

    def test_emptyDataFlood(self) -> None:
        client, pump = self.h2()
        stream = client.request(b"POST", b"/up", b"www.mango.com", end=False)
        pump.flush()
        self.flood(client, pump, DataFrame(stream, data=b"").serialize(), 1100)
        self.assertCalmed(client)

    def test_unknownFrameFlood(self) -> None:
        # Length 1, type 0xfa, no flags, stream 0, one byte.
        frame = b"\x00\x00\x01\xfa\x00\x00\x00\x00\x00x"
        client, pump = self.h2()
        self.flood(client, pump, frame, 1100)
        self.assertCalmed(client)

    def test_silentClientAborted(self) -> None:
        """
        A flooding client that reads nothing, so never answers lbproxy's
        TLS close_notify (TLS would wait for it, reading and decrypting
        all the while), is aborted C{CALMED_GRACE} seconds after its
        C{GOAWAY}.
        """
        client, pump = self.h2()
        client.transport.write(PingFrame(0, opaque_data=b"12345678").serialize() * 1100)
        # Deliver the client's bytes only; what the server sends is lost.
        self.proxy.reactor.advance(0)
        pump.server.dataReceived(pump.clientIO.getOutBuffer())
        self.proxy.reactor.advance(0)
        pump.serverIO.getOutBuffer()
        self.assertEqual(pump.server.wrappedProtocol.channel.calmedFor, "control frames")
        self.assertFalse(pump.serverIO.disconnecting)
        self.proxy.reactor.advance(CALMED_GRACE)
        self.assertTrue(pump.serverIO.disconnecting)
        pump.flush()
        self.assertEqual(self.proxy.site.openConnections, 0)

    def test_withinBoundPerInterval(self) -> None:
        """
        900 PINGs every 10 s go on for as long as the client likes; each
        is answered.
        """
        client, pump = self.h2()
        ping = PingFrame(0, opaque_data=b"12345678").serialize()
        for _ in range(3):
            self.flood(client, pump, ping, 900)
            self.proxy.reactor.advance(10)
        self.assertConnectionUsable(client, pump)

    def test_splitFrames(self) -> None:
        """
        Frames are counted however the bytes are split.
        """
        client, pump = self.h2()
        frames = PingFrame(0, opaque_data=b"12345678").serialize() * 1100
        for start in range(0, len(frames), 7):
            client.transport.write(frames[start:start + 7])
            if start % 700 == 0:
                pump.flush()
        pump.flush()
        self.assertCalmed(client)

    def test_downloadWindowUpdatesAllowed(self) -> None:
        """
        The C{WINDOW_UPDATE}s a client sends while it downloads do not
        count against the bound: each response chunk lbproxy sends (and
        each 8 KiB of it) makes room for one more.
        """
        self.configureBounds({"max_control_frames": 10})
        client, pump = self.h2()
        size = 16 * 1024
        backend = None
        for _ in range(40):
            stream = client.request(b"GET", b"/big", b"www.mango.com")
            pump.flush()
            if backend is None:
                backend = self.proxy.accept()
            backend.respond(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (size,))
            backend.respond(b"x" * size)
            pump.flush()
            self.assertEqual(len(client.responses[stream]["body"]), size)
        self.assertIsNone(client.goaway)
        # What a download earns is banked up to the bound only.
        self.flood(client, pump, WindowUpdateFrame(0, window_increment=1).serialize(), 100)
        self.assertCalmed(client)


class FlowControlTests(H2GuardTestCase):
    """
    A response waiting on an exhausted flow-control window waits without
    work: Twisted's send loop would reschedule itself at once, again and
    again, until the client gave credit (L{ProxyH2Connection}'s guard).
    """

    def setUp(self) -> None:
        H2GuardTestCase.setUp(self)
        # A busy loop would never let the memory clock's advance(0) return:
        # make it fail the test instead of hanging it.
        reactor = self.proxy.reactor
        callLater = reactor.callLater
        spins = {"at": None, "count": 0}

        def guardedCallLater(delay, f, *args, **kwargs):
            if delay == 0:
                now = reactor.seconds()
                if spins["at"] != now:
                    spins["at"], spins["count"] = now, 0
                spins["count"] += 1
                if spins["count"] > 10000:
                    raise AssertionError("busy loop: 10,000 calls with no delay")
            return callLater(delay, f, *args, **kwargs)

        self.patch(reactor, "callLater", guardedCallLater)

    def dueCalls(self) -> list:
        """
        The reactor's calls that are due now (a busy loop keeps one).
        """
        reactor = self.proxy.reactor
        return [c for c in reactor.getDelayedCalls() if c.getTime() <= reactor.seconds()]

    def settle(self, pump) -> None:
        """
        Pump until nothing is due (at most 100 rounds: a busy loop never
        settles).
        """
        for _ in range(100):
            pump.flush()
            if not self.dueCalls():
                return
            self.proxy.reactor.advance(0)

    def stalledDownload(self, size=100000, sent=None):
        client, pump = self.h2()
        client.acknowledge = False
        stream = client.request(b"GET", b"/big", b"www.mango.com")
        self.settle(pump)
        backend = self.proxy.accept()
        backend.respond(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (size,))
        backend.respond(b"x" * (size if sent is None else sent))
        self.settle(pump)
        # The client's initial window (65,535 bytes) is used up.
        self.assertEqual(len(client.responses[stream]["body"]), min(size, 65535))
        return client, pump, stream, backend

    def test_exhaustedWindowIdle(self) -> None:
        """
        With the window exhausted, nothing is scheduled to run at once:
        the stream is parked, and the backend paused.
        """
        client, pump, stream, backend = self.stalledDownload(1000000, sent=100000)
        self.assertEqual(self.dueCalls(), [])
        self.assertEqual(backend.transport.producerState, "paused")

    def test_creditResumes(self) -> None:
        """
        A C{WINDOW_UPDATE} for the stream and the connection wakes the
        parked stream: the rest of the response arrives and the stream
        ends.
        """
        size = 100000
        client, pump, stream, backend = self.stalledDownload(size)
        client.acknowledge = True
        client.conn.increment_flow_control_window(size)
        client.conn.increment_flow_control_window(size, stream_id=stream)
        client._flush()
        self.settle(pump)
        self.assertEqual(len(client.responses[stream]["body"]), size)
        self.assertTrue(client.responses[stream]["ended"])
        self.assertEqual(self.dueCalls(), [])

    def test_streamCreditOnly(self) -> None:
        """
        Credit for the stream while the connection's window stays
        exhausted sends nothing and parks the stream again, idle; the
        connection's credit then completes the response.
        """
        size = 100000
        client, pump, stream, backend = self.stalledDownload(size)
        client.conn.increment_flow_control_window(size, stream_id=stream)
        client._flush()
        self.settle(pump)
        self.assertEqual(len(client.responses[stream]["body"]), 65535)
        self.assertEqual(self.dueCalls(), [])
        client.acknowledge = True
        client.conn.increment_flow_control_window(size)
        client._flush()
        self.settle(pump)
        self.assertEqual(len(client.responses[stream]["body"]), size)
        self.assertTrue(client.responses[stream]["ended"])

    def test_otherStreamsGoOn(self) -> None:
        """
        A parked stream does not hold up the connection's other streams.
        """
        client, pump, stream, backend = self.stalledDownload(1000000, sent=100000)
        # Credit for the connection, none for the parked stream.
        client.conn.increment_flow_control_window(100000)
        client._flush()
        small = client.request(b"GET", b"/small", b"www.mango.com")
        self.settle(pump)
        other = self.proxy.accept()
        other.respond(OK)
        self.settle(pump)
        self.assertEqual(client.responses[small]["body"], b"hello")
        self.assertTrue(client.responses[small]["ended"])
        self.assertEqual(len(client.responses[stream]["body"]), 65535)
        self.assertEqual(self.dueCalls(), [])

    def test_withheldCreditTimesOut(self) -> None:
        """
        A client that never gives credit is closed by the idle timeout
        (the parked stream does not keep resetting it), and the backend
        connection is dropped.
        """
        client, pump, stream, backend = self.stalledDownload()
        self.assertEqual(self.dueCalls(), [])
        self.proxy.reactor.advance(self.proxy.site.limits.keepalive_timeout + 1)
        self.settle(pump)
        self.assertIsNotNone(client.lost)


class RepeatOffendersTests(SynchronousTestCase):
    """
    L{RepeatOffenders}: refusals after an offence, doubling, forgetting.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.offenders = RepeatOffenders(self.clock, 10.0, maxAddresses=3)

    def test_refusedForPenalty(self) -> None:
        """
        After an offence the address is refused for the penalty, then
        let in again; other addresses are not refused.
        """
        self.assertFalse(self.offenders.refuses("192.0.2.1"))
        self.assertEqual(self.offenders.offended("192.0.2.1"), 10.0)
        self.assertTrue(self.offenders.refuses("192.0.2.1"))
        self.assertFalse(self.offenders.refuses("192.0.2.2"))
        self.clock.advance(9.9)
        self.assertTrue(self.offenders.refuses("192.0.2.1"))
        self.clock.advance(0.1)
        self.assertFalse(self.offenders.refuses("192.0.2.1"))
        self.assertEqual(self.offenders.refused, 2)

    def test_doubling(self) -> None:
        """
        Each offence within L{MEMORY} doubles the refusal, up to
        L{LONGEST}; an offence after a quiet L{MEMORY} starts again.
        """
        seen = []
        for _ in range(8):
            seen.append(self.offenders.offended("192.0.2.1"))
            self.clock.advance(seen[-1])
        self.assertEqual(seen, [10.0, 20.0, 40.0, 80.0, 160.0, LONGEST, LONGEST, LONGEST])
        self.clock.advance(MEMORY)
        self.assertFalse(self.offenders.refuses("192.0.2.1"))
        self.assertEqual(self.offenders.offended("192.0.2.1"), 10.0)

    def test_off(self) -> None:
        """
        A penalty of 0 refuses nothing.
        """
        offenders = RepeatOffenders(self.clock, 0)
        self.assertEqual(offenders.offended("192.0.2.1"), 0)
        self.assertFalse(offenders.refuses("192.0.2.1"))

    def test_bounded(self) -> None:
        """
        At most C{maxAddresses} are remembered; the least recently
        offending is forgotten first.
        """
        for n in range(4):
            self.offenders.offended("192.0.2.%d" % (n,))
        self.assertFalse(self.offenders.refuses("192.0.2.0"))
        for n in range(1, 4):
            self.assertTrue(self.offenders.refuses("192.0.2.%d" % (n,)))


class ReconnectingFloodTests(H2GuardTestCase):
    """
    A client closed for a flood is refused new connections from its
    address for C{[server.http2] penalty} seconds, so reconnecting does
    not renew the flood.
    """

    def calm(self):
        client, pump = self.h2()
        ping = PingFrame(0, opaque_data=b"12345678").serialize()
        client.transport.write(ping * 1100)
        pump.flush()
        self.assertEqual(client.goaway, h2.errors.ErrorCodes.ENHANCE_YOUR_CALM)

    def test_reconnectRefused(self) -> None:
        """
        After the flood, a new connection from the address is closed at
        once (no handshake, no request); after the penalty a new one
        serves again.
        """
        self.calm()
        # Refused as it is accepted: no protocol, so the socket is closed.
        self.assertIsNone(self.factory.buildProtocol(CLIENT_ADDRESS))
        # Behind a PROXY header the accepted address is the balancer's and
        # the client's is only known once the connection is made.
        server = self.factory.buildProtocol(IPv4Address("TCP", "192.0.2.99", 1234))
        transport = FakeTransport(
            server, isServer=True, hostAddress=SERVER_ADDRESS, peerAddress=CLIENT_ADDRESS
        )
        server.makeConnection(transport)
        self.assertTrue(transport.disconnecting)
        self.assertEqual(self.factory.wrappedFactory.offenders.refused, 2)
        self.proxy.reactor.advance(10)
        client, pump = self.h2()
        self.assertConnectionUsable(client, pump)

    def test_penaltyOff(self) -> None:
        """
        With C{penalty = 0} the client may reconnect at once.
        """
        self.configureBounds({"penalty": 0})
        self.calm()
        client, pump = self.h2()
        self.assertConnectionUsable(client, pump)
