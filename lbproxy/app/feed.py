# -*- test-case-name: tests.test_workers -*-
"""
The pipe from the main process to its workers (C{workers > 1}): one JSON
object a line.

  - C{{"target": IDENT, "up": BOOL}}: a health state (L{state_line});
  - C{{"reload": TEXT, "path": PATH}}: a configuration the main process
    validated, for the worker to apply
    (L{lbproxy.app.reload.reload_line}); with C{"etcd"}, etcd's keys to lay
    over it (then C{onReload} gets them as a third argument);
  - C{{"overrides": {...}}}: the admin API's changes (L{overrides_line}).

L{HealthFeed} reads them in a worker.
"""

from __future__ import annotations

import json
from typing import Callable

from twisted.internet.protocol import Protocol

__all__ = ["HealthFeed", "overrides_line", "state_line"]


def state_line(ident: str, up: bool) -> bytes:
    """
    One health-state message from the main process to its workers: the
    L{lbproxy.runtime.targets.TargetState} whose C{ident} this is, is up or
    down.
    """
    return json.dumps({"target": ident, "up": up}).encode("utf-8") + b"\n"


def overrides_line(data: dict) -> bytes:
    """
    The admin API's changes (L{lbproxy.runtime.overrides.ApiOverrides.dump}),
    from the main process to its workers, which apply them.
    """
    return json.dumps({"overrides": data}).encode("utf-8") + b"\n"


class HealthFeed(Protocol):
    """
    In a worker: applies the main process's health states (L{state_line}s)
    to the entries of this worker's target registry, whichever runtime's
    pools refer to them.
    """

    _buffer = b""

    def __init__(
        self,
        registry,
        parentGone: Callable[[], object] = lambda: None,
        onReload: Callable[[str, str], object] = lambda path, text: None,
        onOverrides: Callable[[dict], object] = lambda data: None,
    ) -> None:
        """
        @param registry: the worker's L{lbproxy.runtime.targets.TargetRegistry}.
        @param parentGone: called when the pipe ends: the main process is
            gone (see L{lbproxy.app.parent}).
        @param onReload: called with the path and text of a configuration
            the main process validated (L{lbproxy.app.reload.reload_line}),
            before the health states that follow it are applied.
        @param onOverrides: called with the admin API's changes made in the
            main process (L{overrides_line}).
        """
        self._registry = registry
        self.parentGone = parentGone
        self.onReload = onReload
        self.onOverrides = onOverrides

    def dataReceived(self, data: bytes) -> None:
        lines = (self._buffer + data).split(b"\n")
        self._buffer = lines.pop()
        for line in lines:
            try:
                message = json.loads(line)
                if "reload" in message:
                    args = [str(message.get("path", "")), str(message["reload"])]
                    if "etcd" in message:
                        # etcd's keys, to lay over the text (docs/fleet.md).
                        args.append(message["etcd"])
                    self.onReload(*args)
                    continue
                if "overrides" in message:
                    self.onOverrides(message["overrides"])
                    continue
                entry = self._registry.find(message["target"])
                up = bool(message["up"])
            except (ValueError, KeyError, TypeError):
                continue
            if entry is None:
                continue
            health = entry.health
            if health is not None:
                health.external(up)
            entry.up = health.available if health is not None else up

    def connectionLost(self, reason=None) -> None:
        # The main process is gone: nothing more will come, and nobody
        # supervises this worker any more.
        self.parentGone()
