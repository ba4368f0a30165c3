# -*- test-case-name: tests.test_tls_upstream -*-
"""
TLS failures in words for an operator: OpenSSL's reasons, and why a
backend's TLS handshake failed.

Pure translation, no I/O: both sides use it, the listeners' certificate
loading (L{lbproxy.tls.material}) and the backend connections
(L{lbproxy.upstream.connections}, L{lbproxy.upstream.tls}).
"""

from __future__ import annotations

from typing import Optional

from OpenSSL import SSL
from service_identity import VerificationError
from twisted.python.failure import Failure

__all__ = ["TLSHandshakeError", "ssl_reason", "tls_failure"]


class TLSHandshakeError(Exception):
    """
    The TLS handshake with a backend failed: its certificate was not
    verified, or it refused ours.
    """


def ssl_reason(error: SSL.Error) -> str:
    """
    OpenSSL's reasons in an C{SSL.Error}, for an operator to read.
    """
    entries = error.args[0] if error.args and isinstance(error.args[0], list) else []
    parts = [entry[2] for entry in entries if isinstance(entry, tuple) and len(entry) == 3]
    return ", ".join(parts) or str(error)


def _mismatched(error) -> str:
    identity = getattr(error, "mismatched_id", None)
    name = getattr(identity, "hostname", None) or getattr(identity, "ip", None)
    if isinstance(name, bytes):
        name = name.decode("ascii", "replace")
    return str(name if name is not None else error)


def tls_failure(reason: Optional[Failure]) -> Optional[Failure]:
    """
    If a backend connection was lost because its TLS handshake failed, a
    L{TLSHandshakeError} saying why, for logs; else L{None}.
    """
    if reason is None:
        return None
    if reason.check(VerificationError):
        names = ", ".join(_mismatched(e) for e in getattr(reason.value, "errors", ()))
        return Failure(TLSHandshakeError(
            f"TLS: the backend's certificate does not name {names or 'the target'}"
        ))
    if reason.check(SSL.Error):
        return Failure(TLSHandshakeError(f"TLS handshake failed: {ssl_reason(reason.value)}"))
    return None
