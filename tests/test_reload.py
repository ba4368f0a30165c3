"""
Tests for reloading (L{lbproxy.app.reload}, L{lbproxy.app.listeners},
L{lbproxy.app.watch}), in memory: an invalid file changes nothing, a valid
one is swapped in whole with the targets' state carried over, requests in
flight finish, listeners are added and removed all or nothing.
"""

from __future__ import annotations

import json

from twisted.internet.error import CannotListenError
from twisted.internet.testing import MemoryReactorClock
from twisted.internet.defer import fail, succeed
from twisted.logger import globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from lbproxy.app.listeners import ListenerSet
from lbproxy.app.reload import Reloader, parse_text, reload_line, restart_only
from lbproxy.app.watch import FileWatch
from lbproxy.app.workers import HealthFeed
from lbproxy.testing import ProxyHarness

BASE = """
[server]
listen = "tcp:8080"
access_log = false
drain_timeout = 10

[pools.web]
targets = ["10.0.0.1:80", "10.0.0.2:80"]

[pools.old]
targets = ["10.0.9.1:80"]

[[routes]]
path = "/old"
pool = "old"

[[routes]]
path = "/"
pool = "web"
"""

# /old and its pool are gone, .2 is dropped, .3 is new, a listener is added.
NEW = """
[server]
listen = ["tcp:8080", "tcp:8081"]
access_log = false
drain_timeout = 10

[pools.web]
targets = ["10.0.0.1:80", "10.0.0.3:80"]

[[routes]]
path = "/new"
pool = "web"

[[routes]]
path = "/"
pool = "web"
"""

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


def get(path: bytes) -> bytes:
    return b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n"


class Events:
    def __init__(self, testCase):
        self.events = []
        globalLogPublisher.addObserver(self.events.append)
        testCase.addCleanup(globalLogPublisher.removeObserver, self.events.append)

    def texts(self):
        from twisted.logger import formatEvent

        return [formatEvent(e) for e in self.events]


class FakePort:
    def __init__(self, ports, description):
        self.ports = ports
        self.description = description
        ports.append(description)

    def stopListening(self):
        self.ports.remove(self.description)
        return succeed(None)


class FakeEndpoint:
    def __init__(self, ports, description, refuse):
        self.ports = ports
        self.description = description
        self.refuse = refuse

    def listen(self, factory):
        if self.description in self.refuse:
            return fail(CannotListenError("", 8081, OSError(98, "Address already in use")))
        return succeed(FakePort(self.ports, self.description))


class ReloadTestCase(SynchronousTestCase):
    def setUp(self):
        self.harness = ProxyHarness(parse_text(BASE, "lbproxy.toml"))
        self.core = self.harness.core
        self.reactor = self.harness.reactor
        self.text = BASE
        self.ports = ["tcp:8080"]
        self.refuse = set()
        from twisted.application.service import MultiService, Service

        self.parent = MultiService()
        self.parent.startService()
        self.listeners = ListenerSet(
            self.parent,
            lambda d: FakeEndpoint(self.ports, d, self.refuse),
            self.core.site,
        )
        first = Service()
        first.setServiceParent(self.parent)
        first.stopService = lambda: self.ports.remove("tcp:8080")
        self.listeners.register("tcp:8080", first)
        self.reloader = Reloader(
            self.core, self.reactor, "lbproxy.toml", listeners=self.listeners,
            read=lambda path: self.text,
        )
        self.events = Events(self)

    def reload(self, text, source="test"):
        self.text = text
        return self.successResultOf(self.reloader.reload(source))


class InvalidTests(ReloadTestCase):
    def test_invalidChangesNothing(self):
        """
        A file with a bad key: the outcome names file, key and reason; one
        log line says so; the runtime, the configuration, the listeners
        and the checksum are what they were.
        """
        runtime = self.core.runtime
        checksum = self.core.configInfo.checksum
        outcome = self.reload(NEW.replace('"10.0.0.3:80"', '"10.0.0.3:99999"'))
        self.assertFalse(outcome["applied"])
        self.assertEqual(outcome["file"], "lbproxy.toml")
        self.assertEqual(outcome["key"], "pools.web.targets[1]")
        self.assertIn("port", outcome["reason"])
        self.assertIs(self.core.runtime, runtime)
        self.assertEqual(self.core.configInfo.checksum, checksum)
        self.assertEqual(self.ports, ["tcp:8080"])
        lines = [t for t in self.events.texts() if "reload" in t]
        self.assertEqual(len(lines), 1)
        self.assertIn("rejected", lines[0])
        self.assertIn("lbproxy.toml: pools.web.targets[1]:", lines[0])
        self.assertEqual(self.core.configInfo.lastOutcome, outcome)

    def test_syntax(self):
        outcome = self.reload("[server\n")
        self.assertFalse(outcome["applied"])
        self.assertIn("TOML syntax error", outcome["reason"])

    def test_listenerFails(self):
        """
        A listener that cannot be opened fails the whole reload: the ones
        opened are closed again, the runtime stays.
        """
        runtime = self.core.runtime
        text = NEW.replace('["tcp:8080", "tcp:8081"]', '["tcp:8080", "tcp:8082", "tcp:8081"]')
        self.refuse.add("tcp:8081")
        outcome = self.reload(text)
        self.assertFalse(outcome["applied"])
        self.assertEqual(outcome["key"], "server.listen")
        self.assertIn("cannot listen on tcp:8081: Address already in use", outcome["reason"])
        self.assertIs(self.core.runtime, runtime)
        self.assertEqual(self.ports, ["tcp:8080"])
        self.assertEqual(self.listeners.descriptions(), ["tcp:8080"])


