"""
Tests for score-driven weights: L{lbproxy.balance.scores} and the
feedback stage L{lbproxy.stages.scores}, in memory.
"""

from __future__ import annotations

import random
from collections import Counter

from twisted.trial.unittest import SynchronousTestCase

from lbproxy.balance.pool import Pool
from lbproxy.balance.scores import observe_latency, parse_score, probe_score
from lbproxy.config import ConfigError, parse_config
from lbproxy.config.balancing import ScoreWeights
from lbproxy.testing import ProxyHarness
from tests.test_strategies import Target


def scored_pool(weights, balance="round_robin", **config):
    config.setdefault("source", "header")
    config.setdefault("name", "X-Backend-Score")
    targets = [Target("http", f"10.0.0.{i + 1}", 80, weight=w) for i, w in enumerate(weights)]
    return Pool(
        "p", targets, balance, options={"random": random.Random(2)}, weights=ScoreWeights(**config)
    )


def shares(pool, now, picks=1000):
    counts = Counter(pool.pick((), now, None).target.host for _ in range(picks))
    return {host: count / picks for host, count in counts.items()}


class ParseTests(SynchronousTestCase):
    def test_header(self):
        self.assertEqual(parse_score(b" 2.5 "), 2.5)
        self.assertEqual(parse_score(b"0"), 0.0)
        for bad in (None, b"", b"-1", b"inf", b"nan", b"high", b"1e999"):
            self.assertIsNone(parse_score(bad), bad)

    def test_probe(self):
        self.assertEqual(probe_score(b'{"score": 7}', "score"), 7.0)
        self.assertEqual(probe_score(b'{"load": {"score": 0.5}}', "load.score"), 0.5)
        for bad in (None, b"", b"not json", b'{"score": "7"}', b'{"score": true}', b'{"other": 1}',
                    b"[1]", b'{"score": -2}'):
            self.assertIsNone(probe_score(bad, "score"), bad)

    def test_latency(self):
        class State:
            latency = None

        state = State()
        observe_latency(state, 1.0)
        self.assertEqual(state.latency, 1.0)
        observe_latency(state, 2.0)
        self.assertAlmostEqual(state.latency, 1.2)


