"""
Tests for a route's split (L{lbproxy.balance.split},
L{lbproxy.terminals.split}) and the traffic configuration
(L{lbproxy.config.traffic}, L{lbproxy.config.balancing}).
"""

from __future__ import annotations

import random
from collections import Counter

from twisted.trial.unittest import SynchronousTestCase

from lbproxy.balance.split import SplitChooser
from lbproxy.config import ConfigError, parse_config
from lbproxy.config.balancing import ScoreWeights, Sticky
from lbproxy.config.traffic import Mirror, Split
from lbproxy.testing import ProxyHarness
from tests.test_strategies import Context


def chooser(weights, by="random", header=None, seed=5):
    names = ["stable", "canary", "dark"][: len(weights)]
    return SplitChooser(names, weights, names, by, header, random.Random(seed).random)


class SplitChooserTests(SynchronousTestCase):
    def test_ratio(self):
        """
        Over 10,000 requests each side gets its weight's share within 2 %
        (seeds 1 to 5).
        """
        for seed in range(1, 6):
            split = chooser([90, 10], seed=seed)
            counts = Counter(split.choose(Context()) for _ in range(10000))
            self.assertLessEqual(abs(counts["canary"] / 10000 - 0.10), 0.02, counts)
            split = chooser([50, 30, 20], seed=seed)
            counts = Counter(split.choose(Context()) for _ in range(10000))
            for name, share in (("stable", 0.5), ("canary", 0.3), ("dark", 0.2)):
                self.assertLessEqual(abs(counts[name] / 10000 - share), 0.02, counts)

    def test_headerWins(self):
        """
        The header naming a side always wins, even over a weight of 0; a
        header naming no side is ignored.
        """
        split = chooser([100, 0], header="X-Canary")
        for _ in range(200):
            self.assertEqual(split.choose(Context(headers={b"X-Canary": [b"canary"]})), "canary")
            self.assertEqual(split.choose(Context(headers={b"x-canary": [b"stable"]})), "stable")
            self.assertEqual(split.choose(Context(headers={b"X-Canary": [b"nope"]})), "stable")
            self.assertEqual(split.choose(Context()), "stable")

    def test_byClientPins(self):
        """
        With C{split_by = "client_ip"} a client always gets the same side,
        and clients overall follow the weights.
        """
        split = chooser([80, 20], by="client_ip")
        sides = {}
        for n in range(5000):
            ip = f"10.{n // 250}.{n % 250}.1"
            side = split.choose(Context(clientIp=ip))
            sides[ip] = side
            self.assertEqual(split.choose(Context(clientIp=ip)), side)
        share = Counter(sides.values())["canary"] / 5000
        self.assertLessEqual(abs(share - 0.2), 0.02)

    def test_byCookie(self):
        split = chooser([50, 50], by="cookie:uid")
        for n in range(100):
            context = Context(cookies={b"uid": b"user%d" % (n,)})
            side = split.choose(context)
            self.assertEqual({split.choose(context) for _ in range(5)}, {side})
        # Without the cookie: a draw.
        self.assertEqual(
            set(split.choose(Context()) for _ in range(100)), {"stable", "canary"}
        )

    def test_shiftMovesOnlyTheShare(self):
        """
        Moving the canary from 10 % to 20 % moves only clients from stable
        to canary (about 10 % of them), none back.
        """
        before = chooser([90, 10], by="client_ip")
        after = chooser([80, 20], by="client_ip")
        moved = 0
        for n in range(5000):
            context = Context(clientIp=f"172.16.{n // 250}.{n % 250}")
            a, b = before.choose(context), after.choose(context)
            if a != b:
                self.assertEqual((a, b), ("stable", "canary"))
                moved += 1
        self.assertLessEqual(abs(moved / 5000 - 0.10), 0.02)

    def test_bad(self):
        self.assertRaises(ValueError, SplitChooser, ["a"], [0], ["a"])
        self.assertRaises(ValueError, SplitChooser, ["a", "b"], [1], ["a", "b"])


BASE = {
    "pools": {
        "stable": {"targets": ["10.5.0.1:80"]},
        "canary": {"targets": ["10.6.0.1:80"]},
        "shadow": {"targets": ["10.7.0.1:80"]},
    }
}


def config(**route):
    data = dict(BASE)
    data["routes"] = [dict(path="/", **route)]
    return data


