"""
The TLS edge in memory: real TLS handshakes between in-memory transports
(L{twisted.test.iosim}), the proxy on a L{MemoryReactorClock}, backends as
string transports.  SNI, ALPN, HTTP/1.1 and HTTP/2 requests proxied end to
end, 421, HSTS and the plain listeners' redirect.
"""

from __future__ import annotations

from OpenSSL import SSL
from twisted.internet.ssl import Certificate, CertificateOptions, optionsForClientTLS
from twisted.trial.unittest import SynchronousTestCase

from lbproxy.frontend import body
from lbproxy.config import parse_config
from lbproxy.testing import Client, ProxyHarness
from lbproxy.tls.edge import TLSEdge
from lbproxy.tls.material import load_tls_material
from lbproxy.testing.tls import PKI, H2Client, Recorder, connectTLS, sanNames, tlsFactory

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"


def config(pki: PKI, server=None, **tls):
    mango = pki.issue("mango", ["www.mango.com", "*.mango.com"])
    apple = pki.issue("apple", ["www.apple.com"])
    table = {
        "listen": "tcp:8443",
        "certificates": [
            {"cert": mango[0], "key": mango[1]},
            {"cert": apple[0], "key": apple[1]},
        ],
    }
    table.update(tls)
    return parse_config(
        {
            "server": dict({"response_timeout": 10.0}, **(server or {})),
            "pools": {
                "mango": {"targets": ["10.1.0.1:8081"]},
                "apple": {"targets": ["10.2.0.1:9081"]},
            },
            "routes": [
                {"host": "www.mango.com", "pool": "mango"},
                {"host": "*.mango.com", "pool": "mango"},
                {"host": "www.apple.com", "pool": "apple"},
            ],
            "tls": table,
        },
        "test.toml",
    )


class TLSProxyTestCase(SynchronousTestCase):
    tls: dict = {"hsts": "max-age=600"}
    server: dict = {}

    def setUp(self) -> None:
        self.pki = PKI(self.mktemp())
        self.config = config(self.pki, server=self.server, **self.tls)
        self.proxy = ProxyHarness(self.config)
        material = load_tls_material(self.config, self.pki.now)
        self.edge = TLSEdge(self.config, self.proxy.reactor, material)
        [(description, self.factory)] = self.edge.listeners(self.proxy.site)
        self.assertEqual(description, "tcp:8443")
        with open(self.pki.caPath, "rb") as f:
            self.ca = Certificate.loadPEM(f.read())

    def connect(self, serverName, alpn=(b"http/1.1",), protocol=Recorder):
        """
        A TLS client verifying the proxy against the test CA, sending
        C{serverName} as SNI (none if L{None}).

        @return: C{(TLS protocol, application protocol, pump)}.
        """
        if serverName is None:
            creator = CertificateOptions(verify=False, acceptableProtocols=list(alpn))
        else:
            creator = optionsForClientTLS(
                serverName, trustRoot=self.ca, acceptableProtocols=list(alpn)
            )
        from twisted.internet.protocol import Factory

        clientFactory = tlsFactory(
            creator, True, Factory.forProtocol(protocol), self.proxy.reactor
        )
        client, server, pump = connectTLS(self.factory, clientFactory, self.proxy.reactor)
        return client, client.wrappedProtocol, pump


