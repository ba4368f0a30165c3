# -*- test-case-name: tests.test_tls -*-
"""
The TLS edge: HTTPS listeners with a certificate per server name (SNI),
ALPN (HTTP/2 or HTTP/1.1), modern protocol defaults, C{421} for requests
whose host the connection's certificate does not cover, HSTS, and
certificates reloaded without a restart.

  - L{TLSEdge} gathers the TLS parts of a running proxy: the files read
    (L{lbproxy.tls.material}), the listeners' connection creator
    (L{lbproxy.tls.contexts}), the backend endpoint factory
    (L{lbproxy.upstream.tls}) and the SIGHUP reload.
  - L{TLSProxySite} is the site behind the listeners: requests carry HSTS,
    and its protocol (L{lbproxy.frontend.http2.NegotiatingChannel}) speaks
    HTTP/2 when ALPN chose it.
"""

from __future__ import annotations

from typing import List, Optional, Tuple

from twisted.logger import Logger
from twisted.protocols.tls import TLSMemoryBIOFactory

from lbproxy.config import Config
from lbproxy.frontend.http import ProxyRequest, ProxySite
from lbproxy.frontend.http2 import H2_AVAILABLE
from lbproxy.frontend.penalty import RepeatOffenders
from lbproxy.tls.contexts import ServerTLS, offered_protocols
from lbproxy.tls.handshakes import TLSChannel, TLSNegotiatingChannel
from lbproxy.tls.material import CertificateReloader, TLSMaterial, load_tls_material, now_utc
from lbproxy.tls.redirect import RedirectResource
from lbproxy.upstream.tls import UpstreamEndpoints

__all__ = [
    "TLSEdge",
    "TLSProxySite",
    "TLSRequest",
]

log = Logger()


class TLSRequest(ProxyRequest):
    """
    A request on a TLS listener: its response carries the site's HSTS
    header, replacing any the backend sent.
    """

    def write(self, data: bytes) -> None:
        if not self.startedWriting:
            hsts = getattr(self.site, "hsts", None)
            if hsts is not None:
                self.responseHeaders.setRawHeaders(b"Strict-Transport-Security", [hsts])
        ProxyRequest.write(self, data)


class TLSProxySite(ProxySite):
    """
    The site behind the TLS listeners: the same resource as the plain
    listeners, HSTS on every response, and HTTP/2 when ALPN picks it.

    @ivar hsts: The C{Strict-Transport-Security} value, or L{None}.
    """

    requestFactory = TLSRequest
    _countedBy: Optional[ProxySite] = None
    _openConnections = 0

    def __init__(
        self,
        resource,
        hsts: Optional[str] = None,
        http2: bool = True,
        countedBy: Optional[ProxySite] = None,
        **kwargs,
    ) -> None:
        """
        @param hsts: The C{Strict-Transport-Security} value, or L{None}.
        @param http2: Offer HTTP/2 (when the C{h2} package is installed).
        @param countedBy: The plain listeners' site, whose count of open
            client connections (against C{server.max_connections}) this
            site's connections join.
        @param kwargs: For L{ProxySite} (C{reactor}, C{limits}).
        """
        ProxySite.__init__(self, resource, **kwargs)
        self._countedBy = countedBy
        #: Addresses refused for a while after an HTTP/2 flood.
        self.offenders = RepeatOffenders(self.reactor, self.limits.h2.penalty)
        self.hsts = hsts.encode("ascii") if hsts else None
        # (Channels that count handshakes for the site's onHandshake.)
        self.protocol = TLSNegotiatingChannel if http2 and H2_AVAILABLE else TLSChannel

    @property
    def openConnections(self) -> int:
        if self._countedBy is not None:
            return self._countedBy.openConnections
        return self._openConnections

    @openConnections.setter
    def openConnections(self, value: int) -> None:
        if self._countedBy is not None:
            self._countedBy.openConnections = value
        else:
            self._openConnections = value


# -- assembly ----------------------------------------------------------------------


