# -*- test-case-name: tests.test_etcd -*-
"""
etcd as a configuration source, in memory: the C{[etcd]} table, the
revision-tracked state and its merge over the file, the watch loop
(resync after a disconnect and after a compaction) and reloads through
the L{Reloader}.
"""

from __future__ import annotations

import json

from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from lbproxy.app.reload import Reloader
from lbproxy.config import ConfigError, parse_config
from lbproxy.config.document import tomllib
from lbproxy.discovery.backoff import Backoff
from lbproxy.discovery.etcdclient import parse_events, prefix_end
from lbproxy.discovery.etcdstate import EtcdState
from lbproxy.discovery.etcdwatch import EtcdWatch
from lbproxy.testing import ProxyHarness

FILE = """
[server]
listen = ["tcp:0"]
[pools.web]
targets = ["127.0.0.1:8001"]
[[routes]]
path = "/"
pool = "web"
"""


def pool(*targets):
    return json.dumps({"targets": list(targets)}).encode()


class EtcdConfigTests(SynchronousTestCase):
    def parse(self, etcd):
        return parse_config({"pools": {"a": {"targets": ["127.0.0.1:1"]}}, "etcd": etcd})

    def test_defaults(self):
        config = self.parse({"endpoints": ["http://127.0.0.1:2379/"]}).etcd
        self.assertEqual(config.endpoints, ("http://127.0.0.1:2379",))
        self.assertEqual(config.prefix, "/lbproxy")

    def test_errors(self):
        for etcd, key in [
            ({}, "etcd.endpoints"),
            ({"endpoints": ["127.0.0.1:2379"]}, "etcd.endpoints[0]"),
            ({"endpoints": ["http://h:1/v3"]}, "etcd.endpoints[0]"),
            ({"endpoints": ["http://h:1"], "prefix": "x"}, "etcd.prefix"),
            ({"endpoints": ["http://h:1"], "user": "u"}, "etcd.password"),
            ({"endpoints": ["http://h:1"], "key": "k.pem"}, "etcd.cert"),
            ({"endpoints": ["http://h:1"], "nope": 1}, "etcd.nope"),
        ]:
            with self.assertRaises(ConfigError) as e:
                self.parse(etcd)
            self.assertEqual(e.exception.key, key, etcd)

    def test_passwordNotInRepr(self):
        config = self.parse({"endpoints": ["http://h:1"], "user": "u", "password": "sekrit"})
        self.assertNotIn("sekrit", repr(config))

    def test_withWorkers(self):
        config = parse_config({"server": {"workers": 2},
                               "pools": {"a": {"targets": ["127.0.0.1:1"]}},
                               "etcd": {"endpoints": ["http://h:1"]}})
        self.assertEqual(config.etcd.endpoints, ("http://h:1",))


