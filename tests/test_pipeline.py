"""
The request pipeline: chains built once per route with only the stages the
route needs, local answers through the response hooks, and the chain
mechanics themselves.
"""

from __future__ import annotations

from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from lbproxy.config import parse_config
from lbproxy.pipeline.chain import Chain, Stage, Terminal
from lbproxy.pipeline.context import LocalReply
from lbproxy.pipeline.order import ORDER
from lbproxy.runtime.services import Services
from lbproxy.runtime.snapshot import Runtime
from lbproxy.runtime.targets import TargetRegistry
from lbproxy.testing import ProxyHarness

CONFIG = {
    "server": {"request_id_header": "X-Request-Id"},
    "rate_limit": {"rate": 1.0, "burst": 1},
    "pools": {"web": {"targets": ["10.1.0.1:80"]}},
    "routes": [
        {"path": "/plain", "pool": "web"},
        {
            "path": "/api",
            "pool": "web",
            "strip_prefix": True,
            "cors": {"origins": ["https://app.example"]},
            "headers": {"response_set": {"X-Served-By": "{target}"}},
            "access": {"deny": ["192.0.2.66"]},
            "max_body_size": 1000,
        },
    ],
}

OK = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"


def runtime(config=CONFIG, accessLog=None) -> Runtime:
    return Runtime(parse_config(config, "test.toml"), TargetRegistry(),
                   Services(MemoryReactorClock(), accessLog=accessLog))


class ChainBuildTests(SynchronousTestCase):
    """
    Chains are built per route when the runtime is built, from the one
    ordered list.
    """

    def test_routeWithoutFeaturesHasNoStagesForThem(self):
        """
        A route that sets no body limit, under a server that sets none (no
        limit by default), has no body_limit stage.
        """
        chain = runtime().match("h", "/plain").chain
        self.assertEqual(
            chain.names(),
            ("rate_limit", "scan_headers", "request_id", "forwarded"),
        )
        self.assertEqual(chain.terminal.name, "forward")

    def test_serverBodyLimit(self):
        """
        A server-wide max_body_size puts a body_limit stage into every route
        that does not set its own; a route's 0 takes it out again.
        """
        config = dict(CONFIG, server={"max_body_size": "1m"})
        config["routes"] = CONFIG["routes"] + [
            {"path": "/upload", "pool": "web", "max_body_size": 0}
        ]
        built = runtime(config)
        self.assertEqual(
            built.match("h", "/plain").chain.names(),
            ("rate_limit", "scan_headers", "body_limit", "request_id", "forwarded"),
        )
        self.assertNotIn("body_limit", built.match("h", "/upload").chain.names())

    def test_routeWithFeatures(self):
        chain = runtime().match("h", "/api/x").chain
        self.assertEqual(
            chain.names(),
            ("rate_limit", "scan_headers", "cors_detect", "access", "body_limit",
             "cors_preflight", "strip_prefix", "request_id", "header_rules", "forwarded"),
        )

    def test_noOptionalStages(self):
        """
        Without a rate limit, request ids, body limit or access log, a
        route's chain is the header scan and the forwarded headers, and the
        entry chain has only the target checks and the health endpoint (on
        by default).
        """
        config = {
            "server": {"request_id_header": False},
            "pools": {"web": {"targets": ["10.1.0.1:80"]}},
            "routes": [{"pool": "web"}],
        }
        built = runtime(config)
        self.assertEqual(built.match(None, "/").chain.names(), ("scan_headers", "forwarded"))
        self.assertEqual(
            built.entry.names(), ("request_target", "normalize_path", "health_endpoint")
        )
        self.assertEqual(built.unrouted.names(), ())

    def test_entryChain(self):
        config = {
            "server": {"health_endpoint": "/.hc", "trusted_proxies": ["10.0.0.0/8"]},
            "pools": {"web": {"targets": ["10.1.0.1:80"]}},
            "routes": [{"pool": "web", "path": "/a"}],
        }
        built = runtime(config)
        self.assertEqual(
            built.entry.names(),
            ("request_target", "normalize_path", "health_endpoint", "client_address",
             "request_id"),
        )
        self.assertEqual(built.entry.terminal.name, "route")
        self.assertEqual(built.unrouted.terminal.name, "not_found")

    def test_unroutedChainHasGlobalPoliciesOnly(self):
        built = runtime()
        self.assertIsNone(built.match("h", "/nowhere"))
        self.assertEqual(built.unrouted.names(), ("rate_limit", "request_id"))

    def test_globalLimiterShared(self):
        """
        The global rate limiter is one object in every chain: a request
        counts once, whichever route it takes.
        """
        built = runtime()
        limiters = {
            id(stage.limiter)
            for chain in (built.unrouted, built.match("h", "/plain").chain,
                          built.match("h", "/api").chain)
            for stage in chain.stages if stage.name == "rate_limit"
        }
        self.assertEqual(len(limiters), 1)

    def test_chainsBuiltOnce(self):
        """
        The same route gets the same chain object for every request.
        """
        built = runtime()
        self.assertIs(built.match("h", "/plain").chain, built.match("h", "/plain/x").chain)

    def test_orderNamesUnique(self):
        names = [name for name, kinds, factory in ORDER]
        self.assertEqual(len(names), len(set(names)))


