# -*- test-case-name: tests.test_metrics -*-
"""
Counting the HTTPS listeners' TLS handshakes: the channels of a TLS site
are told when a handshake completes (Twisted's L{IHandshakeListener}) and
see a handshake failure as the reason their connection was lost; either
goes to the site's C{onHandshake} (the protocol version, or L{None} for a
failure), when it has one (L{lbproxy.observe.counters.Metrics.handshake}).
"""

from __future__ import annotations

from OpenSSL import SSL
from twisted.internet.interfaces import IHandshakeListener
from zope.interface import implementer

from lbproxy.frontend.http import ProxyChannel
from lbproxy.frontend.http2 import NegotiatingChannel

__all__ = ["TLSChannel", "TLSNegotiatingChannel"]


@implementer(IHandshakeListener)
class _HandshakeCounting:
    _handshook = False

    def _observer(self):
        return getattr(getattr(self, "factory", None), "onHandshake", None)

    def handshakeCompleted(self) -> None:
        self._handshook = True
        observer = self._observer()
        if observer is not None:
            handle = self.transport.getHandle()
            observer(handle.get_protocol_version_name() if handle is not None else "unknown")

    def connectionLost(self, reason) -> None:
        if not self._handshook and reason.check(SSL.Error):
            observer = self._observer()
            if observer is not None:
                observer(None)
        super().connectionLost(reason)


class TLSChannel(_HandshakeCounting, ProxyChannel):
    """
    HTTP/1.1 over TLS (a TLS listener without HTTP/2).
    """


class TLSNegotiatingChannel(_HandshakeCounting, NegotiatingChannel):
    """
    HTTP/1.1 or HTTP/2 over TLS, as ALPN decides.
    """
