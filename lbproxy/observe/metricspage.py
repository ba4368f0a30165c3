# -*- test-case-name: tests.test_metrics -*-
"""
C{GET /metrics}: the Prometheus exposition of a collector registry, for
the admin listener.  The collectors run when the page is asked for.
"""

from __future__ import annotations

from prometheus_client.exposition import choose_encoder
from twisted.web.resource import Resource

from lbproxy.observe.cachemetrics import CacheCollector
from lbproxy.observe.collectors import ProxyCollector, metrics_registry
from lbproxy.observe.readaccess import refuse_unless_readable

__all__ = ["MetricsResource", "metrics_page", "metrics_resource"]


class MetricsResource(Resource):
    """
    The text format (or OpenMetrics when the scraper asks for it).
    """

    isLeaf = True

    def __init__(self, registry, core=None) -> None:
        """
        @param registry: a C{prometheus_client} C{CollectorRegistry}.
        @param core: the L{lbproxy.app.wiring.ProxyCore} whose configuration
            says whether reads need the admin token (L{None}: they do not).
        """
        Resource.__init__(self)
        self._registry = registry
        self._core = core

    def render_GET(self, request) -> bytes:
        refused = refuse_unless_readable(request, self._core)
        if refused is not None:
            return refused
        accept = request.getHeader(b"accept")
        encoder, contentType = choose_encoder(accept.decode("latin-1") if accept else None)
        request.setHeader(b"Content-Type", contentType.encode("ascii"))
        request.setHeader(b"Cache-Control", b"no-store")
        return encoder(self._registry)

    render_HEAD = render_GET


def metrics_resource(core, clock, connections=lambda: ()) -> MetricsResource:
    """
    The C{/metrics} resource of a proxy.

    @param core: the L{lbproxy.app.wiring.ProxyCore} (its metrics, target
        registry and current runtime).
    @param connections: the open client connections per listener
        (C{(listener, protocol, count)}).
    """
    collector = ProxyCollector(
        core.metrics, core.registry, lambda: core.runtime, clock, connections
    )
    registry = metrics_registry(collector, core.metrics)
    registry.register(CacheCollector(core.services))
    return MetricsResource(registry, core)


def metrics_page(core, reactor) -> MetricsResource:
    """
    Mount factory of C{/metrics} (L{lbproxy.admin.mounts.PAGES}).  Client
    connections are counted per process, every listener together (the
    HTTPS sites count into the plain site's count).
    """
    site = core.site
    return metrics_resource(
        core, reactor, lambda: [("all", "http", site.openConnections)]
    )
