# -*- test-case-name: tests.test_healthcheck -*-
"""
Health checking: active probes over HTTP with treq, one L{LoopingCall} per
probed target on the injected clock, and passive outlier detection fed by
the proxy's own requests.

Every state change is logged once, e.g.::

    target 127.0.0.1:8082 in pool mango DOWN after 3 failed checks: connection refused
"""

from __future__ import annotations

import random
from typing import Callable, Dict, List, Optional, Tuple

from twisted.application.service import Service
from twisted.internet import defer
from twisted.internet.error import TimeoutError
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from lbproxy.balance.pool import Member, Pool
from lbproxy.health.state import Change, TargetHealth

log = Logger()

#: Most bytes of a probe's response body read (and thrown away).
PROBE_BODY_LIMIT = 64 * 1024


def probe_path(pool_health, target) -> Optional[str]:
    """
    The path probed for a target: its own C{health_check_endpoint} (the
    BWSS form) or its pool's C{health.path}; L{None} for passive checks
    only.
    """
    return target.health_check_endpoint or pool_health.path


def describe_failure(reason) -> str:
    """
    A short reason for a log line: C{"connection refused"}, C{"timed out"}
    (the prober adds how long), C{"status 500"}.
    """
    value = reason.value
    # Agent wraps what went wrong (e.g. the cancellation of a request that
    # timed out) in ResponseNeverReceived and similar, with a list.
    inner = getattr(value, "reasons", None)
    if inner:
        value = inner[0].value
    if isinstance(value, (TimeoutError, defer.TimeoutError, defer.CancelledError)):
        return "timed out"
    name = type(value).__name__
    text = str(value).strip()
    if name == "ConnectionRefusedError":
        return "connection refused"
    if "DNS lookup failed" in text:
        return "DNS lookup failed"
    return text.rstrip(".") or name


def probe_client(reactor, tlsPolicy=None):
    """
    The treq client probes go through: a fresh connection per probe (a
    probe checks that the target accepts connections, so none is reused).

    @param tlsPolicy: an L{IPolicyForHTTPS} for C{https://} targets (the
        pools' CA, client certificate and C{verify}, from
        L{lbproxy.tls.edge.TLSEdge.probePolicy}), or L{None} for Twisted's
        default (the system's trust store).
    """
    from treq.client import HTTPClient
    from twisted.web.client import Agent, HTTPConnectionPool, _HTTP11ClientFactory

    class QuietFactory(_HTTP11ClientFactory):
        # Not two "Starting/Stopping factory" log lines per probe.
        noisy = False

    pool = HTTPConnectionPool(reactor, persistent=False)
    pool._factory = QuietFactory
    if tlsPolicy is None:
        return HTTPClient(Agent(reactor, pool=pool))
    return HTTPClient(Agent(reactor, contextFactory=tlsPolicy, pool=pool))


class _BadStatus(Exception):
    pass


