# -*- test-case-name: tests.test_tls -*-
"""
Reading the TLS files: every certificate, key and CA file the
configuration names, at start-up and again on SIGHUP.

  - L{load_tls_material} reads and checks them all (generating the demo's
    self-signed certificate when asked to) and builds the OpenSSL
    contexts; a problem is a L{ConfigError} naming the key, so start-up
    stops with one line.
  - L{CertificateReloader} rereads everything on SIGHUP and hands it to
    the listeners and the backend connections, or logs why not and keeps
    the current files. A reload never generates a certificate: a missing
    C{self_signed} file is an error like any other missing file (only
    start-up generates).
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import List, Mapping, Optional, Tuple

from OpenSSL import SSL
from twisted.logger import Logger

from lbproxy.config import Config, ConfigError, child_key
from lbproxy.config.tls import UpstreamTLS
from lbproxy.frontend.http2 import H2_AVAILABLE
from lbproxy.tls.certs import (
    CertificateError,
    LoadedCertificate,
    ensure_self_signed,
    load_pair,
    validity_problem,
)
from lbproxy.tls.contexts import ServerCertificates, ServerTLS, offered_protocols, server_context
from lbproxy.tls.failures import ssl_reason
from lbproxy.upstream.tls import UpstreamMaterial, load_upstream_material

__all__ = [
    "CertificateReloader",
    "TLSMaterial",
    "load_tls_material",
    "now_utc",
]

log = Logger()


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
    config: Config, now: datetime.datetime, generate: bool = True, reloading: bool = False
) -> TLSMaterial:
    """
    Read and check every certificate and key the configuration names.

    @param now: The current time, to tell expired certificates.
    @param generate: Generate missing C{self_signed} certificates (off for
        C{--check}, which writes nothing).
    @param reloading: Read the files as they are (on SIGHUP): nothing is
        generated, whatever C{generate} says, and a missing C{self_signed}
        file is an error naming it.
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
                if files.self_signed and not reloading:
                    if generate:
                        if ensure_self_signed(files.cert, files.key, files.self_signed, now):
                            generated.append(files.cert)
                    elif not _exists(files.cert) and not _exists(files.key):
                        # --check: it will be generated at start-up.
                        complete = False
                        continue
                certificate = load_pair(files.cert, files.key)
            except CertificateError as e:
                raise ConfigError(config.path, child_key(key, e.field) if e.field else key,
                                  e.reason) from None
            try:
                contexts.append(server_context(certificate, settings.min_version, alpn))
            except SSL.Error as e:
                raise ConfigError(
                    config.path,
                    child_key(key, "cert"),
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
            material = load_tls_material(self._config, now_utc(self._clock), reloading=True)
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
