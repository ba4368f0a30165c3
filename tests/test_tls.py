"""
The TLS edge's parts: the SNI selector, certificate loading and its errors,
the demo's self-signed certificate, the server contexts' options, reload
on SIGHUP, start-up through C{twistd lbproxy}, and the redirect URL.
"""

from __future__ import annotations

import datetime
import io
import os

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from OpenSSL import SSL
from twisted.application.internet import StreamServerEndpointService
from twisted.internet.testing import MemoryReactorClock
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.trial.unittest import SkipTest, SynchronousTestCase

from lbproxy.tls.certs import CertificateError, ensure_self_signed, load_pair
from lbproxy.config import ConfigError, parse_config
from lbproxy.frontend.http import ProxySite
from lbproxy.tls.redirect import RedirectResource, https_location
from lbproxy.app.service import ProxyService
from lbproxy.app.signals import SignalService
from lbproxy.tls.sni import CertificateNames, SNIMap, misdirected
from lbproxy.app.tap import Options
from lbproxy.tls.contexts import CIPHERS, ServerTLS, _alpn_selector, server_context
from lbproxy.tls.edge import TLSProxySite
from lbproxy.tls.material import CertificateReloader, load_tls_material
from lbproxy.testing.tls import PKI, Recorder, connectTLS, sanNames, tlsFactory

DAY = datetime.timedelta(days=1)


class SNIMapTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.map = SNIMap(
            [
                (CertificateNames(["www.mango.com", "*.mango.com"]), "mango"),
                (CertificateNames(["www.apple.com", "shop.mango.com"]), "apple"),
                (CertificateNames(["*.eu.mango.com"]), "eu"),
            ]
        )

    def test_exact(self) -> None:
        self.assertEqual(self.map.select("www.apple.com"), "apple")
        self.assertEqual(self.map.select("WWW.Apple.COM."), "apple")

    def test_exactBeatsWildcard(self) -> None:
        """
        An exact name in a later certificate beats an earlier wildcard.
        """
        self.assertEqual(self.map.select("shop.mango.com"), "apple")

    def test_wildcard(self) -> None:
        """
        A wildcard stands for exactly one label.
        """
        self.assertEqual(self.map.select("pay.mango.com"), "mango")
        self.assertEqual(self.map.select("x.eu.mango.com"), "eu")
        self.assertEqual(self.map.match("a.b.mango.com"), None)
        self.assertEqual(self.map.match("mango.com"), None)

    def test_default(self) -> None:
        """
        No SNI, or a name no certificate has: the first certificate.
        """
        self.assertEqual(self.map.select(None), "mango")
        self.assertEqual(self.map.select(""), "mango")
        self.assertEqual(self.map.select("www.pear.com"), "mango")

    def test_firstWins(self) -> None:
        both = SNIMap([(CertificateNames(["a.com"]), 1), (CertificateNames(["a.com"]), 2)])
        self.assertEqual(both.select("a.com"), 1)

    def test_empty(self) -> None:
        self.assertRaises(ValueError, SNIMap, [])


class CertificateNamesTests(SynchronousTestCase):
    def test_covers(self) -> None:
        names = CertificateNames(["www.mango.com", "*.mango.com", "f*.bad.com"], ["::1"])
        self.assertTrue(names.covers("www.mango.com"))
        self.assertTrue(names.covers("Shop.Mango.Com."))
        self.assertFalse(names.covers("mango.com"))
        self.assertFalse(names.covers("a.b.mango.com"))
        self.assertFalse(names.covers("foo.bad.com"))
        self.assertTrue(names.covers("[::1]"))
        self.assertTrue(names.covers("0:0::1"))
        self.assertFalse(names.covers("127.0.0.1"))

    def test_misdirected(self) -> None:
        names = CertificateNames(["www.apple.com"])
        self.assertTrue(misdirected("www.apple.com", names, "www.mango.com"))
        self.assertFalse(misdirected("www.apple.com", names, "www.apple.com"))
        # No SNI: the Host decides.
        self.assertFalse(misdirected(None, names, "www.mango.com"))
        # The client asked for this very name and took the certificate.
        self.assertFalse(misdirected("www.pear.com", names, "WWW.PEAR.COM"))
        self.assertFalse(misdirected("www.apple.com", names, None))


