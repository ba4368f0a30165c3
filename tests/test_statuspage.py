"""
Tests for the live status page (L{lbproxy.observe.statuspage},
L{lbproxy.observe.statushtml}) in memory: the page, its event stream and
the numbers in its frames after scripted requests.  The page in a real
browser: tests/e2e/test_statuspage_e2e.py.
"""

from __future__ import annotations

import json
import re

from treq.testing import StubTreq
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.test.requesthelper import DummyRequest

from lbproxy.admin.mounts import PAGES
from lbproxy.admin.root import AdminRoot
from lbproxy.observe.statushtml import render_page
from lbproxy.observe.statuspage import StatusEvents, StatusSampler
from lbproxy.testing import ProxyHarness

CONFIG = {
    "server": {"listen": "tcp:8080", "access_log": False, "response_timeout": 10.0},
    "admin": {"token": "s3cret-token-0123456789"},
    "health": {"passive_fail": 1, "ejection_time": 30},
    "pools": {"web": {"targets": ["10.0.0.1:80", {"address": "10.0.0.2:80", "weight": 3}]}},
    "routes": [{"path": "/", "pool": "web"}],
}
# (Connection: close: every request opens a connection the test accepts.)
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
BAD = b"HTTP/1.1 500 Oops\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


def frame_of(data: bytes):
    assert data.startswith(b"data: ") or b"\ndata: " in data, data
    line = [l for l in data.split(b"\n") if l.startswith(b"data: ")][-1]
    return json.loads(line[len(b"data: "):])


def targets(frame):
    return {t["address"]: t for t in frame["pools"]["web"]["targets"]}


