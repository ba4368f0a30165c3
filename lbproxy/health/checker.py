# -*- test-case-name: tests.test_healthcheck -*-
"""
Health checking: active probes over HTTP with treq, one L{LoopingCall} per
probed target on the injected clock, and passive outlier detection fed by
the proxy's own requests.

It follows a L{TargetRegistry}, not any one runtime's pools: a target two
pools share (with the same health check) is probed once, and when a new
runtime is built the probes of new targets start and those of retired ones
stop (L{HealthChecker.sync}).

Every state change is logged once, e.g.::

    target 127.0.0.1:8082 in pool mango DOWN after 3 failed checks: connection refused
"""

from __future__ import annotations

import random
from typing import Callable, Dict, List, Optional, Sequence, Set

from twisted.application.service import Service
from twisted.internet import defer
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from lbproxy.balance.members import Member
from lbproxy.health.probe import check_response, connect_probe, describe_failure, probe_client
from lbproxy.health.state import Change, probe_path
from lbproxy.runtime.targets import TargetRegistry, TargetState

__all__ = ["HealthChecker", "describe_failure", "probe_client", "probe_path"]

log = Logger()


class HealthChecker(Service):
    """
    Keeps the health of every entry of a target registry up to date.

    @ivar registry: the L{TargetRegistry} followed.
    """

    def __init__(
        self,
        registry: TargetRegistry,
        clock,
        client,
        random: Callable[[], float] = random.random,
    ) -> None:
        """
        @param registry: the targets to check.  Its entries whose health
            says C{probed} are probed (none when the registry is not
            C{probing}: a worker process, whose main process probes and
            sends it the states); all are checked passively.  The checker
            follows its L{TargetRegistry.retain}s.
        @param clock: an L{IReactorTime}.
        @param client: a treq C{HTTPClient} (or L{treq.testing.StubTreq})
            used for probes.
        @param random: returns a float in [0, 1): the jitter of each
            target's first probe.
        """
        self.registry = registry
        self._clock = clock
        self._client = client
        self._random = random
        #: Called with the L{TargetState} after each state change.
        self.onChange: Optional[Callable[[TargetState], None]] = None
        self._known: Set[TargetState] = set()
        self._loops: Dict[TargetState, LoopingCall] = {}
        self._starts: Dict[TargetState, object] = {}
        self._probes: Dict[TargetState, defer.Deferred] = {}
        self._ejectionTimers: Dict[TargetState, object] = {}
        registry.subscribe(self.sync)

    # Service ------------------------------------------------------------------

    def startService(self) -> None:
        Service.startService(self)
        now = self._clock.seconds()
        entries = self.registry.entries()
        self._known = set(entries)
        probed = []
        for entry in entries:
            entry.health.lastChange = now
            if entry.health.probed:
                probed.append(entry)
        # Spread the first probes over the interval: the k-th of n targets
        # starts at (k + jitter) / n of its interval, so probes never all
        # fire at once.
        count = len(probed)
        for index, entry in enumerate(probed):
            interval = entry.health.settings.interval
            self._schedule(entry, interval * (index + self._random()) / count)

    def sync(self, retired: Sequence[TargetState] = ()) -> None:
        """
        Follow the registry after a new runtime was built: stop checking
        its retired entries, start probing its new ones (each first probed
        at a random point of its first interval).  Called by the registry
        after each L{TargetRegistry.retain}.
        """
        entries = self.registry.entries()
        current = set(entries)
        for entry in [e for e in self._known if e not in current]:
            self._forget(entry)
        if not self.running:
            return
        now = self._clock.seconds()
        for entry in entries:
            if entry in self._known:
                continue
            self._known.add(entry)
            entry.health.lastChange = now
            if entry.health.probed:
                self._schedule(entry, entry.health.settings.interval * self._random())

    def _schedule(self, entry: TargetState, offset: float) -> None:
        loop = LoopingCall(self._probe, entry)
        loop.clock = self._clock
        self._loops[entry] = loop
        self._starts[entry] = self._clock.callLater(
            offset, self._startLoop, entry, loop, entry.health.settings.interval
        )

    def _forget(self, entry: TargetState) -> None:
        """
        Stop everything that runs for C{entry}.
        """
        self._known.discard(entry)
        call = self._starts.pop(entry, None)
        if call is not None and call.active():
            call.cancel()
        loop = self._loops.pop(entry, None)
        if loop is not None and loop.running:
            loop.stop()
        d = self._probes.pop(entry, None)
        if d is not None:
            d.cancel()
        timer = self._ejectionTimers.pop(entry, None)
        if timer is not None and timer.active():
            timer.cancel()

    def _startLoop(self, entry: TargetState, loop: LoopingCall, interval: float) -> None:
        self._starts.pop(entry, None)
        loop.start(interval, now=True).addErrback(
            lambda f: log.failure("health probe loop failed", f)
        )

    def stopService(self):
        Service.stopService(self)
        for entry in list(self._known):
            self._forget(entry)

    # Active probes -------------------------------------------------------------

    def _probe(self, entry: TargetState) -> defer.Deferred:
        health = entry.health
        settings = health.settings
        target = entry.target
        path = probe_path(settings, target)
        if path is None:
            # A pool of [[tcp]] services or TLS passthrough: can it connect?
            d = connect_probe(self._clock, target, settings.timeout)
        else:
            url = (target.url + path).encode("ascii")
            headers = {
                b"Host": [(settings.host or target.address).encode("ascii")],
                b"User-Agent": [b"lbproxy-health"],
            }
            d = self._client.get(url, headers=headers, allow_redirects=False)
            d.addCallback(check_response, settings)
        d.addTimeout(settings.timeout, self._clock)
        self._probes[entry] = d
        started = self._clock.seconds()

        def done(result):
            if self._probes.get(entry) is d:
                del self._probes[entry]
            entry.counters.probes.observe(self._clock.seconds() - started)
            return result

        d.addBoth(done)
        d.addCallbacks(
            lambda body: self._probed(entry, body),
            lambda f: self._apply(
                entry, health.probeFailed(self._clock.seconds(), self._describe(f, settings))
            ),
        )
        return d

    def _probed(self, entry: TargetState, body: bytes) -> None:
        # The body may carry a score (score-driven weights, from = "probe").
        entry.probeBody = body
        self._apply(entry, entry.health.probeSucceeded(self._clock.seconds()))

    @staticmethod
    def _describe(reason, settings) -> str:
        text = describe_failure(reason)
        if text == "timed out":
            return "timed out after %gs" % (settings.timeout,)
        return text

    def snapshot(self) -> List[bytes]:
        """
        Every entry's state, as lines for a new worker process.
        """
        from lbproxy.app.workers import state_line

        return [state_line(entry.ident, entry.up) for entry in self.registry.entries()]

    # Passive checks (called by the proxy) ----------------------------------------

    def connectionFailed(self, pool, member: Member, reason: str) -> None:
        """
        A proxied request could not connect to C{member}'s target, or its
        connection was reset before any response byte.

        @param pool: the L{lbproxy.balance.pool.Pool} of the request.
        """
        entry = member.state
        if entry.retired:
            # A request that outlived its target's runtime: not news.
            return
        change = entry.health.connectionFailed(self._clock.seconds(), reason)
        if change is not None:
            self._apply(entry, change)
            timer = self._ejectionTimers.pop(entry, None)
            if timer is not None and timer.active():
                timer.cancel()
            self._ejectionTimers[entry] = self._clock.callLater(
                change.ejectedFor, self._ejectionOver, entry
            )

    def responded(self, member: Member) -> None:
        """
        A proxied request got a response from C{member}'s target.
        """
        member.state.health.responded()

    def _ejectionOver(self, entry: TargetState) -> None:
        self._ejectionTimers.pop(entry, None)
        self._apply(entry, entry.health.ejectionOver(self._clock.seconds()))

    # State ---------------------------------------------------------------------

    def _apply(self, entry: TargetState, change: Optional[Change]) -> None:
        entry.up = entry.health.available
        if change is None or entry.retired:
            return
        if entry.up:
            entry.startRamp(self._clock.seconds(), entry.health.settings.slow_start)
        entry.counters.changed(change.state, change.reason)
        if self.onChange is not None:
            self.onChange(entry)
        log.info(
            "target {address} in {where} {state} {reason}",
            address=entry.target.address,
            where=_where(entry.pools),
            state=change.state.upper(),
            reason=change.reason,
        )


def _where(pools: Sequence[str]) -> str:
    """
    C{"pool mango"}, C{"pools apple, mango"}.
    """
    if len(pools) == 1:
        return f"pool {pools[0]}"
    return "pools " + ", ".join(pools)
