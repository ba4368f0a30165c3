# -*- test-case-name: tests.test_registry -*-
"""
A runtime's pools, built from the configuration on the entries of a
L{TargetRegistry}.
"""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING, Any, Dict, List, Optional

from lbproxy.balance.pool import Pool
from lbproxy.balance.queue import WaitQueue
from lbproxy.runtime.targets import TargetRegistry, TargetState

if TYPE_CHECKING:
    from lbproxy.config import Config
    from lbproxy.config import Pool as PoolConfig

__all__ = ["build_pool", "build_pools"]

#: The sticky cookies' signing key of pools without C{sticky.secret}: one
#: per process, so that a reload keeps sessions (a restart, another worker
#: or another instance does not: see docs/balancing.md).
_PROCESS_SECRET = os.urandom(32)


def _sticky(config: PoolConfig) -> Optional[Dict[str, Any]]:
    sticky = config.sticky
    if sticky is None:
        return None
    secret = sticky.secret.encode("utf-8") if sticky.secret is not None else _PROCESS_SECRET
    return {
        "name": sticky.cookie,
        "ttl": sticky.ttl,
        # The pool's name keeps two pools' cookies apart.
        "secret": secret + b"\0" + config.name.encode("utf-8"),
        "secure": sticky.secure,
        "httpOnly": sticky.http_only,
    }


def build_pool(name: str, config: PoolConfig, registry: TargetRegistry) -> Pool:
    """
    The runtime pool of one configured pool, its members on C{registry}'s
    entries (found or made).
    """
    return Pool(
        name,
        config.targets,
        config.balance,
        states=[registry.entry(target, config.health, name) for target in config.targets],
        # A client turned away with 503 may retry after one probe interval,
        # the soonest a target can come back.
        retryAfter=b"%d" % (max(1, math.ceil(config.health.interval)),),
        maxInflight=config.max_inflight,
        queueSize=config.queue_size,
        queueTimeout=config.queue_timeout,
        options={
            "hash_key": config.hash_key,
            "hash_balance_factor": config.hash_balance_factor,
        },
        sticky=_sticky(config),
        weights=config.weights,
    )


def build_pools(config: Config, registry: TargetRegistry) -> Dict[str, Pool]:
    """
    The runtime pools of a configuration, by name.  Each entry learns the
    wait queues of these pools that wait for it (C{TargetState.queues}).
    """
    pools = {name: build_pool(name, pool, registry) for name, pool in config.pools.items()}
    queues: Dict[TargetState, List[WaitQueue]] = {}
    for pool in pools.values():
        for member in pool.members:
            waiting = queues.setdefault(member.state, [])
            if pool.maxInflight:
                waiting.append(pool.queue)
    for state, waiting in queues.items():
        state.queues = tuple(waiting)
    return pools
