# -*- test-case-name: tests.test_admin -*-
"""
The admin listener: a site of its own (C{[admin] listen}), apart from the
proxied traffic, serving the proxy's status, the admin API and the pages
other features mount on it.

Modules:

  - C{mounts}: L{PAGES <lbproxy.admin.mounts.PAGES>}, the table of what is
    served under each first path segment.  B{To add a page}, write a
    factory C{(core, reactor) -> IResource} in your own module and add
    one line to that table::

        PAGES = {
            b"api": api_page,
            b"metrics": metrics_page,   # /metrics and below
            b"": status_page,           # / itself
        }

    C{core} is the L{lbproxy.app.wiring.ProxyCore}: C{core.runtime} (the
    running routes and pools), C{core.registry} (every target's state),
    C{core.configInfo}, C{core.overrides}, C{core.listeners}, and
    C{core.config} (check access with
    L{lbproxy.admin.auth.may_read}C{(request, core.config)} for a read,
    which honours C{[admin] protect_reads}, and
    L{lbproxy.admin.auth.may_change} for a change).  A factory is called once, when
    the admin site is built; the resource it returns must read C{core}
    at request time (a reload swaps C{core.runtime}).
  - C{status}: L{status_snapshot <lbproxy.admin.status.status_snapshot>},
    the pure function behind C{GET /api/status}, for any page to reuse.
  - C{auth}: the bearer token check, in constant time.
  - C{jsonapi}: JSON answers and errors.
  - C{root}: the root resource and the site.
  - C{api}: C{/api/...}.
"""
