"""
Defective backends, in memory: what a backend sends that must not reach a
client as it was sent (a bad status code, reason phrase or header value),
how a backend that fails mid-response is reported, and connections that
must not be reused.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from lbproxy.testing import ProxyHarness

CONFIG = {
    "server": {"connect_timeout": 2.0, "response_timeout": 10.0, "idle_timeout": 30.0},
    "pools": {"apple": {"targets": ["10.2.0.1:9081"]}},
    "routes": [{"path": "/", "pool": "apple"}],
}

GET = b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n"
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"


class BackendTestCase(SynchronousTestCase):
    def setUp(self):
        self.proxy = ProxyHarness(CONFIG)

    def exchange(self, response: bytes, request: bytes = GET):
        """
        One request answered by C{response}.

        @return: C{(client, backend)}.
        """
        client = self.proxy.client()
        client.send(request)
        backend = self.proxy.accept()
        backend.respond(response)
        return client, backend

    def assertBadGateway(self, client, backend):
        response = client.received()
        self.assertTrue(response.startswith(b"HTTP/1.1 502 Bad Gateway\r\n"), response)
        self.assertTrue(backend.transport.aborted)
        self.assertIn(" 502 ", self.proxy.logLines()[-1])


class StatusCodeTests(BackendTestCase):
    """
    Only 100 to 599 are status codes (RFC 9110 15); anything else from a
    backend is a 502, and its connection is not reused.
    """

    def test_outOfRange(self):
        for code in (b"000", b"099", b"600", b"999"):
            client, backend = self.exchange(b"HTTP/1.1 " + code + b" Zero\r\nContent-Length: 0\r\n\r\n")
            self.assertBadGateway(client, backend)
            self.assertNotIn(code + b" Zero", client.received())
        self.assertEqual(self.proxy.connections._idleSince, {})

    def test_bounds(self):
        """
        599 is relayed (100 is interim and 1xx are covered elsewhere).
        """
        client, backend = self.exchange(b"HTTP/1.1 599 Odd\r\nContent-Length: 0\r\n\r\n")
        self.assertTrue(client.received().startswith(b"HTTP/1.1 599 Odd\r\n"))
