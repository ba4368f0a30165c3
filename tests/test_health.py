"""
Tests for L{lbproxy.health.state}: the per-target health state machine, driven
with explicit times and no reactor.
"""

from __future__ import annotations

from typing import Optional

from twisted.trial.unittest import SynchronousTestCase

from lbproxy.config import HealthConfig
from lbproxy.health.state import DOWN, DRAINING, UP, Change, TargetHealth

REFUSED = "connection refused"


def target(probed: bool = True, now: float = 0.0, **settings) -> TargetHealth:
    """
    A fresh L{TargetHealth} with C{rise=2}, C{fall=3}, C{passive_fail=3},
    C{ejection_time=10}, C{max_ejection_time=300} unless overridden.
    """
    values = dict(rise=2, fall=3, passive_fail=3, ejection_time=10.0, max_ejection_time=300.0)
    values.update(settings)
    return TargetHealth(HealthConfig(**values), probed=probed, now=now)


def succeed(health: TargetHealth, count: int, now: float = 0.0) -> Optional[Change]:
    """
    C{count} successful probes at C{now}; the last one's change.
    """
    change = None
    for _ in range(count):
        change = health.probeSucceeded(now)
    return change


def fail(health: TargetHealth, count: int, now: float = 0.0, reason: str = REFUSED) -> Optional[Change]:
    """
    C{count} failed probes at C{now}; the last one's change.
    """
    change = None
    for _ in range(count):
        change = health.probeFailed(now, reason)
    return change


def eject(health: TargetHealth, now: float) -> Change:
    """
    C{passive_fail} connection failures at C{now}; the ejection.
    """
    change = None
    for _ in range(health.settings.passive_fail):
        change = health.connectionFailed(now, REFUSED)
    assert change is not None, "not ejected"
    return change


class StartUpTests(SynchronousTestCase):
    """
    A new target is up until its first probe says otherwise.
    """

    def test_initialState(self) -> None:
        health = target(now=12.5)
        self.assertEqual(health.state, UP)
        self.assertTrue(health.available)
        self.assertFalse(health.checked)
        self.assertEqual(health.lastChange, 12.5)
        self.assertEqual(health.lastReason, "start-up")
        self.assertIsNone(health.ejectedUntil)
        self.assertEqual(
            (health.probesOk, health.probesFailed, health.passiveErrors, health.totalEjections),
            (0, 0, 0, 0),
        )

    def test_unprobedInitialState(self) -> None:
        health = target(probed=False)
        self.assertFalse(health.probed)
        self.assertTrue(health.available)

    def test_firstProbeFails(self) -> None:
        """
        The first failed probe takes the target out at once, whatever
        C{fall} is.
        """
        health = target(fall=5)
        change = health.probeFailed(3.0, "status 500")
        self.assertIsInstance(change, Change)
        self.assertEqual(change.state, DOWN)
        self.assertEqual(change.reason, "after its first check failed: status 500")
        self.assertIsNone(change.ejectedFor)
        self.assertEqual(health.state, DOWN)
        self.assertFalse(health.available)
        self.assertEqual(health.lastChange, 3.0)
        self.assertEqual(health.lastReason, "after its first check failed: status 500")

    def test_firstProbeSucceeds(self) -> None:
        """
        A first successful probe changes nothing: the target was up already.
        """
        health = target()
        self.assertIsNone(health.probeSucceeded(1.0))
        self.assertEqual(health.state, UP)
        self.assertTrue(health.checked)
        self.assertEqual(health.lastReason, "start-up")
        self.assertEqual(health.lastChange, 0.0)

    def test_onlyTheFirstProbeIsFirst(self) -> None:
        """
        After the first (successful) probe, one failure no longer takes the
        target out.
        """
        health = target()
        health.probeSucceeded(1.0)
        self.assertIsNone(health.probeFailed(2.0, REFUSED))
        self.assertEqual(health.state, UP)

    def test_firstProbeRuleOnlyOnce(self) -> None:
        """
        After coming back from a failed first probe, failures need C{fall}
        in a row again.
        """
        health = target()
        fail(health, 1)
        succeed(health, 2, 5.0)
        self.assertEqual(health.state, UP)
        self.assertIsNone(fail(health, 2, 6.0))
        self.assertEqual(health.state, UP)
        change = health.probeFailed(7.0, REFUSED)
        self.assertEqual(change.reason, "after 3 failed checks: connection refused")