class HTTP1OverTLSTests(TLSProxyTestCase):
    def test_proxiedRequest(self) -> None:
        """
        A TLS handshake completes in memory and a request over it reaches
        the routed backend with C{X-Forwarded-Proto: https}; the response
        comes back with HSTS.
        """
        tls, app, pump = self.connect("www.mango.com")
        self.assertEqual(sanNames(tls.getPeerCertificate()), ["www.mango.com", "*.mango.com"])
        tls.write(b"GET /x HTTP/1.1\r\nHost: www.mango.com\r\n\r\n")
        pump.flush()
        self.assertEqual(self.proxy.pending(), ["10.1.0.1:8081"])
        backend = self.proxy.accept()
        head = backend.received()
        self.assertTrue(head.startswith(b"GET /x HTTP/1.1\r\n"), head)
        self.assertIn(b"X-Forwarded-Proto: https\r\n", head)
        backend.respond(OK)
        pump.flush()
        self.assertTrue(app.data.startswith(b"HTTP/1.1 200 OK\r\n"), app.data)
        self.assertIn(b"Strict-Transport-Security: max-age=600\r\n", app.data)
        self.assertTrue(app.data.endswith(b"\r\n\r\nhello"))
        self.assertIsNone(app.lost)
        self.assertEqual(tls.negotiatedProtocol, b"http/1.1")

    def test_sniSelectsCertificate(self) -> None:
        """
        SNI picks the certificate: exact name, wildcard name, and the first
        certificate for an unknown name or none.
        """
        for name, expected in [
            ("www.apple.com", ["www.apple.com"]),
            ("shop.mango.com", ["www.mango.com", "*.mango.com"]),
        ]:
            tls, app, pump = self.connect(name)
            self.assertEqual(sanNames(tls.getPeerCertificate()), expected, name)
        tls, app, pump = self.connect(None)
        self.assertEqual(sanNames(tls.getPeerCertificate()), ["www.mango.com", "*.mango.com"])

    def test_misdirected(self) -> None:
        """
        A request whose Host the SNI-chosen certificate does not cover gets
        421 and never reaches a backend.
        """
        tls, app, pump = self.connect("www.apple.com")
        tls.write(b"GET / HTTP/1.1\r\nHost: www.mango.com\r\n\r\n")
        pump.flush()
        self.assertTrue(app.data.startswith(b"HTTP/1.1 421 Misdirected Request\r\n"), app.data)
        self.assertEqual(self.proxy.pending(), [])
        self.assertIn('" 421 ', self.proxy.logLines()[-1])
        # Covered by the certificate: routed as usual on the same connection.
        tls.write(b"GET / HTTP/1.1\r\nHost: www.apple.com:8443\r\n\r\n")
        pump.flush()
        self.assertEqual(self.proxy.pending(), ["10.2.0.1:9081"])

    def test_wildcardCovers(self) -> None:
        """
        SNI shop.mango.com gets the wildcard certificate, which also covers
        Host www.mango.com.
        """
        tls, app, pump = self.connect("shop.mango.com")
        tls.write(b"GET / HTTP/1.1\r\nHost: www.mango.com\r\n\r\n")
        pump.flush()
        self.assertEqual(self.proxy.pending(), ["10.1.0.1:8081"])

    def test_noSNIHostDecides(self) -> None:
        """
        Without SNI the Host header routes, whatever the certificate.
        """
        tls, app, pump = self.connect(None)
        tls.write(b"GET / HTTP/1.1\r\nHost: www.apple.com\r\n\r\n")
        pump.flush()
        self.assertEqual(self.proxy.pending(), ["10.2.0.1:9081"])

    def test_absoluteFormMisdirected(self) -> None:
        """
        The authority of an absolute-form target is the host checked.
        """
        tls, app, pump = self.connect("www.apple.com")
        tls.write(b"GET https://www.mango.com/ HTTP/1.1\r\nHost: www.apple.com\r\n\r\n")
        pump.flush()
        self.assertTrue(app.data.startswith(b"HTTP/1.1 421 "), app.data)

    def test_hstsReplacesBackends(self) -> None:
        """
        lbproxy's HSTS value replaces one the backend sent.
        """
        tls, app, pump = self.connect("www.mango.com")
        tls.write(b"GET / HTTP/1.1\r\nHost: www.mango.com\r\n\r\n")
        pump.flush()
        self.proxy.accept().respond(
            b"HTTP/1.1 200 OK\r\nStrict-Transport-Security: max-age=1\r\n"
            b"Content-Length: 0\r\n\r\n"
        )
        pump.flush()
        self.assertEqual(app.data.count(b"Strict-Transport-Security"), 1, app.data)
        self.assertIn(b"Strict-Transport-Security: max-age=600\r\n", app.data)

    def test_plainListenerNoHSTS(self) -> None:
        """
        The plain listener's responses carry no HSTS.
        """
        client = self.proxy.client()
        client.send(b"GET / HTTP/1.1\r\nHost: www.notmango.com\r\n\r\n")
        self.assertTrue(client.received().startswith(b"HTTP/1.1 404 "))
        self.assertNotIn(b"Strict-Transport-Security", client.received())


