# -*- test-case-name: tests.test_admin -*-
"""
What the admin listener serves: one entry per first path segment, mapping
it to a factory C{(core, reactor) -> IResource} (see L{lbproxy.admin}).

To add a page, add its factory here; C{b""} is C{/} itself.  Factories
are called once, when the admin site is built.  Under C{/api}, add to
L{API_PAGES} instead (e.g. C{b"cache"} for C{/api/cache/...}): those
resources answer below C{/api/<segment>}.
"""

from __future__ import annotations

from lbproxy.admin.api import ApiResource
from lbproxy.observe.metricspage import metrics_page
from lbproxy.observe.statuspage import events_page, status_page

__all__ = ["API_PAGES", "PAGES"]

#: More children of C{/api}: segment -> C{(core, reactor) -> IResource}.
API_PAGES = {}


def api_page(core, reactor):
    """
    C{/api}: status, reload, pools and targets, and L{API_PAGES}.
    """
    return ApiResource(core, reactor, API_PAGES)


PAGES = {
    b"api": api_page,
    # The live status page (lbproxy.observe.statuspage) and its event stream.
    b"": status_page,
    b"events": events_page,
    # Prometheus (lbproxy.observe.metricspage).
    b"metrics": metrics_page,
}
