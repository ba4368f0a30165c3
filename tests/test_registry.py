"""
Tests for L{lbproxy.runtime.targets} (the target registry) and for
building a runtime on it and swapping it in under requests in flight.
"""

from __future__ import annotations

import os
import subprocess
import sys

from twisted.trial.unittest import SynchronousTestCase

from lbproxy.config import HealthConfig, Target, parse_config
from lbproxy.config.tls import UpstreamTLS
from lbproxy.runtime.snapshot import Runtime, build_runtime
from lbproxy.runtime.targets import TargetRegistry, target_key
from lbproxy.testing import ProxyHarness

HEALTH = HealthConfig()


class RegistryTests(SynchronousTestCase):
    """
    Entries are keyed by what makes a target the same target.
    """

    def setUp(self):
        self.registry = TargetRegistry()

    def test_sameTarget(self):
        """
        The same target in two pools with the same health check is one
        entry, whatever its weight in each; the entry knows both pools.
        """
        first = self.registry.entry(Target("http", "a", 80), HEALTH, "one")
        second = self.registry.entry(Target("http", "a", 80, weight=5), HEALTH, "two")
        self.assertIs(first, second)
        self.assertEqual(first.pools, ("one", "two"))
        self.assertEqual(self.registry.entries(), [first])
        self.assertEqual(len(self.registry), 1)
        self.assertEqual((first.up, first.inflight, first.retired), (True, 0, False))

    def test_identity(self):
        """
        Scheme, host, port, TLS settings, the target's own health check
        endpoint and the pool's health settings each make another target.
        """
        base = Target("https", "a", 443)
        variants = [
            (base, HEALTH),
            (Target("http", "a", 443), HEALTH),
            (Target("https", "b", 443), HEALTH),
            (Target("https", "a", 8443), HEALTH),
            (Target("https", "a", 443, tls=UpstreamTLS(verify=False)), HEALTH),
            (Target("https", "a", 443, health_check_endpoint="/up"), HEALTH),
            (base, HealthConfig(path="/healthz")),
            (base, HealthConfig(fall=5)),
        ]
        entries = [self.registry.entry(t, h, "p") for t, h in variants]
        self.assertEqual(len({id(e) for e in entries}), len(variants))
        self.assertEqual(len({e.ident for e in entries}), len(variants))
        self.assertEqual(entries[0].key, target_key(base, HEALTH))
        again = self.registry.entry(
            Target("https", "a", 443, weight=3, tls=UpstreamTLS(verify=False)), HEALTH, "q"
        )
        self.assertIs(again, entries[4])

    def test_health(self):
        """
        An entry's health is probed when its check has a path and the
        registry probes at all.
        """
        probed = self.registry.entry(Target("http", "a", 80), HealthConfig(path="/h"), "p")
        own = self.registry.entry(
            Target("http", "b", 80, health_check_endpoint="/s"), HEALTH, "p"
        )
        passive = self.registry.entry(Target("http", "c", 80), HEALTH, "p")
        self.assertEqual(
            [e.health.probed for e in (probed, own, passive)], [True, True, False]
        )
        self.assertEqual(probed.health.settings, HealthConfig(path="/h"))
        worker = TargetRegistry(probing=False)
        self.assertFalse(
            worker.entry(Target("http", "a", 80), HealthConfig(path="/h"), "p").health.probed
        )

    def test_retain(self):
        """
        retain() retires the entries not named, records the pools that
        name the others, and tells the subscribers.
        """
        told = []
        self.registry.subscribe(told.append)
        a = self.registry.entry(Target("http", "a", 80), HEALTH, "one")
        b = self.registry.entry(Target("http", "b", 80), HEALTH, "one")
        self.registry.entry(Target("http", "b", 80), HEALTH, "two")
        retired = self.registry.retain([("two", b), ("three", b), ("two", b)])
        self.assertEqual(retired, [a])
        self.assertEqual(told, [[a]])
        self.assertTrue(a.retired)
        self.assertFalse(b.retired)
        self.assertEqual(b.pools, ("two", "three"))
        self.assertEqual(self.registry.entries(), [b])
        self.assertIsNone(self.registry.find(a.ident))
        self.assertIs(self.registry.find(b.ident), b)
        # The same target later is a new entry, fresh.
        a.inflight = 1
        fresh = self.registry.entry(Target("http", "a", 80), HEALTH, "one")
        self.assertIsNot(fresh, a)
        self.assertEqual(fresh.inflight, 0)

    def test_identAcrossProcesses(self):
        """
        An ident is the same in another process (as in a worker), whatever
        its hash seed.
        """
        target = Target("https", "a", 443, tls=UpstreamTLS(ca="/etc/ca.pem"))
        health = HealthConfig(path="/h", expect_status=((200, 204),))
        ident = self.registry.entry(target, health, "p").ident
        self.assertTrue(ident.startswith("https://a:443#"))
        script = (
            "from lbproxy.config import HealthConfig, Target\n"
            "from lbproxy.config.tls import UpstreamTLS\n"
            "from lbproxy.runtime.targets import TargetRegistry\n"
            "t = Target('https', 'a', 443, tls=UpstreamTLS(ca='/etc/ca.pem'))\n"
            "h = HealthConfig(path='/h', expect_status=((200, 204),))\n"
            "print(TargetRegistry().entry(t, h, 'q').ident)\n"
        )
        env = dict(os.environ, PYTHONHASHSEED="12345")
        out = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, check=True
        ).stdout.decode().strip()
        self.assertEqual(out, ident)