class EtcdStateTests(SynchronousTestCase):
    def test_revisions(self):
        """
        Events at or below the known revision (replays) are skipped;
        deletes remove; a full read replaces everything, even at a lower
        revision (a recreated etcd).
        """
        state = EtcdState("/p")
        self.assertTrue(state.reset([("/p/pools/a", pool("h:1"), 3)], 5))
        self.assertFalse(state.apply([("PUT", "/p/pools/a", pool("h:2"), 4)]))
        self.assertTrue(state.apply([("PUT", "/p/pools/a", pool("h:2"), 6),
                                     ("PUT", "/p/pools/b", pool("h:3"), 7)]))
        self.assertEqual(state.revision, 7)
        self.assertFalse(state.apply([("PUT", "/p/pools/a", pool("h:1"), 6)]))
        self.assertEqual(state.values["/p/pools/a"], pool("h:2"))
        self.assertTrue(state.apply([("DELETE", "/p/pools/b", None, 8)]))
        self.assertEqual(sorted(state.values), ["/p/pools/a"])
        self.assertTrue(state.reset([("/p/routes/1", b"{}", 2)], 2))
        self.assertEqual((sorted(state.values), state.revision), (["/p/routes/1"], 2))
        self.assertFalse(state.reset([("/p/routes/1", b"{}", 2)], 3))

    def test_merge(self):
        """
        etcd's pools replace the file's of the same name; its routes follow
        the file's, by id; keys outside the layout are ignored.
        """
        state = EtcdState("/p")
        state.reset([
            ("/p/pools/web", pool("127.0.0.1:9001"), 2),
            ("/p/pools/api", pool("127.0.0.1:9002"), 2),
            ("/p/routes/20", json.dumps({"path": "/b", "pool": "api"}).encode(), 2),
            ("/p/routes/10", json.dumps({"path": "/a", "pool": "api"}).encode(), 2),
            ("/p/other/x", b"not json", 2),
        ], 2)

        data = tomllib.loads(FILE)
        config = parse_config(state.merge(data), "f.toml")
        self.assertEqual([t.address for t in config.pools["web"].targets], ["127.0.0.1:9001"])
        self.assertEqual([r.path for r in config.routes], ["/", "/a", "/b"])
        self.assertEqual(data["pools"]["web"]["targets"], ["127.0.0.1:8001"])

    def test_explain(self):
        """
        A bad value from etcd is reported with its etcd key.
        """

        state = EtcdState("/p")
        state.reset([("/p/pools/web", json.dumps({"targets": ["nope:x"]}).encode(), 2)], 2)
        with self.assertRaises(ConfigError) as e:
            try:
                parse_config(state.merge(tomllib.loads(FILE)), "f.toml")
            except ConfigError as error:
                raise state.explain(error)
        self.assertEqual(e.exception.path, "etcd /p/pools/web")
        state.reset([("/p/routes/7", json.dumps({"path": "/x", "pool": "gone"}).encode(), 3)], 3)
        try:
            parse_config(state.merge(tomllib.loads(FILE)), "f.toml")
        except ConfigError as error:
            explained = state.explain(error)
        self.assertEqual((explained.path, explained.key), ("etcd /p/routes/7", "routes[1].pool"))
        state.reset([("/p/pools/x", b"[1", 4)], 4)
        with self.assertRaises(ConfigError) as e:
            state.merge({})
        self.assertEqual(e.exception.path, "etcd /p/pools/x")

    def test_gateway(self):
        self.assertEqual(prefix_end(b"/p"), b"/q")
        self.assertEqual(prefix_end(b"a\xff"), b"b")
        events = parse_events([
            {"kv": {"key": "L3AvYQ==", "value": "MQ==", "mod_revision": "9"}},
            {"type": "DELETE", "kv": {"key": "L3AvYQ==", "mod_revision": "10"}},
        ])
        self.assertEqual(events, [("PUT", "/p/a", b"1", 9), ("DELETE", "/p/a", None, 10)])


class FakeEtcd:
    """
    One endpoint: reads return the current keys; watches are recorded.
    """

    base = "http://fake:2379"

    def readPrefix(self, prefix):
        self.reads += 1
        if self.fail:
            from twisted.internet.defer import fail
            return fail(ConnectionRefusedError())
        return succeed((list(self.kvs), self.revision))

    newest = 0

    def __init__(self):
        self.kvs = []
        self.revision = 1
        self.reads = 0
        self.watches = []
        self.fail = False
        self.logins = []

    def authenticate(self, user, password):
        self.logins.append((user, password))
        return succeed(None)

    def newestRevision(self, prefix):
        return succeed(self.newest)

    def watch(self, prefix, start, onMessage):
        done = Deferred()
        self.watches.append((start, onMessage, done))
        return done, lambda: done.called or done.callback(None)


def event(key, value, mod):
    import base64
    return {"kv": {"key": base64.b64encode(key.encode()).decode(),
                   "value": base64.b64encode(value).decode(), "mod_revision": str(mod)}}


