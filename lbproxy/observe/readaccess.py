# -*- test-case-name: tests.test_statuspage -*-
"""
The admin listener's read rule for lbproxy's own pages (the status page,
its stream, C{/metrics}): open, unless C{[admin] protect_reads} asks for
the bearer token, as for C{GET /api/status}
(L{lbproxy.admin.auth.may_read}).
"""

from __future__ import annotations

from typing import Optional

from lbproxy.admin.auth import may_read
from lbproxy.admin.jsonapi import ApiError, error

__all__ = ["refuse_unless_readable"]


def refuse_unless_readable(request, core) -> Optional[bytes]:
    """
    L{None} if C{request} may read, else the 401 answer to render.

    @param core: the L{lbproxy.app.wiring.ProxyCore} (its configuration in
        service), or L{None} to allow (tests of the resources alone).
    """
    if core is None or may_read(request, core.config):
        return None
    return error(request, ApiError(
        401, "a valid bearer token is required",
        headers=[(b"WWW-Authenticate", b'Bearer realm="lbproxy"')],
    ))