class TrafficConfigTests(SynchronousTestCase):
    def assertError(self, data, key, *fragments):
        error = self.assertRaises(ConfigError, parse_config, data, "t.toml")
        self.assertEqual(error.key, key)
        for fragment in fragments:
            self.assertIn(fragment, error.reason)

    def test_split(self):
        route = parse_config(
            config(
                split=[{"pool": "stable", "weight": 90}, {"pool": "canary", "weight": 10}],
                split_by="cookie:uid",
                split_header="X-Canary",
            )
        ).routes[0]
        self.assertEqual(route.split, Split((("stable", 90), ("canary", 10)), "cookie:uid", "X-Canary"))
        self.assertEqual(route.pool, "stable")

    def test_splitErrors(self):
        arms = [{"pool": "stable", "weight": 1}]
        self.assertError(config(pool="stable", split=arms), "routes[0].pool", "either pool or split")
        self.assertError(config(split=[]), "routes[0].split", "at least one pool")
        self.assertError(
            config(split=[{"pool": "nope", "weight": 1}]), "routes[0].split[0].pool", 'no pool named "nope"'
        )
        self.assertError(
            config(split=[{"pool": "stable", "weight": 0}]), "routes[0].split", "weight above 0"
        )
        self.assertError(
            config(split=[{"pool": "stable", "weight": 1}, {"pool": "stable", "weight": 2}]),
            "routes[0].split[1].pool", "twice",
        )
        self.assertError(
            config(split=[{"pool": "stable", "weight": -1}]), "routes[0].split[0].weight", "from 0 to 10000"
        )
        self.assertError(config(split=[{"pool": "stable"}]), "routes[0].split[0].weight", "required")
        self.assertError(config(split=arms, split_by="path"), "routes[0].split_by", "unknown split_by")
        self.assertError(config(split=arms, split_header="X Bad"), "routes[0].split_header", "token")
        self.assertError(config(pool="stable", split_by="client_ip"), "routes[0].split_by", "only applies")

    def test_mirror(self):
        route = parse_config(
            config(pool="stable", mirror={"pool": "shadow", "percent": 5, "max_body": "1m"})
        ).routes[0]
        self.assertEqual(route.mirror, Mirror("shadow", 5.0, 1 << 20))
        self.assertError(
            config(pool="stable", mirror={"pool": "stable"}), "routes[0].mirror.pool", "already serves"
        )
        self.assertError(
            config(pool="stable", mirror={"pool": "gone"}), "routes[0].mirror.pool", 'no pool named "gone"'
        )
        self.assertError(
            config(pool="stable", mirror={"pool": "shadow", "percent": 0}), "routes[0].mirror.percent", "above 0"
        )
        self.assertError(
            config(pool="stable", mirror={"pool": "shadow", "timeout": 0}), "routes[0].mirror.timeout", "greater than 0"
        )
        self.assertError(config(pool="stable", mirror={"percent": 5}), "routes[0].mirror.pool", "required")


def pool_config(**keys):
    pool = {"targets": ["10.5.0.1:80", "10.5.0.2:80"]}
    pool.update(keys)
    return {"pools": {"p": pool}}


