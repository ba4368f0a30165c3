# -*- test-case-name: tests.test_admin -*-
"""
The admin API's changes to pools and targets, applied to a
L{lbproxy.app.wiring.ProxyCore}: each is recorded in the core's
L{ApiOverrides <lbproxy.runtime.overrides.ApiOverrides>} (so that it
outlives reloads of the file) and put in service at once, and each is
logged with what changed.

Every function raises L{ApiError} for a request it cannot apply: 400
naming the field, 404 for an unknown pool or target, 409 for a change
that conflicts with the pool as it is.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Dict

from twisted.logger import Logger

from lbproxy.admin.jsonapi import ApiError
from lbproxy.config.errors import ConfigError
from lbproxy.config.reader import Reader
from lbproxy.config.targets import parse_target

__all__ = ["add_target", "drain_target", "enable_target", "remove_target", "set_weight"]

log = Logger()

#: As in the configuration.
MAX_WEIGHT = 1000


def _pool(core, name: str):
    pool = core.runtime.pools.get(name)
    if pool is None:
        raise ApiError(404, f"no pool named {name!r}", "pool")
    return pool


def _member(core, pool: str, address: str):
    for member in _pool(core, pool).members:
        if member.target.address == address:
            return member
    raise ApiError(404, f"pool {pool!r} has no target {address!r}", "address")


def _weight(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_WEIGHT:
        raise ApiError(400, f"expected an integer from 1 to {MAX_WEIGHT}", "weight")
    return value


def _address(text: Any):
    if not isinstance(text, str):
        raise ApiError(400, 'expected "host:port" (a string)', "address")
    try:
        return parse_target(text, "address", Reader("admin API"))
    except ConfigError as e:
        raise ApiError(400, e.reason, "address") from None


def add_target(core, pool: str, body: Dict[str, Any]) -> Dict[str, Any]:
    """
    C{POST /api/pools/{pool}/targets} C{{"address": "host:port", "weight": N}}.
    """
    runtime_pool = _pool(core, pool)
    if "address" not in body:
        raise ApiError(400, "required field is missing", "address")
    target = _address(body["address"])
    weight = _weight(body.get("weight", 1))
    for member in runtime_pool.members:
        if member.target.address == target.address:
            raise ApiError(409, f"pool {pool!r} has target {target.address!r} already",
                           "address")
    target = replace(target, weight=weight)
    core.overrides.add(pool, target)
    core.rebuild()
    core.changed()
    log.info("admin API: pool {pool}: added target {address} (weight {weight})",
             pool=pool, address=target.address, weight=weight)
    return {"pool": pool, "address": target.address, "weight": weight, "added": True}


def remove_target(core, pool: str, address: str) -> Dict[str, Any]:
    """
    C{DELETE /api/pools/{pool}/targets/{address}}: no new requests go to
    it; those in flight finish (the runtime they started on keeps it).
    """
    runtime_pool = _pool(core, pool)
    member = _member(core, pool, address)
    if len(runtime_pool.members) == 1:
        raise ApiError(409, f"{address!r} is the last target of pool {pool!r}", "address")
    inflight = member.state.inflight
    core.overrides.remove(pool, address)
    core.rebuild()
    core.changed()
    log.info("admin API: pool {pool}: removed target {address} "
             "({inflight} requests in flight finish on it)",
             pool=pool, address=address, inflight=inflight)
    return {"pool": pool, "address": address, "removed": True, "inflight": inflight}


def drain_target(core, pool: str, address: str) -> Dict[str, Any]:
    """
    C{POST .../drain}: no new requests; those in flight finish.
    """
    member = _member(core, pool, address)
    core.overrides.drain(pool, address)
    core.markDrained(core.runtime)
    core.changed()
    log.info("admin API: pool {pool}: drained target {address} ({inflight} in flight)",
             pool=pool, address=address, inflight=member.state.inflight)
    return {"pool": pool, "address": address, "state": _state(member)}


def enable_target(core, pool: str, address: str) -> Dict[str, Any]:
    """
    C{POST .../enable}: a drained target takes requests again.
    """
    member = _member(core, pool, address)
    core.overrides.enable(pool, address)
    core.markDrained(core.runtime)
    core.changed()
    log.info("admin API: pool {pool}: enabled target {address}", pool=pool, address=address)
    return {"pool": pool, "address": address, "state": _state(member)}


def set_weight(core, pool: str, address: str, body: Dict[str, Any]) -> Dict[str, Any]:
    """
    C{PUT /api/pools/{pool}/targets/{address}} C{{"weight": N}}.
    """
    member = _member(core, pool, address)
    if "weight" not in body:
        raise ApiError(400, "required field is missing", "weight")
    weight = _weight(body["weight"])
    old = member.weight
    core.overrides.setWeight(pool, address, weight)
    core.rebuild()
    core.changed()
    log.info("admin API: pool {pool}: target {address} weight {old} -> {weight}",
             pool=pool, address=address, old=old, weight=weight)
    return {"pool": pool, "address": address, "weight": weight}


def _state(member) -> str:
    health = member.state.health
    if health is not None:
        return health.state
    return "up" if member.state.up else "down"


def set_members(core, pool: str, targets, source: str) -> Dict[str, Any]:
    """
    A discovery feed's list: C{targets} (validated, at least one) become
    C{pool}'s whole membership, through the same overrides, rebuild and
    swap as the API's changes.  Targets left out drain: no new requests,
    those in flight finish on the runtime they started on.

    @param source: what sent it, for the log (the feed's URL).
    """
    runtime_pool = _pool(core, pool)
    before = {member.target.address for member in runtime_pool.members}
    core.overrides.setMembers(pool, tuple(targets))
    runtime = core.rebuild()
    core.changed()
    after = {member.target.address for member in runtime.pools[pool].members}
    added, removed = sorted(after - before), sorted(before - after)
    log.info("discovery {source}: pool {pool}: {count} targets; added: {added}; removed "
             "(draining): {removed}", source=source, pool=pool, count=len(after),
             added=", ".join(added) or "none", removed=", ".join(removed) or "none")
    return {"pool": pool, "added": added, "removed": removed}
