"""
Defective backends, in memory: what a backend sends that must not reach a
client as it was sent (a bad status code, reason phrase or header value),
how a backend that fails mid-response is reported, and connections that
must not be reused.
"""

from __future__ import annotations

from twisted.internet.error import ConnectionLost
from twisted.logger import LogLevel, formatEvent, globalLogPublisher
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from lbproxy.testing import ProxyHarness
from lbproxy.testing.tls import H2Client
from tests.test_tls_proxy import TLSProxyTestCase

CONFIG = {
    "server": {"connect_timeout": 2.0, "response_timeout": 10.0, "idle_timeout": 30.0},
    "pools": {"apple": {"targets": ["10.2.0.1:9081"]}},
    "routes": [{"path": "/", "pool": "apple"}],
}

GET = b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n"
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"


def recordWarnings(case) -> list:
    """
    The text of every warning logged during the test C{case}.
    """
    seen: list = []

    def observer(event):
        if event.get("log_level") == LogLevel.warn:
            seen.append(formatEvent(event))

    globalLogPublisher.addObserver(observer)
    case.addCleanup(globalLogPublisher.removeObserver, observer)
    return seen


class BackendTestCase(SynchronousTestCase):
    def setUp(self):
        self.proxy = ProxyHarness(CONFIG)
        self.warnings = recordWarnings(self)

    def exchange(self, response: bytes, request: bytes = GET):
        """
        One request answered by C{response}.

        @return: C{(client, backend)}.
        """
        client = self.proxy.client()
        client.send(request)
        if self.proxy.pending():
            backend = self.proxy.accept()
        else:
            # A kept-alive connection carries it.
            backend = self.proxy.backends[-1]
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


class ReasonPhraseTests(BackendTestCase):
    """
    A reason phrase is HTAB, SP, VCHAR and obs-text (RFC 9112 4), at most
    512 bytes; any other is replaced by the code's standard phrase, and
    the response is relayed.
    """

    def assertPhrase(self, statusLine: bytes, expected: bytes):
        client, backend = self.exchange(statusLine + b"\r\nContent-Length: 5\r\n\r\nhello")
        response = client.received()
        self.assertEqual(response.split(b"\r\n", 1)[0], expected)
        self.assertTrue(response.endswith(b"\r\n\r\nhello"))
        self.assertFalse(backend.transport.aborted)

    def test_controlCharacters(self):
        for bad in (b"O\rK", b"O\x00K", b"O\x1b[2JK", b"O\x7fK", b"O\x01K"):
            self.assertPhrase(b"HTTP/1.1 200 " + bad, b"HTTP/1.1 200 OK")
        self.assertPhrase(b"HTTP/1.1 404 \x1b", b"HTTP/1.1 404 Not Found")

    def test_tooLong(self):
        self.assertPhrase(b"HTTP/1.1 200 " + b"x" * 60000, b"HTTP/1.1 200 OK")
        self.assertPhrase(b"HTTP/1.1 200 " + b"x" * 513, b"HTTP/1.1 200 OK")

    def test_valid(self):
        """
        Spaces, tabs, obs-text and up to 512 bytes pass as they are.
        """
        self.assertPhrase(b"HTTP/1.1 200 Fine \tand \xe9t\xe9", b"HTTP/1.1 200 Fine \tand \xe9t\xe9")
        self.assertPhrase(b"HTTP/1.1 200 " + b"x" * 512, b"HTTP/1.1 200 " + b"x" * 512)

    def test_headTooLarge(self):
        """
        A status line longer than the head limit (64 KiB) is a 502.
        """
        client, backend = self.exchange(b"HTTP/1.1 200 " + b"x" * (65 * 1024))
        self.assertBadGateway(client, backend)


class HeaderValueTests(BackendTestCase):
    """
    Control characters (0x00-0x1f except HTAB, and DEL) in a response
    header value: 502 (RFC 9110 5.5).
    """

    def test_controlCharacters(self):
        for bad in (b"\x01", b"\x1b", b"\x7f", b"\x0b", b"\x00", b"\r"):
            client, backend = self.exchange(
                b"HTTP/1.1 200 OK\r\nX-A: a" + bad + b"b\r\nContent-Length: 5\r\n\r\nhello"
            )
            self.assertBadGateway(client, backend)
            self.assertNotIn(b"hello", client.received())

    def test_tabAndObsText(self):
        client, backend = self.exchange(
            b"HTTP/1.1 200 OK\r\nX-A: a\tb \xffc\r\nContent-Length: 5\r\n\r\nhello"
        )
        self.assertIn(b"\r\nX-A: a\tb \xffc\r\n", client.received())


CLOSE_DELIMITED = b"HTTP/1.0 200 OK\r\n\r\n" + b"x" * 1000