class ProtocolFloorTests(TLSProxyTestCase):
    """
    What the listener refuses in a real handshake.
    """

    def handshake(self, configure):
        """
        A handshake from a client whose context C{configure} sets up.

        @return: C{(client TLS protocol, client application protocol)}.
        """
        from twisted.internet.interfaces import IOpenSSLContextFactory
        from twisted.internet.protocol import Factory
        from zope.interface import implementer

        context = SSL.Context(SSL.TLS_CLIENT_METHOD)
        configure(context)

        @implementer(IOpenSSLContextFactory)
        class Creator:
            def getContext(self):
                return context

        built = []

        class Remembering(Factory):
            def buildProtocol(self, addr):
                built.append(Recorder())
                return built[-1]

        clientFactory = tlsFactory(Creator(), True, Remembering(), self.proxy.reactor)
        tls, server, pump = connectTLS(self.factory, clientFactory, self.proxy.reactor)
        return tls, built[0]

    def test_tls11Refused(self) -> None:
        """
        A client offering TLS 1.0 and 1.1 only (every cipher allowed, so
        the offer is real) is refused by the server with a protocol version
        alert.
        """
        def tls11(context):
            context.set_min_proto_version(SSL.TLS1_VERSION)
            context.set_max_proto_version(SSL.TLS1_1_VERSION)
            context.set_cipher_list(b"DEFAULT:@SECLEVEL=0")

        tls, app = self.handshake(tls11)
        self.assertIsNotNone(app.lost)
        self.assertIn("alert protocol version", str(app.lost.value))

    def test_nonForwardSecretRefused(self) -> None:
        """
        TLS 1.2 with only RSA key exchange offered: the server finds no
        shared cipher and refuses with a handshake failure alert.
        """
        def rsaOnly(context):
            context.set_max_proto_version(SSL.TLS1_2_VERSION)
            context.set_cipher_list(b"AES128-GCM-SHA256:AES256-SHA:@SECLEVEL=0")

        tls, app = self.handshake(rsaOnly)
        self.assertIsNotNone(app.lost)
        self.assertIn("alert handshake failure", str(app.lost.value))

    def test_tls12ForwardSecret(self) -> None:
        """
        A TLS 1.2 client gets an ECDHE AEAD suite.
        """
        def tls12(context):
            context.set_max_proto_version(SSL.TLS1_2_VERSION)

        tls, app = self.handshake(tls12)
        self.assertIsNone(app.lost)
        connection = tls.getHandle()
        self.assertEqual(connection.get_protocol_version_name(), "TLSv1.2")
        self.assertTrue(connection.get_cipher_name().startswith("ECDHE-ECDSA-"),
                        connection.get_cipher_name())


class TLS13OnlyTests(TLSProxyTestCase):
    tls = {"min_version": "1.3"}

    handshake = ProtocolFloorTests.handshake

    def test_tls12Refused(self) -> None:
        """
        With min_version 1.3, a TLS 1.2 client is refused.
        """
        tls, app = self.handshake(lambda c: c.set_max_proto_version(SSL.TLS1_2_VERSION))
        self.assertIn("alert protocol version", str(app.lost.value))

    def test_tls13Accepted(self) -> None:
        tls, app, pump = self.connect("www.mango.com")
        self.assertEqual(tls.getHandle().get_protocol_version_name(), "TLSv1.3")