class LoadTests(SynchronousTestCase):
    """
    Certificates and keys at start-up: what stops it, what only warns.
    """

    def setUp(self) -> None:
        self.pki = PKI(self.mktemp())
        self.now = self.pki.now

    def config(self, certificates, **pool):
        table = {"targets": ["https://api.internal"]}
        table.update(pool)
        return parse_config(
            {
                "pools": {"api": table},
                "tls": {"certificates": [{"cert": c, "key": k, **extra}
                                         for c, k, extra in certificates]},
            },
            os.path.join(self.pki.directory, "lb.toml"),
        )

    def load(self, certificates, **pool):
        return load_tls_material(self.config(certificates, **pool), self.now)

    def assertLoadError(self, certificates, key, fragment, **pool):
        with self.assertRaises(ConfigError) as caught:
            self.load(certificates, **pool)
        self.assertEqual(caught.exception.key, key, str(caught.exception))
        self.assertIn(fragment, caught.exception.reason)
        self.assertTrue(str(caught.exception).startswith(self.pki.path("lb.toml") + ": "))
        return caught.exception

    def test_loads(self) -> None:
        cert, key = self.pki.issue("a", ["a.example"], chain=True)
        material = self.load([(cert, key, {})])
        [loaded] = material.server.loaded
        self.assertEqual(len(loaded.chain), 2)
        self.assertTrue(loaded.names.covers("a.example"))
        self.assertEqual(material.warnings, ())

    def test_missingCert(self) -> None:
        _, key = self.pki.issue("a", ["a.example"])
        error = self.assertLoadError(
            [("missing.pem", key, {})], "tls.certificates[0].cert", "file not found"
        )
        self.assertIn(self.pki.path("missing.pem"), error.reason)

    def test_missingKey(self) -> None:
        cert, _ = self.pki.issue("a", ["a.example"])
        self.assertLoadError([(cert, "nokey.pem", {})], "tls.certificates[0].key",
                             "file not found")

    def test_mismatchedPair(self) -> None:
        """
        A key that is not the certificate's stops start-up.
        """
        a, _ = self.pki.issue("a", ["a.example"])
        _, bKey = self.pki.issue("b", ["b.example"])
        self.assertLoadError(
            [(a, bKey, {})], "tls.certificates[0].key", "does not belong to the certificate"
        )

    def test_unreadableDirectory(self) -> None:
        _, key = self.pki.issue("a", ["a.example"])
        self.assertLoadError(
            [(self.pki.directory, key, {})], "tls.certificates[0].cert", "is a directory"
        )

    def test_unreadablePermission(self) -> None:
        if os.getuid() == 0:
            raise SkipTest("root reads every file")
        cert, key = self.pki.issue("a", ["a.example"])
        os.chmod(key, 0)
        self.assertLoadError([(cert, key, {})], "tls.certificates[0].key", "permission denied")

    def test_notPEM(self) -> None:
        cert, key = self.pki.issue("a", ["a.example"])
        with open(cert, "wb") as f:
            f.write(b"not a certificate\n")
        self.assertLoadError([(cert, key, {})], "tls.certificates[0].cert",
                             "holds no PEM certificate")
        with open(key, "wb") as f:
            f.write(b"-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n")
        cert, _ = self.pki.issue("b", ["b.example"])
        self.assertLoadError([(cert, key, {})], "tls.certificates[0].key", "cannot be parsed")

    def test_encryptedKey(self) -> None:
        cert, key = self.pki.issue("a", ["a.example"])
        with open(key, "rb") as f:
            private = serialization.load_pem_private_key(f.read(), None)
        with open(key, "wb") as f:
            f.write(private.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.BestAvailableEncryption(b"secret"),
            ))
        self.assertLoadError([(cert, key, {})], "tls.certificates[0].key", "encrypted")

    def test_expiredWarns(self) -> None:
        """
        An expired certificate is loaded (the operator may have nothing
        better yet) with a warning.
        """
        cert, key = self.pki.issue(
            "old", ["a.example"], notBefore=self.now - 30 * DAY, notAfter=self.now - DAY
        )
        material = self.load([(cert, key, {})])
        self.assertIsNotNone(material.server)
        [warning] = material.warnings
        self.assertIn("tls.certificates[0].cert: certificate", warning)
        self.assertIn("expired on", warning)

    def test_notYetValidWarns(self) -> None:
        cert, key = self.pki.issue(
            "new", ["a.example"], notBefore=self.now + DAY, notAfter=self.now + 30 * DAY
        )
        [warning] = self.load([(cert, key, {})]).warnings
        self.assertIn("is not valid before", warning)

    def test_noNamesWarns(self) -> None:
        cert, key = self.pki.issue("bare", [])
        [warning] = self.load([(cert, key, {})]).warnings
        self.assertIn("names no host", warning)

    def test_keyTooSmall(self) -> None:
        """
        A certificate OpenSSL refuses (a 1024-bit RSA key at its default
        security level) stops start-up with OpenSSL's reason.
        """
        from lbproxy.tls.certs import _leaf, certificate_pem, key_pem

        small = rsa.generate_private_key(65537, 1024)
        cert = _leaf(["a.example"], small, self.pki.authority.certificate.subject,
                     self.pki.authority.key, self.now - DAY, self.now + DAY, False)
        certPath, keyPath = self.pki.path("small.pem"), self.pki.path("small-key.pem")
        with open(certPath, "wb") as f:
            f.write(certificate_pem(cert))
        with open(keyPath, "wb") as f:
            f.write(key_pem(small))
        try:
            self.load([(certPath, keyPath, {})])
        except ConfigError as e:
            self.assertEqual(e.key, "tls.certificates[0].cert")
            self.assertIn("OpenSSL refuses", e.reason)
        else:
            raise SkipTest("this OpenSSL accepts 1024-bit RSA keys")

    def test_upstreamCA(self) -> None:
        """
        A pool's CA file is read at start-up; a missing one names the
        pool's key.
        """
        cert, key = self.pki.issue("a", ["a.example"])
        material = self.load([(cert, key, {})], ca=self.pki.caPath)
        self.assertEqual(len(list(material.upstream)), 2)
        self.assertLoadError([(cert, key, {})], "pools.api.ca", "file not found", ca="no.pem")
        self.assertLoadError([(cert, key, {})], "pools.api.ca", "holds no PEM certificate",
                             ca=key)

    def test_upstreamClientCertificate(self) -> None:
        cert, key = self.pki.issue("a", ["a.example"])
        client, clientKey = self.pki.issue("client", ["lbproxy"], client=True)
        material = self.load([(cert, key, {})], client_cert=client, client_key=clientKey)
        [settings] = [s for s in material.upstream if s is not None]
        self.assertIsNotNone(material.upstream[settings].client)
        self.assertLoadError(
            [(cert, key, {})], "pools.api.client_key", "does not belong",
            client_cert=client, client_key=key,
        )


class SelfSignedTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.directory = self.mktemp()
        self.now = datetime.datetime(2030, 1, 1, tzinfo=datetime.timezone.utc)
        self.cert = os.path.join(self.directory, "certs", "demo.pem")
        self.key = os.path.join(self.directory, "certs", "demo-key.pem")

    def config(self):
        return parse_config(
            {
                "pools": {"p": {"targets": ["a:1"]}},
                "tls": {"certificates": [{"cert": "certs/demo.pem", "key": "certs/demo-key.pem",
                                          "self_signed": ["localhost", "127.0.0.1"]}]},
            },
            os.path.join(self.directory, "lb.toml"),
        )

    def test_generated(self) -> None:
        """
        Both files missing: a self-signed certificate for the names, valid
        from now, its key readable by its owner only.
        """
        material = load_tls_material(self.config(), self.now)
        self.assertEqual(material.generated, (self.cert,))
        self.assertEqual(os.stat(self.key).st_mode & 0o777, 0o600)
        [loaded] = material.server.loaded
        self.assertTrue(loaded.names.covers("localhost"))
        self.assertTrue(loaded.names.covers("127.0.0.1"))
        self.assertEqual(loaded.notBefore, self.now - datetime.timedelta(hours=1))
        self.assertEqual(loaded.certificate.issuer, loaded.certificate.subject)
        # Next start: loaded, not generated again.
        again = load_tls_material(self.config(), self.now)
        self.assertEqual(again.generated, ())
        self.assertEqual(again.server.loaded[0].certificate, loaded.certificate)

    def test_oneMissing(self) -> None:
        """
        lbproxy never overwrites one file of a pair.
        """
        load_tls_material(self.config(), self.now)
        os.unlink(self.key)
        with self.assertRaises(ConfigError) as caught:
            load_tls_material(self.config(), self.now)
        self.assertEqual(caught.exception.key, "tls.certificates[0].key")
        self.assertIn("generated only when both files are missing", caught.exception.reason)

    def test_checkWritesNothing(self) -> None:
        """
        --check (generate=False) does not write the certificate.
        """
        material = load_tls_material(self.config(), self.now, generate=False)
        self.assertIsNone(material.server)
        self.assertFalse(os.path.exists(self.cert))

    def test_reloadNeverGenerates(self) -> None:
        """
        SIGHUP with both files deleted generates nothing: the error names
        the missing file, the certificate generated at start-up stays in
        use, and nothing says "reloaded".
        """
        from twisted.logger import formatEvent, globalLogPublisher

        clock = MemoryReactorClock()
        clock.advance(self.now.timestamp())
        material = load_tls_material(self.config(), self.now)
        server = ServerTLS(material.server)
        before = server.certificates.loaded[0].certificate
        upstream = _Upstream()
        reloader = CertificateReloader(self.config(), clock, server, upstream)
        os.unlink(self.cert)
        os.unlink(self.key)
        events = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        self.assertFalse(reloader.reload())
        self.assertFalse(os.path.exists(self.cert))
        self.assertFalse(os.path.exists(self.key))
        messages = [formatEvent(e) for e in events
                    if e.get("log_namespace") == "lbproxy.tls.material"]
        self.assertEqual(len(messages), 1, messages)
        self.assertIn("certificate reload failed, keeping the current certificates",
                      messages[0])
        self.assertIn(self.cert, messages[0])
        self.assertEqual([e["log_level"].name for e in events
                          if e.get("log_namespace") == "lbproxy.tls.material"], ["error"])
        self.assertIs(server.certificates.loaded[0].certificate, before)
        self.assertEqual(upstream.reloaded, 0)

    def test_unwritable(self) -> None:
        with open(self.directory + "-file", "w") as f:
            f.write("")
        with self.assertRaises(CertificateError) as caught:
            ensure_self_signed(
                os.path.join(self.directory + "-file", "c.pem"),
                os.path.join(self.directory + "-file", "k.pem"), ["x"], self.now,
            )
        self.assertIn("cannot write a self-signed certificate", caught.exception.reason)


