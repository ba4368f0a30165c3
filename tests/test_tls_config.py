"""
The TLS keys of the configuration: C{[tls]}, C{[[tls.certificates]]} and
a pool's C{ca}, C{verify}, C{client_cert}, C{client_key} and
C{server_name}.
"""

from __future__ import annotations

import os

from twisted.trial.unittest import SynchronousTestCase

from lbproxy.config import ConfigError, Target, parse_config
from lbproxy.config.tls import TLSConfig, UpstreamTLS, endpoint_port

BASE = {"pools": {"p": {"targets": ["127.0.0.1:8081"]}}}
CERT = {"cert": "certs/a.pem", "key": "certs/a-key.pem"}


def with_tls(**tls):
    data = dict(BASE)
    table = {"certificates": [CERT]}
    table.update(tls)
    data["tls"] = table
    return data


class TLSTableTests(SynchronousTestCase):
    def parse(self, data, path="/etc/lbproxy/config.toml"):
        return parse_config(data, path)

    def assertError(self, data, key, *fragments):
        with self.assertRaises(ConfigError) as caught:
            self.parse(data)
        self.assertEqual(caught.exception.key, key, str(caught.exception))
        for fragment in fragments:
            self.assertIn(fragment, caught.exception.reason)
        return caught.exception

    def test_defaults(self) -> None:
        """
        Only certificates are required: TLS on tcp:8443, TLS 1.2 and up,
        ALPN h2 then http/1.1, no redirect, no HSTS.
        """
        tls = self.parse(with_tls()).tls
        self.assertEqual(tls.listen, ("tcp:8443",))
        self.assertEqual(tls.min_version, "1.2")
        self.assertEqual(tls.alpn, ("h2", "http/1.1"))
        self.assertFalse(tls.redirect_http)
        self.assertIsNone(tls.redirect_port)
        self.assertIsNone(tls.hsts)

    def test_noTLS(self) -> None:
        self.assertIsNone(self.parse(BASE).tls)

    def test_pathsRelativeToConfig(self) -> None:
        """
        Certificate paths are relative to the configuration file's
        directory; absolute ones stay.
        """
        data = with_tls(certificates=[CERT, {"cert": "/x/b.pem", "key": "/x/b-key.pem"}])
        tls = self.parse(data).tls
        self.assertEqual(tls.certificates[0].cert, "/etc/lbproxy/certs/a.pem")
        self.assertEqual(tls.certificates[0].key, "/etc/lbproxy/certs/a-key.pem")
        self.assertEqual(tls.certificates[1].cert, "/x/b.pem")

    def test_full(self) -> None:
        data = with_tls(
            listen=["tcp:443", "tcp6:443:interface=\\:\\:"],
            min_version="1.3",
            alpn=["http/1.1"],
            redirect_http=True,
            hsts="max-age=31536000; includeSubDomains; preload",
        )
        data["server"] = {"listen": "tcp:80"}
        tls = self.parse(data).tls
        self.assertEqual(
            tls,
            TLSConfig(
                listen=("tcp:443", "tcp6:443:interface=\\:\\:"),
                certificates=tls.certificates,
                min_version="1.3",
                alpn=("http/1.1",),
                redirect_http=True,
                redirect_port=443,
                hsts="max-age=31536000; includeSubDomains; preload",
            ),
        )

    def test_certificatesRequired(self) -> None:
        data = dict(BASE, tls={"listen": "tcp:8443"})
        self.assertError(data, "tls.certificates", "required key is missing")
        self.assertError(with_tls(certificates=[]), "tls.certificates", "at least one")

    def test_certificateKeys(self) -> None:
        self.assertError(
            with_tls(certificates=[{"cert": "a.pem"}]), "tls.certificates[0].key", "required"
        )
        self.assertError(
            with_tls(certificates=[dict(CERT, chain="c.pem")]),
            "tls.certificates[0].chain",
            "unknown key",
        )
        self.assertError(
            with_tls(certificates=[{"cert": "a.pem", "key": "a.pem"}]),
            "tls.certificates[0].key",
            "different file",
        )

    def test_selfSigned(self) -> None:
        data = with_tls(
            certificates=[dict(CERT, self_signed=["LocalHost", "*.Example.com", "[::1]", "127.0.0.1"])]
        )
        names = self.parse(data).tls.certificates[0].self_signed
        self.assertEqual(names, ("localhost", "*.example.com", "::1", "127.0.0.1"))
        self.assertError(
            with_tls(certificates=[dict(CERT, self_signed=["a.*.com"])]),
            "tls.certificates[0].self_signed[0]",
            "invalid name",
        )
        self.assertError(
            with_tls(certificates=[dict(CERT, self_signed=[])]),
            "tls.certificates[0].self_signed",
            "at least one",
        )

    def test_minVersion(self) -> None:
        self.assertError(with_tls(min_version="1.1"), "tls.min_version", '"1.2" or "1.3"')
        self.assertError(with_tls(min_version=1.2), "tls.min_version", "got float 1.2")

    def test_alpn(self) -> None:
        self.assertError(with_tls(alpn=["h3"]), "tls.alpn[0]", 'unknown protocol "h3"')
        self.assertError(with_tls(alpn=["h2", "h2"]), "tls.alpn[1]", "twice")
        self.assertError(with_tls(alpn=[]), "tls.alpn", "at least one")

    def test_listen(self) -> None:
        """
        TLS listeners are plain endpoints, not used twice.
        """
        self.assertError(
            with_tls(listen="ssl:443:privateKey=k.pem"), "tls.listen", "TLS endpoint already"
        )
        data = with_tls(listen=["tcp:8443", "tcp:8080"])
        data["server"] = {"listen": "tcp:8080"}
        self.assertError(data, "tls.listen[1]", "already used by server.listen[0]")
        data = with_tls()
        data["demo"] = [{"name": "d", "listen": "tcp:8443"}]
        self.assertError(data, "tls.listen", "already used by demo[0].listen")
        self.assertError(with_tls(listen="tcp:notaport"), "tls.listen", "invalid endpoint")

    def test_redirectPort(self) -> None:
        """
        redirect_port defaults to the first TLS listener's port and may
        only be given with redirect_http.
        """
        self.assertEqual(
            self.parse(with_tls(listen="tcp:port=9443", redirect_http=True)).tls.redirect_port,
            9443,
        )
        self.assertEqual(
            self.parse(with_tls(redirect_http=True, redirect_port=443)).tls.redirect_port, 443
        )
        self.assertError(with_tls(redirect_port=443), "tls.redirect_port", "redirect_http")
        self.assertError(
            with_tls(listen="unix:/run/s.sock", redirect_http=True),
            "tls.redirect_port",
            "required with redirect_http",
        )

    def test_hsts(self) -> None:
        self.assertError(with_tls(hsts="1 year"), "tls.hsts", "max-age=SECONDS")
        self.assertError(with_tls(hsts=True), "tls.hsts", "expected a string")
        self.assertEqual(self.parse(with_tls(hsts="max-age=0")).tls.hsts, "max-age=0")

    def test_unknownKey(self) -> None:
        self.assertError(
            with_tls(redirect_htp=True), "tls.redirect_htp", 'did you mean "redirect_http"'
        )


