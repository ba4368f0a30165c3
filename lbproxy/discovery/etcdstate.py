# -*- test-case-name: tests.test_etcd -*-
"""
What this proxy knows of etcd's keys, revision-tracked, and how it lays
them over the configuration file.

Pure: no reactor, no I/O.  The watcher (L{lbproxy.discovery.etcdwatch})
feeds it full reads (L{EtcdState.reset}) and watch events
(L{EtcdState.apply}); a change is taken only if it is newer than what is
known, so a replayed or reordered event never undoes a later one, and a
full read at revision R replaces everything (keys deleted meanwhile go).

Layout under the prefix P: C{P/pools/NAME} holds a pool table and
C{P/routes/ID} a route table, each as JSON with the file's schema.  The
file stays the base: etcd's pools replace the file's pools of the same
name, and etcd's routes come after the file's, ordered by id.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any, Dict, List, Mapping, Optional, Tuple

from lbproxy.config.errors import ConfigError

__all__ = ["EtcdState", "Event"]

#: A watch event: C{(kind, key, value, mod_revision)}; kind is C{"PUT"} or
#: C{"DELETE"}, value is L{None} for a delete.
Event = Tuple[str, str, Optional[bytes], int]

_ROUTE_INDEX = re.compile(r"routes\[(\d+)\](.*)\Z", re.S)
_POOL_KEY = re.compile(r'pools\.("(?:[^"\\]|\\.)*"|[^.\[]+)(.*)\Z', re.S)


class EtcdState:
    """
    The keys under one prefix at one revision.

    @ivar prefix: the prefix, without a trailing C{/}.
    @ivar revision: the etcd revision everything here is current at
        (0: nothing read yet).
    @ivar values: C{{key: bytes}}.
    @ivar read: whether a full read has been applied.
    """

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix.rstrip("/")
        self.revision = 0
        self.values: Dict[str, bytes] = {}
        self._mods: Dict[str, int] = {}
        self.read = False

    def reset(self, kvs: List[Tuple[str, bytes, int]], revision: int) -> bool:
        """
        A full read of the prefix at C{revision}: it replaces what was
        known (even at a lower revision: etcd was restored or recreated).

        @param kvs: C{(key, value, mod_revision)} of every key.
        @return: whether anything changed.
        """
        values = {key: value for key, value, _ in kvs}
        changed = values != self.values or not self.read
        self.values = values
        self._mods = {key: mod for key, _, mod in kvs}
        self.revision = revision
        self.read = True
        return changed

    def apply(self, events: List[Event]) -> bool:
        """
        One watch message's events, in order.  Events at or below the known
        revision were seen already and are skipped (etcd never splits one
        revision's events over two messages); the known revision becomes
        the newest event's.  (The message header's revision is not used:
        a watcher catching up may be sent older events after it.)

        @return: whether anything changed.
        """
        changed = False
        newest = self.revision
        for kind, key, value, mod in events:
            if mod <= self.revision or mod <= self._mods.get(key, 0):
                continue
            if kind == "DELETE":
                if key in self.values:
                    del self.values[key]
                    changed = True
                self._mods[key] = mod
            else:
                if self.values.get(key) != value:
                    changed = True
                self.values[key] = value  # type: ignore[assignment]
                self._mods[key] = mod
            newest = max(newest, mod)
        self.revision = newest
        return changed

    # -- passing on ---------------------------------------------------------------

    def dump(self) -> Dict[str, Any]:
        """
        JSON-ready: what a worker needs to lay the same keys over the file
        (L{load}).
        """
        return {
            "prefix": self.prefix,
            "revision": self.revision,
            "values": {key: base64.b64encode(value).decode("ascii")
                       for key, value in self.values.items()},
        }

    @classmethod
    def load(cls, data: Mapping[str, Any]) -> "EtcdState":
        """
        The state L{dump} described.
        """
        state = cls(str(data["prefix"]))
        state.reset([(key, base64.b64decode(value), 0)
                     for key, value in dict(data["values"]).items()], int(data["revision"]))
        return state

    # -- laying it over the file ------------------------------------------------

    def objects(self) -> Tuple[Dict[str, Tuple[str, Any]], List[Tuple[str, str, Any]]]:
        """
        The pools (C{{name: (etcd key, table)}}) and routes (C{[(id, etcd
        key, table)]}, by id) held.

        @raise ConfigError: naming the etcd key, for a value that is not
            a JSON object or a key outside the layout.
        """
        pools: Dict[str, Tuple[str, Any]] = {}
        routes: List[Tuple[str, str, Any]] = []
        for key in sorted(self.values):
            rest = key[len(self.prefix) + 1:] if key.startswith(self.prefix + "/") else None
            kind, _, name = (rest or "").partition("/")
            if kind not in ("pools", "routes") or not name or "/" in name:
                # Not ours (another tool's key under the prefix): ignored.
                continue
            try:
                table = json.loads(self.values[key].decode("utf-8"))
            except (UnicodeDecodeError, ValueError) as e:
                raise ConfigError(f"etcd {key}", "", f"not JSON: {e}") from None
            if not isinstance(table, dict):
                raise ConfigError(f"etcd {key}", "", "expected a JSON object (a table)")
            if kind == "pools":
                pools[name] = (key, table)
            else:
                routes.append((name, key, table))
        return pools, routes

    def merge(self, data: Mapping[str, Any]) -> Dict[str, Any]:
        """
        The file's parsed TOML C{data} with etcd's pools and routes laid
        over it (neither is changed).

        @raise ConfigError: see L{objects}.
        """
        pools, routes = self.objects()
        merged = dict(data)
        self._fileRoutes = len(data.get("routes", ()) or ()) if isinstance(
            data.get("routes", ()), list) else 0
        self._routeKeys = [key for _, key, _ in routes]
        self._poolKeys = {name: key for name, (key, _) in pools.items()}
        if pools:
            base = data.get("pools", {})
            merged["pools"] = dict(base) if isinstance(base, dict) else base
            if isinstance(merged["pools"], dict):
                for name, (_, table) in pools.items():
                    merged["pools"][name] = table
        if routes:
            base = data.get("routes", [])
            if isinstance(base, list):
                merged["routes"] = list(base) + [table for _, _, table in routes]
        return merged

    def explain(self, error: ConfigError) -> ConfigError:
        """
        C{error} from validating L{merge}'s result, naming the etcd key when
        the value at fault came from etcd.
        """
        key = error.key or ""
        match = _ROUTE_INDEX.match(key)
        routeKeys = getattr(self, "_routeKeys", [])
        if match is not None:
            index = int(match.group(1)) - getattr(self, "_fileRoutes", 0)
            if 0 <= index < len(routeKeys):
                return ConfigError(f"etcd {routeKeys[index]}", key, error.reason)
            return error
        match = _POOL_KEY.match(key)
        if match is not None:
            name = match.group(1)
            if name.startswith('"'):
                try:
                    name = json.loads(name)
                except ValueError:
                    return error
            etcdKey = getattr(self, "_poolKeys", {}).get(name)
            if etcdKey is not None:
                return ConfigError(f"etcd {etcdKey}", key, error.reason)
        return error