class LocalAnswerTests(SynchronousTestCase):
    """
    Local answers go through the same response hooks as forwarded ones.
    """

    def setUp(self):
        self.proxy = ProxyHarness(CONFIG)

    def get(self, path: bytes, headers: bytes = b"", address="192.0.2.1") -> bytes:
        client = self.proxy.client(address=address)
        client.send(b"GET " + path + b" HTTP/1.1\r\nHost: h\r\n" + headers + b"\r\n")
        if self.proxy.pending():
            self.proxy.accept().respond(OK)
        return client.received()

    def test_requestIdOn404(self):
        response = self.get(b"/nowhere")
        self.assertTrue(response.startswith(b"HTTP/1.1 404 "))
        self.assertRegex(response, rb"\r\nX-Request-Id: [0-9a-f]{32}\r\n")
        requestId = response.split(b"X-Request-Id: ")[1].split(b"\r\n")[0].decode()
        self.assertIn(" id=\"" + requestId + "\"", self.proxy.logLines()[-1])

    def test_clientRequestIdKeptOn404(self):
        response = self.get(b"/nowhere", b"X-Request-Id: abc-123\r\n")
        self.assertIn(b"\r\nX-Request-Id: abc-123\r\n", response)
        self.assertIn(" id=\"abc-123\"", self.proxy.logLines()[-1])

    def test_badClientRequestIdReplacedOn404(self):
        response = self.get(b"/nowhere", b"X-Request-Id: a b\r\n")
        self.assertRegex(response, rb"\r\nX-Request-Id: [0-9a-f]{32}\r\n")

    def test_requestIdOn429(self):
        self.assertTrue(self.get(b"/plain").startswith(b"HTTP/1.1 200 "))
        response = self.get(b"/plain", b"X-Request-Id: r-429\r\n")
        self.assertTrue(response.startswith(b"HTTP/1.1 429 "))
        self.assertIn(b"\r\nX-Request-Id: r-429\r\n", response)
        self.assertIn(b"\r\nRetry-After: ", response)
        self.assertIn(" 429 ", self.proxy.logLines()[-1])
        self.assertIn(" id=\"r-429\"", self.proxy.logLines()[-1])

    def test_routeHooksOnLocalAnswer(self):
        """
        A 403 from a route's access rules carries the route's response
        header rules, CORS headers and the request id.
        """
        response = self.get(
            b"/api/x", b"Origin: https://app.example\r\n", address="192.0.2.66"
        )
        self.assertTrue(response.startswith(b"HTTP/1.1 403 "))
        self.assertIn(b"\r\nX-Served-By: \r\n", response)
        self.assertIn(b"\r\nAccess-Control-Allow-Origin: https://app.example\r\n", response)
        self.assertIn(b"\r\nX-Request-Id: ", response)

    def test_requestIdOn400(self):
        response = self.get(b"/a\\b")
        self.assertTrue(response.startswith(b"HTTP/1.1 400 "))
        self.assertIn(b"\r\nX-Request-Id: ", response)

    def test_requestIdOn503(self):
        """
        The exchange's own answers (here 502: the only target refuses) go
        through the route's hooks too.
        """
        client = self.proxy.client()
        client.send(b"GET /plain HTTP/1.1\r\nHost: h\r\nX-Request-Id: r-502\r\n\r\n")
        self.proxy.refuse()
        response = client.received()
        self.assertTrue(response.startswith(b"HTTP/1.1 502 "), response)
        self.assertIn(b"\r\nX-Request-Id: r-502\r\n", response)
        self.assertIn(" id=\"r-502\"", self.proxy.logLines()[-1])


