# -*- test-case-name: tests.test_tap -*-
"""
Assemble the running proxy from a validated configuration: listeners, the
proxy resource, backend connections and the demo backends, as one
L{MultiService}.
"""

from __future__ import annotations

import sys

from twisted.application.internet import StreamServerEndpointService
from twisted.application.service import MultiService
from twisted.internet.endpoints import serverFromString
from twisted.internet.error import CannotListenError

from lbproxy.accesslog import open_access_log
from lbproxy.config import Config
from lbproxy.demo import demoSite
from lbproxy.healthcheck import HealthChecker, probe_client
from lbproxy.http import ProxySite
from lbproxy.proxy import ProxyResource
from lbproxy.runtime import Runtime
from lbproxy.upstream import ConnectionPool


class ProxyService(MultiService):
    """
    The proxy and everything it runs.

    @ivar resource: the L{ProxyResource} answering every request.
    @ivar connections: the backend L{ConnectionPool}.
    """

    def __init__(self, config: Config, reactor) -> None:
        MultiService.__init__(self)
        server = config.server
        self.config = config
        self.accessLog = open_access_log(server.access_log)
        self.connections = ConnectionPool(
            reactor,
            connectTimeout=server.connect_timeout,
            maxIdle=server.max_idle_per_target,
            idleTimeout=server.idle_timeout,
        )
        runtime = Runtime(config)
        self.health = HealthChecker(
            runtime.pools, runtime.health, reactor, probe_client(reactor)
        )
        self.health.setServiceParent(self)
        self.resource = ProxyResource(
            runtime, self.connections, reactor, self.accessLog, health=self.health
        )
        self.site = ProxySite(self.resource, reactor=reactor)
        for backend in config.demo:
            self._listen(reactor, backend.listen, demoSite(backend.name, backend.text, reactor))
        for description in server.listen:
            self._listen(reactor, description, self.site)

    def _listen(self, reactor, description: str, factory) -> None:
        service = StreamServerEndpointService(serverFromString(reactor, description), factory)
        # Fail start-up when a port cannot be bound, instead of logging
        # the error and running without the listener.
        service._raiseSynchronously = True
        service.description = description
        service.setServiceParent(self)

    def privilegedStartService(self) -> None:
        try:
            MultiService.privilegedStartService(self)
        except CannotListenError as e:
            sys.stderr.write("lbproxy: %s\n" % (listen_error(e),))
            raise SystemExit(1) from None

    def stopService(self):
        d = MultiService.stopService(self)

        def closed(result):
            self.connections.closeAll()
            if self.accessLog is not None:
                self.accessLog.close()
            return result

        return d.addBoth(closed)


def listen_error(error: CannotListenError) -> str:
    """
    One line for an operator: which address could not be bound, and why.
    """
    reason = getattr(error.socketError, "strerror", None) or str(error.socketError)
    return "cannot listen on %s:%s: %s" % (error.interface or "*", error.port, reason)