class HTTP2Tests(TLSProxyTestCase):
    """
    HTTP/2 negotiated through ALPN, proxied by the same code as HTTP/1.1.
    """

    def h2(self, serverName="www.mango.com"):
        tls, client, pump = self.connect(serverName, alpn=(b"h2", b"http/1.1"), protocol=H2Client)
        pump.flush()
        self.assertEqual(tls.negotiatedProtocol, b"h2")
        return client, pump

    def test_get(self) -> None:
        """
        A GET over h2 reaches the routed backend over HTTP/1.1 and the
        answer comes back on its stream, with HSTS.
        """
        client, pump = self.h2()
        stream = client.request(b"GET", b"/x?y=1", b"www.mango.com")
        pump.flush()
        self.assertEqual(self.proxy.pending(), ["10.1.0.1:8081"])
        backend = self.proxy.accept()
        head = backend.received()
        self.assertTrue(head.startswith(b"GET /x?y=1 HTTP/1.1\r\n"), head)
        self.assertIn(b"Host: www.mango.com\r\n", head)
        self.assertIn(b"X-Forwarded-Proto: https\r\n", head)
        self.assertNotIn(b"Content-Length", head)
        backend.respond(OK)
        pump.flush()
        response = client.responses[stream]
        self.assertEqual(client.header(stream, b":status"), b"200")
        self.assertEqual(response["body"], b"hello")
        self.assertTrue(response["ended"])
        self.assertEqual(client.header(stream, b"strict-transport-security"), b"max-age=600")
        self.assertIn('"GET /x?y=1 HTTP/2" 200 5', self.proxy.logLines()[-1])

    def test_concurrentStreams(self) -> None:
        """
        Two streams on one connection are two backend requests, answered
        independently.
        """
        client, pump = self.h2()
        first = client.request(b"GET", b"/1", b"www.mango.com")
        second = client.request(b"GET", b"/2", b"www.apple.com:8443")
        pump.flush()
        # SNI www.mango.com does not cover www.apple.com: 421 on that stream.
        self.assertEqual(client.header(second, b":status"), b"421")
        self.assertEqual(self.proxy.pending(), ["10.1.0.1:8081"])
        self.proxy.accept().respond(OK)
        pump.flush()
        self.assertEqual(client.responses[first]["body"], b"hello")

    def test_postStreamsBody(self) -> None:
        """
        A request body is forwarded while it arrives (chunked to the
        backend when the client gave no length), before the stream ends.
        """
        client, pump = self.h2()
        stream = client.request(b"POST", b"/up", b"www.mango.com", end=False)
        client.send(stream, b"first part ")
        pump.flush()
        backend = self.proxy.accept()
        pump.flush()
        sent = backend.received()
        self.assertIn(b"Transfer-Encoding: chunked\r\n", sent)
        self.assertTrue(sent.endswith(b"\r\n\r\nb\r\nfirst part \r\n"), sent)
        client.send(stream, b"second", end=True)
        pump.flush()
        self.assertTrue(backend.received().endswith(b"6\r\nsecond\r\n0\r\n\r\n"))
        backend.respond(OK)
        pump.flush()
        self.assertEqual(client.responses[stream]["body"], b"hello")

    def test_postWithLength(self) -> None:
        client, pump = self.h2()
        client.request(
            b"POST", b"/up", b"www.mango.com", headers=[(b"content-length", b"4")],
            body=b"abcd",
        )
        pump.flush()
        backend = self.proxy.accept()
        pump.flush()
        self.assertIn(b"Content-Length: 4\r\n", backend.received())
        self.assertTrue(backend.received().endswith(b"\r\n\r\nabcd"))

    def test_postWithoutBody(self) -> None:
        """
        A DELETE whose HEADERS end the stream has no body.
        """
        client, pump = self.h2()
        client.request(b"DELETE", b"/thing", b"www.mango.com")
        pump.flush()
        head = self.proxy.accept().received()
        self.assertNotIn(b"Transfer-Encoding", head)
        self.assertNotIn(b"Content-Length", head)

    def test_cookiesJoined(self) -> None:
        """
        Cookie fields split by the HTTP/2 client reach the backend as one.
        """
        client, pump = self.h2()
        client.request(b"GET", b"/", b"www.mango.com",
                       headers=[(b"cookie", b"a=1"), (b"cookie", b"b=2")])
        pump.flush()
        self.assertIn(b"Cookie: a=1; b=2\r\n", self.proxy.accept().received())

    def test_backpressure(self) -> None:
        """
        While the backend connection is not there, the proxy buffers up to
        BODY_HIGH_WATER and then stops granting flow-control window, so the
        client cannot send more; once the backend takes the body, it can.
        """
        client, pump = self.h2()
        stream = client.request(b"POST", b"/up", b"www.mango.com", end=False)
        chunk = b"x" * 16384
        sent = 0
        for _ in range(200):
            window = client.conn.local_flow_control_window(stream)
            if window < len(chunk):
                break
            client.send(stream, chunk)
            sent += len(chunk)
            pump.flush()
        self.assertGreater(sent, body.BODY_HIGH_WATER)
        self.assertLess(sent, body.BODY_HIGH_WATER + 2 * 65536)
        backend = self.proxy.accept()
        pump.flush()
        self.assertGreaterEqual(client.conn.local_flow_control_window(stream), len(chunk))
        self.assertGreater(len(backend.received()), body.BODY_HIGH_WATER)

    def test_pausedStreamGivesBackWindow(self) -> None:
        """
        A request whose body was held back (paused) and then answered
        without it (the backend refused: 502) gives the connection's
        flow-control credit back, so the connection does not starve.
        """
        client, pump = self.h2()
        stream = client.request(b"POST", b"/up", b"www.mango.com", end=False)
        chunk = b"x" * 16384
        for _ in range(200):
            if client.conn.local_flow_control_window(stream) < len(chunk):
                break
            client.send(stream, chunk)
            pump.flush()
        self.assertLess(client.conn.outbound_flow_control_window, len(chunk))
        self.proxy.refuse()
        pump.flush()
        self.assertEqual(client.header(stream, b":status"), b"502")
        self.assertEqual(client.responses[stream]["reset"], 0)
        self.assertEqual(client.conn.outbound_flow_control_window, 65535)

    def test_earlyResponseResetsStream(self) -> None:
        """
        A response before the request body has arrived ends the stream and
        resets it with NO_ERROR; the connection goes on.
        """
        client, pump = self.h2(serverName=None)
        stream = client.request(b"POST", b"/", b"www.notmango.com", end=False)
        client.send(stream, b"some body")
        pump.flush()
        response = client.responses[stream]
        self.assertEqual(client.header(stream, b":status"), b"404")
        self.assertNotIn(b"connection", dict(response["headers"]))
        self.assertEqual(response["reset"], 0)
        self.assertIsNone(client.lost)
        again = client.request(b"GET", b"/", b"www.mango.com")
        pump.flush()
        self.proxy.accept().respond(OK)
        pump.flush()
        self.assertEqual(client.responses[again]["body"], b"hello")

    def test_backendDiesMidResponse(self) -> None:
        """
        A backend that dies after the head: the stream is reset with
        INTERNAL_ERROR, so the client cannot take the truncated body for
        the whole; the connection goes on.
        """
        client, pump = self.h2()
        stream = client.request(b"GET", b"/", b"www.mango.com")
        pump.flush()
        backend = self.proxy.accept()
        backend.respond(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhel")
        pump.flush()
        backend.close()
        pump.flush()
        response = client.responses[stream]
        self.assertFalse(response["ended"])
        self.assertEqual(response["reset"], 2)
        self.assertIsNone(client.lost)

    def test_clientResetsStream(self) -> None:
        """
        The client resetting its stream abandons the backend request.
        """
        client, pump = self.h2()
        stream = client.request(b"GET", b"/", b"www.mango.com")
        pump.flush()
        backend = self.proxy.accept()
        client.conn.reset_stream(stream)
        client._flush()
        pump.flush()
        self.assertTrue(backend.transport.aborted)
        self.assertIn('" 499 ', self.proxy.logLines()[-1])

    def test_idleTimeout(self) -> None:
        """
        An idle HTTP/2 connection is closed after the keep-alive timeout.
        """
        client, pump = self.h2()
        timeout = self.proxy.site.limits.keepalive_timeout
        self.proxy.reactor.advance(timeout - 1)
        pump.flush()
        self.assertIsNone(client.lost)
        self.proxy.reactor.advance(2)
        pump.flush()
        self.assertIsNotNone(client.lost)

    def test_clientGoAway(self) -> None:
        """
        The client's GOAWAY closes the connection (TLS close included).
        """
        client, pump = self.h2()
        client.conn.close_connection()
        client._flush()
        pump.flush()
        self.assertIsNotNone(client.lost)
        self.assertEqual(self.proxy.site.openConnections, 0)

    def test_http11WhenNotOffered(self) -> None:
        """
        A client offering only http/1.1 gets HTTP/1.1.
        """
        tls, app, pump = self.connect("www.mango.com", alpn=(b"http/1.1",))
        self.assertEqual(tls.negotiatedProtocol, b"http/1.1")


class NoHTTP2Tests(TLSProxyTestCase):
    tls = {"alpn": ["http/1.1"]}

    def test_h2NotNegotiated(self) -> None:
        """
        Without h2 in tls.alpn, an h2-only client gets no ALPN protocol and
        is spoken to in HTTP/1.1.
        """
        tls, app, pump = self.connect("www.mango.com", alpn=(b"h2",))
        self.assertIsNone(tls.negotiatedProtocol)
        tls.write(b"GET / HTTP/1.1\r\nHost: www.mango.com\r\n\r\n")
        pump.flush()
        self.assertEqual(self.proxy.pending(), ["10.1.0.1:8081"])


class RedirectTests(TLSProxyTestCase):
    tls = {"redirect_http": True}

    def plain(self):
        return Client(self.edge.plainSite(self.proxy.site), "10.0.0.1", 50000)

    def test_redirect(self) -> None:
        """
        With redirect_http, a plain request gets 308 to the HTTPS URL (the
        TLS listener's port, path and query kept) and no backend is asked.
        """
        client = self.plain()
        client.send(b"GET /a/b?c=d HTTP/1.1\r\nHost: www.mango.com:8080\r\n\r\n")
        response = client.received()
        self.assertTrue(response.startswith(b"HTTP/1.1 308 Permanent Redirect\r\n"), response)
        self.assertIn(b"Location: https://www.mango.com:8443/a/b?c=d\r\n", response)
        self.assertNotIn(b"Strict-Transport-Security", response)
        self.assertEqual(self.proxy.pending(), [])

    def test_redirectPost(self) -> None:
        """
        A POST is redirected before its body is read, and the connection
        closes after the answer.
        """
        client = self.plain()
        client.send(b"POST /form HTTP/1.1\r\nHost: www.mango.com\r\nContent-Length: 100\r\n\r\nabc")
        response = client.received()
        self.assertTrue(response.startswith(b"HTTP/1.1 308 "), response)
        self.assertIn(b"Connection: close\r\n", response)

    def test_redirectWithoutHost(self) -> None:
        client = self.plain()
        client.send(b"GET / HTTP/1.0\r\n\r\n")
        self.assertTrue(client.received().startswith(b"HTTP/1.0 400 "), client.received())

    def test_noRedirectByDefault(self) -> None:
        """
        Without redirect_http the plain listeners serve the proxy.
        """
        self.edge._config = config(self.pki)
        self.assertIs(self.edge.plainSite(self.proxy.site), self.proxy.site)


class ConnectionCountTests(TLSProxyTestCase):
    """
    HTTPS connections count against server.max_connections together with
    the plain listeners' ones, HTTP/2 included.
    """

    def test_counted(self) -> None:
        client = self.proxy.client()
        self.assertEqual(self.proxy.site.openConnections, 1)
        tls, app, pump = self.connect("www.mango.com")
        tls.write(b"GET / HTTP/1.1\r\nHost: www.mango.com\r\n\r\n")
        pump.flush()
        self.assertEqual(self.proxy.site.openConnections, 2)

        def guarded():
            return [c for c in self.proxy.reactor.getDelayedCalls()
                    if "GuardedChannel" in repr(c)]

        before = guarded()
        tls2, h2client, pump2 = self.connect("www.mango.com", alpn=(b"h2",), protocol=H2Client)
        pump2.flush()
        self.assertEqual(tls2.negotiatedProtocol, b"h2")
        self.assertEqual(self.proxy.site.openConnections, 3)
        # The HTTP/1.1 channel's timers went with it.
        self.assertEqual(guarded(), before)
        tls2.loseConnection()
        pump2.flush()
        self.assertEqual(self.proxy.site.openConnections, 2)
        tls.loseConnection()
        pump.flush()
        client.disconnect()
        self.assertEqual(self.proxy.site.openConnections, 0)


class HandshakeTimeoutTests(TLSProxyTestCase):
    def test_silentClientCutOff(self) -> None:
        """
        A client that connects and never completes a TLS handshake is
        closed after the header timeout.
        """
        from twisted.test.iosim import FakeTransport

        from lbproxy.testing.tls import CLIENT_ADDRESS, SERVER_ADDRESS

        protocol = self.factory.buildProtocol(CLIENT_ADDRESS)
        transport = FakeTransport(protocol, isServer=True, hostAddress=SERVER_ADDRESS,
                                  peerAddress=CLIENT_ADDRESS)
        protocol.makeConnection(transport)
        protocol.dataReceived(b"\x16\x03\x01")  # the start of a ClientHello, then nothing
        timeout = self.proxy.site.limits.header_timeout
        self.proxy.reactor.advance(timeout - 0.5)
        self.assertFalse(transport.disconnecting)
        self.proxy.reactor.advance(1)
        self.assertTrue(transport.disconnecting)