class WeighterTests(SynchronousTestCase):
    def test_movesWithinOneInterval(self):
        """
        Scores 1 and 9: equal shares until the interval is due, then
        (no smoothing) 10 % and 90 %.
        """
        p = scored_pool([1, 1], interval=10.0, smoothing=1.0)
        a, b = p.members
        a.state.score, b.state.score = 1.0, 9.0
        self.assertEqual(shares(p, 0.0), {"10.0.0.1": 0.5, "10.0.0.2": 0.5})
        self.assertEqual(shares(p, 9.9), {"10.0.0.1": 0.5, "10.0.0.2": 0.5})
        after = shares(p, 10.0)
        self.assertAlmostEqual(after["10.0.0.2"], 0.9, places=2)
        self.assertEqual(p.describe()[1]["effective_weight"], 1.8)
        self.assertEqual(p.describe()[1]["score"], 9.0)

    def test_smoothed(self):
        """
        With smoothing 0.5 the factor moves half the way each interval.
        """
        p = scored_pool([1, 1], interval=1.0, smoothing=0.5)
        a, b = p.members
        a.state.score, b.state.score = 1.0, 3.0
        p.pick((), 0.0, None)
        p.pick((), 1.0, None)
        self.assertEqual((a.factor, b.factor), (0.75, 1.25))
        p.pick((), 2.0, None)
        self.assertEqual((a.factor, b.factor), (0.625, 1.375))

    def test_clamped(self):
        """
        A score of 0 does not take a healthy target out (its factor stays
        at min), and no target goes above max times its weight.
        """
        p = scored_pool([1, 1, 1, 1], interval=1.0, smoothing=1.0, min=0.2, max=2.0)
        for member, score in zip(p.members, (0.0, 100.0, 0.0, 0.0)):
            member.state.score = score
        p.pick((), 0.0, None)
        p.pick((), 1.0, None)
        for member, factor in zip(p.members, [0.2, 2.0, 0.2, 0.2]):
            self.assertAlmostEqual(member.factor, factor)
        result = shares(p, 1.5, 2600)
        self.assertAlmostEqual(result["10.0.0.1"], 0.2 / 2.6, places=2)
        self.assertAlmostEqual(result["10.0.0.2"], 2.0 / 2.6, places=2)

    def test_relativeToWeight(self):
        """
        The factor multiplies the configured weight; weight 0 stays out.
        """
        p = scored_pool([3, 1, 0], interval=1.0, smoothing=1.0)
        for member in p.members:
            member.state.score = 5.0
        p.pick((), 0.0, None)
        p.pick((), 1.0, None)
        self.assertEqual([m.scaled for m in p.members], [300, 100, 0])
        self.assertNotIn("10.0.0.3", shares(p, 1.5))

    def test_unscoredAndDown(self):
        """
        Members without a score keep their weight; members that are down
        are left out of the mean.
        """
        p = scored_pool([1, 1, 1], interval=1.0, smoothing=1.0)
        a, b, c = p.members
        a.state.score, b.state.score = 2.0, 1.0
        c.state.up = False
        c.state.score = 100.0
        p.pick((), 0.0, None)
        p.pick((), 1.0, None)
        self.assertAlmostEqual(a.factor, 4 / 3)
        self.assertAlmostEqual(b.factor, 2 / 3)
        self.assertEqual(c.factor, 1.0)

    def test_latency(self):
        p = scored_pool([1, 1], balance="least_conn", source="latency", name=None,
                        interval=1.0, smoothing=1.0)
        a, b = p.members
        a.state.latency, b.state.latency = 0.1, 0.3
        p.pick((), 0.0, None)
        p.pick((), 1.0, None)
        self.assertAlmostEqual(a.factor, 1.5)
        self.assertAlmostEqual(b.factor, 0.5)

    def test_probe(self):
        p = scored_pool([1, 1], source="probe", name=None, field="score", interval=1.0, smoothing=1.0)
        a, b = p.members
        a.state.probeBody, b.state.probeBody = b'{"score": 3}', b'{"score": 1}'
        p.pick((), 0.0, None)
        p.pick((), 1.0, None)
        self.assertEqual((a.factor, b.factor), (1.5, 0.5))

    def test_probeWithWorkers(self):
        error = self.assertRaises(ConfigError, parse_config, {
            "server": {"workers": 2},
            "pools": {"p": {"targets": ["a:1"], "weights": {"from": "probe", "field": "s"}}},
        })
        self.assertEqual(error.key, "pools.p.weights.from")


CONFIG = {
    "pools": {
        "app": {
            "targets": ["10.10.0.1:80", "10.10.0.2:80"],
            "weights": {"from": "header", "name": "X-Backend-Score", "interval": 5, "smoothing": 1},
        },
        "timed": {
            "targets": ["10.11.0.1:80"],
            "weights": {"from": "latency"},
        },
    },
    "routes": [{"path": "/timed", "pool": "timed"}, {"path": "/", "pool": "app"}],
}