class EtcdWatchTests(SynchronousTestCase):
    def setUp(self):
        from lbproxy.config.etcd import EtcdConfig
        self.clock = Clock()
        self.etcd = FakeEtcd()
        self.reloads = []
        self.pending = None
        self.watch = EtcdWatch(EtcdConfig(("http://fake:2379",), "/p"), self.clock, [self.etcd],
                               self.reload, Backoff(0.5, 30.0, random=lambda: 0.0))

    def reload(self, source):
        self.reloads.append(dict(self.watch.state.values))
        return succeed({"applied": True})

    def test_followAndResync(self):
        """
        A full read, then a watch from the next revision; after a
        compaction it reads everything again at once; after a disconnect it
        waits (back-off) and reads again; nothing is lost either way.
        """
        self.etcd.kvs = [("/p/pools/a", b"1", 4)]
        self.etcd.revision = 4
        self.watch.startService()
        self.assertEqual(self.etcd.reads, 1)
        start, onMessage, done = self.etcd.watches[-1]
        self.assertEqual(start, 5)
        self.assertEqual(self.reloads, [{"/p/pools/a": b"1"}])
        onMessage({"header": {"revision": "4"}, "created": True})
        onMessage({"header": {"revision": "6"}, "events": [event("/p/pools/a", b"2", 6)]})
        self.assertEqual(self.reloads[-1], {"/p/pools/a": b"2"})
        # Writes while the watch falls behind a compaction:
        self.etcd.kvs = [("/p/pools/a", b"3", 8), ("/p/pools/b", b"4", 9)]
        self.etcd.revision = 12
        onMessage({"header": {"revision": "12"}, "canceled": True, "compact_revision": "10"})
        self.assertEqual(self.etcd.reads, 2)
        self.assertEqual(self.watch.compactions, 1)
        self.assertEqual(self.etcd.watches[-1][0], 13)
        self.assertEqual(self.reloads[-1], {"/p/pools/a": b"3", "/p/pools/b": b"4"})
        # etcd goes away; it is down for the first retry.
        self.etcd.fail = True
        self.etcd.watches[-1][2].errback(ConnectionRefusedError())
        self.assertEqual(self.etcd.reads, 2)
        self.clock.advance(0.5)
        self.assertEqual(self.etcd.reads, 3)
        self.etcd.fail = False
        self.etcd.kvs = [("/p/pools/a", b"5", 14)]
        self.etcd.revision = 14
        self.clock.advance(0.99)
        self.assertEqual(self.etcd.reads, 3)
        self.clock.advance(0.01)
        self.assertEqual(self.etcd.reads, 4)
        self.assertEqual(self.reloads[-1], {"/p/pools/a": b"5"})
        self.assertEqual(self.watch.backoff.attempts, 0)
        self.watch.stopService()
        self.assertFalse(self.clock.getDelayedCalls())

    def test_silentWatch(self):
        """
        A watch that quietly stops delivering (etcd has a change the proxy
        never got, for a whole check interval) is ended and everything is
        read again at once; a watch that delivers is left alone.
        """
        self.etcd.kvs = [("/p/pools/a", b"1", 4)]
        self.etcd.revision = 4
        self.watch.startService()
        onMessage = self.etcd.watches[-1][1]
        self.etcd.newest = 5
        self.clock.advance(30)
        onMessage({"events": [event("/p/pools/a", b"2", 5)]})
        self.clock.advance(30)
        self.assertEqual((self.etcd.reads, self.watch.stalls), (1, 0))
        # Revision 6 never comes through the watch.
        self.etcd.kvs = [("/p/pools/a", b"3", 6)]
        self.etcd.revision = self.etcd.newest = 6
        self.clock.advance(30)
        self.assertEqual(self.etcd.reads, 1)
        self.clock.advance(30)
        self.assertEqual((self.etcd.reads, self.watch.stalls), (2, 1))
        self.assertEqual(self.etcd.watches[-1][0], 7)
        self.assertEqual(self.reloads[-1], {"/p/pools/a": b"3"})
        self.assertEqual(self.watch.backoff.attempts, 0)
        self.watch.stopService()
        self.assertFalse(self.clock.getDelayedCalls())

    def test_authenticates(self):
        """
        With a user, each (re)sync starts by authenticating.
        """
        from lbproxy.config.etcd import EtcdConfig
        watch = EtcdWatch(EtcdConfig(("http://fake:2379",), "/p", user="u", password="pw"),
                          self.clock, [self.etcd], self.reload)
        watch.startService()
        self.etcd.watches[-1][1]({"canceled": True, "compact_revision": "3"})
        self.assertEqual(self.etcd.logins, [("u", "pw"), ("u", "pw")])
        watch.stopService()

    def test_coalesced(self):
        """
        Changes during a reload are applied by one more reload after it.
        """
        self.etcd.revision = 2
        running = []

        def slow(source):
            d = Deferred()
            running.append(d)
            return d
        self.watch._reload = slow
        self.watch.startService()
        onMessage = self.etcd.watches[-1][1]
        # The first read always applies.
        self.assertEqual(len(running), 1)
        running.pop().callback({"applied": True})
        onMessage({"events": [event("/p/pools/a", b"1", 3)]})
        onMessage({"events": [event("/p/pools/a", b"2", 4)]})
        onMessage({"events": [event("/p/pools/a", b"3", 5)]})
        self.assertEqual(len(running), 1)
        running[0].callback({"applied": True})
        self.assertEqual(len(running), 2)
        running[1].callback({"applied": True})
        self.assertEqual(len(running), 2)
        self.watch.stopService()


