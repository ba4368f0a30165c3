"""
Request hygiene, limits and timeouts: raw bytes into the proxy's channel
over a StringTransport; what the client gets, and that nothing reaches a
backend.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from lbproxy.frontend.chunked import StrictChunkedDecoder
from lbproxy.testing import ProxyHarness

CONFIG = {
    "server": {"client_header_timeout": 10.0, "client_body_timeout": 30.0,
               "keepalive_timeout": 60.0, "client_request_timeout": 100.0,
               "max_body_size": "1k"},
    "pools": {"web": {"targets": ["10.1.0.1:80"]}},
    "routes": [{"pool": "web"}, {"path": "/big", "pool": "web", "max_body_size": 0}],
}

CHUNKED = b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"

#: Malformed requests, each answered 400 and closed, nothing forwarded.
MALFORMED = {
    "contentLengthAndChunked":
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"0\r\n\r\n",
    "chunkedAndContentLength":
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"
        b"0\r\n\r\n",
    "differingContentLengths":
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
    "repeatedContentLength":
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
    "contentLengthPlus": b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +5\r\n\r\nhello",
    "contentLengthHex": b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0x5\r\n\r\nhello",
    "contentLengthSpace": b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1 0\r\n\r\nhello",
    "contentLengthEmpty": b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: \r\n\r\nhello",
    "contentLengthNegative": b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n",
    "transferEncodingIdentity":
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: identity\r\n\r\n",
    "transferEncodingGzipChunked":
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
    "transferEncodingObfuscated":
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: xchunked\r\n\r\n",
    "transferEncodingHttp10":
        b"POST / HTTP/1.0\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    "transferEncodingHttp10NoHost":
        b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "transferEncodingTwice":
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "obsFold": b"GET / HTTP/1.1\r\nHost: h\r\nX-A: a\r\n b\r\n\r\n",
    "obsFoldTab": b"GET / HTTP/1.1\r\nHost: h\r\nX-A: a\r\n\tb\r\n\r\n",
    "spaceBeforeColon": b"GET / HTTP/1.1\r\nHost : h\r\n\r\n",
    "transferEncodingSpaceBeforeColon":
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
    "nulInValue": b"GET / HTTP/1.1\r\nHost: h\r\nX-A: a\x00b\r\n\r\n",
    "crInValue": b"GET / HTTP/1.1\r\nHost: h\r\nX-A: a\rb\r\n\r\n",
    "lfInValue": b"GET / HTTP/1.1\r\nHost: h\r\nX-A: a\nb\r\n\r\n",
    "bareLineFeeds": b"GET / HTTP/1.1\nHost: h\n\n",
    "bareLineFeedAfterRequestLine": b"GET / HTTP/1.1\r\nHost: h\nX-A: b\r\n\r\n",
    "bareCarriageReturns": b"GET / HTTP/1.1\rHost: h\r\r",
    "bareCarriageReturnInRequestLine": b"GET / HTTP/1.1\rHost: h\r\n\r\n",
    "bareCarriageReturnAfterRequestLine": b"GET / HTTP/1.1\r\nHost: h\rX-A: b\r\r",
    "bareCarriageReturnsWithBody":
        b"POST / HTTP/1.1\rHost: h\rContent-Length: 5\r\rhello",
    "chunkSizeNegative": CHUNKED + b"-1\r\n",
    "chunkSizePrefix": CHUNKED + b"0x5\r\nhello\r\n0\r\n\r\n",
    "chunkSizePlus": CHUNKED + b"+5\r\nhello\r\n0\r\n\r\n",
    "chunkSizeOverflow": CHUNKED + b"1" + b"0" * 16 + b"\r\n",
    "chunkSizeEmpty": CHUNKED + b"\r\nhello\r\n",
    "chunkExtensionControl": CHUNKED + b"5;a=\x01b\r\nhello\r\n0\r\n\r\n",
    "chunkDataTooLong": CHUNKED + b"5\r\nhelloX\r\n0\r\n\r\n",
    "chunkBareLineFeed": CHUNKED + b"5\nhello\r\n0\r\n\r\n",
    "twoHosts": b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    "badHost": b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
    "hostWithUserInfo": b"GET / HTTP/1.1\r\nHost: user@a\r\n\r\n",
    "hostBadPort": b"GET / HTTP/1.1\r\nHost: a:80x\r\n\r\n",
    "missingHost": b"GET / HTTP/1.1\r\n\r\n",
    "relativeTarget": b"GET a/b HTTP/1.1\r\nHost: h\r\n\r\n",
    "asteriskGet": b"GET * HTTP/1.1\r\nHost: h\r\n\r\n",
    "authorityFormGet": b"GET h:80 HTTP/1.1\r\nHost: h\r\n\r\n",
    "connect": b"CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n",
    "absoluteWithUserInfo": b"GET http://u@h/ HTTP/1.1\r\nHost: h\r\n\r\n",
    "badVersion": b"GET / HTTP/1.2\r\nHost: h\r\n\r\n",
    "lowerCaseVersion": b"GET / http/1.1\r\nHost: h\r\n\r\n",
    "requestLineExtraSpace": b"GET  / HTTP/1.1\r\nHost: h\r\n\r\n",
    "encodedSlash": b"GET /a%2Fb HTTP/1.1\r\nHost: h\r\n\r\n",
    "encodedBackslash": b"GET /a%5cb HTTP/1.1\r\nHost: h\r\n\r\n",
    "badPercentEncoding": b"GET /a%zzb HTTP/1.1\r\nHost: h\r\n\r\n",
    "truncatedPercentEncoding": b"GET /a%2 HTTP/1.1\r\nHost: h\r\n\r\n",
}


class MalformedTests(SynchronousTestCase):
    """
    One test per malformed request: 400, connection closed, no backend
    request.
    """

    def assertRejected(self, data: bytes, status: bytes = b"400") -> None:
        proxy = ProxyHarness(CONFIG)
        client = proxy.client()
        client.send(data)
        response = client.received()
        self.assertTrue(
            response.startswith(b"HTTP/1.1 " + status + b" "), (data, response)
        )
        self.assertTrue(client.transport.disconnecting, data)
        # Bytes after the rejection are ignored.
        client.send(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        self.assertEqual(client.received(), response)
        # Nothing reached a backend: no connection, or the attempt was
        # abandoned before it was made.
        for connector in proxy.reactor.connectors:
            self.assertTrue(connector.stoppedConnecting, data)
        self.assertEqual(proxy.backends, [])

    for _name, _data in MALFORMED.items():
        locals()["test_" + _name] = (
            lambda self, data=_data: self.assertRejected(data)
        )
    del _name, _data

    def test_requestLineTooLong(self):
        """
        A request line over max_request_line gets 414.
        """
        self.assertRejected(b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: h\r\n\r\n", b"414")

    def test_requestLineTooLongNoNewline(self):
        """
        A request line that never ends gets 414 once it is too long.
        """
        self.assertRejected(b"GET /" + b"a" * 40000, b"414")

    def test_headersTooLarge(self):
        """
        Header lines over max_header_size bytes in all get 431.
        """
        big = b"X-Big: " + b"a" * 4000 + b"\r\n"
        self.assertRejected(b"GET / HTTP/1.1\r\nHost: h\r\n" + big * 10 + b"\r\n", b"431")

    def test_tooManyHeaders(self):
        """
        More than max_headers header lines get 431.
        """
        headers = b"".join(b"X-%d: 1\r\n" % (i,) for i in range(101))
        self.assertRejected(b"GET / HTTP/1.1\r\nHost: h\r\n" + headers + b"\r\n", b"431")

    def test_bodyTooLarge(self):
        """
        A declared body over max_body_size gets 413 before anything is
        forwarded.
        """
        self.assertRejected(
            b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2000\r\n\r\n", b"413"
        )

    def test_routeBodyLimit(self):
        """
        A route's max_body_size overrides the server's (0: no limit).
        """
        proxy = ProxyHarness(CONFIG)
        client = proxy.client()
        client.send(b"POST /big HTTP/1.1\r\nHost: h\r\nContent-Length: 2000\r\n\r\n")
        self.assertEqual(proxy.pending(), ["10.1.0.1:80"])


class AcceptedTests(SynchronousTestCase):
    """
    What is odd but valid passes, cleaned.
    """

    def forwarded(self, data: bytes) -> bytes:
        proxy = ProxyHarness(CONFIG)
        client = proxy.client()
        client.send(data)
        return proxy.accept().received()

    def test_underscoreHeadersDropped(self):
        """
        Header names with underscores never reach the backend.
        """
        sent = self.forwarded(
            b"GET / HTTP/1.1\r\nHost: h\r\nX_Forwarded_For: 1.2.3.4\r\nContent_Length: 5\r\n\r\n"
        )
        self.assertNotIn(b"_", sent.split(b"\r\n\r\n")[0])

    def test_trailersIgnored(self):
        """
        Framing or routing headers arriving as trailers are dropped; the
        backend gets the body re-framed.
        """
        sent = self.forwarded(
            CHUNKED + b"5\r\nhello\r\n0\r\nContent-Length: 99\r\nHost: evil\r\n\r\n"
        )
        self.assertTrue(sent.endswith(b"\r\n\r\n5\r\nhello\r\n0\r\n\r\n"))
        self.assertNotIn(b"evil", sent)
        self.assertNotIn(b"Content-Length: 99", sent)

    def test_chunkedUpperCase(self):
        """
        Transfer-coding names are case-insensitive: "Chunked" is chunked.
        """
        sent = self.forwarded(
            b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
        )
        self.assertTrue(sent.endswith(b"3\r\nabc\r\n0\r\n\r\n"))

    def test_unreservedDecoded(self):
        """
        Percent-encoded unreserved characters are decoded before dot-segment
        removal and routing; the backend gets the normalized path.
        """
        sent = self.forwarded(b"GET /a/%2e%2e/%7euser/%41 HTTP/1.1\r\nHost: h\r\n\r\n")
        self.assertTrue(sent.startswith(b"GET /~user/A HTTP/1.1\r\n"))

    def test_encodedSlashKept(self):
        """
        With encoded_slashes = "keep", %2F stays encoded.
        """
        config = dict(CONFIG, server={"encoded_slashes": "keep"})
        proxy = ProxyHarness(config)
        client = proxy.client()
        client.send(b"GET /a%2fb HTTP/1.1\r\nHost: h\r\n\r\n")
        self.assertTrue(proxy.accept().received().startswith(b"GET /a%2Fb HTTP/1.1\r\n"))

    def test_pipelinedAfterBody(self):
        """
        Bytes after a complete request are the next request, never part of
        the first: both are forwarded separately, answered in order.
        """
        proxy = ProxyHarness(CONFIG)
        client = proxy.client()
        client.send(
            b"POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc"
            b"GET /b HTTP/1.1\r\nHost: h\r\n\r\n"
        )
        backend = proxy.accept()
        self.assertTrue(backend.received().endswith(b"\r\n\r\nabc"))
        first = backend.received()
        backend.respond(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n1")
        second = backend.received()[len(first) :]
        self.assertTrue(second.startswith(b"GET /b HTTP/1.1\r\nHost: h\r\n"))
        self.assertTrue(second.endswith(b"\r\n\r\n"))
        self.assertEqual(second.count(b"\r\n\r\n"), 1)

    def test_localHealth(self):
        """
        The proxy's own health endpoint answers without a backend.
        """
        proxy = ProxyHarness(CONFIG)
        client = proxy.client()
        client.send(b"GET /.lbproxy/health HTTP/1.1\r\nHost: anything\r\n\r\n")
        self.assertTrue(client.received().startswith(b"HTTP/1.1 200 OK"))
        self.assertEqual(proxy.pending(), [])


class TimeoutTests(SynchronousTestCase):
    """
    Timeouts a slow or drip-feeding client cannot reset.
    """

    def setUp(self):
        self.proxy = ProxyHarness(CONFIG)
        self.client = self.proxy.client()

    def test_dripFedHeaders(self):
        """
        A head sent one byte a second is cut off at client_header_timeout
        with 408, however steadily the bytes come.
        """
        data = b"GET / HTTP/1.1\r\nHost: h\r\nX-Slow: " + b"a" * 100
        for index in range(9):
            self.client.send(data[index : index + 1])
            self.proxy.reactor.advance(1)
        self.assertEqual(self.client.received(), b"")
        self.client.send(data[9:10])
        self.proxy.reactor.advance(1)
        self.assertTrue(self.client.received().startswith(b"HTTP/1.1 408 "))
        self.assertTrue(self.client.transport.disconnecting)

    def test_silentConnection(self):
        """
        A connection that never sends a byte is closed at the header timeout,
        without a response.
        """
        self.proxy.reactor.advance(10)
        self.assertEqual(self.client.received(), b"")
        self.assertTrue(self.client.transport.disconnecting)

    def test_bodyIdle(self):
        """
        A body that stops for longer than client_body_timeout gets 408 and
        the backend request is abandoned.
        """
        self.client.send(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\nab")
        backend = self.proxy.accept()
        self.proxy.reactor.advance(29)
        self.client.send(b"cd")
        self.proxy.reactor.advance(29)
        self.assertEqual(self.client.received(), b"")
        self.proxy.reactor.advance(1)
        self.assertTrue(self.client.received().startswith(b"HTTP/1.1 408 "))
        self.assertTrue(backend.transport.aborted)

    def assertBodyCut(self, backend, status: bytes = b"408") -> None:
        """
        The client got C{status} (or, once the response had begun, just the
        close), the backend connection was aborted before the body was
        complete, and the request was logged with that status.
        """
        self.assertTrue(self.client.transport.disconnecting)
        self.assertTrue(backend.transport.aborted)
        self.assertFalse(backend.received().endswith(b"0\r\n\r\n"))
        self.assertIn('" %s ' % (status.decode(),), self.proxy.logLines()[-1])

    def test_chunkedBodyStalled(self):
        """
        A chunked body that stops mid-chunk, after the request was
        forwarded, is cut after client_body_timeout with no bytes: 408.
        """
        self.client.send(CHUNKED.replace(b"POST /", b"POST /big") + b"10\r\nabcd")
        backend = self.proxy.accept()
        self.proxy.reactor.advance(29)
        self.client.send(b"ef")
        self.proxy.reactor.advance(29.9)
        self.assertFalse(self.client.transport.disconnecting)
        self.proxy.reactor.advance(0.1)
        self.assertTrue(self.client.received().startswith(b"HTTP/1.1 408 "))
        self.assertBodyCut(backend)

    def test_chunkedBodyStalledInSizeLine(self):
        """
        Stopping inside a chunk-size line is stalling too.
        """
        self.client.send(CHUNKED.replace(b"POST /", b"POST /big") + b"2\r\nab\r\n1")
        backend = self.proxy.accept()
        self.proxy.reactor.advance(30)
        self.assertTrue(self.client.received().startswith(b"HTTP/1.1 408 "))
        self.assertBodyCut(backend)

    def test_bodyStalledWhileConnecting(self):
        """
        A body that stalls before the backend connection is made: the
        connection, once made, is aborted when the body times out.
        """
        self.client.send(b"POST /big HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nab")
        self.proxy.reactor.advance(2)
        backend = self.proxy.accept()
        self.proxy.reactor.advance(28)
        self.assertTrue(self.client.received().startswith(b"HTTP/1.1 408 "))
        self.assertBodyCut(backend)

    def test_bodyStalledAfterResponseBegan(self):
        """
        A backend may answer while the body streams; a body that then stalls
        is cut all the same: the client connection is closed (its response
        cannot be completed) and the backend connection aborted.
        """
        self.client.send(CHUNKED.replace(b"POST /", b"POST /big") + b"2\r\nab\r\n")
        backend = self.proxy.accept()
        backend.respond(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
        self.proxy.reactor.advance(30)
        received = self.client.received()
        self.assertTrue(received.startswith(b"HTTP/1.1 200 OK\r\n"))
        self.assertNotIn(b"HTTP/1.1 408", received)
        self.assertBodyCut(backend, b"408")

    def test_deadlineWhileBackendPaused(self):
        """
        While the backend does not read, the client is not timed out for a
        stalled body, but the request deadline still ends it; the backend
        connection is aborted and reading from the client is not resumed.
        """
        self.client.send(b"POST /big HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\nab")
        backend = self.proxy.accept()
        backend.transport.producer.pauseProducing()
        self.proxy.reactor.advance(99)
        self.assertEqual(self.client.received(), b"")
        self.proxy.reactor.advance(1)
        self.assertTrue(self.client.received().startswith(b"HTTP/1.1 408 "))
        self.assertBodyCut(backend)
        self.assertEqual(self.client.transport.producerState, "paused")

    def test_requestDeadline(self):
        """
        A body that keeps trickling in is cut off at client_request_timeout.
        """
        self.client.send(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1000\r\n\r\n")
        self.proxy.accept()
        for _ in range(99):
            self.client.send(b"x")
            self.proxy.reactor.advance(1)
        self.assertEqual(self.client.received(), b"")
        self.proxy.reactor.advance(1)
        self.assertTrue(self.client.received().startswith(b"HTTP/1.1 408 "))

    def test_keepAliveIdle(self):
        """
        An idle keep-alive connection is closed after keepalive_timeout; a
        new request in time is given the header timeout again.
        """
        self.client.send(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        self.proxy.accept().respond(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        self.proxy.reactor.advance(59)
        self.assertFalse(self.client.transport.disconnecting)
        self.client.send(b"GET / HT")
        self.proxy.reactor.advance(9)
        self.assertFalse(self.client.transport.disconnecting)
        self.proxy.reactor.advance(1)
        self.assertTrue(self.client.received().endswith(b"408 Request Timeout\n"))

    def test_idleClosed(self):
        self.client.send(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        self.proxy.accept().respond(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        self.proxy.reactor.advance(60)
        self.assertTrue(self.client.transport.disconnecting)

    def test_noTimeoutWhileWaitingForBackend(self):
        """
        Client timeouts do not run while the backend works on a request.
        """
        self.client.send(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        backend = self.proxy.accept()
        self.proxy.reactor.advance(25)
        backend.respond(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        self.assertTrue(self.client.received().startswith(b"HTTP/1.1 200 "))


class ConnectionLimitTests(SynchronousTestCase):
    def test_maxConnections(self):
        """
        Past max_connections a client gets 503 and is closed; when one
        leaves, new clients are served again.
        """
        config = dict(CONFIG, server={"max_connections": 2})
        proxy = ProxyHarness(config)
        first = proxy.client()
        proxy.client()  # the second, held open
        third = proxy.client()
        self.assertTrue(third.received().startswith(b"HTTP/1.1 503 "))
        self.assertTrue(third.transport.disconnecting)
        third.disconnect()
        first.disconnect()
        fourth = proxy.client()
        self.assertEqual(fourth.received(), b"")
        self.assertEqual(proxy.site.openConnections, 2)


class StrictChunkedDecoderTests(SynchronousTestCase):
    def decode(self, data: bytes, step: int = 0):
        received, finished = [], []
        decoder = StrictChunkedDecoder(received.append, finished.append)
        if step:
            for index in range(0, len(data), step):
                decoder.dataReceived(data[index : index + step])
        else:
            decoder.dataReceived(data)
        return b"".join(received), finished

    def test_everySplit(self):
        """
        The same body, however the bytes are split.
        """
        data = b"3;x=1\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nT: 1\r\n\r\n"
        for step in (0, 1, 2, 3, 7):
            body, finished = self.decode(data, step)
            self.assertEqual(body, b"abc0123456789abcdef")
            self.assertEqual(finished, [b""])

    def test_restIsNextRequest(self):
        """
        Bytes after the last chunk and trailers are handed back, never
        taken as body.
        """
        body, finished = self.decode(b"1\r\na\r\n0\r\n\r\nGET / HTTP/1.1\r\n")
        self.assertEqual((body, finished), (b"a", [b"GET / HTTP/1.1\r\n"]))


class MoreHygieneTests(SynchronousTestCase):
    def test_nonAsciiTarget(self):
        """
        DEL, non-ASCII bytes and a raw backslash in the target get 400.
        """
        for target in (b"/a\x7fb", b"/a\x80b", b"/caf\xc3\xa9", b"/a\\..\\admin"):
            MalformedTests("test_obsFold").assertRejected(
                b"GET " + target + b" HTTP/1.1\r\nHost: h\r\n\r\n"
            )

    def test_hostPortRange(self):
        MalformedTests("test_obsFold").assertRejected(b"GET / HTTP/1.1\r\nHost: h:99999\r\n\r\n")

    def test_continueOnlyWhenAccepted(self):
        """
        100 Continue is sent only once the request passed every check: a
        body over the limit gets 413 without it.
        """
        proxy = ProxyHarness(CONFIG)
        refused = proxy.client()
        refused.send(b"POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n"
                     b"Content-Length: 5000\r\n\r\n")
        self.assertTrue(refused.received().startswith(b"HTTP/1.1 413 "))
        accepted = proxy.client()
        accepted.send(b"POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n"
                      b"Content-Length: 5\r\n\r\n")
        self.assertEqual(accepted.received(), b"HTTP/1.1 100 Continue\r\n\r\n")
        accepted.send(b"hello")
        backend = proxy.accept()
        self.assertTrue(backend.received().endswith(b"\r\n\r\nhello"))
        self.assertNotIn(b"Expect", backend.received())

    def test_bodyTimerWaitsWhileProxyPaused(self):
        """
        While lbproxy itself has paused reading the body (the backend is
        slow), the client's body timeout does not run.
        """
        proxy = ProxyHarness(CONFIG)
        client = proxy.client()
        client.send(b"POST /big HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\nab")
        backend = proxy.accept()
        backend.transport.producer.pauseProducing()
        # Longer than client_body_timeout (30 s), within the 100 s deadline.
        proxy.reactor.advance(50)
        self.assertEqual(client.received(), b"")
        backend.transport.producer.resumeProducing()
        proxy.reactor.advance(29)
        self.assertEqual(client.received(), b"")
        proxy.reactor.advance(1)
        self.assertTrue(client.received().startswith(b"HTTP/1.1 408 "))


class QuickHeadTests(SynchronousTestCase):
    """
    A complete request head in one read is parsed in one pass
    (L{lbproxy.frontend.hygiene.GuardedChannel._quickHead}); everything else goes
    line by line. Both ways must accept and refuse the same requests and
    forward the same bytes.
    """

    def sendInPieces(self, client, data: bytes) -> None:
        for i in range(len(data)):
            client.send(data[i : i + 1])

    def test_malformedByteByByte(self):
        """
        Every malformed request is refused just the same when it arrives
        one byte at a time (the line-by-line way) as in one read.
        """
        for name, data in MALFORMED.items():
            proxy = ProxyHarness(CONFIG)
            client = proxy.client()
            self.sendInPieces(client, data)
            self.assertTrue(client.received().startswith(b"HTTP/1.1 400 "), name)
            self.assertTrue(client.transport.disconnecting, name)
            self.assertEqual(proxy.backends, [], name)

    def test_malformedInOddSplits(self):
        """
        Every malformed request is refused just the same when it arrives in
        odd pieces.
        """
        for size in (2, 3, 7, 13):
            for name, data in MALFORMED.items():
                proxy = ProxyHarness(CONFIG)
                client = proxy.client()
                for i in range(0, len(data), size):
                    client.send(data[i : i + size])
                self.assertTrue(client.received().startswith(b"HTTP/1.1 400 "), (name, size))
                self.assertTrue(client.transport.disconnecting, (name, size))
                self.assertEqual(proxy.backends, [], (name, size))

    def test_sameForwardedEitherWay(self):
        """
        The backend gets the same request whether the head came in one read
        or byte by byte: repeated fields, odd capitalization and spaces
        around values included.
        """
        head = (
            b"GET /a/./b?q=1 HTTP/1.1\r\nhost: h\r\nX-Multi: 1\r\nx-multi:  2 \r\n"
            b"Accept-Encoding:\tgzip\r\nX-Empty:\r\nCookie: a=b\r\nX-Request-Id: abc\r\n\r\n"
        )
        forwarded = []
        for deliver in (lambda c: c.send(head), lambda c: self.sendInPieces(c, head)):
            proxy = ProxyHarness(CONFIG)
            deliver(proxy.client())
            forwarded.append(proxy.accept().received())
        self.assertEqual(forwarded[0], forwarded[1])
        self.assertIn(b"GET /a/b?q=1 HTTP/1.1\r\n", forwarded[0])
        self.assertIn(b"X-Multi: 1\r\n", forwarded[0])
        self.assertIn(b"X-Multi: 2\r\n", forwarded[0])

    def test_pipelinedInOneRead(self):
        """
        Several heads in one read are each taken in turn, in order, while
        the first is still being answered.
        """
        proxy = ProxyHarness(CONFIG)
        client = proxy.client()
        client.send(b"".join(b"GET /%d HTTP/1.1\r\nHost: h\r\n\r\n" % (i,) for i in range(3)))
        backend = proxy.accept()
        for i in range(3):
            self.assertTrue(backend.received().endswith(b"\r\n\r\n"))
            self.assertIn(b"GET /%d " % (i,), backend.received())
            backend.transport.clear()
            backend.respond(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n%d" % (i,))
        self.assertEqual(client.received().count(b"HTTP/1.1 200 OK"), 3)
        self.assertTrue(client.received().endswith(b"\r\n\r\n2"))

    def test_answeredAtOnceThenMore(self):
        """
        Requests answered without a backend (here 404s), many in one read,
        are all answered; the connection stays open.
        """
        proxy = ProxyHarness(
            {"pools": {"web": {"targets": ["10.1.0.1:80"]}},
             "routes": [{"path": "/app", "pool": "web"}]}
        )
        client = proxy.client()
        client.send(b"GET /x HTTP/1.1\r\nHost: h\r\n\r\n" * 50)
        self.assertEqual(client.received().count(b"HTTP/1.1 404 "), 50)
        self.assertFalse(client.transport.disconnecting)

    def test_partialHeadThenRest(self):
        """
        A head split across reads is put together and forwarded once.
        """
        proxy = ProxyHarness(CONFIG)
        client = proxy.client()
        client.send(b"GET / HTTP/1.1\r\nHo")
        client.send(b"st: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n")
        backend = proxy.accept()
        self.assertEqual(backend.received().count(b"GET / HTTP/1.1"), 1)

    def test_bodyTakesLineByLineWay(self):
        """
        A head announcing a body is left to the line-by-line parser, which
        frames it; the body is forwarded.
        """
        proxy = ProxyHarness(CONFIG)
        client = proxy.client()
        client.send(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello")
        self.assertTrue(proxy.accept().received().endswith(b"\r\n\r\nhello"))