class FallTests(SynchronousTestCase):
    """
    An up target leaves rotation after C{fall} failed probes in a row.
    """

    def setUp(self) -> None:
        self.health = target(fall=3)
        self.health.probeSucceeded(0.0)

    def test_fall(self) -> None:
        self.assertIsNone(self.health.probeFailed(1.0, REFUSED))
        self.assertIsNone(self.health.probeFailed(2.0, REFUSED))
        self.assertEqual(self.health.state, UP)
        self.assertTrue(self.health.available)
        change = self.health.probeFailed(3.0, REFUSED)
        self.assertEqual(change.state, DOWN)
        self.assertEqual(change.reason, "after 3 failed checks: connection refused")
        self.assertIsNone(change.ejectedFor)
        self.assertEqual(self.health.state, DOWN)
        self.assertFalse(self.health.available)
        self.assertEqual(self.health.lastChange, 3.0)
        self.assertEqual(self.health.lastReason, "after 3 failed checks: connection refused")

    def test_reasonOfTheLastFailure(self) -> None:
        """
        The reason given is that of the probe that took the target out.
        """
        self.health.probeFailed(1.0, "status 500")
        self.health.probeFailed(2.0, "timed out")
        change = self.health.probeFailed(3.0, "status 503")
        self.assertEqual(change.reason, "after 3 failed checks: status 503")

    def test_successResetsFailures(self) -> None:
        fail(self.health, 2, 1.0)
        self.assertIsNone(self.health.probeSucceeded(2.0))
        self.assertIsNone(fail(self.health, 2, 3.0))
        self.assertEqual(self.health.state, UP)
        change = self.health.probeFailed(4.0, REFUSED)
        self.assertEqual(change.reason, "after 3 failed checks: connection refused")

    def test_fallOne(self) -> None:
        health = target(fall=1)
        health.probeSucceeded(0.0)
        change = health.probeFailed(1.0, "timed out")
        self.assertEqual(change.reason, "after 1 failed check: timed out")

    def test_reportedOnce(self) -> None:
        """
        Further failures of a down target report nothing.
        """
        fail(self.health, 3, 1.0)
        for when in range(2, 10):
            self.assertIsNone(self.health.probeFailed(float(when), REFUSED))
        self.assertEqual(self.health.state, DOWN)
        self.assertEqual(self.health.lastChange, 1.0)

    def test_firstFailureReportedOnce(self) -> None:
        health = target()
        self.assertIsNotNone(health.probeFailed(1.0, REFUSED))
        self.assertIsNone(health.probeFailed(2.0, REFUSED))
        self.assertIsNone(health.probeFailed(3.0, REFUSED))
        self.assertIsNone(health.probeFailed(4.0, REFUSED))


class RiseTests(SynchronousTestCase):
    """
    A down target returns after C{rise} successful probes in a row.
    """

    def setUp(self) -> None:
        self.health = target(rise=2)
        self.health.probeFailed(0.0, REFUSED)
        self.assertEqual(self.health.state, DOWN)

    def test_rise(self) -> None:
        self.assertIsNone(self.health.probeSucceeded(1.0))
        self.assertEqual(self.health.state, DOWN)
        change = self.health.probeSucceeded(2.0)
        self.assertEqual(change.state, UP)
        self.assertEqual(change.reason, "after 2 successful checks")
        self.assertIsNone(change.ejectedFor)
        self.assertEqual(self.health.state, UP)
        self.assertTrue(self.health.available)
        self.assertEqual(self.health.lastChange, 2.0)
        self.assertEqual(self.health.lastReason, "after 2 successful checks")

    def test_failureResetsSuccesses(self) -> None:
        self.health.probeSucceeded(1.0)
        self.assertIsNone(self.health.probeFailed(2.0, REFUSED))
        self.assertIsNone(self.health.probeSucceeded(3.0))
        self.assertEqual(self.health.state, DOWN)
        change = self.health.probeSucceeded(4.0)
        self.assertEqual(change.reason, "after 2 successful checks")

    def test_riseOne(self) -> None:
        health = target(rise=1)
        health.probeFailed(0.0, REFUSED)
        change = health.probeSucceeded(1.0)
        self.assertEqual(change.reason, "after 1 successful check")

    def test_riseFive(self) -> None:
        health = target(rise=5)
        health.probeFailed(0.0, REFUSED)
        self.assertIsNone(succeed(health, 4, 1.0))
        change = health.probeSucceeded(2.0)
        self.assertEqual(change.reason, "after 5 successful checks")

    def test_reportedOnce(self) -> None:
        succeed(self.health, 2, 1.0)
        for when in range(2, 10):
            self.assertIsNone(self.health.probeSucceeded(float(when)))
        self.assertEqual(self.health.lastChange, 1.0)

    def test_downAgainAfterRise(self) -> None:
        """
        Back up, it needs C{fall} failures again (the first-probe rule is
        spent).
        """
        succeed(self.health, 2, 1.0)
        self.assertIsNone(fail(self.health, 2, 2.0))
        change = self.health.probeFailed(3.0, "status 500")
        self.assertEqual(change.reason, "after 3 failed checks: status 500")