class HealthChecker(Service):
    """
    Keeps every pool member's health up to date.

    @ivar pools: the runtime pools (L{lbproxy.balance.pool.Pool}) by name.
    """

    def __init__(
        self,
        pools: Dict[str, Pool],
        settings: Dict[str, object],
        clock,
        client,
        random: Callable[[], float] = random.random,
        active: bool = True,
    ) -> None:
        """
        @param pools: runtime pools by name.
        @param settings: each pool's L{lbproxy.config.HealthConfig} by name.
        @param clock: an L{IReactorTime}.
        @param client: a treq C{HTTPClient} (or L{treq.testing.StubTreq})
            used for probes.
        @param random: returns a float in [0, 1): the jitter of each
            target's first probe.
        @param active: whether to probe (a worker process does not: its
            main process probes and sends the states).
        """
        self.pools = pools
        self._settings = settings
        self._clock = clock
        self._client = client
        self._random = random
        self._active = active
        #: Called with C{(pool, member)} after each state change.
        self.onChange: Optional[Callable[[Pool, Member], None]] = None
        self._loops: List[LoopingCall] = []
        self._starts: List = []
        self._probes: Dict[Member, defer.Deferred] = {}
        self._ejectionTimers: Dict[Member, object] = {}
        for name, pool in pools.items():
            health = settings[name]
            for member in pool.members:
                path = probe_path(health, member.target)
                member.health = TargetHealth(health, probed=path is not None and active)

    # Service ------------------------------------------------------------------

    def startService(self) -> None:
        Service.startService(self)
        now = self._clock.seconds()
        probed: List[Tuple[Pool, Member]] = []
        for pool in self.pools.values():
            for member in pool.members:
                member.health.lastChange = now
                if member.health.probed and self._active:
                    probed.append((pool, member))
        # Spread the first probes over the interval: the k-th of n targets
        # starts at (k + jitter) / n of its interval, so probes never all
        # fire at once.
        count = len(probed)
        for index, (pool, member) in enumerate(probed):
            interval = member.health.settings.interval
            offset = interval * (index + self._random()) / count
            loop = LoopingCall(self._probe, pool, member)
            loop.clock = self._clock
            self._loops.append(loop)
            self._starts.append(self._clock.callLater(offset, self._startLoop, loop, interval))

    def _startLoop(self, loop: LoopingCall, interval: float) -> None:
        loop.start(interval, now=True).addErrback(
            lambda f: log.failure("health probe loop failed", f)
        )

    def stopService(self):
        Service.stopService(self)
        for call in self._starts:
            if call.active():
                call.cancel()
        self._starts = []
        for loop in self._loops:
            if loop.running:
                loop.stop()
        self._loops = []
        for d in list(self._probes.values()):
            d.cancel()
        for timer in self._ejectionTimers.values():
            if timer.active():
                timer.cancel()
        self._ejectionTimers.clear()

    # Active probes -------------------------------------------------------------

    def _probe(self, pool: Pool, member: Member) -> defer.Deferred:
        health = member.health
        settings = health.settings
        target = member.target
        url = (target.url + probe_path(settings, target)).encode("ascii")
        headers = {
            b"Host": [(settings.host or target.address).encode("ascii")],
            b"User-Agent": [b"lbproxy-health"],
        }
        d = self._client.get(url, headers=headers, allow_redirects=False)
        d.addCallback(self._checkResponse, settings)
        d.addTimeout(settings.timeout, self._clock)
        self._probes[member] = d

        def done(result):
            self._probes.pop(member, None)
            return result

        d.addBoth(done)
        d.addCallbacks(
            lambda _: self._apply(pool, member, health.probeSucceeded(self._clock.seconds())),
            lambda f: self._apply(
                pool,
                member,
                health.probeFailed(self._clock.seconds(), self._describe(f, settings)),
            ),
        )
        return d

    @staticmethod
    def _describe(reason, settings) -> str:
        text = describe_failure(reason)
        if text == "timed out":
            return "timed out after %gs" % (settings.timeout,)
        return text

    def _checkResponse(self, response, settings) -> defer.Deferred:
        code = response.code
        # Read (and drop) a bounded body so the connection is released.
        d = _drain(response)
        if not settings.healthy(code):
            d.addCallback(lambda _: _fail(f"status {code}"))
        return d

    def snapshot(self) -> List[bytes]:
        """
        Every member's state, as lines for a new worker process.
        """
        from lbproxy.app.workers import state_line

        return [
            state_line(pool.name, member.target.address, member.up)
            for pool in self.pools.values()
            for member in pool.members
        ]

    # Passive checks (called by the proxy) ----------------------------------------

    def connectionFailed(self, pool: Pool, member: Member, reason: str) -> None:
        """
        A proxied request could not connect to C{member}, or its connection
        was reset before any response byte.
        """
        change = member.health.connectionFailed(self._clock.seconds(), reason)
        if change is not None:
            self._apply(pool, member, change)
            timer = self._ejectionTimers.pop(member, None)
            if timer is not None and timer.active():
                timer.cancel()
            self._ejectionTimers[member] = self._clock.callLater(
                change.ejectedFor, self._ejectionOver, pool, member
            )

    def responded(self, member: Member) -> None:
        """
        A proxied request got a response from C{member}.
        """
        member.health.responded()

    def _ejectionOver(self, pool: Pool, member: Member) -> None:
        self._ejectionTimers.pop(member, None)
        self._apply(pool, member, member.health.ejectionOver(self._clock.seconds()))

    # State ---------------------------------------------------------------------

    def _apply(self, pool: Pool, member: Member, change: Optional[Change]) -> None:
        member.up = member.health.available
        if change is None:
            return
        if member.up:
            member.startRamp(self._clock.seconds(), member.health.settings.slow_start)
        if self.onChange is not None:
            self.onChange(pool, member)
        log.info(
            "target {address} in pool {pool} {state} {reason}",
            address=member.target.address,
            pool=pool.name,
            state=change.state.upper(),
            reason=change.reason,
        )


def _fail(message: str):
    raise _BadStatus(message)


class _Discard:
    """
    Reads a response body up to L{PROBE_BODY_LIMIT} and drops it.
    """

    def __init__(self, done: defer.Deferred) -> None:
        self._done = done
        self._seen = 0
        self.transport = None

    def makeConnection(self, transport) -> None:
        self.transport = transport

    def dataReceived(self, data: bytes) -> None:
        self._seen += len(data)
        if self._seen > PROBE_BODY_LIMIT and self.transport is not None:
            self.transport.stopProducing()

    def connectionLost(self, reason) -> None:
        if not self._done.called:
            self._done.callback(None)


def _drain(response) -> defer.Deferred:
    """
    Read and drop a response body; cancelling (a probe timing out while the
    body trickles in) closes the connection.
    """
    protocol = None

    def cancel(d):
        if protocol is not None and protocol.transport is not None:
            protocol.transport.stopProducing()

    done: defer.Deferred = defer.Deferred(cancel)
    protocol = _Discard(done)
    response.deliverBody(protocol)
    return done
