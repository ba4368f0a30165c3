"""
Request hardening, in memory through L{ProxyHarness}: a client cannot
strip what lbproxy adds, fragments, ports and controls are refused, and
every HTTP/1.1 request names its host.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from lbproxy.frontend.target import valid_host
from lbproxy.testing import ProxyHarness

CONFIG = {
    "server": {"trusted_proxies": ["10.9.0.0/16"]},
    "pools": {"web": {"targets": ["10.1.0.1:80"]}},
    "routes": [
        {
            "path": "/ruled",
            "pool": "web",
            "headers": {
                "request_set": {"X-Real-IP": "{client_ip}", "X-Internal-Auth": "s3cret"},
                "request_add": {"X-Added": ["a", "b"]},
            },
        },
        {"pool": "web"},
    ],
}

OK = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"


def header_values(head: bytes, name: bytes):
    """
    The values of every field called C{name} (any case) in a request head.
    """
    values = []
    for line in head.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.lower() == name.lower():
            values.append(value.strip())
    return values


class HardeningTestCase(SynchronousTestCase):
    def setUp(self):
        self.proxy = ProxyHarness(CONFIG)

    def exchange(self, data: bytes, address: str = "192.0.2.1"):
        """
        Send C{data}; if it reaches a backend, the backend answers C{OK}.

        @return: (response bytes, what the backend received or None, the
            client)
        """
        client = self.proxy.client(address=address)
        client.send(data)
        received = None
        if self.proxy.pending():
            backend = self.proxy.accept()
            received = backend.received()
            backend.respond(OK)
        return client.received(), received, client

    def assertRefused(self, data: bytes, code: bytes = b"400") -> None:
        response, received, client = self.exchange(data)
        self.assertIsNone(received, data)
        self.assertEqual(self.proxy.pending(), [])
        self.assertTrue(response.startswith(b"HTTP/1.1 " + code + b" "), (data, response))
        self.assertIn(b"Connection: close", response.split(b"\r\n\r\n", 1)[0])
        self.assertTrue(client.transport.disconnecting, data)


class ConnectionCannotStripTests(HardeningTestCase):
    """
    Fields a client names in C{Connection} are hop-by-hop only for what the
    client sent: what lbproxy adds always reaches the backend.
    """

    def test_headerRulesAndRequestId(self):
        """
        C{Connection: X-Real-IP, X-Internal-Auth, X-Added, X-Request-Id}
        drops the client's own fields of those names, but the route's
        header rules and the request id still arrive.
        """
        response, received, _ = self.exchange(
            b"GET /ruled HTTP/1.1\r\nHost: h\r\n"
            b"Connection: X-Real-IP, X-Internal-Auth, X-Added, X-Request-Id, X-Mine\r\n"
            b"X-Real-IP: 6.6.6.6\r\nX-Added: client\r\nX-Mine: 1\r\n"
            b"X-Request-Id: client-id\r\nAccept: */*\r\n\r\n"
        )
        self.assertIsNotNone(received)
        self.assertEqual(header_values(received, b"X-Real-IP"), [b"192.0.2.1"])
        self.assertEqual(header_values(received, b"X-Internal-Auth"), [b"s3cret"])
        self.assertEqual(header_values(received, b"X-Added"), [b"a", b"b"])
        self.assertEqual(header_values(received, b"X-Mine"), [])
        self.assertEqual(header_values(received, b"Connection"), [])
        self.assertEqual(header_values(received, b"Accept"), [b"*/*"])
        # The client's id was for lbproxy's hop only: a new one is made,
        # forwarded and returned.
        ids = header_values(received, b"X-Request-Id")
        self.assertEqual(len(ids), 1)
        self.assertNotEqual(ids[0], b"client-id")
        self.assertEqual(header_values(response, b"X-Request-Id"), ids)

    def test_forwardedHeaders(self):
        """
        C{Connection: X-Forwarded-For, X-Forwarded-Proto, X-Forwarded-Host}
        cannot keep lbproxy from writing them.
        """
        _, received, _ = self.exchange(
            b"GET / HTTP/1.1\r\nHost: h\r\n"
            b"Connection: X-Forwarded-For, X-Forwarded-Proto, X-Forwarded-Host, Forwarded\r\n"
            b"X-Forwarded-For: 6.6.6.6\r\n\r\n"
        )
        self.assertEqual(header_values(received, b"X-Forwarded-For"), [b"192.0.2.1"])
        self.assertEqual(header_values(received, b"X-Forwarded-Proto"), [b"http"])
        self.assertEqual(header_values(received, b"X-Forwarded-Host"), [b"h"])

    def test_trustedProxyUnchanged(self):
        """
        Behind a trusted proxy, its X-Forwarded-* are kept and the peer is
        appended, as before; a client-named hop-by-hop field still goes.
        """
        _, received, _ = self.exchange(
            b"GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, X-Drop\r\n"
            b"X-Forwarded-For: 192.0.2.9\r\nX-Forwarded-Proto: https\r\n"
            b"Keep-Alive: timeout=5\r\nX-Drop: 1\r\nProxy-Authorization: x\r\n\r\n",
            address="10.9.0.1",
        )
        self.assertEqual(header_values(received, b"X-Forwarded-For"), [b"192.0.2.9, 10.9.0.1"])
        self.assertEqual(header_values(received, b"X-Forwarded-Proto"), [b"https"])
        for name in (b"Connection", b"Keep-Alive", b"X-Drop", b"Proxy-Authorization"):
            self.assertEqual(header_values(received, name), [], name)

    def test_hostKept(self):
        """
        C{Connection: Host} does not remove C{Host}.
        """
        _, received, _ = self.exchange(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: Host\r\n\r\n")
        self.assertEqual(header_values(received, b"Host"), [b"h"])


class FragmentTests(HardeningTestCase):
    """
    A C{#} in a request target is refused (RFC 9112 3.2): it never becomes
    part of the path.
    """

    def test_fragmentRefused(self):
        for target in (b"/c-frag#x/../../SMUG", b"/#", b"/a?q#f", b"http://h/a#b"):
            self.assertRefused(b"GET " + target + b" HTTP/1.1\r\nHost: h\r\n\r\n")

    def test_encodedHashForwarded(self):
        """
        An encoded C{%23} is an ordinary character of the path.
        """
        _, received, _ = self.exchange(b"GET /a%23b HTTP/1.1\r\nHost: h\r\n\r\n")
        self.assertTrue(received.startswith(b"GET /a%23b HTTP/1.1\r\n"), received)


class HostPortTests(HardeningTestCase):
    """
    A C{Host} port over 65535 is refused.
    """

    def test_portRange(self):
        for host in (b"h:99999", b"h:65536", b"[::1]:70000"):
            self.assertRefused(b"GET / HTTP/1.1\r\nHost: " + host + b"\r\n\r\n")
        self.assertRefused(b"GET http://h:99999/ HTTP/1.1\r\nHost: h\r\n\r\n")

    def test_portBounds(self):
        _, received, _ = self.exchange(b"GET / HTTP/1.1\r\nHost: h:65535\r\n\r\n")
        self.assertEqual(header_values(received, b"Host"), [b"h:65535"])

    def test_validHost(self):
        """
        L{valid_host} takes ports 0 to 65535, and no more.
        """
        for host in (b"h", b"h:0", b"h:80", b"h:65535", b"[::1]:65535", b"10.0.0.1:443"):
            self.assertTrue(valid_host(host), host)
        for host in (b"h:65536", b"h:99999", b"[::1]:70000", b"h:123456", b"h:"):
            self.assertFalse(valid_host(host), host)


class HostRequiredTests(HardeningTestCase):
    """
    Every HTTP/1.1 request has a C{Host} (RFC 9112 3.2), whatever the form
    of its target; HTTP/1.0 need not.
    """

    def test_absoluteFormWithoutHost(self):
        self.assertRefused(b"GET http://h/x HTTP/1.1\r\n\r\n")

    def test_absoluteFormWithHost(self):
        _, received, _ = self.exchange(b"GET http://h/x HTTP/1.1\r\nHost: other\r\n\r\n")
        self.assertTrue(received.startswith(b"GET /x HTTP/1.1\r\n"), received)
        self.assertEqual(header_values(received, b"Host"), [b"h"])

    def test_optionsStarWithoutHost(self):
        self.assertRefused(b"OPTIONS * HTTP/1.1\r\n\r\n")

    def test_optionsStarBadHost(self):
        """
        C{OPTIONS *} is held to the same C{Host} rules as any other target.
        """
        for hosts in (b"Host: a b\r\n", b"Host: h:99999\r\n", b"Host: a\r\nHost: b\r\n"):
            self.assertRefused(b"OPTIONS * HTTP/1.1\r\n" + hosts + b"\r\n")

    def test_optionsStarWithHost(self):
        response, received, client = self.exchange(b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n")
        self.assertIsNone(received)
        self.assertTrue(response.startswith(b"HTTP/1.1 200 OK\r\n"), response)
        self.assertFalse(client.transport.disconnecting)

    def test_http10WithoutHost(self):
        response, received, _ = self.exchange(b"OPTIONS * HTTP/1.0\r\n\r\n")
        self.assertTrue(response.startswith(b"HTTP/1.0 200 OK\r\n"), response)
        _, received, _ = self.exchange(b"GET http://h/x HTTP/1.0\r\n\r\n")
        self.assertTrue(received.startswith(b"GET /x HTTP/1.1\r\n"), received)
        _, received, _ = self.exchange(b"GET /x HTTP/1.0\r\n\r\n")
        self.assertTrue(received.startswith(b"GET /x HTTP/1.1\r\n"), received)


class ControlCharacterTests(HardeningTestCase):
    """
    Control characters other than HTAB in a field value get 400, on the
    one-pass head parse and on the line-by-line one.
    """

    def test_refused(self):
        for byte in list(range(0x00, 0x09)) + list(range(0x0B, 0x0D)) + list(range(0x0E, 0x20)) + [0x7F]:
            value = b"a" + bytes([byte]) + b"b"
            # Whole head in one read, no body: the quick path.
            self.assertRefused(b"GET / HTTP/1.1\r\nHost: h\r\nX-A: " + value + b"\r\n\r\n")
            # A body: the line-by-line path.
            self.assertRefused(
                b"POST / HTTP/1.1\r\nHost: h\r\nX-A: " + value + b"\r\n"
                b"Content-Length: 2\r\n\r\nok"
            )

    def test_dripFed(self):
        """
        A head that arrives in pieces goes line by line: still refused.
        """
        client = self.proxy.client()
        client.send(b"GET / HTTP/1.1\r\nHost: h\r\n")
        client.send(b"X-A: a\x1bb\r\n")
        client.send(b"\r\n")
        self.assertTrue(client.received().startswith(b"HTTP/1.1 400 "))
        self.assertEqual(self.proxy.pending(), [])

    def test_tabAndObsTextAccepted(self):
        """
        HTAB and bytes above 0x7f are allowed in a value (RFC 9110 5.5).
        """
        for data in (
            b"GET / HTTP/1.1\r\nHost: h\r\nX-A: a\tb\xe9\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: h\r\nX-A: a\tb\xe9\r\nContent-Length: 2\r\n\r\nok",
        ):
            _, received, _ = self.exchange(data)
            self.assertEqual(header_values(received, b"X-A"), [b"a\tb\xe9"])
