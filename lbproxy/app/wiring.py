# -*- test-case-name: tests.test_tap -*-
"""
The one place the request-serving parts of lbproxy are put together, used
by L{lbproxy.app.service.ProxyService} and by the in-memory
L{lbproxy.testing.ProxyHarness} alike, so the tests run what runs.
"""

from __future__ import annotations

import hashlib
from typing import Optional, Tuple

from twisted.logger import Logger

from lbproxy.app.drain import LiveConnections
from lbproxy.config import Config
from lbproxy.frontend.http import ProxySite
from lbproxy.frontend.limits import ClientLimits
from lbproxy.health.checker import HealthChecker
from lbproxy.observe.counters import Metrics
from lbproxy.observe.rejections import RejectionRecorder
from lbproxy.pipeline.resource import ProxyResource
from lbproxy.runtime.overrides import ApiOverrides
from lbproxy.runtime.services import Services
from lbproxy.runtime.snapshot import Runtime, build_runtime
from lbproxy.runtime.targets import TargetRegistry
from lbproxy.upstream.connections import ConnectionPool

__all__ = ["ConfigInfo", "ProxyCore", "config_checksum"]

log = Logger()


def config_checksum(config: Config) -> str:
    """
    A digest of a validated configuration: the same for the same settings
    in every process (reprs of frozen dataclasses do not vary; the admin
    token is left out of them).
    """
    return hashlib.sha256(repr(config).encode("utf-8")).hexdigest()[:16]


class ConfigInfo:
    """
    What the status says about the configuration in service.

    @ivar checksum: its L{config_checksum}.
    @ivar loadedAt: when it was put in service (the reactor's clock).
    @ivar reloads: reloads applied since start-up.
    @ivar lastOutcome: the last reload's outcome (C{{"at", "applied",
        "reason", "source"}}), or L{None}.
    """

    def __init__(self, checksum: str, loadedAt: float) -> None:
        self.checksum = checksum
        self.loadedAt = loadedAt
        self.reloads = 0
        self.lastOutcome: Optional[dict] = None


class ProxyCore:
    """
    Backend connections, the target registry and its health checker, the
    runtime built from a configuration, and the site that serves it.

    Parts that outlive a runtime (connections, registry, health checker,
    access log) are made once; L{build} makes a runtime on them and
    L{swap} puts it in service with one assignment.  Requests in flight
    finish on the runtime they started with.

    @ivar connections: the backend L{ConnectionPool}.
    @ivar registry: the L{TargetRegistry}.
    @ivar health: the L{HealthChecker} (a service for the caller to start).
    @ivar services: the L{Services} every runtime's chains are built with.
    @ivar metrics: the process's L{Metrics} (kept across reloads).
    @ivar resource: the L{ProxyResource} serving the current runtime.
    @ivar site: the L{ProxySite} for the listeners.
    @ivar config: the configuration from the file (without the admin
        API's changes) in service.
    @ivar configInfo: its L{ConfigInfo}.
    @ivar overrides: the admin API's changes (L{ApiOverrides}), laid over
        every configuration this core builds.
    @ivar listeners: the endpoint strings listening now (kept by the
        service).
    @ivar reloader: C{reloader(source) -> Deferred} firing with the
        outcome of a reload of the file, set by the service (L{None} until
        then).
    """

    def __init__(
        self,
        config: Config,
        reactor,
        endpointFactory,
        probeClient,
        accessLog=None,
        probing: bool = True,
    ) -> None:
        """
        @param config: the validated configuration to serve first.
        @param reactor: the reactor (or a L{MemoryReactorClock}): connections,
            timeouts and timings.
        @param endpointFactory: makes backend endpoints, C{(reactor, target,
            timeout) -> IStreamClientEndpoint}.
        @param probeClient: the treq-like client active health probes use.
        @param accessLog: the L{lbproxy.observe.accesslog.AccessLog}, or
            L{None}.
        @param probing: whether to probe targets (a worker process does not:
            its main process probes and sends it the states).
        """
        server = config.server
        self._clock = reactor
        self.config = config
        self.configInfo = ConfigInfo(config_checksum(config), reactor.seconds())
        self.overrides = ApiOverrides()
        self.listeners: Tuple[str, ...] = ()
        self.reloader = None
        #: Called with the L{ApiOverrides} after each change through the
        #: admin API (L{changed}).
        self.onApiChange = None
        self.connections = ConnectionPool(
            reactor,
            connectTimeout=server.connect_timeout,
            maxIdle=server.max_idle_per_target,
            idleTimeout=server.idle_timeout,
            endpointFactory=endpointFactory,
        )
        self.registry = TargetRegistry(probing=probing)
        self.health = HealthChecker(self.registry, reactor, probeClient)
        self.metrics = Metrics()
        # Requests are counted (a metrics stage in every chain) only when
        # something can read the counts: /metrics and the status page are
        # on the admin listener.  Rejections, handshakes and reloads are
        # counted anyway (rare events).
        self.services = Services(
            reactor, self.connections, self.health, accessLog,
            self.metrics if config.admin is not None else None,
        )
        self.resource = ProxyResource(self.build(config), reactor)
        self.site = ProxySite(
            self.resource, limits=ClientLimits.fromServer(server), reactor=reactor
        )
        self.site.onReject = RejectionRecorder(self.metrics, accessLog, reactor)
        self.site.onHandshake = self.metrics.handshake
        #: The client connections open on the listeners (reload drains,
        #: graceful shutdown).
        self.live = LiveConnections(reactor)
        self.site.liveConnections = self.live

    @property
    def runtime(self) -> Runtime:
        """
        The runtime new requests start on.
        """
        return self.resource.runtime

    def build(self, config: Config) -> Runtime:
        """
        A runtime for C{config} on this registry (see L{build_runtime}):
        unchanged targets keep their state, dropped ones are retired.
        """
        return build_runtime(config, self.registry, self.services)

    def swap(self, runtime: Runtime) -> None:
        """
        Serve new requests from C{runtime}.
        """
        self.resource.runtime = runtime

    def apply(self, config: Config) -> Runtime:
        """
        Put C{config} (a whole, validated configuration from the file) in
        service, with the admin API's changes laid over it: one new
        runtime, swapped in.  Targets it keeps keep their state.
        """
        runtime = self.build(self.overrides.apply(config))
        self.swap(runtime)
        self.config = config
        self.configInfo.checksum = config_checksum(config)
        self.configInfo.loadedAt = self._clock.seconds()
        self.markDrained(runtime)
        return runtime

    def rebuild(self) -> Runtime:
        """
        The admin API changed something: the same configuration, with the
        changes laid over it again.
        """
        runtime = self.build(self.overrides.apply(self.config))
        self.swap(runtime)
        self.markDrained(runtime)
        return runtime

    def markDrained(self, runtime: Runtime) -> None:
        """
        Targets drained through the admin API stay drained in C{runtime}
        (their entry may be new, e.g. after a change of health settings);
        those no longer drained there take requests again.
        """
        now = self._clock.seconds()
        # An entry may be shared by pools: decide for all before applying.
        drained = {
            member.state
            for name, pool in runtime.pools.items()
            for member in pool.members
            if member.target.address in self.overrides.drained(name)
        }
        for pool in runtime.pools.values():
            for member in pool.members:
                state = member.state
                if state.health is None:
                    continue
                if state in drained:
                    state.health.drain(now)
                else:
                    state.health.undrain(now)
                state.up = state.health.available

    def changed(self) -> None:
        """
        The admin API changed something (already in service here): tell
        whoever listens (the main process of workers passes it on).
        """
        if self.onApiChange is not None:
            self.onApiChange(self.overrides)
