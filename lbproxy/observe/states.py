# -*- test-case-name: tests.test_metrics -*-
"""
The state of a target as an operator names it, from its registry entry:
one of L{STATES}.  Pure.
"""

from __future__ import annotations

__all__ = ["STATES", "target_state"]

#: Every state a target can be shown in (one gauge per state).
STATES = ("up", "down", "draining", "slow_start", "ejected")


def target_state(entry, now: float) -> str:
    """
    @param entry: a L{lbproxy.runtime.targets.TargetState}.
    @param now: the current time (its clock), for a slow-start ramp.
    @return: C{"ejected"} (passive ejection running), C{"down"},
        C{"draining"}, C{"slow_start"} (back up, its share still growing)
        or C{"up"}.
    """
    health = entry.health
    if health is not None:
        if health.state == "draining":
            return "draining"
        if health.state == "down":
            if health.ejectedUntil is not None and now < health.ejectedUntil:
                return "ejected"
            return "down"
        if health.remoteDown:
            return "down"
    elif not entry.up:
        return "down"
    start = entry.rampStart
    if start is not None and now < start + entry.rampLength:
        return "slow_start"
    return "up"
