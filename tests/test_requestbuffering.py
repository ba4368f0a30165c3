"""
A route's C{request_buffering}: a body read before a backend is chosen,
so that a slow client holds no backend connection.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from lbproxy.config import ConfigError, parse_config
from lbproxy.testing import ProxyHarness

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"


def config(buffering, **server):
    return {
        "server": dict({"client_body_timeout": 30.0}, **server),
        "pools": {"web": {"targets": ["10.1.0.1:80"]}},
        "routes": [
            {"path": "/upload", "pool": "web", "request_buffering": buffering},
            {"pool": "web"},
        ],
    }


class ConfigTests(SynchronousTestCase):
    def route(self, value):
        return parse_config(config(value)).routes[0]

    def test_values(self) -> None:
        """
        A size (bytes or with a unit) up to 64 MiB; C{false} or 0 is off,
        the default.
        """
        self.assertEqual(self.route("1m").request_buffering, 1048576)
        self.assertEqual(self.route(4096).request_buffering, 4096)
        self.assertEqual(self.route(False).request_buffering, 0)
        self.assertEqual(parse_config(config(0)).routes[1].request_buffering, 0)

    def test_refused(self) -> None:
        """
        More than 64 MiB, or not a size, is refused with the key.
        """
        with self.assertRaises(ConfigError) as caught:
            self.route("65m")
        self.assertIn("routes[0].request_buffering", str(caught.exception))
        self.assertIn("at most 64 MiB", str(caught.exception))
        with self.assertRaises(ConfigError) as caught:
            self.route("lots")
        self.assertIn("routes[0].request_buffering", str(caught.exception))


class BufferingTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.proxy = ProxyHarness(config("1k", max_body_size="4k"))

    def test_heldUntilComplete(self) -> None:
        """
        No backend connection is made until the whole body has arrived;
        then it is sent at once.
        """
        client = self.proxy.client()
        client.send(b"POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n01234")
        self.proxy.reactor.advance(20)
        self.assertEqual(self.proxy.pending(), [])
        client.send(b"56789")
        backend = self.proxy.accept()
        received = backend.received()
        self.assertTrue(received.startswith(b"POST /upload HTTP/1.1\r\n"))
        self.assertIn(b"Content-Length: 10\r\n", received)
        self.assertTrue(received.endswith(b"\r\n\r\n0123456789"))
        backend.respond(OK)
        self.assertTrue(client.received().startswith(b"HTTP/1.1 200 OK"))

    def test_chunkedHeld(self) -> None:
        """
        A chunked body is held until its last chunk, and forwarded
        chunked.
        """
        client = self.proxy.client()
        client.send(
            b"POST /upload HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3\r\nabc\r\n"
        )
        self.assertEqual(self.proxy.pending(), [])
        client.send(b"2\r\nde\r\n0\r\n\r\n")
        backend = self.proxy.accept()
        self.assertTrue(backend.received().endswith(b"\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"))

    def test_longerBodyStreams(self) -> None:
        """
        A body declared longer than the buffer is not held; a chunked one
        is held until the buffer is full, then streams.
        """
        client = self.proxy.client()
        client.send(b"POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: 2000\r\n\r\nab")
        self.assertEqual(len(self.proxy.pending()), 1)
        other = self.proxy.client()
        other.send(
            b"POST /upload HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"200\r\n" + b"x" * 512 + b"\r\n"
        )
        self.assertEqual(len(self.proxy.pending()), 1)
        other.send(b"200\r\n" + b"y" * 512 + b"\r\n")
        self.assertEqual(len(self.proxy.pending()), 2)

    def test_otherRoutesStream(self) -> None:
        """
        A route without C{request_buffering} connects at the end of the
        head, as always.
        """
        client = self.proxy.client()
        client.send(b"POST /other HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n01")
        self.assertEqual(len(self.proxy.pending()), 1)

    def test_stalledBodyNeverConnects(self) -> None:
        """
        A body that stalls while held gets 408 after client_body_timeout,
        and no backend connection was ever made.
        """
        client = self.proxy.client()
        client.send(b"POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n01")
        self.proxy.reactor.advance(30)
        self.assertTrue(client.received().startswith(b"HTTP/1.1 408 "))
        self.assertEqual(self.proxy.pending(), [])
        self.assertEqual(len(self.proxy.reactor.tcpClients), 0)
        self.assertIn('" 408 ', self.proxy.logLines()[-1])

    def test_clientGoneWhileHeld(self) -> None:
        """
        A client that leaves while its body is held costs no backend
        connection, and is logged 499.
        """
        client = self.proxy.client()
        client.send(b"POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n01")
        client.disconnect()
        self.assertEqual(len(self.proxy.reactor.tcpClients), 0)
        self.assertIn('" 499 ', self.proxy.logLines()[-1])

    def test_tooLargeWhileHeld(self) -> None:
        """
        A chunked body past max_body_size while held gets 413 and no
        backend connection.
        """
        proxy = ProxyHarness(config("1m", max_body_size=1000))
        client = proxy.client()
        client.send(
            b"POST /upload HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"400\r\n" + b"x" * 1024 + b"\r\n"
        )
        self.assertTrue(client.received().startswith(b"HTTP/1.1 413 "))
        self.assertEqual(len(proxy.reactor.tcpClients), 0)
