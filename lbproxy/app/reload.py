# -*- test-case-name: tests.test_reload -*-
"""
Reloading the configuration file, on SIGHUP, on C{POST /api/reload} and
(with C{[server] watch = true}) when the file changes.

A reload is all or nothing:

  1. The whole file is read and validated; an invalid one is logged as one
     line (file, key, reason) and nothing changes.
  2. Listeners the file adds (C{server.listen} and C{tls.listen}, the TLS
     ones with the TLS listeners' factory) are opened; if one cannot be,
     every one this reload opened is closed again and the reload is
     rejected, naming it and its key.
  3. One new runtime (with the admin API's changes laid over it) is
     swapped in: requests in flight finish on the runtime they started
     with; targets kept keep their health, in-flight counts and ejections
     (L{lbproxy.runtime.targets.TargetRegistry}); removed ones are retired
     and drain.
  4. Listeners the file removed (plain or TLS) stop accepting; connections busy on routes
     or pools the new file removed get C{drain_timeout} seconds, then are
     closed (L{lbproxy.app.drain}); every other connection is untouched.

Its outcome is logged once, and kept for C{GET /api/status}.  Settings
that only a restart applies (the number of workers, the access log, the
C{[tls]} keys other than C{listen} (certificates reload on SIGHUP from the
files named at start), adding or removing C{[tls]}, backend connection
settings, the admin listener) are named in the outcome when they change
(L{restart_only}).

With C{workers > 1} the main process validates the file once, then sends
its text to every worker (L{reload_line}), which builds the same
configuration from it.  When the listeners change, it binds the new
sockets instead (all or nothing), starts a new generation of workers on
them with the text and, once they are ready, applies the reload and
retires the old generation, which drains (L{lbproxy.app.generations}).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Callable, Dict, List, Optional, Tuple

from twisted.internet.defer import Deferred, fail, inlineCallbacks, succeed
from twisted.logger import Logger

from lbproxy.app.listeners import ListenerFailed, discard
from lbproxy.config import Config, ConfigError
from lbproxy.config.document import parse_config, tomllib

__all__ = ["Reloader", "all_listeners", "parse_text", "reload_line", "restart_only"]

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
    if old.tls is None or new.tls is None:
        if old.tls != new.tls:
            keys.append("tls")
    else:
        # tls.listen is applied (opened and closed); certificates reload
        # on SIGHUP from the files named at start-up.
        keys += [
            f"tls.{field.name}" for field in dataclasses.fields(old.tls)
            if field.name != "listen"
            and getattr(old.tls, field.name) != getattr(new.tls, field.name)
        ]
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


def all_listeners(config: Config) -> List[str]:
    """
    Every proxy listener of a configuration: C{server.listen}, then
    C{tls.listen} (the order a worker gets its sockets in).
    """
    listen = list(config.server.listen)
    if config.tls is not None:
        listen += list(config.tls.listen)
    return listen


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
        tlsListeners=None,
        generation: Optional[Callable[[Config, str], Deferred]] = None,
        apply: Optional[Callable[[Config], Any]] = None,
        read: Callable[[str], str] = read_text,
        announce: bool = True,
    ) -> None:
        """
        @param workers: in the main process of C{workers > 1}: called with
            the path and the validated text, to send it to the workers.
        @param tlsListeners: the L{ListenerSet} of the TLS listeners
            (C{tls.listen}), or L{None} (no C{[tls]} at start, a worker, the
            main process of workers).
        @param generation: in the main process of C{workers > 1}: called
            with a configuration whose listeners differ and its text, to
            start a new generation of workers on the new sockets; its
            L{Deferred} fires with the handover (C{opened}, C{commit()}
            retiring the old generation) once they are up, or fails with
            L{ListenerFailed}.
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
        self.tlsListeners = tlsListeners
        self._workers = workers
        self._generation = generation
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
        try:
            opened = yield self._openListeners(config)
            handover = yield self._newGeneration(config, text)
        except ListenerFailed as e:
            outcome.update(
                applied=False, error=f"{self.path}: {e.key}: {e}",
                file=self.path, key=e.key, reason=str(e),
            )
            return outcome
        before = _summary(self.core.runtime)
        runtime = self.core.apply(config)
        if self._apply is not None:
            self._apply(config)
        for hook in self.onApplied:
            hook(config)
        closed: List[str] = []
        for listeners, ports, wanted in opened:
            listeners.adopt(ports)
            closed += yield listeners.closeExcept(wanted)
        if opened:
            self.core.listeners = tuple(
                d for listeners in (self.listeners, self.tlsListeners) if listeners is not None
                for d in listeners.descriptions()
            )
        draining = self.core.live.drainRemoved(runtime, config.server.drain_timeout)
        openedNames = [port.description for _, ports, _ in opened for port in ports]
        if handover is not None:
            # A new generation of workers serves the new listeners: the
            # old one stops accepting and drains.
            openedNames = list(handover.opened)
            closed = list(handover.commit())
        elif self._workers is not None:
            self._workers(self.path, text)
        after = _summary(runtime)
        outcome.update(
            applied=True,
            checksum=self.core.configInfo.checksum,
            routes=len(config.routes),
            pools=len(config.pools),
            listeners_opened=openedNames,
            listeners_closed=closed,
            targets_added=sorted(after - before),
            targets_removed=sorted(before - after),
            routes_added=[_route(r) for r in config.routes if r not in old.routes],
            routes_removed=[_route(r) for r in old.routes if r not in config.routes],
            draining_connections=draining,
            restart_needed=restart_only(old, config),
        )
        return outcome

    def _listenerSets(self, config: Config) -> List[Tuple[Any, Tuple[str, ...]]]:
        """
        Each L{ListenerSet} this process changes, with the endpoint
        strings the new file wants in it.
        """
        sets: List[Tuple[Any, Tuple[str, ...]]] = []
        if self.listeners is not None:
            sets.append((self.listeners, tuple(config.server.listen)))
        # Without [tls] at start there is no TLS factory: adding it is
        # restart-only (restart_only names "tls"); removing it too.
        if self.tlsListeners is not None and config.tls is not None:
            sets.append((self.tlsListeners, tuple(config.tls.listen)))
        return sets

    @inlineCallbacks
    def _openListeners(self, config: Config):
        """
        Open every listener the file adds, plain and TLS, or none.

        @return: a L{Deferred} of C{(set, opened ports, wanted)} for each
            set.
        @raise ListenerFailed: (in the L{Deferred}) naming the first one
            that failed, once those opened are closed again.
        """
        opened: List = []
        for listeners, wanted in self._listenerSets(config):
            added = [d for d in wanted if d not in listeners.descriptions()]
            try:
                ports = yield listeners.openAll(added)
            except ListenerFailed:
                yield discard([port for _, ports, _ in opened for port in ports])
                raise
            opened.append((listeners, ports, wanted))
        return opened

    def _newGeneration(self, config: Config, text: str) -> Deferred:
        """
        In the main process of workers: when the listeners change, a new
        generation of workers on the new set of sockets.

        @return: a L{Deferred} of L{None} (no change) or of the handover
            (C{opened}, C{commit()}) once the new workers are up.
        @raise ListenerFailed: (in the L{Deferred}) when a socket cannot be
            bound or the new workers do not start.
        """
        if self._workers is None or all_listeners(config) == all_listeners(self.core.config):
            return succeed(None)
        if self._generation is None:
            return fail(ListenerFailed(
                "changing the listeners needs a restart with workers > 1"))
        return self._generation(config, text)

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
