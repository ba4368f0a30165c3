# -*- test-case-name: tests.test_config_balancing -*-
"""
A route's traffic shaping: C{split} (canary and blue/green, with
C{split_by} and C{split_header}) and C{mirror} (copies of a share of the
requests to another pool), and the checks across pools and routes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Tuple

from lbproxy.config.errors import child_key, quote
from lbproxy.config.reader import Reader

__all__ = ["TRAFFIC_KEYS", "Mirror", "Split", "check_traffic", "parse_traffic"]

#: The route keys this module reads.
TRAFFIC_KEYS = ("mirror", "split", "split_by", "split_header")

_ARM_KEYS = ("pool", "weight")
_MIRROR_KEYS = ("pool", "percent", "max_body", "timeout", "max_inflight")
_TOKEN_CHARS = frozenset(
    "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)


@dataclass(frozen=True)
class Split:
    """
    A route's requests shared among pools.

    @ivar arms: C{(pool, weight)} pairs, in file order; weights 0 to
        10000, at least one above 0.
    @ivar by: C{"random"} (each request on its own), C{"client_ip"} or
        C{"cookie:NAME"} (a client stays on one side).
    @ivar header: a request header naming the pool (C{X-Canary: canary}),
        which wins over the weights, or L{None}.
    """

    arms: Tuple[Tuple[str, int], ...]
    by: str = "random"
    header: Optional[str] = None


@dataclass(frozen=True)
class Mirror:
    """
    Copies of a share of a route's requests to another pool, fire and
    forget.

    @ivar pool: the pool the copies go to.
    @ivar percent: the share of requests copied, above 0 to 100.
    @ivar max_body: the largest request body copied, in bytes; a request
        with a longer body is not copied (0: only requests without a body).
    @ivar timeout: seconds a copy may take in all before it is abandoned.
    @ivar max_inflight: most copies in progress at once; beyond, copies are
        dropped (and counted).
    """

    pool: str
    percent: float = 100.0
    max_body: int = 1 << 20
    timeout: float = 5.0
    max_inflight: int = 100


def parse_traffic(table: Mapping[str, Any], key: str, reader: Reader) -> Dict[str, Any]:
    """
    The traffic keys of the route table C{table} at C{key}, as keyword
    arguments of L{lbproxy.config.routes.Route}; with C{split}, C{pool}
    is the first arm's pool (a route has one or the other).
    """
    settings: Dict[str, Any] = {}
    if "split" in table:
        if "pool" in table:
            raise reader.fail(child_key(key, "pool"), "a route has either pool or split, not both")
        split = _split(table, key, reader)
        settings["split"] = split
        settings["pool"] = split.arms[0][0]
    else:
        for name in ("split_by", "split_header"):
            if name in table:
                raise reader.fail(child_key(key, name), "only applies to a route with split")
    if "mirror" in table:
        settings["mirror"] = _mirror(table["mirror"], child_key(key, "mirror"), reader)
    return settings


def _split(table: Mapping[str, Any], key: str, reader: Reader) -> Split:
    split_key = child_key(key, "split")
    entries = reader.array(
        table["split"], split_key, 'e.g. split = [{ pool = "stable", weight = 90 }, ...]'
    )
    if not entries:
        raise reader.fail(split_key, "at least one pool is required")
    arms: List[Tuple[str, int]] = []
    for index, entry in enumerate(entries):
        entry_key = f"{split_key}[{index}]"
        arm = reader.table(entry, entry_key, _ARM_KEYS)
        pool = reader.nonempty_string(reader.required(arm, entry_key, "pool"), child_key(entry_key, "pool"))
        if any(pool == seen for seen, _ in arms):
            raise reader.fail(child_key(entry_key, "pool"), f"pool {quote(pool)} appears twice")
        weight = reader.integer(
            reader.required(arm, entry_key, "weight"), child_key(entry_key, "weight"), 0, 10000
        )
        arms.append((pool, weight))
    if not any(weight for _, weight in arms):
        raise reader.fail(split_key, "at least one pool needs a weight above 0")
    settings: Dict[str, Any] = {"arms": tuple(arms)}
    if "split_by" in table:
        by_key = child_key(key, "split_by")
        by = reader.string(table["split_by"], by_key)
        source, colon, name = by.partition(":")
        if by not in ("random", "client_ip") and not (
            colon and source == "cookie" and name and set(name) <= _TOKEN_CHARS
        ):
            raise reader.fail(
                by_key, f'unknown split_by {quote(by)} (expected random, client_ip or "cookie:NAME")'
            )
        settings["by"] = by
    if "split_header" in table:
        header_key = child_key(key, "split_header")
        header = reader.nonempty_string(table["split_header"], header_key)
        if not set(header) <= _TOKEN_CHARS:
            raise reader.fail(header_key, f"header name {quote(header)} is not a valid token")
        settings["header"] = header
    return Split(**settings)


def _mirror(value: Any, key: str, reader: Reader) -> Mirror:
    table = reader.table(value, key, _MIRROR_KEYS)
    settings: Dict[str, Any] = {
        "pool": reader.nonempty_string(reader.required(table, key, "pool"), child_key(key, "pool"))
    }
    if "percent" in table:
        percent_key = child_key(key, "percent")
        percent = reader.number(table["percent"], percent_key)
        if not (math.isfinite(percent) and 0 < percent <= 100):
            raise reader.fail(percent_key, f"must be above 0 and at most 100, got {percent!r}")
        settings["percent"] = float(percent)
    if "max_body" in table:
        settings["max_body"] = reader.size(table["max_body"], child_key(key, "max_body"))
    if "timeout" in table:
        settings["timeout"] = reader.positive_number(table["timeout"], child_key(key, "timeout"))
    if "max_inflight" in table:
        settings["max_inflight"] = reader.integer(
            table["max_inflight"], child_key(key, "max_inflight"), 1, 100000
        )
    return Mirror(**settings)


def check_traffic(reader: Reader, server, pools: Mapping[str, Any], routes) -> None:
    """
    Every pool a split or a mirror names exists (a route does not mirror
    to its own pool); with several workers, sticky sessions have a secret
    and no weights come from probes.
    """
    known = ", ".join(sorted(pools))
    for index, route in enumerate(routes):
        split = getattr(route, "split", None)
        if split is not None:
            for arm, (pool, _) in enumerate(split.arms):
                if pool not in pools:
                    raise reader.fail(
                        f"routes[{index}].split[{arm}].pool",
                        f"no pool named {quote(pool)} (pools: {known})",
                    )
        mirror = getattr(route, "mirror", None)
        if mirror is not None:
            if mirror.pool not in pools:
                raise reader.fail(
                    f"routes[{index}].mirror.pool", f"no pool named {quote(mirror.pool)} (pools: {known})"
                )
            serving = [arm for arm, _ in split.arms] if split is not None else [route.pool]
            if mirror.pool in serving:
                raise reader.fail(
                    f"routes[{index}].mirror.pool",
                    f"{quote(mirror.pool)} already serves this route; mirror to another pool",
                )
    if server.workers > 1:
        for name, pool in pools.items():
            weights = getattr(pool, "weights", None)
            if weights is not None and weights.source == "probe":
                raise reader.fail(
                    child_key(child_key(child_key("pools", name), "weights"), "from"),
                    f'"probe" needs server.workers = 1 (with {server.workers} workers only the '
                    'main process probes); use "header" or "latency"',
                )
            sticky = getattr(pool, "sticky", None)
            if sticky is not None and sticky.secret is None:
                raise reader.fail(
                    child_key(child_key("pools", name), "sticky"),
                    f"with server.workers = {server.workers} a sticky pool needs a secret "
                    "(sticky.secret), the same for every worker",
                )
