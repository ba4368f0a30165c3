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
