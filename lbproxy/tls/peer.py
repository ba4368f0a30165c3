# -*- test-case-name: tests.test_tls_proxy -*-
"""
What a request's TLS connection says: its OpenSSL connection, and whether
the certificate the client's SNI chose covers the request's host.
"""

from __future__ import annotations

from typing import Optional

from OpenSSL import SSL

from lbproxy.tls import sni
from lbproxy.tls.certs import LoadedCertificate

__all__ = ["misdirected", "tls_connection"]


def tls_connection(request) -> Optional[SSL.Connection]:
    """
    The OpenSSL connection a request came over, or L{None} for plain HTTP.
    """
    inbound = getattr(request, "inbound", request.channel)
    transport = getattr(inbound, "transport", None)
    getHandle = getattr(transport, "getHandle", None)
    if getHandle is None:
        return None
    handle = getHandle()
    return handle if isinstance(handle, SSL.Connection) else None


def misdirected(request, host: Optional[str]) -> bool:
    """
    Whether a request must get C{421 Misdirected Request}: it came over a
    TLS connection whose client asked (SNI) for one name and whose
    certificate does not cover the request's host.  See
    L{lbproxy.tls.sni.misdirected}.

    @param host: The request's normalized host, or L{None}.
    """
    if host is None:
        return False
    connection = tls_connection(request)
    if connection is None:
        return False
    serverName = connection.get_servername()
    if not serverName:
        return False
    loaded = connection.get_context().get_app_data()
    if not isinstance(loaded, LoadedCertificate):
        return False
    return sni.misdirected(serverName.decode("ascii", "replace"), loaded.names, host)
