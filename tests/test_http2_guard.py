"""
HTTP/2 requests and frames lbproxy refuses, in memory over real TLS:
C{CONNECT}, bodies on C{GET}/C{HEAD}, rapid reset and control-frame
floods (L{lbproxy.frontend.h2guard}).
"""

from __future__ import annotations

import h2.errors

from tests.test_tls_proxy import OK, TLSProxyTestCase
from lbproxy.testing.tls import H2Client


class H2GuardTestCase(TLSProxyTestCase):
    def h2(self, serverName="www.mango.com"):
        tls, client, pump = self.connect(serverName, alpn=(b"h2", b"http/1.1"), protocol=H2Client)
        pump.flush()
        self.assertEqual(tls.negotiatedProtocol, b"h2")
        return client, pump

    def assertConnectionUsable(self, client, pump) -> None:
        """
        The connection still carries requests.
        """
        self.assertIsNone(client.lost)
        self.assertIsNone(client.goaway)
        stream = client.request(b"GET", b"/after", b"www.mango.com")
        pump.flush()
        backend = self.proxy.accept()
        self.assertTrue(backend.received().startswith(b"GET /after HTTP/1.1\r\n"))
        backend.respond(OK)
        pump.flush()
        self.assertEqual(client.responses[stream]["body"], b"hello")


class ConnectTests(H2GuardTestCase):
    """
    C{CONNECT} is not proxied: 400 as on HTTP/1.1 (a tunnel is not a
    request lbproxy forwards), extended CONNECT (RFC 8441) 501.
    """

    def test_connect(self) -> None:
        """
        C{CONNECT} with only C{:authority} gets 400 on its stream, the
        same answer as an HTTP/1.1 C{CONNECT}; nothing reaches a backend
        and the connection carries on.
        """
        client, pump = self.h2()
        stream = client.headers(
            [(b":method", b"CONNECT"), (b":authority", b"www.mango.com:443")], end=False
        )
        pump.flush()
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
