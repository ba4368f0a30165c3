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


class ApiErrorTests(AdminTestCase):
    """
    Every error code of the admin API, as JSON naming what is wrong.
    """

    def test_noToken(self):
        for method, path in [("POST", "/api/reload"), ("POST", "/api/pools/web/targets"),
                             ("DELETE", "/api/pools/web/targets/10.0.0.1:80"),
                             ("POST", "/api/pools/web/targets/10.0.0.1:80/drain")]:
            code, headers, body = self.call(method, path, {"address": "10.0.0.9:80"},
                                            token=None)
            self.assertEqual(code, 401, path)
            self.assertEqual(headers.getRawHeaders(b"www-authenticate"),
                             [b'Bearer realm="lbproxy"'])
            self.assertIn("token", body["error"])
        self.assertEqual(len(self.core.runtime.pools["web"].members), 2)

    def test_wrongToken(self):
        code, _, _ = self.call("POST", "/api/pools/web/targets", {"address": "10.0.0.9:80"},
                               token=TOKEN + "x")
        self.assertEqual(code, 401)
        code, _, _ = self.call("POST", "/api/pools/web/targets", {"address": "10.0.0.9:80"},
                               token=TOKEN[:-1])
        self.assertEqual(code, 401)

    def test_badJSON(self):
        code, _, body = self.call("POST", "/api/pools/web/targets", raw=b"{nope")
        self.assertEqual((code, body["field"]), (400, "body"))
        code, _, body = self.call("POST", "/api/pools/web/targets", raw=b"[1]")
        self.assertEqual((code, body["field"]), (400, "body"))

    def test_unknownKey(self):
        code, _, body = self.call("POST", "/api/pools/web/targets",
                                  {"address": "10.0.0.9:80", "wieght": 2})
        self.assertEqual((code, body["field"]), (400, "wieght"))

    def test_badAddress(self):
        for address in ["10.0.0.9", "10.0.0.9:99999", "ftp://x:1", 7, ""]:
            code, _, body = self.call("POST", "/api/pools/web/targets", {"address": address})
            self.assertEqual((code, body["field"]), (400, "address"), address)

    def test_missingAddress(self):
        code, _, body = self.call("POST", "/api/pools/web/targets", {"weight": 2})
        self.assertEqual((code, body["field"]), (400, "address"))

    def test_badWeight(self):
        for weight in [0, 1001, "2", True, 1.5]:
            code, _, body = self.call("PUT", "/api/pools/web/targets/10.0.0.1:80",
                                      {"weight": weight})
            self.assertEqual((code, body["field"]), (400, "weight"), weight)

    def test_unknownPool(self):
        code, _, body = self.call("POST", "/api/pools/nope/targets", {"address": "1.2.3.4:80"})
        self.assertEqual((code, body["field"]), (404, "pool"))
        code, _, body = self.call("GET", "/api/pools/nope/targets", token=None)
        self.assertEqual(code, 404)

    def test_unknownTarget(self):
        for method, suffix in [("DELETE", ""), ("POST", "/drain"), ("POST", "/enable"),
                               ("GET", "")]:
            code, _, body = self.call(method, "/api/pools/web/targets/10.9.9.9:80" + suffix)
            self.assertEqual((code, body["field"]), (404, "address"), (method, suffix))

    def test_unknownPath(self):
        for path in ["/api", "/api/", "/api/nothing", "/api/pools/web", "/api/pools/web/x"]:
            code, _, _ = self.call("GET", path)
            self.assertEqual(code, 404, path)

    def test_wrongMethods(self):
        for method, path, allow in [
            ("GET", "/api/reload", b"POST"),
            ("PATCH", "/api/pools/web/targets/10.0.0.1:80", b"DELETE, GET, PUT"),
            ("DELETE", "/api/pools/web/targets", b"GET, POST"),
            ("GET", "/api/pools/web/targets/10.0.0.1:80/drain", b"POST"),
        ]:
            code, headers, _ = self.call(method, path)
            self.assertEqual(code, 405, path)
            self.assertEqual(headers.getRawHeaders(b"allow"), [allow])

    def test_duplicate(self):
        code, _, body = self.call("POST", "/api/pools/web/targets", {"address": "10.0.0.1:80"})
        self.assertEqual((code, body["field"]), (409, "address"))

    def test_lastTarget(self):
        code, _, _ = self.call("DELETE", "/api/pools/api/targets/10.0.1.1:80")
        self.assertEqual(code, 409)


