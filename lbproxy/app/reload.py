# -*- test-case-name: tests.test_reload -*-
"""
Reloading the configuration file, on SIGHUP, on C{POST /api/reload} and
(with C{[server] watch = true}) when the file changes.

A reload is all or nothing:

  1. The whole file is read and validated; an invalid one is logged as one
     line (file, key, reason) and nothing changes.
  2. Listeners the file adds are opened; if one cannot be, those opened are
     closed again and the reload is rejected, naming it.
  3. One new runtime (with the admin API's changes laid over it) is
     swapped in: requests in flight finish on the runtime they started
     with; targets kept keep their health, in-flight counts and ejections
     (L{lbproxy.runtime.targets.TargetRegistry}); removed ones are retired
     and drain.
  4. Listeners the file removed stop accepting; connections busy on routes
     or pools the new file removed get C{drain_timeout} seconds, then are
     closed (L{lbproxy.app.drain}); every other connection is untouched.

Its outcome is logged once, and kept for C{GET /api/status}.  Settings
that only a restart applies (the number of workers, the access log, TLS
listeners, backend connection settings, the admin listener) are named in
the outcome when they change.

With C{workers > 1} the main process validates the file once, then sends
its text to every worker (L{reload_line}), which builds the same
configuration from it; listener changes need a restart there.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Dict, List, Optional

from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.logger import Logger

from lbproxy.app.listeners import ListenerFailed
from lbproxy.config import Config, ConfigError
from lbproxy.config.document import parse_config, tomllib

__all__ = ["Reloader", "parse_text", "reload_line", "restart_only"]

log = Logger()

#: Settings used by parts built once at start-up.
_RESTART_SERVER_KEYS = (
    "workers", "access_log", "connect_timeout", "idle_timeout", "max_idle_per_target",
    "listen_backlog", "proxy_protocol", "websocket_idle_timeout",
)


def restart_only(old: Config, new: Config) -> List[str]:
    """
    The keys whose change a reload does not apply (a restart does).
    """
    keys = [
        f"server.{name}" for name in _RESTART_SERVER_KEYS
        if getattr(old.server, name) != getattr(new.server, name)
    ]
    if old.tls != new.tls:
        keys.append("tls")
    if old.demo != new.demo:
        keys.append("demo")
    if getattr(old, "tcp", ()) != getattr(new, "tcp", ()):
        keys.append("tcp")
    if getattr(old, "etcd", None) != getattr(new, "etcd", None):
        # The watch is made at start-up (app/fleet.py).
        keys.append("etcd")
    if (old.admin and old.admin.listen) != (new.admin and new.admin.listen):
        keys.append("admin.listen")
    return keys


def reload_line(path: str, text: str, overlay=None) -> bytes:
    """
    The main process's message to its workers: apply this configuration
    (the file's text, as validated), with etcd's keys laid over it when
    C{overlay} (an L{lbproxy.discovery.etcdstate.EtcdState}) is given.
    """
    message = {"reload": text, "path": path}
    if overlay is not None:
        message["etcd"] = overlay.dump()
    return json.dumps(message).encode("utf-8") + b"\n"


def parse_text(text: str, path: str, overlay=None) -> Config:
    """
    A configuration from the text of its file (what a worker gets).

    @param overlay: what to lay over the file (etcd's pools and routes,
        L{lbproxy.discovery.etcdstate.EtcdState}): C{merge(data) -> data}
        and C{explain(ConfigError) -> ConfigError}, or L{None}.
    @raise ConfigError: as L{lbproxy.config.load_config} would.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(path, "", f"TOML syntax error: {e}") from None
    if overlay is None:
        return parse_config(data, path)
    try:
        return parse_config(overlay.merge(data), path)
    except ConfigError as e:
        raise overlay.explain(e) from None


def read_text(path: str) -> str:
    """
    The file's text, or a L{ConfigError} naming it.
    """
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(path, "", f"not UTF-8 text (bad byte at offset {e.start})") from None
    except OSError as e:
        raise ConfigError(path, "", f"cannot read file: {e.strerror or e}") from None


class Reloader:
    """
    Reloads one configuration file into a running proxy.

    @ivar core: the L{lbproxy.app.wiring.ProxyCore}.
    @ivar listeners: the L{lbproxy.app.listeners.ListenerSet} of the plain
        listeners, or L{None} (a worker or the main process of workers:
        they keep theirs).
    @ivar running: the reload in progress, or L{None}; more wait their
        turn.
    """

    def __init__(
        self,
        core,
        clock,
        path: str,
        listeners=None,
        workers: Optional[Callable[[str, str], Any]] = None,
        apply: Optional[Callable[[Config], Any]] = None,
        read: Callable[[str], str] = read_text,
        announce: bool = True,
    ) -> None:
        """
        @param workers: in the main process of C{workers > 1}: called with
            the path and the validated text, to send it to the workers.
        @param apply: more to do with a configuration put in service (e.g.
            new client limits on the listeners' sites).
        @param read: reads the file's text.
        @param announce: log the outcome (not in a worker: its main process
            logs it, once).
        """
        self.core = core
        self.clock = clock
        self.path = path
        self.listeners = listeners
        self._workers = workers
        self._apply = apply
        self._read = read
        self._announce = announce
        self.running: Optional[Deferred] = None
        self._queued: List = []
        #: Laid over the file on every reload (L{parse_text}): etcd's
        #: pools and routes, or L{None}.
        self.overlay = None
        #: Called with each configuration put in service (after C{apply}):
        #: e.g. the discovery feeds follow the pools that have one.
        self.onApplied: List[Callable[[Config], Any]] = []

    def __call__(self, source: str) -> Deferred:
        return self.reload(source)

    def reload(self, source: str, text: Optional[str] = None) -> Deferred:
        """
        Reload the file (or C{text}, from the main process).

        @param source: what asked, for the log (C{"SIGHUP"}, C{"admin API"},
            C{"file change"}).
        @return: a L{Deferred} firing with the outcome: C{{"applied": bool,
            "source", "at", "seconds", ...}}, with C{"error"}, C{"file"},
            C{"key"} when rejected.  Reloads run one after the other.
        """
        if self.running is not None:
            waiting: Deferred = Deferred()
            self._queued.append((source, text, waiting))
            return waiting
        started = self.clock.seconds()
        d = self._reload(source, text, started)
        self.running = d

        def done(outcome):
            self.running = None
            outcome["seconds"] = round(self.clock.seconds() - started, 6)
            self.core.configInfo.lastOutcome = outcome
            self.core.metrics.reloaded(
                "configuration", "success" if outcome["applied"] else "failure"
            )
            if outcome["applied"]:
                self.core.configInfo.reloads += 1
            self._log(outcome)
            if self._queued:
                source, text, waiting = self._queued.pop(0)
                self.reload(source, text).chainDeferred(waiting)
            return outcome

        return d.addCallback(done)

    @inlineCallbacks
    def _reload(self, source: str, text: Optional[str], started: float):
        outcome: Dict[str, Any] = {"source": source, "at": started}
        try:
            if text is None:
                text = self._read(self.path)
            config = parse_text(text, self.path, self.overlay)
        except ConfigError as e:
            outcome.update(applied=False, error=str(e), file=e.path, key=e.key, reason=e.reason)
            return outcome
        old = self.core.config
        opened: List = []
        if self.listeners is not None:
            added = [d for d in config.server.listen if d not in self.listeners.descriptions()]
            try:
                opened = yield self.listeners.openAll(added)
            except ListenerFailed as e:
                outcome.update(
                    applied=False,
                    error=f"{self.path}: server.listen: {e}",
                    file=self.path, key="server.listen", reason=str(e),
                )
                return outcome
        elif tuple(config.server.listen) != tuple(old.server.listen) and self._workers:
            outcome.update(
                applied=False, file=self.path, key="server.listen",
                reason="changing the listeners needs a restart with workers > 1",
            )
            outcome["error"] = f"{self.path}: server.listen: {outcome['reason']}"
            return outcome
        before = _summary(self.core.runtime)
        runtime = self.core.apply(config)
        if self._apply is not None:
            self._apply(config)
        for hook in self.onApplied:
            hook(config)
        closed: List[str] = []
        if self.listeners is not None:
            self.listeners.adopt(opened)
            closed = yield self.listeners.closeExcept(config.server.listen)
            others = [d for d in self.core.listeners if d not in old.server.listen]
            self.core.listeners = tuple(config.server.listen) + tuple(others)
        draining = self.core.live.drainRemoved(runtime, config.server.drain_timeout)
        if self._workers is not None:
            self._workers(self.path, text)
        after = _summary(runtime)
        outcome.update(
            applied=True,
            checksum=self.core.configInfo.checksum,
            routes=len(config.routes),
            pools=len(config.pools),
            listeners_opened=[port.description for port in opened],
            listeners_closed=closed,
            targets_added=sorted(after - before),
            targets_removed=sorted(before - after),
            routes_added=[_route(r) for r in config.routes if r not in old.routes],
            routes_removed=[_route(r) for r in old.routes if r not in config.routes],
            draining_connections=draining,
            restart_needed=restart_only(old, config),
        )
        return outcome

    def _log(self, outcome: Dict[str, Any]) -> None:
        if not self._announce:
            log.debug("configuration from the main process: {outcome}", outcome=outcome)
            if not outcome["applied"]:
                log.error("the main process's configuration was rejected here: {error}",
                          error=outcome["error"])
            return
        if not outcome["applied"]:
            log.error(
                "reload ({source}) rejected, the previous configuration stays: {error}",
                source=outcome["source"], error=outcome["error"],
            )
            return
        extra = ""
        if outcome["restart_needed"]:
            extra = "; changed but applied only by a restart: " + ", ".join(
                outcome["restart_needed"])
        log.info(
            "reload ({source}) applied in {ms:.1f} ms: configuration {checksum}, "
            "{routes} routes, {pools} pools; routes added or changed: {radded}, removed or "
            "changed: {rremoved}; listeners opened: {opened}, closed: {closed}; "
            "targets added: {added}, removed: {removed}; {draining} connection(s) "
            "draining{extra}",
            source=outcome["source"], ms=outcome["seconds"] * 1000,
            checksum=outcome["checksum"], routes=outcome["routes"], pools=outcome["pools"],
            opened=_names(outcome["listeners_opened"]),
            closed=_names(outcome["listeners_closed"]),
            added=_names(outcome["targets_added"]), removed=_names(outcome["targets_removed"]),
            radded=_names(outcome["routes_added"]), rremoved=_names(outcome["routes_removed"]),
            draining=outcome["draining_connections"], extra=extra,
        )


def _route(route) -> str:
    """
    C{"host/path -> pool"} (C{"*"} for any host), for log lines.
    """
    return f"{route.host or '*'}{route.path} -> {route.pool}"


def _names(items) -> str:
    return ", ".join(items) if items else "none"


def _summary(runtime) -> set:
    return {
        f"{name}/{member.target.address}"
        for name, pool in runtime.pools.items() for member in pool.members
    }