class PoolBalancingConfigTests(SynchronousTestCase):
    assertError = TrafficConfigTests.assertError

    def test_hash(self):
        pool = parse_config(pool_config(balance="hash", hash_key="header:X-User", hash_balance_factor=1.25)).pools["p"]
        self.assertEqual((pool.balance, pool.hash_key, pool.hash_balance_factor), ("hash", "header:X-User", 1.25))
        self.assertEqual(parse_config(pool_config(balance="hash")).pools["p"].hash_key, "client_ip")
        self.assertError(pool_config(hash_key="path"), "pools.p.hash_key", 'only applies to balance = "hash"')
        self.assertError(pool_config(balance="hash", hash_key="body"), "pools.p.hash_key", "unknown hash key")
        self.assertError(pool_config(balance="hash", hash_key="header:"), "pools.p.hash_key", "not a valid token")
        for bad in (1, 0.5, 1000):
            self.assertError(
                pool_config(balance="hash", hash_balance_factor=bad), "pools.p.hash_balance_factor", "above 1"
            )

    def test_sticky(self):
        pool = parse_config(pool_config(sticky={"cookie": "lb", "ttl": 60, "secret": "s" * 16})).pools["p"]
        self.assertEqual(pool.sticky, Sticky("lb", 60, "s" * 16))
        self.assertEqual(parse_config(pool_config(sticky={})).pools["p"].sticky, Sticky())
        self.assertError(pool_config(sticky={"cookie": "a b"}), "pools.p.sticky.cookie", "token")
        self.assertError(pool_config(sticky={"ttl": 0}), "pools.p.sticky.ttl", "from 1")
        self.assertError(pool_config(sticky={"secret": "short"}), "pools.p.sticky.secret", "16")
        self.assertError(pool_config(sticky={"ttl": 5, "cookies": "x"}), "pools.p.sticky.cookies", "unknown key")

    def test_stickyWorkersNeedSecret(self):
        data = pool_config(sticky={})
        data["server"] = {"workers": 2}
        self.assertError(data, "pools.p.sticky", "needs a secret")
        data["pools"]["p"]["sticky"] = {"secret": "x" * 20}
        parse_config(data)

    def test_weights(self):
        pool = parse_config(pool_config(weights={"from": "header", "name": "X-Backend-Score"})).pools["p"]
        self.assertEqual(pool.weights, ScoreWeights("header", name="X-Backend-Score"))
        pool = parse_config(pool_config(weights={"from": "probe", "field": "score", "interval": 2})).pools["p"]
        self.assertEqual((pool.weights.field, pool.weights.interval), ("score", 2.0))
        self.assertEqual(parse_config(pool_config(weights={"from": "latency"})).pools["p"].weights.source, "latency")
        self.assertError(pool_config(weights={"from": "cpu"}), "pools.p.weights.from", "unknown source")
        self.assertError(pool_config(weights={"from": "header", "name": "X Score"}), "pools.p.weights.name", "token")
        self.assertError(pool_config(weights={"from": "header"}), "pools.p.weights.name", "required")
        self.assertError(pool_config(weights={"from": "latency", "name": "x"}), "pools.p.weights.name", "does not apply")
        self.assertError(pool_config(weights={"from": "latency", "smoothing": 2}), "pools.p.weights.smoothing", "at most 1")
        self.assertError(pool_config(weights={"from": "latency", "min": 2}), "pools.p.weights", "min must be at most 1")


SPLIT_CONFIG = {
    "pools": {
        "stable": {"targets": ["10.5.0.1:80"]},
        "canary": {"targets": ["10.6.0.1:80"]},
    },
    "routes": [
        {
            "path": "/",
            "split": [{"pool": "stable", "weight": 75}, {"pool": "canary", "weight": 25}],
            "split_header": "X-Canary",
        }
    ],
}

ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"


class SplitProxyTests(SynchronousTestCase):
    def setUp(self):
        self.proxy = ProxyHarness(SPLIT_CONFIG)
        route = self.proxy.resource.runtime.match("h", "/")
        route.chain.terminal.chooser._random = random.Random(11).random

    def get(self, headers=b""):
        client = self.proxy.client()
        client.send(b"GET / HTTP/1.1\r\nHost: h\r\n" + headers + b"\r\n")
        backend = self.proxy.accept()
        backend.respond(ANSWER)
        self.assertIn(b" 200 OK", client.received())
        return backend.address

    def test_ratio(self):
        counts = Counter(self.get() for _ in range(800))
        self.assertLessEqual(abs(counts["10.6.0.1:80"] / 800 - 0.25), 0.05, counts)
        log = self.proxy.logLines()
        self.assertEqual(len(log), 800)

    def test_header(self):
        for _ in range(20):
            self.assertEqual(self.get(b"X-Canary: canary\r\n"), "10.6.0.1:80")
            self.assertEqual(self.get(b"X-Canary: stable\r\n"), "10.5.0.1:80")

    def test_reloadShifts(self):
        """
        A runtime built with new weights shifts traffic at once.
        """
        data = dict(SPLIT_CONFIG)
        data["routes"] = [dict(SPLIT_CONFIG["routes"][0], split=[
            {"pool": "stable", "weight": 0}, {"pool": "canary", "weight": 1}])]
        self.proxy.resource.runtime = self.proxy.core.build(parse_config(data, "t.toml"))
        self.assertEqual({self.get() for _ in range(20)}, {"10.6.0.1:80"})
