"""
Tests for L{lbproxy.demo}, in memory through L{treq.testing.StubTreq}.
"""

from __future__ import annotations

import hashlib
import json
from typing import List

from treq.testing import StubTreq
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.client import ResponseFailed
from twisted.web.iweb import UNKNOWN_LENGTH

from lbproxy.demo import (
    CHUNK_SIZE,
    DIE_ANNOUNCED_LENGTH,
    DemoRoot,
    _PatternProducer,
    demoSite,
    patternBytes,
)

BASE = "http://demo.test"


class DemoTestsMixin:
    def setUp(self) -> None:
        self.clock = Clock()
        self.root = DemoRoot("mango1", "This is the mango application.", self.clock)
        self.stub = StubTreq(self.root)

    def request(self, method: str, path: str, **kwargs):
        """
        Make a request that the demo answers at once; return the response
        and its body.
        """
        response = self.successResultOf(
            self.stub.request(method, BASE + path, **kwargs)
        )
        body = self.successResultOf(self.stub.content(response))
        return response, body

    def header(self, response, name: str) -> List[bytes]:
        return response.headers.getRawHeaders(name.encode("ascii"), [])


class TextTests(DemoTestsMixin, SynchronousTestCase):
    def test_root(self) -> None:
        """
        GET / answers the application text, as text/plain, named by
        X-Demo-Backend.
        """
        response, body = self.request("GET", "/")
        self.assertEqual(response.code, 200)
        self.assertEqual(body, b"This is the mango application.\n")
        self.assertEqual(self.header(response, "X-Demo-Backend"), [b"mango1"])
        self.assertTrue(self.header(response, "Content-Type")[0].startswith(b"text/plain"))

    def test_anyPath(self) -> None:
        """
        Paths the demo does not know answer the text too.
        """
        for path in ("/mango", "/api/spells", "/files/image.jpg", "/a/b/c?x=1"):
            response, body = self.request("GET", path)
            self.assertEqual((response.code, body), (200, b"This is the mango application.\n"))

    def test_head(self) -> None:
        """
        HEAD answers the headers of GET without a body.
        """
        response, body = self.request("HEAD", "/")
        self.assertEqual(response.code, 200)
        self.assertEqual(body, b"")
        self.assertEqual(self.header(response, "Content-Length"), [b"31"])

    def test_textDefault(self) -> None:
        """
        L{demoSite} serves the given name and text.
        """
        site = demoSite("apple2", "This is the apple application.", Clock())
        stub = StubTreq(site.resource)
        response = self.successResultOf(stub.get(BASE + "/"))
        self.assertEqual(
            self.successResultOf(stub.content(response)),
            b"This is the apple application.\n",
        )
        self.assertEqual(response.headers.getRawHeaders(b"X-Demo-Backend"), [b"apple2"])


class HealthTests(DemoTestsMixin, SynchronousTestCase):
    def test_healthz(self) -> None:
        response, body = self.request("GET", "/healthz")
        self.assertEqual((response.code, body), (200, b"ok"))
        self.assertEqual(self.header(response, "X-Demo-Backend"), [b"mango1"])


class EchoTests(DemoTestsMixin, SynchronousTestCase):
    def test_post(self) -> None:
        """
        /echo describes method, URI, headers and the body's length and hash.
        """
        data = b"hello world" * 1000
        response, body = self.request(
            "POST",
            "/echo/sub/path?q=1",
            data=data,
            headers={"X-One": ["a", "b"], "X-Two": ["c"]},
        )
        self.assertEqual(response.code, 200)
        self.assertEqual(self.header(response, "Content-Type"), [b"application/json"])
        self.assertEqual(self.header(response, "X-Demo-Backend"), [b"mango1"])
        echo = json.loads(body)
        self.assertEqual(echo["method"], "POST")
        self.assertEqual(echo["uri"], "/echo/sub/path?q=1")
        self.assertEqual(echo["body_length"], len(data))
        self.assertEqual(echo["body_sha256"], hashlib.sha256(data).hexdigest())
        pairs = [(name.lower(), value) for name, value in echo["headers"]]
        self.assertIn(("x-one", "a"), pairs)
        self.assertLess(pairs.index(("x-one", "a")), pairs.index(("x-one", "b")))
        self.assertIn(("x-two", "c"), pairs)
        self.assertIn(("host", "demo.test"), pairs)

    def test_anyMethod(self) -> None:
        """
        /echo answers methods a normal resource would refuse.
        """
        for method in ("GET", "PUT", "DELETE", "PATCH", "OPTIONS"):
            response, body = self.request(method, "/echo")
            self.assertEqual(response.code, 200)
            echo = json.loads(body)
            self.assertEqual(echo["method"], method)
            self.assertEqual(echo["body_length"], 0)
            self.assertEqual(echo["body_sha256"], hashlib.sha256(b"").hexdigest())