class ApplyTests(ReloadTestCase):
    def test_swap(self):
        """
        A valid file: one new runtime; kept targets keep their state;
        dropped ones are retired; listeners are added and removed; the
        outcome and the log line say what changed.
        """
        old = self.core.runtime
        one, two = old.pools["web"].members
        one.state.health.passiveErrors = 7
        one.state.inflight = 2
        self.reactor.advance(100)
        outcome = self.reload(NEW, "SIGHUP")
        self.assertTrue(outcome["applied"])
        new = self.core.runtime
        self.assertIsNot(new, old)
        kept, added = new.pools["web"].members
        self.assertIs(kept.state, one.state)
        self.assertEqual((kept.state.inflight, kept.health.passiveErrors), (2, 7))
        self.assertTrue(two.state.retired)
        self.assertEqual(added.target.address, "10.0.0.3:80")
        self.assertNotIn("old", new.pools)
        self.assertEqual(outcome["targets_added"], ["web/10.0.0.3:80"])
        self.assertEqual(outcome["targets_removed"], ["old/10.0.9.1:80", "web/10.0.0.2:80"])
        self.assertEqual(outcome["listeners_opened"], ["tcp:8081"])
        self.assertEqual(sorted(self.ports), ["tcp:8080", "tcp:8081"])
        self.assertEqual(self.core.listeners, ("tcp:8080", "tcp:8081"))
        self.assertEqual(self.core.configInfo.loadedAt, 100)
        self.assertEqual(self.core.configInfo.reloads, 1)
        lines = [t for t in self.events.texts() if "reload" in t]
        self.assertEqual(len(lines), 1)
        self.assertIn("reload (SIGHUP) applied", lines[0])

        # And back: the added listener is closed, the first kept.
        outcome = self.reload(BASE)
        self.assertEqual(outcome["listeners_closed"], ["tcp:8081"])
        self.assertEqual(self.ports, ["tcp:8080"])

    def test_inFlightFinishes(self):
        """
        A request in flight on a route the reload removes finishes on the
        runtime it started with; a new request gets the new routes.
        """
        client = self.harness.client()
        client.send(get(b"/old/x"))
        backend = self.harness.accept()
        self.assertEqual(backend.address, "10.0.9.1:80")
        self.reload(NEW)
        backend.respond(OK)
        self.assertTrue(client.received().startswith(b"HTTP/1.1 200 OK"))
        other = self.harness.client(port=50001)
        other.send(get(b"/old/x"))
        self.assertIn(self.harness.accept().address, ("10.0.0.1:80", "10.0.0.3:80"))

    def test_restartOnly(self):
        old = parse_text(BASE, "a.toml")
        new = parse_text(BASE.replace("access_log = false", 'access_log = "-"'), "a.toml")
        self.assertEqual(restart_only(old, new), ["server.access_log"])
        self.assertEqual(restart_only(old, old), [])

    def test_oneAtATime(self):
        """
        A reload asked for while one runs waits its turn.
        """
        from twisted.internet.defer import Deferred

        gate = Deferred()
        self.refuse = set()
        endpoints = self.listeners._endpointFor
        self.listeners._endpointFor = lambda d: _Gated(endpoints(d), gate)
        self.text = NEW
        first = self.reloader.reload("one")
        second = self.reloader.reload("two")
        self.assertNoResult(first)
        self.assertNoResult(second)
        gate.callback(None)
        self.assertTrue(self.successResultOf(first)["applied"])
        self.assertTrue(self.successResultOf(second)["applied"])
        self.assertEqual(self.core.configInfo.reloads, 2)


class _Gated:
    def __init__(self, endpoint, gate):
        self.endpoint = endpoint
        self.gate = gate

    def listen(self, factory):
        return self.gate.addCallback(lambda _: self.endpoint.listen(factory))


