"""
The proxy in memory: client bytes into a L{ProxyChannel}, backend
connections on a L{MemoryReactorClock}, time moved by hand.
"""

from __future__ import annotations

from twisted.internet.error import ConnectionLost
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from lbproxy.testing import ProxyHarness

CONFIG = {
    "server": {"connect_timeout": 2.0, "response_timeout": 10.0, "idle_timeout": 30.0},
    "pools": {
        "mango": {"targets": ["10.1.0.1:8081", "10.1.0.2:8082"]},
        "apple": {"targets": ["10.2.0.1:9081"]},
        "strip": {"targets": ["10.3.0.1:7000"]},
    },
    "routes": [
        {"host": "www.mango.com", "pool": "mango"},
        {"host": "www.apple.com", "pool": "apple"},
        {"path": "/mango", "pool": "mango"},
        {"path": "/apple", "pool": "apple"},
        {"path": "/api", "pool": "strip", "strip_prefix": True},
    ],
}

GET_MANGO = b"GET /x?q=1 HTTP/1.1\r\nHost: www.mango.com\r\n\r\n"
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"


def head_of(data: bytes) -> bytes:
    return data.split(b"\r\n\r\n", 1)[0]


def header_lines(data: bytes):
    return head_of(data).split(b"\r\n")[1:]