class ApiChangeTests(AdminTestCase):
    """
    Changes through the API reach traffic at once, are logged, are kept
    across reloads of the file and are shown apart in the status.
    """

    def setUp(self):
        AdminTestCase.setUp(self)
        from twisted.logger import globalLogPublisher, formatEvent

        self.logged = []
        observer = lambda event: self.logged.append(formatEvent(event))
        globalLogPublisher.addObserver(observer)
        self.addCleanup(globalLogPublisher.removeObserver, observer)

    def send(self, path=b"/api/x", port=50000):
        client = self.harness.client(port=port)
        client.send(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        backend = self.harness.accept()
        backend.respond(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        return backend.address

    def test_addDrainEnableRemove(self):
        code, _, body = self.call("POST", "/api/pools/api/targets",
                                  {"address": "10.0.1.2:80", "weight": 2})
        self.assertEqual((code, body["added"]), (201, True))
        self.assertTrue(any("added target 10.0.1.2:80 (weight 2)" in line
                            for line in self.logged))
        seen = [self.send(port=50000 + i) for i in range(6)]
        self.assertEqual(seen.count("10.0.1.2:80"), 4)

        code, _, body = self.call("POST", "/api/pools/api/targets/10.0.1.1:80/drain")
        self.assertEqual((code, body["state"]), (200, "draining"))
        self.assertEqual({self.send(port=50100 + i) for i in range(4)}, {"10.0.1.2:80"})

        code, _, body = self.call("POST", "/api/pools/api/targets/10.0.1.1:80/enable")
        self.assertEqual((code, body["state"]), (200, "up"))
        self.assertIn("10.0.1.1:80", {self.send(port=50200 + i) for i in range(3)})

        code, _, body = self.call("DELETE", "/api/pools/api/targets/10.0.1.2:80")
        self.assertEqual((code, body["removed"]), (200, True))
        self.assertEqual({self.send(port=50300 + i) for i in range(3)}, {"10.0.1.1:80"})
        self.assertEqual(self.core.overrides.describe(), [])

    def test_keptAcrossReload(self):
        """
        After a reload of the file, targets added, weights set and drains
        made through the API are still there, and the status shows them
        apart from the file's settings.
        """
        self.call("POST", "/api/pools/web/targets", {"address": "10.0.0.5:80"})
        self.call("PUT", "/api/pools/web/targets/10.0.0.1:80", {"weight": 7})
        self.call("POST", "/api/pools/web/targets/10.0.0.2:80/drain")
        self.call("DELETE", "/api/pools/api/targets/10.0.1.1:80")  # refused: last
        from lbproxy.config import parse_config

        self.core.apply(parse_config(config(), "test.toml"))
        members = {m.target.address: m for m in self.core.runtime.pools["web"].members}
        self.assertEqual(sorted(members), ["10.0.0.1:80", "10.0.0.2:80", "10.0.0.5:80"])
        self.assertEqual(members["10.0.0.1:80"].weight, 7)
        self.assertFalse(members["10.0.0.2:80"].state.up)
        code, _, status = self.call("GET", "/api/status", token=None)
        targets = {t["address"]: t for t in status["pools"]["web"]["targets"]}
        self.assertEqual(targets["10.0.0.5:80"]["api"], {"added": True, "weight": 1})
        self.assertEqual(targets["10.0.0.1:80"]["api"], {"weight": 7})
        self.assertEqual(targets["10.0.0.2:80"]["api"], {"drained": True})
        self.assertEqual(targets["10.0.0.2:80"]["state"], "draining")
        self.assertNotIn("api", status["pools"]["api"]["targets"][0])
        self.assertEqual(
            [(c["address"], c["change"]) for c in status["api_changes"]],
            [("10.0.0.5:80", "added"), ("10.0.0.1:80", "weight"), ("10.0.0.2:80", "drained")],
        )

    def test_removeFromFileKept(self):
        """
        A target of the file deleted through the API stays out after a
        reload of the same file.
        """
        self.call("DELETE", "/api/pools/web/targets/10.0.0.2:80")
        from lbproxy.config import parse_config

        self.core.apply(parse_config(config(), "test.toml"))
        self.assertEqual([m.target.address for m in self.core.runtime.pools["web"].members],
                         ["10.0.0.1:80"])

    def test_reload(self):
        """
        C{POST /api/reload} answers the reload's outcome: 200 if applied,
        422 if rejected.
        """
        from twisted.internet.defer import succeed

        outcomes = [{"applied": True}, {"applied": False, "error": "x.toml: a: b"}]
        sources = []

        def reloader(source):
            sources.append(source)
            return succeed(outcomes.pop(0))

        self.core.reloader = reloader
        code, _, body = self.call("POST", "/api/reload")
        self.assertEqual((code, body), (200, {"applied": True}))
        code, _, body = self.call("POST", "/api/reload")
        self.assertEqual(code, 422)
        self.assertEqual(sources, ["admin API", "admin API"])

    def test_adminRemovedByReload(self):
        """
        A reload that removed C{[admin]}: the listener stays until a
        restart, but no token opens the changes any more.
        """
        from lbproxy.config import parse_config

        data = config()
        del data["admin"]
        self.core.apply(parse_config(data, "test.toml"))
        code, _, _ = self.call("POST", "/api/pools/web/targets/10.0.0.1:80/drain")
        self.assertEqual(code, 401)

    def test_protectReads(self):
        """
        With C{protect_reads}, reads need the token too.
        """
        from lbproxy.config import parse_config

        self.core.apply(parse_config(config(protect_reads=True), "test.toml"))
        self.assertEqual(self.call("GET", "/api/status", token=None)[0], 401)
        self.assertEqual(self.call("GET", "/api/status", token="x" * 20)[0], 401)
        self.assertEqual(self.call("GET", "/api/status")[0], 200)
        self.assertEqual(self.call("GET", "/api/pools/web/targets", token=None)[0], 401)

    def test_reloadUnavailable(self):
        code, _, _ = self.call("POST", "/api/reload")
        self.assertEqual(code, 503)


class CachePurgeTests(SynchronousTestCase):
    """
    C{POST /api/cache/purge}: cached responses under a URL prefix are
    dropped.
    """

    def setUp(self):
        self.harness = ProxyHarness({
            "server": {"listen": "tcp:8080", "access_log": False},
            "admin": {"token": TOKEN},
            "cache": {"max_bytes": "1m", "max_object": "64k"},
            "pools": {"web": {"targets": ["10.0.0.1:80"]}},
            "routes": [{"pool": "web", "cache": True}],
        })
        self.stub = StubTreq(AdminRoot(self.harness.core, self.harness.reactor, PAGES))

    def get(self, path):
        client = self.harness.client()
        client.send(b"GET " + path + b" HTTP/1.1\r\nHost: WWW.Example.com\r\n\r\n")
        if self.harness.pending():
            self.backend = self.harness.accept()
        if not client.received():
            # A miss: the backend (on its kept-alive connection) answers.
            self.backend.respond(
                b"HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nContent-Length: 2\r\n\r\nok"
            )
        response = client.received()
        return response.split(b"X-Cache: ", 1)[1].split(b"\r\n", 1)[0]

    def purge(self, body, token=TOKEN):
        headers = {b"Authorization": [b"Bearer " + token.encode("ascii")]}
        d = self.stub.request("POST", "http://admin/api/cache/purge", headers=headers,
                              data=json.dumps(body).encode("utf-8"))
        self.stub.flush()
        response = self.successResultOf(d)
        return response.code, json.loads(self.successResultOf(response.content()))

    def test_purge(self):
        """
        Entries under the prefix (host compared in any case) are removed
        and fetched again; others stay.
        """
        self.assertEqual(self.get(b"/static/a.css"), b"MISS")
        self.assertEqual(self.get(b"/static/b.css"), b"MISS")
        self.assertEqual(self.get(b"/page"), b"MISS")
        self.assertEqual(self.get(b"/static/a.css"), b"HIT")
        code, body = self.purge({"prefix": "http://www.EXAMPLE.com/static/"})
        self.assertEqual((code, body["purged"]), (200, 2))
        self.assertEqual(self.get(b"/static/a.css"), b"MISS")
        self.assertEqual(self.get(b"/page"), b"HIT")

    def test_errors(self):
        """
        The token is required; the prefix must be a URL; unknown fields
        are refused.
        """
        code, body = self.purge({"prefix": "http://x/"}, token="wrong-token-000000000")
        self.assertEqual(code, 401)
        code, body = self.purge({"prefix": "/static"})
        self.assertEqual((code, body["field"]), (400, "prefix"))
        code, body = self.purge({"prefix": "http://x/", "all": True})
        self.assertEqual((code, body["field"]), (400, "all"))
        code, body = self.purge({})
        self.assertEqual((code, body["field"]), (400, "prefix"))

    def test_noCache(self):
        """
        Without a cache: 404.
        """
        harness = ProxyHarness(config())
        self.stub = StubTreq(AdminRoot(harness.core, harness.reactor, PAGES))
        code, body = self.purge({"prefix": "http://x/"})
        self.assertEqual(code, 404)


class BalancingStatusTests(SynchronousTestCase):
    """
    The status shows score-driven weights and split routes.
    """

    def test_scoresAndSplit(self):
        harness = ProxyHarness({
            "server": {"listen": "tcp:8080", "access_log": False},
            "pools": {
                "stable": {"targets": ["10.0.0.1:80", "10.0.0.2:80"],
                           "weights": {"from": "latency"}},
                "canary": {"targets": ["10.0.1.1:80"]},
            },
            "routes": [{"split": [{"pool": "stable", "weight": 90},
                                  {"pool": "canary", "weight": 10}]}],
        })
        snapshot = status_snapshot(harness.core, harness.reactor.seconds())
        self.assertEqual(
            snapshot["routes"][0]["split"],
            [{"pool": "stable", "weight": 90}, {"pool": "canary", "weight": 10}],
        )
        [first, second] = snapshot["pools"]["stable"]["targets"]
        self.assertIn("score", first)
        self.assertEqual(first["effective_weight"], 1)
        self.assertNotIn("score", snapshot["pools"]["canary"]["targets"][0])
