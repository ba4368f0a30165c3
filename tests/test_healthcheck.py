"""
The health checker in memory: probes through StubTreq on a Clock, passive
checks through the in-memory proxy.
"""

from __future__ import annotations

from collections import Counter
from typing import Dict, List

from treq.testing import StubTreq
from twisted.internet import defer
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.task import Clock
from twisted.logger import globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from lbproxy.app.workers import state_line
from lbproxy.config import parse_config
from lbproxy.health.checker import HealthChecker
from lbproxy.runtime.snapshot import build_runtime
from lbproxy.runtime.targets import TargetRegistry
from lbproxy.testing import ProxyHarness

ADDRESSES = ["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"]


def config(**health):
    settings = {"interval": 6.0, "timeout": 2.0, "rise": 2, "fall": 3, "path": "/healthz"}
    settings.update(health)
    return parse_config(
        {
            "pools": {"mango": {"targets": list(ADDRESSES), "health": settings}},
            "routes": [{"pool": "mango"}],
        },
        "test.toml",
    )


class Backends(Resource):
    """
    Answers probes by the Host they carry (the target's address): C{ok},
    C{fail} (500), C{hang} (never answers); records when each was probed.
    """

    isLeaf = True

    def __init__(self, clock: Clock) -> None:
        Resource.__init__(self)
        self.clock = clock
        self.mode: Dict[str, str] = {address: "ok" for address in ADDRESSES}
        self.probes: List = []
        self.paths: List[bytes] = []
        self.hosts: List[bytes] = []

    def render_GET(self, request):
        host = request.getHeader(b"host").decode()
        self.probes.append((self.clock.seconds(), host))
        self.paths.append(request.uri)
        self.hosts.append(request.getHeader(b"host"))
        mode = self.mode.get(host, "ok")
        if mode == "hang":
            return NOT_DONE_YET
        if mode == "fail":
            request.setResponseCode(500)
            return b"broken"
        return b"ok"


class Client:
    """
    A probe client: StubTreq over L{Backends}, except that addresses in
    C{refused} fail to connect.
    """

    def __init__(self, backends: Backends) -> None:
        self.stub = StubTreq(backends)
        self.refused = set()

    def get(self, url, **kwargs):
        address = url.decode().split("/")[2]
        if address in self.refused:
            return defer.fail(ConnectionRefusedError())
        d = self.stub.get(url, **kwargs)
        self.stub.flush()
        return d


class LogCapture:
    def __init__(self, case: SynchronousTestCase) -> None:
        self.events: List[dict] = []
        globalLogPublisher.addObserver(self.events.append)
        case.addCleanup(globalLogPublisher.removeObserver, self.events.append)

    def changes(self) -> List[str]:
        from twisted.logger import formatEvent

        return [
            formatEvent(e)
            for e in self.events
            if e.get("log_format", "").startswith("target {address}")
        ]


class CheckerTestCase(SynchronousTestCase):
    def setUp(self):
        self.clock = Clock()
        self.backends = Backends(self.clock)
        self.client = Client(self.backends)
        self.logs = LogCapture(self)

    def start(self, cfg=None):
        self.registry = TargetRegistry()
        self.runtime = build_runtime(cfg or config(), self.registry)
        self.pool = self.runtime.pools["mango"]
        self.checker = HealthChecker(self.registry, self.clock, self.client, random=lambda: 0.5)
        self.checker.startService()
        self.addCleanup(self.checker.stopService)
        return self.checker

    def advance(self, seconds: float, step: float = 0.5) -> None:
        for _ in range(int(round(seconds / step))):
            self.clock.advance(step)
            self.client.stub.flush()

    def member(self, address: str):
        [member] = [m for m in self.pool.members if m.target.address == address]
        return member