class OverlayReloadTests(SynchronousTestCase):
    def test_badValueChangesNothing(self):
        """
        Through the reloader: a good etcd pool is applied, a bad one is
        rejected naming its etcd key and the previous configuration stays.
        """

        harness = ProxyHarness(parse_config(tomllib.loads(FILE), "f.toml"))
        reloader = Reloader(harness.core, harness.reactor, "f.toml", read=lambda path: FILE)
        state = reloader.overlay = EtcdState("/p")
        state.reset([("/p/pools/web", pool("127.0.0.1:9001"), 2)], 2)
        outcome = self.successResultOf(reloader.reload("etcd"))
        self.assertTrue(outcome["applied"], outcome)
        members = lambda: [m.target.address for m in harness.core.runtime.pools["web"].members]
        self.assertEqual(members(), ["127.0.0.1:9001"])
        state.apply([("PUT", "/p/pools/web", json.dumps({"targets": [], "x": 1}).encode(), 3)])
        outcome = self.successResultOf(reloader.reload("etcd"))
        self.assertFalse(outcome["applied"])
        self.assertEqual(outcome["file"], "etcd /p/pools/web")
        self.assertEqual(members(), ["127.0.0.1:9001"])


class RestartOnlyTests(SynchronousTestCase):
    def test_etcdTable(self):
        """
        A changed C{[etcd]} table is named as needing a restart.
        """
        from lbproxy.app.reload import restart_only
        base = {"pools": {"a": {"targets": ["127.0.0.1:1"]}}}
        old = parse_config(dict(base, etcd={"endpoints": ["http://h:1"]}))
        new = parse_config(dict(base, etcd={"endpoints": ["http://h:2"]}))
        self.assertEqual(restart_only(old, new), ["etcd"])
        self.assertEqual(restart_only(old, old), [])


class WorkerTests(SynchronousTestCase):
    def test_passedToWorkers(self):
        """
        With workers, the main process sends etcd's keys with the file's
        text; a worker lays them over it as the main process did, and a
        worker started later gets them in its snapshot.
        """
        from lbproxy.app.feed import HealthFeed
        from lbproxy.app.fleet import etcd_lines, worker_reload
        from lbproxy.app.reload import reload_line

        state = EtcdState("/p")
        state.reset([("/p/pools/web", pool("127.0.0.1:9001"), 5),
                     ("/p/routes/1", b'{"path": "/x", "pool": "web"}', 6)], 6)
        line = reload_line("f.toml", FILE, state)
        harness = ProxyHarness(parse_config(tomllib.loads(FILE), "f.toml"))
        reloader = Reloader(harness.core, harness.reactor, "f.toml", announce=False)
        outcomes = []
        feed = HealthFeed(harness.registry, onReload=lambda path, text, etcd=None:
                          worker_reload(reloader, text, etcd).addCallback(outcomes.append))
        feed.dataReceived(line)
        self.assertTrue(outcomes[0]["applied"], outcomes)
        self.assertEqual([m.target.address for m in harness.core.runtime.pools["web"].members],
                         ["127.0.0.1:9001"])
        self.assertEqual([r.path for r in harness.core.config.routes], ["/", "/x"])
        self.assertEqual(reloader.overlay.dump(), state.dump())
        # Without etcd keys, the two-argument form as before.
        feed.dataReceived(reload_line("f.toml", FILE))
        self.assertEqual([r.path for r in harness.core.config.routes], ["/"])
        main = Reloader(harness.core, harness.reactor, "f.toml")
        self.assertEqual(etcd_lines(main, "f.toml", FILE), [])
        main.overlay = state
        self.assertEqual(etcd_lines(main, "f.toml", FILE), [line])