class RoutingTests(SynchronousTestCase):
    """
    Requests reach the pool their Host and path name, or get 404.
    """

    def setUp(self):
        self.proxy = ProxyHarness(CONFIG)

    def test_hostRoute(self):
        """
        Host www.mango.com goes to the mango pool, and the answer comes back.
        """
        client = self.proxy.client()
        client.send(GET_MANGO)
        self.assertEqual(self.proxy.pending(), ["10.1.0.1:8081"])
        backend = self.proxy.accept()
        self.assertTrue(backend.received().startswith(b"GET /x?q=1 HTTP/1.1\r\n"))
        backend.respond(OK)
        response = client.received()
        self.assertTrue(response.startswith(b"HTTP/1.1 200 OK\r\n"))
        self.assertIn(b"Content-Length: 5", response)
        self.assertTrue(response.endswith(b"\r\n\r\nhello"))

    def test_notFound(self):
        """
        No route and no default pool: 404 with Not Found, no backend asked.
        """
        client = self.proxy.client()
        client.send(b"GET / HTTP/1.1\r\nHost: www.notmango.com\r\n\r\n")
        response = client.received()
        self.assertTrue(response.startswith(b"HTTP/1.1 404 Not Found\r\n"))
        self.assertIn(b"Not Found", response.split(b"\r\n\r\n", 1)[1])
        self.assertEqual(self.proxy.pending(), [])
        # The connection stays usable.
        client.send(b"GET /apple HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(self.proxy.pending(), ["10.2.0.1:9081"])

    def test_pathRoute(self):
        """
        Without a known Host, the path prefix decides.
        """
        client = self.proxy.client()
        client.send(b"GET /apple/pie HTTP/1.1\r\nHost: other\r\n\r\n")
        self.assertEqual(self.proxy.pending(), ["10.2.0.1:9081"])

    def test_dotSegments(self):
        """
        /apple/../mango routes as /mango, and the backend sees /mango.
        """
        client = self.proxy.client()
        client.send(b"GET /apple/../mango HTTP/1.1\r\nHost: other\r\n\r\n")
        self.assertEqual(self.proxy.pending(), ["10.1.0.1:8081"])
        backend = self.proxy.accept()
        self.assertTrue(backend.received().startswith(b"GET /mango HTTP/1.1\r\n"))

    def test_stripPrefix(self):
        """
        strip_prefix sends the path without the route's prefix.
        """
        client = self.proxy.client()
        client.send(b"GET /api/v1/spells?x=y HTTP/1.1\r\nHost: h\r\n\r\n")
        backend = self.proxy.accept()
        self.assertTrue(backend.received().startswith(b"GET /v1/spells?x=y HTTP/1.1\r\n"))

    def test_absoluteForm(self):
        """
        An absolute-form target is routed by its authority, which becomes
        the Host the backend sees.
        """
        client = self.proxy.client()
        client.send(b"GET http://www.apple.com/a HTTP/1.1\r\nHost: www.mango.com\r\n\r\n")
        self.assertEqual(self.proxy.pending(), ["10.2.0.1:9081"])
        backend = self.proxy.accept()
        self.assertTrue(backend.received().startswith(b"GET /a HTTP/1.1\r\n"))
        self.assertIn(b"Host: www.apple.com", header_lines(backend.received()))

    def test_badTarget(self):
        """
        A target that is neither origin- nor absolute-form gets 400.
        """
        client = self.proxy.client()
        client.send(b"GET x/y HTTP/1.1\r\nHost: www.mango.com\r\n\r\n")
        self.assertTrue(client.received().startswith(b"HTTP/1.1 400 "))
        self.assertEqual(self.proxy.pending(), [])

    def test_missingHost(self):
        """
        HTTP/1.1 requires Host: 400 without one.
        """
        client = self.proxy.client()
        client.send(b"GET /mango HTTP/1.1\r\n\r\n")
        self.assertTrue(client.received().startswith(b"HTTP/1.1 400 "))

    def test_defaultPool(self):
        """
        server.default_pool takes what no route matches.
        """
        config = dict(CONFIG, server={"default_pool": "apple"})
        proxy = ProxyHarness(config)
        client = proxy.client()
        client.send(b"GET /nothing HTTP/1.1\r\nHost: www.notmango.com\r\n\r\n")
        self.assertEqual(proxy.pending(), ["10.2.0.1:9081"])


class HeaderTests(SynchronousTestCase):
    """
    What the backend receives and what the client gets back.
    """

    def setUp(self):
        self.proxy = ProxyHarness(CONFIG)

    def test_requestHeaders(self):
        """
        Host passes through, X-Forwarded-* are set, hop-by-hop headers and
        the headers Connection names stay behind.
        """
        client = self.proxy.client(address="192.0.2.7")
        client.send(
            b"GET / HTTP/1.1\r\nHost: www.mango.com\r\nConnection: keep-alive, X-Drop\r\n"
            b"X-Drop: 1\r\nKeep-Alive: 300\r\nTE: trailers\r\nProxy-Authorization: x\r\n"
            b"Upgrade: h2c\r\nX-Forwarded-For: 198.51.100.1\r\nX-Keep: yes\r\n\r\n"
        )
        backend = self.proxy.accept()
        lines = header_lines(backend.received())
        names = [line.split(b":")[0].lower() for line in lines]
        for dropped in (b"connection", b"x-drop", b"keep-alive", b"te",
                        b"proxy-authorization", b"upgrade"):
            self.assertNotIn(dropped, names)
        self.assertIn(b"Host: www.mango.com", lines)
        self.assertIn(b"X-Keep: yes", lines)
        # 192.0.2.7 is not a trusted proxy: its X-Forwarded-For is replaced.
        self.assertIn(b"X-Forwarded-For: 192.0.2.7", lines)
        self.assertNotIn(b"198.51.100.1", b"\r\n".join(lines))
        self.assertIn(b"X-Forwarded-Proto: http", lines)
        self.assertIn(b"X-Forwarded-Host: www.mango.com", lines)

    def test_responseHeaders(self):
        """
        Status, reason and headers come back, including several Set-Cookie;
        hop-by-hop response headers do not.
        """
        client = self.proxy.client()
        client.send(GET_MANGO)
        backend = self.proxy.accept()
        backend.respond(
            b"HTTP/1.1 201 Made It\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n"
            b"Connection: X-Secret\r\nX-Secret: s\r\nKeep-Alive: timeout=5\r\n"
            b"Server: backend/1.0\r\nContent-Length: 2\r\n\r\nok"
        )
        response = client.received()
        self.assertTrue(response.startswith(b"HTTP/1.1 201 Made It\r\n"))
        lines = header_lines(response)
        self.assertIn(b"Set-Cookie: a=1", lines)
        self.assertIn(b"Set-Cookie: b=2", lines)
        self.assertIn(b"Server: backend/1.0", lines)
        self.assertNotIn(b"X-Secret: s", lines)
        self.assertFalse([line for line in lines if line.lower().startswith(b"keep-alive")])
        self.assertFalse([line for line in lines if line.lower().startswith(b"content-type")])

    def test_chunkedResponse(self):
        """
        A chunked backend response reaches an HTTP/1.1 client chunked, with
        the same body.
        """
        client = self.proxy.client()
        client.send(GET_MANGO)
        backend = self.proxy.accept()
        backend.respond(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\nX-Trailer: t\r\n\r\n"
        )
        response = client.received()
        self.assertIn(b"Transfer-Encoding: chunked", header_lines(response))
        body = response.split(b"\r\n\r\n", 1)[1]
        self.assertEqual(body, b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")

    def test_http10Client(self):
        """
        An HTTP/1.0 client gets a close-delimited body, then the close.
        """
        client = self.proxy.client()
        client.send(b"GET /mango HTTP/1.0\r\n\r\n")
        backend = self.proxy.accept()
        backend.respond(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
        response = client.received()
        self.assertTrue(response.startswith(b"HTTP/1.0 200 OK\r\n"))
        self.assertTrue(response.endswith(b"\r\n\r\nabc"))
        self.assertTrue(client.transport.disconnecting)

    def test_head(self):
        """
        HEAD: the backend's Content-Length comes back, no body.
        """
        client = self.proxy.client()
        client.send(b"HEAD /mango HTTP/1.1\r\nHost: h\r\n\r\n")
        backend = self.proxy.accept()
        backend.respond(b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n")
        response = client.received()
        self.assertIn(b"Content-Length: 1234", header_lines(response))
        self.assertTrue(response.endswith(b"\r\n\r\n"))
        # The connection to the backend is reusable: nothing is pending.
        client.send(b"GET /mango HTTP/1.1\r\nHost: h\r\n\r\n")
        self.assertEqual(self.proxy.pending(), ["10.1.0.2:8082"])


class DateTests(SynchronousTestCase):
    """
    Every response has one Date: the backend's when it sent one, else
    lbproxy's.
    """

    def setUp(self):
        self.proxy = ProxyHarness(CONFIG)
        self.proxy.reactor.advance(784111777)  # Sun, 06 Nov 1994 08:49:37 GMT

    def dates(self, response: bytes):
        return [line for line in header_lines(response) if line.lower().startswith(b"date:")]

    def test_backendDateKept(self):
        client = self.proxy.client()
        client.send(b"GET / HTTP/1.1\r\nHost: www.mango.com\r\n\r\n")
        self.proxy.accept().respond(
            b"HTTP/1.1 200 OK\r\nDate: Mon, 01 Jan 2001 00:00:00 GMT\r\nContent-Length: 0\r\n\r\n"
        )
        self.assertEqual(self.dates(client.received()),
                         [b"Date: Mon, 01 Jan 2001 00:00:00 GMT"])

    def test_addedWhenMissing(self):
        client = self.proxy.client()
        client.send(b"GET / HTTP/1.1\r\nHost: www.mango.com\r\n\r\n")
        self.proxy.accept().respond(OK)
        self.assertEqual(self.dates(client.received()),
                         [b"Date: Sun, 06 Nov 1994 08:49:37 GMT"])

    def test_localAnswer(self):
        client = self.proxy.client()
        client.send(b"GET / HTTP/1.1\r\nHost: www.mango.com\r\n\r\n")
        self.proxy.refuse()
        self.proxy.refuse()
        self.assertEqual(self.dates(client.received()),
                         [b"Date: Sun, 06 Nov 1994 08:49:37 GMT"])


class BodyTests(SynchronousTestCase):
    """
    Request bodies stream to the backend as they arrive, re-framed.
    """

    def setUp(self):
        self.proxy = ProxyHarness(CONFIG)

    def test_contentLengthStreams(self):
        """
        The backend gets the head and the first body bytes before the rest
        of the body has arrived.
        """
        client = self.proxy.client()
        client.send(b"POST /mango HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabc")
        backend = self.proxy.accept()
        self.assertIn(b"Content-Length: 10", header_lines(backend.received()))
        self.assertTrue(backend.received().endswith(b"\r\n\r\nabc"))
        client.send(b"defghij")
        self.assertTrue(backend.received().endswith(b"\r\n\r\nabcdefghij"))
        backend.respond(OK)
        self.assertTrue(client.received().endswith(b"hello"))

    def test_chunkedReframed(self):
        """
        A chunked upload reaches the backend as a valid chunked body, not
        de-chunked bytes under a chunked header.
        """
        client = self.proxy.client()
        client.send(
            b"POST /mango HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5\r\nhello\r\n"
        )
        backend = self.proxy.accept()
        client.send(b"6;ext=x\r\n world\r\n0\r\n\r\n")
        data = backend.received()
        lines = header_lines(data)
        self.assertIn(b"Transfer-Encoding: chunked", lines)
        self.assertNotIn(b"Content-Length", b"\r\n".join(lines))
        self.assertEqual(data.split(b"\r\n\r\n", 1)[1], b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")

    def test_bufferedWhileConnecting(self):
        """
        Body bytes that arrive before the backend connection is up are kept
        and sent first.
        """
        client = self.proxy.client()
        client.send(b"PUT /mango HTTP/1.1\r\nHost: h\r\nContent-Length: 6\r\n\r\nabcdef")
        backend = self.proxy.accept()
        self.assertTrue(backend.received().endswith(b"\r\n\r\nabcdef"))

    def test_uploadBackpressure(self):
        """
        When the backend's transport is full, reading from the client pauses;
        when it drains, reading resumes.
        """
        client = self.proxy.client()
        client.send(b"POST /mango HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\nab")
        backend = self.proxy.accept()
        self.assertEqual(client.transport.producerState, "producing")
        backend.transport.producer.pauseProducing()
        self.assertEqual(client.transport.producerState, "paused")
        backend.transport.producer.resumeProducing()
        self.assertEqual(client.transport.producerState, "producing")

    def test_bufferLimitPausesClient(self):
        """
        While connecting, at most a bounded amount is buffered before the
        client is paused; connecting resumes it.
        """
        from lbproxy.frontend.body import BODY_HIGH_WATER

        size = BODY_HIGH_WATER * 2
        client = self.proxy.client()
        client.send(b"POST /mango HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n" % (size,))
        client.send(b"x" * (BODY_HIGH_WATER + 1))
        self.assertEqual(client.transport.producerState, "paused")
        self.proxy.accept()
        self.assertEqual(client.transport.producerState, "producing")

    def test_earlyResponseClosesConnection(self):
        """
        A response that ends before the upload does closes the client
        connection; the rest of the body is never parsed as a request.
        """
        client = self.proxy.client()
        client.send(b"POST /mango HTTP/1.1\r\nHost: h\r\nContent-Length: 1000\r\n\r\nabc")
        backend = self.proxy.accept()
        backend.respond(b"HTTP/1.1 413 Too Large\r\nContent-Length: 0\r\n\r\n")
        response = client.received()
        self.assertTrue(response.startswith(b"HTTP/1.1 413 Too Large\r\n"))
        self.assertIn(b"Connection: close", header_lines(response))
        self.assertTrue(client.transport.disconnecting)
        self.assertTrue(backend.transport.aborted)
        client.send(b"GET /mango HTTP/1.1\r\nHost: h\r\n\r\n" * 3)
        self.assertEqual(self.proxy.pending(), [])

    def test_notFoundWithBody(self):
        """
        A 404 for a request with a body closes the connection, and the body
        bytes that follow are not parsed as a request.
        """
        client = self.proxy.client()
        client.send(
            b"POST /none HTTP/1.1\r\nHost: nowhere\r\nContent-Length: 40\r\n\r\n"
            b"GET /mango HTTP/1.1\r\nHost: h\r\n\r\n"
        )
        self.assertTrue(client.received().startswith(b"HTTP/1.1 404 "))
        self.assertEqual(self.proxy.pending(), [])
        self.assertTrue(client.transport.disconnecting)


class BalancingTests(SynchronousTestCase):
    """
    Round robin over targets, and reuse of kept-alive connections.
    """

    def setUp(self):
        self.proxy = ProxyHarness(CONFIG)

    def test_roundRobin(self):
        """
        Consecutive requests alternate between the two mango targets.
        """
        seen = []
        for _ in range(4):
            client = self.proxy.client()
            client.send(GET_MANGO)
            backend = self.proxy.accept() if self.proxy.pending() else None
            if backend is None:
                raise AssertionError("expected a new connection")
            seen.append(backend.address)
            backend.respond(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
        self.assertEqual(seen, ["10.1.0.1:8081", "10.1.0.2:8082"] * 2)

    def test_keepAlive(self):
        """
        A backend connection is reused for the next request to that target.
        """
        client = self.proxy.client()
        client.send(b"GET /apple HTTP/1.1\r\nHost: h\r\n\r\n")
        backend = self.proxy.accept()
        backend.respond(OK)
        backend.transport.clear()
        client.send(b"GET /apple/2 HTTP/1.1\r\nHost: h\r\n\r\n")
        self.assertEqual(self.proxy.pending(), [])
        self.assertTrue(backend.received().startswith(b"GET /apple/2 HTTP/1.1\r\n"))
        self.assertEqual(self.proxy.connections.opened, 1)

    def test_idleConnectionExpires(self):
        """
        An idle backend connection is closed after idle_timeout.
        """
        client = self.proxy.client()
        client.send(b"GET /apple HTTP/1.1\r\nHost: h\r\n\r\n")
        backend = self.proxy.accept()
        backend.respond(OK)
        self.proxy.reactor.advance(29)
        self.assertFalse(backend.transport.disconnecting)
        self.proxy.reactor.advance(2)
        self.assertTrue(backend.transport.disconnecting)

    def test_closeNotReused(self):
        """
        A response with Connection: close is not followed by reuse.
        """
        client = self.proxy.client()
        client.send(b"GET /apple HTTP/1.1\r\nHost: h\r\n\r\n")
        backend = self.proxy.accept()
        backend.respond(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
        self.assertTrue(backend.transport.disconnecting)
        client.send(b"GET /apple HTTP/1.1\r\nHost: h\r\n\r\n")
        self.assertEqual(self.proxy.pending(), ["10.2.0.1:9081"])

    def test_pipelined(self):
        """
        Pipelined requests are answered in order.
        """
        client = self.proxy.client()
        client.send(
            b"GET /apple/1 HTTP/1.1\r\nHost: h\r\n\r\nGET /apple/2 HTTP/1.1\r\nHost: h\r\n\r\n"
        )
        backend = self.proxy.accept()
        self.assertTrue(backend.received().startswith(b"GET /apple/1 "))
        backend.respond(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\none")
        self.assertIn(b"GET /apple/2 ", backend.received())
        backend.respond(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\ntwo")
        response = client.received()
        self.assertLess(response.index(b"one"), response.index(b"two"))


class FailureTests(SynchronousTestCase):
    """
    Every way a backend can fail ends in a clear answer, never a hang.
    """

    def setUp(self):
        self.proxy = ProxyHarness(CONFIG)

    def test_refusedTriesNext(self):
        """
        A refused connection moves on to the next target.
        """
        client = self.proxy.client()
        client.send(GET_MANGO)
        self.assertEqual(self.proxy.refuse(), "10.1.0.1:8081")
        self.assertEqual(self.proxy.pending(), ["10.1.0.2:8082"])
        self.proxy.accept().respond(OK)
        self.assertTrue(client.received().startswith(b"HTTP/1.1 200 OK"))

    def test_allRefused(self):
        """
        All targets refused: 502.
        """
        client = self.proxy.client()
        client.send(GET_MANGO)
        self.proxy.refuse()
        self.proxy.refuse()
        self.assertTrue(client.received().startswith(b"HTTP/1.1 502 Bad Gateway"))
        self.assertIn("502", self.proxy.logLines()[-1])

    def test_refusedPostTriesNext(self):
        """
        Nothing reached a backend that refused, so even a POST with a body
        goes to the next target, body intact.
        """
        client = self.proxy.client()
        client.send(b"POST /mango HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\ndata")
        self.proxy.refuse()
        backend = self.proxy.accept()
        self.assertTrue(backend.received().endswith(b"\r\n\r\ndata"))

    def test_connectTimeout(self):
        """
        A connection not made within connect_timeout counts as failed.
        """
        client = self.proxy.client()
        client.send(GET_MANGO)
        self.assertEqual(self.proxy.pending(), ["10.1.0.1:8081"])
        self.proxy.reactor.advance(2.1)
        # The first attempt timed out; the second target is being tried.
        self.assertEqual(self.proxy.pending()[-1], "10.1.0.2:8082")
        self.proxy.reactor.advance(2.1)
        self.assertTrue(client.received().startswith(b"HTTP/1.1 502 "))

    def test_noUsableTarget(self):
        """
        A pool whose targets are all down answers 503 with Retry-After.
        """
        for member in self.proxy.resource.runtime.pools["mango"].members:
            member.up = False
        client = self.proxy.client()
        client.send(GET_MANGO)
        response = client.received()
        self.assertTrue(response.startswith(b"HTTP/1.1 503 Service Unavailable"))
        self.assertIn(b"Retry-After: 5", header_lines(response))
        self.assertEqual(self.proxy.pending(), [])

    def test_responseTimeout(self):
        """
        No response head within response_timeout: 504, backend aborted.
        """
        client = self.proxy.client()
        client.send(GET_MANGO)
        backend = self.proxy.accept()
        self.proxy.reactor.advance(9.9)
        self.assertEqual(client.received(), b"")
        self.proxy.reactor.advance(0.2)
        self.assertTrue(client.received().startswith(b"HTTP/1.1 504 Gateway Timeout"))
        self.assertTrue(backend.transport.aborted)
        self.assertEqual(self.proxy.exchangeTimers(), [])

    def test_timeoutStartsAfterUpload(self):
        """
        The response timeout counts from the end of the request, so a slow
        upload is not cut off by it.
        """
        client = self.proxy.client()
        client.send(b"POST /mango HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\na")
        backend = self.proxy.accept()
        self.proxy.reactor.advance(20)
        client.send(b"b")
        self.proxy.reactor.advance(9)
        self.assertEqual(client.received(), b"")
        backend.respond(OK)
        self.assertTrue(client.received().startswith(b"HTTP/1.1 200 "))

    def test_diesMidResponse(self):
        """
        A backend that dies after the head makes the proxy abort the client
        connection: the truncated response is never completed.
        """
        client = self.proxy.client()
        client.send(GET_MANGO)
        backend = self.proxy.accept()
        backend.respond(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
        backend.close(Failure(ConnectionLost()))
        self.assertTrue(client.transport.disconnecting)
        self.assertFalse(client.transport.aborted)
        self.assertTrue(client.received().endswith(b"partial"))

    def test_diesMidChunkedResponse(self):
        """
        Relayed chunked, a truncated body ends without its last chunk.
        """
        client = self.proxy.client()
        client.send(GET_MANGO)
        backend = self.proxy.accept()
        backend.respond(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nsome\r\n")
        backend.close(Failure(ConnectionLost()))
        self.assertTrue(client.transport.disconnecting)
        self.assertTrue(client.received().endswith(b"4\r\nsome\r\n"))
        self.assertNotIn(b"0\r\n\r\n", client.received())

    def test_diesMidCloseDelimitedResponse(self):
        """
        An HTTP/1.0 client reading a close-delimited body gets a reset, not
        a clean close that would look like the end of the body.
        """
        client = self.proxy.client()
        client.send(b"GET /mango HTTP/1.0\r\n\r\n")
        backend = self.proxy.accept()
        backend.respond(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nsome\r\n")
        backend.close(Failure(ConnectionLost()))
        self.assertTrue(client.transport.aborted)

    def test_resetBeforeResponseRetriesGet(self):
        """
        A reset before any response byte sends an idempotent request without
        a body to the next target.
        """
        client = self.proxy.client()
        client.send(GET_MANGO)
        first = self.proxy.accept()
        first.close(Failure(ConnectionLost()))
        self.assertEqual(self.proxy.pending(), ["10.1.0.2:8082"])
        self.proxy.accept().respond(OK)
        self.assertTrue(client.received().startswith(b"HTTP/1.1 200 "))

    def test_resetBeforeResponsePost(self):
        """
        A POST that reached a backend is not sent twice: 502.
        """
        client = self.proxy.client()
        client.send(b"POST /mango HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n\r\nx")
        self.proxy.accept().close(Failure(ConnectionLost()))
        self.assertTrue(client.received().startswith(b"HTTP/1.1 502 "))
        self.assertEqual(self.proxy.pending(), [])

    def test_staleKeepAliveRetried(self):
        """
        A reused connection that closes before answering (the backend's idle
        timeout raced the request) is retried on a fresh connection to the
        same target.
        """
        client = self.proxy.client()
        client.send(b"GET /apple HTTP/1.1\r\nHost: h\r\n\r\n")
        backend = self.proxy.accept()
        backend.respond(OK)
        client.send(b"GET /apple HTTP/1.1\r\nHost: h\r\n\r\n")
        backend.close()
        self.assertEqual(self.proxy.pending(), ["10.2.0.1:9081"])
        self.proxy.accept().respond(OK)
        self.assertEqual(client.received().count(b"HTTP/1.1 200 OK"), 2)

    def test_malformedResponse(self):
        """
        A response that is not HTTP gets 502.
        """
        client = self.proxy.client()
        client.send(b"GET /apple HTTP/1.1\r\nHost: h\r\n\r\n")
        backend = self.proxy.accept()
        backend.respond(b"SSH-2.0-OpenSSH\r\n\r\n")
        self.assertTrue(client.received().startswith(b"HTTP/1.1 502 "))
        self.assertTrue(backend.transport.aborted)

    def test_clientGoneCancelsBackend(self):
        """
        A client that disconnects mid-response makes the proxy abort the
        backend request; nothing is logged as an error.
        """
        client = self.proxy.client()
        client.send(GET_MANGO)
        backend = self.proxy.accept()
        backend.respond(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nsome")
        client.disconnect()
        self.assertTrue(backend.transport.aborted)
        self.assertIn(" 499 ", self.proxy.logLines()[-1])
        backend.respond(b"more bytes")
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_clientGoneWhileConnecting(self):
        """
        A client that leaves while the proxy connects cancels the attempt.
        """
        client = self.proxy.client()
        client.send(GET_MANGO)
        client.disconnect()
        self.proxy.reactor.advance(5)
        self.assertEqual(self.proxy.exchangeTimers(), [])
        # The exchange ended: logged, and nothing in flight any more.
        self.assertIn(" 499 ", self.proxy.logLines()[-1])
        pool = self.proxy.resource.runtime.pools["mango"]
        self.assertEqual([m.inflight for m in pool.members], [0, 0])
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_slowClientPausesBackend(self):
        """
        When the client's transport is full, reading from the backend pauses.
        """
        client = self.proxy.client()
        client.send(GET_MANGO)
        backend = self.proxy.accept()
        backend.respond(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nsome")
        client.channel.pauseProducing()
        self.assertEqual(backend.transport.producerState, "paused")
        client.channel.resumeProducing()
        self.assertEqual(backend.transport.producerState, "producing")


class AccessLogTests(SynchronousTestCase):
    """
    One access log line per request.
    """

    def test_line(self):
        """
        The line names client, request, status, bytes, Host, pool, target
        and timings.
        """
        proxy = ProxyHarness(CONFIG)
        client = proxy.client(address="192.0.2.9")
        client.send(b"GET /x?q=1 HTTP/1.1\r\nHost: www.mango.com\r\nX-Request-Id: r-1\r\n\r\n")
        backend = proxy.accept()
        proxy.reactor.advance(0.25)
        backend.respond(OK)
        [line] = proxy.logLines()
        self.assertEqual(
            line,
            '1970-01-01T00:00:00.250Z '
            '192.0.2.9 "GET /x?q=1 HTTP/1.1" 200 5 host="www.mango.com" pool=mango '
            'target=10.1.0.1:8081 time=0.2500 upstream=0.2500 id="r-1"',
        )


class CancellationTests(SynchronousTestCase):
    """
    Abandoning a connection attempt is not a backend failure.
    """

    def test_clientGoneWhileConnectingNoRetry(self):
        """
        A client leaving while the proxy connects cancels that attempt
        only: no other target is tried and nothing counts against the
        target's health.
        """
        proxy = ProxyHarness(CONFIG)
        client = proxy.client()
        client.send(GET_MANGO)
        self.assertEqual(proxy.pending(), ["10.1.0.1:8081"])
        client.disconnect()
        self.assertEqual(len(proxy.reactor.tcpClients), 1)
        member = proxy.resource.runtime.pools["mango"].members[0]
        self.assertEqual(member.health.passiveErrors, 0)
        self.assertEqual(member.inflight, 0)
        self.assertEqual(proxy.exchangeTimers(), [])

    def test_bodyTooLargeWhileConnecting(self):
        """
        A chunked body that passes max_body_size while the proxy connects
        gets 413 and the connection closed; no other target is tried.
        """
        config = dict(CONFIG, server={"max_body_size": 10})
        proxy = ProxyHarness(config)
        client = proxy.client()
        client.send(
            b"POST /mango HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"8\r\n12345678\r\n8\r\n12345678\r\n"
        )
        response = client.received()
        self.assertTrue(response.startswith(b"HTTP/1.1 413 Payload Too Large"))
        self.assertIn(b"Connection: close", response)
        self.assertEqual(len(proxy.reactor.tcpClients), 1)
        self.assertEqual(proxy.resource.runtime.pools["mango"].members[0].health.passiveErrors, 0)

    def test_bodyTooLargeAfterHeadBeforeBody(self):
        """
        A body that passes max_body_size after the backend's head arrived
        but before any byte of its response reached the client: the head
        is taken back and the client gets a whole 413, not a cut 200.
        """
        config = dict(CONFIG, server={"max_body_size": 10})
        proxy = ProxyHarness(config)
        client = proxy.client()
        client.send(
            b"POST /mango HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"8\r\n12345678\r\n"
        )
        backend = proxy.accept()
        backend.respond(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-From: backend\r\n\r\n")
        self.assertEqual(client.received(), b"")
        client.send(b"8\r\n12345678\r\n")
        response = client.received()
        self.assertTrue(response.startswith(b"HTTP/1.1 413 Payload Too Large"))
        self.assertNotIn(b"X-From", response)
        self.assertTrue(backend.transport.aborted)


class QueueTests(SynchronousTestCase):
    """
    max_inflight per target, with a bounded queue and a queue timeout.
    """

    def setUp(self):
        self.proxy = ProxyHarness(
            {
                "pools": {"solo": {"targets": ["10.4.0.1:80"], "max_inflight": 1,
                                   "queue_size": 1, "queue_timeout": 5.0}},
                "routes": [{"pool": "solo"}],
            }
        )

    def test_queueThenServe(self):
        """
        A request beyond max_inflight waits and is sent when the target has
        room; one beyond the queue's size gets 503 at once.
        """
        first, second, third = (self.proxy.client() for _ in range(3))
        first.send(b"GET /1 HTTP/1.1\r\nHost: h\r\n\r\n")
        backend = self.proxy.accept()
        second.send(b"GET /2 HTTP/1.1\r\nHost: h\r\n\r\n")
        self.assertEqual(self.proxy.pending(), [])
        third.send(b"GET /3 HTTP/1.1\r\nHost: h\r\n\r\n")
        self.assertTrue(third.received().startswith(b"HTTP/1.1 503 "))
        backend.respond(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n1")
        self.assertTrue(first.received().startswith(b"HTTP/1.1 200 "))
        # The second request now runs on the connection the first freed.
        self.assertIn(b"GET /2 HTTP/1.1", backend.received())
        backend.respond(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n2")
        self.assertTrue(second.received().startswith(b"HTTP/1.1 200 "))

    def test_queueTimeout(self):
        """
        A request that waits longer than queue_timeout gets 503.
        """
        first, second = self.proxy.client(), self.proxy.client()
        first.send(b"GET /1 HTTP/1.1\r\nHost: h\r\n\r\n")
        self.proxy.accept()
        second.send(b"GET /2 HTTP/1.1\r\nHost: h\r\n\r\n")
        self.proxy.reactor.advance(4.9)
        self.assertEqual(second.received(), b"")
        self.proxy.reactor.advance(0.2)
        self.assertTrue(second.received().startswith(b"HTTP/1.1 503 "))
        self.assertEqual(len(self.proxy.resource.runtime.pools["solo"].queue), 0)

    def test_leaveQueueWhenGone(self):
        """
        A waiting client that goes away leaves the queue.
        """
        first, second = self.proxy.client(), self.proxy.client()
        first.send(b"GET /1 HTTP/1.1\r\nHost: h\r\n\r\n")
        self.proxy.accept()
        second.send(b"GET /2 HTTP/1.1\r\nHost: h\r\n\r\n")
        second.disconnect()
        self.assertEqual(len(self.proxy.resource.runtime.pools["solo"].queue), 0)
        queueTimers = [c for c in self.proxy.exchangeTimers() if "_queueTimedOut" in repr(c)]
        self.assertEqual(queueTimers, [])


class PausedReleaseTests(SynchronousTestCase):
    def test_releasedConnectionReads(self):
        """
        A connection paused by a slow client when its response ended goes
        back to the pool reading again, so the next request on it is not
        stuck.
        """
        proxy = ProxyHarness(CONFIG)
        client = proxy.client()
        client.send(b"GET /apple HTTP/1.1\r\nHost: h\r\n\r\n")
        backend = proxy.accept()
        backend.respond(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nab")
        client.channel.pauseProducing()
        self.assertEqual(backend.transport.producerState, "paused")
        backend.respond(b"cd")
        self.assertEqual(proxy.connections.idleCount(CONFIG_TARGET_APPLE), 1)
        self.assertEqual(backend.transport.producerState, "producing")


from lbproxy.config import Target  # noqa: E402

CONFIG_TARGET_APPLE = Target("http", "10.2.0.1", 9081)
