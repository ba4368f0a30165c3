# -*- test-case-name: tests.test_tap -*-
"""
Assemble the running proxy from a validated configuration: listeners, the
proxy resource, backend connections and the demo backends, as one
L{MultiService}.
"""

from __future__ import annotations

import signal
from typing import List, Optional, Sequence

from twisted.application.internet import StreamServerEndpointService
from twisted.application.service import MultiService, Service
from twisted.internet.defer import gatherResults, maybeDeferred
from twisted.internet.error import CannotListenError
from twisted.protocols.haproxy import proxyEndpoint

from lbproxy.admin.mounts import PAGES
from lbproxy.admin.root import admin_site
from lbproxy.config import Config, ConfigError
from lbproxy.demo import demoSite
from lbproxy.app.gctuning import freeze_startup_objects
from lbproxy.app.listening import server_endpoint
from lbproxy.app.parent import stop_reactor
from lbproxy.app.startup import StartupReport, announce_started, open_log
from lbproxy.app.wiring import ProxyCore
from lbproxy.frontend.limits import ClientLimits
from lbproxy.health.checker import probe_client
from lbproxy.app.listeners import ListenerSet
from lbproxy.app.fleet import etcd_lines, start_fleet, worker_reload
from lbproxy.app.generations import GenerationSupervisor, new_generation
from lbproxy.app.reload import Reloader, all_listeners, read_text, reload_line
from lbproxy.app.signals import SignalService, StopSignals
from lbproxy.app.sockets import AdoptedPort, HealthFeedService, ListeningSockets, listen_error
from lbproxy.app.watch import FileWatch
from lbproxy.tls.passthrough import with_passthrough
from lbproxy.relay.tcp import tcp_services
from lbproxy.tls.edge import TLSEdge
from lbproxy.tls.material import TLSMaterial
from lbproxy.app.workers import (
    STOP_GRACE,
    HealthFeed,
    announce_ready,
    overrides_line,
    state_line,
    worker_argv,
)