class ContextTests(SynchronousTestCase):
    """
    The options of the listeners' OpenSSL contexts.
    """

    def setUp(self) -> None:
        pki = PKI(self.mktemp())
        self.loaded = load_pair(*pki.issue("a", ["a.example"]))

    def test_floor12(self) -> None:
        context = server_context(self.loaded, "1.2", [b"h2", b"http/1.1"])
        options = context.set_options(0)
        for option in (SSL.OP_NO_SSLv3, SSL.OP_NO_TLSv1, SSL.OP_NO_TLSv1_1,
                       SSL.OP_NO_COMPRESSION, SSL.OP_CIPHER_SERVER_PREFERENCE):
            self.assertTrue(options & option, option)
        self.assertFalse(options & SSL.OP_NO_TLSv1_2)
        self.assertFalse(options & SSL.OP_NO_TLSv1_3)

    def test_sessionResumption(self) -> None:
        """
        Session cache on, session tickets not turned off.
        """
        context = server_context(self.loaded, "1.2", [])
        self.assertEqual(context.get_session_cache_mode(), SSL.SESS_CACHE_SERVER)
        self.assertFalse(context.set_options(0) & SSL.OP_NO_TICKET)

    def test_forwardSecretCiphers(self) -> None:
        """
        Every TLS 1.2 suite is ECDHE with an AEAD cipher; TLS 1.3 suites are
        forward secret by design.
        """
        connection = SSL.Connection(server_context(self.loaded, "1.2", []), None)
        suites = connection.get_cipher_list()
        self.assertTrue(suites)
        for suite in suites:
            if suite.startswith("TLS_"):
                continue
            self.assertTrue(suite.startswith("ECDHE-"), suite)
            self.assertTrue("GCM" in suite or "CHACHA20" in suite, suite)
        self.assertNotIn(b"RSA-AES", CIPHERS.replace(b"ECDHE-RSA-AES", b""))

    def test_alpnServerPreference(self) -> None:
        select = _alpn_selector([b"h2", b"http/1.1"])
        self.assertEqual(select(None, [b"http/1.1", b"h2"]), b"h2")
        self.assertEqual(select(None, [b"http/1.1"]), b"http/1.1")
        self.assertIs(select(None, [b"spdy/3"]), SSL.NO_OVERLAPPING_PROTOCOLS)

    def test_knowsItsCertificate(self) -> None:
        context = server_context(self.loaded, "1.3", [])
        self.assertIs(context.get_app_data(), self.loaded)