class StatusTests(SynchronousTestCase):
    def setUp(self):
        self.proxy = ProxyHarness(CONFIG)
        self.core = self.proxy.core
        self.core.listeners = ("tcp:8080",)
        self.reactor = self.proxy.reactor
        self.reactor.advance(1000)
        self.sampler = StatusSampler(self.core, self.reactor)
        self.addCleanup(self.sampler.stop)

    def request(self, response=OK, wait=0.02):
        client = self.proxy.client()
        client.send(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        backend = self.proxy.accept()
        self.reactor.advance(wait)
        backend.respond(response)

    def test_page(self):
        """
        C{GET /} on the admin root is one HTML document with its frame in
        it, no external asset, and a policy that allows none.
        """
        stub = StubTreq(AdminRoot(self.core, self.reactor, PAGES))
        response = self.successResultOf(stub.get("http://admin/"))
        body = self.successResultOf(response.content()).decode("utf-8")
        stub.flush()
        self.assertEqual(response.headers.getRawHeaders("content-type"),
                         ["text/html; charset=utf-8"])
        self.assertIn("default-src 'none'",
                      response.headers.getRawHeaders("content-security-policy")[0])
        self.assertIn('<meta name="viewport"', body)
        self.assertNotRegex(body, r"<link|\ssrc=|@import|url\(")
        initial = re.search(
            r'<script id="initial" type="application/json">(.*?)</script>', body, re.S
        ).group(1)
        template = body.replace(initial, "")
        self.assertEqual(re.findall(r"https?://[^\s\"']+", template),
                         ["http://www.w3.org/2000/svg"])
        frame = json.loads(initial)
        self.assertEqual(sorted(targets(frame)), ["10.0.0.1:80", "10.0.0.2:80"])
        self.assertEqual(frame["listeners"], ["tcp:8080"])
        self.assertEqual(frame["routes"], [{"host": None, "path": "/", "pool": "web"}])
        self.assertEqual(len(frame["config"]["checksum"]), 16)
        for segment in (b"", b"events", b"metrics"):
            self.assertIn(segment, PAGES)
        # The page started the sampler; stop it (it runs for the process).
        from lbproxy.observe.statuspage import sampler_for

        sampler_for(self.core, self.reactor).stop()

    def test_escaped(self):
        """
        No text in a frame can end the script element it is embedded in.
        """
        page = render_page({"x": "</script><script>alert(1)</script>&"}).decode()
        self.assertNotIn("<script>alert", page)
        self.assertEqual(page.count("</script>"), 2)

    def test_stream(self):
        """
        C{GET /events}: a frame at once, then one a second, until the
        client goes away.
        """
        events = StatusEvents(self.sampler)
        request = DummyRequest([b"events"])
        events.render_GET(request)
        self.assertEqual(request.responseHeaders.getRawHeaders(b"content-type"),
                         [b"text/event-stream; charset=utf-8"])
        self.assertTrue(request.written[0].startswith(b"retry: 2000\n\ndata: {"))
        self.assertEqual(len(request.written), 1)
        self.reactor.advance(1)
        self.assertEqual(len(request.written), 2)
        request.finish()
        self.reactor.advance(1)
        self.assertEqual(len(request.written), 2)
        self.assertEqual(self.sampler.subscribers, set())

    def test_brokenStream(self):
        """
        A stream whose write fails is dropped; sampling and the other
        streams go on.
        """
        events = StatusEvents(self.sampler)
        broken, good = DummyRequest([b"events"]), DummyRequest([b"events"])
        events.render_GET(broken)
        events.render_GET(good)

        def fail(data):
            raise RuntimeError("gone")

        broken.write = fail
        self.reactor.advance(1)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.reactor.advance(1)
        self.assertEqual(len(good.written), 3)
        self.assertEqual(self.sampler.subscribers, {good})
        good.finish()

    def test_numbers(self):
        """
        After ten seconds of requests, a frame has each target's request
        rate, error rate, latencies and sparkline.
        """
        self.sampler.start()
        for second in range(10):
            # Smooth weighted round robin: 3 to the second (the first
            # request, a 500, among them), 1 to the first.
            for n in range(4):
                self.request(BAD if (second, n) == (0, 0) else OK, wait=0.02)
            self.reactor.advance(1 - 4 * 0.02)
        # (Past the last tick, whatever the float sums above came to.)
        self.reactor.advance(0.01)
        frame = self.sampler.frame()
        first, second = targets(frame)["10.0.0.1:80"], targets(frame)["10.0.0.2:80"]
        self.assertTrue(abs(first["rps"] - 1.0) <= 0.02, first["rps"])
        self.assertTrue(abs(second["rps"] - 3.0) <= 0.02, second["rps"])
        self.assertEqual((first["weight"], second["weight"]), (1, 3))
        self.assertEqual(first["error_rate"], 0.0)
        self.assertEqual(second["error_rate"], round(1 / 30, 4))
        self.assertEqual(first["state"], "up")
        # All took 20 ms: in the (10, 25] ms bucket.
        self.assertTrue(10 < second["p50_ms"] <= 25, second["p50_ms"])
        self.assertTrue(10 < second["p99_ms"] <= 25, second["p99_ms"])
        self.assertEqual(second["spark_requests"][-9:], [3] * 9)
        self.assertEqual(sum(second["spark_errors"]), 1)
        self.assertEqual(sum(first["spark_errors"]), 0)

    def test_down(self):
        """
        A target that refused (the first pick: the heavier one) is ejected
        in the next frame, with the reason of its change.
        """
        events = StatusEvents(self.sampler)
        request = DummyRequest([b"events"])
        events.render_GET(request)
        client = self.proxy.client()
        client.send(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        self.proxy.refuse()
        self.proxy.accept().respond(OK)
        self.reactor.advance(1)
        target = targets(frame_of(request.written[-1]))["10.0.0.2:80"]
        self.assertEqual(target["state"], "ejected")
        self.assertIn("ejected for 30s after 1 connection failure", target["last_reason"])
        request.finish()


class ProtectedReadTests(SynchronousTestCase):
    """
    With C{[admin] protect_reads}, the page, its stream and C{/metrics}
    need the bearer token, like C{GET /api/status}.
    """

    def setUp(self):
        settings = dict(CONFIG, admin=dict(CONFIG["admin"], protect_reads=True))
        self.proxy = ProxyHarness(settings)
        self.core = self.proxy.core
        self.core.listeners = ("tcp:8080",)
        self.stub = StubTreq(AdminRoot(self.core, self.proxy.reactor, PAGES))

    def get(self, path, token=None):
        headers = {b"Authorization": [b"Bearer " + token.encode()]} if token else {}
        response = self.successResultOf(self.stub.get("http://admin" + path, headers=headers))
        return response

    def test_refused(self):
        for path in ("/", "/events", "/metrics"):
            response = self.get(path)
            self.assertEqual(response.code, 401, path)
            self.assertEqual(response.headers.getRawHeaders("www-authenticate"),
                             ['Bearer realm="lbproxy"'])

    def test_allowed(self):
        from lbproxy.observe.statuspage import sampler_for

        self.addCleanup(sampler_for(self.core, self.proxy.reactor).stop)
        token = CONFIG["admin"]["token"]
        self.assertEqual(self.get("/metrics", token).code, 200)
        self.assertEqual(self.get("/", token).code, 200)