class CloseDelimitedResetTests(BackendTestCase):
    """
    Only a clean close (FIN) ends a close-delimited body; a reset aborts
    the client's response, is logged as a warning naming the target, and
    the access log does not show a complete 200.
    """

    def test_resetAbortsHTTP11(self):
        client, backend = self.exchange(CLOSE_DELIMITED)
        backend.close(Failure(ConnectionLost("reset")))
        response = client.received()
        self.assertTrue(response.startswith(b"HTTP/1.1 200 OK\r\n"))
        self.assertNotIn(b"0\r\n\r\n", response)
        self.assertTrue(client.transport.disconnecting)
        self.assertIn(" 502 1000 ", self.proxy.logLines()[-1])
        self.assertEqual(len(self.warnings), 1)
        self.assertIn("10.2.0.1:9081", self.warnings[0])

    def test_resetAbortsHTTP10(self):
        """
        An HTTP/1.0 client, whose body is close-delimited too, gets a
        reset.
        """
        client, backend = self.exchange(CLOSE_DELIMITED, b"GET /a HTTP/1.0\r\n\r\n")
        backend.close(Failure(ConnectionLost("reset")))
        self.assertTrue(client.transport.aborted)
        self.assertIn(" 502 1000 ", self.proxy.logLines()[-1])

    def test_cleanCloseEnds(self):
        client, backend = self.exchange(CLOSE_DELIMITED)
        backend.close()
        response = client.received()
        self.assertTrue(response.endswith(b"x" * 1000 + b"\r\n0\r\n\r\n"))
        self.assertFalse(client.transport.disconnecting)
        self.assertIn(" 200 1000 ", self.proxy.logLines()[-1])
        self.assertEqual(self.warnings, [])


class CloseDelimitedResetHTTP2Tests(TLSProxyTestCase):
    def test_resetResetsStream(self):
        """
        Over HTTP/2 the stream is reset (INTERNAL_ERROR), never ended.
        """
        tls, client, pump = self.connect(
            "www.mango.com", alpn=(b"h2", b"http/1.1"), protocol=H2Client
        )
        pump.flush()
        stream = client.request(b"GET", b"/", b"www.mango.com")
        pump.flush()
        backend = self.proxy.accept()
        backend.respond(CLOSE_DELIMITED)
        pump.flush()
        backend.close(Failure(ConnectionLost("reset")))
        pump.flush()
        response = client.responses[stream]
        self.assertEqual(response["body"], b"x" * 1000)
        self.assertFalse(response["ended"])
        self.assertEqual(response["reset"], 2)