CONFIG = {
    "health": {"passive_fail": 1, "ejection_time": 30.0},
    "pools": {"mango": {"targets": ["10.1.0.1:80", "10.1.0.2:80"]}},
    "routes": [{"pool": "mango"}],
}
NEW_CONFIG = {
    "health": {"passive_fail": 1, "ejection_time": 30.0},
    "pools": {"mango": {"targets": ["10.1.0.2:80", "10.1.0.3:80"]}},
    "routes": [{"pool": "mango"}],
}
GET = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"
OK = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"


class SwapTests(SynchronousTestCase):
    """
    A new runtime is one call and one assignment; requests in flight finish
    on the runtime they started on, and unchanged targets keep their state.
    """

    def test_build(self):
        """
        build_runtime builds on the registry's entries: the same config
        twice gives new pools on the same states.
        """
        registry = TargetRegistry()
        config = parse_config(CONFIG, "test.toml")
        first = build_runtime(config, registry)
        second = build_runtime(config, registry)
        self.assertIsNot(first.pools["mango"], second.pools["mango"])
        self.assertEqual(
            [m.state for m in first.pools["mango"].members],
            [m.state for m in second.pools["mango"].members],
        )
        self.assertIsInstance(second, Runtime)
        self.assertEqual(len(registry), 2)

    def test_swapUnderRequest(self):
        """
        A request in flight on a target the new runtime drops finishes on
        its old pool; the in-flight counts are right throughout; an
        ejected target the new runtime keeps stays ejected (and comes back
        when its ejection ends); a new target starts fresh.
        """
        proxy = ProxyHarness(CONFIG)
        proxy.health.startService()
        self.addCleanup(proxy.health.stopService)
        old = proxy.resource.runtime
        one, two = old.pools["mango"].members

        # A request in flight on .1.
        slow = proxy.client()
        slow.send(GET)
        self.assertEqual(proxy.pending(), ["10.1.0.1:80"])
        backend = proxy.accept()
        self.assertIn(b"GET / HTTP/1.1", backend.received())
        self.assertEqual((one.inflight, two.inflight), (1, 0))
        # .2 refuses a connection: ejected for 30s (the request goes to .1).
        other = proxy.client()
        other.send(GET)
        self.assertEqual(proxy.refuse(), "10.1.0.2:80")
        proxy.accept().respond(OK)
        self.assertTrue(other.received().startswith(b"HTTP/1.1 200 "))
        self.assertFalse(two.up)

        # One call and one assignment.
        proxy.resource.runtime = build_runtime(
            parse_config(NEW_CONFIG, "test.toml"), proxy.registry, proxy.services
        )

        kept, new = proxy.resource.runtime.pools["mango"].members
        self.assertIs(kept.state, two.state)
        self.assertFalse(kept.up)
        self.assertEqual(kept.health.totalEjections, 1)
        self.assertTrue(new.up)
        self.assertEqual((new.inflight, new.health.passiveErrors), (0, 0))
        self.assertTrue(one.state.retired)
        self.assertEqual(one.inflight, 1)

        # New requests use the new runtime: .2 is still ejected, so .3.
        fresh = proxy.client()
        fresh.send(GET)
        self.assertEqual(proxy.pending(), ["10.1.0.3:80"])
        third = proxy.accept()
        self.assertEqual(new.inflight, 1)

        # The old request finishes on its own pool and target.
        backend.respond(OK)
        self.assertTrue(slow.received().startswith(b"HTTP/1.1 200 "))
        self.assertIn(" pool=mango target=10.1.0.1:80 ", proxy.logLines()[-1])
        self.assertEqual(one.inflight, 0)
        third.respond(OK)
        self.assertTrue(fresh.received().startswith(b"HTTP/1.1 200 "))
        self.assertEqual([m.inflight for m in (one, two, kept, new)], [0, 0, 0, 0])

        # The ejection carried over ends on time; .2 serves again.
        proxy.reactor.advance(30)
        self.assertTrue(kept.up)
        last = proxy.client()
        last.send(GET)
        self.assertEqual(proxy.pending(), ["10.1.0.2:80"])


class SharedTargetQueueTests(SynchronousTestCase):
    """
    A target two pools share has one in-flight count: the room a request
    leaves on it goes to the oldest waiter of either pool.
    """

    def test_otherPoolWakes(self):
        proxy = ProxyHarness(
            {
                "pools": {
                    "one": {"targets": ["10.5.0.1:80"], "max_inflight": 1},
                    "two": {"targets": ["10.5.0.1:80"], "max_inflight": 1},
                },
                "routes": [{"path": "/two", "pool": "two"}, {"pool": "one"}],
            }
        )
        one, two = (proxy.resource.runtime.pools[name] for name in ("one", "two"))
        self.assertIs(one.members[0].state, two.members[0].state)
        first = proxy.client()
        first.send(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        backend = proxy.accept()
        waiting = proxy.client()
        waiting.send(b"GET /two HTTP/1.1\r\nHost: h\r\n\r\n")
        self.assertEqual((len(one.queue), len(two.queue)), (0, 1))
        backend.respond(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n1")
        self.assertTrue(first.received().startswith(b"HTTP/1.1 200 "))
        self.assertEqual(len(two.queue), 0)
        self.assertIn(b"GET /two HTTP/1.1", backend.received())
        backend.respond(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n2")
        self.assertTrue(waiting.received().startswith(b"HTTP/1.1 200 "))
        self.assertEqual(one.members[0].inflight, 0)
