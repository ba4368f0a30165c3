# -*- test-case-name: tests.test_balancing -*-
"""
The balancing strategies by name: the one place a C{balance} name becomes
a strategy (L{lbproxy.balance.strategy}).
"""

from __future__ import annotations

from typing import Dict

from lbproxy.balance.hashring import HashRing
from lbproxy.balance.leastconn import LeastConnections
from lbproxy.balance.roundrobin import RoundRobin
from lbproxy.balance.strategy import StrategyFactory
from lbproxy.balance.twochoices import TwoChoices

__all__ = ["BALANCERS", "STRATEGIES"]

#: Each C{balance} name's strategy factory.
STRATEGIES: Dict[str, StrategyFactory] = {
    "round_robin": RoundRobin,
    "least_conn": LeastConnections,
    "random": TwoChoices,
    "hash": HashRing,
}

#: The balance names a pool accepts.
BALANCERS = frozenset(STRATEGIES)
