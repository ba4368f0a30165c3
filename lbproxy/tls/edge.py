# -*- test-case-name: tests.test_tls -*-
"""
The TLS edge: HTTPS listeners with a certificate per server name (SNI),
ALPN (HTTP/2 or HTTP/1.1), modern protocol defaults, C{421} for requests
whose host the connection's certificate does not cover, HSTS, and
certificates reloaded without a restart.

  - L{load_tls_material} reads every certificate, key and CA file the
    configuration names (generating the demo's self-signed certificate
    when asked to), checks them, and builds the OpenSSL contexts; a problem
    is a L{ConfigError} naming the key, so start-up stops with one line.
  - L{ServerTLS} is the listeners' connection creator: each new
    connection starts on the default certificate's context, and the SNI
    callback moves it to the context of the certificate that names the
    server name.  L{ServerTLS.reload} swaps in a new set of contexts; open
    connections keep the one they were made with.
  - L{TLSProxySite} is the site behind the listeners: requests carry HSTS,
    and its protocol (L{lbproxy.frontend.http2.NegotiatingChannel}) speaks HTTP/2
    when ALPN chose it.
  - L{CertificateReloader} rereads everything on SIGHUP.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Callable, List, Mapping, Optional, Sequence, Tuple

from OpenSSL import SSL, crypto
from twisted.internet.interfaces import IOpenSSLServerConnectionCreator
from twisted.logger import Logger
from twisted.protocols.tls import TLSMemoryBIOFactory
from zope.interface import implementer

from lbproxy.tls import sni
from lbproxy.tls.certs import (
    CertificateError,
    LoadedCertificate,
    ensure_self_signed,
    load_pair,
    validity_problem,
)
from lbproxy.config import Config, ConfigError, child_key as _child
from lbproxy.frontend.http import ProxyRequest, ProxySite
from lbproxy.tls.redirect import RedirectResource
from lbproxy.frontend.http2 import H2_AVAILABLE, NegotiatingChannel
from lbproxy.config.tls import TLSConfig, UpstreamTLS
from lbproxy.upstream.tls import (
    UpstreamEndpoints,
    UpstreamMaterial,
    load_upstream_material,
    ssl_reason,
)

__all__ = [
    "CIPHERS",
    "CertificateReloader",
    "ServerCertificates",
    "ServerTLS",
    "TLSEdge",
    "TLSMaterial",
    "TLSProxySite",
    "TLSRequest",
    "load_tls_material",
    "server_context",
]

log = Logger()

#: TLS 1.2 cipher suites: ECDHE key exchange (forward secrecy) with AEAD
#: ciphers only, as in Mozilla's "intermediate" profile (less the DHE
#: suites, which need DH parameters).  TLS 1.3 suites are all forward
#: secret and keep OpenSSL's defaults.
CIPHERS = b":".join(
    [
        b"ECDHE-ECDSA-AES128-GCM-SHA256",
        b"ECDHE-RSA-AES128-GCM-SHA256",
        b"ECDHE-ECDSA-AES256-GCM-SHA384",
        b"ECDHE-RSA-AES256-GCM-SHA384",
        b"ECDHE-ECDSA-CHACHA20-POLY1305",
        b"ECDHE-RSA-CHACHA20-POLY1305",
    ]
)

_MIN_VERSIONS = {"1.2": SSL.TLS1_2_VERSION, "1.3": SSL.TLS1_3_VERSION}

#: Session ID context shared by every server context, so that sessions
#: resume whichever certificate SNI picked.
_SESSION_CONTEXT = b"lbproxy"

_OPTIONS = (
    SSL.OP_NO_SSLv2
    | SSL.OP_NO_SSLv3
    | SSL.OP_NO_TLSv1
    | SSL.OP_NO_TLSv1_1
    | SSL.OP_NO_COMPRESSION
    | SSL.OP_CIPHER_SERVER_PREFERENCE
    | SSL.OP_SINGLE_ECDH_USE
    | getattr(SSL, "OP_NO_RENEGOTIATION", 0)
)


def offered_protocols(settings: TLSConfig) -> Tuple[str, ...]:
    """
    The ALPN protocols the listeners offer: C{tls.alpn}, without C{h2}
    when the C{h2} package is missing.
    """
    if H2_AVAILABLE:
        return settings.alpn
    return tuple(p for p in settings.alpn if p != "h2")


def _alpn_selector(protocols: Sequence[bytes]) -> Callable[[SSL.Connection, List[bytes]], bytes]:
    """
    An ALPN callback choosing, in lbproxy's order of preference, the first
    of C{protocols} the client offers; with none in common the handshake
    goes on without ALPN (and the client gets HTTP/1.1).
    """
    ours = list(protocols)

    def select(connection: SSL.Connection, offered: List[bytes]) -> bytes:
        for protocol in ours:
            if protocol in offered:
                return protocol
        return SSL.NO_OVERLAPPING_PROTOCOLS

    return select


def server_context(
    loaded: LoadedCertificate, minVersion: str, alpn: Sequence[bytes]
) -> SSL.Context:
    """
    An OpenSSL server context for one certificate, with lbproxy's
    defaults: TLS 1.2 or 1.3 only, forward-secret AEAD cipher suites in the
    server's order, no compression, no renegotiation, session resumption
    (session cache and tickets) on.

    The context's app data is C{loaded}, so that a connection can tell
    which certificate it uses.

    @raise SSL.Error: If OpenSSL refuses the certificate or key.
    """
    context = SSL.Context(SSL.TLS_SERVER_METHOD)
    context.set_min_proto_version(_MIN_VERSIONS[minVersion])
    context.set_options(_OPTIONS)
    context.set_cipher_list(CIPHERS)
    context.use_certificate(crypto.X509.from_cryptography(loaded.chain[0]))
    for extra in loaded.chain[1:]:
        context.add_extra_chain_cert(crypto.X509.from_cryptography(extra))
    context.use_privatekey(crypto.PKey.from_cryptography_key(loaded.key))
    context.check_privatekey()
    context.set_session_id(_SESSION_CONTEXT)
    context.set_session_cache_mode(SSL.SESS_CACHE_SERVER)
    if alpn:
        context.set_alpn_select_callback(_alpn_selector(alpn))
    context.set_app_data(loaded)
    return context


class ServerCertificates:
    """
    One generation of server certificates: a context per certificate and
    the SNI map choosing among them.

    @ivar loaded: The certificates, in configuration order.
    @ivar contexts: One context per certificate, in the same order.
    @ivar map: Server name to context.
    @ivar default: The first certificate's context; every connection
        starts on it, and its SNI callback switches to another.
    """

    def __init__(
        self,
        loaded: Sequence[LoadedCertificate],
        contexts: Sequence[SSL.Context],
    ) -> None:
        self.loaded = tuple(loaded)
        self.contexts = tuple(contexts)
        self.map: sni.SNIMap[SSL.Context] = sni.SNIMap(
            [(c.names, ctx) for c, ctx in zip(self.loaded, self.contexts)]
        )
        self.default = self.contexts[0]
        self.default.set_tlsext_servername_callback(self._serverName)

    def _serverName(self, connection: SSL.Connection) -> None:
        name = connection.get_servername()
        if not name:
            return
        context = self.map.select(name.decode("ascii", "replace"))
        if context is not self.default:
            connection.set_context(context)


@dataclass(frozen=True)
class TLSMaterial:
    """
    Everything TLS read from files at one moment.

    @ivar server: The listeners' certificates, or L{None} without C{[tls]}
        (or under C{--check}, when a self-signed one is still to be
        generated).
    @ivar upstream: Trust anchors and client certificates for
        C{https://} targets, by pool settings.
    @ivar warnings: Problems that do not stop start-up (an expired
        certificate), one line each.
    @ivar generated: Certificate files generated just now.
    """

    server: Optional[ServerCertificates]
    upstream: Mapping[Optional[UpstreamTLS], UpstreamMaterial]
    warnings: Tuple[str, ...] = ()
    generated: Tuple[str, ...] = ()


def load_tls_material(
    config: Config, now: datetime.datetime, generate: bool = True
) -> TLSMaterial:
    """
    Read and check every certificate and key the configuration names.

    @param now: The current time, to tell expired certificates.
    @param generate: Generate missing C{self_signed} certificates (off for
        C{--check}, which writes nothing).
    @raise ConfigError: If a file is missing, unreadable, not PEM, a key
        does not match its certificate, or OpenSSL refuses one; the error
        names the configuration key.
    """
    warnings: List[str] = []
    generated: List[str] = []
    server = None
    settings = config.tls
    if settings is not None:
        loaded: List[LoadedCertificate] = []
        contexts: List[SSL.Context] = []
        alpn = [p.encode("ascii") for p in offered_protocols(settings)]
        if "h2" in settings.alpn and not H2_AVAILABLE:
            warnings.append(
                f"{config.path}: tls.alpn: the h2 package is not installed; "
                "HTTPS clients get HTTP/1.1 only"
            )
        complete = True
        for index, files in enumerate(settings.certificates):
            key = f"tls.certificates[{index}]"
            try:
                if files.self_signed:
                    if generate:
                        if ensure_self_signed(files.cert, files.key, files.self_signed, now):
                            generated.append(files.cert)
                    elif not _exists(files.cert) and not _exists(files.key):
                        # --check: it will be generated at start-up.
                        complete = False
                        continue
                certificate = load_pair(files.cert, files.key)
            except CertificateError as e:
                raise ConfigError(config.path, _child(key, e.field) if e.field else key,
                                  e.reason) from None
            try:
                contexts.append(server_context(certificate, settings.min_version, alpn))
            except SSL.Error as e:
                raise ConfigError(
                    config.path,
                    _child(key, "cert"),
                    f"OpenSSL refuses {files.cert}: {ssl_reason(e)}",
                ) from None
            loaded.append(certificate)
            problem = validity_problem(certificate, now)
            if problem is not None:
                warnings.append(f"{config.path}: {key}.cert: {problem}")
            if not certificate.names:
                warnings.append(
                    f"{config.path}: {key}.cert: {files.cert} names no host in its "
                    "subjectAltName; "
                    + ("it serves clients without SNI only" if index == 0
                       else "SNI never chooses it")
                )
        if complete:
            server = ServerCertificates(loaded, contexts)
    upstream = load_upstream_material(config)
    return TLSMaterial(server, upstream, tuple(warnings), tuple(generated))


def _exists(path: str) -> bool:
    return os.path.exists(path)


@implementer(IOpenSSLServerConnectionCreator)
class ServerTLS:
    """
    Makes the OpenSSL connection for each accepted TLS connection.

    @ivar certificates: The current L{ServerCertificates}.
    """

    def __init__(self, certificates: ServerCertificates) -> None:
        self.certificates = certificates

    def serverConnectionForTLS(self, tlsProtocol) -> SSL.Connection:
        return SSL.Connection(self.certificates.default, None)

    def reload(self, certificates: ServerCertificates) -> None:
        """
        Use C{certificates} for new connections.
        """
        self.certificates = certificates


# -- requests over TLS ---------------------------------------------------------


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
        self.hsts = hsts.encode("ascii") if hsts else None
        if http2 and H2_AVAILABLE:
            self.protocol = NegotiatingChannel

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


# -- reload ------------------------------------------------------------------------


class CertificateReloader:
    """
    Rereads the certificates, keys and CA files (on SIGHUP) and hands them
    to the listeners and the backend connections.  If anything is wrong,
    the error is logged and the current ones stay in use.
    """

    def __init__(self, config: Config, clock, server: Optional[ServerTLS], upstream) -> None:
        """
        @param clock: An L{IReactorTime}, for the current time.
        @param server: The listeners' creator, or L{None}.
        @param upstream: The L{lbproxy.upstream.tls.UpstreamEndpoints}.
        """
        self._config = config
        self._clock = clock
        self._server = server
        self._upstream = upstream

    def reload(self) -> bool:
        """
        @return: Whether the new files are in use.
        """
        try:
            material = load_tls_material(self._config, now_utc(self._clock), generate=True)
        except ConfigError as e:
            log.error(
                "certificate reload failed, keeping the current certificates: {error}",
                error=str(e),
            )
            return False
        for warning in material.warnings:
            # (Not "warning=": trial reads a log event with that key as a
            # Python warning.)
            log.warn("{problem}", problem=warning)
        if self._server is not None and material.server is not None:
            self._server.reload(material.server)
        self._upstream.reload(material.upstream)
        count = len(material.server.loaded) if material.server is not None else 0
        log.info("reloaded TLS certificates: {count} server certificate(s)", count=count)
        return True


def now_utc(clock) -> datetime.datetime:
    """
    The time of C{clock} (an L{IReactorTime}) as an aware datetime.
    """
    return datetime.datetime.fromtimestamp(clock.seconds(), datetime.timezone.utc)


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
    """

    def _applyProtocolNegotiation(self, connection) -> None:
        pass


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
