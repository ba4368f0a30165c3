"""
Tests for the metrics: L{lbproxy.observe.counters}, the metrics stage
(L{lbproxy.stages.metrics}), the collectors and C{/metrics}
(L{lbproxy.observe.collectors}, L{lbproxy.observe.metricspage}).

Requests go through the whole proxy in memory; the page is scraped and
parsed with C{prometheus_client}'s own parser.
"""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.test.requesthelper import DummyRequest

from lbproxy.observe.counters import BUCKETS, Histogram, method_class, quantile
from lbproxy.observe.collectors import ProxyCollector, metrics_registry
from lbproxy.observe.metricspage import MetricsResource, metrics_resource
from lbproxy.observe.states import target_state
from lbproxy.testing import ProxyHarness
from tests import test_tls_proxy
from tests.test_tls_proxy import TLSProxyTestCase

CONFIG = {
    "server": {"connect_timeout": 2.0, "response_timeout": 10.0},
    # (The pages are served only with [admin]: metrics_resource's reads
    # follow its rule.)
    "admin": {"token": "s3cret-token-0123456789"},
    "pools": {
        "mango": {"targets": ["10.1.0.1:8081", "10.1.0.2:8082"]},
        "apple": {"targets": ["10.2.0.1:9081"]},
    },
    "routes": [
        {"host": "www.mango.com", "pool": "mango"},
        {"path": "/apple", "pool": "apple", "rate_limit": {"rate": 0.01, "burst": 1}},
    ],
}

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"


def scrape(proxy, accept=None):
    """
    GET /metrics of a harness's proxy: C{(content type, {name: family})}
    and the samples as C{{(name, frozen labels): value}}.
    """
    core = proxy.core
    # (The resource without the admin read rule: tests/test_statuspage
    # covers that.)
    collector = ProxyCollector(
        core.metrics, core.registry, lambda: core.runtime, proxy.reactor,
        lambda: [("http", "http/1.1", 3)],
    )
    resource = MetricsResource(metrics_registry(collector, core.metrics))
    request = DummyRequest([b""])
    if accept:
        request.requestHeaders.setRawHeaders(b"accept", [accept])
    body = resource.render_GET(request)
    contentType = request.responseHeaders.getRawHeaders(b"content-type")[0].decode("ascii")
    samples = {}
    for family in text_string_to_metric_families(body.decode("utf-8")):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return contentType, samples


def value(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())))


