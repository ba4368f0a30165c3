# -*- test-case-name: tests.test_feed -*-
"""
A pool's WebSocket discovery feed, in memory: the C{discovery} key,
message handling (each valid list is the pool's whole membership, through
the admin API's overrides; malformed ones are ignored), the back-off
schedule, and the autobahn client against an autobahn server over
L{twisted.test.iosim}.
"""

from __future__ import annotations

import json

from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from twisted.internet.defer import fail
from twisted.internet.task import Clock
from twisted.test.iosim import connectedServerAndClient
from twisted.trial.unittest import SynchronousTestCase

from lbproxy.admin.changes import set_members
from lbproxy.app.reload import Reloader
from lbproxy.config import ConfigError, parse_config
from lbproxy.discovery.backoff import Backoff
from lbproxy.discovery.feed import FeedError, PoolFeed, parse_targets
from lbproxy.testing import ProxyHarness

FILE = """
[pools.web]
targets = ["127.0.0.1:8001", "127.0.0.1:8002"]
discovery = { websocket = "ws://127.0.0.1:7000/backends" }
[[routes]]
path = "/"
pool = "web"
"""


class DiscoveryConfigTests(SynchronousTestCase):
    def test_errors(self):
        for value in [{"websocket": "http://h:1/x"}, {"websocket": "ws://h/x"}, {"x": 1}, "ws://"]:
            with self.assertRaises(ConfigError) as e:
                parse_config({"pools": {"a": {"targets": ["127.0.0.1:1"], "discovery": value}}})
            self.assertTrue(e.exception.key.startswith("pools.a.discovery"), e.exception.key)


class MessageTests(SynchronousTestCase):
    def test_valid(self):
        targets = parse_targets(b'[{"address": "10.0.0.3:8000", "weight": 3}, "10.0.0.4:8000"]')
        self.assertEqual([(t.address, t.weight) for t in targets],
                         [("10.0.0.3:8000", 3), ("10.0.0.4:8000", 1)])

    def test_malformed(self):
        for payload in [b"nope", b"{}", b"[]", b'["10.0.0.1"]', b'[{"weight": 2}]',
                        b'["10.0.0.1:1", "10.0.0.1:1"]', b'[{"address": "h:1", "weight": 0}]',
                        b'\xff']:
            self.assertRaises(FeedError, parse_targets, payload)


class Endpoint:
    def __init__(self):
        self.attempts = 0

    def connect(self, factory):
        self.attempts += 1
        return fail(ConnectionRefusedError())


