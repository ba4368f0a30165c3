# -*- test-case-name: tests.test_tls_upstream -*-
"""
TLS to C{https://} targets.

Every connection to an C{https://} target is TLS, its certificate
verified by Twisted's client TLS (which checks the name with
C{service_identity}) against the system's trust store or the pool's
C{ca}, with the target's host (or the pool's C{server_name}) sent as SNI
and checked in the certificate.  C{verify = false} turns verification off
for a pool and is never a default.  A pool's C{client_cert} and
C{client_key} are presented to backends that ask for a client
certificate (mutual TLS).

L{UpstreamEndpoints} is the L{lbproxy.upstream.connections.ConnectionPool}'s endpoint
factory: plain endpoints for C{http} targets, the same endpoints wrapped
in TLS for C{https} ones.  L{UpstreamEndpoints.policy} gives the health
checker's HTTP client the same TLS settings.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

from cryptography import x509
from OpenSSL import SSL, crypto
from twisted.internet.interfaces import IOpenSSLClientConnectionCreator, IStreamClientEndpoint
from twisted.internet.ssl import (
    Certificate,
    KeyPair,
    PrivateCertificate,
    TLSVersion,
    optionsForClientTLS,
    platformTrust,
    trustRootFromCertificates,
)
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.web.iweb import IPolicyForHTTPS
from zope.interface import implementer

from lbproxy.tls.certs import (
    CertificateError,
    LoadedCertificate,
    load_certificate_chain,
    load_pair,
    read_file,
)
from lbproxy.config import Config, ConfigError, Target, child_key
from lbproxy.config.tls import UpstreamTLS
from lbproxy.tls.failures import ssl_reason
from lbproxy.upstream.connections import default_endpoint

__all__ = [
    "UpstreamEndpoints",
    "UpstreamMaterial",
    "client_creator",
    "load_upstream_material",
]

#: What lbproxy speaks to backends, offered through ALPN.
_ALPN = [b"http/1.1"]


@dataclass(frozen=True)
class UpstreamMaterial:
    """
    The files behind one L{UpstreamTLS}, read.

    @ivar trust: The certificate authorities of C{ca}, or L{None} for the
        system's trust store.
    @ivar client: The client certificate and key, or L{None}.
    """

    trust: Optional[Tuple[x509.Certificate, ...]] = None
    client: Optional[LoadedCertificate] = None


def load_upstream_material(config: Config) -> Dict[Optional[UpstreamTLS], UpstreamMaterial]:
    """
    Read the C{ca}, C{client_cert} and C{client_key} files of every pool
    with C{https://} targets.

    @return: The material for each distinct L{UpstreamTLS} in use (and for
        L{None}, the defaults).
    @raise ConfigError: Naming the pool's key, if a file is missing,
        unreadable, not PEM, or the client key does not match.
    """
    material: Dict[Optional[UpstreamTLS], UpstreamMaterial] = {None: UpstreamMaterial()}
    for name, pool in config.pools.items():
        key = child_key("pools", name)
        for target in pool.targets:
            settings = target.tls
            if target.scheme != "https" or settings in material:
                continue
            assert settings is not None
            trust = None
            client = None
            try:
                if settings.ca is not None:
                    trust = load_certificate_chain(read_file(settings.ca, "ca"), settings.ca, "ca")
                if settings.client_cert is not None and settings.client_key is not None:
                    try:
                        client = load_pair(settings.client_cert, settings.client_key)
                    except CertificateError as e:
                        field = "client_cert" if e.field == "cert" else "client_key"
                        raise CertificateError(field, e.reason) from None
                    _check_client_certificate(client)
            except CertificateError as e:
                raise ConfigError(config.path, child_key(key, e.field), e.reason) from None
            material[settings] = UpstreamMaterial(trust, client)
    return material


def _check_client_certificate(client: LoadedCertificate) -> None:
    """
    Let OpenSSL load the client certificate once, so that what it refuses
    (a key too small for its security level, say) stops start-up rather
    than every connection.
    """
    context = SSL.Context(SSL.TLS_CLIENT_METHOD)
    try:
        _use_certificate(context, client)
    except SSL.Error as e:
        raise CertificateError(
            "client_cert", f"OpenSSL refuses {client.certPath}: {ssl_reason(e)}"
        ) from None


def _use_certificate(context: SSL.Context, loaded: LoadedCertificate) -> None:
    context.use_certificate(crypto.X509.from_cryptography(loaded.chain[0]))
    for extra in loaded.chain[1:]:
        context.add_extra_chain_cert(crypto.X509.from_cryptography(extra))
    context.use_privatekey(crypto.PKey.from_cryptography_key(loaded.key))
    context.check_privatekey()


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


@implementer(IOpenSSLClientConnectionCreator)
class _UnverifiedCreator:
    """
    TLS without verifying the server (C{verify = false}), still sending
    SNI and still offering a client certificate.
    """

    def __init__(self, context: SSL.Context, serverName: Optional[str]) -> None:
        self._context = context
        self._serverName = serverName.encode("idna") if serverName else None

    def clientConnectionForTLS(self, tlsProtocol) -> SSL.Connection:
        connection = SSL.Connection(self._context, None)
        connection.set_app_data(tlsProtocol)
        if self._serverName is not None:
            connection.set_tlsext_host_name(self._serverName)
        return connection


def client_creator(
    name: str, settings: Optional[UpstreamTLS], material: UpstreamMaterial
) -> IOpenSSLClientConnectionCreator:
    """
    The TLS client settings for connections to one target.

    @param name: The host name (or IP address) expected in the target's
        certificate, also sent as SNI when it is a name.
    """
    settings = settings or UpstreamTLS()
    if not settings.verify:
        context = SSL.Context(SSL.TLS_CLIENT_METHOD)
        context.set_min_proto_version(SSL.TLS1_2_VERSION)
        context.set_verify(SSL.VERIFY_NONE, lambda *args: True)
        context.set_alpn_protos(_ALPN)
        if material.client is not None:
            _use_certificate(context, material.client)
        return _UnverifiedCreator(context, None if _is_ip(name) else name)

    if material.trust is None:
        trustRoot: Any = platformTrust()
    else:
        trustRoot = trustRootFromCertificates(
            [Certificate(crypto.X509.from_cryptography(c)) for c in material.trust]
        )
    extra: Dict[str, Any] = {"raiseMinimumTo": TLSVersion.TLSv1_2}
    clientCertificate = None
    if material.client is not None:
        chain = material.client.chain
        clientCertificate = PrivateCertificate.fromCertificateAndKeyPair(
            Certificate(crypto.X509.from_cryptography(chain[0])),
            KeyPair(crypto.PKey.from_cryptography_key(material.client.key)),
        )
        if len(chain) > 1:
            extra["extraCertChain"] = [
                Certificate(crypto.X509.from_cryptography(c)) for c in chain[1:]
            ]
    return optionsForClientTLS(
        name,
        trustRoot=trustRoot,
        clientCertificate=clientCertificate,
        acceptableProtocols=_ALPN,
        extraCertificateOptions=extra,
    )


class UpstreamEndpoints:
    """
    Client endpoints for targets: TLS-wrapped for C{https://} ones.

    Connection creators are made once per target name and settings and
    reused; L{reload} replaces the material they are made from (new
    connections use it, open ones are unaffected).
    """

    def __init__(
        self,
        material: Mapping[Optional[UpstreamTLS], UpstreamMaterial],
        inner: Callable[..., Any] = default_endpoint,
    ) -> None:
        """
        @param material: From L{load_upstream_material}.
        @param inner: Makes the plain endpoint for a target, with the
            signature of L{lbproxy.upstream.connections.default_endpoint}.
        """
        self._material = dict(material)
        self._inner = inner
        self._creators: Dict[Tuple[Optional[UpstreamTLS], str], Any] = {}

    def reload(self, material: Mapping[Optional[UpstreamTLS], UpstreamMaterial]) -> None:
        self._material = dict(material)
        self._creators = {}

    def __call__(self, reactor, target: Target, timeout: float):
        endpoint = self._inner(reactor, target, timeout)
        if target.scheme != "https":
            return endpoint
        return TLSClientEndpoint(self.creatorFor(target), endpoint, reactor)

    def creatorFor(self, target: Target) -> IOpenSSLClientConnectionCreator:
        """
        The TLS client settings for C{target}.
        """
        settings = target.tls
        name = (settings.server_name if settings is not None else None) or target.host
        key = (settings, name)
        creator = self._creators.get(key)
        if creator is None:
            material = self._material.get(settings)
            if material is None:
                # A target that was not in the configuration loaded (only
                # in tests): the defaults.
                material = UpstreamMaterial()
            creator = self._creators[key] = client_creator(name, settings, material)
        return creator

    def policy(self, targets) -> IPolicyForHTTPS:
        """
        An HTTPS policy for a L{twisted.web.client.Agent} (the health
        checker's) that treats C{targets} as the proxy does; other hosts
        get the defaults.

        @param targets: L{Target}s; the first one with a given host and
            port decides for it.
        """
        return _TargetPolicy(self, targets)


@implementer(IStreamClientEndpoint)
class TLSClientEndpoint:
    """
    TLS over another client endpoint, starting as soon as it connects, its
    timers (TLS write aggregation) on the given reactor.  (Twisted's
    C{wrapClientTLS} takes no reactor before Twisted 24 and then uses the
    global one.)
    """

    def __init__(self, creator: IOpenSSLClientConnectionCreator, endpoint, clock) -> None:
        self._creator = creator
        self._endpoint = endpoint
        self._clock = clock

    def connect(self, factory):
        try:
            wrapper = TLSMemoryBIOFactory(self._creator, True, factory, clock=self._clock)
        except TypeError:  # pragma: no cover - Twisted before the clock argument
            wrapper = TLSMemoryBIOFactory(self._creator, True, factory)
        d = self._endpoint.connect(wrapper)
        d.addCallback(lambda protocol: protocol.wrappedProtocol)
        return d


@implementer(IPolicyForHTTPS)
class _TargetPolicy:
    def __init__(self, endpoints: UpstreamEndpoints, targets) -> None:
        self._endpoints = endpoints
        self._targets: Dict[Tuple[str, int], Target] = {}
        for target in targets:
            if target.scheme == "https":
                self._targets.setdefault((target.host, target.port), target)

    def creatorForNetloc(self, hostname: bytes, port: int):
        host = hostname.decode("ascii").lower()
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        target = self._targets.get((host, port)) or Target("https", host, port)
        return self._endpoints.creatorFor(target)
