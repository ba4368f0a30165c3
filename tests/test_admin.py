"""
Tests for L{lbproxy.admin}: the admin site's mount table, C{/api/status}
and the admin API's authentication, validation and error codes, in
memory through L{treq.testing.StubTreq} on a L{ProxyHarness}.
"""

from __future__ import annotations

import json

from treq.testing import StubTreq
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.resource import Resource

from lbproxy.admin.auth import authorized, bearer_token
from lbproxy.admin.mounts import PAGES
from lbproxy.admin.root import AdminRoot, admin_site
from lbproxy.admin.status import status_snapshot
from lbproxy.testing import ProxyHarness

TOKEN = "s3cret-token-0123456789"


def config(**admin):
    return {
        "server": {"listen": "tcp:8080", "access_log": False},
        "admin": dict({"token": TOKEN}, **admin),
        "pools": {
            "web": {"targets": ["10.0.0.1:80", {"address": "10.0.0.2:80", "weight": 3}]},
            "api": {"targets": ["10.0.1.1:80"]},
        },
        "routes": [{"path": "/api", "pool": "api"}, {"path": "/", "pool": "web"}],
    }


class AdminTestCase(SynchronousTestCase):
    def setUp(self):
        self.harness = ProxyHarness(config())
        self.core = self.harness.core
        self.core.listeners = ("tcp:8080",)
        self.root = AdminRoot(self.core, self.harness.reactor, PAGES)
        self.stub = StubTreq(self.root)

    def call(self, method, path, body=None, token=TOKEN, raw=None):
        headers = {}
        if token is not None:
            headers[b"Authorization"] = [b"Bearer " + token.encode("ascii")]
        data = raw if raw is not None else (
            json.dumps(body).encode("utf-8") if body is not None else None
        )
        d = self.stub.request(method, "http://admin" + path, headers=headers, data=data)
        self.stub.flush()
        response = self.successResultOf(d)
        content = self.successResultOf(response.content())
        try:
            parsed = json.loads(content)
        except ValueError:
            parsed = content
        return response.code, response.headers, parsed


class MountTests(AdminTestCase):
    """
    Pages are mounted from a table of factories.
    """

    def test_mountedPage(self):
        """
        A factory in the table is called once with the core and the
        reactor, and its resource answers under its segment.
        """
        calls = []

        class Page(Resource):
            isLeaf = True

            def render_GET(self, request):
                return b"metrics here"

        def factory(core, reactor):
            calls.append((core, reactor))
            return Page()

        pages = dict(PAGES, **{"metrics": None})
        del pages["metrics"]
        pages[b"metrics"] = factory
        stub = StubTreq(AdminRoot(self.core, self.harness.reactor, pages))
        d = stub.get("http://admin/metrics")
        stub.flush()
        self.assertEqual(self.successResultOf(self.successResultOf(d).content()),
                         b"metrics here")
        self.assertEqual(calls, [(self.core, self.harness.reactor)])

    def test_rootLists(self):
        """
        Without a page at C{/}, C{GET /} lists the mounted pages.
        """
        pages = {segment: page for segment, page in PAGES.items() if segment != b""}
        self.stub = StubTreq(AdminRoot(self.core, self.harness.reactor, pages))
        code, _, body = self.call("GET", "/", token=None)
        self.assertEqual((code, body), (200, {"pages": ["/api", "/events", "/metrics"]}))

    def test_unknownPage(self):
        code, _, body = self.call("GET", "/nothing", token=None)
        self.assertEqual(code, 404)
        self.assertIn("error", body)

    def test_site(self):
        """
        L{admin_site} serves the root on the given reactor, without
        tracebacks.
        """
        site = admin_site(self.core, self.harness.reactor, PAGES)
        self.assertIsInstance(site.resource, AdminRoot)
        self.assertFalse(site.displayTracebacks)


class StatusTests(AdminTestCase):
    """
    C{GET /api/status} and the pure L{status_snapshot}.
    """

    def test_snapshot(self):
        """
        Listeners, routes, pools with each target's state, weights,
        counters and last change, the configuration's checksum and load
        time.
        """
        self.harness.reactor.advance(5)
        status = status_snapshot(self.core, 5.0)
        self.assertEqual(status["listeners"], ["tcp:8080"])
        self.assertEqual(
            status["routes"],
            [{"host": None, "path": "/api", "pool": "api"},
             {"host": None, "path": "/", "pool": "web"}],
        )
        web = status["pools"]["web"]["targets"]
        self.assertEqual([t["address"] for t in web], ["10.0.0.1:80", "10.0.0.2:80"])
        second = web[1]
        self.assertEqual(
            {k: second[k] for k in ("state", "up", "weight", "effective_weight", "inflight",
                                    "requests", "failures", "last_reason")},
            {"state": "up", "up": True, "weight": 3, "effective_weight": 3, "inflight": 0,
             "requests": 0, "failures": 0, "last_reason": "start-up"},
        )
        self.assertEqual(len(status["config"]["checksum"]), 16)
        self.assertEqual(status["config"]["loaded_at"], 0.0)
        self.assertEqual(status["api_changes"], [])
        json.dumps(status)

    def test_counts(self):
        """
        A request forwarded to a target counts in its requests and
        in-flight numbers.
        """
        client = self.harness.client()
        client.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        backend = self.harness.accept()
        web = status_snapshot(self.core, 0)["pools"]["web"]["targets"]
        self.assertEqual(
            {t["address"]: (t["requests"], t["inflight"]) for t in web},
            {"10.0.0.1:80": (0, 0), "10.0.0.2:80": (0, 0), backend.address: (1, 1)},
        )

    def test_noTokenNeeded(self):
        code, headers, body = self.call("GET", "/api/status", token=None)
        self.assertEqual(code, 200)
        self.assertEqual(headers.getRawHeaders(b"content-type"), [b"application/json"])
        self.assertEqual(sorted(body["pools"]), ["api", "web"])

    def test_wrongMethod(self):
        code, headers, body = self.call("POST", "/api/status")
        self.assertEqual(code, 405)
        self.assertEqual(headers.getRawHeaders(b"allow"), [b"GET"])


class AuthTests(SynchronousTestCase):
    """
    The bearer token.
    """

    def test_bearer(self):
        self.assertEqual(bearer_token(b"Bearer abc"), b"abc")
        self.assertEqual(bearer_token(b"bearer  abc "), b"abc")
        self.assertIsNone(bearer_token(b"Basic abc"))
        self.assertIsNone(bearer_token(b"Bearer "))
        self.assertIsNone(bearer_token(None))

    def test_authorized(self):
        class Request:
            def __init__(self, value):
                self.value = value

            def getHeader(self, name):
                return self.value

        self.assertTrue(authorized(Request(b"Bearer " + TOKEN.encode()), TOKEN))
        self.assertFalse(authorized(Request(b"Bearer " + TOKEN.encode() + b"x"), TOKEN))
        self.assertFalse(authorized(Request(None), TOKEN))
        self.assertFalse(authorized(Request(b"Bearer x"), ""))
