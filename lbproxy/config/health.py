# -*- test-case-name: tests.test_config_health -*-
"""
Health checking: the C{[health]} defaults and a pool's
C{[pools.NAME.health]}, laid over them.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from lbproxy.config.errors import child_key, describe
from lbproxy.config.reader import Reader
from lbproxy.config.syntax import probe_path

__all__ = ["HealthConfig", "parse_health"]

_HEALTH_KEYS = (
    "ejection_time",
    "expect_status",
    "fall",
    "host",
    "interval",
    "max_ejection_time",
    "passive_fail",
    "path",
    "rise",
    "slow_start",
    "timeout",
)
_STATUS_RANGE = re.compile(r"^\s*\d{3}\s*-\s*\d{3}\s*$")


@dataclass(frozen=True)
class HealthConfig:
    """
    Health checking of a pool's targets: the C{[health]} defaults with a
    pool's C{[pools.NAME.health]} laid over them.

    @ivar interval: Seconds between two probes of one target.
    @ivar timeout: Seconds one probe may take.
    @ivar rise: Consecutive successful probes that bring a target back.
    @ivar fall: Consecutive failed probes that take a target out.
    @ivar path: Path probed with GET, or L{None}: then only targets with
        their own C{health_check_endpoint} are probed, the others are
        checked passively only.
    @ivar expect_status: Inclusive C{(low, high)} status ranges that count
        as healthy; 2xx and 3xx by default.
    @ivar host: C{Host} header for probes, or L{None} for the target's
        address.
    @ivar passive_fail: Consecutive connection failures (refused, connect
        timeout, reset before the response) that eject a target.
    @ivar ejection_time: Seconds of the first ejection; each further
        ejection in a row doubles it.
    @ivar max_ejection_time: The longest ejection.
    @ivar connect_check: Without a C{path}, probe by opening a TCP
        connection (set for the pools of C{[[tcp]]} services and TLS
        passthrough, not a key of its own).
    @ivar slow_start: Seconds over which a target that comes back ramps up
        from a trickle to its full share of requests; 0 for none.
    """

    interval: float = 5.0
    timeout: float = 2.0
    rise: int = 2
    fall: int = 3
    path: Optional[str] = None
    expect_status: Tuple[Tuple[int, int], ...] = ((200, 399),)
    host: Optional[str] = None
    passive_fail: int = 3
    ejection_time: float = 10.0
    max_ejection_time: float = 300.0
    slow_start: float = 0.0
    connect_check: bool = False

    def healthy(self, code: int) -> bool:
        """
        Whether a probe answered with C{code} counts as a success.
        """
        return any(low <= code <= high for low, high in self.expect_status)


def parse_health(value: Any, key: str, reader: Reader, base: HealthConfig) -> HealthConfig:
    """
    A C{[health]} or C{[pools.NAME.health]} table, laid over C{base}.
    """
    table = reader.table(value, key, _HEALTH_KEYS)
    settings: Dict[str, Any] = {}
    for name in ("interval", "timeout", "ejection_time", "max_ejection_time"):
        if name in table:
            settings[name] = reader.positive_number(table[name], child_key(key, name))
    if "slow_start" in table:
        slow = table["slow_start"]
        if isinstance(slow, bool) or not isinstance(slow, (int, float)) or not (
            math.isfinite(slow) and 0 <= slow <= 3600
        ):
            raise reader.fail(
                child_key(key, "slow_start"),
                f"expected seconds from 0 to 3600, got {describe(slow)}",
            )
        settings["slow_start"] = float(slow)
    for name in ("rise", "fall", "passive_fail"):
        if name in table:
            settings[name] = reader.integer(table[name], child_key(key, name), 1, 1000)
    if "path" in table:
        settings["path"] = probe_path(table["path"], child_key(key, "path"), reader)
    if "host" in table:
        host = reader.nonempty_string(table["host"], child_key(key, "host"))
        if any(c.isspace() or ord(c) < 32 for c in host):
            raise reader.fail(child_key(key, "host"), "must not contain whitespace")
        settings["host"] = host
    if "expect_status" in table:
        settings["expect_status"] = _status_ranges(
            table["expect_status"], child_key(key, "expect_status"), reader
        )
    health = base.__class__(**{**base.__dict__, **settings})
    if health.timeout > health.interval:
        # Name the key written here (the other may come from [health]).
        if "timeout" in table:
            raise reader.fail(
                child_key(key, "timeout"),
                f"must not be longer than the interval ({health.interval:g}s), "
                f"got {health.timeout:g}",
            )
        raise reader.fail(
            child_key(key, "interval"),
            f"must not be shorter than the probe timeout ({health.timeout:g}s), "
            f"got {health.interval:g}",
        )
    if health.max_ejection_time < health.ejection_time:
        if "max_ejection_time" in table:
            raise reader.fail(
                child_key(key, "max_ejection_time"),
                f"must not be shorter than ejection_time ({health.ejection_time:g}s), "
                f"got {health.max_ejection_time:g}",
            )
        raise reader.fail(
            child_key(key, "ejection_time"),
            f"must not be longer than max_ejection_time "
            f"({health.max_ejection_time:g}s), got {health.ejection_time:g}",
        )
    return health


def _status_ranges(value: Any, key: str, reader: Reader) -> Tuple[Tuple[int, int], ...]:
    """
    C{expect_status}: a status, a range C{"200-399"}, or an array of
    them.
    """
    items = value if isinstance(value, (list, tuple)) else [value]
    if not items:
        raise reader.fail(key, "at least one status is required")
    ranges: List[Tuple[int, int]] = []
    for index, item in enumerate(items):
        item_key = f"{key}[{index}]" if isinstance(value, (list, tuple)) else key
        if isinstance(item, int) and not isinstance(item, bool):
            low = high = item
        elif isinstance(item, str) and _STATUS_RANGE.match(item):
            low, high = (int(part) for part in item.split("-"))
        else:
            raise reader.fail(
                item_key,
                'expected a status code (200) or a range ("200-399"), '
                f"got {describe(item)}",
            )
        if not 100 <= low <= high <= 599:
            raise reader.fail(item_key, f"not a status range from 100 to 599: {low}-{high}")
        ranges.append((low, high))
    return tuple(ranges)