class ReloadTests(SynchronousTestCase):
    """
    SIGHUP: new handshakes get the new certificate; a bad file keeps the
    old one.
    """

    def setUp(self) -> None:
        self.pki = PKI(self.mktemp())
        self.certPath, self.keyPath = self.pki.issue("site", ["old.example"])
        self.config = parse_config(
            {
                "pools": {"p": {"targets": ["a:1"]}},
                "tls": {"certificates": [{"cert": self.certPath, "key": self.keyPath}]},
            },
            "lb.toml",
        )
        self.clock = MemoryReactorClock()
        self.clock.advance(self.pki.now.timestamp())
        material = load_tls_material(self.config, self.pki.now)
        self.server = ServerTLS(material.server)
        self.upstream = _Upstream()
        self.reloader = CertificateReloader(self.config, self.clock, self.server, self.upstream)

    def served(self) -> list:
        """
        The names in the certificate a new connection gets.
        """
        from twisted.internet.ssl import CertificateOptions

        serverFactory = tlsFactory(self.server, False, Recorder.factory(), self.clock)
        clientFactory = tlsFactory(CertificateOptions(verify=False), True, Recorder.factory(),
                                   self.clock)
        client, server, pump = connectTLS(serverFactory, clientFactory, self.clock)
        return sanNames(client.getPeerCertificate()), (client, server, pump)

    def test_reload(self) -> None:
        names, (oldClient, _, oldPump) = self.served()
        self.assertEqual(names, ["old.example"])
        self.pki.issue("site", ["new.example"])
        self.assertTrue(self.reloader.reload())
        self.assertEqual(self.served()[0], ["new.example"])
        self.assertEqual(self.upstream.reloaded, 1)
        # The connection made before goes on with the old certificate.
        oldClient.write(b"still here")
        oldPump.flush()
        self.assertIsNone(oldClient.wrappedProtocol.lost)
        self.assertEqual(sanNames(oldClient.getPeerCertificate()), ["old.example"])

    def test_badReloadKeepsOld(self) -> None:
        _, otherKey = self.pki.issue("other", ["other.example"])
        os.replace(otherKey, self.keyPath)
        from twisted.logger import formatEvent, globalLogPublisher

        events = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        self.assertFalse(self.reloader.reload())
        messages = [formatEvent(e) for e in events if e.get("log_namespace") == "lbproxy.tls.material"]
        self.assertEqual(len(messages), 1, messages)
        self.assertIn("certificate reload failed, keeping the current certificates", messages[0])
        self.assertIn("does not belong to the certificate", messages[0])
        self.assertEqual(self.served()[0], ["old.example"])
        self.assertEqual(self.upstream.reloaded, 0)


class _Upstream:
    reloaded = 0

    def reload(self, material) -> None:
        self.reloaded += 1


GOOD = """
[server]
listen = "tcp:18080:interface=127.0.0.1"
access_log = false

[pools.mango]
targets = ["127.0.0.1:8081"]

[tls]
listen = "tcp:18443:interface=127.0.0.1"
redirect_http = true
hsts = "max-age=60"

[[tls.certificates]]
cert = "CERT"
key = "KEY"
"""