class BytesTests(DemoTestsMixin, SynchronousTestCase):
    def test_contentLength(self) -> None:
        """
        /bytes/N sends N pattern bytes with a Content-Length.
        """
        n = 3 * CHUNK_SIZE + 17
        response, body = self.request("GET", "/bytes/%d" % (n,))
        self.assertEqual(response.code, 200)
        # Agent moves Content-Length into response.length.
        self.assertEqual(response.length, n)
        self.assertEqual(self.header(response, "X-Demo-Backend"), [b"mango1"])
        self.assertEqual(body, patternBytes(0, n))
        self.assertEqual(body[:3], b"\x00\x01\x02")
        self.assertEqual(body[256:259], b"\x00\x01\x02")

    def test_chunked(self) -> None:
        """
        With C{?chunked=1} no Content-Length is sent, so HTTP/1.1 gets
        chunked encoding.
        """
        response, body = self.request("GET", "/bytes/1000?chunked=1")
        self.assertEqual(response.code, 200)
        self.assertEqual(response.length, UNKNOWN_LENGTH)
        self.assertEqual(body, patternBytes(0, 1000))

    def test_zero(self) -> None:
        response, body = self.request("GET", "/bytes/0")
        self.assertEqual((response.code, body), (200, b""))
        self.assertEqual(response.length, 0)

    def test_head(self) -> None:
        """
        HEAD announces the length and sends nothing.
        """
        response, body = self.request("HEAD", "/bytes/5000000")
        self.assertEqual((response.code, body), (200, b""))
        self.assertEqual(self.header(response, "Content-Length"), [b"5000000"])

    def test_bad(self) -> None:
        for path in ("/bytes", "/bytes/x", "/bytes/-1", "/bytes/1/2"):
            response, body = self.request("GET", path)
            self.assertEqual(response.code, 400, path)

    def test_patternBytes(self) -> None:
        self.assertEqual(patternBytes(254, 4), b"\xfe\xff\x00\x01")
        self.assertEqual(len(patternBytes(10, 1000)), 1000)


class _FakeRequest:
    """
    Enough of a request for L{_PatternProducer}: records writes and pauses
    its producer after each one when C{pauseAfterWrite} is set.
    """

    def __init__(self, pauseAfterWrite: bool) -> None:
        self.pauseAfterWrite = pauseAfterWrite
        self.written: List[bytes] = []
        self.producer = None
        self.finished = False
        self.finishNotifications = []

    def notifyFinish(self):
        from twisted.internet.defer import Deferred

        d = Deferred()
        self.finishNotifications.append(d)
        return d

    def registerProducer(self, producer, streaming: bool) -> None:
        assert streaming
        self.producer = producer

    def unregisterProducer(self) -> None:
        self.producer = None

    def write(self, data: bytes) -> None:
        self.written.append(data)
        if self.pauseAfterWrite:
            self.producer.pauseProducing()

    def finish(self) -> None:
        self.finished = True


