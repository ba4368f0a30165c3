# -*- test-case-name: tests.test_tap -*-
"""
Assemble the running proxy from a validated configuration: listeners, the
proxy resource, backend connections and the demo backends, as one
L{MultiService}.
"""

from __future__ import annotations

import sys
from typing import Optional

from twisted.application.internet import StreamServerEndpointService
from twisted.application.service import MultiService
from twisted.internet.endpoints import serverFromString
from twisted.internet.error import CannotListenError
from twisted.protocols.haproxy import proxyEndpoint

from lbproxy.accesslog import open_access_log
from lbproxy.config import Config
from lbproxy.demo import demoSite
from lbproxy.healthcheck import HealthChecker, probe_client
from lbproxy.http import ProxySite
from lbproxy.hygiene import ClientLimits
from lbproxy.proxy import ProxyResource
from lbproxy.runtime import Runtime
from lbproxy.tls import TLSEdge, TLSMaterial
from lbproxy.upstream import ConnectionPool


class ProxyService(MultiService):
    """
    The proxy and everything it runs.

    @ivar resource: the L{ProxyResource} answering every request.
    @ivar connections: the backend L{ConnectionPool}.
    """

    def __init__(self, config: Config, reactor, tls: Optional[TLSMaterial] = None) -> None:
        """
        @param tls: The certificates and keys C{twistd lbproxy} read while
            parsing its options; read here if L{None}.
        """
        MultiService.__init__(self)
        server = config.server
        self.config = config
        self.tls = TLSEdge(config, reactor, tls)
        self.accessLog = open_access_log(server.access_log)
        self.connections = ConnectionPool(
            reactor,
            connectTimeout=server.connect_timeout,
            maxIdle=server.max_idle_per_target,
            idleTimeout=server.idle_timeout,
            endpointFactory=self.tls.endpoints,
        )
        runtime = Runtime(config)
        self.health = HealthChecker(
            runtime.pools, runtime.health, reactor, probe_client(reactor, self.tls.probePolicy())
        )
        self.health.setServiceParent(self)
        self.resource = ProxyResource(
            runtime, self.connections, reactor, self.accessLog, health=self.health
        )
        self.site = ProxySite(
            self.resource, limits=ClientLimits.fromServer(server), reactor=reactor
        )
        for backend in config.demo:
            self._listen(reactor, backend.listen, demoSite(backend.name, backend.text, reactor))
        plainSite = self.tls.plainSite(self.site, self.accessLog)
        for description in server.listen:
            self._listen(reactor, description, plainSite, server.proxy_protocol)
        for description, factory in self.tls.listeners(self.site):
            self._listen(reactor, description, factory, server.proxy_protocol)
        for service in self.tls.services():
            service.setServiceParent(self)

    def _listen(self, reactor, description: str, factory, proxyProtocol: bool = False) -> None:
        endpoint = serverFromString(reactor, description)
        if proxyProtocol:
            # Twisted's PROXY protocol (v1 and v2) support: the connection's
            # peer becomes the client address the header names.
            endpoint = proxyEndpoint(endpoint)
        service = StreamServerEndpointService(endpoint, factory)
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