class StartUpTests(SynchronousTestCase):
    """
    C{twistd lbproxy}: certificates are read while options are parsed.
    """

    def setUp(self) -> None:
        self.pki = PKI(self.mktemp())

    def options(self, cert, key, *args):
        path = self.pki.path("lb.toml")
        with open(path, "w") as f:
            f.write(GOOD.replace("CERT", cert).replace("KEY", key))
        out, err = io.StringIO(), io.StringIO()
        options = Options(stdout=out, stderr=err)
        code = None
        try:
            options.parseOptions(["--config", path, *args])
        except SystemExit as e:
            code = e.code
        return options, code, out.getvalue(), err.getvalue()

    def test_badCertificateStops(self) -> None:
        """
        A missing certificate stops start-up (and --check) with one line
        and status 2.
        """
        _, key = self.pki.issue("a", ["a.example"])
        for args in ((), ("--check",)):
            _, code, _, err = self.options("missing.pem", key, *args)
            self.assertEqual(code, 2)
            self.assertEqual(err.count("\n"), 1, err)
            self.assertIn("lbproxy: configuration error: ", err)
            self.assertIn("lb.toml: tls.certificates[0].cert: file not found: ", err)

    def test_expiredWarnsAndStarts(self) -> None:
        now = self.pki.now
        cert, key = self.pki.issue("a", ["a.example"], notBefore=now - 9 * DAY,
                                   notAfter=now - DAY)
        options, code, _, err = self.options(cert, key)
        self.assertIsNone(code)
        self.assertIn("lbproxy: warning: ", err)
        self.assertIn("expired on", err)
        self.assertIsNotNone(options["tls"].server)

    def test_checkSummary(self) -> None:
        cert, key = self.pki.issue("a", ["a.example"])
        _, code, out, _ = self.options(cert, key, "--check")
        self.assertEqual(code, 0)
        self.assertIn("(1 pools, 0 routes, 1 listeners, 1 HTTPS)", out)

    def test_assembles(self) -> None:
        """
        The service listens on the HTTPS endpoint through TLS, the plain
        listener redirects, and SIGHUP reloads.
        """
        cert, key = self.pki.issue("a", ["a.example"])
        options, _, _, _ = self.options(cert, key)
        reactor = MemoryReactorClock()
        service = ProxyService(options["loaded"], reactor, tls=options["tls"])
        listeners = {
            s.description: s.factory for s in service if isinstance(s, StreamServerEndpointService)
        }
        tlsFactory = listeners["tcp:18443:interface=127.0.0.1"]
        self.assertIsInstance(tlsFactory, TLSMemoryBIOFactory)
        self.assertIsInstance(tlsFactory.wrappedFactory, TLSProxySite)
        self.assertEqual(tlsFactory.wrappedFactory.hsts, b"max-age=60")
        plain = listeners["tcp:18080:interface=127.0.0.1"]
        self.assertIsInstance(plain, ProxySite)
        self.assertIsInstance(plain.resource, RedirectResource)
        self.assertEqual([type(s) for s in service if isinstance(s, SignalService)],
                         [SignalService])


class RedirectLocationTests(SynchronousTestCase):
    def test_location(self) -> None:
        self.assertEqual(https_location(b"www.mango.com:8080", 443, b"/a?b=c"),
                         b"https://www.mango.com/a?b=c")
        self.assertEqual(https_location(b"WWW.Mango.com.", 8443, b"/"),
                         b"https://www.mango.com:8443/")
        self.assertEqual(https_location(b"[::1]:80", 8443, b"/x"), b"https://[::1]:8443/x")
        self.assertEqual(https_location(b"ignored", 443, b"http://a.example/p?q"),
                         b"https://a.example/p?q")

    def test_refused(self) -> None:
        """
        No host, or a host that could inject into the URL: no redirect.
        """
        for host in (None, b"", b"evil.com/@x", b"a b", b"a\\b", b"h:port"):
            self.assertIsNone(https_location(host, 443, b"/"), host)
        self.assertIsNone(https_location(b"a.example", 443, b"*"))
