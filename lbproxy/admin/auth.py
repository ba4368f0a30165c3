# -*- test-case-name: tests.test_admin -*-
"""
The admin API's bearer token: C{Authorization: Bearer <token>}, compared
in constant time (L{hmac.compare_digest}) so that the time an answer takes
tells nothing about how much of a guess was right.
"""

from __future__ import annotations

import hmac
from typing import Optional

__all__ = ["authorized", "bearer_token", "may_change", "may_read"]


def bearer_token(header: Optional[bytes]) -> Optional[bytes]:
    """
    The token of an C{Authorization} header value, or L{None} if it is not
    C{Bearer <token>}.
    """
    if header is None:
        return None
    scheme, _, token = header.strip().partition(b" ")
    if scheme.lower() != b"bearer":
        return None
    token = token.strip()
    return token or None


def authorized(request, token: str) -> bool:
    """
    Whether C{request} carries C{token} as its bearer token.

    @param request: a L{twisted.web.server.Request}.
    @param token: the configured token (C{[admin] token} or C{token_file}).
    """
    given = bearer_token(request.getHeader(b"authorization"))
    expected = token.encode("utf-8")
    if given is None or not expected:
        # Still compare, so that a missing header takes as long as a wrong one.
        hmac.compare_digest(expected, b"\0" * len(expected))
        return False
    return hmac.compare_digest(given, expected)


def may_change(request, config) -> bool:
    """
    Whether C{request} may change something: it carries the token of
    C{config.admin} (no token opens anything once a reload removed
    C{[admin]}).

    @param config: the L{lbproxy.config.Config} in service (C{core.config}).
    """
    return authorized(request, getattr(config.admin, "token", ""))


def may_read(request, config) -> bool:
    """
    Whether C{request} may read (status, pages, metrics): always, unless
    C{[admin] protect_reads} asks for the token.
    """
    admin = config.admin
    if admin is not None and not admin.protect_reads:
        return True
    return may_change(request, config)