class _ServerTLSFactory(TLSMemoryBIOFactory):
    """
    A server L{TLSMemoryBIOFactory} that leaves ALPN to lbproxy's contexts
    (L{server_context}). Twisted 25.5 (the newest for Python 3.9, so for
    PyPy) would otherwise replace their ALPN callback, on every connection,
    with one built from the site's C{acceptableProtocols()}: C{h2} whenever
    the C{h2} package is installed, whatever C{tls.alpn} says, and a failed
    handshake when the client offers nothing in common. Twisted 26.10 no
    longer has this hook.

    C{_applyProtocolNegotiation} is private to Twisted and overridden
    here for want of a public way to keep a context's own ALPN callback;
    if Twisted renamed it while still calling it, C{tls.alpn} would be
    ignored (tests.test_tls_proxy's ALPN tests).
    """

    def _applyProtocolNegotiation(self, connection) -> None:
        pass

    def buildProtocol(self, addr):
        # A repeat offender (lbproxy.frontend.penalty) is refused before a
        # TLS connection object is made for it: returning None closes the
        # accepted socket.  (Behind a PROXY header, its address is only
        # known later: NegotiatingChannel checks again.)
        offenders = getattr(self.wrappedFactory, "offenders", None)
        if offenders is not None and offenders.refuses(str(getattr(addr, "host", addr))):
            return None
        return TLSMemoryBIOFactory.buildProtocol(self, addr)


class TLSEdge:
    """
    The TLS parts of a running proxy, for L{lbproxy.app.service.ProxyService}
    to plug in: the HTTPS listeners' factories, the plain listeners'
    redirect, the backend endpoint factory, and the SIGHUP reload.

    @ivar material: The files read at start-up.
    @ivar endpoints: The backend connection pool's endpoint factory.
    @ivar server: The listeners' connection creator, or L{None} without
        C{[tls]}.
    @ivar reloader: Rereads everything (on SIGHUP).
    @ivar site: The HTTPS listeners' L{TLSProxySite}, once L{listeners}
        made it.
    """

    site: Optional[TLSProxySite] = None

    def __init__(self, config: Config, reactor, material: Optional[TLSMaterial] = None) -> None:
        """
        @param material: What C{twistd lbproxy} loaded while parsing its
            options; read now if L{None}.
        @raise ConfigError: If C{material} is L{None} and a file is bad.
        """
        if material is None or (config.tls is not None and material.server is None):
            material = load_tls_material(config, now_utc(reactor), generate=True)
            for warning in material.warnings:
                log.warn("{warning}", warning=warning)
            for path in material.generated:
                log.info("generated a self-signed certificate: {path}", path=path)
        self._config = config
        self._reactor = reactor
        self.material = material
        self.endpoints = UpstreamEndpoints(material.upstream)
        self.server = ServerTLS(material.server) if material.server is not None else None
        self.reloader = CertificateReloader(config, reactor, self.server, self.endpoints)

    def probePolicy(self):
        """
        The HTTPS policy for health probes: the pools' TLS settings.
        """
        return self.endpoints.policy(
            [target for pool in self._config.pools.values() for target in pool.targets]
        )

    def plainSite(self, site: ProxySite, accessLog=None) -> ProxySite:
        """
        The site for the plain listeners: C{site}, or with
        C{redirect_http} one that redirects everything to HTTPS.
        """
        settings = self._config.tls
        if settings is None or not settings.redirect_http:
            return site
        assert settings.redirect_port is not None
        return ProxySite(
            RedirectResource(settings.redirect_port, self._reactor, accessLog),
            **_siteArguments(site),
        )

    def listeners(self, site: ProxySite) -> List[Tuple[str, object]]:
        """
        C{(endpoint string, factory)} for each HTTPS listener, serving
        C{site}'s resource with C{site}'s settings.
        """
        settings = self._config.tls
        if settings is None or self.server is None:
            return []
        tlsSite = TLSProxySite(
            site.resource,
            hsts=settings.hsts,
            http2="h2" in offered_protocols(settings),
            countedBy=site if hasattr(site, "openConnections") else None,
            **_siteArguments(site),
        )
        self.site = tlsSite
        # Counted and logged like the plain listeners' (observe/).
        tlsSite.onHandshake = getattr(site, "onHandshake", None)
        tlsSite.onReject = getattr(site, "onReject", None)
        try:
            factory = _ServerTLSFactory(self.server, False, tlsSite, clock=self._reactor)
        except TypeError:  # pragma: no cover - Twisted before the clock argument
            factory = _ServerTLSFactory(self.server, False, tlsSite)
        return [(description, factory) for description in settings.listen]


def _siteArguments(site: ProxySite) -> dict:
    arguments = {"reactor": site.reactor}
    limits = getattr(site, "limits", None)
    if limits is not None:
        arguments["limits"] = limits
    return arguments
