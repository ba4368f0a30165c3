# -*- test-case-name: tests.test_admin -*-
"""
The admin site: a root resource whose children are the pages of
L{lbproxy.admin.mounts.PAGES}, each built once by its factory.
"""

from __future__ import annotations

from typing import Callable, Mapping

from twisted.web.resource import IResource, Resource
from twisted.web.server import Site

from lbproxy.admin.jsonapi import ApiError, answer, error

__all__ = ["AdminRoot", "admin_site"]

#: A page factory: C{(core, reactor) -> IResource}.
PageFactory = Callable[..., IResource]


class AdminRoot(Resource):
    """
    The admin listener's C{/}: one child per mounted page.  Without a page
    mounted at C{b""}, C{GET /} answers the list of mounted pages as JSON.
    """

    def __init__(self, core, reactor, pages: Mapping[bytes, PageFactory]) -> None:
        Resource.__init__(self)
        self.mounted = sorted(pages)
        for segment, factory in pages.items():
            self.putChild(segment, factory(core, reactor))

    def getChild(self, path, request):
        if path == b"":
            return self
        return _NotFound()

    def render_GET(self, request):
        # Reached for "" only when nothing is mounted there.
        return answer(request, 200, {
            "pages": ["/" + segment.decode("ascii") for segment in self.mounted if segment],
        })


class _NotFound(Resource):
    isLeaf = True

    def render(self, request):
        return error(request, ApiError(404, "no such page"))


def admin_site(core, reactor, pages: Mapping[bytes, PageFactory]) -> Site:
    """
    The admin listener's site.

    @param pages: the mounted pages, usually L{lbproxy.admin.mounts.PAGES}.
    """
    site = Site(AdminRoot(core, reactor, pages), reactor=reactor)
    site.displayTracebacks = False
    return site