class ScrapeTests(SynchronousTestCase):
    """
    After scripted requests, the scraped values say what happened.
    """

    def setUp(self):
        self.proxy = ProxyHarness(CONFIG)

    def get(self, raw: bytes, client=None):
        client = client or self.proxy.client()
        client.send(raw)
        return client

    def test_forwarded(self):
        """
        Two forwarded GETs count as 2xx requests of route 0 and pool
        mango, one per target, with their bytes, durations and in-flight
        counts back at 0.
        """
        for _ in range(2):
            client = self.get(b"GET /x HTTP/1.1\r\nHost: www.mango.com\r\n\r\n")
            self.proxy.reactor.advance(0.003)
            self.proxy.accept().respond(OK)
            self.assertTrue(client.received().startswith(b"HTTP/1.1 200"))
        contentType, samples = scrape(self.proxy)
        self.assertTrue(contentType.startswith("text/plain"))
        self.assertEqual(
            value(samples, "lbproxy_requests_total", route="0", pool="mango", method="GET",
                  status_class="2xx"), 2.0)
        self.assertEqual(
            value(samples, "lbproxy_response_body_bytes_total", route="0", pool="mango"), 10.0)
        self.assertEqual(
            value(samples, "lbproxy_request_duration_seconds_count", route="0", pool="mango"), 2.0)
        self.assertEqual(
            value(samples, "lbproxy_request_duration_seconds_bucket", route="0", pool="mango",
                  le="0.0025"), 0.0)
        self.assertEqual(
            value(samples, "lbproxy_request_duration_seconds_bucket", route="0", pool="mango",
                  le="0.005"), 2.0)
        self.assertEqual(
            value(samples, "lbproxy_upstream_duration_seconds_count", pool="mango"), 2.0)
        for target in ("10.1.0.1:8081", "10.1.0.2:8082"):
            self.assertEqual(
                value(samples, "lbproxy_target_requests_total", pool="mango", target=target), 1.0)
            self.assertEqual(
                value(samples, "lbproxy_target_inflight", pool="mango", target=target), 0.0)
            self.assertEqual(
                value(samples, "lbproxy_target_state", pool="mango", target=target, state="up"),
                1.0)
            self.assertEqual(
                value(samples, "lbproxy_target_state", pool="mango", target=target,
                      state="down"), 0.0)
            self.assertEqual(
                value(samples, "lbproxy_target_weight", pool="mango", target=target), 1.0)
            self.assertEqual(
                value(samples, "lbproxy_target_effective_weight", pool="mango", target=target),
                1.0)
        self.assertEqual(
            value(samples, "lbproxy_open_connections", listener="http", protocol="http/1.1"), 3.0)
        self.assertEqual(value(samples, "lbproxy_info", version="0.1.0"), 1.0)

    def test_inflight(self):
        """
        A request waiting for its backend is in flight on its target.
        """
        self.get(b"GET /x HTTP/1.1\r\nHost: www.mango.com\r\n\r\n")
        self.proxy.accept()
        _, samples = scrape(self.proxy)
        self.assertEqual(
            value(samples, "lbproxy_target_inflight", pool="mango", target="10.1.0.1:8081"), 1.0)

    def test_localAnswers(self):
        """
        A 404 (no route), a 429 (rate limited), a 502 after every target
        refused (with a retry) and a POST's body are counted by reason.
        """
        self.get(b"GET /nothing HTTP/1.1\r\nHost: elsewhere\r\n\r\n")
        for _ in range(2):
            self.get(b"GET /apple HTTP/1.1\r\nHost: a\r\n\r\n")
        self.proxy.accept().respond(OK)
        self.get(b"POST /x HTTP/1.1\r\nHost: www.mango.com\r\nContent-Length: 4\r\n\r\ndata")
        self.proxy.refuse()
        self.proxy.refuse()
        _, samples = scrape(self.proxy)
        self.assertEqual(
            value(samples, "lbproxy_local_responses_total", route="-", pool="-",
                  reason="no_route"), 1.0)
        self.assertEqual(
            value(samples, "lbproxy_requests_total", route="-", pool="-", method="GET",
                  status_class="4xx"), 1.0)
        self.assertEqual(
            value(samples, "lbproxy_local_responses_total", route="1", pool="apple",
                  reason="rate_limited"), 1.0)
        self.assertEqual(
            value(samples, "lbproxy_local_responses_total", route="0", pool="mango",
                  reason="upstream_refused"), 1.0)
        self.assertEqual(
            value(samples, "lbproxy_requests_total", route="0", pool="mango", method="POST",
                  status_class="5xx"), 1.0)
        self.assertEqual(value(samples, "lbproxy_retries_total", pool="mango"), 1.0)
        self.assertEqual(
            value(samples, "lbproxy_request_body_bytes_total", route="0", pool="mango"), 4.0)
        self.assertEqual(
            value(samples, "lbproxy_target_errors_total", pool="mango", target="10.1.0.2:8082"),
            1.0)

    def test_hostileLabelsBounded(self):
        """
        Thousands of requests with hostile Host headers, paths and methods
        add no series: every label value comes from the configuration.
        """
        self.get(b"GET /nothing HTTP/1.1\r\nHost: elsewhere\r\n\r\n")
        self.get(b"BREW /nothing HTTP/1.1\r\nHost: elsewhere\r\n\r\n")
        # (A byte over 0x7f in the target is refused before routing: 400.)
        self.get(b"GET /\xff HTTP/1.1\r\nHost: elsewhere\r\n\r\n")
        _, before = scrape(self.proxy)
        for n in range(2000):
            self.get(
                b"GET /%d/%s HTTP/1.1\r\nHost: evil%d.example\r\n\r\n"
                % (n, b"a\xff" * (n % 7), n)
            )
            self.get(b"X%d /p HTTP/1.1\r\nHost: h%d\r\n\r\n" % (n, n))
        _, after = scrape(self.proxy)
        self.assertEqual(set(after), set(before))
        labelValues = {v for key in after for _, v in key[1]}
        self.assertFalse([v for v in labelValues if "evil" in v or v.startswith("/")])
        self.assertEqual(
            value(after, "lbproxy_requests_total", route="-", pool="-", method="OTHER",
                  status_class="4xx"), 2001.0)

    def test_rejectionsCounted(self):
        """
        A connection refused before a request existed is counted by reason.
        """
        client = self.proxy.client()
        client.send(b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n")
        self.assertTrue(client.received().startswith(b"HTTP/1.1 414"))
        _, samples = scrape(self.proxy)
        self.assertEqual(
            value(samples, "lbproxy_rejected_connections_total", reason="uri_too_long"), 1.0)

    def test_passiveEjection(self):
        """
        A target ejected after connection failures shows as ejected, with
        a state change counted by cause.
        """
        config = dict(CONFIG, health={"passive_fail": 1, "ejection_time": 30})
        self.proxy = ProxyHarness(config)
        self.get(b"GET /x HTTP/1.1\r\nHost: www.mango.com\r\n\r\n")
        self.proxy.refuse()
        self.proxy.accept().respond(OK)
        _, samples = scrape(self.proxy)
        target = dict(pool="mango", target="10.1.0.1:8081")
        self.assertEqual(value(samples, "lbproxy_target_state", state="ejected", **target), 1.0)
        self.assertEqual(value(samples, "lbproxy_target_state", state="up", **target), 0.0)
        self.assertEqual(value(samples, "lbproxy_target_effective_weight", **target), 0.0)
        self.assertEqual(value(samples, "lbproxy_passive_ejections_total", **target), 1.0)
        self.assertEqual(
            value(samples, "lbproxy_target_state_changes_total", state="down",
                  cause="passive_ejection", **target), 1.0)

    def test_openMetrics(self):
        """
        A scraper that asks for OpenMetrics gets it.
        """
        resource = metrics_resource(self.proxy.core, self.proxy.reactor)
        request = DummyRequest([b""])
        request.requestHeaders.setRawHeaders(
            b"accept", [b"application/openmetrics-text; version=1.0.0"]
        )
        body = resource.render_GET(request)
        self.assertTrue(body.endswith(b"# EOF\n"))
        self.assertIn(
            b"openmetrics",
            request.responseHeaders.getRawHeaders(b"content-type")[0],
        )

    def test_addCollector(self):
        """
        A feature's collector added to the metrics is scraped with the rest.
        """
        from prometheus_client.core import CounterMetricFamily

        class Cache:
            def collect(self):
                family = CounterMetricFamily("lbproxy_cache_hits", "Hits.", labels=["pool"])
                family.add_metric(["mango"], 7)
                yield family

        self.proxy.core.metrics.addCollector(Cache())
        _, samples = scrape(self.proxy)
        self.assertEqual(value(samples, "lbproxy_cache_hits_total", pool="mango"), 7.0)


class CacheMetricsTests(SynchronousTestCase):
    """
    The shared cache's counters (once a route with a cache made one) are
    scraped with the rest; without a cache there are no cache series.
    """

    def test_cache(self):
        from types import SimpleNamespace

        proxy = ProxyHarness(CONFIG)
        # (Services gets its cache slot with the cache feature: a stand-in.)
        services = proxy.core.services = SimpleNamespace(cache=None)
        resource = metrics_resource(proxy.core, proxy.reactor)

        def scraped():
            request = DummyRequest([b""])
            request.requestHeaders.setRawHeaders(
                b"authorization", [b"Bearer " + CONFIG["admin"]["token"].encode()]
            )
            body = resource.render_GET(request).decode()
            return {
                (s.name, frozenset(s.labels.items())): s.value
                for family in text_string_to_metric_families(body) for s in family.samples
            }

        self.assertFalse([key for key in scraped() if key[0].startswith("lbproxy_cache")])

        class Cache:
            counters = {"HIT": 7, "MISS": 3, "BYPASS": 1, "stored": 3, "purged": 0}

            def stats(self):
                return dict(self.counters, entries=3, bytes=4096, max_bytes=1 << 20,
                            evicted=0, inflight=1, coalesced=2)

        services.cache = Cache()
        samples = scraped()
        self.assertEqual(value(samples, "lbproxy_cache_responses_total", result="hit"), 7.0)
        self.assertEqual(value(samples, "lbproxy_cache_responses_total", result="miss"), 3.0)
        self.assertEqual(value(samples, "lbproxy_cache_events_total", event="stored"), 3.0)
        self.assertEqual(value(samples, "lbproxy_cache_bytes"), 4096.0)
        self.assertEqual(value(samples, "lbproxy_cache_coalesced_total"), 2.0)


class CounterTests(SynchronousTestCase):
    """
    The counters themselves.
    """

    def test_methodClass(self):
        self.assertEqual(
            [method_class(m) for m in (b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"PATCH",
                                       b"OPTIONS", b"get", b"BREW")],
            [0, 1, 2, 3, 4, 5, 6, 7, 7],
        )

    def test_histogramBuckets(self):
        """
        A value on a bound counts in that bound's bucket (le); beyond the
        last, in +Inf.
        """
        h = Histogram()
        for v in (0.001, 0.0011, 100.0):
            h.observe(v)
        cumulative = dict(h.cumulative())
        self.assertEqual(cumulative["0.001"], 1)
        self.assertEqual(cumulative["0.0025"], 2)
        self.assertEqual(cumulative["30.0"], 2)
        self.assertEqual(cumulative["+Inf"], 3)
        self.assertEqual(h.count, 3)

    def test_quantile(self):
        """
        Quantiles interpolate within the bucket, as histogram_quantile does.
        """
        counts = [0] * (len(BUCKETS) + 1)
        self.assertIsNone(quantile(counts, 0.5))
        counts[BUCKETS.index(0.1)] = 100  # all in (0.05, 0.1]
        self.assertAlmostEqual(quantile(counts, 0.5), 0.075)
        self.assertAlmostEqual(quantile(counts, 0.99), 0.0995)

    def test_targetStateSlowStart(self):
        """
        A target back up within its slow-start ramp is in slow start.
        """
        proxy = ProxyHarness(CONFIG)
        entry = proxy.registry.entries()[0]
        self.assertEqual(target_state(entry, 0.0), "up")
        entry.startRamp(10.0, 30.0)
        self.assertEqual(target_state(entry, 20.0), "slow_start")
        self.assertEqual(target_state(entry, 41.0), "up")
        entry.health.drain(50.0)
        self.assertEqual(target_state(entry, 51.0), "draining")


class BenchConfigTests(SynchronousTestCase):
    """
    The configuration C{bench.metrics_cost} runs lbproxy with is valid, and
    as big as asked.
    """

    def test_config(self):
        from bench.metrics_cost import config
        from lbproxy.config import load_config

        path = self.mktemp()
        with open(path, "w") as f:
            f.write(config(8080, 9901, 8081, routes=20, targets=10))
        parsed = load_config(path)
        self.assertEqual(len(parsed.routes), 20)
        self.assertEqual(len(parsed.pools["extra"].targets), 9)
        self.assertEqual(parsed.routes[-1].pool, "backend")
        self.assertEqual(parsed.admin.listen, "tcp:9901:interface=127.0.0.1")


class TLSHandshakeTests(TLSProxyTestCase):
    """
    Handshakes on the HTTPS listeners are counted by version, failures
    apart.
    """

    handshake = test_tls_proxy.ProtocolFloorTests.handshake

    def test_counted(self):
        from OpenSSL import SSL

        self.connect("www.mango.com")
        self.connect("www.mango.com")
        self.handshake(lambda c: c.set_max_proto_version(SSL.TLS1_2_VERSION))

        def tls11(context):
            context.set_min_proto_version(SSL.TLS1_VERSION)
            context.set_max_proto_version(SSL.TLS1_1_VERSION)
            context.set_cipher_list(b"DEFAULT:@SECLEVEL=0")

        self.handshake(tls11)
        _, samples = scrape(self.proxy)
        self.assertEqual(value(samples, "lbproxy_tls_handshakes_total", version="TLSv1.3"), 2.0)
        self.assertEqual(value(samples, "lbproxy_tls_handshakes_total", version="TLSv1.2"), 1.0)
        self.assertEqual(value(samples, "lbproxy_tls_handshake_failures_total"), 1.0)


class TLSRejectionTests(TLSProxyTestCase):
    def test_rejectionOverTLS(self):
        """
        A connection refused on an HTTPS listener is counted and logged
        like one on a plain listener.
        """
        tls, app, pump = self.connect("www.mango.com")
        tls.write(b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n")
        pump.flush()
        _, samples = scrape(self.proxy)
        self.assertEqual(
            value(samples, "lbproxy_rejected_connections_total", reason="uri_too_long"), 1.0)
        self.assertTrue(self.proxy.logLines()[-1].endswith("reason=uri_too_long"))


class TLSHandshakeHTTP1Tests(TLSHandshakeTests):
    """
    The same on a listener without HTTP/2.
    """

    tls = {"alpn": ["http/1.1"]}


class WithoutAdminTests(SynchronousTestCase):
    """
    Without C{[admin]} nothing can read request counts: chains have no
    metrics stage, so requests cost nothing for them.
    """

    def test_noStage(self):
        config = dict(CONFIG)
        del config["admin"]
        proxy = ProxyHarness(config)
        route = proxy.resource.runtime.match("www.mango.com", "/").chain
        self.assertNotIn("metrics", route.names())
        withAdmin = ProxyHarness(CONFIG).resource.runtime.match("www.mango.com", "/").chain
        self.assertIn("metrics", withAdmin.names())
