# -*- test-case-name: tests.test_config -*-
"""
The C{[pools.NAME]} tables: named groups of interchangeable targets, how
requests are spread over them, queued, and health-checked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from lbproxy.config.balancing import BALANCING_KEYS, ScoreWeights, Sticky, parse_balancing

from lbproxy.config.discovery import parse_discovery
from lbproxy.config.errors import child_key, quote
from lbproxy.config.health import HealthConfig, parse_health
from lbproxy.config.reader import Reader
from lbproxy.config.targets import Target, parse_target_entry
from lbproxy.config.tls import POOL_TLS_KEYS, parse_pool_tls

__all__ = ["BALANCE_ALGORITHMS", "Pool", "parse_pool"]

#: The values accepted for C{pools.NAME.balance}: the balancers of
#: L{lbproxy.balance.pool.BALANCERS} (a test keeps the two the same).
BALANCE_ALGORITHMS: Tuple[str, ...] = ("round_robin", "least_conn", "random", "hash")

_POOL_KEYS = (
    "balance",
    "discovery",
    "health",
    "max_inflight",
    "queue_size",
    "queue_timeout",
    "targets",
) + POOL_TLS_KEYS + BALANCING_KEYS


@dataclass(frozen=True)
class Pool:
    """
    A named group of interchangeable targets.

    @ivar name: The pool's name, as in C{[pools.NAME]}.
    @ivar targets: At least one target, with distinct addresses.
    @ivar balance: The balancing algorithm, one of L{BALANCE_ALGORITHMS}.
        C{"round_robin"} is smooth weighted round robin (docs/balancing.md).
    @ivar health: How the pool's targets are checked.
    @ivar max_inflight: Most requests in progress on one target (0: no
        limit); more wait in the pool's queue.
    @ivar queue_size: Most requests waiting for a target with room; beyond,
        503.
    @ivar queue_timeout: Seconds a request waits in the queue before 503.
    @ivar hash_key: What C{balance = "hash"} hashes: C{"client_ip"},
        C{"path"}, C{"uri"}, C{"header:NAME"} or C{"cookie:NAME"}.
    @ivar hash_balance_factor: Bounded loads for C{"hash"}: no target above
        this times the average load (0: no bound).
    @ivar sticky: Sticky sessions, or L{None}.
    @ivar weights: Score-driven weights, or L{None} for the configured
        weights.
    @ivar discovery: The C{ws://} URL of a deployment agent's feed of the
        pool's targets (C{discovery = { websocket = URL }}), or L{None}.
    """

    name: str
    targets: Tuple[Target, ...]
    balance: str = "round_robin"
    health: HealthConfig = HealthConfig()
    max_inflight: int = 0
    queue_size: int = 100
    queue_timeout: float = 10.0
    hash_key: str = "client_ip"
    hash_balance_factor: float = 0.0
    sticky: Optional[Sticky] = None
    weights: Optional[ScoreWeights] = None
    discovery: Optional[str] = None


def parse_pool(name: str, value: Any, reader: Reader, health: HealthConfig) -> Pool:
    """
    The C{[pools.NAME]} table.

    @param name: The pool's name.
    @param health: The C{[health]} defaults, which the pool's own
        C{health} table is laid over.
    """
    key = child_key("pools", name)
    if not name.strip():
        raise reader.fail(key, "pool name must not be empty")
    table = reader.table(value, key, _POOL_KEYS)

    targets_key = child_key(key, "targets")
    entries = reader.array(
        reader.required(table, key, "targets"),
        targets_key,
        'e.g. targets = ["127.0.0.1:8081"]',
    )
    if not entries:
        raise reader.fail(targets_key, "at least one target is required")
    targets: List[Target] = []
    seen: Dict[str, int] = {}
    for index, entry in enumerate(entries):
        entry_key = f"{targets_key}[{index}]"
        target = parse_target_entry(entry, entry_key, reader)
        if target.address in seen:
            raise reader.fail(
                entry_key,
                f"duplicate target {quote(target.address)} "
                f"(also targets[{seen[target.address]}])",
            )
        seen[target.address] = index
        targets.append(target)

    balance = "round_robin"
    if "balance" in table:
        balance_key = child_key(key, "balance")
        balance = reader.string(table["balance"], balance_key)
        if balance not in BALANCE_ALGORITHMS:
            raise reader.fail(
                balance_key,
                f"unknown balance {quote(balance)} "
                f"(allowed: {', '.join(BALANCE_ALGORITHMS)})",
            )
    if "health" in table:
        health = parse_health(table["health"], child_key(key, "health"), reader, health)
    with_tls = parse_pool_tls(table, key, reader, targets)
    settings: Dict[str, Any] = {}
    for setting in ("max_inflight", "queue_size"):
        if setting in table:
            settings[setting] = reader.integer(
                table[setting], child_key(key, setting), 0, 1 << 20
            )
    if "queue_timeout" in table:
        settings["queue_timeout"] = reader.positive_number(
            table["queue_timeout"], child_key(key, "queue_timeout")
        )
    if not any(target.weight for target in targets):
        raise reader.fail(targets_key, "at least one target needs a weight above 0")
    settings.update(parse_balancing(table, key, reader, balance))
    if "discovery" in table:
        settings["discovery"] = parse_discovery(table["discovery"], child_key(key, "discovery"), reader)
    return Pool(
        name=name,
        targets=with_tls,
        balance=balance,
        health=health,
        **settings,
    )