class PassiveTests(SynchronousTestCase):
    """
    C{passive_fail} connection failures in a row eject an up target.
    """

    def test_eject(self) -> None:
        health = target(passive_fail=3)
        self.assertIsNone(health.connectionFailed(1.0, REFUSED))
        self.assertIsNone(health.connectionFailed(1.5, REFUSED))
        self.assertEqual(health.state, UP)
        change = health.connectionFailed(2.0, REFUSED)
        self.assertEqual(change.state, DOWN)
        self.assertEqual(change.ejectedFor, 10.0)
        self.assertEqual(
            change.reason, "ejected for 10s after 3 connection failures: connection refused"
        )
        self.assertEqual(health.state, DOWN)
        self.assertFalse(health.available)
        self.assertEqual(health.ejectedUntil, 12.0)
        self.assertEqual(health.lastChange, 2.0)
        self.assertEqual(health.lastReason, change.reason)

    def test_ejectOne(self) -> None:
        health = target(passive_fail=1, ejection_time=2.5)
        change = health.connectionFailed(1.0, "timed out")
        self.assertEqual(change.reason, "ejected for 2.5s after 1 connection failure: timed out")
        self.assertEqual(health.ejectedUntil, 3.5)

    def test_respondedResets(self) -> None:
        health = target(passive_fail=3)
        health.connectionFailed(1.0, REFUSED)
        health.connectionFailed(1.0, REFUSED)
        health.responded()
        self.assertIsNone(health.connectionFailed(2.0, REFUSED))
        self.assertIsNone(health.connectionFailed(2.0, REFUSED))
        self.assertEqual(health.state, UP)
        self.assertIsNotNone(health.connectionFailed(2.0, REFUSED))

    def test_probesDoNotResetPassiveCount(self) -> None:
        """
        Passive failures are counted apart from probes: a passing probe does
        not clear them.
        """
        health = target(passive_fail=3)
        health.connectionFailed(1.0, REFUSED)
        health.connectionFailed(1.0, REFUSED)
        health.probeSucceeded(1.5)
        self.assertIsNotNone(health.connectionFailed(2.0, REFUSED))

    def test_ejectionReportedOnce(self) -> None:
        health = target()
        eject(health, 1.0)
        for _ in range(5):
            self.assertIsNone(health.connectionFailed(2.0, REFUSED))
        self.assertEqual(health.ejectedUntil, 11.0)
        self.assertEqual(health.totalEjections, 1)

    def test_failuresWhileDownDoNotCount(self) -> None:
        """
        Connection failures of a target that is already down (e.g. requests
        that were in flight when it went down) do not count towards its next
        ejection: back up, it needs C{passive_fail} failures again.
        """
        health = target(passive_fail=3)
        fail(health, 1, 0.0)
        self.assertEqual(health.state, DOWN)
        for _ in range(5):
            self.assertIsNone(health.connectionFailed(1.0, REFUSED))
        self.assertIsNone(health.ejectedUntil)
        self.assertEqual(health.totalEjections, 0)
        succeed(health, 2, 2.0)
        self.assertEqual(health.state, UP)
        self.assertIsNone(health.connectionFailed(3.0, REFUSED))
        self.assertIsNone(health.connectionFailed(3.0, REFUSED))
        self.assertEqual(health.state, UP)
        change = health.connectionFailed(3.0, REFUSED)
        self.assertEqual(
            change.reason, "ejected for 10s after 3 connection failures: connection refused"
        )

    def test_failuresDuringEjectionDoNotCount(self) -> None:
        """
        Connection failures during an ejection do not count towards the next
        one.
        """
        health = target(probed=False, passive_fail=3)
        eject(health, 0.0)
        self.assertIsNone(health.connectionFailed(1.0, REFUSED))
        self.assertIsNone(health.connectionFailed(1.0, REFUSED))
        health.ejectionOver(10.0)
        self.assertEqual(health.state, UP)
        self.assertIsNone(health.connectionFailed(11.0, REFUSED))
        self.assertEqual(health.state, UP)

    def test_drainingNotEjected(self) -> None:
        health = target(passive_fail=1)
        health.drain(0.0)
        self.assertIsNone(health.connectionFailed(1.0, REFUSED))
        self.assertEqual(health.state, DRAINING)
        self.assertIsNone(health.ejectedUntil)