class ActiveProbeTests(CheckerTestCase):
    def test_probeRequest(self):
        """
        A probe is a GET of the configured path with the target's address
        as Host (or the configured host).
        """
        self.start(config(host="mango.internal"))
        self.advance(6)
        self.assertEqual(set(self.backends.paths), {b"/healthz"})
        self.assertEqual(set(self.backends.hosts), {b"mango.internal"})

    def test_spreadOverInterval(self):
        """
        The first probes of n targets are spread over the interval, not
        fired at once; then each target is probed every interval.
        """
        self.start()
        self.advance(6)
        firsts = [time for time, _ in self.backends.probes]
        # interval 6, 3 targets, jitter 0.5: offsets 1, 3, 5.
        self.assertEqual(firsts, [1.0, 3.0, 5.0])
        self.advance(12)
        times = sorted(t for t, host in self.backends.probes if host == ADDRESSES[0])
        self.assertEqual(times, [1.0, 7.0, 13.0])

    def test_firstFailureTakesOut(self):
        """
        Targets start up; the first failed probe takes one out at once.
        """
        self.backends.mode[ADDRESSES[0]] = "fail"
        self.start()
        self.assertTrue(all(m.up for m in self.pool.members))
        self.advance(1)
        self.assertFalse(self.member(ADDRESSES[0]).up)
        self.assertEqual(
            self.logs.changes(),
            ["target 10.0.0.1:80 in pool mango DOWN after its first check failed: status 500"],
        )

    def test_fallAndRise(self):
        """
        After a success, fall failures in a row take a target out; rise
        successes bring it back; each change is logged once.
        """
        self.start()
        self.advance(1)
        member = self.member(ADDRESSES[0])
        self.client.refused.add(ADDRESSES[0])
        self.advance(12)  # two failed probes (t=7, 13)
        self.assertTrue(member.up)
        self.advance(6)  # third (t=19)
        self.assertFalse(member.up)
        self.advance(18)  # three more failures: no new log line
        self.client.refused.discard(ADDRESSES[0])
        self.advance(6)  # one success (t=43)
        self.assertFalse(member.up)
        self.advance(6)  # second success (t=49)
        self.assertTrue(member.up)
        self.assertEqual(
            self.logs.changes(),
            [
                "target 10.0.0.1:80 in pool mango DOWN after 3 failed checks: connection refused",
                "target 10.0.0.1:80 in pool mango UP after 2 successful checks",
            ],
        )

    def test_hangingProbeTimesOut(self):
        """
        A probe that gets no answer fails after the timeout; a hanging
        target does not delay the probes of the others.
        """
        self.backends.mode[ADDRESSES[0]] = "hang"
        self.start()
        self.advance(3)
        self.assertEqual(
            self.logs.changes(),
            ["target 10.0.0.1:80 in pool mango DOWN after its first check failed: timed out after 2s"],
        )
        self.assertFalse(self.member(ADDRESSES[0]).up)
        self.advance(15)
        others = sorted(t for t, host in self.backends.probes if host == ADDRESSES[1])
        self.assertEqual(others, [3.0, 9.0, 15.0])

    def test_expectStatus(self):
        """
        expect_status decides which statuses count as healthy.
        """
        self.backends.mode[ADDRESSES[0]] = "fail"
        self.start(config(expect_status=[200, "500-599"]))
        self.advance(6)
        self.assertTrue(self.member(ADDRESSES[0]).up)

    def test_noPathPassiveOnly(self):
        """
        Without a health path, nothing is probed.
        """
        cfg = parse_config(
            {"pools": {"mango": {"targets": list(ADDRESSES)}}, "routes": [{"pool": "mango"}]},
            "test.toml",
        )
        self.start(cfg)
        self.advance(30)
        self.assertEqual(self.backends.probes, [])

    def test_bwssEndpoint(self):
        """
        A target's own health_check_endpoint is probed (the BWSS form).
        """
        cfg = parse_config(
            {"targets": [{"address": ADDRESSES[0], "health_check_endpoint": "/status"}]},
            "test.toml",
        )
        registry = TargetRegistry()
        self.runtime = build_runtime(cfg, registry)
        self.pool = self.runtime.pools["default"]
        checker = HealthChecker(registry, self.clock, self.client, random=lambda: 0)
        checker.startService()
        self.addCleanup(checker.stopService)
        self.advance(1)
        self.assertEqual(self.backends.paths, [b"/status"])

    def test_stopCancels(self):
        """
        Stopping the service leaves no pending calls behind.
        """
        self.backends.mode[ADDRESSES[0]] = "hang"
        checker = self.start()
        self.advance(1.5)
        checker.stopService()
        self.assertEqual(self.clock.getDelayedCalls(), [])


