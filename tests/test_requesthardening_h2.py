"""
Request hardening over HTTP/2, which goes through the same request stages
as HTTP/1.x: in memory, with real TLS handshakes (see
L{tests.test_tls_proxy}).
"""

from __future__ import annotations

from tests import test_tls_proxy
from tests.test_tls_proxy import TLSProxyTestCase


class HTTP2HardeningTests(TLSProxyTestCase):
    h2 = test_tls_proxy.HTTP2Tests.h2

    def assertRefused(self, path: bytes, headers=()) -> None:
        client, pump = self.h2()
        stream = client.request(b"GET", path, b"www.mango.com", headers=headers)
        pump.flush()
        self.assertEqual(client.header(stream, b":status"), b"400", (path, headers))
        self.assertEqual(self.proxy.pending(), [])

    def test_fragmentRefused(self) -> None:
        """
        A C{#} in C{:path} gets 400 and reaches no backend.
        """
        for path in (b"/c-frag#x/../../SMUG", b"/a?q#f"):
            self.assertRefused(path)

    def test_controlCharacterRefused(self) -> None:
        """
        A control character other than HTAB in a field value gets 400 (the
        C{h2} library refuses only NUL, CR and LF), also in a field that
        would not be forwarded.
        """
        for name, value in ((b"x-a", b"a\x01b"), (b"x-a", b"a\x1bb"), (b"x-a", b"a\x7fb"),
                            (b"proxy-x", b"a\x08b"), (b"user-agent", b"a\x0bb")):
            self.assertRefused(b"/", headers=[(name, value)])

    def test_tabAccepted(self) -> None:
        client, pump = self.h2()
        client.request(b"GET", b"/", b"www.mango.com", headers=[(b"x-a", b"a\tb\xe9")])
        pump.flush()
        self.assertIn(b"X-A: a\tb\xe9\r\n", self.proxy.accept().received())