class _Recorder(Stage):
    def __init__(self, name, log, answer=None):
        self.name = name
        self._log = log
        self._answer = answer

    def request(self, context):
        self._log.append(("request", self.name))
        return self._answer

    def responseHead(self, context, headers):
        self._log.append(("head", self.name))
        return headers + [(b"X-" + self.name.encode(), b"1")]

    def done(self, context):
        self._log.append(("done", self.name))


class _HeadOnly(Stage):
    name = "head_only"

    def responseHead(self, context, headers):
        return headers


class _Terminal(Terminal):
    name = "t"

    def __init__(self, log):
        self._log = log

    def __call__(self, context):
        self._log.append(("terminal",))


class _Request:
    """
    The little of a request L{Chain.reply} touches, through local_response.
    """

    bodyComplete = True

    def __init__(self):
        from twisted.web.http_headers import Headers

        self.responseHeaders = Headers()
        self.code = None
        self.written = b""
        self.finished = False
        self.closed = False

    def setResponseCode(self, code, phrase):
        self.code = code

    def closeAfterResponse(self):
        self.closed = True

    def write(self, data):
        self.written += data

    def finish(self):
        self.finished = True


class _Context:
    def __init__(self):
        self.request = _Request()
        self.chain = None
        self.status = 0
        self.sent = 0


class ChainTests(SynchronousTestCase):
    def test_partsCollected(self):
        """
        A stage without a part is left out of that tuple.
        """
        log = []
        chain = Chain([_Recorder("a", log), _HeadOnly()], _Terminal(log))
        self.assertEqual(len(chain.steps), 1)
        self.assertEqual(len(chain.headHooks), 2)
        self.assertEqual(len(chain.doneHooks), 1)

    def test_throughToTerminal(self):
        log = []
        chain = Chain([_Recorder("a", log), _Recorder("b", log)], _Terminal(log))
        context = _Context()
        chain.run(context)
        self.assertIs(context.chain, chain)
        self.assertEqual(log, [("request", "a"), ("request", "b"), ("terminal",)])

    def test_localReplyStops(self):
        """
        A local reply ends the request part: later stages and the
        terminal do not run; every response hook runs (last stage first),
        then every done hook, once.
        """
        log = []
        reply = LocalReply(429, b"Too Many Requests", [(b"Retry-After", b"3")], close=True)
        chain = Chain(
            [_Recorder("a", log), _Recorder("b", log, reply), _Recorder("c", log)],
            _Terminal(log),
        )
        context = _Context()
        chain.run(context)
        self.assertEqual(log, [
            ("request", "a"), ("request", "b"),
            ("head", "c"), ("head", "b"), ("head", "a"),
            ("done", "a"), ("done", "b"), ("done", "c"),
        ])
        request = context.request
        self.assertEqual(request.code, 429)
        self.assertTrue(request.closed)
        self.assertTrue(request.finished)
        self.assertEqual(request.written, b"429 Too Many Requests\n")
        self.assertEqual(context.status, 429)
        self.assertEqual(context.sent, len(b"429 Too Many Requests\n"))
        for name in (b"X-a", b"X-b", b"X-c", b"Retry-After"):
            self.assertTrue(request.responseHeaders.hasHeader(name), name)


class _Upper(Stage):
    """
    A body stage: upper-cases the body and adds a trailer at the end.
    """

    name = "upper"

    def responseBody(self, context, data, last):
        data = data.upper()
        return data + b"!" if last else data


class BodyFilterTests(SynchronousTestCase):
    """
    A stage with a response-body part sees every piece of a forwarded
    body and flushes at its end; the body goes on without a length.
    """

    def test_bodyFiltered(self):
        proxy = ProxyHarness({
            "server": {"request_id_header": False},
            "pools": {"web": {"targets": ["10.1.0.1:80"]}},
            "routes": [{"pool": "web"}],
        })
        chain = proxy.resource.runtime.match("h", "/").chain
        chain.stages += (_Upper(),)
        chain.bodyFilters = (chain.stages[-1].responseBody,)
        client = proxy.client()
        client.send(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        backend = proxy.accept()
        backend.respond(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello")
        backend.respond(b"world")
        response = client.received()
        self.assertNotIn(b"Content-Length", response)
        self.assertIn(b"Transfer-Encoding: chunked", response)
        self.assertTrue(response.endswith(b"5\r\nHELLO\r\n5\r\nWORLD\r\n1\r\n!\r\n0\r\n\r\n"), response)
        self.assertIn(" 200 11 ", proxy.logLines()[-1])

    def test_noFiltersByDefault(self):
        self.assertEqual(runtime().match("h", "/api").chain.bodyFilters, ())
