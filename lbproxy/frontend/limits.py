# -*- test-case-name: tests.test_hygiene -*-
"""
How much a client connection may send, and how slowly: the limits that
L{lbproxy.frontend.hygiene.GuardedChannel} enforces, from the C{[server]}
settings.
"""

from __future__ import annotations

from dataclasses import dataclass

from lbproxy.frontend.h2guard import H2Limits

__all__ = ["ClientLimits"]


@dataclass(frozen=True)
class ClientLimits:
    """
    Limits on what one client connection may send, and how slowly.
    Defaults are close to nginx's (see docs/security.md).
    """

    max_request_line: int = 8 * 1024
    max_header_size: int = 32 * 1024
    max_headers: int = 100
    header_timeout: float = 10.0
    body_timeout: float = 60.0
    keepalive_timeout: float = 75.0
    request_timeout: float = 3600.0
    max_connections: int = 10000
    h2: H2Limits = H2Limits()

    @classmethod
    def fromServer(cls, server) -> "ClientLimits":
        """
        The limits of a L{lbproxy.config.ServerConfig}.
        """
        return cls(
            max_request_line=server.max_request_line,
            max_header_size=server.max_header_size,
            max_headers=server.max_headers,
            header_timeout=server.client_header_timeout,
            body_timeout=server.client_body_timeout,
            keepalive_timeout=server.keepalive_timeout,
            request_timeout=server.client_request_timeout,
            max_connections=server.max_connections,
            h2=H2Limits(
                resets=server.http2.max_resets,
                controlFrames=server.http2.max_control_frames,
                interval=server.http2.interval,
                penalty=server.http2.penalty,
            ),
        )
