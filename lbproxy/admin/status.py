# -*- test-case-name: tests.test_admin -*-
"""
What C{GET /api/status} answers, as a pure function of the running proxy:
L{status_snapshot} returns plain dicts, lists, strings and numbers (ready
for C{json.dumps}), so the status page and anything else that shows the
proxy's state reuse it.

Pure: it reads the objects it is given and the time it is told.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from lbproxy.balance.members import SCALE

__all__ = ["status_snapshot", "target_status"]


def target_status(member, now: float, api: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """
    One member of a pool: its target's shared state and its weight here.

    @param member: a L{lbproxy.balance.members.Member}.
    @param now: the current time (for the slow-start ramp).
    @param api: what the admin API changed about it (C{{"added": True}},
        C{{"weight": 3}}, C{{"drained": True}}), or L{None}.
    """
    state = member.state
    health = state.health
    # Score-driven weights scale a member's weight (Member.scaled); slow
    # start ramps it up; a target that is down takes nothing.
    effective = round(member.scaled / SCALE, 2)
    if state.rampStart is not None and state.rampLength > 0:
        elapsed = now - state.rampStart
        if 0 <= elapsed < state.rampLength:
            effective = round(max(1, int(member.scaled * elapsed / state.rampLength)) / SCALE, 2)
    if not state.up:
        effective = 0
    result: Dict[str, Any] = {
        "address": member.target.address,
        "url": member.target.url,
        "ident": state.ident,
        "state": health.state if health is not None else ("up" if state.up else "down"),
        "up": state.up,
        "weight": member.weight,
        "effective_weight": effective,
        "inflight": state.inflight,
        "requests": state.requests,
        "failures": health.passiveErrors if health is not None else 0,
        "last_change": health.lastChange if health is not None else None,
        "last_reason": health.lastReason if health is not None else None,
    }
    if api:
        result["api"] = dict(api)
    return result


def status_snapshot(core, now: float) -> Dict[str, Any]:
    """
    The state of the running proxy.

    @param core: the L{lbproxy.app.wiring.ProxyCore}: its C{runtime},
        C{listeners}, C{configInfo} and C{overrides} are read.
    @param now: the current time, seconds since the epoch.
    @return: C{{"config": {...}, "listeners": [...], "routes": [...],
        "pools": {name: {...}}, "api_changes": [...], "time": now}}.
    """
    runtime = core.runtime
    config = runtime.config
    overrides = core.overrides
    info = core.configInfo
    routes: List[Dict[str, Any]] = []
    for route in config.routes:
        entry = {
            "host": getattr(route, "host", None),
            "path": getattr(route, "path", None),
            "pool": route.pool,
        }
        split = getattr(route, "split", None)
        if split:
            entry["split"] = [{"pool": pool, "weight": weight} for pool, weight in split.arms]
        routes.append(entry)
    pools: Dict[str, Any] = {}
    for name, pool in runtime.pools.items():
        marks = overrides.marks(name)
        targets = [
            target_status(member, now, marks.get(member.target.address))
            for member in pool.members
        ]
        if pool.weighter is not None:
            # Score-driven weights: each target's current score.
            for entry, described in zip(targets, pool.describe()):
                entry["score"] = described["score"]
        pools[name] = {"balance": pool.balance, "targets": targets}
    return {
        "time": now,
        "config": {
            "path": config.path,
            "checksum": info.checksum,
            "loaded_at": info.loadedAt,
            "reloads": info.reloads,
            "last_reload": info.lastOutcome,
        },
        "listeners": list(core.listeners),
        "routes": routes,
        "default_pool": config.server.default_pool,
        "pools": pools,
        "api_changes": overrides.describe(),
    }
