# -*- test-case-name: tests.test_reload -*-
"""
Changes made through the admin API, kept apart from the configuration
file and laid over every configuration loaded from it.

A target added through the API stays in its pool, a weight set through
the API stays set, a target drained stays drained and a target deleted
stays deleted across reloads of the file, until the API changes it again
(deleting an added target forgets it; enabling a drained one forgets the
drain).  A change for a pool that a reload removed is kept, and applies
again if the pool comes back.

Pure: no reactor, no I/O.
"""

from __future__ import annotations

import dataclasses
from types import MappingProxyType
from typing import Any, Dict, List, Optional, Set, Tuple

from lbproxy.config import Config, Target

__all__ = ["ApiOverrides"]


class ApiOverrides:
    """
    The admin API's changes, by pool and target address (C{"host:port"}).
    """

    def __init__(self) -> None:
        self._added: Dict[str, Dict[str, Target]] = {}
        self._weights: Dict[str, Dict[str, int]] = {}
        self._drained: Dict[str, Set[str]] = {}
        self._removed: Dict[str, Set[str]] = {}
        #: A pool's whole membership from its discovery feed, replacing
        #: the file's targets (the other changes apply over it).
        self._members: Dict[str, Tuple[Target, ...]] = {}

    def __bool__(self) -> bool:
        return any((self._added, self._weights, self._drained, self._removed, self._members))

    # -- changes ---------------------------------------------------------------

    def add(self, pool: str, target: Target) -> None:
        """
        Add C{target} (with its weight) to C{pool}.
        """
        self._added.setdefault(pool, {})[target.address] = target
        self._discard(self._removed, pool, target.address)
        self._discard(self._weights, pool, target.address)

    def remove(self, pool: str, address: str) -> None:
        """
        Take the target at C{address} out of C{pool}: an added one is
        forgotten, one from the file is kept out of it.
        """
        added = self._added.get(pool, {})
        if address in added:
            del added[address]
            if not added:
                del self._added[pool]
        else:
            self._removed.setdefault(pool, set()).add(address)
        self._discard(self._weights, pool, address)
        self._discard(self._drained, pool, address)

    def setMembers(self, pool: str, targets: Tuple[Target, ...]) -> None:
        """
        C{targets} (at least one) are C{pool}'s whole membership from now
        on, instead of the file's (a discovery feed's list).
        """
        self._members[pool] = tuple(targets)

    def clearMembers(self, pool: str) -> bool:
        """
        C{pool} has no feed any more: its targets are the file's again.

        @return: whether it had a feed's membership.
        """
        return self._members.pop(pool, None) is not None

    def members(self, pool: str) -> Optional[Tuple[Target, ...]]:
        """
        The membership a feed set for C{pool}, or L{None}.
        """
        return self._members.get(pool)

    def setWeight(self, pool: str, address: str, weight: int) -> None:
        added = self._added.get(pool, {})
        if address in added:
            added[address] = dataclasses.replace(added[address], weight=weight)
        else:
            self._weights.setdefault(pool, {})[address] = weight

    def drain(self, pool: str, address: str) -> None:
        self._drained.setdefault(pool, set()).add(address)

    def enable(self, pool: str, address: str) -> None:
        self._discard(self._drained, pool, address)

    @staticmethod
    def _discard(table: Dict[str, Any], pool: str, address: str) -> None:
        inner = table.get(pool)
        if inner is None or address not in inner:
            return
        if isinstance(inner, dict):
            del inner[address]
        else:
            inner.discard(address)
        if not inner:
            del table[pool]

    # -- reading ---------------------------------------------------------------

    def drained(self, pool: str) -> Set[str]:
        """
        The addresses drained through the API in C{pool}.
        """
        return set(self._drained.get(pool, ()))

    def isAdded(self, pool: str, address: str) -> bool:
        return address in self._added.get(pool, {})

    def marks(self, pool: str) -> Dict[str, Dict[str, Any]]:
        """
        For each target of C{pool} the API changed, what it changed
        (C{"added"}, C{"weight"}, C{"drained"}).
        """
        marks: Dict[str, Dict[str, Any]] = {}
        for address, target in self._added.get(pool, {}).items():
            marks.setdefault(address, {})["added"] = True
            marks[address]["weight"] = target.weight
        for address, weight in self._weights.get(pool, {}).items():
            marks.setdefault(address, {})["weight"] = weight
        for address in self._drained.get(pool, ()):
            marks.setdefault(address, {})["drained"] = True
        return marks

    def describe(self) -> List[Dict[str, Any]]:
        """
        Every change, for the status: C{{"pool", "address", "change", ...}}.
        """
        changes: List[Dict[str, Any]] = []
        for pool, added in sorted(self._added.items()):
            for address, target in sorted(added.items()):
                changes.append({"pool": pool, "address": address, "change": "added",
                                "weight": target.weight})
        for pool, weights in sorted(self._weights.items()):
            for address, weight in sorted(weights.items()):
                changes.append({"pool": pool, "address": address, "change": "weight",
                                "weight": weight})
        for pool, drained in sorted(self._drained.items()):
            for address in sorted(drained):
                changes.append({"pool": pool, "address": address, "change": "drained"})
        for pool, removed in sorted(self._removed.items()):
            for address in sorted(removed):
                changes.append({"pool": pool, "address": address, "change": "removed"})
        return changes

    # -- passing on ------------------------------------------------------------

    def dump(self) -> Dict[str, Any]:
        """
        Every change as JSON-ready data (for the workers of a main process,
        L{load}).
        """
        return {
            "added": {
                pool: {address: [t.scheme, t.host, t.port, t.weight]
                       for address, t in added.items()}
                for pool, added in self._added.items()
            },
            "weights": {pool: dict(weights) for pool, weights in self._weights.items()},
            "drained": {pool: sorted(drained) for pool, drained in self._drained.items()},
            "removed": {pool: sorted(removed) for pool, removed in self._removed.items()},
            "members": {
                pool: [[t.scheme, t.host, t.port, t.weight] for t in targets]
                for pool, targets in self._members.items()
            },
        }

    def load(self, data: Dict[str, Any]) -> None:
        """
        Replace every change with those of L{dump}'s C{data}.
        """
        self._added = {
            pool: {address: Target(scheme, host, port, weight)
                   for address, (scheme, host, port, weight) in added.items()}
            for pool, added in data.get("added", {}).items()
        }
        self._weights = {pool: dict(w) for pool, w in data.get("weights", {}).items()}
        self._drained = {pool: set(d) for pool, d in data.get("drained", {}).items()}
        self._removed = {pool: set(r) for pool, r in data.get("removed", {}).items()}
        self._members = {
            pool: tuple(Target(scheme, host, port, weight)
                        for scheme, host, port, weight in targets)
            for pool, targets in data.get("members", {}).items()
        }

    # -- applying --------------------------------------------------------------

    def apply(self, config: Config) -> Config:
        """
        C{config} with these changes made to its pools.  A pool left
        without targets keeps its first one from the file (the API refuses
        to delete a pool's last target; a file change could empty it).
        """
        if not (self._added or self._weights or self._removed or self._members):
            return config
        pools = dict(config.pools)
        for name, pool in config.pools.items():
            changed = self.applyPool(name, pool.targets)
            if changed is not None:
                pools[name] = dataclasses.replace(pool, targets=changed)
        return dataclasses.replace(config, pools=MappingProxyType(pools))

    def applyPool(self, name: str, targets) -> Optional[tuple]:
        """
        The targets of pool C{name} after these changes, or L{None} if
        they change nothing.
        """
        added = self._added.get(name, {})
        weights = self._weights.get(name, {})
        removed = self._removed.get(name, set())
        members = self._members.get(name)
        if not (added or weights or removed or members):
            return None
        if members:
            targets = self._inherit(targets, members)
        result = []
        seen = set()
        for target in targets:
            address = target.address
            if address in removed and len(targets) > 1:
                continue
            if address in added:
                target = dataclasses.replace(target, weight=added[address].weight)
            elif address in weights:
                target = dataclasses.replace(target, weight=weights[address])
            result.append(target)
            seen.add(address)
        result.extend(self._inherit(
            targets, [t for address, t in added.items() if address not in seen]))
        if not result:
            result.append(targets[0])
        return tuple(result)

    @staticmethod
    def _inherit(base, targets) -> tuple:
        """
        C{targets} (from the API or a feed) with the pool's TLS settings
        and health check endpoint, as the file's C{base} targets have them.
        """
        tls = next((t.tls for t in base if t.tls is not None), None)
        health = next(
            (t.health_check_endpoint for t in base if t.health_check_endpoint), None
        )
        return tuple(
            dataclasses.replace(
                target,
                tls=tls if target.scheme == "https" else None,
                health_check_endpoint=target.health_check_endpoint or health,
            )
            for target in targets
        )
