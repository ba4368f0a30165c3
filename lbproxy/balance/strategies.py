# -*- test-case-name: tests.test_balancing -*-
"""
The balancing strategies by name: the one place a C{balance} name becomes
a strategy (L{lbproxy.balance.strategy}).
"""

from __future__ import annotations

from typing import Dict

from lbproxy.balance.roundrobin import RoundRobin
from lbproxy.balance.strategy import StrategyFactory

__all__ = ["BALANCERS", "STRATEGIES"]

#: Each C{balance} name's strategy factory.
STRATEGIES: Dict[str, StrategyFactory] = {
    "round_robin": RoundRobin,
}

#: The balance names a pool accepts.
BALANCERS = frozenset(STRATEGIES)