class WorkerTests(SynchronousTestCase):
    def test_reloadLine(self):
        """
        The main process's reload line reaches the feed's C{onReload}
        before the health states that follow it.
        """
        calls = []
        registry = ProxyHarness(parse_text(BASE, "a.toml")).registry
        feed = HealthFeed(registry, onReload=lambda path, text: calls.append((path, text)))
        feed.dataReceived(reload_line("/etc/lbproxy.toml", NEW)[:10])
        self.assertEqual(calls, [])
        feed.dataReceived(reload_line("/etc/lbproxy.toml", NEW)[10:])
        self.assertEqual(calls, [("/etc/lbproxy.toml", NEW)])

    def test_workerApplies(self):
        """
        A worker's reloader applies the text it is given and logs no
        outcome line of its own (the main process logs it once).
        """
        harness = ProxyHarness(parse_text(BASE, "a.toml"))
        events = Events(self)
        reloader = Reloader(harness.core, harness.reactor, "a.toml", announce=False,
                            read=lambda path: self.fail("a worker reads no file"))
        outcome = self.successResultOf(reloader.reload("main process", NEW))
        self.assertTrue(outcome["applied"])
        self.assertNotIn("old", harness.core.runtime.pools)
        self.assertEqual([t for t in events.texts() if "reload" in t], [])

    def test_mainRejectsListenerChange(self):
        """
        With workers, changing the listeners needs a restart.
        """
        harness = ProxyHarness(parse_text(BASE, "a.toml"))
        sent = []
        reloader = Reloader(harness.core, harness.reactor, "a.toml",
                            workers=lambda path, text: sent.append(text),
                            read=lambda path: NEW)
        outcome = self.successResultOf(reloader.reload("SIGHUP"))
        self.assertFalse(outcome["applied"])
        self.assertIn("needs a restart", outcome["reason"])
        self.assertEqual(sent, [])
        reloader._read = lambda path: NEW.replace('["tcp:8080", "tcp:8081"]', '"tcp:8080"')
        self.assertTrue(self.successResultOf(reloader.reload("SIGHUP"))["applied"])
        self.assertEqual(len(sent), 1)


class WatchTests(SynchronousTestCase):
    def test_debounced(self):
        """
        A change is reloaded once it reads the same twice; the same text
        is not reloaded again.
        """
        texts = {"now": b"a"}
        reloads = []
        watch = FileWatch("x", reloads.append, MemoryReactorClock(),
                          digest=lambda path: texts["now"])
        watch.check()
        self.assertEqual(reloads, [])
        texts["now"] = b"b"
        watch.check()
        self.assertEqual(reloads, [])
        watch.check()
        self.assertEqual(reloads, ["file change"])
        watch.check()
        self.assertEqual(reloads, ["file change"])
        texts["now"] = None
        watch.check()
        watch.check()
        self.assertEqual(reloads, ["file change"])


class OverridesTests(SynchronousTestCase):
    """
    The admin API's changes pass from the main process to its workers.
    """

    def test_dumpLoad(self):
        from lbproxy.config import Target
        from lbproxy.runtime.overrides import ApiOverrides

        overrides = ApiOverrides()
        overrides.add("web", Target("http", "10.0.0.5", 80, weight=3))
        overrides.setWeight("web", "10.0.0.1:80", 7)
        overrides.drain("web", "10.0.0.2:80")
        overrides.remove("old", "10.0.9.1:80")
        copy = ApiOverrides()
        copy.load(json.loads(json.dumps(overrides.dump())))
        self.assertEqual(copy.describe(), overrides.describe())
        self.assertEqual(copy.dump(), overrides.dump())

    def test_workerApplies(self):
        """
        A worker's feed hands the main process's changes over; applied, the
        worker's runtime has them (a drain included).
        """
        from lbproxy.app.feed import overrides_line
        from lbproxy.config import Target
        from lbproxy.runtime.overrides import ApiOverrides

        main = ApiOverrides()
        main.add("web", Target("http", "10.0.0.5", 80))
        main.drain("web", "10.0.0.1:80")
        worker = ProxyHarness(parse_text(BASE, "a.toml"))

        def apply(data):
            worker.core.overrides.load(data)
            worker.core.rebuild()

        HealthFeed(worker.registry, onOverrides=apply).dataReceived(overrides_line(main.dump()))
        members = {m.target.address: m for m in worker.core.runtime.pools["web"].members}
        self.assertEqual(sorted(members), ["10.0.0.1:80", "10.0.0.2:80", "10.0.0.5:80"])
        self.assertFalse(members["10.0.0.1:80"].state.up)
        # Enabled again in the main process: the worker follows.
        main.enable("web", "10.0.0.1:80")
        HealthFeed(worker.registry, onOverrides=apply).dataReceived(overrides_line(main.dump()))
        self.assertTrue(members["10.0.0.1:80"].state.up)

    def test_sharedEntry(self):
        """
        A target in two pools (one entry) drained through one of them is
        drained, whatever the order of the pools.
        """
        text = BASE.replace('targets = ["10.0.9.1:80"]', 'targets = ["10.0.0.1:80"]')
        harness = ProxyHarness(parse_text(text, "a.toml"))
        harness.core.overrides.drain("old", "10.0.0.1:80")
        harness.core.markDrained(harness.core.runtime)
        state = harness.core.runtime.pools["web"].members[0].state
        self.assertIs(state, harness.core.runtime.pools["old"].members[0].state)
        self.assertFalse(state.up)