class BackoffTests(SynchronousTestCase):
    """
    Repeated ejections double the back-off, up to C{max_ejection_time}; a
    healthy spell longer than the last back-off starts over.
    """

    def test_doubling(self) -> None:
        health = target(probed=False, ejection_time=10.0, max_ejection_time=300.0)
        now = 0.0
        seen = []
        for _ in range(8):
            change = eject(health, now)
            seen.append(change.ejectedFor)
            self.assertEqual(health.ejectedUntil, now + change.ejectedFor)
            self.assertTrue(change.reason.startswith(f"ejected for {change.ejectedFor:g}s after"))
            now += change.ejectedFor
            self.assertEqual(health.ejectionOver(now).state, UP)
            # Fails again at once: a repeated ejection.
        self.assertEqual(seen, [10.0, 20.0, 40.0, 80.0, 160.0, 300.0, 300.0, 300.0])
        self.assertEqual(health.totalEjections, 8)

    def test_capNotAPowerOfTwo(self) -> None:
        health = target(probed=False, ejection_time=3.0, max_ejection_time=7.0)
        now = 0.0
        seen = []
        for _ in range(4):
            change = eject(health, now)
            seen.append(change.ejectedFor)
            now += change.ejectedFor
            health.ejectionOver(now)
        self.assertEqual(seen, [3.0, 6.0, 7.0, 7.0])

    def test_equalBaseAndMax(self) -> None:
        health = target(probed=False, ejection_time=5.0, max_ejection_time=5.0)
        self.assertEqual(eject(health, 0.0).ejectedFor, 5.0)
        health.ejectionOver(5.0)
        self.assertEqual(eject(health, 6.0).ejectedFor, 5.0)

    def test_resetAfterHealthyPeriod(self) -> None:
        """
        A target up for longer than its last back-off is ejected for the
        base time again.
        """
        health = target(probed=False)
        eject(health, 0.0)  # 10s
        health.ejectionOver(10.0)
        eject(health, 15.0)  # up 5s <= 10s: 20s
        self.assertEqual(health.ejectedUntil, 35.0)
        health.ejectionOver(35.0)
        change = eject(health, 35.0 + 20.5)  # up 20.5s > 20s: start over
        self.assertEqual(change.ejectedFor, 10.0)
        self.assertEqual(health.totalEjections, 3)

    def test_noResetAtExactlyTheBackoff(self) -> None:
        """
        Up for exactly the last back-off is not longer than it: the back-off
        still doubles.
        """
        health = target(probed=False)
        eject(health, 0.0)
        health.ejectionOver(10.0)
        self.assertEqual(eject(health, 20.0).ejectedFor, 20.0)

    def test_resetAfterCap(self) -> None:
        health = target(probed=False, ejection_time=10.0, max_ejection_time=15.0)
        eject(health, 0.0)
        health.ejectionOver(10.0)
        self.assertEqual(eject(health, 10.0).ejectedFor, 15.0)
        health.ejectionOver(25.0)
        self.assertEqual(eject(health, 25.0 + 15.1).ejectedFor, 10.0)

    def test_returnByProbesCountsAsUp(self) -> None:
        """
        The healthy period is measured from the return, however it came
        about (here: probes after the ejection).
        """
        health = target(probed=True)
        eject(health, 0.0)
        succeed(health, 2, 12.0)
        self.assertEqual(health.state, UP)
        self.assertEqual(eject(health, 13.0).ejectedFor, 20.0)
        succeed(health, 2, 40.0)
        self.assertEqual(eject(health, 40.0 + 21.0).ejectedFor, 10.0)


