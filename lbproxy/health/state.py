# -*- test-case-name: tests.test_health -*-
"""
The health state of one target: active probe results and passive
connection failures in, state changes out.

Pure: no Twisted, no clock of its own (callers pass C{now}), no I/O.
L{lbproxy.health.checker} drives it and logs the changes it reports.

States:
  - C{up}: in rotation;
  - C{down}: out of rotation, after C{fall} failed probes (or the first
    probe after start-up failing), or ejected after C{passive_fail}
    connection failures in a row;
  - C{draining}: taken out by an operator (kept for the admin API).

At start-up every target is C{up} until its first probe says otherwise: the
first failed probe takes it out at once, later ones need C{fall} in a row.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:
    # Only a type: lbproxy.config imports lbproxy.balance, which reaches
    # this module through the target registry.
    from lbproxy.config import HealthConfig, Target

UP = "up"
DOWN = "down"
DRAINING = "draining"


class Change:
    """
    A state change worth one log line.

    @ivar state: the new state.
    @ivar reason: why, e.g. C{"after 3 failed checks: connection refused"}.
    @ivar ejectedFor: seconds of a passive ejection, else L{None}.
    """

    def __init__(self, state: str, reason: str, ejectedFor: Optional[float] = None) -> None:
        self.state = state
        self.reason = reason
        self.ejectedFor = ejectedFor

    def __repr__(self) -> str:
        return f"<Change {self.state.upper()} {self.reason}>"


def probe_path(settings: HealthConfig, target: Target) -> Optional[str]:
    """
    The path probed for a target: its own C{health_check_endpoint} (the
    BWSS form) or its pool's C{health.path}; L{None} for passive checks
    only.
    """
    return target.health_check_endpoint or settings.path


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


class TargetHealth:
    """
    Counters and state of one target in one pool.

    @ivar state: L{UP}, L{DOWN} or L{DRAINING}.
    @ivar probed: whether active probes run for this target.
    @ivar successes: consecutive successful probes.
    @ivar failures: consecutive failed probes.
    @ivar connectionFailures: consecutive passive failures (refused,
        connect timeout, reset before the response).
    @ivar ejectedUntil: when a passive ejection ends, or L{None}.
    @ivar ejections: ejections in a row (the back-off exponent).
    @ivar lastChange: time of the last state change.
    @ivar lastReason: reason of the last state change.
    @ivar probesOk: successful probes, ever.
    @ivar probesFailed: failed probes, ever.
    @ivar passiveErrors: passive failures, ever.
    @ivar totalEjections: ejections, ever.
    """

    def __init__(self, settings: HealthConfig, probed: bool, now: float = 0.0) -> None:
        self.settings = settings
        self.probed = probed
        self.state = UP
        self.checked = False
        self.successes = 0
        self.failures = 0
        self.connectionFailures = 0
        self.ejectedUntil: Optional[float] = None
        self.ejections = 0
        self._lastBackoff = 0.0
        self._returnedAt: Optional[float] = None
        self.lastChange = now
        self.lastReason = "start-up"
        self.probesOk = 0
        self.probesFailed = 0
        self.passiveErrors = 0
        self.totalEjections = 0

    #: Set in a worker from the main process's active checks.
    remoteDown = False

    @property
    def available(self) -> bool:
        """
        Whether the target may receive requests.
        """
        return self.state == UP and not self.remoteDown

    def external(self, up: bool) -> None:
        """
        In a worker: the main process's active checks say the target is up
        or down (passive checks stay this process's own).
        """
        self.remoteDown = not up

    def _change(self, now: float, state: str, reason: str, ejectedFor=None) -> Change:
        if state == UP:
            self._returnedAt = now
            self.ejectedUntil = None
            self.connectionFailures = 0
        self.state = state
        self.lastChange = now
        self.lastReason = reason
        return Change(state, reason, ejectedFor)

    # Active probes ---------------------------------------------------------

    def probeSucceeded(self, now: float) -> Optional[Change]:
        self.probesOk += 1
        self.checked = True
        self.failures = 0
        self.successes += 1
        if self.state != DOWN or self.successes < self.settings.rise:
            return None
        if self.ejectedUntil is not None and now < self.ejectedUntil:
            # Passing probes, but the ejection is not over yet.
            return None
        return self._change(
            now, UP, f"after {_plural(self.successes, 'successful check')}"
        )

    def probeFailed(self, now: float, reason: str) -> Optional[Change]:
        self.probesFailed += 1
        first = not self.checked
        self.checked = True
        self.successes = 0
        self.failures += 1
        if self.state != UP:
            return None
        if first:
            return self._change(now, DOWN, f"after its first check failed: {reason}")
        if self.failures >= self.settings.fall:
            return self._change(
                now, DOWN, f"after {_plural(self.failures, 'failed check')}: {reason}"
            )
        return None

    # Passive checks --------------------------------------------------------

    def connectionFailed(self, now: float, reason: str) -> Optional[Change]:
        """
        A request could not connect, or the connection was reset before the
        response started.
        """
        self.passiveErrors += 1
        if self.state != UP:
            # Requests that were under way when it went down: not news.
            return None
        self.connectionFailures += 1
        if self.connectionFailures < self.settings.passive_fail:
            return None
        returned = self._returnedAt
        if returned is None or now - returned > self._lastBackoff:
            # Healthy for longer than its last ejection: start over.
            self.ejections = 0
        self.ejections += 1
        self.totalEjections += 1
        backoff = min(
            self.settings.ejection_time * 2 ** (self.ejections - 1),
            self.settings.max_ejection_time,
        )
        self._lastBackoff = backoff
        self.ejectedUntil = now + backoff
        self.successes = 0
        failures = self.connectionFailures
        self.connectionFailures = 0
        return self._change(
            now,
            DOWN,
            f"ejected for {backoff:g}s after "
            f"{_plural(failures, 'connection failure')}: {reason}",
            backoff,
        )

    def responded(self) -> None:
        """
        A response started: the connection works.
        """
        self.connectionFailures = 0

    def ejectionOver(self, now: float) -> Optional[Change]:
        """
        The ejection's time is up. Without probes the target returns now;
        with probes it returns once C{rise} probes in a row have passed.
        """
        if self.ejectedUntil is None or now < self.ejectedUntil or self.state != DOWN:
            return None
        if self.probed and self.successes < self.settings.rise:
            return None
        return self._change(now, UP, f"after its {self._lastBackoff:g}s ejection")

    # Operator --------------------------------------------------------------

    def drain(self, now: float) -> Optional[Change]:
        if self.state == DRAINING:
            return None
        return self._change(now, DRAINING, "drained by operator")

    def undrain(self, now: float) -> Optional[Change]:
        if self.state != DRAINING:
            return None
        return self._change(now, UP, "returned by operator")
