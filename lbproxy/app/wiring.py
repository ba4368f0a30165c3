# -*- test-case-name: tests.test_tap -*-
"""
The one place the request-serving parts of lbproxy are put together, used
by L{lbproxy.app.service.ProxyService} and by the in-memory
L{lbproxy.testing.ProxyHarness} alike, so the tests run what runs.
"""

from __future__ import annotations

from lbproxy.config import Config
from lbproxy.frontend.http import ProxySite
from lbproxy.frontend.limits import ClientLimits
from lbproxy.health.checker import HealthChecker
from lbproxy.observe.counters import Metrics
from lbproxy.observe.rejections import RejectionRecorder
from lbproxy.pipeline.resource import ProxyResource
from lbproxy.runtime.services import Services
from lbproxy.runtime.snapshot import Runtime, build_runtime
from lbproxy.runtime.targets import TargetRegistry
from lbproxy.upstream.connections import ConnectionPool

__all__ = ["ProxyCore"]


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
        self.services = Services(
            reactor, self.connections, self.health, accessLog, self.metrics
        )
        self.resource = ProxyResource(self.build(config), reactor)
        self.site = ProxySite(
            self.resource, limits=ClientLimits.fromServer(server), reactor=reactor
        )
        self.site.onReject = RejectionRecorder(self.metrics, accessLog, reactor)

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