class EjectionOverTests(SynchronousTestCase):
    """
    How an ejected target comes back.
    """

    def test_tooEarly(self) -> None:
        health = target(probed=False)
        eject(health, 0.0)
        self.assertIsNone(health.ejectionOver(9.999))
        self.assertEqual(health.state, DOWN)

    def test_withoutProbes(self) -> None:
        health = target(probed=False)
        eject(health, 0.0)
        change = health.ejectionOver(10.0)
        self.assertEqual(change.state, UP)
        self.assertEqual(change.reason, "after its 10s ejection")
        self.assertIsNone(change.ejectedFor)
        self.assertEqual(health.state, UP)
        self.assertIsNone(health.ejectedUntil)
        self.assertEqual(health.lastChange, 10.0)
        self.assertEqual(health.lastReason, "after its 10s ejection")

    def test_late(self) -> None:
        health = target(probed=False)
        eject(health, 0.0)
        self.assertEqual(health.ejectionOver(30.0).state, UP)

    def test_onlyOnce(self) -> None:
        health = target(probed=False)
        eject(health, 0.0)
        health.ejectionOver(10.0)
        self.assertIsNone(health.ejectionOver(11.0))

    def test_notEjected(self) -> None:
        """
        Nothing to end for a target that is up, or down because of probes.
        """
        health = target()
        self.assertIsNone(health.ejectionOver(100.0))
        fail(health, 1, 1.0)
        self.assertIsNone(health.ejectionOver(100.0))
        self.assertEqual(health.state, DOWN)

    def test_probesPassBeforeTimeIsUp(self) -> None:
        """
        With probes, C{rise} passing probes during the ejection do not end it
        early; the end of the ejection then brings the target back.
        """
        health = target(probed=True, rise=2)
        eject(health, 0.0)
        self.assertIsNone(health.probeSucceeded(3.0))
        self.assertIsNone(health.probeSucceeded(6.0))
        self.assertIsNone(health.probeSucceeded(9.0))
        self.assertEqual(health.state, DOWN)
        self.assertIsNone(health.ejectionOver(9.5))
        change = health.ejectionOver(10.0)
        self.assertEqual(change.state, UP)
        self.assertEqual(change.reason, "after its 10s ejection")
        self.assertIsNone(health.ejectedUntil)

    def test_probesPassAfterTimeIsUp(self) -> None:
        """
        With probes, the end of the ejection alone does not bring the target
        back; C{rise} passing probes do.
        """
        health = target(probed=True, rise=2)
        eject(health, 0.0)
        self.assertIsNone(health.ejectionOver(10.0))
        self.assertEqual(health.state, DOWN)
        self.assertIsNone(health.probeSucceeded(12.0))
        change = health.probeSucceeded(15.0)
        self.assertEqual(change.state, UP)
        self.assertEqual(change.reason, "after 2 successful checks")
        self.assertIsNone(health.ejectedUntil)
        self.assertEqual(health.lastChange, 15.0)

    def test_probesStraddleTheEnd(self) -> None:
        """
        One probe passes during the ejection, the next after it: that is
        C{rise} in a row.
        """
        health = target(probed=True, rise=2)
        eject(health, 0.0)
        self.assertIsNone(health.probeSucceeded(8.0))
        self.assertIsNone(health.ejectionOver(10.0))
        self.assertEqual(health.probeSucceeded(13.0).reason, "after 2 successful checks")

    def test_failedProbeDuringEjection(self) -> None:
        """
        A failed probe during the ejection resets the successes: the end of
        the ejection does not bring the target back.
        """
        health = target(probed=True, rise=2)
        eject(health, 0.0)
        succeed(health, 2, 3.0)
        self.assertIsNone(health.probeFailed(6.0, "status 500"))
        self.assertIsNone(health.ejectionOver(10.0))
        self.assertEqual(health.state, DOWN)
        self.assertIsNone(health.probeSucceeded(11.0))
        self.assertEqual(health.probeSucceeded(12.0).state, UP)

    def test_successesBeforeEjectionDoNotCount(self) -> None:
        """
        Probes that passed before the ejection do not count towards the
        return.
        """
        health = target(probed=True, rise=2)
        succeed(health, 5, 0.0)
        eject(health, 1.0)
        self.assertIsNone(health.ejectionOver(11.0))
        self.assertEqual(health.state, DOWN)