PROXY_CONFIG = {
    "health": {"passive_fail": 2, "ejection_time": 10.0, "max_ejection_time": 40.0},
    "pools": {"mango": {"targets": ["10.1.0.1:80", "10.1.0.2:80"]}},
    "routes": [{"pool": "mango"}],
}
GET = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"
# Connection: close, so that every request opens a connection to watch.
OK = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"


class PassiveTests(SynchronousTestCase):
    def setUp(self):
        self.proxy = ProxyHarness(PROXY_CONFIG)
        self.proxy.health.startService()
        self.addCleanup(self.proxy.health.stopService)
        self.logs = LogCapture(self)

    def request(self, refused=("10.1.0.1:80",)):
        """
        One request; connections to C{refused} addresses are refused.

        @return: the addresses tried, in order (the last one answered).
        """
        client = self.proxy.client()
        client.send(GET)
        tried = []
        while True:
            [address] = self.proxy.pending()
            tried.append(address)
            if address in refused:
                self.proxy.refuse()
                continue
            self.proxy.accept().respond(OK)
            break
        self.assertTrue(client.received().startswith(b"HTTP/1.1 200 OK"))
        return tried

    def test_ejectAndBackOff(self):
        """
        Consecutive connection failures eject a target (every request is
        still answered by the other); it returns after the back-off, which
        doubles when it fails again at once.
        """
        member = self.proxy.resource.runtime.pools["mango"].members[0]
        self.assertEqual(self.request(), ["10.1.0.1:80", "10.1.0.2:80"])
        self.assertTrue(member.up)
        tried = []
        while member.up:
            tried += self.request()
        self.assertEqual(tried.count("10.1.0.1:80"), 1)
        # Ejected: requests go to the other target without trying .1.
        for _ in range(3):
            self.assertEqual(self.request(), ["10.1.0.2:80"])
        self.proxy.reactor.advance(10)
        self.assertTrue(member.up)
        # Fails again right away: ejected for twice as long.
        while member.up:
            self.request()
        self.proxy.reactor.advance(19)
        self.assertFalse(member.up)
        self.proxy.reactor.advance(1)
        self.assertTrue(member.up)
        changes = self.logs.changes()
        self.assertEqual(len(changes), 4, changes)
        self.assertEqual(
            changes[0],
            "target 10.1.0.1:80 in pool mango DOWN ejected for 10s after 2 connection "
            "failures: connection refused",
        )
        self.assertEqual(changes[1], "target 10.1.0.1:80 in pool mango UP after its 10s ejection")
        self.assertIn("DOWN ejected for 20s", changes[2])

    def test_responseResetsCount(self):
        """
        A response in between resets the count of connection failures:
        only passive_fail failures in a row eject.
        """
        proxy = ProxyHarness(
            {
                "health": {"passive_fail": 2},
                "pools": {"solo": {"targets": ["10.1.0.9:80"]}},
                "routes": [{"pool": "solo"}],
            }
        )
        [member] = proxy.resource.runtime.pools["solo"].members

        def refused():
            client = proxy.client()
            client.send(GET)
            proxy.refuse()
            self.assertTrue(client.received().startswith(b"HTTP/1.1 502 "))

        refused()
        client = proxy.client()
        client.send(GET)
        proxy.accept().respond(OK)
        refused()
        self.assertTrue(member.up)
        refused()
        self.assertFalse(member.up)
        client = proxy.client()
        client.send(GET)
        self.assertTrue(client.received().startswith(b"HTTP/1.1 503 "))

    def test_allDown503(self):
        """
        When every target is out, the pool answers 503 with Retry-After of
        one probe interval.
        """
        client = self.proxy.client()
        client.send(GET)
        self.proxy.refuse()
        self.proxy.refuse()
        client2 = self.proxy.client()
        client2.send(GET)
        self.proxy.refuse()
        self.proxy.refuse()
        self.assertTrue(client2.received().startswith(b"HTTP/1.1 502 "))
        client3 = self.proxy.client()
        client3.send(GET)
        response = client3.received()
        self.assertTrue(response.startswith(b"HTTP/1.1 503 Service Unavailable"))
        self.assertIn(b"Retry-After: 5\r\n", response)
        self.assertEqual(self.proxy.pending(), [])


