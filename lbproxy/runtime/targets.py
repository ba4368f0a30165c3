# -*- test-case-name: tests.test_registry -*-
"""
Per-target state that outlives a L{lbproxy.runtime.snapshot.Runtime}.

A L{TargetRegistry} holds one L{TargetState} per distinct target: its
health, whether it is up, the requests in flight on it, its passive
ejection (kept by its L{TargetHealth}) and its slow-start ramp.  The pools
of every runtime refer to these entries, so a runtime built from a new
configuration (a reload) finds the state of the targets it keeps where the
old one left it, and the health checker and the workers' health feed
follow the registry, not any one runtime's pools.

Pure: no reactor, no clock, no I/O.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Callable, Dict, Iterable, List, Optional, Tuple

from lbproxy.health.state import TargetHealth, probe_path
from lbproxy.observe.counters import TargetCounters

if TYPE_CHECKING:
    from lbproxy.config import HealthConfig, Target

__all__ = ["TargetRegistry", "TargetState", "target_key"]

#: What makes a target the same target (see L{target_key}).
Key = Tuple[object, ...]


def target_key(target: Target, health: HealthConfig) -> Key:
    """
    The identity of a target in a L{TargetRegistry}.

    A target is the same target when requests to it go to the same place
    the same way (scheme, host, port, TLS settings) and it is checked the
    same way (its own C{health_check_endpoint} and its pool's health
    settings).  The health check is part of the identity because health
    settings are per pool: two pools that check one backend differently
    hold two opinions of its health, each with its own probes, counters and
    ejections; two pools that check it alike share one entry, probed once.
    Its weight is not: that is the pool's business (L{Member.weight
    <lbproxy.balance.members.Member.weight>}).
    """
    return (
        target.scheme,
        target.host,
        target.port,
        target.tls,
        target.health_check_endpoint,
        health,
    )


def _ident(target: Target, health: HealthConfig) -> str:
    # The URL for people, a digest of the rest so that it is unique; the
    # same in every process that parsed the same configuration (reprs of
    # frozen dataclasses, unlike hash(), do not vary between processes).
    rest = repr((target.tls, target.health_check_endpoint, health)).encode("utf-8")
    return f"{target.url}#{hashlib.sha256(rest).hexdigest()[:12]}"


class TargetState:
    """
    The runtime state of one target, shared by every pool (of every
    runtime) that refers to it.

    @ivar target: the configured target (of the first pool that named it:
        its C{weight} means nothing here).
    @ivar key: its L{target_key}, or L{None} outside a registry.
    @ivar ident: a stable text identity (C{"http://10.0.0.1:80#<digest>"}),
        the same in every process built from the same configuration.
    @ivar health: its L{TargetHealth} (which holds a passive ejection), or
        L{None} when nothing checks it.
    @ivar up: whether it may be picked: its health's C{available}, kept so
        by the health checker (and a worker's health feed).
    @ivar inflight: requests in progress on it, maintained by the proxy.
    @ivar requests: requests sent to it, ever (each attempt counts).
    @ivar rampStart: when its slow-start ramp began, or L{None}.
    @ivar rampLength: the length of that ramp in seconds.
    @ivar pools: the names of the pools of the newest runtime that refer
        to it (for log lines).
    @ivar queues: the wait queues (L{lbproxy.balance.queue.WaitQueue}) of
        the newest runtime's pools with a C{max_inflight} that have it: its
        in-flight count is shared, so a request ending on it wakes the
        oldest waiter of each, not only of its own pool's queue.
    @ivar retired: whether the newest runtime no longer refers to it: the
        requests still on it finish, nothing probes it any more.
    @ivar score: the last score its responses carried (score-driven
        weights, C{from = "header"}), or L{None}.
    @ivar latency: the moving average of its upstream times in seconds
        (C{from = "latency"}), or L{None}.
    @ivar probeBody: the body of its last successful health probe (up to
        the probe's read limit; C{from = "probe"}), or L{None}.
    @ivar factors: what score-driven weights multiply its weight by, by
        pool name, or L{None} before any.
    @ivar counters: its L{TargetCounters} (requests, errors, latencies,
        probe times, state changes) for the metrics and the status page.
    """

    __slots__ = (
        "target", "key", "ident", "health", "up", "inflight", "requests", "rampStart",
        "rampLength", "pools", "queues", "retired", "score", "latency", "probeBody",
        "factors", "counters",
    )

    def __init__(
        self,
        target: Target,
        health: Optional[TargetHealth] = None,
        key: Optional[Key] = None,
        ident: Optional[str] = None,
    ) -> None:
        self.target = target
        self.key = key
        self.ident = ident if ident is not None else target.address
        self.health = health
        self.up = True
        self.inflight = 0
        self.requests = 0
        self.rampStart: Optional[float] = None
        self.rampLength = 0.0
        self.pools: Tuple[str, ...] = ()
        self.queues: Tuple[object, ...] = ()
        self.retired = False
        self.score: Optional[float] = None
        self.latency: Optional[float] = None
        self.probeBody: Optional[bytes] = None
        self.factors: Optional[Dict[str, float]] = None
        self.counters = TargetCounters()

    def startRamp(self, now: float, length: float) -> None:
        """
        Slow start: from C{now}, the target's share grows linearly from
        almost nothing to its full weight over C{length} seconds (no ramp
        if C{length} is 0), so a target that just came back is not
        flooded.
        """
        if length > 0:
            self.rampStart = now
            self.rampLength = length

    def __repr__(self) -> str:
        return (
            f"<TargetState {self.ident} up={self.up} inflight={self.inflight}"
            f"{' retired' if self.retired else ''}>"
        )


class TargetRegistry:
    """
    The L{TargetState} of every target the newest runtime refers to.

    A runtime is built with L{entry} for each target of each pool (the
    same entry again for a target it already has), then L{retain} retires
    the entries it does not refer to (L{lbproxy.runtime.snapshot.build_runtime}
    does both).  A retired entry is forgotten here, but keeps working for
    whatever still holds it: the requests in flight on it finish, with
    their counts, on the old runtime's pools.

    @ivar probing: whether entries are probed actively (L{False} in a
        worker process, whose main process probes).
    """

    def __init__(self, probing: bool = True) -> None:
        self.probing = probing
        self._entries: Dict[Key, TargetState] = {}
        self._byIdent: Dict[str, TargetState] = {}
        self._subscribers: List[Callable[[List[TargetState]], None]] = []

    def __len__(self) -> int:
        return len(self._entries)

    def entry(self, target: Target, health: HealthConfig, pool: str) -> TargetState:
        """
        The entry of a target of a pool being built: the existing one for
        the same L{target_key}, else a new one, up, with fresh health.

        @param target: the pool's configured target.
        @param health: the pool's health settings.
        @param pool: the pool's name.
        """
        key = target_key(target, health)
        state = self._entries.get(key)
        if state is None:
            probed = self.probing and (
                probe_path(health, target) is not None or health.connect_check
            )
            state = TargetState(
                target, TargetHealth(health, probed=probed), key, _ident(target, health)
            )
            self._entries[key] = state
            self._byIdent[state.ident] = state
        if pool not in state.pools:
            state.pools += (pool,)
        return state

    def entries(self) -> List[TargetState]:
        """
        The current entries, oldest first.
        """
        return list(self._entries.values())

    def find(self, ident: str) -> Optional[TargetState]:
        """
        The current entry whose L{TargetState.ident} is C{ident}, or
        L{None}.
        """
        return self._byIdent.get(ident)

    def retain(self, references: Iterable[Tuple[str, TargetState]]) -> List[TargetState]:
        """
        The newest runtime refers to these entries, and only these: retire
        the others, and tell the subscribers.

        @param references: C{(pool name, entry)} for every member of every
            pool of the newest runtime.
        @return: the entries retired, oldest first.
        """
        pools: Dict[TargetState, List[str]] = {}
        for name, state in references:
            names = pools.setdefault(state, [])
            if name not in names:
                names.append(name)
        retired: List[TargetState] = []
        for key, state in list(self._entries.items()):
            names = pools.get(state)
            if names is None:
                del self._entries[key]
                del self._byIdent[state.ident]
                state.retired = True
                retired.append(state)
            else:
                state.pools = tuple(names)
        for subscriber in list(self._subscribers):
            subscriber(retired)
        return retired

    def subscribe(self, callback: Callable[[List[TargetState]], None]) -> None:
        """
        Call C{callback} with the retired entries after every L{retain}
        (e.g. the health checker, to start and stop probes).
        """
        self._subscribers.append(callback)