class DrainTests(SynchronousTestCase):
    """
    An operator takes a target out and puts it back.
    """

    def test_drain(self) -> None:
        health = target()
        change = health.drain(5.0)
        self.assertEqual(change.state, DRAINING)
        self.assertEqual(change.reason, "drained by operator")
        self.assertEqual(health.state, DRAINING)
        self.assertFalse(health.available)
        self.assertEqual(health.lastChange, 5.0)
        self.assertEqual(health.lastReason, "drained by operator")

    def test_drainTwice(self) -> None:
        health = target()
        health.drain(5.0)
        self.assertIsNone(health.drain(6.0))
        self.assertEqual(health.lastChange, 5.0)

    def test_undrain(self) -> None:
        health = target()
        health.drain(5.0)
        change = health.undrain(7.0)
        self.assertEqual(change.state, UP)
        self.assertEqual(change.reason, "returned by operator")
        self.assertEqual(health.state, UP)
        self.assertTrue(health.available)
        self.assertEqual(health.lastChange, 7.0)

    def test_undrainNotDrained(self) -> None:
        health = target()
        self.assertIsNone(health.undrain(1.0))
        fail(health, 1, 2.0)
        self.assertIsNone(health.undrain(3.0))
        self.assertEqual(health.state, DOWN)

    def test_probesWhileDraining(self) -> None:
        """
        Probes of a draining target change nothing.
        """
        health = target()
        health.drain(1.0)
        self.assertIsNone(fail(health, 5, 2.0))
        self.assertIsNone(succeed(health, 5, 3.0))
        self.assertEqual(health.state, DRAINING)
        self.assertEqual(health.lastChange, 1.0)

    def test_drainDownTarget(self) -> None:
        health = target()
        fail(health, 1, 1.0)
        self.assertEqual(health.drain(2.0).state, DRAINING)
        self.assertEqual(health.state, DRAINING)


class CounterTests(SynchronousTestCase):
    """
    The lifetime counters.
    """

    def test_probeCounters(self) -> None:
        health = target()
        succeed(health, 3, 0.0)
        fail(health, 4, 1.0)  # down after the third
        succeed(health, 2, 2.0)  # up again
        self.assertEqual((health.probesOk, health.probesFailed), (5, 4))

    def test_probesWhileDrainingCounted(self) -> None:
        health = target()
        health.drain(0.0)
        succeed(health, 2)
        fail(health, 1)
        self.assertEqual((health.probesOk, health.probesFailed), (2, 1))

    def test_passiveCounters(self) -> None:
        health = target(probed=False, passive_fail=2)
        health.connectionFailed(0.0, REFUSED)
        health.responded()
        eject(health, 1.0)
        health.connectionFailed(2.0, REFUSED)  # while ejected
        health.ejectionOver(11.0)
        health.responded()
        eject(health, 12.0)
        self.assertEqual(health.passiveErrors, 6)
        self.assertEqual(health.totalEjections, 2)
        self.assertEqual((health.probesOk, health.probesFailed), (0, 0))

    def test_totalEjectionsSurvivesBackoffReset(self) -> None:
        health = target(probed=False)
        eject(health, 0.0)
        health.ejectionOver(10.0)
        eject(health, 1000.0)
        self.assertEqual(health.ejections, 1)
        self.assertEqual(health.totalEjections, 2)


class LastChangeTests(SynchronousTestCase):
    """
    C{lastChange} and C{lastReason} follow every change, and only changes.
    """

    def test_sequence(self) -> None:
        health = target(probed=True)
        steps = [
            (lambda: health.probeFailed(1.0, "status 502"), 1.0, "after its first check failed: status 502"),
            (lambda: succeed(health, 2, 2.0), 2.0, "after 2 successful checks"),
            (lambda: eject(health, 3.0), 3.0, "ejected for 10s after 3 connection failures: connection refused"),
            (lambda: succeed(health, 2, 14.0), 14.0, "after 2 successful checks"),
            (lambda: health.drain(15.0), 15.0, "drained by operator"),
            (lambda: health.undrain(16.0), 16.0, "returned by operator"),
        ]
        for step, when, reason in steps:
            change = step()
            self.assertEqual(change.reason, reason)
            self.assertEqual((health.lastChange, health.lastReason), (when, reason))

    def test_changeRepr(self) -> None:
        self.assertEqual(
            repr(Change(DOWN, "after 3 failed checks: connection refused")),
            "<Change DOWN after 3 failed checks: connection refused>",
        )