class FeedTests(SynchronousTestCase):
    def setUp(self):
        from lbproxy.config.document import tomllib
        self.config = parse_config(tomllib.loads(FILE), "f.toml")
        self.harness = ProxyHarness(self.config)
        self.core = self.harness.core

    def members(self):
        return [(m.target.address, m.weight)
                for m in self.core.runtime.pools["web"].members]

    def feed(self, endpoint=None, clock=None):
        return PoolFeed("ws://127.0.0.1:7000/backends", "web", clock or Clock(),
                        lambda pool, targets: set_members(self.core, pool, targets, "test"),
                        Backoff(0.5, 30.0, random=lambda: 0.0), endpoint=endpoint or Endpoint())

    def test_membership(self):
        """
        Each list replaces the pool's targets; a malformed one changes
        nothing; the feed's membership stays across a reload of the file.
        """
        feed = self.feed()
        feed.received(b'[{"address": "127.0.0.1:8003", "weight": 2}, "127.0.0.1:8001"]')
        self.assertEqual(self.members(), [("127.0.0.1:8003", 2), ("127.0.0.1:8001", 1)])
        feed.received(b'[{"address": "127.0.0.1:8003"')
        self.assertEqual((feed.applied, feed.ignored), (1, 1))
        self.assertEqual(self.members(), [("127.0.0.1:8003", 2), ("127.0.0.1:8001", 1)])
        reloader = Reloader(self.core, self.harness.reactor, "f.toml", read=lambda path: FILE)
        self.assertTrue(self.successResultOf(reloader.reload("test"))["applied"])
        self.assertEqual(self.members(), [("127.0.0.1:8003", 2), ("127.0.0.1:8001", 1)])
        feed.received(b'["127.0.0.1:8004"]')
        self.assertEqual(self.members(), [("127.0.0.1:8004", 1)])
        # Passed to workers like the API's changes.
        data = json.loads(json.dumps(self.core.overrides.dump()))
        self.assertEqual(data["members"], {"web": [["http", "127.0.0.1", 8004, 1]]})

    def test_backoffSchedule(self):
        """
        0.5 s doubling to 30 s while the agent refuses; each delay is
        jittered down by at most 20 %.
        """
        clock = Clock()
        endpoint = Endpoint()
        feed = self.feed(endpoint, clock)
        feed.startService()
        for _ in range(9):
            clock.advance(feed.delays[-1])
        self.assertEqual(feed.delays, [0.5, 1, 2, 4, 8, 16, 30, 30, 30, 30])
        self.assertEqual(endpoint.attempts, 10)
        feed.stopService()
        self.assertFalse(clock.getDelayedCalls())
        jittered = Backoff(0.5, 30.0, random=lambda: 0.999)
        self.assertAlmostEqual(jittered.next(), 0.5 * 0.8, places=3)

    def test_overWebSocket(self):
        """
        The autobahn client receives an autobahn server's messages and
        applies them; when the agent closes, a reconnect is scheduled.
        """
        clock = Clock()
        feed = self.feed(clock=clock)

        class Agent(WebSocketServerProtocol):
            def onOpen(self):
                self.sendMessage(b'["127.0.0.1:8005", "127.0.0.1:8006"]')
                self.sendMessage(b'not json')

        server = WebSocketServerFactory("ws://127.0.0.1:7000")
        server.protocol = Agent
        feed.running = True
        serverProto, clientProto, pump = connectedServerAndClient(
            lambda: server.buildProtocol(None), lambda: feed.factory.buildProtocol(None))
        pump.flush()
        self.assertEqual(self.members(), [("127.0.0.1:8005", 1), ("127.0.0.1:8006", 1)])
        self.assertEqual((feed.applied, feed.ignored), (1, 1))
        serverProto.dropConnection(abort=True)
        pump.flush()
        self.assertEqual(feed.delays, [0.5])
        self.assertEqual(self.members(), [("127.0.0.1:8005", 1), ("127.0.0.1:8006", 1)])
        feed.running = False
        for call in clock.getDelayedCalls():
            call.cancel()


class FeedSetTests(SynchronousTestCase):
    def test_followsReloads(self):
        """
        A reload that removes a pool's discovery stops its feed and gives
        the pool the file's targets again; one that adds it starts a feed.
        """
        from twisted.application.service import MultiService

        from lbproxy.app.fleet import start_fleet
        from lbproxy.config.document import tomllib

        text = {"now": FILE}
        harness = ProxyHarness(parse_config(tomllib.loads(FILE), "f.toml"))
        core = harness.core
        reloader = Reloader(core, harness.reactor, "f.toml", read=lambda path: text["now"])
        parent = MultiService()
        start_fleet(parent, core.config, harness.reactor, core, reloader)
        parent.startService()
        self.addCleanup(parent.stopService)
        (feeds,) = [s for s in parent if s.__class__.__name__ == "FeedSet"]
        self.assertEqual(list(feeds.feeds), [("web", "ws://127.0.0.1:7000/backends")])
        feed = feeds.feeds[("web", "ws://127.0.0.1:7000/backends")]
        self.assertTrue(feed.running)
        feed.received(b'["127.0.0.1:8009"]')
        members = lambda: [m.target.address for m in core.runtime.pools["web"].members]
        self.assertEqual(members(), ["127.0.0.1:8009"])
        text["now"] = FILE.replace('discovery = { websocket = "ws://127.0.0.1:7000/backends" }\n', "")
        self.assertTrue(self.successResultOf(reloader.reload("test"))["applied"])
        self.assertEqual(feeds.feeds, {})
        self.assertFalse(feed.running)
        self.assertEqual(members(), ["127.0.0.1:8001", "127.0.0.1:8002"])
        text["now"] = FILE.replace("7000", "7001")
        self.assertTrue(self.successResultOf(reloader.reload("test"))["applied"])
        self.assertEqual(list(feeds.feeds), [("web", "ws://127.0.0.1:7001/backends")])