class PatternProducerTests(SynchronousTestCase):
    def test_backpressure(self) -> None:
        """
        The producer stops writing when paused and goes on when resumed.
        """
        request = _FakeRequest(pauseAfterWrite=True)
        _PatternProducer(request, 2 * CHUNK_SIZE + 5).start()
        self.assertEqual([len(c) for c in request.written], [CHUNK_SIZE])
        request.producer.resumeProducing()
        self.assertEqual(len(request.written), 2)
        self.assertFalse(request.finished)
        request.producer.resumeProducing()
        self.assertEqual(len(request.written[2]), 5)
        self.assertTrue(request.finished)
        self.assertIsNone(request.producer)
        self.assertEqual(b"".join(request.written), patternBytes(0, 2 * CHUNK_SIZE + 5))

    def test_stop(self) -> None:
        """
        After C{stopProducing} (the client went away) nothing more is
        written and the request is not finished.
        """
        request = _FakeRequest(pauseAfterWrite=True)
        producer = _PatternProducer(request, 10 * CHUNK_SIZE)
        producer.start()
        producer.stopProducing()
        producer.resumeProducing()
        self.assertEqual(len(request.written), 1)
        self.assertFalse(request.finished)

    def test_clientGone(self) -> None:
        """
        A failed finish notification stops the producer.
        """
        request = _FakeRequest(pauseAfterWrite=True)
        producer = _PatternProducer(request, 10 * CHUNK_SIZE)
        producer.start()
        request.finishNotifications[0].errback(Exception("gone"))
        producer.resumeProducing()
        self.assertEqual(len(request.written), 1)


class StatusTests(DemoTestsMixin, SynchronousTestCase):
    def test_codes(self) -> None:
        for code in (200, 201, 404, 418, 500, 503):
            response, body = self.request("GET", "/status/%d" % (code,))
            self.assertEqual(response.code, code)
            self.assertEqual(body, b"status %d\n" % (code,))
            self.assertEqual(self.header(response, "X-Demo-Backend"), [b"mango1"])

    def test_anyMethod(self) -> None:
        response, body = self.request("POST", "/status/202", data=b"x")
        self.assertEqual(response.code, 202)

    def test_bad(self) -> None:
        for path in ("/status", "/status/abc", "/status/99", "/status/600"):
            response, body = self.request("GET", path)
            self.assertEqual(response.code, 400, path)


class SlowTests(DemoTestsMixin, SynchronousTestCase):
    def test_delay(self) -> None:
        """
        /slow/SECONDS answers once the clock has advanced that far.
        """
        d = self.stub.get(BASE + "/slow/5")
        self.stub.flush()
        self.assertNoResult(d)
        self.clock.advance(4.9)
        self.stub.flush()
        self.assertNoResult(d)
        self.clock.advance(0.2)
        self.stub.flush()
        response = self.successResultOf(d)
        self.assertEqual(response.code, 200)
        self.assertEqual(response.headers.getRawHeaders(b"X-Demo-Backend"), [b"mango1"])
        self.assertEqual(self.successResultOf(self.stub.content(response)), b"slept 5\n")
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_clientGoesAway(self) -> None:
        """
        When the client disconnects, the pending answer is cancelled.
        """
        d = self.stub.get(BASE + "/slow/30")
        self.stub.flush()
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        d.cancel()
        self.stub.flush()
        self.failureResultOf(d)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_bad(self) -> None:
        for path in ("/slow", "/slow/x", "/slow/-1", "/slow/99999"):
            response, body = self.request("GET", path)
            self.assertEqual(response.code, 400, path)
        self.assertEqual(self.clock.getDelayedCalls(), [])


class CookiesTests(DemoTestsMixin, SynchronousTestCase):
    def test_threeCookies(self) -> None:
        response, body = self.request("GET", "/cookies")
        self.assertEqual(response.code, 200)
        cookies = self.header(response, "Set-Cookie")
        self.assertEqual(len(cookies), 3)
        self.assertEqual(len(set(c.split(b"=")[0] for c in cookies)), 3)


class DieTests(DemoTestsMixin, SynchronousTestCase):
    def test_truncated(self) -> None:
        """
        /die announces more than it sends and closes the connection: the
        client gets the headers, then a failed body.
        """
        d = self.stub.get(BASE + "/die")
        self.stub.flush()
        response = self.successResultOf(d)
        self.assertEqual(response.code, 200)
        self.assertEqual(response.length, DIE_ANNOUNCED_LENGTH)
        self.assertEqual(response.headers.getRawHeaders(b"X-Demo-Backend"), [b"mango1"])
        failure = self.failureResultOf(self.stub.content(response), ResponseFailed)
        self.assertIsInstance(failure.value, ResponseFailed)