class ProxyService(MultiService):
    """
    The proxy and everything it runs.

    @ivar resource: the L{ProxyResource} answering every request.
    @ivar connections: the backend L{ConnectionPool}.
    @ivar sighup: the L{SignalService} running the SIGHUP actions.
    @ivar reloader: the L{Reloader} of the configuration file (in a worker,
        applying what the main process sends).
    @ivar proxyListeners: the services of the listeners serving traffic
        (not the admin listener, not demo backends): closed first when
        the service stops.
    """

    def __init__(
        self,
        config: Config,
        reactor,
        tls: Optional[TLSMaterial] = None,
        listenFDs: Optional[Sequence[int]] = None,
        spawn=None,
        daemon: bool = False,
        report: Optional[StartupReport] = None,
        environ=None,
    ) -> None:
        """
        @param tls: The certificates and keys C{twistd lbproxy} read while
            parsing its options; read here if L{None}.
        @param listenFDs: In a worker process: the inherited listening
            sockets, in the order of C{server.listen} then C{tls.listen}.
        @param spawn: C{reactor.spawnProcess}, for the main process of
            C{workers > 1}.
        @param daemon: whether twistd runs as a daemon (see L{open_log}).
        @param report: ends a failed start-up (L{StartupReport}).
        @param environ: the environment (systemd's C{NOTIFY_SOCKET}).
        """
        MultiService.__init__(self)
        self.reactor = reactor
        self.proxyListeners: List[Service] = []
        self.stopSignals = StopSignals(reactor, self._stopReactor, self._stopNow)
        self.role = "worker" if listenFDs is not None else (
            "main" if config.server.workers > 1 else "single"
        )
        server = config.server
        self.config = config
        self.tls = TLSEdge(config, reactor, tls)
        self.report = report or StartupReport()
        self.accessLog = open_log(server, daemon, self.report)
        self.environ = environ or {}
        # Workers probe nothing: the main process does, once, and sends
        # them the states.
        self.core = core = ProxyCore(
            config,
            reactor,
            self.tls.endpoints,
            probe_client(reactor, self.tls.probePolicy()),
            self.accessLog,
            probing=self.role != "worker",
        )
        self.connections = core.connections
        self.registry = core.registry
        self.health = core.health
        self.health.setServiceParent(self)
        if self.role != "worker":
            self._startAdmin(config, reactor)
        if self.role != "worker" and config.tcp:
            # [[tcp]] services run in the single or main process, not workers.
            tcp_services(config, reactor, core, self._endpoint).setServiceParent(self)
        if self.role == "main":
            self._superviseWorkers(config, reactor, spawn or reactor.spawnProcess)
            return
        self.resource = core.resource
        self.site = core.site
        plainSite = self.tls.plainSite(self.site, self.accessLog)
        listeners = [(description, plainSite) for description in server.listen]
        listeners += with_passthrough(config, reactor, core, self.tls.listeners(self.site))
        core.listeners = tuple(description for description, _ in listeners)
        for _, factory in listeners:
            # Followed for reload drains and graceful shutdown: on the site
            # itself, inside a TLS listener's TLSMemoryBIOFactory (itself in
            # a PassthroughFactory with tls.passthrough).
            factory = getattr(factory, "tlsFactory", factory)
            getattr(factory, "wrappedFactory", factory).liveConnections = core.live
        self.plainListeners = ListenerSet(
            self, lambda description: self._proxiedEndpoint(reactor, description), plainSite
        )
        #: The TLS listeners (all serve one factory), when [tls] is set.
        self.tlsListeners: Optional[ListenerSet] = None
        if len(listeners) > len(server.listen):
            self.tlsListeners = ListenerSet(
                self, lambda description: self._proxiedEndpoint(reactor, description),
                listeners[len(server.listen)][1], key="tls.listen",
            )
        if self.role == "worker":
            for fd, (description, factory) in zip(listenFDs, listeners):
                port = AdoptedPort(reactor, fd, description, factory, server.proxy_protocol)
                port.setServiceParent(self)
                self.proxyListeners.append(port)
            # The main process validates a new file and sends it here.
            self.reloader = Reloader(
                core, reactor, config.path, apply=self._applyLimits, announce=False
            )
            # The end of the health pipe: the main process is gone.
            feed = HealthFeed(
                self.registry,
                parentGone=lambda: stop_reactor(reactor),
                onReload=lambda path, text, etcd=None: worker_reload(self.reloader, text, etcd),
                onOverrides=self._applyOverrides,
            )
            HealthFeedService(reactor, feed).setServiceParent(self)
        else:
            for backend in config.demo:
                self._listen(
                    reactor, backend.listen, demoSite(backend.name, backend.text, reactor)
                )
            for index, (description, factory) in enumerate(listeners):
                service = self._listen(reactor, description, factory, server.proxy_protocol)
                self.proxyListeners.append(service)
                if index < len(server.listen):
                    self.plainListeners.register(description, service)
                else:
                    self.tlsListeners.register(description, service)
            self.reloader = Reloader(
                core, reactor, config.path, listeners=self.plainListeners,
                tlsListeners=self.tlsListeners, apply=self._applyLimits,
            )
            self._reloadTriggers(config, reactor)
        # SIGHUP: independent actions, each run even if one before failed.
        self.sighup = SignalService(signal.SIGHUP, reactor)
        if self.role == "single":
            self.sighup.add("configuration reload", lambda: self.reloader.reload("SIGHUP"))
        self.sighup.add("access log reopen", self.reopenAccessLog)
        self.sighup.add("certificate reload", self.reloadCertificates)
        self.sighup.setServiceParent(self)

    def _reloadTriggers(self, config: Config, reactor) -> None:
        """
        C{POST /api/reload} and, with C{[server] watch}, changes of the file
        reload it.
        """
        self.core.reloader = self.reloader
        if config.server.watch:
            FileWatch(config.path, self.reloader, reactor).setServiceParent(self)
        # etcd and discovery feeds (docs/fleet.md).
        start_fleet(self, config, reactor, self.core, self.reloader)

    def _applyLimits(self, config: Config) -> None:
        """
        A reloaded configuration's client limits, for the connections
        accepted from now on.
        """
        limits = ClientLimits.fromServer(config.server)
        for factory in (self.site, getattr(self.tls, "site", None)):
            if factory is not None and hasattr(factory, "limits"):
                factory.limits = limits

    def _sendReload(self, path: str, text: str) -> None:
        """
        The main process of workers: every worker applies the text it
        validated, then gets the health states of its (new) targets.
        """
        self.configText = text
        self.supervisor.broadcast(reload_line(path, text, self.reloader.overlay))
        for line in self.health.snapshot():
            self.supervisor.broadcast(line)

    def _newGeneration(self, config: Config, text: str):
        """
        The main process of workers, for a reload that changes the
        listeners: a new generation of workers on the new sockets
        (L{lbproxy.app.generations}); its commit also sends the (new)
        health states.
        """
        descriptions = all_listeners(config)
        tlsListen = config.tls.listen if config.tls is not None else ()

        # The new workers, started now, get the new text (through their
        # config pipe and, with etcd, the reload line of etcd_lines); the
        # old text again if they do not start.
        previous, self.configText = self.configText, text

        def failed(failure):
            self.configText = previous
            return failure

        def ready(handover):
            commit = handover.commit

            def committed():
                closed = commit()
                self.core.listeners = tuple(descriptions)
                for line in self.health.snapshot():
                    self.supervisor.broadcast(line)
                return closed

            handover.commit = committed
            return handover

        return new_generation(
            self.supervisor, self.sockets, descriptions, tlsListen, text
        ).addCallbacks(ready, failed)

    def _sendOverrides(self, overrides) -> None:
        """
        The main process of workers: the admin API changed something; every
        worker applies the same changes, then gets the health states.
        """
        self.supervisor.broadcast(overrides_line(overrides.dump()))
        for line in self.health.snapshot():
            self.supervisor.broadcast(line)

    def _applyOverrides(self, data: dict) -> None:
        """
        In a worker: the admin API's changes, as the main process has them.
        """
        self.core.overrides.load(data)
        self.core.rebuild()

    def _startAdmin(self, config: Config, reactor) -> None:
        """
        The admin listener (C{[admin]}), if configured: status, admin API
        and the pages of L{lbproxy.admin.mounts.PAGES}.  With workers, the
        main process runs it.
        """
        admin = config.admin
        if admin is None:
            return
        self.adminSite = admin_site(self.core, reactor, PAGES)
        self._listen(reactor, admin.listen, self.adminSite)

    def reopenAccessLog(self) -> None:
        """
        Reopen the access log file (after log rotation moved it away).
        """
        if self.accessLog is not None:
            self.accessLog.reopen()

    def reloadCertificates(self) -> bool:
        """
        Reread the certificates, keys and CA files (the current ones stay
        in use if that fails).

        @return: Whether the new ones are in use.
        """
        reloaded = self.tls.reloader.reload()
        self.core.metrics.reloaded("certificates", "success" if reloaded else "failure")
        return reloaded

    def _superviseWorkers(self, config: Config, reactor, spawn) -> None:
        """
        The main process of C{workers > 1}: the demo backends, the health
        checks (their changes sent to the workers), the listening sockets
        and the workers that serve them.
        """
        for backend in config.demo:
            self._listen(reactor, backend.listen, demoSite(backend.name, backend.text, reactor))
        descriptions = all_listeners(config)
        self.core.listeners = tuple(descriptions)
        self.sockets = ListeningSockets(
            descriptions, config.server.workers, config.server.listen_backlog
        )
        self.sockets.setServiceParent(self)
        health = self.health
        #: The text of the configuration in service, for workers started
        #: later (the file may have changed since, even to an invalid one).
        try:
            self.configText: Optional[str] = read_text(config.path)
        except ConfigError:
            # Not from a file (tests): the workers read it themselves.
            self.configText = None
        self.supervisor = GenerationSupervisor(
            config.server.workers,
            worker_argv(config.path),
            self.sockets.sockets,
            reactor,
            spawn,
            snapshot=lambda: etcd_lines(self.reloader, config.path, self.configText)
            + [overrides_line(self.core.overrides.dump())] + health.snapshot(),
            stopGrace=config.server.drain_timeout + STOP_GRACE,
            configText=(lambda: self.configText) if self.configText is not None else None,
        )
        health.onChange = lambda entry: self.supervisor.broadcast(
            state_line(entry.ident, entry.up)
        )
        self.supervisor.setServiceParent(self)
        # Validated here once; the workers apply the text (_sendReload).
        self.reloader = Reloader(
            self.core, reactor, config.path, workers=self._sendReload,
            generation=self._newGeneration,
        )
        self.core.onApiChange = self._sendOverrides
        self._reloadTriggers(config, reactor)
        self.sighup = SignalService(signal.SIGHUP, reactor)
        self.sighup.add("configuration reload", lambda: self.reloader.reload("SIGHUP"))
        self.sighup.add("forward to workers", lambda: self.supervisor.signalWorkers("HUP"))
        self.sighup.setServiceParent(self)
        # The access log is the workers' to write.
        if self.accessLog is not None:
            self.accessLog.close()
            self.accessLog = None

    def _endpoint(self, reactor, description: str):
        # A real backlog (server.listen_backlog), not Twisted's 50.
        return server_endpoint(reactor, description, self.config.server.listen_backlog)

    def _proxiedEndpoint(self, reactor, description: str, proxyProtocol: Optional[bool] = None):
        """
        L{_endpoint}, behind the PROXY protocol when C{proxyProtocol} (by
        default C{server.proxy_protocol}).
        """
        endpoint = self._endpoint(reactor, description)
        if self.config.server.proxy_protocol if proxyProtocol is None else proxyProtocol:
            # Twisted's PROXY protocol (v1 and v2) support: the connection's
            # peer becomes the client address the header names.
            endpoint = proxyEndpoint(endpoint)
        return endpoint

    def _listen(
        self, reactor, description: str, factory, proxyProtocol: bool = False
    ) -> StreamServerEndpointService:
        endpoint = self._proxiedEndpoint(reactor, description, proxyProtocol)
        service = StreamServerEndpointService(endpoint, factory)
        # Fail start-up when a port cannot be bound, instead of logging
        # the error and running without the listener.  Private to Twisted
        # (twisted.application.strports.service sets it, but takes no
        # wrapped endpoint); were it renamed, a port in use would be logged
        # and start-up would go on without it (test_tap's test_portInUse).
        service._raiseSynchronously = True
        service.description = description
        service.setServiceParent(self)
        return service

    def privilegedStartService(self) -> None:
        try:
            MultiService.privilegedStartService(self)
        except CannotListenError as e:
            self.report.fail(listen_error(e))

    def startService(self) -> None:
        MultiService.startService(self)
        # Everything built so far lives as long as the process: keep the
        # collector from walking it again and again (see gctuning).
        freeze_startup_objects()
        if self.role == "worker":
            announce_ready()
        else:  # Every listener is bound (privilegedStartService).
            announce_started(self.config, self.role, self.environ)
        # After the reactor's own handlers, which it installs as it starts.
        self.reactor.callWhenRunning(self.stopSignals.install)

    def _stopNow(self) -> None:
        """
        A second SIGTERM or SIGINT: cut what is still draining.
        """
        if self.role == "main":
            self.supervisor.signalWorkers("TERM")
        else:
            self.core.live.abortAll()

    def _stopReactor(self) -> None:
        from twisted.internet.error import ReactorNotRunning

        try:
            self.reactor.stop()
        except ReactorNotRunning:
            pass

    def stopService(self):
        """
        Graceful shutdown: stop accepting at once, let the requests in
        flight finish (up to C{server.drain_timeout}) while idle
        connections close, then stop the rest.  SIGTERM or SIGINT again
        cuts what is left at once.
        """
        self.stopSignals.stopping = True
        if self.role == "main":
            # The workers drain (the supervisor gives them drain_timeout).
            return MultiService.stopService(self)
        live = self.core.live
        listeners = self.proxyListeners + [
            service for group in (self.plainListeners, self.tlsListeners) if group is not None
            for service in group.services() if service not in self.proxyListeners
        ]
        closing = [
            maybeDeferred(service.disownServiceParent)
            for service in listeners if service.parent is self
        ]
        d = gatherResults(closing, consumeErrors=True)
        d.addBoth(lambda _: live.shutdown(self.config.server.drain_timeout))
        d.addBoth(lambda _: MultiService.stopService(self))

        def closed(result):
            self.connections.closeAll()
            if self.accessLog is not None:
                self.accessLog.close()
            return result

        return d.addBoth(closed)