class FeedbackProxyTests(SynchronousTestCase):
    def setUp(self):
        self.proxy = ProxyHarness(CONFIG)

    def get(self, score_of, path=b"/"):
        client = self.proxy.client()
        client.send(b"GET " + path + b" HTTP/1.1\r\nHost: h\r\n\r\n")
        backend = self.proxy.accept()
        score = score_of.get(backend.address, b"1")
        self.proxy.reactor.advance(0.25)
        backend.respond(
            b"HTTP/1.1 200 OK\r\nX-Backend-Score: " + score + b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        response = client.received()
        self.assertIn(b" 200 OK", response)
        if path == b"/":
            # For the balancer, not for the client.
            self.assertNotIn(b"X-Backend-Score", response)
        return backend.address

    def test_headerMovesTraffic(self):
        """
        Backends report 1 and 4: within one interval the second one takes
        4 of every 5 requests.
        """
        scores = {"10.10.0.1:80": b"1", "10.10.0.2:80": b"4"}
        first = Counter(self.get(scores) for _ in range(10))
        self.assertEqual(set(first.values()), {5})
        self.proxy.reactor.advance(5.0)
        after = Counter(self.get(scores) for _ in range(100))
        self.assertEqual(after["10.10.0.2:80"], 80)
        pool = self.proxy.resource.runtime.pools["app"]
        self.assertEqual([m["effective_weight"] for m in pool.describe()], [0.4, 1.6])
        self.assertEqual([m["score"] for m in pool.describe()], [1.0, 4.0])

    def test_latencyFed(self):
        self.get({}, b"/timed")
        state = self.proxy.resource.runtime.pools["timed"].members[0].state
        self.assertEqual(state.latency, 0.25)
        names = self.proxy.resource.runtime.match("h", "/timed").chain.names()
        self.assertIn("score_feedback", names)

    def test_noStageWithout(self):
        proxy = ProxyHarness({"pools": {"p": {"targets": ["a:1"]}}, "routes": [{"pool": "p"}]})
        self.assertNotIn("score_feedback", proxy.resource.runtime.match("h", "/").chain.names())


class ProbeScoreTests(SynchronousTestCase):
    """
    C{from = "probe"}: the health checker keeps each probe's body, whose
    JSON field is the target's score.
    """

    def test_probeBodyScores(self):
        from tests.test_healthcheck import ADDRESSES, Backends, CheckerTestCase

        class Scoring(Backends):
            def render_GET(self, request):
                answer = Backends.render_GET(self, request)
                host = request.getHeader(b"host").decode()
                return b'{"score": %d}' % (ADDRESSES.index(host) + 1,) if answer == b"ok" else answer

        case = CheckerTestCase()
        case.setUp()
        case.backends = Scoring(case.clock)
        from tests.test_healthcheck import Client

        case.client = Client(case.backends)
        config = parse_config(
            {
                "pools": {
                    "mango": {
                        "targets": list(ADDRESSES),
                        "health": {"interval": 6.0, "path": "/healthz"},
                        "weights": {"from": "probe", "field": "score", "interval": 6, "smoothing": 1},
                    }
                },
                "routes": [{"pool": "mango"}],
            },
            "test.toml",
        )
        case.start(config)
        self.addCleanup(case.checker.stopService)
        case.advance(12)
        pool = case.pool
        self.assertEqual([m["score"] for m in pool.describe()], [1.0, 2.0, 3.0])
        pool.pick((), case.clock.seconds(), None)
        pool.pick((), case.clock.seconds() + 6, None)
        self.assertEqual([m["effective_weight"] for m in pool.describe()], [0.5, 1.0, 1.5])


class ReloadTests(SynchronousTestCase):
    def test_factorsSurviveReload(self):
        """
        The pool of a new runtime on the same registry starts from the
        factors the old one reached, not from the configured weights.
        """
        proxy = ProxyHarness(CONFIG)
        pool = proxy.resource.runtime.pools["app"]
        a, b = pool.members
        a.state.score, b.state.score = 1.0, 3.0
        pool.pick((), 0.0, None)
        pool.pick((), 5.0, None)
        self.assertEqual((a.factor, b.factor), (0.5, 1.5))
        runtime = proxy.core.build(parse_config(CONFIG, "t.toml"))
        again = runtime.pools["app"]
        self.assertEqual([m.factor for m in again.members], [0.5, 1.5])
        self.assertEqual([m["effective_weight"] for m in again.describe()], [0.5, 1.5])
        # Another pool of the same targets has its own factors.
        other = Pool("other", [m.target for m in again.members], states=[m.state for m in again.members],
                     weights=ScoreWeights("header", name="X"))
        self.assertEqual([m.factor for m in other.members], [1.0, 1.0])
