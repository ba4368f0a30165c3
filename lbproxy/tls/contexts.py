# -*- test-case-name: tests.test_tls -*-
"""
The listeners' OpenSSL contexts: one per certificate with lbproxy's
protocol defaults (TLS 1.2 or 1.3, forward-secret AEAD cipher suites,
ALPN), and the connection creator that picks among them by SNI.

  - L{server_context} builds the context of one certificate.
  - L{ServerCertificates} is one generation of them, with the SNI
    callback moving a connection to the context of the certificate that
    names the server name.
  - L{ServerTLS} is the listeners' connection creator: each new
    connection starts on the default certificate's context.
    L{ServerTLS.reload} swaps in a new generation; open connections keep
    the one they were made with.
"""

from __future__ import annotations

from typing import Callable, List, Sequence, Tuple

from OpenSSL import SSL, crypto
from twisted.internet.interfaces import IOpenSSLServerConnectionCreator
from zope.interface import implementer

from lbproxy.config.tls import TLSConfig
from lbproxy.frontend.http2 import H2_AVAILABLE
from lbproxy.tls import sni
from lbproxy.tls.certs import LoadedCertificate

__all__ = [
    "CIPHERS",
    "ServerCertificates",
    "ServerTLS",
    "offered_protocols",
    "server_context",
]

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