class SlowStartCheckerTests(CheckerTestCase):
    def test_rampAfterRecovery(self):
        """
        With slow_start, a target that comes back starts a ramp; at start-up
        no target ramps.
        """
        self.backends.mode[ADDRESSES[0]] = "fail"
        self.start(config(slow_start=30.0))
        member = self.member(ADDRESSES[0])
        self.assertIsNone(member.state.rampStart)
        self.advance(1)
        self.assertFalse(member.up)
        self.backends.mode[ADDRESSES[0]] = "ok"
        self.advance(12)
        self.assertTrue(member.up)
        self.assertEqual(member.state.rampStart, 13.0)
        self.assertIsNone(self.member(ADDRESSES[1]).state.rampStart)


def two_pools(addresses_a, addresses_b, **health):
    settings = {"interval": 6.0, "timeout": 2.0, "rise": 2, "fall": 3, "path": "/healthz"}
    settings.update(health)
    pools = {"mango": {"targets": list(addresses_a)}}
    routes = [{"pool": "mango"}]
    if addresses_b:
        pools["apple"] = {"targets": list(addresses_b)}
        routes.insert(0, {"path": "/a", "pool": "apple"})
    return parse_config({"health": settings, "pools": pools, "routes": routes}, "test.toml")


class RegistryFollowingTests(CheckerTestCase):
    """
    The checker probes registry entries, and follows new runtimes.
    """

    def test_sharedTargetProbedOnce(self):
        """
        A target two pools share (with the same health check) is probed
        once per interval; its change is logged once, naming both pools,
        and both pools see it.
        """
        self.backends.mode[ADDRESSES[0]] = "fail"
        self.start(two_pools(ADDRESSES[:2], ADDRESSES[:1]))
        self.advance(12)
        probed = [t for t, host in self.backends.probes if host == ADDRESSES[0]]
        self.assertEqual(len(probed), 2)
        self.assertEqual(
            self.logs.changes(),
            ["target 10.0.0.1:80 in pools mango, apple DOWN after its first check failed: "
             "status 500"],
        )
        self.assertFalse(self.runtime.pools["apple"].members[0].up)
        self.assertFalse(self.member(ADDRESSES[0]).up)

    def test_sync(self):
        """
        Building a new runtime stops the probes of the targets it dropped
        (and their pending calls) and starts probing the new ones within an
        interval; a kept target keeps its state and its schedule.
        """
        self.backends.mode[ADDRESSES[1]] = "fail"
        self.start(two_pools(ADDRESSES[:2], ()))
        self.advance(6)
        kept = self.member(ADDRESSES[1]).state
        self.assertFalse(kept.up)
        dropped = self.member(ADDRESSES[0]).state
        self.runtime = build_runtime(two_pools(ADDRESSES[1:], ()), self.registry)
        self.assertTrue(dropped.retired)
        self.assertIs(self.runtime.pools["mango"].members[0].state, kept)
        self.assertFalse(self.runtime.pools["mango"].members[0].up)
        del self.backends.probes[:]
        self.advance(12)
        hosts = Counter(host for _, host in self.backends.probes)
        self.assertEqual(hosts, {ADDRESSES[1]: 2, ADDRESSES[2]: 2})
        self.assertEqual(len(self.clock.getDelayedCalls()), 2)
        self.checker.stopService()
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_snapshot(self):
        """
        The snapshot for a new worker has one line per entry.
        """
        self.backends.mode[ADDRESSES[0]] = "fail"
        self.start(two_pools(ADDRESSES[:2], ADDRESSES[:1]))
        self.advance(6)
        entries = self.registry.entries()
        self.assertEqual(
            self.checker.snapshot(),
            [state_line(entries[0].ident, False), state_line(entries[1].ident, True)],
        )

    def test_onChange(self):
        """
        onChange is called with the entry that changed.
        """
        self.backends.mode[ADDRESSES[0]] = "fail"
        changed = []
        self.start()
        self.checker.onChange = changed.append
        self.advance(6)
        self.assertEqual(changed, [self.member(ADDRESSES[0]).state])
