"""
TLS to C{https://} targets, in memory: the proxy's backend connections
complete real handshakes with TLS backends over L{twisted.test.iosim}.
Verification against a pool's CA, names refused, C{verify = false}, client
certificates, SNI.
"""

from __future__ import annotations

from OpenSSL import SSL, crypto
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.trial.unittest import SynchronousTestCase

from lbproxy.tls.certs import load_pair
from lbproxy.config import parse_config
from lbproxy.testing import ProxyHarness
from lbproxy.tls.contexts import ServerCertificates, ServerTLS, server_context
from lbproxy.tls.material import load_tls_material
from lbproxy.testing.tls import PKI, Recorder, connectTLS, tlsFactory
from lbproxy.upstream.tls import UpstreamEndpoints

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"


def plainEndpoint(reactor, target, timeout):
    return TCP4ClientEndpoint(reactor, target.host, target.port, timeout=timeout)


class UpstreamTLSTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.pki = PKI(self.mktemp())
        self.goodCert = self.pki.issue("api", ["api.internal"])
        self.ipCert = self.pki.issue("ip", ["10.9.0.1"])
        self.wrongCert = self.pki.issue("wrong", ["other.example"])
        self.client = self.pki.issue("client", ["lbproxy"], client=True)
        ca = self.pki.caPath
        pools = {
            "good": {"targets": ["https://api.internal:8443"], "ca": ca},
            "wrong": {"targets": ["https://wrong.internal:8443"], "ca": ca},
            "system": {"targets": ["https://sys.internal:8443"]},
            "insecure": {"targets": ["https://skip.internal:8443"], "verify": False},
            "named": {"targets": ["https://10.9.0.2:8443"], "ca": ca,
                      "server_name": "api.internal"},
            "ip": {"targets": ["https://10.9.0.1:8443"], "ca": ca},
            "mtls": {"targets": ["https://api.internal:8443"], "ca": ca,
                     "client_cert": self.client[0], "client_key": self.client[1]},
        }
        self.config = parse_config(
            {
                "server": {"response_timeout": 10.0},
                "pools": pools,
                "routes": [{"host": name, "pool": name} for name in pools],
            },
            self.pki.path("lb.toml"),
        )
        material = load_tls_material(self.config, self.pki.now)
        self.endpoints = UpstreamEndpoints(material.upstream, inner=plainEndpoint)
        self.proxy = ProxyHarness(self.config, endpointFactory=self.endpoints)

    def backendContext(self, pair, requireClient=False) -> SSL.Context:
        context = server_context(load_pair(*pair), "1.2", [b"http/1.1"])
        if requireClient:
            context.get_cert_store().add_cert(
                crypto.X509.from_cryptography(self.pki.authority.certificate)
            )
            context.set_verify(
                SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT,
                lambda connection, cert, errno, depth, ok: bool(ok),
            )
        return context

    def acceptTLS(self, pair, requireClient=False):
        """
        Complete the proxy's pending connection to a TLS backend serving
        C{pair}.

        @return: C{(backend TLS protocol, backend application protocol,
            pump)}.
        """
        context = self.backendContext(pair, requireClient)
        loaded = context.get_app_data()
        creator = ServerTLS(ServerCertificates([loaded], [context]))
        backends = []

        class Backend(Recorder):
            def connectionMade(self):
                backends.append(self)

        from twisted.internet.protocol import Factory

        serverFactory = tlsFactory(creator, False, Factory.forProtocol(Backend),
                                   self.proxy.reactor)
        _, _, factory = self.proxy.takeConnection()
        client, server, pump = connectTLS(serverFactory, factory, self.proxy.reactor)
        return server, backends[0] if backends else None, pump

    def warnings(self) -> list:
        """
        Start collecting lbproxy's log messages; the list fills as they come.
        """
        from twisted.logger import formatEvent, globalLogPublisher

        messages: list = []

        def observe(event):
            if event.get("log_namespace", "").startswith("lbproxy"):
                messages.append(formatEvent(event))

        globalLogPublisher.addObserver(observe)
        self.addCleanup(globalLogPublisher.removeObserver, observe)
        return messages

    def get(self, host: bytes):
        client = self.proxy.client()
        client.send(b"GET /x HTTP/1.1\r\nHost: " + host + b"\r\n\r\n")
        return client

    def test_verified(self) -> None:
        """
        A backend whose certificate the pool's CA signed for the target's
        name is used; the target's name went as SNI.
        """
        client = self.get(b"good")
        self.assertEqual(self.proxy.pending(), ["api.internal:8443"])
        server, backend, pump = self.acceptTLS(self.goodCert)
        pump.flush()
        self.assertTrue(backend.data.startswith(b"GET /x HTTP/1.1\r\n"), backend.data)
        self.assertIn(b"X-Forwarded-Proto: http\r\n", backend.data)
        self.assertEqual(server.getHandle().get_servername(), b"api.internal")
        self.assertEqual(server.negotiatedProtocol, b"http/1.1")
        backend.transport.write(OK)
        pump.flush()
        self.assertTrue(client.received().startswith(b"HTTP/1.1 200 OK\r\n"), client.received())
        self.assertTrue(client.received().endswith(b"hello"))

    def test_wrongName(self) -> None:
        """
        A certificate for another name is refused: the request never
        reaches the backend, the client gets 502.
        """
        messages = self.warnings()
        client = self.get(b"wrong")
        server, backend, pump = self.acceptTLS(self.wrongCert)
        pump.flush()
        self.assertIn("TLS: the backend's certificate does not name wrong.internal",
                      "\n".join(messages))
        self.assertEqual(backend.data if backend else b"", b"")
        self.assertTrue(client.received().startswith(b"HTTP/1.1 502 Bad Gateway\r\n"),
                        client.received())
        self.assertIn('" 502 ', self.proxy.logLines()[-1])

    def test_untrustedCA(self) -> None:
        """
        Without a pool CA the system's trust store decides, which does not
        know the test CA: 502.
        """
        messages = self.warnings()
        client = self.get(b"system")
        server, backend, pump = self.acceptTLS(self.pki.issue("sys", ["sys.internal"]))
        pump.flush()
        self.assertIn("TLS handshake failed: certificate verify failed", "\n".join(messages))
        self.assertTrue(client.received().startswith(b"HTTP/1.1 502 "), client.received())

    def test_verifyFalse(self) -> None:
        """
        verify = false accepts any certificate, and still sends SNI.
        """
        client = self.get(b"insecure")
        server, backend, pump = self.acceptTLS(self.wrongCert)
        pump.flush()
        self.assertEqual(server.getHandle().get_servername(), b"skip.internal")
        backend.transport.write(OK)
        pump.flush()
        self.assertTrue(client.received().startswith(b"HTTP/1.1 200 "), client.received())

    def test_serverName(self) -> None:
        """
        server_name is sent and verified instead of the target's address.
        """
        self.get(b"named")
        self.assertEqual(self.proxy.pending(), ["10.9.0.2:8443"])
        server, backend, pump = self.acceptTLS(self.goodCert)
        pump.flush()
        self.assertEqual(server.getHandle().get_servername(), b"api.internal")
        self.assertTrue(backend.data.startswith(b"GET /x"))

    def test_ipTarget(self) -> None:
        """
        An IP address target is verified against the certificate's IP
        addresses, and no SNI is sent (SNI carries names only).
        """
        self.get(b"ip")
        server, backend, pump = self.acceptTLS(self.ipCert)
        pump.flush()
        self.assertIsNone(server.getHandle().get_servername())
        self.assertTrue(backend.data.startswith(b"GET /x"))

    def test_clientCertificate(self) -> None:
        """
        The pool's client certificate is presented to a backend that
        requires one (mutual TLS).
        """
        self.get(b"mtls")
        server, backend, pump = self.acceptTLS(self.goodCert, requireClient=True)
        pump.flush()
        peer = server.getPeerCertificate().to_cryptography()
        self.assertEqual(peer, load_pair(*self.client).certificate)
        self.assertTrue(backend.data.startswith(b"GET /x"))

    def test_clientCertificateMissing(self) -> None:
        """
        A pool without a client certificate cannot talk to a backend that
        requires one: 502.
        """
        client = self.get(b"good")
        server, backend, pump = self.acceptTLS(self.goodCert, requireClient=True)
        pump.flush()
        self.assertTrue(client.received().startswith(b"HTTP/1.1 502 "), client.received())

    def test_poolsDoNotShareConnections(self) -> None:
        """
        The same backend address in two pools with different TLS settings
        (here, a client certificate in one) gets separate connections.
        """
        client = self.get(b"good")
        server, backend, pump = self.acceptTLS(self.goodCert)
        pump.flush()
        backend.transport.write(OK)
        pump.flush()
        self.assertTrue(client.received().endswith(b"hello"))
        good = self.config.pools["good"].targets[0]
        self.assertEqual(self.proxy.connections.idleCount(good), 1)
        self.get(b"mtls")
        self.assertEqual(self.proxy.pending(), ["api.internal:8443"])
        self.assertEqual(self.proxy.connections.idleCount(good), 1)

    def test_probePolicy(self) -> None:
        """
        Health probes of an https target use the pool's TLS settings.
        """
        policy = self.endpoints.policy(
            [t for pool in self.config.pools.values() for t in pool.targets]
        )
        target = self.config.pools["good"].targets[0]
        self.assertIs(policy.creatorForNetloc(b"api.internal", 8443),
                      self.endpoints.creatorFor(target))
        self.assertIsNot(policy.creatorForNetloc(b"elsewhere", 443),
                         self.endpoints.creatorFor(target))