class FailureBeforeBodyTests(BackendTestCase):
    """
    The response head is written to the client with the first body byte:
    a backend that fails before any (head then close, a bad first chunk
    size) gets the client a whole 502, logged as 502, instead of an empty
    200.
    """

    def assertReplaced(self, client, backend):
        response = client.received()
        self.assertTrue(response.startswith(b"HTTP/1.1 502 Bad Gateway\r\n"), response)
        self.assertTrue(response.endswith(b"\r\n\r\n502 Bad Gateway\n"), response)
        # Nothing of the backend's head is left.
        self.assertNotIn(b"X-Backend", response)
        self.assertEqual(response.count(b"Content-Length"), 1)
        self.assertIn(" 502 ", self.proxy.logLines()[-1])
        self.assertFalse(client.transport.disconnecting)
        self.assertEqual(len(self.warnings), 1)
        self.assertIn("10.2.0.1:9081", self.warnings[0])

    def test_headThenClose(self):
        client, backend = self.exchange(
            b"HTTP/1.1 200 OK\r\nX-Backend: 1\r\nContent-Length: 100\r\n\r\n"
        )
        backend.close()
        self.assertReplaced(client, backend)

    def test_headThenReset(self):
        client, backend = self.exchange(b"HTTP/1.0 200 OK\r\nX-Backend: 1\r\n\r\n")
        backend.close(Failure(ConnectionLost("reset")))
        self.assertReplaced(client, backend)

    def test_badFirstChunkSize(self):
        client, backend = self.exchange(
            b"HTTP/1.1 200 OK\r\nX-Backend: 1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"
        )
        self.assertReplaced(client, backend)
        self.assertTrue(backend.transport.aborted)

    def test_connectionGoesOn(self):
        """
        The client's connection carries its next request as usual.
        """
        client, backend = self.exchange(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
        backend.close()
        client.send(GET)
        self.proxy.accept().respond(OK)
        self.assertTrue(client.received().endswith(b"\r\n\r\nhello"))

    def test_afterBodyByteAborts(self):
        """
        Once a body byte went out, the head went with it: the client's
        response is aborted as before.
        """
        client, backend = self.exchange(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nx")
        backend.close()
        self.assertTrue(client.received().startswith(b"HTTP/1.1 200 OK\r\n"))
        self.assertTrue(client.transport.disconnecting)


class FailureBeforeBodyHTTP2Tests(TLSProxyTestCase):
    def test_headThenClose(self):
        tls, client, pump = self.connect("www.mango.com", alpn=(b"h2", b"http/1.1"), protocol=H2Client)
        pump.flush()
        stream = client.request(b"GET", b"/", b"www.mango.com")
        pump.flush()
        backend = self.proxy.accept()
        backend.respond(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
        pump.flush()
        backend.close()
        pump.flush()
        self.assertEqual(client.header(stream, b":status"), b"502")
        self.assertTrue(client.responses[stream]["ended"])


EVIL = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nevil"


class StrayBytesTests(BackendTestCase):
    """
    Bytes from a backend beyond a response's framing, or while no request
    is outstanding, are never parsed as a response: the connection is
    closed, never reused.
    """

    def assertFreshConnection(self, client, stray):
        self.assertEqual(self.proxy.connections._idleSince, {})
        client.send(GET)
        self.assertEqual(self.proxy.pending(), ["10.2.0.1:9081"])
        self.proxy.accept().respond(OK)
        self.assertNotIn(b"evil", client.received())
        self.assertTrue(client.received().endswith(b"hello"))
        self.assertTrue(stray.transport.disconnecting)

    def test_whileIdle(self):
        """
        A bodiless answer (HEAD), then bytes on the idle connection.
        """
        client, backend = self.exchange(
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", b"HEAD /a HTTP/1.1\r\nHost: h\r\n\r\n"
        )
        self.assertEqual(len(self.proxy.connections._idleSince), 1)
        backend.respond(EVIL)
        self.assertFreshConnection(client, backend)

    def test_afterBodilessResponse(self):
        for head in (b"HTTP/1.1 204 No Content\r\n\r\n", b"HTTP/1.1 304 Not Modified\r\n\r\n"):
            client, backend = self.exchange(head + EVIL)
            self.assertTrue(client.received().startswith(head[:12]))
            self.assertFreshConnection(client, backend)

    def test_afterLengthAndChunked(self):
        for response in (OK, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"):
            client, backend = self.exchange(response + EVIL)
            self.assertFreshConnection(client, backend)

    def test_pipelinedNextRequest(self):
        """
        A request waiting behind a HEAD (pipelined) does not get the stray
        bytes that came with the HEAD's answer as its response.
        """
        client = self.proxy.client()
        client.send(b"HEAD /a HTTP/1.1\r\nHost: h\r\n\r\n" + GET)
        backend = self.proxy.accept()
        backend.respond(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n" + EVIL)
        self.assertNotIn(b"evil", client.received())
        self.assertEqual(self.proxy.pending(), ["10.2.0.1:9081"])
        self.proxy.accept().respond(OK)
        self.assertTrue(client.received().endswith(b"hello"))
        self.assertNotIn(b"evil", client.received())


EARLY_HINTS = b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\nConnection: x\r\n\r\n"


class InformationalTests(BackendTestCase):
    """
    1xx responses other than 100 and 101 reach HTTP/1.1 clients before the
    final response.
    """

    def test_earlyHints(self):
        client, backend = self.exchange(EARLY_HINTS + OK)
        response = client.received()
        self.assertTrue(
            response.startswith(b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\n"),
            response,
        )
        self.assertTrue(response.endswith(b"\r\n\r\nhello"))
        self.assertIn(" 200 5 ", self.proxy.logLines()[-1])

    def test_notForHTTP10(self):
        client, backend = self.exchange(EARLY_HINTS + OK, b"GET /a HTTP/1.0\r\n\r\n")
        self.assertTrue(client.received().startswith(b"HTTP/1.0 200 OK\r\n"))

    def test_continueNotForwarded(self):
        """
        lbproxy answers C{Expect: 100-continue} itself; a backend's 100 is
        not passed on.
        """
        client, backend = self.exchange(b"HTTP/1.1 100 Continue\r\n\r\n" + OK)
        self.assertTrue(client.received().startswith(b"HTTP/1.1 200 OK\r\n"))

    def test_invalidHintsHeader(self):
        client, backend = self.exchange(b"HTTP/1.1 103 Early Hints\r\nLink: \x01\r\n\r\n" + OK)
        self.assertBadGateway(client, backend)


class InformationalHTTP2Tests(TLSProxyTestCase):
    """
    A 103 reaches an HTTP/2 client as an informational HEADERS frame
    before the final response's.
    """

    def test_earlyHints(self):
        tls, client, pump = self.connect("www.mango.com", alpn=(b"h2", b"http/1.1"), protocol=H2Client)
        pump.flush()
        stream = client.request(b"GET", b"/", b"www.mango.com")
        pump.flush()
        backend = self.proxy.accept()
        backend.respond(
            b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n"
            b"Connection: x-hop\r\nX-Hop: 1\r\n\r\n"
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
        )
        pump.flush()
        response = client.responses[stream]
        self.assertEqual(
            response["interim"],
            [[(b":status", b"103"), (b"link", b"</s.css>; rel=preload")]],
        )
        self.assertEqual(client.header(stream, b":status"), b"200")
        self.assertEqual(response["body"], b"hello")
        self.assertTrue(response["ended"])