class EndpointPortTests(SynchronousTestCase):
    def test_ports(self) -> None:
        self.assertEqual(endpoint_port("tcp:8443"), 8443)
        self.assertEqual(endpoint_port("tcp:8443:interface=127.0.0.1"), 8443)
        self.assertEqual(endpoint_port("tcp:interface=127.0.0.1:port=443"), 443)
        self.assertEqual(endpoint_port("tcp6:443:interface=\\:\\:1"), 443)
        self.assertIsNone(endpoint_port("unix:/run/x.sock"))


class PoolTLSTests(SynchronousTestCase):
    def pool(self, path="/srv/lb/config.toml", **keys):
        table = {"targets": ["https://api.internal:8443", "http://plain:80"]}
        table.update(keys)
        return parse_config({"pools": {"api": table}}, path).pools["api"]

    def assertError(self, key, fragment, **keys):
        with self.assertRaises(ConfigError) as caught:
            self.pool(**keys)
        self.assertEqual(caught.exception.key, key, str(caught.exception))
        self.assertIn(fragment, caught.exception.reason)

    def test_defaults(self) -> None:
        """
        Without TLS keys an https target carries no settings: verified
        against the system's trust store.
        """
        self.assertEqual(self.pool().targets[0], Target("https", "api.internal", 8443))

    def test_settings(self) -> None:
        """
        The pool's settings go to its https targets only; files are
        relative to the configuration file.
        """
        targets = self.pool(
            ca="ca.pem", client_cert="c.pem", client_key="/k/c-key.pem", server_name="API.Internal."
        ).targets
        self.assertEqual(
            targets[0].tls,
            UpstreamTLS(
                ca=os.path.join("/srv/lb", "ca.pem"),
                client_cert="/srv/lb/c.pem",
                client_key="/k/c-key.pem",
                server_name="api.internal",
            ),
        )
        self.assertIsNone(targets[1].tls)

    def test_verifyFalse(self) -> None:
        self.assertEqual(self.pool(verify=False).targets[0].tls, UpstreamTLS(verify=False))
        self.assertIsNone(self.pool(verify=True).targets[0].tls)
        self.assertError("pools.api.verify", "expected a boolean", verify="no")

    def test_caWithoutVerify(self) -> None:
        self.assertError("pools.api.ca", "no effect with verify = false", verify=False, ca="x.pem")

    def test_clientPair(self) -> None:
        self.assertError("pools.api.client_key", "go together", client_cert="c.pem")
        self.assertError("pools.api.client_cert", "go together", client_key="k.pem")

    def test_serverName(self) -> None:
        self.assertError("pools.api.server_name", "not an IP address", server_name="10.0.0.1")
        self.assertError("pools.api.server_name", "invalid server name", server_name="a b")

    def test_noHTTPSTarget(self) -> None:
        with self.assertRaises(ConfigError) as caught:
            parse_config({"pools": {"p": {"targets": ["a:80"], "ca": "ca.pem"}}})
        self.assertEqual(caught.exception.key, "pools.p.ca")
        self.assertIn("no target of this pool uses https://", caught.exception.reason)
